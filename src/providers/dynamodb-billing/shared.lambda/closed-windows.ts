/**
 * Where the push reads closed usage windows: the usage read contract of the
 * ingestor (`UsageReader.readClosedWindows`), whose shapes are repeated here
 * until `src/ingestor/shared.lambda/usage-reader.ts` lands.
 *
 * TEMPORARY: `AggregateIndexWindows` reads the UsageIngestor's aggregate table
 * through its close-time index, behind the same signature. When the usage read
 * contract lands, the push takes `UsageReader.fromEnvironment()` instead, the
 * construct calls `ingestor.bindUsageReader(fn)`, and this file goes.
 */
import { createHash } from 'node:crypto';
import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { AGGREGATE_LAYOUT, closeBucketOf } from '../../../ingestor/layout';
import { documentClient } from '../../../shared.lambda/aws-clients';

/** A usage window whose aggregate is final (the usage read contract). */
export interface ClosedWindow {
  readonly tenantId: string;
  readonly metric: string;
  readonly granularity: 'HOUR' | 'DAY';
  /** ISO-8601 UTC, seconds. */
  readonly windowStart: string;
  readonly windowEnd: string;
  /** When its final aggregate was written (ISO). */
  readonly closedAt: string;
  /** Exact decimal string. */
  readonly sum: string;
  readonly count: number;
  /** Deterministic id of (tenant, metric, granularity, windowStart). */
  readonly windowId: string;
}

/** A page of closed windows and the cursor after it. */
export interface ClosedWindowPage {
  readonly windows: ClosedWindow[];
  readonly cursor: string;
}

/** What the push needs of the usage read contract. */
export interface ClosedWindowSource {
  /**
   * Closed windows after `cursor` (opaque, monotonic), at most `limit`; without
   * a cursor, from `since` (ISO). Storing the returned cursor after handling the
   * page gives every closed window at least once.
   */
  readClosedWindows(opts: { cursor?: string; since?: string; limit?: number }): Promise<ClosedWindowPage>;
}

const HOUR = 3600;

interface IndexCursor {
  /** Epoch seconds of the close-time bucket (hour) being read. */
  readonly hour: number;
  readonly startKey?: Record<string, unknown>;
}

const encode = (c: IndexCursor) => Buffer.from(JSON.stringify(c)).toString('base64url');
const decode = (cursor: string) => JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as IndexCursor;
const text = (v: unknown) => String((v as { value?: unknown })?.value ?? v);

/**
 * TEMPORARY (see the file header): closed windows read through the aggregate
 * table's `byCloseTime` index, an hour bucket at a time. The cursor stays on
 * the hour still in progress, so its windows are read again by the next run.
 */
export class AggregateIndexWindows implements ClosedWindowSource {
  constructor(private readonly table: string, private readonly settleSeconds: number, private readonly nowSeconds: number) {}

  public async readClosedWindows(opts: { cursor?: string; since?: string; limit?: number }): Promise<ClosedWindowPage> {
    const at = opts.cursor ? decode(opts.cursor) : { hour: Math.floor(Date.parse(opts.since ?? new Date(0).toISOString()) / 1000 / HOUR) * HOUR };
    const cutoff = this.nowSeconds - this.settleSeconds;
    if (at.hour > cutoff) return { windows: [], cursor: encode({ hour: at.hour }) };
    const page = await documentClient().send(new QueryCommand({
      TableName: this.table,
      IndexName: AGGREGATE_LAYOUT.closeIndexName,
      KeyConditionExpression: '#b = :b AND #s <= :upper',
      ExpressionAttributeNames: { '#b': AGGREGATE_LAYOUT.closeIndexPartitionKey, '#s': AGGREGATE_LAYOUT.closeIndexSortKey },
      ExpressionAttributeValues: { ':b': closeBucketOf(at.hour), ':upper': `${String(cutoff).padStart(12, '0')}~` },
      ExclusiveStartKey: at.startKey,
      Limit: opts.limit,
    }));
    const windows: ClosedWindow[] = [];
    for (const indexed of page.Items ?? []) windows.push(await this.window(indexed));
    const hourIsOver = at.hour + HOUR <= cutoff;
    const next: IndexCursor = page.LastEvaluatedKey
      ? { hour: at.hour, startKey: page.LastEvaluatedKey }
      : { hour: hourIsOver ? at.hour + HOUR : at.hour };
    return { windows, cursor: encode(next) };
  }

  /** The window itself, read with a strongly consistent read (the index is eventually consistent). */
  private async window(indexed: Record<string, unknown>): Promise<ClosedWindow> {
    const { partitionKey, sortKey } = AGGREGATE_LAYOUT;
    const key = { [partitionKey]: indexed[partitionKey], [sortKey]: indexed[sortKey] };
    const { Item: w } = await documentClient().send(new GetCommand({ TableName: this.table, Key: key, ConsistentRead: true }));
    if (!w) throw new Error(`Aggregate ${JSON.stringify(key)} is in the index but not in the table`);
    const identity = [w.tenantId, w.metric, w.granularity, w.windowStart].map(String);
    return {
      tenantId: identity[0],
      metric: identity[1],
      granularity: identity[2] as ClosedWindow['granularity'],
      windowStart: identity[3],
      windowEnd: String(w.windowEnd),
      closedAt: new Date(Number(text(w.closesAt)) * 1000).toISOString(),
      sum: text(w.sum),
      count: Number(text(w.count ?? 0)),
      windowId: createHash('sha256').update(identity.join('\n')).digest('base64url').slice(0, 43),
    };
  }
}
