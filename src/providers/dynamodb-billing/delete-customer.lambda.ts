import { QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { BILLING_TABLE, BillingKey, customerKey, customerPk, LIFECYCLE_ENV, METRICS, STATUS, USER_SK_PREFIX } from './contract';
import { writtenIf } from './shared.lambda/conditional-write';
import { deactivate, eventTimeOf } from './shared.lambda/lifecycle';
import { publishCounts } from './shared.lambda/metrics';
import { documentClient } from '../../shared.lambda/aws-clients';
import { lifecycleHandler } from '../../shared.lambda/control-plane-event';
import { requiredEnv } from '../../shared.lambda/env';
import { logger } from '../../shared.lambda/logger';

/** The result of a delete customer invocation. */
export interface DeleteCustomerResult {
  readonly tenantId: string;
  /** `CLOSED` (now or by an earlier delivery), or `STALE`: reopened by an onboarding newer than this offboarding. */
  readonly outcome: 'CLOSED' | 'STALE';
  readonly closedAt?: string;
  readonly usersClosed: number;
}

/**
 * Closes the customer of a tenant on offboarding and closes its active users.
 * Nothing is deleted: the customer is marked CLOSED with `closedAt` (the
 * offboarding's time, kept from the first delivery), and the usage push still
 * bills its windows that overlap the time before `closedAt` as they close (the
 * final push). Idempotent. An offboarding older than the onboarding that made the
 * customer active (a redelivery after a re-onboarding) is stale and ignored.
 */
export const handler = lifecycleHandler(async ({ event, tenantId }): Promise<DeleteCustomerResult> => {
  const table = requiredEnv(LIFECYCLE_ENV.BILLING_TABLE_NAME);
  const closed = await deactivate(table, customerKey(tenantId), STATUS.CLOSED, eventTimeOf(event), { tenantId });
  if (!closed) {
    logger.warn('Offboarding older than the customer\'s latest onboarding: ignored, the customer stays active');
    publishCounts({ [METRICS.STALE_LIFECYCLE_EVENTS]: 1 });
    return { tenantId, outcome: 'STALE', usersClosed: 0 };
  }
  let usersClosed = 0;
  for await (const user of activeUsers(table, tenantId)) {
    if (await closeUser(table, user, closed.since)) usersClosed++;
  }
  logger.info('Customer closed', { closedAt: closed.since, usersClosed });
  return { tenantId, outcome: 'CLOSED', closedAt: closed.since, usersClosed };
});

async function* activeUsers(table: string, tenantId: string): AsyncGenerator<BillingKey> {
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await documentClient().send(new QueryCommand({
      TableName: table,
      KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :user)',
      FilterExpression: '#status = :active',
      ExpressionAttributeNames: { '#pk': BILLING_TABLE.partitionKey, '#sk': BILLING_TABLE.sortKey, '#status': 'status' },
      ExpressionAttributeValues: { ':pk': customerPk(tenantId), ':user': USER_SK_PREFIX, ':active': STATUS.ACTIVE },
      ExclusiveStartKey: startKey,
      ConsistentRead: true,
    }));
    for (const user of page.Items ?? []) {
      yield { [BILLING_TABLE.partitionKey]: user[BILLING_TABLE.partitionKey], [BILLING_TABLE.sortKey]: user[BILLING_TABLE.sortKey] } as BillingKey;
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
}

/** Closes a user that is still active (a user created again after the offboarding is left alone). */
async function closeUser(table: string, key: BillingKey, closedAt: string): Promise<boolean> {
  return writtenIf(() => documentClient().send(new UpdateCommand({
    TableName: table,
    Key: key,
    UpdateExpression: 'SET #status = :closed, closedAt = :closedAt',
    ConditionExpression: '#status = :active AND (attribute_not_exists(activeSince) OR activeSince <= :closedAt)',
    ExpressionAttributeNames: { '#status': 'status' },
    ExpressionAttributeValues: { ':closed': STATUS.CLOSED, ':active': STATUS.ACTIVE, ':closedAt': closedAt },
  })));
}
