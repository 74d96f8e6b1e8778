/**
 * Claims on webhook event ids, so that concurrent deliveries of one event emit
 * it once. A delivery claims the id with a conditional put (`PENDING`, a random
 * token, a lease `claimedUntil`); only the claimant emits, then records `DONE`.
 * Another delivery meanwhile is told to come back later; one after `DONE` is a
 * duplicate. A claimant that dies leaves `PENDING`: once its lease (longer than
 * the function's timeout) has passed, the next delivery takes the claim over.
 * A claimant that fails before emitting releases its claim at once.
 */
import { randomUUID } from 'node:crypto';
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { writtenIf } from './conditional-write';
import { documentClient } from '../../../shared.lambda/aws-clients';
import { WEBHOOK_EVENTS_TABLE, webhookEventKey } from '../contract';

/** The outcome of a claim. */
export type Claim =
  | { readonly state: 'CLAIMED'; readonly token: string }
  | { readonly state: 'DONE' }
  | { readonly state: 'BUSY'; readonly retryAfterSeconds: number };

/** Where and for how long claims are kept. */
export interface ClaimOptions {
  readonly table: string;
  readonly leaseSeconds: number;
  readonly retentionSeconds: number;
  readonly nowSeconds: number;
}

/** Claims an event id, unless it is done or another live delivery holds it. */
export async function claimEvent(eventId: string, type: string, opts: ClaimOptions): Promise<Claim> {
  const token = randomUUID();
  const claimed = await writtenIf(() => documentClient().send(new PutCommand({
    TableName: opts.table,
    Item: {
      ...webhookEventKey(eventId),
      status: 'PENDING',
      type,
      claimToken: token,
      claimedUntil: opts.nowSeconds + opts.leaseSeconds,
      receivedAt: new Date(opts.nowSeconds * 1000).toISOString(),
      [WEBHOOK_EVENTS_TABLE.ttlAttribute]: opts.nowSeconds + opts.retentionSeconds,
    },
    ConditionExpression: 'attribute_not_exists(#pk) OR (#status = :pending AND claimedUntil < :now)',
    ExpressionAttributeNames: { '#pk': WEBHOOK_EVENTS_TABLE.partitionKey, '#status': 'status' },
    ExpressionAttributeValues: { ':pending': 'PENDING', ':now': opts.nowSeconds },
  })));
  if (claimed) return { state: 'CLAIMED', token };
  const { Item } = await documentClient().send(new GetCommand({ TableName: opts.table, Key: webhookEventKey(eventId), ConsistentRead: true }));
  if (Item?.status === 'DONE') return { state: 'DONE' };
  return { state: 'BUSY', retryAfterSeconds: Math.max(1, Number(Item?.claimedUntil ?? 0) - opts.nowSeconds) };
}

/** Records the claimed event as done; false when the claim was lost meanwhile (its lease passed). */
export async function completeClaim(table: string, eventId: string, token: string, outcome: string): Promise<boolean> {
  return conditionalOnToken(table, eventId, token,
    'SET #status = :done, outcome = :outcome, processedAt = :now REMOVE claimToken, claimedUntil',
    { ':done': 'DONE', ':outcome': outcome, ':now': new Date().toISOString() });
}

/** Gives a claim up at once (nothing was emitted), so the sender's retry need not wait for the lease. */
export async function releaseClaim(table: string, eventId: string, token: string): Promise<boolean> {
  return conditionalOnToken(table, eventId, token, 'SET claimedUntil = :zero', { ':zero': 0 });
}

async function conditionalOnToken(table: string, eventId: string, token: string, update: string, values: Record<string, unknown>): Promise<boolean> {
  return writtenIf(() => documentClient().send(new UpdateCommand({
    TableName: table,
    Key: webhookEventKey(eventId),
    UpdateExpression: update,
    ConditionExpression: 'claimToken = :token',
    ExpressionAttributeNames: update.includes('#status') ? { '#status': 'status' } : undefined,
    ExpressionAttributeValues: { ':token': token, ...values },
  })));
}
