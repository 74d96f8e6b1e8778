/**
 * DynamoDB helpers shared by the handlers: error tests, a BatchWriteItem
 * that writes every item or throws, and a lease (one run at a time).
 */
import { BatchWriteItemCommand, DynamoDBClient, WriteRequest } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { withRetry } from './retry';

/** DynamoDB's limit of items in one BatchWriteItem. */
export const BATCH_WRITE_LIMIT = 25;

/** Whether an error is DynamoDB's ConditionalCheckFailedException. */
export function isConditionalCheckFailed(error: unknown): boolean {
  return (error as { name?: string } | undefined)?.name === 'ConditionalCheckFailedException';
}

/**
 * The cancellation reason codes of a TransactionCanceledException, one per
 * item of the transaction (`ConditionalCheckFailed`, `TransactionConflict`,
 * `None`, ...); undefined for any other error.
 */
export function cancellationCodes(error: unknown): (string | undefined)[] | undefined {
  const e = error as { name?: string; CancellationReasons?: { Code?: string }[] } | undefined;
  if (e?.name !== 'TransactionCanceledException') return undefined;
  return (e.CancellationReasons ?? []).map((r) => r.Code);
}

class UnprocessedItems extends Error {
  constructor(readonly remaining: WriteRequest[]) {
    super(`BatchWriteItem left ${remaining.length} items unprocessed`);
  }
}

/**
 * Writes every request, 25 per BatchWriteItem and `concurrency` requests at a
 * time; items DynamoDB leaves unprocessed (throttling) are sent again with
 * backoff. Throws when some stay unprocessed or a call fails.
 */
export async function batchWriteAll(
  client: DynamoDBClient,
  tableName: string,
  requests: readonly WriteRequest[],
  opts: { readonly concurrency?: number; readonly attempts?: number } = {},
): Promise<void> {
  const chunks: WriteRequest[][] = [];
  for (let i = 0; i < requests.length; i += BATCH_WRITE_LIMIT) chunks.push(requests.slice(i, i + BATCH_WRITE_LIMIT));
  let next = 0;
  const worker = async () => {
    while (next < chunks.length) {
      let pending = chunks[next++];
      await withRetry(async () => {
        const res = await client.send(new BatchWriteItemCommand({ RequestItems: { [tableName]: pending } }));
        const left = res.UnprocessedItems?.[tableName] ?? [];
        if (left.length > 0) {
          pending = left;
          throw new UnprocessedItems(left);
        }
      }, { attempts: opts.attempts ?? 10, baseDelayMs: 50, retryable: (e) => e instanceof UnprocessedItems });
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 4, chunks.length) }, worker));
}

/** Where a lease item lives and who takes it. */
export interface LeaseRequest {
  readonly client: DynamoDBDocumentClient;
  readonly tableName: string;
  /** The lease item's full key. */
  readonly key: Record<string, string>;
  /** The table's partition key attribute (the item is new when it is missing). */
  readonly partitionKeyName: string;
  /** Who takes it: the same owner takes it again (a retried run). */
  readonly owner: string;
  readonly holdMs: number;
  readonly nowMs: number;
}

/**
 * Takes a lease: a conditional put that succeeds when no one holds it, its
 * holder's time ran out (a dead run's lease lapses), or the owner holds it
 * already. Returns a release function (a delete conditioned on the owner),
 * or undefined when another run holds it.
 */
export async function acquireLease(req: LeaseRequest): Promise<(() => Promise<void>) | undefined> {
  try {
    await req.client.send(new PutCommand({
      TableName: req.tableName,
      Item: { ...req.key, owner: req.owner, expiresAt: Math.ceil((req.nowMs + req.holdMs) / 1000), takenAt: new Date(req.nowMs).toISOString() },
      ConditionExpression: 'attribute_not_exists(#pk) OR expiresAt < :now OR #owner = :owner',
      ExpressionAttributeNames: { '#pk': req.partitionKeyName, '#owner': 'owner' },
      ExpressionAttributeValues: { ':now': Math.floor(req.nowMs / 1000), ':owner': req.owner },
    }));
  } catch (error) {
    if (isConditionalCheckFailed(error)) return undefined;
    throw error;
  }
  return async () => {
    try {
      await req.client.send(new DeleteCommand({
        TableName: req.tableName,
        Key: req.key,
        ConditionExpression: '#owner = :owner',
        ExpressionAttributeNames: { '#owner': 'owner' },
        ExpressionAttributeValues: { ':owner': req.owner },
      }));
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
    }
  };
}
