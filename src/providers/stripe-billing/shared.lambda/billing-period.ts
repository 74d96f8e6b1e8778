/**
 * Where a window's usage is billed in Stripe: on which subscription period's invoice, with which
 * meter event timestamp. Stripe bills a meter event on the invoice of the period its timestamp
 * falls in, and only if it reaches Stripe before that invoice is finalized:
 *
 * - "During the configured finalization grace period, you can continue to report usage for the
 *   previous billing period. When the invoice finalizes, Stripe updates it to reflect the latest
 *   quantity for its billing period"; the grace period is 1 hour unless the account sets up to 72
 *   hours (https://docs.stripe.com/billing/subscriptions/usage-based/configure-grace-period).
 * - Meter events are processed asynchronously: a 200 does not mean counted yet
 *   (https://docs.stripe.com/billing/subscriptions/usage-based/recording-usage-api).
 *
 * So:
 * 1. **Alignment.** Subscriptions are anchored on a window boundary (`billingAnchor`), so every
 *    period after the first starts and ends on one and no window straddles two periods. "The billing
 *    cycle anchor ... sets the day of week for week intervals, the day of month for month and year
 *    intervals", and a new subscription's anchor "must be a future UNIX timestamp before the next
 *    natural subscription billing date" (https://docs.stripe.com/billing/subscriptions/billing-cycle,
 *    https://docs.stripe.com/payments/checkout/billing-cycle): the first period [created, anchor) is
 *    prorated, and the window the tenant was onboarded in falls in it.
 * 2. **Timestamps inside the subscription.** A meter event is timestamped at its window's start,
 *    moved forward to the subscription's start when the window began earlier (usage before a
 *    subscription started is not billed by it).
 * 3. **Carry-over.** A window of an earlier period whose invoice is finalized (or finalizes before
 *    the event could be processed) is sent into the current period instead, so that it is billed on
 *    the next invoice, and is recorded `CARRIED_OVER` with an invoice item that says what it is.
 *
 * The current period comes from Stripe (`current_period_start`/`current_period_end` on the
 * subscription's items, API 2025-03-31.basil and later:
 * https://docs.stripe.com/changelog/basil/2025-03-31/deprecate-subscription-current-period-start-and-end),
 * read once per period and kept on the tenant mapping.
 */
import { stripeCall } from './stripe-client';
import { TenantRecord, updateTenant } from './tenants';
import { recordSubscriptionStatus } from './webhook-state';
import { logger } from '../../../shared.lambda/logger';

/** Stripe refuses an anchor in the past: the anchor is at least this far ahead when the subscription is created. */
export const MIN_ANCHOR_LEAD_MS = 5_000;

/**
 * Sends into an earlier period stop this long before its invoice finalizes, so that Stripe has
 * processed the event by then (meter events are processed asynchronously).
 */
export const FINALIZATION_SAFETY_SECONDS = 600;

/** The `billing_cycle_anchor` of a subscription created now: the next window boundary (epoch seconds), or undefined (no alignment). */
export function billingAnchor(nowMs: number, alignSeconds: number): number | undefined {
  if (!(alignSeconds > 0)) return undefined;
  const step = alignSeconds * 1000;
  let anchor = Math.ceil((nowMs + 1) / step) * step;
  if (anchor - nowMs < MIN_ANCHOR_LEAD_MS) anchor += step;
  return anchor / 1000;
}

const seconds = (iso: string | undefined) => (iso === undefined ? undefined : Math.floor(Date.parse(iso) / 1000));
const isoOf = (epochSeconds: number) => new Date(epochSeconds * 1000).toISOString().replace('.000Z', 'Z');

/** Where a window is billed. */
export type Placement =
  | {
    readonly kind: 'bill';
    /** The meter event's timestamp, epoch seconds. */
    readonly timestamp: number;
    /** The period whose invoice bills it (the rounding carry's key): ISO, or `month:<YYYY-MM>` without a subscription. */
    readonly billingPeriodStart: string;
    /** The end of that period, when known (ISO). */
    readonly billingPeriodEnd?: string;
    /** The period the usage belongs to, when known (differs from `billingPeriodStart` when carried over). */
    readonly usagePeriodStart?: string;
    readonly carriedOver: boolean;
  }
  | { readonly kind: 'wait'; readonly reason: string };

/**
 * Places a window (start, epoch seconds) of a tenant. `graceSeconds`: the finalization grace
 * period the user declares.
 */
export function placeWindow(windowStart: number, tenant: TenantRecord, nowSeconds: number, graceSeconds: number): Placement {
  if (!tenant.subscriptionId) {
    // No subscription: Stripe bills nothing by period here; the rounding carry runs per calendar month.
    const month = new Date(windowStart * 1000).toISOString().slice(0, 7);
    return { kind: 'bill', timestamp: windowStart, billingPeriodStart: `month:${month}`, carriedOver: false };
  }
  const started = seconds(tenant.subscriptionStartedAt);
  const t = started !== undefined ? Math.max(windowStart, started) : windowStart;
  const periodStart = seconds(tenant.periodStart);
  const periodEnd = seconds(tenant.periodEnd);
  if (periodStart === undefined || periodEnd === undefined) return { kind: 'wait', reason: 'the subscription\'s current period is not known yet' };
  if (t >= periodEnd) return { kind: 'wait', reason: 'the window starts after the subscription\'s current period as last read' };
  if (t >= periodStart) {
    return { kind: 'bill', timestamp: t, billingPeriodStart: tenant.periodStart!, billingPeriodEnd: tenant.periodEnd, usagePeriodStart: tenant.periodStart, carriedOver: false };
  }
  const previous = seconds(tenant.previousPeriodStart);
  const inPrevious = previous !== undefined && t >= previous;
  if (inPrevious && nowSeconds < periodStart + graceSeconds - FINALIZATION_SAFETY_SECONDS) {
    return {
      kind: 'bill',
      timestamp: t,
      billingPeriodStart: tenant.previousPeriodStart!,
      billingPeriodEnd: tenant.periodStart,
      usagePeriodStart: tenant.previousPeriodStart,
      carriedOver: false,
    };
  }
  // Its invoice is finalized (or will be before Stripe processes the event): billed on the next one.
  return {
    kind: 'bill',
    timestamp: periodStart,
    billingPeriodStart: tenant.periodStart!,
    billingPeriodEnd: tenant.periodEnd,
    usagePeriodStart: inPrevious ? tenant.previousPeriodStart : undefined,
    carriedOver: true,
  };
}

/** Whether the tenant's current period must be read from Stripe before its windows are placed. */
export function needsPeriodRead(t: TenantRecord, nowMs: number): boolean {
  if (!t.subscriptionId || !t.customerId || t.status === 'CREATING') return false;
  const billing = t.status === 'ACTIVE' || t.status === 'OFFBOARDING' || (t.status === 'OFFBOARDED' && t.cancellation === 'AT_PERIOD_END');
  return billing && (t.periodEnd === undefined || nowMs >= Date.parse(t.periodEnd));
}

/**
 * Reads the tenant's subscription from Stripe and keeps its current period (and the one before,
 * when it just rolled over), currency, start and status on the mapping. Returns the mapping after.
 */
export async function readPeriod(t: TenantRecord, nowMs: number): Promise<TenantRecord> {
  const id = t.subscriptionId!;
  const sub = await stripeCall((s) => s.subscriptions.retrieve(id));
  const item = sub.items?.data?.[0];
  if (!item?.current_period_start || !item.current_period_end) {
    logger.warn('The subscription has no item with a current period: its windows wait', { subscriptionId: id });
    return t;
  }
  const periodStart = isoOf(item.current_period_start);
  const periodEnd = isoOf(item.current_period_end);
  let previousPeriodStart: string | undefined;
  if (t.periodEnd === periodStart) previousPeriodStart = t.periodStart;
  else if (t.periodStart === periodStart) previousPeriodStart = t.previousPeriodStart;
  const set: Record<string, unknown> = {
    periodStart,
    periodEnd,
    currency: sub.currency,
    subscriptionStartedAt: t.subscriptionStartedAt ?? isoOf(sub.start_date ?? sub.created),
    ...(previousPeriodStart ? { previousPeriodStart } : {}),
    ...(sub.ended_at ? { subscriptionEndedAt: isoOf(sub.ended_at) } : {}),
  };
  const updated = await updateTenant(t.tenantId, { generation: t.generation }, set, { remove: previousPeriodStart ? [] : ['previousPeriodStart'] });
  // What Stripe answers now is newer than any event about the subscription delivered so far.
  await recordSubscriptionStatus(t.tenantId, { kind: 'subscription', id, state: sub.status, at: Math.floor(nowMs / 1000), eventId: 'read' });
  return { ...(updated ?? t), ...(updated ? {} : set), subscriptionStatus: sub.status, subscriptionStatusOf: id } as TenantRecord;
}

/** Subscription states in which Stripe bills no usage: the tenant's windows get `NO_SUBSCRIPTION`. */
export const NOT_BILLING_STATUSES: readonly string[] = ['incomplete_expired', 'canceled'];

/** The recorded status of the tenant's current subscription (a status left from an earlier subscription does not count). */
export function currentSubscriptionStatus(t: TenantRecord): string | undefined {
  return t.subscriptionStatusOf === undefined || t.subscriptionStatusOf === t.subscriptionId ? t.subscriptionStatus : undefined;
}
