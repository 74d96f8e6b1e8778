/**
 * What the closer and the closing workers share: reading the ledger of a
 * range of window starts, and writing a closed window start (its pages, its
 * index item, its `usageWindowClosed` events) exactly as the usage read
 * contract reads them.
 */
import { DynamoDBClient, PutItemCommand, WriteRequest } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, PutEventsCommand, PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { closedIndexItem, closedPageItem, forEachConcurrently, Item, LedgerFold, Page, PageEntry, queryItems, UnmatchedVoid, windowIdOf } from './ledger';
import { batchWriteAll, isConditionalCheckFailed } from '../../shared.lambda/dynamodb';
import { logger } from '../../shared.lambda/logger';
import { withRetry } from '../../shared.lambda/retry';
import { Granularity, WINDOW_CLOSED_EVENT, WINDOW_LENGTH_MS } from '../ingestor-contract';
import { isoSeconds, ledgerPk, quarantinePk, TABLE_KEYS } from '../layout';

/** Entries of one PutEvents request (EventBridge's limit). */
const EVENTS_PER_REQUEST = 10;

/** Where and how windows are closed. */
export interface ClosingConfig {
  readonly tableName: string;
  readonly granularity: Granularity;
  readonly eventBusArn: string;
  readonly quarantineRetentionSeconds: number;
}

/**
 * Reads the ledger items of window starts `[fromMs, toMs)` of one ledger key,
 * in sort key order (one query, page after page), into `fold`. Returns false,
 * having stopped between pages, when `stop()` said so.
 */
export async function foldLedgerKey(
  db: DynamoDBClient, tableName: string, shard: number, fromMs: number, toMs: number, fold: LedgerFold, stop?: () => boolean,
): Promise<boolean> {
  for await (const item of queryItems(db, {
    TableName: tableName,
    KeyConditionExpression: '#pk = :pk AND #sk BETWEEN :from AND :to',
    ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey, '#sk': TABLE_KEYS.sortKey },
    ExpressionAttributeValues: { ':pk': { S: ledgerPk(shard) }, ':from': { S: isoSeconds(fromMs) }, ':to': { S: isoSeconds(toMs) } },
    // After closesAt plus the margin nothing is written any more; a strongly consistent read sees every write.
    ConsistentRead: true,
  })) {
    fold.add(item);
    if (stop && fold.itemsRead % 1000 === 0 && stop()) return false;
  }
  return true;
}

/** Writes an item unless it exists: a closed window is written once and never changes. */
export async function putOnce(db: DynamoDBClient, tableName: string, item: Item): Promise<void> {
  try {
    await db.send(new PutItemCommand({
      TableName: tableName,
      Item: item,
      ConditionExpression: 'attribute_not_exists(#pk)',
      ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey },
    }));
  } catch (error) {
    if (!isConditionalCheckFailed(error)) throw error;
  }
}

/** Writes closed window pages once each (4 at a time). */
export async function putClosedPages(
  db: DynamoDBClient, tableName: string, windowStart: string, pages: readonly Page[], closedAt: string,
): Promise<void> {
  await forEachConcurrently(pages, 4, (page) => putOnce(db, tableName, closedPageItem(windowStart, page, closedAt)));
}

/**
 * Puts one `usageWindowClosed` event per window, 10 per request,
 * `concurrency` requests at a time; entries EventBridge refuses are sent again.
 */
export async function putClosedEvents(
  events: EventBridgeClient, config: ClosingConfig, windowStartMs: number, entries: readonly PageEntry[], closedAt: string, concurrency = 4,
): Promise<void> {
  const windowStart = isoSeconds(windowStartMs);
  const windowEnd = isoSeconds(windowStartMs + WINDOW_LENGTH_MS[config.granularity]);
  const all: PutEventsRequestEntry[] = entries.map(([tenantId, metric, sum, count]) => ({
    EventBusName: config.eventBusArn,
    Source: WINDOW_CLOSED_EVENT.source,
    DetailType: WINDOW_CLOSED_EVENT.detailType,
    Time: new Date(closedAt),
    Detail: JSON.stringify({
      tenantId,
      metric,
      granularity: config.granularity,
      windowStart,
      windowEnd,
      sum,
      count,
      closedAt,
      windowId: windowIdOf(tenantId, metric, config.granularity, windowStart),
    }),
  }));
  const requests: PutEventsRequestEntry[][] = [];
  for (let i = 0; i < all.length; i += EVENTS_PER_REQUEST) requests.push(all.slice(i, i + EVENTS_PER_REQUEST));
  await forEachConcurrently(requests, concurrency, async (batch) => {
    let pending = batch;
    await withRetry(async () => {
      const res = await events.send(new PutEventsCommand({ Entries: pending }));
      if (!res.FailedEntryCount) return;
      pending = pending.filter((_, i) => res.Entries?.[i]?.ErrorCode);
      throw new Error(`PutEvents failed for ${pending.length} usageWindowClosed events: ${res.Entries?.find((e) => e.ErrorCode)?.ErrorCode}`);
    }, { attempts: 8, baseDelayMs: 100 });
  });
}

/** Writes the closed window start's index item (after its pages: it makes them readable). */
export async function putClosedIndex(
  db: DynamoDBClient, config: ClosingConfig, windowStart: string, groups: number, windowCount: number, closedAt: string,
): Promise<void> {
  await putOnce(db, config.tableName, closedIndexItem(windowStart, config.granularity, groups, windowCount, closedAt));
}

/** Quarantines voids whose record was not in their window (`VOID_UNMATCHED`), keyed by the void's ledger item. */
export async function quarantineUnmatchedVoids(db: DynamoDBClient, config: ClosingConfig, voids: readonly UnmatchedVoid[]): Promise<void> {
  if (voids.length === 0) return;
  const nowSec = Math.floor(Date.now() / 1000);
  const requests: WriteRequest[] = voids.map((v) => ({
    PutRequest: {
      Item: {
        // Keyed by the void's ledger item: a rerun rewrites the same quarantine item.
        [TABLE_KEYS.partitionKey]: { S: quarantinePk(Date.parse(v.windowStart), v.sk) },
        [TABLE_KEYS.sortKey]: { S: `${v.windowStart}#void#${v.pk}#${v.sk}` },
        reason: { S: 'VOID_UNMATCHED' },
        detail: {
          S: `void ${JSON.stringify(v.voidId)} of record ${JSON.stringify(v.voids)}: no such record of tenant ${JSON.stringify(v.tenantId)} `
          + `in window ${v.windowStart} when it closed; send the void with a timestamp in the voided record's window`,
        },
        tenantId: { S: v.tenantId },
        quarantinedAt: { N: String(nowSec) },
        [TABLE_KEYS.timeToLive]: { N: String(nowSec + config.quarantineRetentionSeconds) },
      },
    },
  }));
  await batchWriteAll(db, config.tableName, requests);
  for (const v of voids) logger.warn('void quarantined: its record is not in its window', { windowStart: v.windowStart, tenantId: v.tenantId });
}
