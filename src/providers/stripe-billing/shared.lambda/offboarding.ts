/**
 * Offboarding: a final push of the tenant's closed windows, then its
 * subscription cancelled by the configured policy, then (only when asked) its
 * customer deleted. Each step is idempotent, so a retried or repeated
 * offboarding finishes what an earlier delivery started.
 *
 * - `IMMEDIATELY`: the subscription ends now; usage not yet invoiced is not billed.
 * - `IMMEDIATELY_INVOICE_USAGE`: it ends now and Stripe invoices the metered usage so far (and prorations).
 * - `AT_PERIOD_END`: it ends when the current period ends; windows that close
 *   later but started before that time are still pushed and billed.
 *
 * The mapping keeps the tenant (`OFFBOARDED`, with the offboarding's time):
 * an onboarding event older than it is ignored, a newer one re-onboards.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type Stripe from 'stripe';
import { requiredEnv } from '../../../shared.lambda/env';
import { logger } from '../../../shared.lambda/logger';
import { backoffMs, sleep } from '../../../shared.lambda/retry';
import { CancellationPolicy, STRIPE_ENV, STRIPE_METRICS } from '../contract';
import { cancellationKey } from './keys';
import { metrics } from './metrics';
import { acquireLease, ClosedWindowSource, EVENT_AGE_MARGIN_SECONDS, MAX_EVENT_AGE_SECONDS, newRun, pushConfigFromEnv, pushWindows } from './push';
import { failureKind, stripeCall } from './stripe-client';
import { getTenant, putNewTenant, TenantRecord, updateTenant } from './tenants';

/** The result of an offboarding. */
export interface OffboardingResult {
  readonly tenantId: string;
  /** `OFFBOARDED` when this delivery finished it; `ALREADY`, `NO_CUSTOMER` (never onboarded) or `STALE` (older than the onboarding) otherwise. */
  readonly outcome: 'OFFBOARDED' | 'ALREADY' | 'NO_CUSTOMER' | 'STALE';
  readonly windowsPushed?: number;
  readonly cancelAt?: string;
}

/** What the offboarding needs besides the environment. */
export interface OffboardingDeps {
  /** The usage read contract; undefined when the construct has no ingestor. */
  readonly reader?: ClosedWindowSource;
  readonly hasTimeLeft: () => boolean;
  /** How long the push lease is held at most, ms. */
  readonly leaseMs: number;
  /** Who takes the lease (the invocation's request id). */
  readonly owner: string;
}

/** How long an offboarding waits for a running push to release the lease. */
const LEASE_WAIT_MS = 120_000;

function isMissing(error: unknown): boolean {
  return (error as { statusCode?: number; code?: string })?.statusCode === 404
    || (error as { code?: string })?.code === 'resource_missing';
}

/** Cancels the subscription by the policy; returns when it ends (ISO). */
async function cancelSubscription(subscriptionId: string, policy: CancellationPolicy, prefix: string): Promise<string> {
  const idempotencyKey = cancellationKey(prefix, subscriptionId);
  let sub: Stripe.Subscription;
  try {
    sub = policy === 'AT_PERIOD_END'
      ? await stripeCall((s) => s.subscriptions.update(subscriptionId, { cancel_at_period_end: true }, { idempotencyKey }))
      : await stripeCall((s) => s.subscriptions.cancel(subscriptionId,
        { invoice_now: policy === 'IMMEDIATELY_INVOICE_USAGE', prorate: policy === 'IMMEDIATELY_INVOICE_USAGE' }, { idempotencyKey }));
  } catch (error) {
    if (isMissing(error)) {
      logger.info('Subscription already gone', { subscriptionId });
      return new Date().toISOString();
    }
    if (failureKind(error) !== 'refused') throw error;
    // Refused: cancelled already (by Stripe for non-payment, or an earlier delivery)?
    const current = await stripeCall((s) => s.subscriptions.retrieve(subscriptionId));
    if (current.status !== 'canceled') throw error;
    sub = current;
  }
  const endsAt = sub.cancel_at ?? sub.canceled_at ?? sub.ended_at;
  return new Date((endsAt ?? Math.floor(Date.now() / 1000)) * 1000).toISOString();
}

async function deleteCustomer(customerId: string): Promise<void> {
  try {
    await stripeCall((s) => s.customers.del(customerId));
  } catch (error) {
    if (!isMissing(error)) throw error;
  }
}

/** The tenant's closed windows pushed before its subscription ends; throws when not all of them could be. */
async function finalPush(tenantId: string, deps: OffboardingDeps): Promise<number> {
  if (!deps.reader) return 0;
  const run = newRun(pushConfigFromEnv(), deps.hasTimeLeft);
  let release = await acquireLease(run, deps.owner, deps.leaseMs);
  for (let attempt = 1, waited = 0; !release && waited < LEASE_WAIT_MS; attempt++) {
    const wait = 1000 + backoffMs(attempt, 1000, 15_000);
    await sleep(wait);
    waited += wait;
    release = await acquireLease(run, deps.owner, deps.leaseMs);
  }
  if (!release) throw new Error(`Tenant ${tenantId}: the usage push is running; the final push will be retried`);
  try {
    const since = new Date(Date.now() - (MAX_EVENT_AGE_SECONDS - EVENT_AGE_MARGIN_SECONDS) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const windows = await deps.reader.readTenantClosedWindows(tenantId, { since });
    const complete = await pushWindows(run, windows);
    if (!complete || run.tally.deferred > 0) {
      throw run.tally.abort ?? new Error(`Tenant ${tenantId}: the final push could not send every window (${run.tally.deferred} deferred); retrying before cancelling`);
    }
    logger.info('Final usage push done', run.tally.summary());
    return run.tally.dispositions.SENT;
  } finally {
    run.tally.emit();
    await release();
  }
}

/** Offboards a tenant (see the module comment). */
export async function offboardTenant(tenantId: string, eventTime: string, deps: OffboardingDeps): Promise<OffboardingResult> {
  const policy = requiredEnv(STRIPE_ENV.CANCELLATION) as CancellationPolicy;
  const removeCustomer = process.env[STRIPE_ENV.DELETE_CUSTOMER] === 'true';
  const prefix = requiredEnv(STRIPE_ENV.IDENTIFIER_PREFIX);

  let t: TenantRecord | undefined = await getTenant(tenantId);
  if (!t) {
    // Never onboarded: keep the offboarding's time so that an older onboarding delivered later is ignored.
    if (await putNewTenant({ tenantId, status: 'OFFBOARDED', generation: 0, offboardedAt: eventTime })) {
      logger.info('Tenant has no customer: recorded as offboarded');
      return { tenantId, outcome: 'NO_CUSTOMER' };
    }
    t = await getTenant(tenantId);
    if (!t) throw new Error(`Tenant ${tenantId}: mapping vanished; retry`);
  }
  if (t.status === 'OFFBOARDED') return { tenantId, outcome: 'ALREADY', cancelAt: t.cancelAt };
  if (t.onboardedAt && Date.parse(eventTime) < Date.parse(t.onboardedAt)) {
    logger.warn('Offboarding event older than the tenant\'s onboarding: ignored');
    metrics.addMetric(STRIPE_METRICS.STALE_EVENTS, MetricUnit.Count, 1);
    return { tenantId, outcome: 'STALE' };
  }
  if (t.status === 'CREATING') throw new Error(`Tenant ${tenantId} is still being onboarded; the offboarding will be retried`);

  const g = t.generation;
  t = await updateTenant(tenantId, { generation: g, status: ['ACTIVE', 'OFFBOARDING'] },
    { status: 'OFFBOARDING', offboardedAt: eventTime }, { ifAbsent: ['offboardedAt'] });
  if (!t) throw new Error(`Tenant ${tenantId}: its mapping changed during the offboarding; retry`);

  const windowsPushed = await finalPush(tenantId, deps);

  let cancelAt: string | undefined;
  if (t.subscriptionId) cancelAt = await cancelSubscription(t.subscriptionId, policy, prefix);
  if (removeCustomer && t.customerId) await deleteCustomer(t.customerId);

  const done = await updateTenant(tenantId, { generation: g, status: ['OFFBOARDING'] }, {
    status: 'OFFBOARDED',
    cancellation: policy,
    ...(cancelAt ? { cancelAt } : {}),
    customerDeleted: removeCustomer && t.customerId !== undefined,
  });
  if (!done) throw new Error(`Tenant ${tenantId}: its mapping changed during the offboarding; retry`);
  logger.info('Tenant offboarded', { policy, cancelAt, customerDeleted: done.customerDeleted, windowsPushed });
  return { tenantId, outcome: 'OFFBOARDED', windowsPushed, cancelAt };
}
