/**
 * The layout of the usage ingestor's table, shared by its construct, its
 * handlers (aggregator, closer) and the usage reader. Pure functions, no AWS
 * SDK. Nothing outside `src/ingestor` reads this table: consumers go through
 * the usage read contract (`shared.lambda/usage-reader.ts`).
 *
 * Table keys: partition key `pk` (S), sort key `sk` (S); TTL attribute `expiresAt`.
 * No index: every read is by key.
 *
 * | item | pk | sk | written by |
 * |---|---|---|---|
 * | ledger record | `L#<shard 00-(ledgerKeys-1)>` | `<windowStart>#<tenantId>#<encoded id>` | aggregator, one per record |
 * | ledger void | `L#<shard of the voided record>` | `<windowStart>#<tenantId>#<encoded voided id> V` | aggregator |
 * | closed window page | `CLOSED#<windowStart>#<tenant group, 4 digits>` | `<page, 4 digits>` | closer, once |
 * | closed window index | `CLOSED` | `<windowStart>` | closer, after the window's pages |
 * | window marker | `WINDOWS` | `<windowStart>#<ledgerKeys>` | aggregator, before its first write into a window not closed yet |
 * | closer state | `STATE` | `CLOSER` | closer (lease, progress, fan-out job), closing workers |
 * | fan-out partial page | `PART#<windowStart>#<partition, 4 digits>` | `<from>-<to>#<page>` (ledger keys [from, to), 4 digits each) | closing worker |
 * | fan-out segment done | `PART#<windowStart>` | `S#<from>-<to>` | closing worker, after the segment's pages |
 * | fan-out partition merged / announced | `PART#<windowStart>` | `M#<partition>` / `A#<partition>` | closing worker |
 * | quarantine | `QUARANTINE#<YYYY-MM-DD>#<00-15>` | `<arrivalIso>#<shardId>#<sequenceNumber>` | aggregator, closer |
 *
 * The ledger shard is a hash of `[tenantId, id]` modulo the number of ledger
 * keys (`ledgerKeys`, 64 to 1,024, fixed for the table's life), so one hot
 * tenant-metric spreads evenly over every key, and a record's resend lands on the item it
 * overwrites. The sort key starts with the window, so the closer reads a range
 * of windows from each shard with one query. Record ids are encoded (`%` as
 * `%%`, space as `%_`), so the ` V` suffix of a void follows its record's key
 * immediately in sort order.
 */
import { Granularity, WINDOW_LENGTH_MS } from './ingestor-contract';

/** Key and TTL attribute names of the table. */
export const TABLE_KEYS = {
  partitionKey: 'pk',
  sortKey: 'sk',
  timeToLive: 'expiresAt',
} as const;

/**
 * Number of ledger partition keys (`L#00` to `L#63`) unless the construct's
 * `ledgerKeys` says otherwise; also what a window marker without a count means
 * (markers written before the count was a setting).
 */
export const DEFAULT_LEDGER_KEYS = 64;
/** The range of `ledgerKeys`. */
export const LEDGER_KEYS_RANGE = { min: 64, max: 1024 } as const;

/** Attributes of ledger items besides the keys and `expiresAt`. */
export const LEDGER_ATTRIBUTES = {
  /** The record's metric (records only). */
  metric: 'm',
  /** The record's value, an exact decimal (records only). */
  value: 'v',
  /** The id of the void record (voids only). */
  voidId: 'vi',
} as const;

/** Suffix of a void's sort key after its voided record's key. */
export const VOID_SUFFIX = ' V';

/** 32-bit FNV-1a hash of a string's UTF-16 code units. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    // eslint-disable-next-line no-bitwise
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // eslint-disable-next-line no-bitwise
  return h >>> 0;
}

/** The ledger shard of a record (and of the voids of it), among `keys` ledger keys. */
export function ledgerShardOf(tenantId: string, recordId: string, keys: number = DEFAULT_LEDGER_KEYS): number {
  return fnv1a(JSON.stringify([tenantId, recordId])) % keys;
}

/** The partition key of a ledger shard. */
export function ledgerPk(shard: number): string {
  return `L#${String(shard).padStart(2, '0')}`;
}

/** A record id as it appears in a sort key: no space, `%` doubled (injective, order-keeping for voids). */
export function encodeRecordId(id: string): string {
  return id.replace(/%/g, '%%').replace(/ /g, '%_');
}

/** The inverse of `encodeRecordId`. */
export function decodeRecordId(encoded: string): string {
  return encoded.replace(/%(%|_)/g, (_, c: string) => (c === '%' ? '%' : ' '));
}

/** The sort key of a ledger record, or of a void of it. */
export function ledgerSk(windowStartIso: string, tenantId: string, recordId: string, isVoid = false): string {
  return `${windowStartIso}#${tenantId}#${encodeRecordId(recordId)}${isVoid ? VOID_SUFFIX : ''}`;
}

/** The parts of a ledger sort key. */
export interface LedgerKey {
  readonly windowStart: string;
  readonly tenantId: string;
  /** The record's id (for a void: the voided record's id). */
  readonly recordId: string;
  readonly isVoid: boolean;
}

/** Splits a ledger sort key (tenant ids and window starts hold no `#`). */
export function parseLedgerSk(sk: string): LedgerKey {
  const first = sk.indexOf('#');
  const second = sk.indexOf('#', first + 1);
  let rest = sk.slice(second + 1);
  const isVoid = rest.endsWith(VOID_SUFFIX);
  if (isVoid) rest = rest.slice(0, -VOID_SUFFIX.length);
  return { windowStart: sk.slice(0, first), tenantId: sk.slice(first + 1, second), recordId: decodeRecordId(rest), isVoid };
}

/** The sort key prefix of one tenant's ledger items in one window. */
export function ledgerTenantPrefix(windowStartIso: string, tenantId: string): string {
  return `${windowStartIso}#${tenantId}#`;
}

/** Partition key of the closed window index. */
export const CLOSED_INDEX_PK = 'CLOSED';

/** Partition key of the closed window pages of one tenant group of a window start. */
export function closedPagesPk(windowStartIso: string, group: number): string {
  return `${CLOSED_INDEX_PK}#${windowStartIso}#${String(group).padStart(4, '0')}`;
}

/** Sort key of a closed window page within its group. */
export function closedPageSk(page: number): string {
  return String(page).padStart(4, '0');
}

/** The page group of a tenant's closed windows, for a window start with `groups` groups. */
export function tenantGroupOf(tenantId: string, groups: number): number {
  return fnv1a(tenantId) % groups;
}

/** Attributes of closed window pages and index items. */
export const CLOSED_ATTRIBUTES = {
  /** Page: the windows, JSON `[[tenantId, metric, sum, count], ...]` sorted by tenant and metric. */
  windows: 'windows',
  /** Page and index: when the closer wrote it (ISO-8601). */
  closedAt: 'closedAt',
  /** Index: `HOUR` or `DAY`. */
  granularity: 'granularity',
  /** Index: number of tenant groups of the window start's pages. */
  groups: 'groups',
  /** Index: number of windows (tenant, metric) closed for the window start. */
  windowCount: 'windowCount',
} as const;

/**
 * Partition key of the window markers: sort key `<windowStart>#<ledgerKeys>`.
 * An aggregator writes a window's marker before its first ledger write into
 * that window (once per execution environment), and only for a window not
 * closed yet, so the closer reads only windows that have records. The count of
 * ledger keys the aggregator hashed with is part of the key: were `ledgerKeys`
 * ever changed, the closer would still read every key a record was written to.
 */
export const WINDOW_MARKERS_PK = 'WINDOWS';

/** The sort key of a window marker. */
export function windowMarkerSk(windowStartIso: string, ledgerKeys: number): string {
  return `${windowStartIso}#${ledgerKeys}`;
}

/** A window marker's window start (epoch ms) and ledger key count (`<windowStart>` alone: the 64 keys of old markers). */
export function parseWindowMarkerSk(sk: string): { readonly startMs: number; readonly ledgerKeys: number } {
  const [start, keys] = sk.split('#');
  return { startMs: Date.parse(start), ledgerKeys: keys === undefined ? DEFAULT_LEDGER_KEYS : Number(keys) };
}

/** Key of the closer's state item; attribute `nextWindowStart` (epoch ms): every window before it is closed. */
export const CLOSER_STATE_KEY = { pk: 'STATE', sk: 'CLOSER' } as const;
/** The closer state's attribute. */
export const NEXT_WINDOW_START = 'nextWindowStart';
/** Other attributes of the closer state. */
export const CLOSER_STATE = {
  /** Until when (epoch ms) a closer run holds the lease: runs never overlap. */
  leaseUntil: 'leaseUntil',
  /** Which run holds the lease. */
  leaseId: 'leaseId',
  /** Ledger items of the last window start closed (how the next one is closed: in one run, or fanned out). */
  ledgerItems: 'ledgerItems',
  /** The window start being closed by the fan-out (a map, `ClosingJob`), while it runs. */
  job: 'job',
} as const;

/** Prefix of the fan-out's partition keys. */
export const PARTIAL_PK_PREFIX = 'PART#';

const pad4 = (n: number) => String(n).padStart(4, '0');

/** Partition key of the fan-out's bookkeeping of a window start (segments done, partitions merged and announced). */
export function jobPk(windowStartIso: string): string {
  return `${PARTIAL_PK_PREFIX}${windowStartIso}`;
}

/** Partition key of the partial pages of one merge partition of a window start. */
export function partialPagesPk(windowStartIso: string, partition: number): string {
  return `${PARTIAL_PK_PREFIX}${windowStartIso}#${pad4(partition)}`;
}

/** A segment of ledger keys `[from, to)` as written in sort keys. */
export function segmentKey(from: number, to: number): string {
  return `${pad4(from)}-${pad4(to)}`;
}

/** Parses `segmentKey`. */
export function parseSegmentKey(key: string): { readonly from: number; readonly to: number } {
  const [from, to] = key.split('-');
  return { from: Number(from), to: Number(to) };
}

/** Sort key of a partial page: the segment it folds, and its page within the partition. */
export function partialPageSk(from: number, to: number, page: number): string {
  return `${segmentKey(from, to)}#${pad4(page)}`;
}

/** Sort key prefixes of the fan-out's markers under `jobPk`. */
export const JOB_MARKERS = {
  /** A segment's partial is complete: `S#<from>-<to>`. */
  segment: 'S#',
  /** A partition's closed pages are written: `M#<partition>`. */
  merged: 'M#',
  /** A partition's `usageWindowClosed` events are put: `A#<partition>`. */
  announced: 'A#',
} as const;

/** Sort key of a segment's done marker. */
export function segmentDoneSk(from: number, to: number): string {
  return `${JOB_MARKERS.segment}${segmentKey(from, to)}`;
}

/** Sort key of a partition's merged or announced marker. */
export function partitionMarkerSk(kind: 'merged' | 'announced', partition: number): string {
  return `${JOB_MARKERS[kind]}${pad4(partition)}`;
}

/** Number of quarantine partition keys per day. */
export const QUARANTINE_SPREAD = 16;

/** Prefix of quarantine partition keys. */
export const QUARANTINE_PK_PREFIX = 'QUARANTINE#';

/**
 * A quarantine partition key: the UTC day (of the record's arrival; of the
 * window for a void quarantined at close) and a spread from `spreadKey` (the
 * record's sequence number; the void's ledger key).
 */
export function quarantinePk(dayMs: number, spreadKey: string): string {
  const day = new Date(dayMs).toISOString().slice(0, 10);
  return `${QUARANTINE_PK_PREFIX}${day}#${String(fnv1a(spreadKey) % QUARANTINE_SPREAD).padStart(2, '0')}`;
}

/** The quarantine sort key of a record. */
export function quarantineSk(arrivalMs: number, shardId: string, sequenceNumber: string): string {
  return `${new Date(arrivalMs).toISOString()}#${shardId}#${sequenceNumber}`;
}

/** ISO-8601 UTC to the second (`2026-11-27T02:00:00Z`): window starts and ends. */
export function isoSeconds(epochMs: number): string {
  return new Date(Math.floor(epochMs / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** The window `[start, end)` that holds an event time, and when it closes (end plus lateness). */
export function windowOf(granularity: Granularity, timestampMs: number, allowedLatenessSeconds: number) {
  const len = WINDOW_LENGTH_MS[granularity];
  const startMs = Math.floor(timestampMs / len) * len;
  return { startMs, endMs: startMs + len, closesAtMs: startMs + len + allowedLatenessSeconds * 1000 };
}
