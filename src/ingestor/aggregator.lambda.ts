/**
 * The usage aggregator: reads usage records from the Kinesis data stream and
 * writes each valid record once into the ledger (layout in `./layout.ts`).
 *
 * - One ledger item per record, keyed by its tenant, window and id: a
 *   redelivered batch or a producer's resend overwrites its own item (an
 *   idempotent Put, BatchWriteItem 25 at a time, no transaction). Duplicates
 *   inside a batch are dropped before writing (the last occurrence wins).
 * - Lateness is judged at the time of each write request: an item whose window
 *   has reached `closesAt` is never written; the record is quarantined `LATE`
 *   (or dropped as a duplicate when the same record is in the ledger already).
 *   The closer reads a window only `closingMargin` after its `closesAt`, a
 *   margin longer than this function's timeout: nothing it reads can change.
 * - Whatever cannot be counted (unparseable, out of range, oversized, invalid
 *   Unicode, ...) is quarantined with its reason; only infrastructure errors
 *   fail records, which the event source mapping then retries. A record whose
 *   tenant id breaks the one identifier rule (`events/identifiers.ts`) is
 *   quarantined `INVALID_TENANT_ID`: no provider could onboard that tenant, so
 *   its usage is never metered.
 */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { AttributeValue, BatchGetItemCommand, BatchWriteItemCommand, DynamoDBClient, WriteRequest } from '@aws-sdk/client-dynamodb';
import type { KinesisStreamBatchResponse, KinesisStreamEvent, KinesisStreamRecord } from 'aws-lambda';
import { AGGREGATOR_ENV, METRICS } from './ingestor-contract';
import {
  isoSeconds, LEDGER_ATTRIBUTES, ledgerPk, ledgerShardOf, ledgerSk, quarantinePk, quarantineSk, TABLE_KEYS, WINDOW_MARKERS_PK, windowMarkerSk,
  windowOf,
} from './layout';
import { forEachConcurrently } from './shared.lambda/ledger';
import { windowSettingsFromEnv, WindowSettings } from './shared.lambda/settings';
import { describe, parseUsageRecord, QuarantineReason, UsageRecord, VoidRecord, wellFormed } from './shared.lambda/usage-record';
import { sdkClient } from '../shared.lambda/aws-clients';
import { compareDecimals } from '../shared.lambda/decimal';
import { batchWriteAll, BATCH_WRITE_LIMIT } from '../shared.lambda/dynamodb';
import { numberEnv } from '../shared.lambda/env';
import { logger } from '../shared.lambda/logger';
import { withRetry } from '../shared.lambda/retry';

/**
 * Largest `raw` a quarantine item keeps, in bytes of the stored string: the
 * record's first 31 KB as UTF-8 text, or, for data that is not UTF-8, its
 * first 23.25 KB as base64 (4 characters per 3 bytes: 31 KB too). The other
 * attributes take at most about 1.3 KB (`detail` 500 characters, the Kinesis
 * partition key 256, the tenant id 128, keys and names), so the item stays
 * within 33 KB: 33 write units.
 */
export const MAX_QUARANTINED_BYTES = 31 * 1024;
/** Bytes of data that is not UTF-8 kept (their base64 is `MAX_QUARANTINED_BYTES` long). */
const MAX_QUARANTINED_BINARY_BYTES = (MAX_QUARANTINED_BYTES / 4) * 3;
/** BatchWriteItem requests in flight at once per invocation. */
const CONCURRENCY = 4;
/** Attempts at items DynamoDB leaves unprocessed. */
const WRITE_ATTEMPTS = 10;

const metrics = new Metrics();
/** Window starts whose marker this execution environment wrote, per table. */
const MARKED_WINDOWS = new Map<string, Set<number>>();

interface Config extends WindowSettings {
  readonly maxClockSkewMs: number;
  readonly ledgerRetentionSeconds: number;
  readonly ledgerKeys: number;
}

function configFromEnv(): Config {
  return {
    ...windowSettingsFromEnv(),
    maxClockSkewMs: numberEnv(AGGREGATOR_ENV.MAX_CLOCK_SKEW_SECONDS, { min: 0, integer: true }) * 1000,
    ledgerRetentionSeconds: numberEnv(AGGREGATOR_ENV.LEDGER_RETENTION_SECONDS, { min: 0, integer: true }),
    ledgerKeys: numberEnv(AGGREGATOR_ENV.LEDGER_KEYS, { min: 1, integer: true }),
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

/** A ledger write of one record. */
interface LedgerWrite {
  readonly record: KinesisStreamRecord;
  readonly usage: UsageRecord | VoidRecord;
  readonly item: Record<string, AttributeValue>;
  readonly windowStartMs: number;
  readonly windowEndMs: number;
  readonly closesAtMs: number;
}

class UnprocessedItems extends Error {}

/** Processes one batch and tells what became of each record, by sequence number. */
class BatchRun {
  public readonly outcomes = new Map<string, Outcome>();
  public readonly quarantine: Quarantine[] = [];
  private readonly late: LedgerWrite[] = [];

  constructor(private readonly config: Config, private readonly client: DynamoDBClient) {}

  public async run(records: readonly KinesisStreamRecord[]): Promise<void> {
    // Duplicates inside the batch: one write per ledger key (its sort key names tenant, window and id: injective).
    const writes = new Map<string, LedgerWrite>();
    for (const record of records) {
      const arrivalMs = Math.round(record.kinesis.approximateArrivalTimestamp * 1000);
      const parsed = parseUsageRecord(Buffer.from(record.kinesis.data, 'base64'), { arrivalMs, maxClockSkewMs: this.config.maxClockSkewMs });
      if (!parsed.ok) {
        this.quarantine.push({ record, reason: parsed.reason, detail: parsed.detail, tenantId: parsed.tenantId });
        continue;
      }
      const write = this.ledgerWrite(record, parsed.record);
      const sk = write.item[TABLE_KEYS.sortKey].S!;
      const earlier = writes.get(sk);
      if (earlier) this.outcomes.set(earlier.record.kinesis.sequenceNumber, 'DUPLICATE');
      writes.set(sk, write);
    }

    const list = [...writes.values()];
    if (!(await this.markWindows(list))) {
      for (const w of list) this.outcomes.set(w.record.kinesis.sequenceNumber, 'FAILED');
      list.length = 0;
    }
    const chunks: LedgerWrite[][] = [];
    for (let i = 0; i < list.length; i += BATCH_WRITE_LIMIT) chunks.push(list.slice(i, i + BATCH_WRITE_LIMIT));
    await forEachConcurrently(chunks, CONCURRENCY, (chunk) => this.writeLedger(chunk));
    await this.sortLate();
    await this.writeQuarantine();
  }

  /**
   * Writes the marker of each window this execution environment has not
   * written into yet, before any record of it: the closer reads only windows
   * with a marker. Idempotent Puts, about one per window per environment. A
   * window that has reached `closesAt` gets no marker: its records are late
   * (quarantined, never written), so a record of long ago costs the closer
   * nothing.
   */
  private async markWindows(writes: readonly LedgerWrite[]): Promise<boolean> {
    const marked = MARKED_WINDOWS.get(this.config.tableName) ?? new Set<number>();
    MARKED_WINDOWS.set(this.config.tableName, marked);
    const fresh = new Map<number, number>();
    const now = Date.now();
    for (const w of writes) if (!marked.has(w.windowStartMs) && now < w.closesAtMs) fresh.set(w.windowStartMs, w.closesAtMs);
    if (fresh.size === 0) return true;
    try {
      await batchWriteAll(this.client, this.config.tableName, [...fresh].map(([startMs, closesAtMs]) => ({
        PutRequest: {
          Item: {
            [TABLE_KEYS.partitionKey]: { S: WINDOW_MARKERS_PK },
            [TABLE_KEYS.sortKey]: { S: windowMarkerSk(isoSeconds(startMs), this.config.ledgerKeys) },
            [TABLE_KEYS.timeToLive]: { N: String(Math.floor(closesAtMs / 1000) + this.config.ledgerRetentionSeconds) },
          },
        },
      })));
    } catch (error) {
      logger.error('could not write the window markers; the batch will be retried', { error: error as Error });
      return false;
    }
    for (const startMs of fresh.keys()) marked.add(startMs);
    return true;
  }

  private ledgerWrite(record: KinesisStreamRecord, usage: UsageRecord | VoidRecord): LedgerWrite {
    const { startMs, endMs, closesAtMs } = windowOf(this.config.granularity, usage.timestampMs, this.config.allowedLatenessSeconds);
    const isVoid = usage.kind === 'VOID';
    const recordId = isVoid ? usage.voids : usage.id;
    const item: Record<string, AttributeValue> = {
      [TABLE_KEYS.partitionKey]: { S: ledgerPk(ledgerShardOf(usage.tenantId, recordId, this.config.ledgerKeys)) },
      [TABLE_KEYS.sortKey]: { S: ledgerSk(isoSeconds(startMs), usage.tenantId, recordId, isVoid) },
      [TABLE_KEYS.timeToLive]: { N: String(Math.floor(closesAtMs / 1000) + this.config.ledgerRetentionSeconds) },
    };
    if (isVoid) {
      item[LEDGER_ATTRIBUTES.voidId] = { S: usage.id };
    } else {
      item[LEDGER_ATTRIBUTES.metric] = { S: usage.metric };
      item[LEDGER_ATTRIBUTES.value] = { N: usage.value };
    }
    return { record, usage, item, windowStartMs: startMs, windowEndMs: endMs, closesAtMs };
  }

  /** Writes a chunk; before every request, items whose window reached `closesAt` are set aside as late. */
  private async writeLedger(chunk: readonly LedgerWrite[]): Promise<void> {
    let left = [...chunk];
    try {
      await withRetry(async () => {
        const now = Date.now();
        this.late.push(...left.filter((w) => now >= w.closesAtMs));
        left = left.filter((w) => now < w.closesAtMs);
        if (left.length === 0) return;
        const res = await this.client.send(new BatchWriteItemCommand({
          RequestItems: { [this.config.tableName]: left.map((w) => ({ PutRequest: { Item: w.item } })) },
        }));
        const unprocessed = new Set((res.UnprocessedItems?.[this.config.tableName] ?? [])
          .map((r) => r.PutRequest?.Item?.[TABLE_KEYS.sortKey]?.S));
        for (const w of left) {
          if (!unprocessed.has(w.item[TABLE_KEYS.sortKey].S)) this.outcomes.set(w.record.kinesis.sequenceNumber, 'COUNTED');
        }
        left = left.filter((w) => unprocessed.has(w.item[TABLE_KEYS.sortKey].S));
        if (left.length > 0) throw new UnprocessedItems(`BatchWriteItem left ${left.length} items unprocessed`);
      }, { attempts: WRITE_ATTEMPTS, baseDelayMs: 50, retryable: (e) => e instanceof UnprocessedItems });
    } catch (error) {
      logger.error('ledger write failed; the records will be retried', { error: error as Error, records: left.length });
      for (const w of left) this.outcomes.set(w.record.kinesis.sequenceNumber, 'FAILED');
    }
  }

  /** A late record already in the ledger unchanged is a duplicate; any other is quarantined `LATE`. */
  private async sortLate(): Promise<void> {
    if (this.late.length === 0) return;
    const found = new Map<string, Record<string, AttributeValue>>();
    try {
      for (let i = 0; i < this.late.length; i += 100) {
        let keys = this.late.slice(i, i + 100).map((w) => ({
          [TABLE_KEYS.partitionKey]: w.item[TABLE_KEYS.partitionKey],
          [TABLE_KEYS.sortKey]: w.item[TABLE_KEYS.sortKey],
        }));
        await withRetry(async () => {
          const res = await this.client.send(new BatchGetItemCommand({
            RequestItems: { [this.config.tableName]: { Keys: keys, ConsistentRead: true } },
          }));
          for (const item of res.Responses?.[this.config.tableName] ?? []) found.set(item[TABLE_KEYS.sortKey].S!, item);
          keys = (res.UnprocessedKeys?.[this.config.tableName]?.Keys ?? []) as typeof keys;
          if (keys.length > 0) throw new UnprocessedItems(`BatchGetItem left ${keys.length} keys unprocessed`);
        }, { attempts: WRITE_ATTEMPTS, baseDelayMs: 50, retryable: (e) => e instanceof UnprocessedItems });
      }
    } catch (error) {
      logger.error('reading the ledger for late records failed; they will be retried', { error: error as Error, records: this.late.length });
      for (const w of this.late) this.outcomes.set(w.record.kinesis.sequenceNumber, 'FAILED');
      return;
    }
    for (const w of this.late) {
      const existing = found.get(w.item[TABLE_KEYS.sortKey].S!);
      const same = existing && (w.usage.kind === 'VOID' || (
        existing[LEDGER_ATTRIBUTES.metric]?.S === w.usage.metric
        && compareDecimals(existing[LEDGER_ATTRIBUTES.value].N!, w.usage.value) === 0));
      if (same) {
        this.outcomes.set(w.record.kinesis.sequenceNumber, 'DUPLICATE');
        continue;
      }
      const what = w.usage.kind === 'VOID' ? `void of record ${describe(w.usage.voids)}` : existing ? 'changed resend of a record counted' : 'record';
      this.quarantine.push({
        record: w.record,
        reason: 'LATE',
        detail: `${what}: window ${isoSeconds(w.windowStartMs)}..${isoSeconds(w.windowEndMs)} closed at ${isoSeconds(w.closesAtMs)}, `
          + `before the record could be written at ${new Date(Date.now()).toISOString()}`,
        tenantId: w.usage.tenantId,
      });
    }
  }

  private async writeQuarantine(): Promise<void> {
    if (this.quarantine.length === 0) return;
    const nowSec = Math.floor(Date.now() / 1000);
    const requests: WriteRequest[] = this.quarantine.map((q) => ({
      PutRequest: { Item: quarantineItem(q, nowSec, this.config.quarantineRetentionSeconds) },
    }));
    try {
      // Keys are the record's own (arrival, shard, sequence number): a retried batch rewrites the same items.
      await batchWriteAll(this.client, this.config.tableName, requests, { concurrency: CONCURRENCY });
      for (const q of this.quarantine) this.outcomes.set(q.record.kinesis.sequenceNumber, 'QUARANTINED');
    } catch (error) {
      logger.error('quarantine write failed; the records will be retried', { error: error as Error, records: this.quarantine.length });
      for (const q of this.quarantine) this.outcomes.set(q.record.kinesis.sequenceNumber, 'FAILED');
    }
  }
}

/** The quarantine item of a record: its reason, and as much of its data as fits (truncated to `MAX_QUARANTINED_BYTES`). */
function quarantineItem(q: Quarantine, nowSec: number, retentionSeconds: number): Record<string, AttributeValue> {
  const k = q.record.kinesis;
  const arrivalMs = Math.round(k.approximateArrivalTimestamp * 1000);
  const raw = Buffer.from(k.data, 'base64');
  const shardId = q.record.eventID.split(':')[0];
  let text: string | undefined;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    text = undefined;
  }
  const truncated = raw.length > (text !== undefined ? MAX_QUARANTINED_BYTES : MAX_QUARANTINED_BINARY_BYTES);
  let kept: string;
  if (text !== undefined) {
    // Cut on a character boundary: decode the first bytes leniently and drop a cut character.
    kept = truncated ? new TextDecoder('utf-8').decode(raw.subarray(0, MAX_QUARANTINED_BYTES)).replace(/\uFFFD$/, '') : text;
  } else {
    kept = raw.subarray(0, MAX_QUARANTINED_BINARY_BYTES).toString('base64');
  }
  const item: Record<string, AttributeValue> = {
    [TABLE_KEYS.partitionKey]: { S: quarantinePk(arrivalMs, k.sequenceNumber) },
    [TABLE_KEYS.sortKey]: { S: quarantineSk(arrivalMs, shardId, k.sequenceNumber) },
    reason: { S: q.reason },
    detail: { S: q.detail },
    rawEncoding: { S: text !== undefined ? 'utf8' : 'base64' },
    raw: { S: kept },
    rawBytes: { N: String(raw.length) },
    rawTruncated: { BOOL: truncated },
    partitionKey: { S: wellFormed(k.partitionKey) },
    shardId: { S: shardId },
    sequenceNumber: { S: k.sequenceNumber },
    arrivedAt: { S: new Date(arrivalMs).toISOString() },
    quarantinedAt: { N: String(nowSec) },
    [TABLE_KEYS.timeToLive]: { N: String(nowSec + retentionSeconds) },
  };
  if (q.tenantId) item.tenantId = { S: q.tenantId };
  return item;
}

/** The Lambda handler, invoked by the Kinesis event source mapping. */
export async function handler(event: KinesisStreamEvent): Promise<KinesisStreamBatchResponse> {
  const run = new BatchRun(configFromEnv(), sdkClient(DynamoDBClient));
  await run.run(event.Records);

  const counts: Record<Outcome, number> = { COUNTED: 0, DUPLICATE: 0, QUARANTINED: 0, FAILED: 0 };
  for (const o of run.outcomes.values()) counts[o]++;
  metrics.addMetric(METRICS.RECORDS_COUNTED, MetricUnit.Count, counts.COUNTED);
  metrics.addMetric(METRICS.DUPLICATE_RECORDS, MetricUnit.Count, counts.DUPLICATE);
  metrics.addMetric(METRICS.QUARANTINED_RECORDS, MetricUnit.Count, counts.QUARANTINED);
  metrics.publishStoredMetrics();
  for (const q of run.quarantine) {
    logger.warn('record quarantined', { reason: q.reason, detail: q.detail, sequenceNumber: q.record.kinesis.sequenceNumber });
  }

  // Records whose writes failed are reported, so that the event source mapping
  // retries from the first of them; when every record failed, the invocation fails.
  const failed = event.Records.filter((r) => (run.outcomes.get(r.kinesis.sequenceNumber) ?? 'FAILED') === 'FAILED');
  if (failed.length > 0 && failed.length === event.Records.length) {
    throw new Error(`none of the ${failed.length} records could be written; the batch will be retried`);
  }
  return { batchItemFailures: failed.map((r) => ({ itemIdentifier: r.kinesis.sequenceNumber })) };
}
