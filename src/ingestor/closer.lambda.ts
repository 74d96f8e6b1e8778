/**
 * The usage closer, run on a schedule: closes every window whose `closesAt`
 * plus the closing margin has passed, once and for good.
 *
 * - **No overlap.** A run first takes a lease on the closer's state item (a
 *   conditional write that also reads the state, in place of a plain read); a
 *   run that finds the lease held by another returns at once. The lease is
 *   given back by the run's last state write, and lapses after the function's
 *   timeout should the run die.
 * - **Bounded start.** Without a state (its first run), the closer starts at
 *   the first window marker no older than the ledger's retention (ledger items
 *   expire 7 days after their window's `closesAt`: nothing older is left to
 *   close), and aggregators write no marker for a window already closed.
 * - **In one run** (what small and mid-sized ingestors do): for the window
 *   starts not closed yet it reads each ledger key with one query over the
 *   range, folds the items into exact SUM and COUNT per tenant, metric and
 *   window (voids taken out), and for each window start writes
 *   1. the closed window pages (conditional Put: written once),
 *   2. the window start's index item, which makes its windows readable
 *      (settled) through the usage read contract,
 *   3. one `usageWindowClosed` event per window on the event bus (at least once:
 *      a rerun after a crash puts them again; consumers deduplicate by `windowId`),
 *   then advances its state. A void whose record is not in its window is
 *   quarantined `VOID_UNMATCHED`.
 * - **Fanned out** (a window start with more ledger items than one run folds in
 *   its budget, known from the last window start's size or found when the run's
 *   own fold runs out of its budget): the window start becomes a job on the
 *   state item and its work goes to the closing workers through the closing
 *   queue (`shared.lambda/closing-job.ts`); later window starts wait for it, so
 *   window starts are closed in order. A run that finds a job stalled sends
 *   its missing work again.
 */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { AttributeValue, DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { Context, ScheduledEvent } from 'aws-lambda';
import { CLOSER_ENV, CloserEvent, METRICS, WINDOW_LENGTH_MS } from './ingestor-contract';
import {
  CLOSER_STATE, CLOSER_STATE_KEY, isoSeconds, NEXT_WINDOW_START, parseWindowMarkerSk, TABLE_KEYS, WINDOW_MARKERS_PK,
} from './layout';
import { ClosingConfig, foldLedgerKey, putClosedEvents, putClosedIndex, putClosedPages, quarantineUnmatchedVoids } from './shared.lambda/closing';
import { ClosingJob, ClosingWork, foldMessages, jobAttribute, jobOf, MAX_PARTITIONS, sendClosingMessages } from './shared.lambda/closing-job';
import { forEachConcurrently, LedgerFold, MAX_PAGE_BYTES, paginate, PageEntry, queryItems, TARGET_GROUP_BYTES } from './shared.lambda/ledger';
import { splitSegments } from './shared.lambda/partials';
import { windowSettingsFromEnv, WindowSettings } from './shared.lambda/settings';
import { sdkClient } from '../shared.lambda/aws-clients';
import { isConditionalCheckFailed } from '../shared.lambda/dynamodb';
import { numberEnv, requiredEnv } from '../shared.lambda/env';
import { logger } from '../shared.lambda/logger';

/** Most window starts folded in one pass (one query per ledger key covers them all), when the last window start was small. */
const WINDOW_STARTS_PER_PASS = 24;
/** Ledger keys read at once. */
const READ_CONCURRENCY = 8;
/** Stop starting passes when less time than this is left (ms). */
const RESERVE_MS = 60_000;
/** The closer's own fold of a pass stops after this long (ms) and hands its first window start to the fan-out. */
const INLINE_BUDGET_MS = 180_000;
/** How long a lease lasts (ms): longer than the function's timeout (10 minutes). */
const LEASE_MS = 11 * 60_000;
/** A fan-out job that has not moved on for this long (ms) is tended: its missing work is sent again. */
const JOB_STALL_MS = 20 * 60_000;

const metrics = new Metrics();
/** The closer state this execution environment saved last, per table (it only ever moves forward). */
const KNOWN_STATE = new Map<string, number>();

interface Config extends WindowSettings {
  readonly closingMarginSeconds: number;
  readonly eventBusArn: string;
  readonly ledgerKeys: number;
  readonly ledgerRetentionSeconds: number;
  /** From the schedule's event: undefined when the closer is run by hand (it then closes only what one run can). */
  readonly queueUrl?: string;
  readonly fanOutItems: number;
  readonly segmentItems: number;
}

function configFromEnv(event?: CloserEvent): Config {
  return {
    ...windowSettingsFromEnv(),
    closingMarginSeconds: numberEnv(CLOSER_ENV.CLOSING_MARGIN_SECONDS, { min: 0, integer: true }),
    eventBusArn: requiredEnv(CLOSER_ENV.EVENT_BUS_ARN),
    ledgerKeys: numberEnv(CLOSER_ENV.LEDGER_KEYS, { min: 1, integer: true }),
    ledgerRetentionSeconds: numberEnv(CLOSER_ENV.LEDGER_RETENTION_SECONDS, { min: 0, integer: true }),
    queueUrl: event?.closingQueueUrl,
    fanOutItems: numberEnv(CLOSER_ENV.FAN_OUT_ITEMS, { min: 0, integer: true }),
    segmentItems: numberEnv(CLOSER_ENV.SEGMENT_ITEMS, { min: 1, integer: true }),
  };
}

/** What a run did. */
export interface CloseSummary {
  /** Window starts closed by this run (with or without records). */
  readonly windowStartsClosed: number;
  /** Windows (tenant, metric, window start) closed by this run. */
  readonly windowsClosed: number;
  readonly voidsApplied: number;
  readonly unmatchedVoids: number;
  readonly ledgerItemsRead: number;
  /** Every window starting before this is closed (ISO). */
  readonly nextWindowStart: string;
  /** Whether the run stopped for lack of time with windows still to close. */
  readonly stoppedEarly: boolean;
  /** Whether another run held the lease (this run did nothing). */
  readonly leaseHeld: boolean;
  /** The window start this run handed to the closing fan-out, or the one whose job it found running. */
  readonly fanOut?: string;
}

/** More of a state write. */
interface StateUpdate {
  readonly set?: string[];
  readonly names?: Record<string, string>;
  readonly values?: Record<string, AttributeValue>;
}

/** Why a pass did not close its window starts itself. */
interface FanOutNeeded {
  readonly windowStartMs: number;
  readonly ledgerKeys: number;
  /** Estimated ledger items of the window start. */
  readonly items: number;
}

class Closer {
  private windowStartsClosed = 0;
  private windowsClosed = 0;
  private voidsApplied = 0;
  private unmatchedVoids = 0;
  private ledgerItemsRead = 0;
  /** The state as stored: every window before it is closed. */
  private saved: number | undefined;
  /** Ledger items of the last window start closed (the state's hint). */
  private lastItems: number | undefined;
  private readonly lengthMs: number;
  private readonly leaseId = `${Date.now()}-${Math.random().toString(36).slice(2)}`;
  private leased = false;

  constructor(
    private readonly config: Config,
    private readonly db: DynamoDBClient,
    private readonly events: EventBridgeClient,
    private readonly sqs: SQSClient,
    private readonly hasTimeLeft: () => boolean,
  ) {
    this.lengthMs = WINDOW_LENGTH_MS[config.granularity];
  }

  private get closing(): ClosingConfig {
    return this.config;
  }

  public async run(): Promise<CloseSummary> {
    const now = Date.now();
    // Windows starting before `due` have passed closesAt plus the margin: nothing can be written into them any more.
    const due = Math.floor((now - (this.config.allowedLatenessSeconds + this.config.closingMarginSeconds) * 1000) / this.lengthMs) * this.lengthMs;
    // A warm run that knows nothing became due since it last saved its state reads nothing.
    const known = KNOWN_STATE.get(this.config.tableName);
    if (known !== undefined && known >= due) return this.summary(known, false, 0);
    const state = await this.acquireLease(now);
    if (!state) return { ...this.summary(known ?? due, false, 0, false), leaseHeld: true };
    this.saved = state[NEXT_WINDOW_START]?.N !== undefined ? Number(state[NEXT_WINDOW_START].N) : undefined;
    this.lastItems = state[CLOSER_STATE.ledgerItems]?.N !== undefined ? Number(state[CLOSER_STATE.ledgerItems].N) : undefined;
    const job = jobOf(state[CLOSER_STATE.job]);
    if (job) return this.tendJob(job, now, due);

    let from = Math.min(this.saved ?? (await this.firstWindowStart(now, due)), due);
    let stoppedEarly = false;
    let fanOut: FanOutNeeded | undefined;
    while (from < due) {
      if (!this.hasTimeLeft()) {
        stoppedEarly = true;
        break;
      }
      const perPass = this.lastItems !== undefined && this.lastItems * WINDOW_STARTS_PER_PASS > this.config.fanOutItems ? 1 : WINDOW_STARTS_PER_PASS;
      const to = Math.min(due, from + perPass * this.lengthMs);
      const result = await this.closeRange(from, to, to === due);
      if (result) {
        fanOut = result;
        from = result.windowStartMs;
        break;
      }
      from = to;
    }
    if (fanOut) {
      await this.startJob(fanOut, now);
    } else if (this.leased) {
      await this.saveState(from, true);
    }
    const lagMs = from < due ? now - (from + this.lengthMs + (this.config.allowedLatenessSeconds + this.config.closingMarginSeconds) * 1000) : 0;
    return { ...this.summary(from, stoppedEarly, lagMs), fanOut: fanOut ? isoSeconds(fanOut.windowStartMs) : undefined };
  }

  private summary(from: number, stoppedEarly: boolean, lagMs: number, publish = true): CloseSummary {
    if (publish) {
      metrics.addMetric(METRICS.WINDOWS_CLOSED, MetricUnit.Count, this.windowsClosed);
      metrics.addMetric(METRICS.VOIDS_APPLIED, MetricUnit.Count, this.voidsApplied);
      metrics.addMetric(METRICS.CLOSING_LAG_SECONDS, MetricUnit.Seconds, Math.max(0, Math.round(lagMs / 1000)));
      metrics.publishStoredMetrics();
    }
    return {
      windowStartsClosed: this.windowStartsClosed,
      windowsClosed: this.windowsClosed,
      voidsApplied: this.voidsApplied,
      unmatchedVoids: this.unmatchedVoids,
      ledgerItemsRead: this.ledgerItemsRead,
      nextWindowStart: isoSeconds(from),
      stoppedEarly,
      leaseHeld: false,
    };
  }

  /**
   * Takes the lease on the state item and returns the state (one conditional
   * write in place of a read); undefined when another run holds the lease.
   */
  private async acquireLease(now: number): Promise<Record<string, AttributeValue> | undefined> {
    try {
      const res = await this.db.send(new UpdateItemCommand({
        TableName: this.config.tableName,
        Key: stateKey(),
        UpdateExpression: 'SET #until = :until, #id = :id',
        ConditionExpression: 'attribute_not_exists(#until) OR #until < :now',
        ExpressionAttributeNames: { '#until': CLOSER_STATE.leaseUntil, '#id': CLOSER_STATE.leaseId },
        ExpressionAttributeValues: { ':until': { N: String(now + LEASE_MS) }, ':id': { S: this.leaseId }, ':now': { N: String(now) } },
        ReturnValues: 'ALL_NEW',
      }));
      this.leased = true;
      return res.Attributes ?? {};
    } catch (error) {
      if (isConditionalCheckFailed(error)) {
        logger.info('another closer run holds the lease: this run does nothing');
        return undefined;
      }
      throw error;
    }
  }

  /**
   * Saves the state: every window before `next` is closed (never moves back);
   * with `release`, gives the lease back in the same write. Only while this run
   * holds the lease.
   */
  private async saveState(next: number, release: boolean, extra: StateUpdate = {}): Promise<void> {
    const sets = ['#updated = :updated', ...(extra.set ?? [])];
    const values: Record<string, AttributeValue> = { ':updated': { S: new Date(Date.now()).toISOString() }, ':id': { S: this.leaseId }, ...extra.values };
    const names: Record<string, string> = { '#updated': 'updatedAt', '#id': CLOSER_STATE.leaseId, ...extra.names };
    if (next !== this.saved) {
      sets.push('#next = :next');
      names['#next'] = NEXT_WINDOW_START;
      values[':next'] = { N: String(next) };
      if (this.lastItems !== undefined) {
        sets.push('#items = :items');
        names['#items'] = CLOSER_STATE.ledgerItems;
        values[':items'] = { N: String(this.lastItems) };
      }
    }
    if (release) names['#until'] = CLOSER_STATE.leaseUntil;
    await this.db.send(new UpdateItemCommand({
      TableName: this.config.tableName,
      Key: stateKey(),
      UpdateExpression: `SET ${sets.join(', ')}${release ? ' REMOVE #until, #id' : ''}`,
      ConditionExpression: next !== this.saved ? '#id = :id AND (attribute_not_exists(#next) OR #next < :next)' : '#id = :id',
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    }));
    if (release) this.leased = false;
    if (next !== this.saved) {
      this.saved = next;
      KNOWN_STATE.set(this.config.tableName, next);
    }
  }

  /**
   * The first run's start: the first window marker of a window whose ledger
   * items can still be there (they expire `ledgerRetention` after the window's
   * closesAt), or `due` when there is none.
   */
  private async firstWindowStart(now: number, due: number): Promise<number> {
    const oldest = now - (this.config.ledgerRetentionSeconds + this.config.allowedLatenessSeconds) * 1000 - this.lengthMs;
    const bound = Math.ceil(oldest / this.lengthMs) * this.lengthMs;
    const [first] = await this.markedWindows(bound, due, 1);
    return first ? first[0] : due;
  }

  /** The window starts in [from, to) that have a marker, in order (at most `limit`), with the most ledger keys a marker names. */
  private async markedWindows(from: number, to: number, limit?: number): Promise<Array<[number, number]>> {
    const starts = new Map<number, number>();
    for await (const item of queryItems(this.db, {
      TableName: this.config.tableName,
      KeyConditionExpression: '#pk = :pk AND #sk BETWEEN :from AND :to',
      ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey, '#sk': TABLE_KEYS.sortKey },
      ExpressionAttributeValues: { ':pk': { S: WINDOW_MARKERS_PK }, ':from': { S: isoSeconds(from) }, ':to': { S: isoSeconds(to) } },
      ConsistentRead: true,
      Limit: limit,
    })) {
      const { startMs, ledgerKeys } = parseWindowMarkerSk(item[TABLE_KEYS.sortKey].S!);
      if (startMs < to) starts.set(startMs, Math.max(starts.get(startMs) ?? 0, ledgerKeys));
      if (limit !== undefined && starts.size >= limit) break;
    }
    return [...starts.entries()].sort(([a], [b]) => a - b);
  }

  /**
   * Closes the window starts in [from, to) in this run, or says which window
   * start to hand to the fan-out (the first with records, when the last window
   * start closed was large, or when this run's fold ran out of its budget).
   */
  private async closeRange(from: number, to: number, last: boolean): Promise<FanOutNeeded | undefined> {
    const marked = await this.markedWindows(from, to);
    if (marked.length === 0) {
      this.windowStartsClosed += (to - from) / this.lengthMs;
      await this.saveState(to, last);
      return undefined;
    }
    // Every ledger key a record of these window starts can be in (markers name the count they were written with).
    const keys = Math.max(this.config.ledgerKeys, ...marked.map(([, k]) => k));
    const first = marked[0][0];
    const forced = this.config.fanOutItems === 0;
    if (forced || (this.lastItems !== undefined && this.lastItems > this.config.fanOutItems)) {
      // Sized from the last window start; unknown (forced on a new table): one ledger key per segment.
      return { windowStartMs: first, ledgerKeys: keys, items: this.lastItems || keys * this.config.segmentItems };
    }
    const fold = new LedgerFold();
    const started = Date.now();
    let stopped = false;
    let keysDone = 0;
    // Only the budget decides: a pass starts with at least RESERVE_MS left, and a run that times out
    // loses nothing but its time (its state is saved per pass).
    const stop = () => stopped || (stopped = Date.now() - started > INLINE_BUDGET_MS);
    const lastStart = marked[marked.length - 1][0];
    await forEachConcurrently([...Array(keys).keys()], READ_CONCURRENCY, async (shard) => {
      if (stop()) return;
      if (await foldLedgerKey(this.db, this.config.tableName, shard, first, lastStart + this.lengthMs, fold, stop)) keysDone++;
    });
    if (stopped) {
      // Too large for this run: the fan-out closes the first window start (estimated from the keys read so far).
      const items = Math.ceil((fold.itemsRead * keys) / Math.max(1, keysDone));
      logger.info('window start too large for one closer run: fanned out', { windowStart: isoSeconds(first), estimatedItems: items });
      return { windowStartMs: first, ledgerKeys: keys, items };
    }
    this.windowStartsClosed += (to - from) / this.lengthMs;
    this.ledgerItemsRead += fold.itemsRead;
    this.voidsApplied += fold.voidsApplied;
    for (const [start] of marked) {
      const totals = fold.totals.get(isoSeconds(start));
      this.lastItems = fold.itemsByWindowStart.get(isoSeconds(start)) ?? 0;
      if (!totals) continue;
      const entries: PageEntry[] = [...totals.entries()].map(([key, total]) => {
        const [tenantId, metric] = JSON.parse(key) as [string, string];
        return [tenantId, metric, total.sum, total.count];
      });
      await this.closeWindowStart(start, entries);
    }
    this.unmatchedVoids += fold.unmatchedVoids.length;
    await quarantineUnmatchedVoids(this.db, this.closing, fold.unmatchedVoids);
    await this.saveState(to, last);
    return undefined;
  }

  private async closeWindowStart(start: number, entries: PageEntry[]): Promise<void> {
    const windowStart = isoSeconds(start);
    const closedAt = new Date(Date.now()).toISOString();
    const { groups, pages } = paginate(entries, TARGET_GROUP_BYTES, MAX_PAGE_BYTES);
    await putClosedPages(this.db, this.config.tableName, windowStart, pages, closedAt);
    await putClosedIndex(this.db, this.closing, windowStart, groups, entries.length, closedAt);
    this.windowsClosed += entries.length;
    await putClosedEvents(this.events, this.closing, start, entries, closedAt);
  }

  /** Hands a window start to the fan-out: the job on the state item (the lease given back in the same write), then its FOLD messages. */
  private async startJob(need: FanOutNeeded, now: number): Promise<void> {
    const segments = Math.min(need.ledgerKeys, Math.max(1, Math.ceil(need.items / this.config.segmentItems)));
    const segmentSize = Math.ceil(need.ledgerKeys / segments);
    const list = splitSegments([{ from: 0, to: need.ledgerKeys }], segmentSize);
    const job: ClosingJob = {
      windowStart: isoSeconds(need.windowStartMs),
      ledgerKeys: need.ledgerKeys,
      partitions: Math.min(MAX_PARTITIONS, list.length),
      segmentSize,
      phase: 'FOLD',
      startedAt: now,
    };
    const queueUrl = this.queueUrl();
    await this.saveState(need.windowStartMs, true, { set: ['#job = :job'], names: { '#job': CLOSER_STATE.job }, values: { ':job': jobAttribute(job) } });
    await sendClosingMessages(this.sqs, queueUrl, foldMessages(job, list, queueUrl));
    logger.info('closing fanned out', { ...job, segments: list.length });
  }

  /** The closing queue's URL, from the schedule's event. */
  private queueUrl(): string {
    if (!this.config.queueUrl) {
      throw new Error('this window start needs the closing fan-out, and the event has no closingQueueUrl: run the closer from its schedule rule '
        + '(its event carries the closing queue\'s URL)');
    }
    return this.config.queueUrl;
  }

  /** A job runs: nothing to do unless it stalled (then its missing work is sent again). Later window starts wait for it. */
  private async tendJob(job: ClosingJob, now: number, due: number): Promise<CloseSummary> {
    if (now - job.startedAt > JOB_STALL_MS) {
      logger.warn('closing job stalled: sending its missing work again', { ...job });
      await new ClosingWork(this.closing, { db: this.db, events: this.events, sqs: this.sqs }).tend(job, this.queueUrl());
      await this.saveState(this.saved ?? Date.parse(job.windowStart), true, {
        set: ['#job.#started = :started'], names: { '#job': CLOSER_STATE.job, '#started': 'startedAt' }, values: { ':started': { N: String(now) } },
      }).catch(async (error) => {
        // The job may have finished meanwhile (no job left to tend): just give the lease back.
        if (!isConditionalCheckFailed(error) && !String(error).includes('document path')) throw error;
        await this.saveState(this.saved ?? Date.parse(job.windowStart), true);
      });
    } else {
      await this.saveState(this.saved ?? Date.parse(job.windowStart), true);
    }
    const start = Date.parse(job.windowStart);
    const lagMs = start < due ? now - (start + this.lengthMs + (this.config.allowedLatenessSeconds + this.config.closingMarginSeconds) * 1000) : 0;
    return { ...this.summary(start, false, lagMs), fanOut: job.windowStart };
  }
}

function stateKey(): Record<string, AttributeValue> {
  return { [TABLE_KEYS.partitionKey]: { S: CLOSER_STATE_KEY.pk }, [TABLE_KEYS.sortKey]: { S: CLOSER_STATE_KEY.sk } };
}

/** The Lambda handler, invoked by the schedule rule. */
export async function handler(event?: CloserEvent | ScheduledEvent, context?: Context): Promise<CloseSummary> {
  const closer = new Closer(
    configFromEnv(event as CloserEvent | undefined),
    sdkClient(DynamoDBClient),
    sdkClient(EventBridgeClient),
    sdkClient(SQSClient),
    () => (context ? context.getRemainingTimeInMillis() > RESERVE_MS : true),
  );
  const summary = await closer.run();
  logger.info('windows closed', { ...summary });
  return summary;
}
