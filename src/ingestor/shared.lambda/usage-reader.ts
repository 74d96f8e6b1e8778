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
 * - `readTenantClosedWindowPage`: the same, a page at a time with an opaque
 *   cursor and an optional metric, for readers of long ranges (the usage API).
 * - `readOpenTotals`: a tenant's running totals of the windows not closed yet,
 *   computed from the ledger (they may still change until the window closes).
 *
 * Handler-side module (bundled into the consumer's handler); it uses the AWS SDK v3.
 */
import { AttributeValue, DynamoDBClient, GetItemCommand, QueryCommandInput } from '@aws-sdk/client-dynamodb';
import { Granularity, USAGE_READER_ENV, WINDOW_LENGTH_MS } from '../ingestor-contract';
import {
  CLOSED_ATTRIBUTES, CLOSED_INDEX_PK, closedPageSk, closedPagesPk, CLOSER_STATE_KEY, DEFAULT_LEDGER_KEYS, isoSeconds, ledgerPk,
  ledgerTenantPrefix, NEXT_WINDOW_START, TABLE_KEYS, tenantGroupOf,
} from '../layout';
import { forEachConcurrently, LedgerFold, PageEntry, queryItems, windowIdOf } from './ledger';

/** The `windowId` of a window (its `usageWindowClosed` event's and `ClosedWindow`'s), also for a window without records. */
export { windowIdOf };
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
  /** The ingestor's number of ledger keys (`ledgerKeys`). @default 64 */
  readonly ledgerKeys?: number;
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

/** Options of `readTenantClosedWindowPage`. */
export interface ReadTenantClosedWindowPageOptions {
  /** Windows whose start is at or after this time (ISO-8601). @default - from the first */
  readonly since?: string;
  /** Windows whose start is before this time (ISO-8601). @default - to the last */
  readonly until?: string;
  /** Only the windows of this metric. @default - every metric */
  readonly metric?: string;
  /** Continue after this cursor (from an earlier page of the same tenant, range and metric). */
  readonly cursor?: string;
  /** Most windows returned (1 to 10,000). @default 1000 */
  readonly limit?: number;
  /**
   * Most window starts looked at in one call: over a long range with little usage,
   * a page ends there (holding fewer than `limit` windows, possibly none) with a cursor.
   * @default 2000
   */
  readonly maxWindowStarts?: number;
}

/** A page of one tenant's closed windows. */
export interface TenantClosedWindowPage {
  /** By window start, then metric. */
  readonly windows: ClosedWindow[];
  /** Pass it to the next call; undefined once the range holds no more windows. */
  readonly cursor?: string;
}

/** A reader's refusal of its input (a cursor it never returned, a time that is not ISO-8601): the caller's mistake, not the store's. */
export class UsageReadInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageReadInputError';
  }
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

const WINDOW_START = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const isIndex = (n: unknown) => n === undefined || (typeof n === 'number' && Number.isSafeInteger(n) && n >= 0);

function decodeJson(cursor: string): unknown {
  try {
    return typeof cursor === 'string' && /^[A-Za-z0-9_-]*$/.test(cursor) ? JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a value is a plain object whose keys are all among `keys`. */
function isObjectOf(p: unknown, keys: readonly string[]): p is Record<string, unknown> {
  return typeof p === 'object' && p !== null && !Array.isArray(p) && Object.keys(p).every((k) => keys.includes(k));
}

function decodeCursor(cursor: string): Position {
  const p = decodeJson(cursor) as Position | undefined;
  if (isObjectOf(p, ['w', 'g', 'p', 'i', 'since'])
    && (p.w === undefined || (typeof p.w === 'string' && WINDOW_START.test(p.w)))
    && isIndex(p.g) && isIndex(p.p) && isIndex(p.i) && (p.since === undefined || typeof p.since === 'string')) return p;
  throw new UsageReadInputError(`Not a cursor of readClosedWindows: ${JSON.stringify(String(cursor).slice(0, 80))}; pass the cursor a previous call returned`);
}

/** Position of a tenant page cursor: the window start and metric of the last window returned (no metric: that window start is done). */
interface TenantPosition {
  readonly w: string;
  readonly m?: string;
}

function decodeTenantCursor(cursor: string): TenantPosition {
  const p = decodeJson(cursor) as TenantPosition | undefined;
  if (isObjectOf(p, ['w', 'm']) && typeof p.w === 'string' && WINDOW_START.test(p.w)
    && (p.m === undefined || typeof p.m === 'string')) return p;
  throw new UsageReadInputError('Not a cursor of readTenantClosedWindowPage; pass the cursor a previous call returned');
}

/**
 * A bound of a range of window starts as a whole second, rounded up: window
 * starts are whole seconds, so `start >= t` and `start < t` hold exactly when
 * they hold for `t` rounded up. Refuses what is not a time.
 */
function isoOption(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (!Number.isFinite(ms)) throw new UsageReadInputError(`${name} ${JSON.stringify(String(value).slice(0, 80))} is not an ISO-8601 time`);
  return isoSeconds(Math.ceil(ms / 1000) * 1000);
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
      ledgerKeys: Number(env[USAGE_READER_ENV.LEDGER_KEYS] ?? DEFAULT_LEDGER_KEYS),
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
    if (sinceMs !== undefined && !Number.isFinite(sinceMs)) throw new UsageReadInputError(`since ${JSON.stringify(position.since)} is not an ISO-8601 time`);
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

  /**
   * One page of a tenant's closed windows whose start is in [since, until), by
   * window start then metric, at most `limit`, after `cursor`. Reads the closed
   * window index from the cursor on (64 window starts per request) and the
   * tenant's group of each window start (8 at once), and stops at `limit`
   * windows or `maxWindowStarts` window starts, whichever comes first: a page
   * costs what it returns, however long the range. Every window of the range
   * is returned exactly once over the pages, in order.
   */
  public async readTenantClosedWindowPage(tenantId: string, opts: ReadTenantClosedWindowPageOptions = {}): Promise<TenantClosedWindowPage> {
    const limit = Math.min(Math.max(Math.floor(opts.limit ?? 1000), 1), MAX_LIMIT);
    const budget = Math.max(Math.floor(opts.maxWindowStarts ?? 2000), 1);
    const after = opts.cursor !== undefined ? decodeTenantCursor(opts.cursor) : undefined;
    const since = isoOption('since', opts.since);
    const until = isoOption('until', opts.until);
    const from = after ? after.w : since;
    const index = queryItems(this.client, {
      TableName: this.options.tableName,
      KeyConditionExpression: from !== undefined ? '#pk = :pk AND #sk >= :from' : '#pk = :pk',
      ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey, ...(from !== undefined ? { '#sk': TABLE_KEYS.sortKey } : {}) },
      ExpressionAttributeValues: { ':pk': { S: CLOSED_INDEX_PK }, ...(from !== undefined ? { ':from': { S: from } } : {}) },
      ConsistentRead: true,
      Limit: 64,
    });
    const windows: ClosedWindow[] = [];
    let looked = 0;
    let last: TenantPosition | undefined = after;
    let chunk: Record<string, AttributeValue>[] = [];
    let exhausted = false;
    const flush = async (): Promise<boolean> => {
      const found: ClosedWindow[][] = chunk.map(() => []);
      await forEachConcurrently([...chunk.keys()], 8, async (n) => {
        found[n] = await this.tenantWindowsOf(chunk[n], tenantId, opts.metric);
      });
      for (const [n, entry] of chunk.entries()) {
        const windowStart = entry[TABLE_KEYS.sortKey].S!;
        for (const w of found[n].sort((a, b) => (a.metric < b.metric ? -1 : a.metric > b.metric ? 1 : 0))) {
          if (after && windowStart === after.w && (after.m === undefined || w.metric <= after.m)) continue;
          windows.push(w);
          last = { w: windowStart, m: w.metric };
          if (windows.length === limit) return true;
        }
        last = { w: windowStart };
      }
      chunk = [];
      return false;
    };
    for (;;) {
      const next = await index.next();
      const entry = next.done ? undefined : next.value;
      const windowStart = entry?.[TABLE_KEYS.sortKey].S;
      const done = entry === undefined || (until !== undefined && windowStart! >= until);
      if (done) exhausted = true;
      else if (!(after && after.m === undefined && windowStart === after.w)) chunk.push(entry);
      if (done || chunk.length === 8 || looked + chunk.length >= budget) {
        looked += chunk.length;
        if (await flush()) {
          await index.return(undefined);
          return { windows, cursor: encodeCursor(last as Position) };
        }
        if (done || looked >= budget) break;
      }
    }
    await index.return(undefined);
    if (exhausted) return { windows, cursor: undefined };
    return { windows, cursor: last ? encodeCursor(last as Position) : opts.cursor };
  }

  /** A tenant's closed windows of one window start (its index entry), of one metric or all. */
  private async tenantWindowsOf(entry: Record<string, AttributeValue>, tenantId: string, metric?: string): Promise<ClosedWindow[]> {
    const group = tenantGroupOf(tenantId, Number(entry[CLOSED_ATTRIBUTES.groups].N));
    const found: ClosedWindow[] = [];
    for await (const page of this.pages(entry[TABLE_KEYS.sortKey].S!, group)) {
      for (const e of JSON.parse(page[CLOSED_ATTRIBUTES.windows].S!) as PageEntry[]) {
        if (e[0] === tenantId && (metric === undefined || e[1] === metric)) found.push(this.closedWindow(entry, page, e));
      }
    }
    return found;
  }

  /** A tenant's running totals of the windows not closed yet, from the ledger (one query per ledger key and window start). */
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
      for (let shard = 0; shard < (this.options.ledgerKeys ?? DEFAULT_LEDGER_KEYS); shard++) queries.push([start, shard]);
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
