/**
 * The usage read contract: how a consumer (a provider's usage push, a quota
 * check, a dashboard) reads usage from a usage ingestor, without knowing its
 * tables. A handler bound with `ingestor.bindUsageReader(fn)` gets the
 * environment `UsageReader.fromEnvironment()` reads, and the read access.
 *
 * - `readClosedWindows`: every closed window exactly as it was closed (final
 *   SUM and COUNT, never changed afterwards), oldest close first, page by page
 *   with an opaque, monotonic cursor. Only settled windows are returned, so a
 *   consumer that stores the cursor after handling a page sees every closed
 *   window at least once; keyed by `windowId`, it handles each exactly once.
 * - `readTenantClosedWindows`: one tenant's closed windows by window start
 *   (the final push when a tenant is offboarded).
 * - `readOpenTotals`: a tenant's running totals of the windows not closed yet,
 *   computed from the ledger (they may still change until the window closes).
 *
 * Handler-side module (bundled into the consumer's handler); it uses the AWS SDK v3.
 */
import { AttributeValue, DynamoDBClient, GetItemCommand, QueryCommandInput } from '@aws-sdk/client-dynamodb';
import { Granularity, USAGE_READER_ENV, WINDOW_LENGTH_MS } from '../ingestor-contract';
import {
  CLOSED_ATTRIBUTES, CLOSED_INDEX_PK, closedPageSk, closedPagesPk, CLOSER_STATE_KEY, isoSeconds, LEDGER_SHARDS, ledgerPk,
  ledgerTenantPrefix, NEXT_WINDOW_START, TABLE_KEYS, tenantGroupOf,
} from '../layout';
import { forEachConcurrently, LedgerFold, PageEntry, queryItems, windowIdOf } from './ledger';
import { granularityOf } from './settings';
import { sdkClient } from '../../shared.lambda/sdk-client';

/** A closed window: its final SUM and COUNT, which never change. */
export interface ClosedWindow {
  readonly tenantId: string;
  readonly metric: string;
  readonly granularity: Granularity;
  /** ISO-8601 UTC to the second: `2026-11-27T02:00:00Z`. */
  readonly windowStart: string;
  /** ISO-8601 UTC to the second, exclusive. */
  readonly windowEnd: string;
  /** When its final aggregate was written (ISO-8601). */
  readonly closedAt: string;
  /** Exact decimal string. */
  readonly sum: string;
  readonly count: number;
  /** Deterministic id of (tenant, metric, granularity, windowStart): `[A-Za-z0-9_-]`, 43 characters. */
  readonly windowId: string;
}

/** A page of closed windows and the cursor after it. */
export interface ClosedWindowPage {
  readonly windows: ClosedWindow[];
  /** Pass it to the next call; store it once the page is handled. */
  readonly cursor: string;
}

/** The running total of one of a tenant's open windows. */
export interface OpenWindowTotal {
  readonly tenantId: string;
  readonly metric: string;
  readonly granularity: Granularity;
  readonly windowStart: string;
  readonly windowEnd: string;
  /** From then on (plus the closing margin) the window is final (ISO-8601). */
  readonly closesAt: string;
  readonly sum: string;
  readonly count: number;
}

/** Where a `UsageReader` reads. */
export interface UsageReaderOptions {
  readonly tableName: string;
  readonly granularity: Granularity;
  readonly allowedLatenessSeconds: number;
  /** @default 300 */
  readonly maxClockSkewSeconds?: number;
  /** @default the shared DynamoDB client */
  readonly client?: DynamoDBClient;
}

/** Options of `readClosedWindows`. */
export interface ReadClosedWindowsOptions {
  /** Continue after this cursor (from an earlier page). */
  readonly cursor?: string;
  /** Without a cursor: the windows closed at or after this time (ISO-8601). @default - every closed window */
  readonly since?: string;
  /** Most windows returned. @default 1000 */
  readonly limit?: number;
}

/** Options of `readTenantClosedWindows`. */
export interface ReadTenantClosedWindowsOptions {
  /** The windows starting at or after this time (ISO-8601). @default - from the first closed window */
  readonly since?: string;
  /** The windows starting before this time (ISO-8601). @default - up to the last closed window */
  readonly until?: string;
}

/** Position of a cursor: the last window returned (window start, tenant group, page, entry), or where to start. */
interface Position {
  readonly w?: string;
  readonly g?: number;
  readonly p?: number;
  readonly i?: number;
  readonly since?: string;
}

const MAX_LIMIT = 10_000;
/** Most window starts `readOpenTotals` looks at (a closer far behind would make it read the ledger of days). */
const MAX_OPEN_WINDOW_STARTS = 48;

function encodeCursor(p: Position): string {
  return Buffer.from(JSON.stringify(p), 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): Position {
  try {
    const p = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as Position;
    if (typeof p === 'object' && p !== null && (p.w === undefined || typeof p.w === 'string')) return p;
  } catch {
    // fall through
  }
  throw new Error(`Not a cursor of readClosedWindows: ${JSON.stringify(cursor.slice(0, 80))}; pass the cursor a previous call returned`);
}

/** The usage read contract's reader. */
export class UsageReader {
  /**
   * The reader of the ingestor bound to this function (`ingestor.bindUsageReader(fn)`),
   * from the environment that binding set.
   */
  public static fromEnvironment(env: Readonly<Record<string, string | undefined>> = process.env): UsageReader {
    const read = (name: string) => {
      const v = env[name];
      if (v === undefined || v === '') {
        throw new Error(`Environment variable ${name} is not set: bind this function to a usage ingestor with ingestor.bindUsageReader(fn)`);
      }
      return v;
    };
    const granularity = granularityOf(USAGE_READER_ENV.WINDOW_GRANULARITY, read(USAGE_READER_ENV.WINDOW_GRANULARITY));
    return new UsageReader({
      tableName: read(USAGE_READER_ENV.TABLE_NAME),
      granularity,
      allowedLatenessSeconds: Number(read(USAGE_READER_ENV.ALLOWED_LATENESS_SECONDS)),
      maxClockSkewSeconds: Number(env[USAGE_READER_ENV.MAX_CLOCK_SKEW_SECONDS] ?? 300),
    });
  }

  private readonly client: DynamoDBClient;
  private readonly lengthMs: number;

  constructor(private readonly options: UsageReaderOptions) {
    this.client = options.client ?? sdkClient(DynamoDBClient);
    this.lengthMs = WINDOW_LENGTH_MS[options.granularity];
  }

  /**
   * Closed windows after `cursor`, oldest close first, at most `limit`.
   * Without a cursor, the windows closed at or after `since`.
   */
  public async readClosedWindows(opts: ReadClosedWindowsOptions = {}): Promise<ClosedWindowPage> {
    const limit = Math.min(Math.max(Math.floor(opts.limit ?? 1000), 1), MAX_LIMIT);
    let position: Position = opts.cursor ? decodeCursor(opts.cursor) : { since: opts.since };
    // Compared as instants, not as strings: `closedAt` carries milliseconds (`...:00.123Z`),
    // which sort before a `since` written without them (`...:00Z`) in the same second.
    const sinceMs = position.since === undefined ? undefined : Date.parse(position.since);
    if (sinceMs !== undefined && !Number.isFinite(sinceMs)) throw new Error(`since ${JSON.stringify(position.since)} is not an ISO-8601 time`);
    const windows: ClosedWindow[] = [];
    const index: QueryCommandInput = {
      TableName: this.options.tableName,
      KeyConditionExpression: position.w ? '#pk = :pk AND #sk >= :w' : '#pk = :pk',
      ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey, ...(position.w ? { '#sk': TABLE_KEYS.sortKey } : {}) },
      ExpressionAttributeValues: { ':pk': { S: CLOSED_INDEX_PK }, ...(position.w ? { ':w': { S: position.w } } : {}) },
      ConsistentRead: true,
    };
    for await (const entry of queryItems(this.client, index)) {
      const windowStart = entry[TABLE_KEYS.sortKey].S!;
      if (!position.w && sinceMs !== undefined && Date.parse(entry[CLOSED_ATTRIBUTES.closedAt].S!) < sinceMs) continue;
      const resume = position.w === windowStart ? position : undefined;
      const groups = Number(entry[CLOSED_ATTRIBUTES.groups].N);
      for (let group = resume?.g ?? 0; group < groups; group++) {
        const from = resume && group === resume.g ? resume.p : undefined;
        for await (const page of this.pages(windowStart, group, from)) {
          const pageNo = Number(page[TABLE_KEYS.sortKey].S!);
          const entries = JSON.parse(page[CLOSED_ATTRIBUTES.windows].S!) as PageEntry[];
          const first = resume && group === resume.g && pageNo === resume.p ? (resume.i ?? -1) + 1 : 0;
          for (let i = first; i < entries.length; i++) {
            windows.push(this.closedWindow(entry, page, entries[i]));
            position = { w: windowStart, g: group, p: pageNo, i };
            if (windows.length === limit) return { windows, cursor: encodeCursor(position) };
          }
        }
      }
    }
    return { windows, cursor: encodeCursor(position) };
  }

  /** One tenant's closed windows whose start is in [since, until), by window start then metric. */
  public async readTenantClosedWindows(tenantId: string, opts: ReadTenantClosedWindowsOptions = {}): Promise<ClosedWindow[]> {
    const conditions: string[] = ['#pk = :pk'];
    const values: Record<string, AttributeValue> = { ':pk': { S: CLOSED_INDEX_PK } };
    if (opts.since !== undefined && opts.until !== undefined) {
      conditions.push('#sk BETWEEN :since AND :until');
    } else if (opts.since !== undefined) {
      conditions.push('#sk >= :since');
    } else if (opts.until !== undefined) {
      conditions.push('#sk < :until');
    }
    if (opts.since !== undefined) values[':since'] = { S: isoSeconds(Date.parse(opts.since)) };
    if (opts.until !== undefined) values[':until'] = { S: isoSeconds(Date.parse(opts.until)) };
    const entries: Record<string, AttributeValue>[] = [];
    for await (const entry of queryItems(this.client, {
      TableName: this.options.tableName,
      KeyConditionExpression: conditions.join(' AND '),
      ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey, ...(conditions.length > 1 ? { '#sk': TABLE_KEYS.sortKey } : {}) },
      ExpressionAttributeValues: values,
      ConsistentRead: true,
    })) {
      if (opts.until === undefined || entry[TABLE_KEYS.sortKey].S! < values[':until'].S!) entries.push(entry);
    }
    const found: ClosedWindow[][] = entries.map(() => []);
    await forEachConcurrently([...entries.keys()], 8, async (n) => {
      const entry = entries[n];
      const group = tenantGroupOf(tenantId, Number(entry[CLOSED_ATTRIBUTES.groups].N));
      for await (const page of this.pages(entry[TABLE_KEYS.sortKey].S!, group)) {
        for (const e of JSON.parse(page[CLOSED_ATTRIBUTES.windows].S!) as PageEntry[]) {
          if (e[0] === tenantId) found[n].push(this.closedWindow(entry, page, e));
        }
      }
    });
    return found.flat();
  }

  /** A tenant's running totals of the windows not closed yet, from the ledger (one query per ledger shard and window start). */
  public async readOpenTotals(tenantId: string): Promise<OpenWindowTotal[]> {
    const now = Date.now();
    const state = await this.client.send(new GetItemCommand({
      TableName: this.options.tableName,
      Key: { [TABLE_KEYS.partitionKey]: { S: CLOSER_STATE_KEY.pk }, [TABLE_KEYS.sortKey]: { S: CLOSER_STATE_KEY.sk } },
      ConsistentRead: true,
    }));
    const lateness = this.options.allowedLatenessSeconds * 1000;
    const last = Math.floor((now + (this.options.maxClockSkewSeconds ?? 300) * 1000) / this.lengthMs) * this.lengthMs;
    const next = state.Item?.[NEXT_WINDOW_START]?.N;
    let from = next !== undefined ? Number(next) : Math.floor((now - lateness) / this.lengthMs) * this.lengthMs - this.lengthMs;
    from = Math.max(from, last - (MAX_OPEN_WINDOW_STARTS - 1) * this.lengthMs);
    const fold = new LedgerFold();
    const queries: Array<[number, number]> = [];
    for (let start = from; start <= last; start += this.lengthMs) {
      for (let shard = 0; shard < LEDGER_SHARDS; shard++) queries.push([start, shard]);
    }
    await forEachConcurrently(queries, 16, async ([start, shard]) => {
      for await (const item of queryItems(this.client, {
        TableName: this.options.tableName,
        KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
        ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey, '#sk': TABLE_KEYS.sortKey },
        ExpressionAttributeValues: { ':pk': { S: ledgerPk(shard) }, ':prefix': { S: ledgerTenantPrefix(isoSeconds(start), tenantId) } },
      })) fold.add(item);
    });
    const totals: OpenWindowTotal[] = [];
    for (const [windowStart, byKey] of [...fold.totals.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const start = Date.parse(windowStart);
      for (const [key, total] of byKey) {
        const [, metric] = JSON.parse(key) as [string, string];
        totals.push({
          tenantId,
          metric,
          granularity: this.options.granularity,
          windowStart,
          windowEnd: isoSeconds(start + this.lengthMs),
          closesAt: isoSeconds(start + this.lengthMs + lateness),
          sum: total.sum,
          count: total.count,
        });
      }
    }
    return totals;
  }

  /** The pages of one tenant group of a window start, from a page on. */
  private pages(windowStart: string, group: number, fromPage?: number): AsyncGenerator<Record<string, AttributeValue>> {
    return queryItems(this.client, {
      TableName: this.options.tableName,
      KeyConditionExpression: fromPage === undefined ? '#pk = :pk' : '#pk = :pk AND #sk >= :from',
      ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey, ...(fromPage === undefined ? {} : { '#sk': TABLE_KEYS.sortKey }) },
      ExpressionAttributeValues: {
        ':pk': { S: closedPagesPk(windowStart, group) },
        ...(fromPage === undefined ? {} : { ':from': { S: closedPageSk(fromPage) } }),
      },
      ConsistentRead: true,
    });
  }

  private closedWindow(
    index: Record<string, AttributeValue>, page: Record<string, AttributeValue>, [tenantId, metric, sum, count]: PageEntry,
  ): ClosedWindow {
    const windowStart = index[TABLE_KEYS.sortKey].S!;
    const granularity = index[CLOSED_ATTRIBUTES.granularity].S! as Granularity;
    return {
      tenantId,
      metric,
      granularity,
      windowStart,
      windowEnd: isoSeconds(Date.parse(windowStart) + WINDOW_LENGTH_MS[granularity]),
      closedAt: page[CLOSED_ATTRIBUTES.closedAt].S!,
      sum,
      count,
      windowId: windowIdOf(tenantId, metric, granularity, windowStart),
    };
  }
}
