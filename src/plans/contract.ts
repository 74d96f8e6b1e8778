/**
 * The contract between `BillingPlans` and the handlers that read or write its
 * table (its own plan event handler, the plan reader bound into providers and
 * entitlements): environment names, the table's layout, the plans as handlers
 * read them, and the periods of entitlements. Plain values and pure functions,
 * no AWS SDK: constructs import this module too.
 *
 * Plans table: partition key `pk` (S), sort key `sk` (S). No index, no TTL.
 *
 * | item | pk | sk | written by |
 * |---|---|---|---|
 * | tenant's plan | `TENANT#<tenantId>` | `PLAN` | the plan event handler |
 * | plan change | `TENANT#<tenantId>` | `CHANGE#<effectiveAt ISO>#<event id>` | the plan event handler, with the tenant's plan |
 * | processed event | `EVENT#<event id>` | `EVENT` | the plan event handler, with what it did |
 *
 * The tenant's plan item (`TenantPlanRecord`) holds the current plan and a
 * `version` that every change increments; the plan change items are its
 * history (one per plan the tenant was given, `effectiveAt` the instant it took
 * effect), read to find the plan in effect at any instant. A processed event
 * item makes each control plane event count once: it is written in the
 * transaction that applies the event, and holds the event the handler emits
 * for it, so that a redelivery emits the same event again.
 */
import { EntitlementPeriod, LimitAction } from './plan';

// ---------------------------------------------------------------- environment

/** Environment of the plan event handler (onboarding, offboarding, plan change requests). */
export const PLANS_ENV = {
  TABLE_NAME: 'PLANS_TABLE_NAME',
  /** JSON `PlanDefinition[]`. */
  PLAN_DEFINITIONS: 'PLAN_DEFINITIONS',
  /** The detail field that names a tenant's plan (`tier`). */
  PLAN_FIELD: 'PLAN_FIELD',
  /** The plan of a tenant whose onboarding names none, or an unknown one ('' for none). */
  DEFAULT_PLAN: 'DEFAULT_PLAN',
  /** `CALENDAR_MONTH` or `ONBOARDING`. */
  BILLING_PERIOD_ANCHOR: 'BILLING_PERIOD_ANCHOR',
  /** With `ONBOARDING`: the billing anchor is the first multiple of this (seconds) after the onboarding. */
  ANCHOR_ALIGNMENT_SECONDS: 'ANCHOR_ALIGNMENT_SECONDS',
  EVENT_BUS_ARN: 'EVENT_BUS_ARN',
  ONBOARDING_DETAIL_TYPE: 'ONBOARDING_DETAIL_TYPE',
  OFFBOARDING_DETAIL_TYPE: 'OFFBOARDING_DETAIL_TYPE',
  PLAN_CHANGE_REQUEST_DETAIL_TYPE: 'PLAN_CHANGE_REQUEST_DETAIL_TYPE',
  PLAN_CHANGED_SOURCE: 'PLAN_CHANGED_SOURCE',
  PLAN_CHANGED_DETAIL_TYPE: 'PLAN_CHANGED_DETAIL_TYPE',
  PLAN_CHANGE_FAILURE_SOURCE: 'PLAN_CHANGE_FAILURE_SOURCE',
  PLAN_CHANGE_FAILURE_DETAIL_TYPE: 'PLAN_CHANGE_FAILURE_DETAIL_TYPE',
} as const;

/**
 * Environment a consumer of the plan read contract (`PlanReader.fromEnvironment`)
 * reads; set by `bindPlanReader`. Prefixed so that it never collides with the
 * consumer's own variables.
 */
export const PLAN_READER_ENV = {
  TABLE_NAME: 'PLAN_READER_TABLE_NAME',
  /** JSON `PlanDefinition[]`. */
  PLAN_DEFINITIONS: 'PLAN_READER_DEFINITIONS',
  BILLING_PERIOD_ANCHOR: 'PLAN_READER_BILLING_PERIOD_ANCHOR',
} as const;

/** Namespace of the plan event handler's metrics (EMF, dimension `service`). */
export const METRIC_NAMESPACE = 'CdkSaasBilling/BillingPlans';

/** Names of the plan event handler's metrics (counts). */
export const METRICS = {
  /** Plans recorded (onboarding, change). */
  PLANS_CHANGED: 'PlansChanged',
  /** Plans refused (a `planChangeFailure` event each). */
  PLANS_REFUSED: 'PlansRefused',
  /** Events older than the tenant's latest change of state, ignored. */
  STALE_EVENTS: 'StaleEvents',
} as const;

// ----------------------------------------------------------------------- plans

/** A price tier as handlers read it. */
export interface TierDefinition {
  /** Decimal string; absent on the last tier. */
  readonly upTo?: string;
  readonly unitPrice: string;
}

/** A metric price as handlers read it (`MetricPrice`, defaults applied). */
export interface PriceDefinition {
  readonly unitPrice?: string;
  readonly tiers?: TierDefinition[];
  readonly freeQuantity: string;
  readonly minimumCharge?: string;
  readonly currency: string;
}

/** An entitlement as handlers read it (`Entitlement`, defaults applied). */
export interface EntitlementDefinition {
  readonly limit: string;
  readonly period: EntitlementPeriod;
  readonly thresholds: number[];
  readonly onLimit: LimitAction;
}

/** A plan as handlers read it (`BillingPlan`, defaults applied). */
export interface PlanDefinition {
  readonly name: string;
  /** By metric. */
  readonly metrics: Record<string, { readonly price?: PriceDefinition; readonly entitlements?: EntitlementDefinition[] }>;
  readonly stripePriceIds?: string[];
}

/** How billing periods are anchored (`BillingPeriodAnchor`'s values). */
export type AnchorKind = 'CALENDAR_MONTH' | 'ONBOARDING';

// --------------------------------------------------------------- table layout

/** The plans table's keys. */
export const PLANS_TABLE = { partitionKey: 'pk', sortKey: 'sk' } as const;

/** A key of the plans table. */
export interface PlansKey {
  readonly pk: string;
  readonly sk: string;
}

/** Key of a tenant's plan item. */
export function tenantPlanKey(tenantId: string): PlansKey {
  return { pk: `TENANT#${tenantId}`, sk: 'PLAN' };
}

/** Sort key prefix of a tenant's plan change items. */
export const PLAN_CHANGE_SK_PREFIX = 'CHANGE#';

/** Key of one plan change of a tenant. */
export function planChangeKey(tenantId: string, effectiveAt: string, eventId: string): PlansKey {
  return { pk: `TENANT#${tenantId}`, sk: `${PLAN_CHANGE_SK_PREFIX}${effectiveAt}#${eventId}` };
}

/** Key of a processed control plane event. */
export function processedEventKey(eventId: string): PlansKey {
  return { pk: `EVENT#${eventId}`, sk: 'EVENT' };
}

/** A tenant's status in the plans table. */
export type TenantPlanStatus = 'ACTIVE' | 'OFFBOARDED';

/** The tenant's plan item. */
export interface TenantPlanRecord {
  readonly tenantId: string;
  /** The current plan (absent: the tenant was onboarded without a known plan). */
  readonly plan?: string;
  readonly status: TenantPlanStatus;
  /** When the current plan took effect (ISO-8601). */
  readonly effectiveAt?: string;
  /** Incremented by every change of the item. */
  readonly version: number;
  /** The onboarding event's time (ISO-8601). */
  readonly onboardedAt: string;
  /** The offboarding event's time, while offboarded. */
  readonly offboardedAt?: string;
  /** The start of the tenant's first billing period with `ONBOARDING` anchors (ISO-8601). */
  readonly billingAnchor?: string;
}

/** One plan change item. */
export interface PlanChangeRecord {
  readonly tenantId: string;
  readonly plan: string;
  readonly effectiveAt: string;
  readonly eventId: string;
}

// --------------------------------------------------------------------- events

/** Why a tenant's plan was recorded (`planChanged`'s `reason`). */
export type PlanChangeReason = 'ONBOARDING' | 'CHANGE' | 'OFFBOARDING';

/** The detail of a `planChanged` event. */
export interface PlanChangedDetail {
  readonly tenantId: string;
  /** The plan from now on; absent when offboarded or onboarded without a plan. */
  readonly plan?: string;
  readonly previousPlan?: string;
  /** When the plan took effect (ISO-8601 with milliseconds). */
  readonly effectiveAt: string;
  readonly reason: PlanChangeReason;
  /** The tenant plan item's version after the change. */
  readonly version: number;
  /** The id of the control plane event that caused it. */
  readonly requestEventId: string;
}

/** Why a plan was refused (`planChangeFailure`'s `reason`). */
export type PlanRefusalReason = 'UNKNOWN_PLAN' | 'UNKNOWN_TENANT' | 'TENANT_OFFBOARDED' | 'NO_PLAN';

/** The detail of a `planChangeFailure` event. */
export interface PlanChangeFailureDetail {
  readonly tenantId: string;
  readonly requestedPlan?: string;
  readonly reason: PlanRefusalReason;
  readonly message: string;
  readonly requestEventId: string;
  readonly requestDetailType: string;
}

// -------------------------------------------------------------------- periods

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** A period `[start, end)` in epoch ms. */
export interface PeriodBounds {
  readonly startMs: number;
  readonly endMs: number;
}

/** Midnight UTC of the first day of the month `monthsAfter` months after the month of `ms`. */
function monthStart(ms: number, monthsAfter = 0): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + monthsAfter, 1);
}

/**
 * `anchor` moved by `months` calendar months, on the anchor's day of month (or
 * the month's last day when it is shorter) and time of day: Stripe's monthly
 * billing periods (https://docs.stripe.com/billing/subscriptions/billing-cycle).
 */
export function addMonthsClamped(anchorMs: number, months: number): number {
  const a = new Date(anchorMs);
  const firstOfTarget = new Date(Date.UTC(a.getUTCFullYear(), a.getUTCMonth() + months, 1));
  const lastDay = new Date(Date.UTC(firstOfTarget.getUTCFullYear(), firstOfTarget.getUTCMonth() + 1, 0)).getUTCDate();
  const day = Math.min(a.getUTCDate(), lastDay);
  const timeOfDay = anchorMs - Date.UTC(a.getUTCFullYear(), a.getUTCMonth(), a.getUTCDate());
  return Date.UTC(firstOfTarget.getUTCFullYear(), firstOfTarget.getUTCMonth(), day) + timeOfDay;
}

/**
 * The entitlement period of a kind that holds `ms` (a window's start). For
 * `BILLING_PERIOD`: calendar months, or the months from `billingAnchor` when given.
 */
export function periodOf(kind: EntitlementPeriod | string, ms: number, billingAnchor?: string): PeriodBounds {
  switch (kind) {
    case 'HOUR': {
      const startMs = Math.floor(ms / HOUR_MS) * HOUR_MS;
      return { startMs, endMs: startMs + HOUR_MS };
    }
    case 'DAY': {
      const startMs = Math.floor(ms / DAY_MS) * DAY_MS;
      return { startMs, endMs: startMs + DAY_MS };
    }
    case 'BILLING_PERIOD':
      if (billingAnchor !== undefined) {
        const anchor = Date.parse(billingAnchor);
        const [at, from] = [new Date(ms), new Date(anchor)];
        let k = (at.getUTCFullYear() - from.getUTCFullYear()) * 12 + at.getUTCMonth() - from.getUTCMonth();
        while (addMonthsClamped(anchor, k) > ms) k--;
        while (addMonthsClamped(anchor, k + 1) <= ms) k++;
        return { startMs: addMonthsClamped(anchor, k), endMs: addMonthsClamped(anchor, k + 1) };
      }
      return { startMs: monthStart(ms), endMs: monthStart(ms, 1) };
    case 'CALENDAR_MONTH':
      return { startMs: monthStart(ms), endMs: monthStart(ms, 1) };
    default:
      throw new Error(`Unknown entitlement period ${JSON.stringify(kind)}`);
  }
}

/** The anchor of a tenant onboarded at `onboardedMs`: the first multiple of `alignmentSeconds` at least 5 s later (as StripeBilling anchors). */
export function billingAnchorOf(onboardedMs: number, alignmentSeconds: number): number {
  const step = alignmentSeconds * 1000;
  let anchor = Math.ceil((onboardedMs + 1) / step) * step;
  if (anchor - onboardedMs < 5_000) anchor += step;
  return anchor;
}

/**
 * The plan a control plane event names: its plan field, or the field under
 * `tenantData` (as some control planes nest it); a number is read as its text
 * (`tier: 2` is plan `"2"`). Read alike by `BillingPlans` and the providers.
 */
export function planNamedIn(detail: unknown, field: string): string | undefined {
  if (typeof detail !== 'object' || detail === null) return undefined;
  const d = detail as Record<string, unknown>;
  const nested = (typeof d.tenantData === 'object' && d.tenantData !== null ? d.tenantData : {}) as Record<string, unknown>;
  const value = d[field] ?? nested[field];
  if (typeof value === 'string' && value.trim() !== '') return value.trim();
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}
