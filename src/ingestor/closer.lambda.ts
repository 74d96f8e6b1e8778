/**
 * The usage closer, run on a schedule: closes every window whose `closesAt`
 * plus the closing margin has passed, once and for good.
 *
 * For the window starts not closed yet (from its state item), it reads each of
 * the 64 ledger shards with one query over the range, folds the items into exact
 * SUM and COUNT per tenant, metric and window (voids taken out), and for each
 * window start writes
 * 1. the closed window pages (conditional Put: written once; a rerun finds
 *    them written and moves on; the ledger it reads never changes any more, so
 *    a rerun computes the same pages),
 * 2. the window start's index item, which makes its windows readable
 *    (settled) through the usage read contract,
 * 3. one `usageWindowClosed` event per window on the event bus (at least once:
 *    a rerun after a crash puts them again; consumers deduplicate by `windowId`),
 * then advances its state. A void whose record is not in its window is
 * quarantined `VOID_UNMATCHED`.
 */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient, GetItemCommand, PutItemCommand, WriteRequest } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, PutEventsCommand, PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import type { Context, ScheduledEvent } from 'aws-lambda';
import { CLOSER_ENV, METRICS, WINDOW_CLOSED_EVENT, WINDOW_LENGTH_MS } from './ingestor-contract';
import {
  CLOSER_STATE_KEY, isoSeconds, LEDGER_SHARDS, ledgerPk,
  NEXT_WINDOW_START, quarantinePk, TABLE_KEYS, WINDOW_MARKERS_PK,
} from './layout';
import {
  closedIndexItem, closedPageItem, forEachConcurrently, Item, LedgerFold, MAX_PAGE_BYTES, paginate, PageEntry, queryItems,
  TARGET_GROUP_BYTES, windowIdOf,
} from './shared.lambda/ledger';
import { windowSettingsFromEnv, WindowSettings } from './shared.lambda/settings';
import { sdkClient } from '../shared.lambda/aws-clients';
import { batchWriteAll, isConditionalCheckFailed } from '../shared.lambda/dynamodb';
import { numberEnv, requiredEnv } from '../shared.lambda/env';
import { logger } from '../shared.lambda/logger';
import { withRetry } from '../shared.lambda/retry';

/** Most window starts folded in one pass (one query per shard covers them all). */
const WINDOW_STARTS_PER_PASS = 24;
/** Shards read at once. */
const READ_CONCURRENCY = 8;
/** Entries of one PutEvents request. */
const EVENTS_PER_REQUEST = 10;
/** Stop starting passes when less time than this is left (ms). */
const RESERVE_MS = 60_000;

const metrics = new Metrics();
/** The closer state this execution environment saved last, per table (it only ever moves forward). */
const KNOWN_STATE = new Map<string, number>();

interface Config extends WindowSettings {
  readonly closingMarginSeconds: number;
  readonly eventBusArn: string;
}

function configFromEnv(): Config {
  return {
    ...windowSettingsFromEnv(),
    closingMarginSeconds: numberEnv(CLOSER_ENV.CLOSING_MARGIN_SECONDS, { min: 0, integer: true }),
    eventBusArn: requiredEnv(CLOSER_ENV.EVENT_BUS_ARN),
  };
}

/** What a run did. */
export interface CloseSummary {
  /** Window starts closed (with or without records). */
  readonly windowStartsClosed: number;
  /** Windows (tenant, metric, window start) closed. */
  readonly windowsClosed: number;
  readonly voidsApplied: number;
  readonly unmatchedVoids: number;
  readonly ledgerItemsRead: number;
  /** Every window starting before this is closed (ISO). */
  readonly nextWindowStart: string;
  /** Whether the run stopped for lack of time with windows still to close. */
  readonly stoppedEarly: boolean;
}

class Closer {
  private windowStartsClosed = 0;
  private windowsClosed = 0;
  private voidsApplied = 0;
  private unmatchedVoids = 0;
  private ledgerItemsRead = 0;
  /** The state as stored: every window before it is closed. */
  private saved: number | undefined;
  private readonly lengthMs: number;

  constructor(
    private readonly config: Config,
    private readonly db: DynamoDBClient,
    private readonly events: EventBridgeClient,
    private readonly hasTimeLeft: () => boolean,
  ) {
    this.lengthMs = WINDOW_LENGTH_MS[config.granularity];
  }

  public async run(): Promise<CloseSummary> {
    const now = Date.now();
    // Windows starting before `due` have passed closesAt plus the margin: nothing can be written into them any more.
    const due = Math.floor((now - (this.config.allowedLatenessSeconds + this.config.closingMarginSeconds) * 1000) / this.lengthMs) * this.lengthMs;
    // A warm run that knows nothing became due since it last saved its state reads nothing.
    const known = KNOWN_STATE.get(this.config.tableName);
    if (known !== undefined && known >= due) return this.summary(known, false, 0);
    this.saved = await this.nextWindowStart();
    // First run: from the first window with a marker (an aggregator writes it before its first record of the window).
    let from = Math.min(this.saved ?? (await this.markedWindows(0, due, 1))[0] ?? due, due);
    let stoppedEarly = false;
    while (from < due) {
      if (!this.hasTimeLeft()) {
        stoppedEarly = true;
        break;
      }
      const to = Math.min(due, from + WINDOW_STARTS_PER_PASS * this.lengthMs);
      await this.closeRange(from, to);
      from = to;
    }
    if (from !== this.saved) await this.saveNextWindowStart(from);
    const lagMs = from < due ? now - (from + this.lengthMs + (this.config.allowedLatenessSeconds + this.config.closingMarginSeconds) * 1000) : 0;
    return this.summary(from, stoppedEarly, lagMs);
  }

  private summary(from: number, stoppedEarly: boolean, lagMs: number): CloseSummary {
    metrics.addMetric(METRICS.WINDOWS_CLOSED, MetricUnit.Count, this.windowsClosed);
    metrics.addMetric(METRICS.VOIDS_APPLIED, MetricUnit.Count, this.voidsApplied);
    metrics.addMetric(METRICS.CLOSING_LAG_SECONDS, MetricUnit.Seconds, Math.max(0, Math.round(lagMs / 1000)));
    metrics.publishStoredMetrics();
    return {
      windowStartsClosed: this.windowStartsClosed,
      windowsClosed: this.windowsClosed,
      voidsApplied: this.voidsApplied,
      unmatchedVoids: this.unmatchedVoids,
      ledgerItemsRead: this.ledgerItemsRead,
      nextWindowStart: isoSeconds(from),
      stoppedEarly,
    };
  }

  private async nextWindowStart(): Promise<number | undefined> {
    const res = await this.db.send(new GetItemCommand({
      TableName: this.config.tableName,
      Key: { [TABLE_KEYS.partitionKey]: { S: CLOSER_STATE_KEY.pk }, [TABLE_KEYS.sortKey]: { S: CLOSER_STATE_KEY.sk } },
      ConsistentRead: true,
    }));
    const n = res.Item?.[NEXT_WINDOW_START]?.N;
    return n === undefined ? undefined : Number(n);
  }

  private async saveNextWindowStart(next: number): Promise<void> {
    this.saved = next;
    KNOWN_STATE.set(this.config.tableName, next);
    try {
      await this.db.send(new PutItemCommand({
        TableName: this.config.tableName,
        Item: {
          [TABLE_KEYS.partitionKey]: { S: CLOSER_STATE_KEY.pk },
          [TABLE_KEYS.sortKey]: { S: CLOSER_STATE_KEY.sk },
          [NEXT_WINDOW_START]: { N: String(next) },
          updatedAt: { S: new Date(Date.now()).toISOString() },
        },
        // A concurrent run may be ahead: never move back.
        ConditionExpression: 'attribute_not_exists(#pk) OR #next < :next',
        ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey, '#next': NEXT_WINDOW_START },
        ExpressionAttributeValues: { ':next': { N: String(next) } },
      }));
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
    }
  }

  /** The window starts in [from, to) that have a marker (in order; at most `limit`). */
  private async markedWindows(from: number, to: number, limit?: number): Promise<number[]> {
    const starts: number[] = [];
    for await (const item of queryItems(this.db, {
      TableName: this.config.tableName,
      KeyConditionExpression: '#pk = :pk AND #sk BETWEEN :from AND :to',
      ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey, '#sk': TABLE_KEYS.sortKey },
      ExpressionAttributeValues: { ':pk': { S: WINDOW_MARKERS_PK }, ':from': { S: isoSeconds(from) }, ':to': { S: isoSeconds(to) } },
      ConsistentRead: true,
      Limit: limit,
    })) {
      const start = Date.parse(item[TABLE_KEYS.sortKey].S!);
      if (start < to) starts.push(start);
      if (limit !== undefined && starts.length >= limit) break;
    }
    return starts;
  }

  /** Closes the window starts in [from, to); only those with a marker have records to read. */
  private async closeRange(from: number, to: number): Promise<void> {
    const marked = await this.markedWindows(from, to);
    this.windowStartsClosed += (to - from) / this.lengthMs;
    if (marked.length === 0) {
      await this.saveNextWindowStart(to);
      return;
    }
    const fold = new LedgerFold();
    await forEachConcurrently([...Array(LEDGER_SHARDS).keys()], READ_CONCURRENCY, async (shard) => {
      for await (const item of queryItems(this.db, {
        TableName: this.config.tableName,
        KeyConditionExpression: '#pk = :pk AND #sk BETWEEN :from AND :to',
        ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey, '#sk': TABLE_KEYS.sortKey },
        ExpressionAttributeValues: {
          ':pk': { S: ledgerPk(shard) }, ':from': { S: isoSeconds(marked[0]) }, ':to': { S: isoSeconds(marked[marked.length - 1] + this.lengthMs) },
        },
        ConsistentRead: true,
      })) fold.add(item);
    });
    this.ledgerItemsRead += fold.itemsRead;
    this.voidsApplied += fold.voidsApplied;
    for (const start of marked) {
      const totals = fold.totals.get(isoSeconds(start));
      if (!totals) continue;
      const entries: PageEntry[] = [...totals.entries()].map(([key, total]) => {
        const [tenantId, metric] = JSON.parse(key) as [string, string];
        return [tenantId, metric, total.sum, total.count];
      });
      await this.closeWindowStart(start, entries);
    }
    await this.quarantineUnmatchedVoids(fold);
    await this.saveNextWindowStart(to);
  }

  private async closeWindowStart(start: number, entries: PageEntry[]): Promise<void> {
    const windowStart = isoSeconds(start);
    const closedAt = new Date(Date.now()).toISOString();
    const { groups, pages } = paginate(entries, TARGET_GROUP_BYTES, MAX_PAGE_BYTES);
    await forEachConcurrently(pages, 4, (page) => this.putOnce(closedPageItem(windowStart, page, closedAt)));
    await this.putOnce(closedIndexItem(windowStart, this.config.granularity, groups, entries.length, closedAt));
    this.windowsClosed += entries.length;
    await this.putClosedEvents(start, entries, closedAt);
  }

  /** Writes an item unless it exists: a closed window is written once and never changes. */
  private async putOnce(item: Item): Promise<void> {
    try {
      await this.db.send(new PutItemCommand({
        TableName: this.config.tableName,
        Item: item,
        ConditionExpression: 'attribute_not_exists(#pk)',
        ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey },
      }));
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
    }
  }

  private async putClosedEvents(start: number, entries: readonly PageEntry[], closedAt: string): Promise<void> {
    const windowStart = isoSeconds(start);
    const windowEnd = isoSeconds(start + this.lengthMs);
    const all: PutEventsRequestEntry[] = entries.map(([tenantId, metric, sum, count]) => ({
      EventBusName: this.config.eventBusArn,
      Source: WINDOW_CLOSED_EVENT.source,
      DetailType: WINDOW_CLOSED_EVENT.detailType,
      Time: new Date(closedAt),
      Detail: JSON.stringify({
        tenantId,
        metric,
        granularity: this.config.granularity,
        windowStart,
        windowEnd,
        sum,
        count,
        closedAt,
        windowId: windowIdOf(tenantId, metric, this.config.granularity, windowStart),
      }),
    }));
    const requests: PutEventsRequestEntry[][] = [];
    for (let i = 0; i < all.length; i += EVENTS_PER_REQUEST) requests.push(all.slice(i, i + EVENTS_PER_REQUEST));
    await forEachConcurrently(requests, 4, async (batch) => {
      let pending = batch;
      await withRetry(async () => {
        const res = await this.events.send(new PutEventsCommand({ Entries: pending }));
        if (!res.FailedEntryCount) return;
        pending = pending.filter((_, i) => res.Entries?.[i]?.ErrorCode);
        throw new Error(`PutEvents failed for ${pending.length} usageWindowClosed events: ${res.Entries?.find((e) => e.ErrorCode)?.ErrorCode}`);
      }, { attempts: 5, baseDelayMs: 100 });
    });
  }

  private async quarantineUnmatchedVoids(fold: LedgerFold): Promise<void> {
    if (fold.unmatchedVoids.length === 0) return;
    this.unmatchedVoids += fold.unmatchedVoids.length;
    const nowSec = Math.floor(Date.now() / 1000);
    const requests: WriteRequest[] = fold.unmatchedVoids.map((v) => ({
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
          [TABLE_KEYS.timeToLive]: { N: String(nowSec + this.config.quarantineRetentionSeconds) },
        },
      },
    }));
    await batchWriteAll(this.db, this.config.tableName, requests);
    for (const v of fold.unmatchedVoids) logger.warn('void quarantined: its record is not in its window', { windowStart: v.windowStart, tenantId: v.tenantId });
  }
}

/** The Lambda handler, invoked by the schedule rule. */
export async function handler(_event?: ScheduledEvent, context?: Context): Promise<CloseSummary> {
  const closer = new Closer(
    configFromEnv(),
    sdkClient(DynamoDBClient),
    sdkClient(EventBridgeClient),
    () => (context ? context.getRemainingTimeInMillis() > RESERVE_MS : true),
  );
  const summary = await closer.run();
  logger.info('windows closed', { ...summary });
  return summary;
}
