/**
 * The contract between `Entitlements`, `EntitlementAuthorizer` and their
 * handlers: environment names, the entitlements table's layout, the events.
 * Plain values and pure functions, no AWS SDK: constructs import this module too.
 *
 * Entitlements table: partition key `pk` (S), sort key `sk` (S), TTL attribute
 * `expiresAt`; its stream (new images) feeds the threshold events' pipes.
 *
 * | item | pk | sk | written by |
 * |---|---|---|---|
 * | contribution of a record | `C#<record key>` | `C` | ledger consumer |
 * | running total | `T#<tenantId>#<metric>` | `<PERIOD>#<periodStart ISO>` | ledger consumer (with the contributions) |
 * | threshold event | `T#<tenantId>#<metric>` | `X#<PERIOD>#<periodStart ISO>#<limit>#<percent>` | ledger consumer, plan sync (once) |
 * | tenant access | `A#<tenantId>` | `ACCESS` | plan sync (status, plan), ledger consumer (blocks) |
 *
 * - A **contribution** is what one ledger record adds to the running totals
 *   (its value, or nothing once voided), with the stream sequence of the last
 *   change of the record and of its void that it reflects. Each change is applied
 *   by a transaction that writes the contribution (on condition that it is still
 *   the one read) and adds the difference to the record's totals, so a change
 *   delivered twice, concurrently or after a crash, is counted once, and a
 *   change older than the one already applied is ignored.
 * - A **running total** is the usage of a tenant's metric in one entitlement
 *   period (`used`, exact decimal), with a `version` every change increments.
 * - A **threshold event** item is written once (on condition that it does not
 *   exist) when a total reaches a threshold of a limit (percent 100: the limit);
 *   the table's stream and an EventBridge pipe put it on the bus.
 * - The **tenant access** item answers "may tenant T use metric M" in one
 *   GetItem: `status` (`ACTIVE`, `OFFBOARDED`; absent: unknown tenant), `plan`,
 *   and per metric `blocked#<metric>` (epoch seconds): blocked while now is
 *   before it (0 or absent: not blocked).
 */

// ---------------------------------------------------------------- environment

/** Environment of the ledger consumer and the plan sync. */
export const ENTITLEMENTS_ENV = {
  TABLE_NAME: 'ENTITLEMENTS_TABLE_NAME',
  /** How long totals and threshold events are kept after their period ends, in seconds. */
  RETENTION_SECONDS: 'ENTITLEMENTS_RETENTION_SECONDS',
} as const;

/** Environment of an `EntitlementReader` (the authorizer, the usage API, your functions): set by `bindEntitlementReader`. */
export const ENTITLEMENT_READER_ENV = {
  TABLE_NAME: 'ENTITLEMENT_READER_TABLE_NAME',
} as const;

/** Environment of the authorizer. */
export const AUTHORIZER_ENV = {
  /** The JWT issuer (`iss`), an https URL (http only on loopback, for tests). */
  ISSUER: 'AUTHORIZER_JWT_ISSUER',
  /** JSON array of accepted audiences (`aud`, or Cognito access tokens' `client_id`). */
  AUDIENCES: 'AUTHORIZER_JWT_AUDIENCES',
  /** The claim that holds the tenant id. */
  TENANT_CLAIM: 'AUTHORIZER_TENANT_CLAIM',
  /** JSON object: route key (`GET /orders`) -> metric. */
  ROUTE_METRICS: 'AUTHORIZER_ROUTE_METRICS',
  /** The metric of routes not in ROUTE_METRICS ('' for none: such routes are refused). */
  DEFAULT_METRIC: 'AUTHORIZER_DEFAULT_METRIC',
  /** How long the function keeps a tenant's access item, in seconds. */
  CACHE_SECONDS: 'AUTHORIZER_CACHE_SECONDS',
} as const;

/** Namespace of the entitlements' metrics (EMF, dimension `service`). */
export const METRIC_NAMESPACE = 'CdkSaasBilling/Entitlements';

/** Names of the entitlements' metrics. */
export const METRICS = {
  /** Ledger changes applied to the running totals. */
  CHANGES_APPLIED: 'ChangesApplied',
  /** Ledger changes already applied (a redelivery), or older than one applied. */
  CHANGES_ALREADY_APPLIED: 'ChangesAlreadyApplied',
  /** Threshold events written (each reaches the bus once). */
  THRESHOLD_EVENTS: 'ThresholdEvents',
  /** Tenants blocked or unblocked for a metric. */
  ACCESS_CHANGES: 'AccessChanges',
  /** Seconds from a change's arrival in the ledger stream to its application (maximum). */
  APPLY_LAG_SECONDS: 'ApplyLagSeconds',
} as const;

// --------------------------------------------------------------------- events

/** The source of the threshold events. */
export const ENTITLEMENT_EVENT_SOURCE = 'cdk-saas-billing.entitlements';

/** The threshold events' detail types. */
export const ENTITLEMENT_EVENTS = {
  THRESHOLD_CROSSED: 'usageThresholdCrossed',
  LIMIT_REACHED: 'usageLimitReached',
} as const;

/** Kinds of threshold event items (`kind` attribute), which the pipes filter on. */
export const THRESHOLD_ITEM_KINDS = {
  THRESHOLD_CROSSED: 'THRESHOLD_CROSSED',
  LIMIT_REACHED: 'LIMIT_REACHED',
} as const;

/**
 * The attributes of a threshold event item, all strings but `threshold`, and
 * the detail of the event the pipe makes of it (same names): `tenantId`,
 * `metric`, `plan`, `period` (`HOUR`, ...), `periodStart`, `periodEnd`,
 * `threshold` (percent; 100 for the limit), `thresholdValue`, `total` (the
 * total when the threshold was reached), `limit`, `onLimit`, `eventId`
 * (deterministic: the same for every delivery of the event).
 */
export const THRESHOLD_EVENT_FIELDS = ['tenantId', 'metric', 'plan', 'period', 'periodStart', 'periodEnd', 'thresholdValue', 'total', 'limit', 'onLimit', 'eventId'] as const;

/** The pipes' input template: the event's detail from the item's new image (strings quoted, the threshold a number). */
export function thresholdEventTemplate(): string {
  const fields = THRESHOLD_EVENT_FIELDS.map((f) => `"${f}": "<$.dynamodb.NewImage.${f}.S>"`);
  return `{${[...fields, '"threshold": <$.dynamodb.NewImage.threshold.N>'].join(', ')}}`;
}

// --------------------------------------------------------------- table layout

/** The entitlements table's keys. */
export const ENTITLEMENTS_TABLE = { partitionKey: 'pk', sortKey: 'sk', timeToLive: 'expiresAt' } as const;

/** Key of a record's contribution. */
export function contributionKey(recordKey: string): { pk: string; sk: string } {
  return { pk: `C#${recordKey}`, sk: 'C' };
}

/** Partition key of a tenant metric's totals and threshold events. */
export function totalsPk(tenantId: string, metric: string): string {
  return `T#${tenantId}#${metric}`;
}

/** Key of a running total. */
export function totalKey(tenantId: string, metric: string, period: string, periodStartIso: string): { pk: string; sk: string } {
  return { pk: totalsPk(tenantId, metric), sk: `${period}#${periodStartIso}` };
}

/** Sort key prefix of threshold event items. */
export const THRESHOLD_SK_PREFIX = 'X#';

/** Key of a threshold event item: once per tenant, metric, period, limit and percent. */
export function thresholdKey(
  tenantId: string, metric: string, period: string, periodStartIso: string, limit: string, percent: number,
): { pk: string; sk: string } {
  return { pk: totalsPk(tenantId, metric), sk: `${THRESHOLD_SK_PREFIX}${period}#${periodStartIso}#${limit}#${percent}` };
}

/** Key of a tenant's access item. */
export function accessKey(tenantId: string): { pk: string; sk: string } {
  return { pk: `A#${tenantId}`, sk: 'ACCESS' };
}

/** The attribute of the access item that blocks a metric until the epoch second it holds. */
export function blockedAttribute(metric: string): string {
  return `blocked#${metric}`;
}

/** The attribute that records a period's part of a metric's block (epoch seconds, 0: not blocked). */
export function periodBlockAttribute(metric: string, period: string): string {
  return `b#${metric}#${period}`;
}

/**
 * What the access item says about a tenant and a metric at `nowSeconds`:
 * `UNKNOWN` (no item, or no status), `OFFBOARDED`, `BLOCKED`, or `ALLOWED`.
 */
export function accessOf(item: Record<string, unknown> | undefined, metric: string, nowSeconds: number): 'UNKNOWN' | 'OFFBOARDED' | 'BLOCKED' | 'ALLOWED' {
  if (!item || typeof item.status !== 'string') return 'UNKNOWN';
  if (item.status !== 'ACTIVE') return 'OFFBOARDED';
  const until = Number(item[blockedAttribute(metric)] ?? 0);
  return Number.isFinite(until) && until > nowSeconds ? 'BLOCKED' : 'ALLOWED';
}
