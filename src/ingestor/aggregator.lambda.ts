/**
 * The usage aggregator: reads usage records from the Kinesis data stream and
 * keeps exactly-once, per-tenant, per-metric, per-window SUM and COUNT in the
 * aggregate table (layout in `./layout.ts`).
 *
 * Exactly once: the records of one aggregate key are written in DynamoDB
 * transactions that hold, for each record, a conditional Put of its dedup mark
 * (`attribute_not_exists(pk)`) and one `ADD sum, count` on the aggregate. A
 * record whose mark exists was counted before and is dropped from the
 * transaction, which is retried with the rest; a crash between transactions
 * leaves each one either fully applied (and its records marked) or not at all.
 *
 * Malformed and late records never fail the batch: they go to the quarantine
 * with their reason and raw data. Only infrastructure errors are reported as
 * per-record failures, so the event source mapping retries (and bisects) them.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import {
  AttributeValue,
  BatchGetItemCommand,
  BatchWriteItemCommand,
  DynamoDBClient,
  TransactionCanceledException,
  TransactWriteItem,
  TransactWriteItemsCommand,
  WriteRequest,
} from '@aws-sdk/client-dynamodb';
import type { Context, KinesisStreamBatchResponse, KinesisStreamEvent, KinesisStreamRecord } from 'aws-lambda';
import {
  aggregatePkOf,
  closeBucketOf,
  closeSortKeyOf,
  DEDUP_SK,
  dedupPkOf,
  isoSeconds,
  quarantinePkOf,
  quarantineSkOf,
} from './layout';
import { Granularity, parseUsageRecord, QuarantineReason, sumDecimals, ValidRecord } from './shared.lambda/usage-record';

/** Environment variables the construct sets. */
export const ENV = {
  TABLE_NAME: 'AGGREGATE_TABLE_NAME',
  GRANULARITY: 'WINDOW_GRANULARITY',
  ALLOWED_LATENESS_SECONDS: 'ALLOWED_LATENESS_SECONDS',
  MAX_FUTURE_SKEW_SECONDS: 'MAX_FUTURE_SKEW_SECONDS',
  DEDUP_RETENTION_SECONDS: 'DEDUP_RETENTION_SECONDS',
  QUARANTINE_RETENTION_SECONDS: 'QUARANTINE_RETENTION_SECONDS',
} as const;

/** Name of the CloudWatch metric (EMF) counting quarantined records. */
export const QUARANTINED_METRIC = 'QuarantinedRecords';

/** DynamoDB's limit of items in one transaction. */
const MAX_TRANSACTION_ITEMS = 100;
/** Largest raw record kept in a quarantine item (DynamoDB items hold 400 KB). */
const MAX_RAW_BYTES = 300_000;
/** Transactions in flight at once per invocation. */
const CONCURRENCY = 16;
/** Attempts at one transaction cancelled by conflicts or throttling. */
const MAX_TRANSACTION_ATTEMPTS = 10;

/**
 * The DynamoDB client. Exported so that tests and the benchmark can add
 * middleware (request counting, fault injection) to the real SDK client.
 */
export const dynamodb = new DynamoDBClient({ maxAttempts: 6 });

const logger = new Logger();
const metrics = new Metrics();

interface Config {
  readonly tableName: string;
  readonly granularity: Granularity;
  readonly allowedLatenessSeconds: number;
  readonly maxFutureSkewMs: number;
  readonly dedupRetentionSeconds: number;
  readonly quarantineRetentionSeconds: number;
}

function numberEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number (given ${raw})`);
  return n;
}

function configFromEnv(): Config {
  const tableName = process.env[ENV.TABLE_NAME];
  if (!tableName) throw new Error(`${ENV.TABLE_NAME} is not set`);
  const granularity = (process.env[ENV.GRANULARITY] ?? 'HOUR') as Granularity;
  if (granularity !== 'HOUR' && granularity !== 'DAY') throw new Error(`${ENV.GRANULARITY} must be HOUR or DAY (given ${granularity})`);
  return {
    tableName,
    granularity,
    allowedLatenessSeconds: numberEnv(ENV.ALLOWED_LATENESS_SECONDS, 3600),
    maxFutureSkewMs: numberEnv(ENV.MAX_FUTURE_SKEW_SECONDS, 300) * 1000,
    dedupRetentionSeconds: numberEnv(ENV.DEDUP_RETENTION_SECONDS, 7 * 86400),
    quarantineRetentionSeconds: numberEnv(ENV.QUARANTINE_RETENTION_SECONDS, 90 * 86400),
  };
}

/** What became of one record. */
type Outcome = 'COUNTED' | 'DUPLICATE' | 'QUARANTINED' | 'FAILED';

interface Quarantine {
  readonly record: KinesisStreamRecord;
  readonly reason: QuarantineReason;
  readonly detail: string;
  readonly tenantId?: string;
}

interface Counted {
  readonly record: KinesisStreamRecord;
  readonly usage: ValidRecord;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++];
      await work(item);
    }
  });
  await Promise.all(runners);
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Processes a batch and tells what became of each record, keyed by sequence number. */
class BatchRun {
  readonly outcomes = new Map<string, Outcome>();
  readonly quarantine: Quarantine[] = [];
  private readonly nowMs = Date.now();

  constructor(private readonly config: Config) {}

  async run(records: readonly KinesisStreamRecord[]): Promise<void> {
    const seen = new Set<string>();
    const groups = new Map<string, Counted[]>();
    const lateCandidates: Counted[] = [];
    for (const record of records) {
      const arrivalMs = Math.round(record.kinesis.approximateArrivalTimestamp * 1000);
      const parsed = parseUsageRecord(Buffer.from(record.kinesis.data, 'base64'), {
        granularity: this.config.granularity,
        allowedLatenessSeconds: this.config.allowedLatenessSeconds,
        arrivalMs,
        maxFutureSkewMs: this.config.maxFutureSkewMs,
      });
      if (!parsed.ok) {
        this.quarantine.push({ record, reason: parsed.reason, detail: parsed.detail, tenantId: parsed.tenantId });
        continue;
      }
      const usage = parsed.record;
      const dedupKey = `${usage.tenantId}\u0000${usage.id}`;
      if (seen.has(dedupKey)) {
        // A duplicate within the batch: the first occurrence decides.
        this.outcomes.set(record.kinesis.sequenceNumber, 'DUPLICATE');
        continue;
      }
      seen.add(dedupKey);
      if (this.nowMs >= usage.closesAt * 1000) {
        lateCandidates.push({ record, usage });
        continue;
      }
      const key = `${usage.tenantId}\u0000${usage.aggregateSk}`;
      const group = groups.get(key) ?? [];
      group.push({ record, usage });
      groups.set(key, group);
    }

    const units: Counted[][] = [];
    for (const group of groups.values()) units.push(...chunk(group, MAX_TRANSACTION_ITEMS - 1));
    await pool(units, CONCURRENCY, async (unit) => {
      try {
        await this.countOnce(unit, lateCandidates);
      } catch (e) {
        logger.error('transaction failed; records will be retried', { error: e as Error, records: unit.length });
        for (const c of unit) this.outcomes.set(c.record.kinesis.sequenceNumber, 'FAILED');
      }
    });

    await this.sortLate(lateCandidates);
    await this.writeQuarantine();
  }

  /** Counts a unit of one aggregate key's records exactly once. */
  private async countOnce(unit: readonly Counted[], late: Counted[]): Promise<void> {
    let pending = [...unit];
    for (let attempt = 1; pending.length > 0; attempt++) {
      try {
        await dynamodb.send(new TransactWriteItemsCommand({ TransactItems: this.transaction(pending) }));
        for (const c of pending) this.outcomes.set(c.record.kinesis.sequenceNumber, 'COUNTED');
        return;
      } catch (e) {
        if (!(e instanceof TransactionCanceledException) && (e as Error).name !== 'TransactionCanceledException') throw e;
        const reasons = (e as TransactionCanceledException).CancellationReasons ?? [];
        const already = new Set<number>();
        pending.forEach((_, i) => {
          if (reasons[i]?.Code === 'ConditionalCheckFailed') already.add(i);
        });
        const windowClosed = reasons[pending.length]?.Code === 'ConditionalCheckFailed';
        for (const i of already) this.outcomes.set(pending[i].record.kinesis.sequenceNumber, 'DUPLICATE');
        pending = pending.filter((_, i) => !already.has(i));
        if (windowClosed) {
          // The window closed between our check and the write: the rest are late.
          late.push(...pending);
          return;
        }
        if (already.size === 0) {
          // Cancelled by a conflict or throttling: back off and try again.
          if (attempt >= MAX_TRANSACTION_ATTEMPTS) throw e;
          await sleep(Math.min(1000, 25 * 2 ** attempt) * (0.5 + Math.random()));
        }
      }
    }
  }

  private transaction(pending: readonly Counted[]): TransactWriteItem[] {
    const { tableName, granularity, dedupRetentionSeconds } = this.config;
    const nowSec = Math.floor(this.nowMs / 1000);
    const first = pending[0].usage;
    const items: TransactWriteItem[] = pending.map(({ usage, record }) => ({
      Put: {
        TableName: tableName,
        Item: {
          pk: { S: dedupPkOf(usage.tenantId, usage.id) },
          sk: { S: DEDUP_SK },
          tenantId: { S: usage.tenantId },
          recordId: { S: usage.id },
          aggregateSk: { S: usage.aggregateSk },
          value: { N: usage.value },
          sequenceNumber: { S: record.kinesis.sequenceNumber },
          countedAt: { N: String(nowSec) },
          expiresAt: { N: String(usage.closesAt + dedupRetentionSeconds) },
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    }));
    const windowStart = isoSeconds(first.windowStartMs);
    items.push({
      Update: {
        TableName: tableName,
        Key: { pk: { S: aggregatePkOf(first.tenantId) }, sk: { S: first.aggregateSk } },
        UpdateExpression:
          'SET tenantId = :t, metric = :m, granularity = :g, windowStart = :ws, windowEnd = :we, closesAt = :ca, ' +
          'closeBucket = :cb, closeSortKey = :cs, updatedAt = :now ADD #sum :s, #count :c',
        ConditionExpression: 'attribute_not_exists(pk) OR closesAt > :now',
        ExpressionAttributeNames: { '#sum': 'sum', '#count': 'count' },
        ExpressionAttributeValues: {
          ':t': { S: first.tenantId },
          ':m': { S: first.metric },
          ':g': { S: granularity },
          ':ws': { S: windowStart },
          ':we': { S: isoSeconds(first.windowEndMs) },
          ':ca': { N: String(first.closesAt) },
          ':cb': { S: closeBucketOf(first.closesAt) },
          ':cs': { S: closeSortKeyOf(first.closesAt, first.tenantId, first.metric, windowStart) },
          ':now': { N: String(nowSec) },
          ':s': { N: sumDecimals(pending.map((c) => c.usage.value)) },
          ':c': { N: String(pending.length) },
        },
      },
    });
    return items;
  }

  /** A late record already counted (its dedup mark exists) is a duplicate; the others are quarantined. */
  private async sortLate(late: readonly Counted[]): Promise<void> {
    if (late.length === 0) return;
    const found = new Set<string>();
    for (const part of chunk(late, 100)) {
      let keys: Record<string, AttributeValue>[] = part.map(({ usage }) => ({
        pk: { S: dedupPkOf(usage.tenantId, usage.id) },
        sk: { S: DEDUP_SK },
      }));
      for (let attempt = 1; keys.length > 0; attempt++) {
        const res = await dynamodb.send(
          new BatchGetItemCommand({
            RequestItems: { [this.config.tableName]: { Keys: keys, ProjectionExpression: 'pk', ConsistentRead: true } },
          }),
        );
        for (const item of res.Responses?.[this.config.tableName] ?? []) found.add(item.pk.S!);
        keys = (res.UnprocessedKeys?.[this.config.tableName]?.Keys ?? []) as Record<string, AttributeValue>[];
        if (keys.length > 0) {
          if (attempt >= MAX_TRANSACTION_ATTEMPTS) throw new Error('BatchGetItem left keys unprocessed');
          await sleep(Math.min(1000, 25 * 2 ** attempt));
        }
      }
    }
    for (const c of late) {
      if (found.has(dedupPkOf(c.usage.tenantId, c.usage.id))) {
        this.outcomes.set(c.record.kinesis.sequenceNumber, 'DUPLICATE');
      } else {
        this.quarantine.push({
          record: c.record,
          reason: 'LATE',
          detail:
            `window ${isoSeconds(c.usage.windowStartMs)}..${isoSeconds(c.usage.windowEndMs)} closed at ` +
            `${isoSeconds(c.usage.closesAt * 1000)}, before the record was processed at ${isoSeconds(this.nowMs)}`,
          tenantId: c.usage.tenantId,
        });
      }
    }
  }

  private async writeQuarantine(): Promise<void> {
    if (this.quarantine.length === 0) return;
    const nowSec = Math.floor(this.nowMs / 1000);
    const requests = this.quarantine.map((q): [Quarantine, WriteRequest] => {
      const k = q.record.kinesis;
      const arrivalMs = Math.round(k.approximateArrivalTimestamp * 1000);
      const raw = Buffer.from(k.data, 'base64');
      const utf8 = raw.toString('utf8');
      const isText = Buffer.from(utf8, 'utf8').equals(raw);
      const kept = raw.subarray(0, MAX_RAW_BYTES);
      const shardId = q.record.eventID.split(':')[0];
      const item: Record<string, AttributeValue> = {
        pk: { S: quarantinePkOf(arrivalMs) },
        sk: { S: quarantineSkOf(arrivalMs, shardId, k.sequenceNumber) },
        reason: { S: q.reason },
        detail: { S: q.detail },
        rawEncoding: { S: isText ? 'utf8' : 'base64' },
        raw: { S: isText ? kept.toString('utf8') : kept.toString('base64') },
        rawTruncated: { BOOL: raw.length > MAX_RAW_BYTES },
        partitionKey: { S: k.partitionKey },
        shardId: { S: shardId },
        sequenceNumber: { S: k.sequenceNumber },
        arrivedAt: { S: new Date(arrivalMs).toISOString() },
        quarantinedAt: { N: String(nowSec) },
        expiresAt: { N: String(nowSec + this.config.quarantineRetentionSeconds) },
      };
      if (q.tenantId) item.tenantId = { S: q.tenantId };
      return [q, { PutRequest: { Item: item } }];
    });
    // Put is idempotent (same key for the same record): a retried batch rewrites the same items.
    await pool(chunk(requests, 25), CONCURRENCY, async (part) => {
      let pending = part.map(([, r]) => r);
      try {
        for (let attempt = 1; pending.length > 0; attempt++) {
          const res = await dynamodb.send(new BatchWriteItemCommand({ RequestItems: { [this.config.tableName]: pending } }));
          pending = res.UnprocessedItems?.[this.config.tableName] ?? [];
          if (pending.length > 0) {
            if (attempt >= MAX_TRANSACTION_ATTEMPTS) throw new Error('BatchWriteItem left items unprocessed');
            await sleep(Math.min(1000, 25 * 2 ** attempt));
          }
        }
        for (const [q] of part) this.outcomes.set(q.record.kinesis.sequenceNumber, 'QUARANTINED');
      } catch (e) {
        logger.error('quarantine write failed; records will be retried', { error: e as Error });
        for (const [q] of part) this.outcomes.set(q.record.kinesis.sequenceNumber, 'FAILED');
      }
    });
  }
}

/** The Lambda handler, invoked by the Kinesis event source mapping. */
export async function handler(event: KinesisStreamEvent, context: Context): Promise<KinesisStreamBatchResponse> {
  const run = new BatchRun(configFromEnv());
  await run.run(event.Records);

  const counts: Record<Outcome, number> = { COUNTED: 0, DUPLICATE: 0, QUARANTINED: 0, FAILED: 0 };
  for (const o of run.outcomes.values()) counts[o]++;
  metrics.addMetric('RecordsCounted', MetricUnit.Count, counts.COUNTED);
  metrics.addMetric('DuplicateRecords', MetricUnit.Count, counts.DUPLICATE);
  metrics.addMetric(QUARANTINED_METRIC, MetricUnit.Count, counts.QUARANTINED);
  metrics.publishStoredMetrics();
  for (const q of run.quarantine) {
    logger.warn('record quarantined', { reason: q.reason, detail: q.detail, sequenceNumber: q.record.kinesis.sequenceNumber });
  }

  // Powertools reports the records whose writes failed, so that the event
  // source mapping retries from the first of them (and bisects the batch).
  return processPartialResponse(
    event,
    async (record: KinesisStreamRecord) => {
      const outcome = run.outcomes.get(record.kinesis.sequenceNumber);
      if (outcome === undefined || outcome === 'FAILED') {
        throw new Error(`record ${record.kinesis.sequenceNumber} was not written; it will be retried`);
      }
    },
    // One processor per invocation: its state must not be shared between batches.
    new BatchProcessor(EventType.KinesisDataStreams),
    { context },
  );
}
