/**
 * AWS Marketplace's SaaS subscription events (EventBridge, source `aws.agreement-marketplace`)
 * applied to the subscriber (license) they are about, once each and in order, and the
 * subscription changed events they cause.
 *
 * Event fields read (https://docs.aws.amazon.com/marketplace/latest/userguide/saas-eventbridge-integration.html):
 * `detail.agreement.id`, `detail.agreement.status` (of an ended agreement: `CANCELLED`, `EXPIRED`,
 * `TERMINATED`, or `RENEWED`/`REPLACED` when a new agreement follows), `detail.license.arn` (license
 * events), `detail.acceptor.accountId`, `detail.product.code`.
 *
 * | Marketplace event            | effect on the subscriber          | subscription changed status |
 * |------------------------------|-----------------------------------|-----------------------------|
 * | Purchase Agreement Created   | ACTIVE                            | CONFIRMED                   |
 * | License Updated              | ACTIVE if it was PENDING; links the agreement to the license | CONFIRMED, else ENTITLEMENT_CHANGED |
 * | Purchase Agreement Amended   | none                              | ENTITLEMENT_CHANGED         |
 * | Purchase Agreement Ended     | CANCELLATION_PENDING, final metering, then CANCELLED | CANCELLATION_PENDING, CANCELLED |
 * | License Deprovisioned        | as Ended, unless already ending   | CANCELLATION_PENDING, CANCELLED |
 *
 * Order: a state is replaced only by an event with a later `time`, or with the same `time` and a
 * further state (ACTIVE < CANCELLATION_PENDING < CANCELLED); an older event is superseded (no effect,
 * no event). Duplicates: the event id is recorded once, and its emissions are sent until recorded as sent.
 */
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { EventBridgeEvent } from 'aws-lambda';
import { documentClient } from '../../../shared.lambda/aws-clients';
import { isConditionalCheckFailed } from '../../../shared.lambda/dynamodb';
import { MARKETPLACE_DETAIL_TYPES as T, REGISTRATIONS_TABLE_LAYOUT as L } from '../contract';
import { agreementKey, eventKey, getItem, subscriberKey, SubscriberRecord } from './registrations';
import { SubscriptionChange, SubscriptionStatus } from './subscription-events';

/** The detail of a Marketplace SaaS event (the fields read). */
export interface MarketplaceDetail {
  readonly requestId?: string;
  readonly agreement?: { readonly id?: string; readonly status?: string; readonly intent?: string; readonly endTime?: string };
  readonly acceptor?: { readonly accountId?: string };
  readonly product?: { readonly code?: string };
  readonly license?: { readonly arn?: string };
}

export type MarketplaceEvent = EventBridgeEvent<string, MarketplaceDetail>;

/** The subscriber states, ordered. */
export const STATE_RANK = { PENDING: 0, ACTIVE: 1, CANCELLATION_PENDING: 2, CANCELLED: 3 } as const;
export type SubscriberState = keyof typeof STATE_RANK;

/** What an event asks for. */
export interface Intent {
  /** The state it moves the subscriber to, if any. */
  readonly target?: SubscriberState;
  /** Only when the subscriber is PENDING (License Updated confirms a subscription not confirmed yet). */
  readonly onlyFromPending?: boolean;
  /** The status emitted when it changes nothing. */
  readonly otherwise?: SubscriptionStatus;
  readonly reason: string;
}

/** What an event means (undefined: nothing for this product). */
export function intentOf(event: MarketplaceEvent): Intent | undefined {
  const status = event.detail?.agreement?.status;
  switch (event['detail-type']) {
    case T.AGREEMENT_CREATED:
      return { target: 'ACTIVE', reason: `agreement created (${event.detail?.agreement?.intent ?? 'NEW'})` };
    case T.LICENSE_UPDATED:
      return { target: 'ACTIVE', onlyFromPending: true, otherwise: 'ENTITLEMENT_CHANGED', reason: 'license updated' };
    case T.AGREEMENT_AMENDED:
      return { otherwise: 'ENTITLEMENT_CHANGED', reason: 'agreement amended' };
    case T.AGREEMENT_ENDED:
      // RENEWED and REPLACED agreements are followed by a new agreement: not an end of the subscription.
      if (status === 'RENEWED' || status === 'REPLACED') return undefined;
      return { target: 'CANCELLATION_PENDING', reason: `agreement ended (${status ?? 'ENDED'})` };
    case T.LICENSE_DEPROVISIONED:
      return { target: 'CANCELLATION_PENDING', reason: 'license deprovisioned' };
    default:
      return undefined;
  }
}

/** Whether an event at `at` moving to `target` replaces the recorded state. */
export function replaces(target: SubscriberState, at: string, current: Pick<SubscriberRecord, 'state' | 'stateAt'> | undefined): boolean {
  if (!current?.stateAt) return true;
  const t = Date.parse(at);
  const c = Date.parse(current.stateAt);
  return t > c || (t === c && STATE_RANK[target] > STATE_RANK[current.state]);
}

const doc = () => documentClient();

/** The subscriber an event is about: its license, or the license a license event linked its agreement to. */
export async function subscriberOfEvent(table: string, event: MarketplaceEvent): Promise<string | undefined> {
  const arn = event.detail?.license?.arn;
  const agreementId = event.detail?.agreement?.id;
  if (arn) {
    if (agreementId) {
      await doc().send(new UpdateCommand({
        TableName: table, Key: agreementKey(agreementId), UpdateExpression: 'SET subscriber = :s', ExpressionAttributeValues: { ':s': arn },
      }));
    }
    return arn;
  }
  if (!agreementId) return undefined;
  return (await getItem<{ subscriber?: string }>(table, agreementKey(agreementId)))?.subscriber;
}

/** What applying an event did. */
export interface Applied {
  readonly applied: boolean;
  readonly previousState?: SubscriberState;
  readonly subscriber: SubscriberRecord;
}

/**
 * Applies a target state to a subscriber with the order rule, idempotently: a redelivery of the
 * event that set the state finds it applied. Creates the subscriber when an event comes before
 * its registration (the registration attaches itself to it).
 */
export async function applyState(
  table: string, subscriber: string, intent: Intent, event: MarketplaceEvent, finalMeteringSeconds: number,
): Promise<Applied> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const current = await getItem<SubscriberRecord & { previousState?: SubscriberState }>(table, subscriberKey(subscriber));
    if (current?.stateEventId === event.id) return { applied: true, previousState: current.previousState, subscriber: current };
    const target = intent.target!;
    const fromPending = !current || current.state === 'PENDING';
    // Ending a subscription that is already ending (Deprovisioned after Ended) changes nothing.
    const alreadyEnding = target === 'CANCELLATION_PENDING' && current && STATE_RANK[current.state] >= STATE_RANK.CANCELLATION_PENDING
      && Date.parse(event.time) - Date.parse(current.stateAt ?? event.time) < finalMeteringSeconds * 1000;
    if ((intent.onlyFromPending && !fromPending) || alreadyEnding || !replaces(target, event.time, current)) {
      return { applied: false, subscriber: current ?? { subscriber, state: 'PENDING' } };
    }
    const meterUntil = target === 'CANCELLATION_PENDING' ? new Date(Date.parse(event.time) + finalMeteringSeconds * 1000).toISOString() : undefined;
    const previousState = current?.state ?? 'PENDING';
    const values: Record<string, unknown> = {
      ':sub': subscriber,
      ':st': target,
      ':at': event.time,
      ':rank': STATE_RANK[target],
      ':e': event.id,
      ':prev': previousState,
      ...(event.detail?.agreement?.id ? { ':agr': event.detail.agreement.id } : {}),
      ...(meterUntil ? { ':mu': meterUntil } : {}),
      ...(current ? { ':seen': current.stateEventId ?? '-', ':cur': current.state } : {}),
    };
    const set = ['subscriber = :sub', '#st = :st', 'stateAt = :at', 'stateRank = :rank', 'stateEventId = :e', 'previousState = :prev',
      ...(values[':agr'] ? ['agreementId = :agr'] : []), ...(meterUntil ? ['meterUntil = :mu'] : [])];
    try {
      // Only the state's attributes: the registration and the tenant on the item are left as they are.
      await doc().send(new UpdateCommand({
        TableName: table,
        Key: subscriberKey(subscriber),
        UpdateExpression: `SET ${set.join(', ')}${target === 'ACTIVE' ? ' REMOVE meterUntil, finalMeteredAt' : ''}`,
        // Unchanged since read: a concurrent event is judged again.
        ConditionExpression: current ? 'stateEventId = :seen OR (attribute_not_exists(stateEventId) AND #st = :cur)' : 'attribute_not_exists(#pk)',
        ExpressionAttributeNames: current ? { '#st': 'state' } : { '#st': 'state', '#pk': L.partitionKey },
        ExpressionAttributeValues: values,
      }));
      const after = {
        ...(current ?? {}), subscriber, state: target, stateAt: event.time, stateEventId: event.id, ...(meterUntil ? { meterUntil } : {}),
      };
      return { applied: true, previousState, subscriber: after as SubscriberRecord };
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
    }
  }
  throw new Error(`Subscriber ${subscriber}: its state kept changing under concurrent events; EventBridge retries this one`);
}

/** Moves an ending subscriber to CANCELLED once its final metering is done (only the event that started the ending does). */
export async function completeCancellation(table: string, subscriber: string, eventId: string, at: string): Promise<boolean> {
  try {
    await doc().send(new UpdateCommand({
      TableName: table,
      Key: subscriberKey(subscriber),
      UpdateExpression: 'SET #st = :c, stateRank = :r, finalMeteredAt = :at',
      ConditionExpression: '#st = :pending AND stateEventId = :e',
      ExpressionAttributeNames: { '#st': 'state' },
      ExpressionAttributeValues: { ':c': 'CANCELLED', ':r': STATE_RANK.CANCELLED, ':at': at, ':pending': 'CANCELLATION_PENDING', ':e': eventId },
    }));
    return true;
  } catch (error) {
    if (isConditionalCheckFailed(error)) return false;
    throw error;
  }
}

/** A processed event's record. */
export interface EventRecord {
  readonly status: 'APPLIED' | 'SUPERSEDED' | 'IGNORED';
  readonly emissions: SubscriptionChange[];
  /** How many of `emissions` are on the bus already. */
  readonly emittedCount?: number;
  readonly emitted: boolean;
  /** The subscriber it applied to. */
  readonly subscriber?: string;
  /** A cancellation whose final metering is not done yet (a retry resumes it). */
  readonly cancelling?: boolean;
}

export async function getEventRecord(table: string, eventId: string): Promise<EventRecord | undefined> {
  const got = await doc().send(new GetCommand({ TableName: table, Key: eventKey(eventId), ConsistentRead: true }));
  return got.Item as EventRecord | undefined;
}

/** Records what an event did and what it emits (before emitting). */
export async function putEventRecord(
  table: string, eventId: string, record: Omit<EventRecord, 'emitted'>, detailType: string, retentionSeconds: number,
): Promise<void> {
  await doc().send(new PutCommand({
    TableName: table,
    Item: { ...eventKey(eventId), ...record, emitted: false, detailType, [L.ttlAttribute]: Math.floor(Date.now() / 1000) + retentionSeconds },
    ConditionExpression: 'attribute_not_exists(#pk) OR emitted = :f',
    ExpressionAttributeNames: { '#pk': L.partitionKey },
    ExpressionAttributeValues: { ':f': false },
  }));
}

/** Records that the first `count` emissions are on the bus (all of them: `done`). */
export async function markEmitted(table: string, eventId: string, count: number, done: boolean): Promise<void> {
  await doc().send(new UpdateCommand({
    TableName: table, Key: eventKey(eventId), UpdateExpression: 'SET emitted = :d, emittedCount = :n', ExpressionAttributeValues: { ':d': done, ':n': count },
  }));
}
