import { QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { CUSTOMER_SK, customerPk, STATUS, USER_SK_PREFIX } from './shared.lambda/layout';
import { ddb, logger, nowIso, requiredEnv } from './shared.lambda/runtime';
import { ControlPlaneEvent, tenantIdOf } from '../../shared.lambda/control-plane-event';

/** The result of a delete customer invocation. */
export interface DeleteCustomerResult {
  readonly tenantId: string;
  readonly closedAt: string;
  readonly usersClosed: number;
}

/**
 * Closes the customer of a tenant on offboarding and closes its users. Nothing is
 * deleted: the customer is marked CLOSED with `closedAt` (kept from the first
 * delivery), and the usage push still bills its windows that started before
 * `closedAt` as they close (the final push). Idempotent; an offboarding that
 * arrives before the onboarding leaves a CLOSED customer that onboarding does not reopen.
 */
export const handler = async (event: ControlPlaneEvent): Promise<DeleteCustomerResult> => {
  const table = requiredEnv('BILLING_TABLE_NAME');
  const tenantId = tenantIdOf(event);
  logger.appendKeys({ tenantId, eventId: event.id });
  const now = nowIso();
  const updated = await ddb().send(new UpdateCommand({
    TableName: table,
    Key: { pk: customerPk(tenantId), sk: CUSTOMER_SK },
    UpdateExpression: 'SET #status = :closed, closedAt = if_not_exists(closedAt, :now), tenantId = :tenantId',
    ExpressionAttributeNames: { '#status': 'status' },
    ExpressionAttributeValues: { ':closed': STATUS.CLOSED, ':now': now, ':tenantId': tenantId },
    ReturnValues: 'ALL_NEW',
  }));
  const closedAt = String(updated.Attributes?.closedAt ?? now);

  let usersClosed = 0;
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await ddb().send(new QueryCommand({
      TableName: table,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :user)',
      ExpressionAttributeValues: { ':pk': customerPk(tenantId), ':user': USER_SK_PREFIX },
      ExclusiveStartKey: startKey,
      ConsistentRead: true,
    }));
    for (const user of page.Items ?? []) {
      if (user.status === STATUS.CLOSED || user.status === STATUS.DELETED) continue;
      await ddb().send(new UpdateCommand({
        TableName: table,
        Key: { pk: user.pk, sk: user.sk },
        UpdateExpression: 'SET #status = :closed, closedAt = if_not_exists(closedAt, :now)',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':closed': STATUS.CLOSED, ':now': now },
      }));
      usersClosed++;
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);

  logger.info('Customer closed', { closedAt, usersClosed });
  return { tenantId, closedAt, usersClosed };
};
