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
  /** The number of ledger keys (`ledgerKeys`), fixed for the table's life. */
  LEDGER_KEYS: 'LEDGER_KEYS',
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
  LEDGER_KEYS: AGGREGATOR_ENV.LEDGER_KEYS,
  LEDGER_RETENTION_SECONDS: AGGREGATOR_ENV.LEDGER_RETENTION_SECONDS,
  /** Ledger items of a window start from which it is closed by the fan-out rather than in the closer's own run (0: always). */
  FAN_OUT_ITEMS: 'CLOSING_FAN_OUT_ITEMS',
  /** Ledger items one closing worker is given to fold (the fan-out's segment size). */
  SEGMENT_ITEMS: 'CLOSING_SEGMENT_ITEMS',
} as const;

/** Environment of the closing workers (the closer's, less the fan-out thresholds). */
export const CLOSING_WORKER_ENV = {
  TABLE_NAME: CLOSER_ENV.TABLE_NAME,
  WINDOW_GRANULARITY: CLOSER_ENV.WINDOW_GRANULARITY,
  ALLOWED_LATENESS_SECONDS: CLOSER_ENV.ALLOWED_LATENESS_SECONDS,
  QUARANTINE_RETENTION_SECONDS: CLOSER_ENV.QUARANTINE_RETENTION_SECONDS,
  EVENT_BUS_ARN: CLOSER_ENV.EVENT_BUS_ARN,
} as const;

/**
 * The event the closer's schedule sends it: the closing queue's URL (in the
 * event, not the environment, so that a function's environment stays free of
 * the queue for tools that run the closer outside AWS; the closer needs it only
 * to fan a window start out, and every closing message carries it on).
 */
export interface CloserEvent {
  readonly closingQueueUrl?: string;
}

/**
 * A message of the closing queue: one piece of the fan-out's work on one
 * window start. Every piece can be done twice (a redelivered message, a
 * retried worker) without changing what it wrote.
 *
 * - `FOLD`: fold ledger keys `[from, to)` of the window start into a partial
 *   (per merge partition) and mark the segment done;
 * - `MERGE`: merge partition `partition` of every done segment (each ledger key
 *   exactly once) into the closed pages of its tenant groups;
 * - `ANNOUNCE`: put the `usageWindowClosed` events of the partition's windows.
 */
export interface ClosingMessage {
  readonly kind: 'FOLD' | 'MERGE' | 'ANNOUNCE';
  /** The closing queue (where the work that follows goes). */
  readonly queueUrl: string;
  /** ISO-8601, to the second. */
  readonly windowStart: string;
  /** The job's ledger key count (every key a record of the window start can be in). */
  readonly ledgerKeys: number;
  /** The job's number of merge partitions. */
  readonly partitions: number;
  /** FOLD: the segment of ledger keys. */
  readonly from?: number;
  readonly to?: number;
  /** MERGE, ANNOUNCE: the partition. */
  readonly partition?: number;
  /** MERGE, ANNOUNCE: the number of tenant groups of the closed pages (a multiple of `partitions`). */
  readonly groups?: number;
}

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
  /** The ingestor's `ledgerKeys` (absent: 64). */
  LEDGER_KEYS: 'USAGE_READER_LEDGER_KEYS',
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
