/**
 * The one rule of the lifecycle handlers, for customers and users alike: an
 * item remembers the time of the event that made it active (`activeSince`) and
 * of the one that closed or deleted it (`closedAt`, `deletedAt`); an event
 * changes an item only when it is newer than that (on a tie, the closing
 * wins). An older event is stale: ignored and counted (`StaleLifecycleEvents`).
 * So a tenant onboarded again after its offboarding is reopened, and a
 * redelivered old offboarding does not close it again.
 */
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { writtenIf } from './conditional-write';
import { documentClient } from '../../../shared.lambda/aws-clients';
import { ControlPlaneEvent } from '../../../shared.lambda/control-plane-event';
import { isConditionalCheckFailed } from '../../../shared.lambda/dynamodb';
import { withRetry } from '../../../shared.lambda/retry';
import { BILLING_TABLE, BillingKey, ClosedPeriod, STATUS } from '../contract';

/** The time of a control plane event (EventBridge `time`), as ISO-8601 UTC with milliseconds; now when it has none. */
export function eventTimeOf(event: ControlPlaneEvent): string {
  const t = Date.parse(event.time ?? '');
  return new Date(Number.isNaN(t) ? Date.now() : t).toISOString();
}

/** `SET` clauses, names and values that write `set`'s attributes (only where absent, with `onlyIfAbsent`). */
function assignments(set: Record<string, unknown>, onlyIfAbsent: boolean) {
  const names = Object.keys(set);
  return {
    clauses: names.map((_, i) => (onlyIfAbsent ? `, #x${i} = if_not_exists(#x${i}, :x${i})` : `, #x${i} = :x${i}`)).join(''),
    names: Object.fromEntries(names.map((name, i) => [`#x${i}`, name])),
    values: Object.fromEntries(names.map((name, i) => [`:x${i}`, set[name]])),
  };
}

/** Puts an item unless its key exists; false when it does. */
export async function putIfAbsent(table: string, item: BillingKey & Record<string, unknown>): Promise<boolean> {
  return writtenIf(() => documentClient().send(new PutCommand({
    TableName: table,
    Item: item,
    ConditionExpression: 'attribute_not_exists(#pk)',
    ExpressionAttributeNames: { '#pk': BILLING_TABLE.partitionKey },
  })));
}

/** What `reactivate` found or did. */
export interface Reactivation {
  /** `REACTIVATED` by this event, `ACTIVE` already, or `STALE`: inactive since an event newer than this one. */
  readonly outcome: 'REACTIVATED' | 'ACTIVE' | 'STALE';
  /** The status the item has now. */
  readonly status: string;
  /** The period the item was inactive, ended by this event (when reactivated). */
  readonly closedPeriod?: ClosedPeriod;
}

/**
 * Makes a CLOSED or DELETED item ACTIVE again when `eventTime` is newer than
 * its closing or deletion, recording the inactive span in `closedPeriods`
 * (the push leaves the windows entirely inside a closed span unbilled). The update
 * is conditional on the state read, and retried when a concurrent event changed it.
 */
export async function reactivate(table: string, key: BillingKey, eventTime: string, set: Record<string, unknown> = {}): Promise<Reactivation> {
  return withRetry(async () => {
    const { Item } = await documentClient().send(new GetCommand({ TableName: table, Key: key, ConsistentRead: true }));
    const status = String(Item?.status ?? STATUS.ACTIVE);
    if (status === STATUS.ACTIVE) return { outcome: 'ACTIVE', status };
    const sinceAttribute = status === STATUS.DELETED ? 'deletedAt' : 'closedAt';
    const since = String(Item?.[sinceAttribute] ?? '');
    if (eventTime <= since) return { outcome: 'STALE', status };
    const closedPeriod = { from: since, until: eventTime };
    const extra = assignments(set, true);
    await documentClient().send(new UpdateCommand({
      TableName: table,
      Key: key,
      UpdateExpression: 'SET #status = :active, activeSince = :t, closedPeriods = list_append(if_not_exists(closedPeriods, :none), :period)'
        + `${extra.clauses} REMOVE closedAt, deletedAt`,
      ConditionExpression: '#status = :was AND #since = :since',
      ExpressionAttributeNames: { '#status': 'status', '#since': sinceAttribute, ...extra.names },
      ExpressionAttributeValues: { ':active': STATUS.ACTIVE, ':t': eventTime, ':none': [], ':period': [closedPeriod], ':was': status, ':since': since, ...extra.values },
    }));
    return { outcome: 'REACTIVATED', status: STATUS.ACTIVE, closedPeriod };
  }, { attempts: 5, retryable: isConditionalCheckFailed });
}

/**
 * Closes or deletes an item (`status`, and `closedAt` / `deletedAt` kept from
 * the first event) unless it became active through an event newer than
 * `eventTime`; false when the event is stale.
 */
export async function deactivate(
  table: string,
  key: BillingKey,
  status: typeof STATUS.CLOSED | typeof STATUS.DELETED,
  eventTime: string,
  set: Record<string, unknown> = {},
): Promise<{ readonly since: string } | undefined> {
  const sinceAttribute = status === STATUS.DELETED ? 'deletedAt' : 'closedAt';
  const extra = assignments(set, false);
  let since = '';
  const written = await writtenIf(async () => {
    const result = await documentClient().send(new UpdateCommand({
      TableName: table,
      Key: key,
      UpdateExpression: `SET #status = :status, #since = if_not_exists(#since, :t)${extra.clauses}`,
      ConditionExpression: 'attribute_not_exists(activeSince) OR activeSince <= :t', // on a tie, the closing wins
      ExpressionAttributeNames: { '#status': 'status', '#since': sinceAttribute, ...extra.names },
      ExpressionAttributeValues: { ':status': status, ':t': eventTime, ...extra.values },
      ReturnValues: 'ALL_NEW',
    }));
    since = String(result.Attributes?.[sinceAttribute]);
  });
  return written ? { since } : undefined;
}
