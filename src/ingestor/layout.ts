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
