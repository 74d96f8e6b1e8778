/**
 * The webhook's record of the latest state of each invoice and subscription
 * (see `WEBHOOK_EVENTS_TABLE_LAYOUT`), and what it writes on the tenant
 * mapping (see `CUSTOMERS_TABLE_LAYOUT`). Every write is conditional, so that
 * an older event never overrides a newer state, whatever the delivery order.
 */
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { tenantKey } from './tenants';
import { isTerminal, ObjectState, replaces, TERMINAL_SUBSCRIPTION_STATUSES } from './webhook';
import { documentClient } from '../../../shared.lambda/aws-clients';
import { isConditionalCheckFailed } from '../../../shared.lambda/dynamodb';
import { requiredEnv } from '../../../shared.lambda/env';
import { STRIPE_ENV, WEBHOOK_EVENTS_TABLE_LAYOUT as L } from '../contract';

/** The outcome of recording an event's state. */
export type Recorded = { readonly applied: true; readonly previousState?: string } | { readonly applied: false; readonly current: string };

/** Concurrent writers on one object: each conflict means another event was recorded; read again. */
const MAX_CONFLICTS = 5;

/**
 * Records the state an event gives its invoice or subscription when it
 * replaces the recorded one (the order rule, `replaces`). Idempotent: a
 * delivery of the event that recorded the state (a retry after a crash) finds
 * it applied, with the state it replaced.
 */
export async function recordObjectState(change: ObjectState, nowSeconds: number, retentionSeconds: number): Promise<Recorded> {
  if (change.kind === 'customer') return { applied: true };
  const table = requiredEnv(STRIPE_ENV.WEBHOOK_EVENTS_TABLE_NAME);
  const key = { [L.partitionKey]: `${change.kind === 'invoice' ? L.invoicePrefix : L.subscriptionPrefix}${change.id}` };
  for (let attempt = 0; attempt < MAX_CONFLICTS; attempt++) {
    const got = await documentClient().send(new GetCommand({ TableName: table, Key: key, ConsistentRead: true }));
    const stored = got.Item as { state: string; stateAt: number; eventId: string; previousState?: string } | undefined;
    if (stored?.eventId === change.eventId) return { applied: true, previousState: stored.previousState };
    const storedState = stored ? { state: stored.state, at: Number(stored.stateAt) } : undefined;
    if (!replaces(change.kind, change, storedState)) return { applied: false, current: stored!.state };
    try {
      await documentClient().send(new PutCommand({
        TableName: table,
        Item: {
          ...key,
          state: change.state,
          stateAt: change.at,
          eventId: change.eventId,
          ...(stored ? { previousState: stored.state } : {}),
          [L.ttlAttribute]: nowSeconds + retentionSeconds,
        },
        // Unchanged since read: another event recorded in between is judged again.
        ConditionExpression: stored ? 'eventId = :seen' : 'attribute_not_exists(#pk)',
        ExpressionAttributeNames: stored ? undefined : { '#pk': L.partitionKey },
        ExpressionAttributeValues: stored ? { ':seen': stored.eventId } : undefined,
      }));
      return { applied: true, previousState: stored?.state };
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
    }
  }
  throw new Error(`State of ${change.kind} ${change.id}: ${MAX_CONFLICTS} concurrent writes in a row; Stripe retries the event`);
}

/**
 * Writes a subscription's status on the tenant mapping, only while it is the
 * tenant's current subscription and only when the event is newer than the one
 * that set the stored status (the same rule as `replaces`, as a condition).
 * Returns whether it was written.
 */
export async function recordSubscriptionStatus(tenantId: string, change: ObjectState): Promise<boolean> {
  const terminal = isTerminal('subscription', change.state);
  const values: Record<string, unknown> = { ':sub': change.id, ':status': change.state, ':at': change.at };
  const terminals = TERMINAL_SUBSCRIPTION_STATUSES.map((s, i) => {
    values[`:t${i}`] = s;
    return `:t${i}`;
  }).join(', ');
  const storedTerminal = `subscriptionStatus IN (${terminals})`;
  const newer = terminal
    ? `subscriptionStatusAt < :at OR (subscriptionStatusAt = :at AND NOT ${storedTerminal})`
    : `subscriptionStatusAt < :at AND NOT ${storedTerminal}`;
  try {
    await documentClient().send(new UpdateCommand({
      TableName: requiredEnv(STRIPE_ENV.CUSTOMERS_TABLE_NAME),
      Key: tenantKey(tenantId),
      UpdateExpression: 'SET subscriptionStatus = :status, subscriptionStatusAt = :at, subscriptionStatusOf = :sub',
      // A status of an earlier subscription (re-onboarding) does not count.
      ConditionExpression: 'subscriptionId = :sub AND (attribute_not_exists(subscriptionStatusAt) '
        + `OR (attribute_exists(subscriptionStatusOf) AND subscriptionStatusOf <> :sub) OR (${newer}))`,
      ExpressionAttributeValues: values,
    }));
    return true;
  } catch (error) {
    if (isConditionalCheckFailed(error)) return false;
    throw error;
  }
}

/**
 * Marks the tenant's customer as deleted outside our offboarding
 * (`customerDeletedByStripe`), when it is the tenant's current customer and the
 * tenant is not being offboarded. Returns whether it was written.
 */
export async function recordCustomerDeleted(tenantId: string, customerId: string, at: number): Promise<boolean> {
  try {
    await documentClient().send(new UpdateCommand({
      TableName: requiredEnv(STRIPE_ENV.CUSTOMERS_TABLE_NAME),
      Key: tenantKey(tenantId),
      UpdateExpression: 'SET customerDeletedByStripe = :true, customerDeletedByStripeAt = if_not_exists(customerDeletedByStripeAt, :at)',
      ConditionExpression: 'customerId = :c AND NOT #status IN (:offboarding, :offboarded)',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: { ':true': true, ':at': at, ':c': customerId, ':offboarding': 'OFFBOARDING', ':offboarded': 'OFFBOARDED' },
    }));
    return true;
  } catch (error) {
    if (isConditionalCheckFailed(error)) return false;
    throw error;
  }
}
