/**
 * The documented layout of the usage ingestor's aggregate table. Shared by the
 * ingestor's construct and handler (writer) and by usage push handlers (readers).
 *
 * Table keys: partition key `pk` (S), sort key `sk` (S); TTL attribute `expiresAt`.
 *
 * | item        | pk                              | sk                                          |
 * |-------------|---------------------------------|---------------------------------------------|
 * | aggregate   | `AGG#<tenantId>`                | `<granularity>#<windowStartIso>#<metric>`   |
 * | dedup mark  | `DEDUP#<tenantId>#<recordId>`   | `DEDUP`                                     |
 * | quarantine  | `QUARANTINE#<YYYY-MM-DD>`       | `<arrivalIso>#<shardId>#<sequenceNumber>`   |
 *
 * Aggregate attributes: `tenantId`, `metric`, `granularity` (`HOUR` | `DAY`),
 * `windowStart` and `windowEnd` (ISO-8601 UTC), `closesAt` (epoch seconds:
 * window end plus the allowed lateness; from then on the window never changes),
 * `sum` (N), `count` (N), and the index keys below.
 *
 * Global secondary index `byCloseTime` (projection ALL) lists aggregates by the
 * hour in which they close: partition key `closeBucket` = `CLOSE#<YYYY-MM-DDTHH>`
 * (UTC hour of `closesAt`), sort key `closeSortKey` =
 * `<closesAt, 12 digits zero-padded>#<tenantId>#<metric>#<windowStartIso>`.
 * A reader finds every window closed by `now` by querying each bucket since its
 * last watermark with `closeSortKey <= <now, 12 digits>~`.
 */
export const AGGREGATE_LAYOUT = {
  partitionKey: 'pk',
  sortKey: 'sk',
  ttlAttribute: 'expiresAt',
  closeIndexName: 'byCloseTime',
  closeIndexPartitionKey: 'closeBucket',
  closeIndexSortKey: 'closeSortKey',
} as const;

/** Prefix of aggregate items' partition key. */
export const AGGREGATE_PK_PREFIX = 'AGG#';
/** Prefix of dedup marks' partition key. */
export const DEDUP_PK_PREFIX = 'DEDUP#';
/** Prefix of quarantined records' partition key. */
export const QUARANTINE_PK_PREFIX = 'QUARANTINE#';

/** `CLOSE#<YYYY-MM-DDTHH>` for an epoch-seconds close time. */
export function closeBucketOf(closesAtEpochSeconds: number): string {
  return `CLOSE#${new Date(closesAtEpochSeconds * 1000).toISOString().slice(0, 13)}`;
}

/** The `byCloseTime` sort key of an aggregate. */
export function closeSortKeyOf(closesAtEpochSeconds: number, tenantId: string, metric: string, windowStartIso: string): string {
  return `${String(closesAtEpochSeconds).padStart(12, '0')}#${tenantId}#${metric}#${windowStartIso}`;
}

/**
 * Granularity names stored in aggregates' `granularity` attribute and at the
 * head of their sort key.
 */
export const GRANULARITIES = ['HOUR', 'DAY'] as const;

/** Length of a window of each granularity, in milliseconds. */
export const WINDOW_LENGTH_MS: Record<(typeof GRANULARITIES)[number], number> = {
  HOUR: 3_600_000,
  DAY: 86_400_000,
};

/**
 * ISO-8601 UTC form used for `windowStart`, `windowEnd` and the aggregate
 * sort key: seconds precision, no milliseconds, `Z` suffix
 * (`2026-11-27T02:00:00Z`).
 */
export function isoSeconds(epochMs: number): string {
  return new Date(Math.floor(epochMs / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** The aggregate item's partition key: `AGG#<tenantId>`. */
export function aggregatePkOf(tenantId: string): string {
  return `${AGGREGATE_PK_PREFIX}${tenantId}`;
}

/** The aggregate item's sort key: `<granularity>#<windowStartIso>#<metric>`. */
export function aggregateSkOf(granularity: string, windowStartIso: string, metric: string): string {
  return `${granularity}#${windowStartIso}#${metric}`;
}

/** The dedup mark's partition key: `DEDUP#<tenantId>#<recordId>` (sort key is always `DEDUP`). */
export function dedupPkOf(tenantId: string, recordId: string): string {
  return `${DEDUP_PK_PREFIX}${tenantId}#${recordId}`;
}

/** The dedup mark's sort key. */
export const DEDUP_SK = 'DEDUP';

/** The quarantine item's partition key, by UTC day of arrival: `QUARANTINE#<YYYY-MM-DD>`. */
export function quarantinePkOf(arrivalEpochMs: number): string {
  return `${QUARANTINE_PK_PREFIX}${new Date(arrivalEpochMs).toISOString().slice(0, 10)}`;
}

/** The quarantine item's sort key: `<arrivalIso>#<shardId>#<sequenceNumber>`. */
export function quarantineSkOf(arrivalEpochMs: number, shardId: string, sequenceNumber: string): string {
  return `${new Date(arrivalEpochMs).toISOString()}#${shardId}#${sequenceNumber}`;
}
