/**
 * The contract between the usage ingestor's construct and its handlers (the
 * aggregator, the closer) and the usage reader: the names one side sets and the
 * other reads, defined once. No AWS SDK here: constructs import this module too.
 */
import { IDENTIFIER_MAX_LENGTH } from '../events/identifiers';

/** Environment of the aggregator function. */
export const AGGREGATOR_ENV = {
  /** The usage table (ledger, closed windows, quarantine). */
  TABLE_NAME: 'USAGE_TABLE_NAME',
  /** `HOUR` or `DAY`. */
  WINDOW_GRANULARITY: 'WINDOW_GRANULARITY',
  /** The construct's `allowedLateness`, in seconds. */
  ALLOWED_LATENESS_SECONDS: 'ALLOWED_LATENESS_SECONDS',
  /** The construct's `maxClockSkew`, in seconds. */
  MAX_CLOCK_SKEW_SECONDS: 'MAX_CLOCK_SKEW_SECONDS',
  /** How long ledger items are kept after their window closes, in seconds. */
  LEDGER_RETENTION_SECONDS: 'LEDGER_RETENTION_SECONDS',
  /** How long quarantined records are kept, in seconds. */
  QUARANTINE_RETENTION_SECONDS: 'QUARANTINE_RETENTION_SECONDS',
} as const;

/** Environment of the closer function (it also reads the aggregator's window settings). */
export const CLOSER_ENV = {
  TABLE_NAME: AGGREGATOR_ENV.TABLE_NAME,
  WINDOW_GRANULARITY: AGGREGATOR_ENV.WINDOW_GRANULARITY,
  ALLOWED_LATENESS_SECONDS: AGGREGATOR_ENV.ALLOWED_LATENESS_SECONDS,
  QUARANTINE_RETENTION_SECONDS: AGGREGATOR_ENV.QUARANTINE_RETENTION_SECONDS,
  /** Seconds after a window's `closesAt` before the closer reads it: longer than the aggregator's longest run plus clock skew. */
  CLOSING_MARGIN_SECONDS: 'CLOSING_MARGIN_SECONDS',
  /** The ARN of the event bus `usageWindowClosed` events go to. */
  EVENT_BUS_ARN: 'EVENT_BUS_ARN',
} as const;

/**
 * Environment a consumer of the usage read contract (`UsageReader.fromEnvironment`)
 * reads; set by `bindUsageReader`. Prefixed so that it never collides with the
 * consumer's own variables.
 */
export const USAGE_READER_ENV = {
  TABLE_NAME: 'USAGE_READER_TABLE_NAME',
  WINDOW_GRANULARITY: 'USAGE_READER_WINDOW_GRANULARITY',
  ALLOWED_LATENESS_SECONDS: 'USAGE_READER_ALLOWED_LATENESS_SECONDS',
  MAX_CLOCK_SKEW_SECONDS: 'USAGE_READER_MAX_CLOCK_SKEW_SECONDS',
} as const;

/**
 * Names of the handlers' own metrics (namespace `METRIC_NAMESPACE`, dimension `service`): records
 * written to the ledger (records and voids), records dropped because the same record was written
 * already (in the batch, or before a window closed), records set aside in the quarantine, windows
 * the closer closed, voids it applied, and how long after it could be closed the oldest window
 * still open is (seconds).
 */
export const METRICS = {
  RECORDS_COUNTED: 'RecordsCounted',
  DUPLICATE_RECORDS: 'DuplicateRecords',
  QUARANTINED_RECORDS: 'QuarantinedRecords',
  WINDOWS_CLOSED: 'WindowsClosed',
  VOIDS_APPLIED: 'VoidsApplied',
  CLOSING_LAG_SECONDS: 'ClosingLagSeconds',
} as const;

/** CloudWatch namespace of the handlers' own metrics. */
export const METRIC_NAMESPACE = 'CdkSaasBilling/UsageIngestor';

/** The event the closer puts on the bus when a window closes. */
export const WINDOW_CLOSED_EVENT = {
  source: 'cdk-saas-billing.usage',
  detailType: 'usageWindowClosed',
} as const;

/** Window granularities, as stored and as set in the environment. */
export const GRANULARITIES = ['HOUR', 'DAY'] as const;
/** A window granularity. */
export type Granularity = (typeof GRANULARITIES)[number];

/** Length of a window of each granularity, in milliseconds. */
export const WINDOW_LENGTH_MS: Record<Granularity, number> = {
  HOUR: 3_600_000,
  DAY: 86_400_000,
};

/**
 * Limits of the usage record (they keep every ledger item under 1 KB). Ids,
 * tenant ids and metrics follow the one identifier rule (`events/identifiers.ts`):
 * ASCII, so their lengths in characters are their sizes in bytes.
 */
export const RECORD_LIMITS = {
  MAX_ID_BYTES: IDENTIFIER_MAX_LENGTH.recordId,
  MAX_TENANT_ID_BYTES: IDENTIFIER_MAX_LENGTH.tenantId,
  MAX_METRIC_BYTES: IDENTIFIER_MAX_LENGTH.metric,
  /** Digits of `value` before the decimal point. */
  MAX_INTEGER_DIGITS: 15,
  /** Digits of `value` after the decimal point. */
  MAX_FRACTION_DIGITS: 9,
} as const;
