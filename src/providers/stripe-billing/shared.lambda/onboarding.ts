/**
 * Onboarding: one Stripe customer per tenant, and one subscription to the
 * configured prices, however often and however concurrently the onboarding
 * event is delivered.
 *
 * 1. The mapping item is created (`CREATING`, generation 1) with a condition;
 *    every later step re-reads it.
 * 2. The customer is created with an `Idempotency-Key` derived from the
 *    tenant id and generation: concurrent deliveries, retries and reruns
 *    within Stripe's 24-hour idempotency window get the same customer.
 * 3. The customer is recorded on the mapping (condition: no other customer)
 *    with its reverse item. A delivery after that finds it and creates nothing,
 *    beyond 24 hours too.
 * 4. A crash between 2 and 3 is recovered: the first attempt's time is kept on
 *    the mapping (`customerAttemptedAt`); a rerun within 23 hours repeats the
 *    create with the same key (Stripe answers with the same customer), a later
 *    one first searches Stripe for the customer by its metadata (`tenantId`,
 *    `tenantGeneration`; the search index is long settled by then).
 * 5. The same for the subscription, found again by listing the customer's subscriptions. It is
 *    anchored on the next window boundary (`billing_cycle_anchor`, see `billing-period.ts`) and
 *    created with `payment_behavior: allow_incomplete` (Stripe's default for the API, chosen
 *    explicitly): it is `active` at once when nothing is due or the customer's default payment
 *    method pays; otherwise `incomplete`, and `incomplete_expired` 23 hours later if the first
 *    invoice stays unpaid (https://docs.stripe.com/billing/subscriptions/overview#payment-status),
 *    which the webhook records and the push then answers with `NO_SUBSCRIPTION`. Its start, current
 *    period and currency are kept on the mapping.
 *
 * A re-onboarding after an offboarding (an onboarding event newer than the
 * offboarding) reopens the tenant as generation + 1: the kept customer gets a
 * new subscription (a deleted one is created anew). An onboarding event older
 * than the offboarding is stale and ignored.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type Stripe from 'stripe';
import { jsonEnv, numberEnv, requiredEnv } from '../../../shared.lambda/env';
import { logger } from '../../../shared.lambda/logger';
import { MANAGED_BY, STRIPE_ENV, STRIPE_METADATA, STRIPE_METRICS } from '../contract';
import { billingAnchor, MIN_ANCHOR_LEAD_MS } from './billing-period';
import { customerKey, subscriptionKey } from './keys';
import { metrics } from './metrics';
import { failureKind, stripeCall } from './stripe-client';
import { getTenant, putNewTenant, recordCustomer, TenantRecord, updateTenant } from './tenants';

/** Beyond this age an earlier attempt may have left Stripe's 24-hour idempotency window. */
export const IDEMPOTENCY_SAFE_MS = 23 * 3600 * 1000;

/** What the onboarding event says about the tenant's billing contact. */
export interface BillingContact {
  readonly name?: string;
  readonly email?: string;
}

/** The result of an onboarding. */
export interface OnboardingResult {
  readonly tenantId: string;
  /** `CREATED` when this delivery completed it, `EXISTS` when an earlier one had, `STALE` when the event predates an offboarding. */
  readonly outcome: 'CREATED' | 'EXISTS' | 'STALE';
  readonly generation: number;
  readonly customerId?: string;
  readonly subscriptionId?: string;
}

const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,190}\.[^\s@]{2,63}$/;

function tenantMetadata(tenantId: string, generation: number): Record<string, string> {
  return { [STRIPE_METADATA.TENANT_ID]: tenantId, [STRIPE_METADATA.GENERATION]: String(generation), [STRIPE_METADATA.MANAGED_BY]: MANAGED_BY };
}

function isOld(attemptedAt: string | undefined, nowMs: number): boolean {
  return attemptedAt !== undefined && nowMs - Date.parse(attemptedAt) > IDEMPOTENCY_SAFE_MS;
}

/** Stripe's answer to a repeated Idempotency-Key with other parameters (409 is a concurrent request with the key, retried). */
function isIdempotencyConflict(error: unknown): boolean {
  const e = error as { type?: string; statusCode?: number } | undefined;
  return e?.type === 'StripeIdempotencyError' && e.statusCode === 400;
}

/** Finds this generation's customer in Stripe by its metadata (the oldest, when there are several). */
async function searchCustomer(tenantId: string, generation: number): Promise<string | undefined> {
  // Tenant ids hold no quotes (checked by the lifecycle preamble), so the query needs no escaping.
  const query = `metadata['${STRIPE_METADATA.TENANT_ID}']:'${tenantId}' AND metadata['${STRIPE_METADATA.GENERATION}']:'${generation}'`;
  const found = await stripeCall((s) => s.customers.search({ query, limit: 10 }));
  const customers = [...found.data].sort((a, b) => a.created - b.created);
  if (customers.length > 1) logger.warn('Several Stripe customers carry this tenant and generation: using the oldest', { count: customers.length });
  return customers[0]?.id;
}

async function findOrCreateCustomer(
  record: TenantRecord, previousAttempt: string | undefined, contact: BillingContact, prefix: string, nowMs: number,
): Promise<string> {
  const { tenantId, generation } = record;
  if (isOld(previousAttempt, nowMs)) {
    const found = await searchCustomer(tenantId, generation);
    if (found) {
      logger.info('Recovered the customer of an earlier attempt by searching Stripe', { customerId: found });
      return found;
    }
  }
  const params: Stripe.CustomerCreateParams = { metadata: tenantMetadata(tenantId, generation) };
  if (contact.name) params.name = contact.name.slice(0, 256);
  if (contact.email) {
    if (EMAIL.test(contact.email)) params.email = contact.email;
    else logger.warn('The onboarding event has an e-mail Stripe would refuse: the customer is created without one');
  }
  try {
    const customer = await stripeCall((s) => s.customers.create(params, { idempotencyKey: customerKey(prefix, tenantId, generation) }));
    return customer.id;
  } catch (error) {
    // The same key with other parameters (a later event with another name): the
    // key was used, so the customer exists; find it (or fail and be retried).
    if (!isIdempotencyConflict(error)) throw error;
    const found = await searchCustomer(tenantId, generation);
    if (!found) throw new Error(`Tenant ${tenantId}: Stripe refused the customer creation as a repeat with other parameters and search does not find it yet; retry later`);
    return found;
  }
}

async function listSubscription(customerId: string, generation: number): Promise<Stripe.Subscription | undefined> {
  const list = await stripeCall((s) => s.subscriptions.list({ customer: customerId, status: 'all', limit: 100 }));
  return list.data.find((sub) => sub.metadata?.[STRIPE_METADATA.GENERATION] === String(generation)
    && sub.metadata?.[STRIPE_METADATA.MANAGED_BY] === MANAGED_BY);
}

async function findOrCreateSubscription(
  record: TenantRecord, customerId: string, previousAttempt: string | undefined, prices: string[], prefix: string, nowMs: number,
): Promise<Stripe.Subscription> {
  const { tenantId, generation } = record;
  if (isOld(previousAttempt, nowMs)) {
    const found = await listSubscription(customerId, generation);
    if (found) return found;
  }
  // The anchor follows from the first attempt's time while that still gives a future anchor, so a
  // retry sends the same parameters (and gets Stripe's first answer for the key); otherwise from now.
  const alignSeconds = numberEnv(STRIPE_ENV.BILLING_ANCHOR_SECONDS, { min: 0, integer: true, fallback: 0 });
  const firstAttempt = previousAttempt ? Date.parse(previousAttempt) : nowMs;
  let anchor = billingAnchor(firstAttempt, alignSeconds);
  if (anchor !== undefined && anchor * 1000 - nowMs < MIN_ANCHOR_LEAD_MS) anchor = billingAnchor(nowMs, alignSeconds);
  try {
    return await stripeCall((s) => s.subscriptions.create({
      customer: customerId,
      items: prices.map((price) => ({ price })),
      metadata: tenantMetadata(tenantId, generation),
      payment_behavior: 'allow_incomplete',
      ...(anchor !== undefined ? { billing_cycle_anchor: anchor } : {}),
    }, { idempotencyKey: subscriptionKey(prefix, tenantId, generation) }));
  } catch (error) {
    if (!isIdempotencyConflict(error)) throw error;
    const found = await listSubscription(customerId, generation);
    if (!found) throw new Error(`Tenant ${tenantId}: Stripe refused the subscription creation as a repeat and does not list it yet; retry later`);
    return found;
  }
}

/** What the mapping keeps of a subscription: its start, current period, currency and status. */
function subscriptionFields(sub: Stripe.Subscription, nowMs: number): Record<string, unknown> {
  const iso = (epochSeconds: number) => new Date(epochSeconds * 1000).toISOString().replace('.000Z', 'Z');
  const item = sub.items?.data?.[0];
  return {
    subscriptionStartedAt: iso(sub.start_date ?? sub.created),
    ...(item?.current_period_start && item.current_period_end
      ? { periodStart: iso(item.current_period_start), periodEnd: iso(item.current_period_end) } : {}),
    ...(sub.currency ? { currency: sub.currency } : {}),
    subscriptionStatus: sub.status,
    subscriptionStatusAt: Math.floor(nowMs / 1000),
    subscriptionStatusOf: sub.id,
  };
}

/** The mapping to work on: created, reopened, or as it is (undefined: the event is stale). */
async function openTenant(tenantId: string, eventTime: string): Promise<TenantRecord | undefined> {
  for (let round = 0; round < 5; round++) {
    const existing = await getTenant(tenantId);
    if (!existing) {
      const fresh: TenantRecord = { tenantId, status: 'CREATING', generation: 1, onboardedAt: eventTime };
      if (await putNewTenant(fresh)) return fresh;
      continue;
    }
    if (existing.status === 'CREATING' || existing.status === 'ACTIVE') return existing;
    if (existing.offboardedAt && Date.parse(eventTime) <= Date.parse(existing.offboardedAt)) return undefined;
    if (existing.status === 'OFFBOARDING') throw new Error(`Tenant ${tenantId} is being offboarded; retry the onboarding later`);
    // Re-onboarding newer than the offboarding: a new generation.
    const reopened = await updateTenant(tenantId, { generation: existing.generation, status: ['OFFBOARDED'] }, {
      status: 'CREATING',
      generation: existing.generation + 1,
      onboardedAt: eventTime,
    }, {
      remove: ['subscriptionId', 'subscriptionAttemptedAt', 'customerAttemptedAt', 'cancellation', 'cancelAt', 'offboardedAt',
        'subscriptionStartedAt', 'periodStart', 'periodEnd', 'previousPeriodStart', 'currency', 'subscriptionStatus', 'subscriptionStatusAt', 'subscriptionStatusOf',
        'customerDeletion', 'finalizeAt', 'plan', 'planVersion',
        ...(existing.customerDeleted || existing.customerDeletedByStripe ? ['customerId', 'customerDeleted', 'customerDeletedByStripe', 'customerDeletedByStripeAt'] : [])],
    });
    if (reopened) {
      logger.info('Tenant re-onboarded after an offboarding', { generation: reopened.generation });
      return reopened;
    }
  }
  throw new Error(`Tenant ${tenantId}: the mapping kept changing under concurrent events; retry`);
}

/**
 * The plan a tenant is onboarded on and its prices: with plans (`STRIPE_PLAN_PRICE_IDS`), the plan the
 * onboarding event names, else the default plan; a plan without Stripe prices, or no plan, gets `prices`.
 */
export function onboardingPrices(requestedPlan: string | undefined): { plan?: string; prices: string[] } {
  const byPlan = jsonEnv<Record<string, string[]>>(STRIPE_ENV.PLAN_PRICE_IDS, {});
  const known = (name: string | undefined) => (name !== undefined && Object.prototype.hasOwnProperty.call(byPlan, name) ? name : undefined);
  const plan = known(requestedPlan) ?? known(process.env[STRIPE_ENV.DEFAULT_PLAN] || undefined);
  const own = plan !== undefined ? byPlan[plan] : [];
  return { plan, prices: own.length > 0 ? own : jsonEnv<string[]>(STRIPE_ENV.PRICE_IDS, []) };
}

/** Onboards a tenant (see the module comment); `requestedPlan`: the plan its onboarding event names, with plans. */
export async function onboardTenant(tenantId: string, eventTime: string, contact: BillingContact, requestedPlan?: string): Promise<OnboardingResult> {
  const prefix = requiredEnv(STRIPE_ENV.IDENTIFIER_PREFIX);
  const { plan, prices } = onboardingPrices(requestedPlan);
  let record = await openTenant(tenantId, eventTime);
  if (!record) {
    logger.warn('Onboarding event older than the tenant\'s offboarding: ignored');
    metrics.addMetric(STRIPE_METRICS.STALE_EVENTS, MetricUnit.Count, 1);
    const current = await getTenant(tenantId);
    return { tenantId, outcome: 'STALE', generation: current?.generation ?? 0 };
  }
  if (record.status === 'ACTIVE' && (prices.length === 0 || record.subscriptionId)) {
    logger.info('Tenant already onboarded: nothing to do', { customerId: record.customerId });
    return { tenantId, outcome: 'EXISTS', generation: record.generation, customerId: record.customerId, subscriptionId: record.subscriptionId };
  }
  const nowMs = Date.now();
  const g = record.generation;

  let customerId = record.customerId;
  if (!customerId) {
    const previous = record.customerAttemptedAt;
    record = await mustUpdate(tenantId, g, { customerAttemptedAt: new Date(nowMs).toISOString() }, ['customerAttemptedAt']);
    const created = await findOrCreateCustomer(record, previous, contact, prefix, nowMs);
    customerId = await recordCustomer(tenantId, g, created);
    if (customerId !== created) logger.warn('Another delivery recorded a different customer for this tenant', { recorded: customerId, created });
  }

  let subscriptionId = record.subscriptionId;
  if (prices.length > 0 && !subscriptionId) {
    const previous = record.subscriptionAttemptedAt;
    await mustUpdate(tenantId, g, { subscriptionAttemptedAt: new Date(nowMs).toISOString() }, ['subscriptionAttemptedAt']);
    const created = await findOrCreateSubscription(record, customerId, previous, prices, prefix, nowMs);
    const fields = { subscriptionId: created.id, ...subscriptionFields(created, nowMs), ...(plan ? { plan } : {}) };
    const after = await updateTenant(tenantId, { generation: g }, fields,
      { ifAbsent: ['subscriptionId', 'subscriptionStartedAt', 'subscriptionStatus', 'subscriptionStatusAt', 'subscriptionStatusOf'] });
    if (!after) throw new Error(`Tenant ${tenantId}: generation changed while its subscription was being recorded; retry`);
    subscriptionId = after.subscriptionId;
  }

  const done = await updateTenant(tenantId, { generation: g, status: ['CREATING', 'ACTIVE'] }, { status: 'ACTIVE' });
  if (!done) throw new Error(`Tenant ${tenantId}: offboarded while being onboarded; retry`);
  logger.info('Tenant onboarded', { customerId, subscriptionId, generation: g });
  return { tenantId, outcome: 'CREATED', generation: g, customerId, subscriptionId };
}

async function mustUpdate(tenantId: string, generation: number, set: Record<string, unknown>, ifAbsent: string[]): Promise<TenantRecord> {
  const updated = await updateTenant(tenantId, { generation, status: ['CREATING', 'ACTIVE'] }, set, { ifAbsent });
  if (!updated) throw new Error(`Tenant ${tenantId}: its mapping changed (offboarded or re-onboarded) during the onboarding; retry`);
  return updated;
}

/** Whether a failure of a lifecycle step is Stripe refusing it (a 4xx other than 429). */
export function isRefusal(error: unknown): boolean {
  return failureKind(error) === 'refused';
}
