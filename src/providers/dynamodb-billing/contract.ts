/**
 * The contract between `DynamoDbBilling` and its handlers, imported by both:
 * the environment the construct sets and the handlers read, the metrics the
 * handlers emit and the construct alarms on, and the layout of the tables the
 * construct creates and the handlers write. Plain values only (no AWS SDK), so
 * the construct can import it.
 *
 * Billing table: partition key `pk` (S), sort key `sk` (S).
 *
 * | item           | pk                    | sk                                                         |
 * |----------------|-----------------------|------------------------------------------------------------|
 * | customer       | `CUSTOMER#<tenantId>` | `CUSTOMER`                                                 |
 * | user           | `CUSTOMER#<tenantId>` | `USER#<userId>`                                            |
 * | charge line    | `CUSTOMER#<tenantId>` | `CHARGE#<YYYY-MM>#<granularity>#<windowStartIso>#<metric>` |
 * | period total   | `CUSTOMER#<tenantId>` | `PERIOD#<YYYY-MM>#<currency>`                              |
 * | reconciliation | `RECON#<YYYY-MM>`     | `<tenantId>#<metric>`                                      |
 * | push cursor    | `PUSH`                | `CURSOR`                                                   |
 *
 * A reconciliation record (`ReconciliationRecord`) sums, per tenant, metric and
 * billing period, the windows the push handled: `metered` (all of them),
 * `billed` (`BILLED` lines), `rejected` (`UNPRICED` and `NOT_BILLED_AFTER_CLOSE`
 * lines), `carriedOver` (always 0) and `countedByProvider` (= `billed`). The
 * push adds each window to it in the transaction that writes the window's
 * charge line, and sets it `FINAL` once it has handled a window that starts at
 * or after the period's end. The records of a period share one partition key,
 * so one Query reads (or finalizes) a whole period, and `begins_with(sk, '<tenantId>#')`
 * one tenant's (tenant ids never contain `#`).
 *
 * Webhook events table: partition key `pk` (S) = `EVENT#<eventId>`; TTL attribute `expiresAt`.
 */

// ---------------------------------------------------------------- environment

/** Environment of every DynamoDB billing function (read by Powertools). */
export const POWERTOOLS_ENV = {
  /** Logger `service` key and the metrics' `service` dimension. */
  SERVICE_NAME: 'POWERTOOLS_SERVICE_NAME',
  /** Namespace of the functions' metrics. */
  METRICS_NAMESPACE: 'POWERTOOLS_METRICS_NAMESPACE',
} as const;

/** Environment of the four lifecycle functions (create/delete customer and user). */
export const LIFECYCLE_ENV = {
  BILLING_TABLE_NAME: 'BILLING_TABLE_NAME',
} as const;

/** Environment of the usage push. */
export const PUSH_ENV = {
  BILLING_TABLE_NAME: 'BILLING_TABLE_NAME',
  /** JSON array of `UnitPrice`. */
  UNIT_PRICES: 'UNIT_PRICES',
  /** How far back the first run reads closed windows (it has no cursor yet). */
  INITIAL_LOOKBACK_SECONDS: 'INITIAL_LOOKBACK_SECONDS',
} as const;

/** Environment of the webhook. */
export const WEBHOOK_ENV = {
  WEBHOOK_EVENTS_TABLE_NAME: 'WEBHOOK_EVENTS_TABLE_NAME',
  /** The secret's ARN (never its value: the handler reads it at run time). */
  WEBHOOK_SECRET_ARN: 'WEBHOOK_SECRET_ARN',
  /** Lower-case HTTP header name. */
  SIGNATURE_HEADER_NAME: 'SIGNATURE_HEADER_NAME',
  SIGNATURE_TOLERANCE_SECONDS: 'SIGNATURE_TOLERANCE_SECONDS',
  MAX_WEBHOOK_BODY_BYTES: 'MAX_WEBHOOK_BODY_BYTES',
  PROCESSED_EVENT_RETENTION_SECONDS: 'PROCESSED_EVENT_RETENTION_SECONDS',
  /** How long a delivery holds its claim on an event id: longer than the function's timeout. */
  CLAIM_LEASE_SECONDS: 'CLAIM_LEASE_SECONDS',
  SECRET_CACHE_SECONDS: 'SECRET_CACHE_SECONDS',
  /** The ARN of the bus billing events go to (PutEvents accepts a name or an ARN). */
  EVENT_BUS_ARN: 'EVENT_BUS_ARN',
  BILLING_SUCCESS_SOURCE: 'BILLING_SUCCESS_SOURCE',
  BILLING_SUCCESS_DETAIL_TYPE: 'BILLING_SUCCESS_DETAIL_TYPE',
  BILLING_FAILURE_SOURCE: 'BILLING_FAILURE_SOURCE',
  BILLING_FAILURE_DETAIL_TYPE: 'BILLING_FAILURE_DETAIL_TYPE',
} as const;

/** A unit price as the construct passes it to the push (`UNIT_PRICES`, a JSON array). */
export interface UnitPrice {
  readonly metric: string;
  /** The price of one unit: a non-negative decimal string (exact). */
  readonly unitPrice: string;
  /** ISO 4217 code. */
  readonly currency: string;
}

/** The most digits after the decimal point of a unit price. */
export const MAX_PRICE_FRACTION_DIGITS = 12;
/** The most digits before the decimal point of a unit price. */
export const MAX_PRICE_INTEGER_DIGITS = 24;

// -------------------------------------------------------------------- metrics

/** Namespace of the metrics the DynamoDB billing functions emit (EMF, dimension `service`). */
export const METRIC_NAMESPACE = 'CdkSaasBilling/DynamoDbBilling';
/** The one dimension of those metrics: the construct's service name (`POWERTOOLS_SERVICE_NAME`). */
export const METRIC_SERVICE_DIMENSION = 'service';

/** Names of the metrics the DynamoDB billing functions emit (all counts). */
export const METRICS = {
  /** Closed customers reopened by an onboarding newer than their closing. */
  CUSTOMERS_REOPENED: 'CustomersReopened',
  /** Lifecycle events older than the customer's latest state change, ignored (an onboarding older than the closing, an offboarding older than the reopening). */
  STALE_LIFECYCLE_EVENTS: 'StaleLifecycleEvents',
  /** Windows priced into a billed charge line. */
  WINDOWS_BILLED: 'WindowsBilled',
  /** Windows of a metric without a price (charge line with amount 0). */
  WINDOWS_UNPRICED: 'WindowsUnpriced',
  /** Windows during the whole of which their customer was closed (charge line with amount 0). */
  WINDOWS_NOT_BILLED_AFTER_CLOSE: 'WindowsNotBilledAfterClose',
} as const;

// --------------------------------------------------------------- table layout

/** The keys (and TTL attribute) of the construct's tables. */
const TABLES = {
  billing: { partitionKey: 'pk', sortKey: 'sk' },
  webhookEvents: { partitionKey: 'pk', ttlAttribute: 'expiresAt' },
} as const;

/** The billing table's keys. */
export const BILLING_TABLE = TABLES.billing;
/** The webhook events table's key and TTL attribute. */
export const WEBHOOK_EVENTS_TABLE = TABLES.webhookEvents;

/** A key of the billing table. */
export type BillingKey = { readonly [BILLING_TABLE.partitionKey]: string; readonly [BILLING_TABLE.sortKey]: string };

function billingKey(pk: string, sk: string): BillingKey {
  return { [BILLING_TABLE.partitionKey]: pk, [BILLING_TABLE.sortKey]: sk };
}

/** Customer and user status values: `STATUS.ACTIVE` is `'ACTIVE'`. */
export const STATUS = Object.freeze({ ACTIVE: 'ACTIVE', CLOSED: 'CLOSED', DELETED: 'DELETED' } as const);

/** What a charge line says about its window. */
export const DISPOSITION = {
  /** Priced and added to the period total. */
  BILLED: 'BILLED',
  /** No price for the metric: amount 0, quantity kept. */
  UNPRICED: 'UNPRICED',
  /** The customer was closed for the whole window (it overlaps no open period): amount 0, quantity kept. */
  NOT_BILLED_AFTER_CLOSE: 'NOT_BILLED_AFTER_CLOSE',
} as const;

/** A charge line's disposition. */
export type Disposition = (typeof DISPOSITION)[keyof typeof DISPOSITION];

/** A time span in which a customer was closed: `[from, until)`, ISO-8601 UTC. */
export interface ClosedPeriod {
  readonly from: string;
  readonly until: string;
}

/**
 * The attributes of a customer item that the push reads. The customer is
 * closed in each of its `closedPeriods` and, while `CLOSED`, from `closedAt`
 * on; it is open at every other time (before its first onboarding too: usage
 * of a tenant without a customer item is billed).
 */
export interface CustomerState {
  readonly customerId?: string;
  readonly status?: string;
  /** When the current closing took effect (the offboarding event's time), while CLOSED. */
  readonly closedAt?: string;
  /** Earlier closings, ended by a reopening. */
  readonly closedPeriods?: ClosedPeriod[];
}

const CUSTOMER_PK_PREFIX = 'CUSTOMER#';
/** Prefix of user items' sort keys. */
export const USER_SK_PREFIX = 'USER#';
/** Prefix of charge lines' sort keys. */
export const CHARGE_SK_PREFIX = 'CHARGE#';
/** Prefix of period totals' sort keys. */
export const PERIOD_SK_PREFIX = 'PERIOD#';

/** Partition key of everything kept for a tenant's customer. */
export function customerPk(tenantId: string): string {
  return `${CUSTOMER_PK_PREFIX}${tenantId}`;
}

/** Key of a tenant's customer item. */
export function customerKey(tenantId: string): BillingKey {
  return billingKey(customerPk(tenantId), 'CUSTOMER');
}

/** Key of a user item. */
export function userKey(tenantId: string, userId: string): BillingKey {
  return billingKey(customerPk(tenantId), `${USER_SK_PREFIX}${userId}`);
}

/** The billing period (calendar month, UTC) of a window start: `YYYY-MM`. */
export function billingPeriodOf(windowStartIso: string): string {
  return windowStartIso.slice(0, 7);
}

/**
 * Key of the charge line of one usage window: unique per window, so its
 * conditional put doubles as the window's pushed marker.
 */
export function chargeLineKey(tenantId: string, windowStartIso: string, granularity: string, metric: string): BillingKey {
  return billingKey(customerPk(tenantId), `${CHARGE_SK_PREFIX}${billingPeriodOf(windowStartIso)}#${granularity}#${windowStartIso}#${metric}`);
}

/** Key of a customer's total for one billing period and currency. */
export function periodTotalKey(tenantId: string, period: string, currency: string): BillingKey {
  return billingKey(customerPk(tenantId), `${PERIOD_SK_PREFIX}${period}#${currency}`);
}

/**
 * Key of the usage push's cursor item: `cursor` (its position in the usage read
 * contract) and `openPeriodsFrom` (`YYYY-MM`: the earliest billing period whose
 * reconciliation records may still be `OPEN`).
 */
export const PUSH_CURSOR_KEY: BillingKey = billingKey('PUSH', 'CURSOR');

/** A reconciliation record's status: `OPEN` while windows of its period may still come, then `FINAL`. */
export const RECONCILIATION_STATUS = Object.freeze({ OPEN: 'OPEN', FINAL: 'FINAL' } as const);

/**
 * The reconciliation record of a tenant, metric and billing period (the shape
 * StripeBilling's records share). Usage amounts are exact decimals (DynamoDB
 * numbers, read as strings with `wrapNumbers`); once `FINAL`,
 * `metered = billed + carriedOver + rejected`.
 */
export interface ReconciliationRecord {
  readonly tenantId: string;
  readonly metric: string;
  /** ISO-8601 UTC to the second, inclusive: the first instant of the calendar month. */
  readonly periodStart: string;
  /** ISO-8601 UTC to the second, exclusive: the first instant of the next month. */
  readonly periodEnd: string;
  readonly status: (typeof RECONCILIATION_STATUS)[keyof typeof RECONCILIATION_STATUS];
  /** The sum of the period's closed windows that the push handled. */
  readonly metered: string;
  /** The quantity of its `BILLED` charge lines. */
  readonly billed: string;
  /** Always 0: the charge lines are the invoice, and none of them is ever finalized before its window is added. */
  readonly carriedOver: string;
  /** The quantity of its `UNPRICED` and `NOT_BILLED_AFTER_CLOSE` lines (`unpriced` + `notBilledAfterClose`). */
  readonly rejected: string;
  /** What the billing system counted: the charge lines are the billing system, so `billed`. */
  readonly countedByProvider: string;
  /** When a window was last added to it (or it became FINAL), ISO-8601. */
  readonly updatedAt: string;
}

const RECONCILIATION_PK_PREFIX = 'RECON#';

/** Partition key of the reconciliation records of one billing period (`YYYY-MM`). */
export function reconciliationPk(period: string): string {
  return `${RECONCILIATION_PK_PREFIX}${period}`;
}

/** Key of the reconciliation record of a tenant, metric and billing period. */
export function reconciliationKey(period: string, tenantId: string, metric: string): BillingKey {
  return billingKey(reconciliationPk(period), `${tenantId}#${metric}`);
}

/** The bounds of a billing period (`YYYY-MM`): ISO-8601 UTC to the second, `[periodStart, periodEnd)`. */
export function periodBoundsOf(period: string): { readonly periodStart: string; readonly periodEnd: string } {
  return { periodStart: `${period}-01T00:00:00Z`, periodEnd: `${nextBillingPeriod(period)}-01T00:00:00Z` };
}

/** The billing period after `period` (`YYYY-MM`). */
export function nextBillingPeriod(period: string): string {
  const [year, month] = period.split('-').map(Number);
  return month === 12 ? `${String(year + 1).padStart(4, '0')}-01` : `${period.slice(0, 4)}-${String(month + 1).padStart(2, '0')}`;
}

/** Key of a webhook event's claim (`PENDING`, then `DONE`). */
export function webhookEventKey(eventId: string): { readonly [WEBHOOK_EVENTS_TABLE.partitionKey]: string } {
  return { [WEBHOOK_EVENTS_TABLE.partitionKey]: `EVENT#${eventId}` };
}
