import { createHash } from 'node:crypto';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { CUSTOMER_SK, customerPk, STATUS } from './shared.lambda/layout';
import { ddb, isConditionalCheckFailed, logger, nowIso, requiredEnv } from './shared.lambda/runtime';
import { ControlPlaneEvent, optionalField, tenantIdOf } from '../../shared.lambda/control-plane-event';

/** The customer id of a tenant: derived from the tenant id, so every attempt computes the same one. */
export function customerIdOf(tenantId: string): string {
  return `cus_${createHash('sha256').update(tenantId).digest('hex').slice(0, 24)}`;
}

/** The result of a create customer invocation. */
export interface CreateCustomerResult {
  readonly tenantId: string;
  readonly customerId: string;
  /** `CREATED` when this invocation created it, `EXISTS` when an earlier delivery (or an offboarding) did. */
  readonly outcome: 'CREATED' | 'EXISTS';
  readonly status: string;
}

/**
 * Creates the customer of a tenant on onboarding: one customer per tenant however
 * often and however concurrently the event is delivered (a conditional put).
 * An offboarding that arrived first leaves a CLOSED customer that onboarding does not reopen.
 */
export const handler = async (event: ControlPlaneEvent): Promise<CreateCustomerResult> => {
  const table = requiredEnv('BILLING_TABLE_NAME');
  const tenantId = tenantIdOf(event);
  const customerId = customerIdOf(tenantId);
  logger.appendKeys({ tenantId, eventId: event.id });
  try {
    await ddb().send(new PutCommand({
      TableName: table,
      Item: {
        pk: customerPk(tenantId),
        sk: CUSTOMER_SK,
        tenantId,
        customerId,
        status: STATUS.ACTIVE,
        createdAt: nowIso(),
        tenantName: optionalField(event, 'tenantName', 'name'),
        tier: optionalField(event, 'tier', 'tenantTier'),
        // Billing contact: stored (encrypted at rest), never logged.
        billingEmail: optionalField(event, 'email', 'tenantEmail', 'billingEmail'),
        sourceEventId: event.id,
      },
      ConditionExpression: 'attribute_not_exists(pk)',
    }));
    logger.info('Customer created', { customerId });
    return { tenantId, customerId, outcome: 'CREATED', status: STATUS.ACTIVE };
  } catch (error) {
    if (!isConditionalCheckFailed(error)) throw error;
  }
  const existing = await ddb().send(new GetCommand({
    TableName: table,
    Key: { pk: customerPk(tenantId), sk: CUSTOMER_SK },
    ConsistentRead: true,
  }));
  const status = String(existing.Item?.status ?? 'UNKNOWN');
  logger.info('Customer already exists: nothing to do', { customerId, status });
  return { tenantId, customerId, outcome: 'EXISTS', status };
};
