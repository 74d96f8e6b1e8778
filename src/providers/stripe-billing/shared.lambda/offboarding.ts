/**
 * Offboarding: the tenant's last usage pushed, then its subscription cancelled by the configured
 * policy, then (only when asked, and only once its invoices are settled) its customer deleted.
 * Each step is idempotent, so a retried or repeated offboarding finishes what an earlier delivery
 * started.
 *
 * - `IMMEDIATELY`: the subscription ends now; usage not yet invoiced is not billed.
 * - `IMMEDIATELY_INVOICE_USAGE`: Stripe invoices the metered usage so far at the cancellation
 *   ("invoice_now: Will generate a final invoice that invoices for any un-invoiced metered usage":
 *   https://docs.stripe.com/api/subscriptions/cancel). The usage up to the offboarding time must
 *   reach Stripe first, including records that arrive within the ingestor's allowed lateness: the
 *   cancellation waits until the window holding the offboarding time is closed and readable (the
 *   ingestor's worst-case closing delay, `OFFBOARDING_WAIT_SECONDS`). Meanwhile the tenant is
 *   `OFFBOARDING`, the scheduled push keeps billing its windows, and a one-time EventBridge
 *   Scheduler schedule invokes this function again at `finalizeAt` for the final push and the
 *   cancellation.
 * - `AT_PERIOD_END`: it ends when the current period ends; windows that close later but started
 *   before that time are still pushed and billed by the scheduled push.
 *
 * Windows that start at or after the offboarding time are usage after the offboarding: recorded
 * `AFTER_OFFBOARDING` (metric `WindowsAfterOffboarding`, alarmed), never sent. The window holding
 * the offboarding time is billed whole.
 *
 * Deleting a customer removes its payment methods, so an open invoice could never be collected
 * ("Permanently deletes a customer. It cannot be undone. Also immediately cancels any active
 * subscriptions on the customer": https://docs.stripe.com/api/customers/delete). With
 * `deleteCustomerOnOffboarding`, the customer is deleted only when it has no draft or open
 * invoice; otherwise the deletion is retried daily by a one-time schedule (metric
 * `CustomerDeletionsDeferred`) for up to 30 days, then given up with a warning.
 *
 * The mapping keeps the tenant (`OFFBOARDED`, with the offboarding's time): an onboarding event
 * older than it is ignored, a newer one re-onboards (and cancels a pending customer deletion).
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type Stripe from 'stripe';
import { numberEnv, requiredEnv } from '../../../shared.lambda/env';
import { logger } from '../../../shared.lambda/logger';
import { backoffMs, sleep } from '../../../shared.lambda/retry';
import { CancellationPolicy, STRIPE_ENV, STRIPE_METRICS } from '../contract';
import { cancellationKey } from './keys';
import { metrics } from './metrics';
import { acquireLease, ClosedWindowSource, EVENT_AGE_MARGIN_SECONDS, MAX_EVENT_AGE_SECONDS, newRun, pushConfigFromEnv, pushWindows } from './push';
import { scheduleOnce } from './schedule';
import { failureKind, stripeCall } from './stripe-client';
import { getTenant, putNewTenant, TenantRecord, updateTenant } from './tenants';

/** The result of an offboarding. */
export interface OffboardingResult {
  readonly tenantId: string;
  /**
   * `OFFBOARDED` when this delivery finished it; `WAITING` when the final push and the cancellation
   * wait for the tenant's last windows to close (until `finalizeAt`); `ALREADY`, `NO_CUSTOMER`
   * (never onboarded) or `STALE` (older than the onboarding) otherwise.
   */
  readonly outcome: 'OFFBOARDED' | 'WAITING' | 'ALREADY' | 'NO_CUSTOMER' | 'STALE';
  readonly windowsPushed?: number;
  readonly cancelAt?: string;
  readonly finalizeAt?: string;
  /** With `deleteCustomerOnOffboarding`: `DONE`, or `PENDING` while an invoice is open. */
  readonly customerDeletion?: string;
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
  /** This function's ARN: the target of the one-time schedules that invoke it again. */
  readonly functionArn?: string;
}

/** How often, and how long, a customer deletion waits for the customer's invoices to settle. */
const DELETION_RETRY_MS = 24 * 3600 * 1000;
const DELETION_ATTEMPTS = 30;
/** After the ingestor's worst-case closing delay, this margin before the final push. */
const FINALIZE_MARGIN_MS = 60_000;

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

/** Whether the customer has an invoice that is still to be finalized or paid (draft or open). */
async function hasUnsettledInvoices(customerId: string): Promise<boolean> {
  for (const status of ['draft', 'open'] as const) {
    const page = await stripeCall((s) => s.invoices.list({ customer: customerId, status, limit: 1 }));
    if (page.data.length > 0) return true;
  }
  return false;
}

/** Deletes the customer when its invoices are settled; returns whether it did (or it was gone). */
async function deleteCustomerIfSettled(customerId: string): Promise<boolean> {
  try {
    if (await hasUnsettledInvoices(customerId)) return false;
    await stripeCall((s) => s.customers.del(customerId));
  } catch (error) {
    if (!isMissing(error)) throw error;
  }
  return true;
}

function scheduleTarget(deps: OffboardingDeps): string {
  if (!deps.functionArn) throw new Error('The offboarding needs its own function ARN to schedule the next step (the Lambda context has it)');
  return deps.functionArn;
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
  const waitSeconds = numberEnv(STRIPE_ENV.OFFBOARDING_WAIT_SECONDS, { min: 0, integer: true, fallback: 0 });
  const windowMs = numberEnv(STRIPE_ENV.WINDOW_SECONDS, { min: 1, integer: true, fallback: 3600 }) * 1000;

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

  // Invoicing the usage now needs all of it first: wait until the window holding the offboarding time
  // (it ends on the next window boundary) is closed and readable.
  const waits = policy === 'IMMEDIATELY_INVOICE_USAGE' && deps.reader !== undefined && waitSeconds > 0;
  const windowEnd = Math.floor(Date.parse(eventTime) / windowMs) * windowMs + windowMs;
  const finalizeAt = waits ? new Date(windowEnd + waitSeconds * 1000 + FINALIZE_MARGIN_MS).toISOString() : undefined;
  t = await updateTenant(tenantId, { generation: t.generation, status: ['ACTIVE', 'OFFBOARDING'] },
    { status: 'OFFBOARDING', offboardedAt: eventTime, ...(finalizeAt ? { finalizeAt } : {}) }, { ifAbsent: ['offboardedAt', 'finalizeAt'] });
  if (!t) throw new Error(`Tenant ${tenantId}: its mapping changed during the offboarding; retry`);
  return finishOffboarding(t, policy, deps);
}

/** The one-time schedule's step: the final push and the cancellation of an offboarding that waited. */
export async function finalizeOffboarding(tenantId: string, generation: number, deps: OffboardingDeps): Promise<OffboardingResult> {
  const t = await getTenant(tenantId);
  if (!t || t.generation !== generation || t.status !== 'OFFBOARDING') {
    logger.info('Nothing to finalize: the tenant is not being offboarded in this generation', { generation, status: t?.status });
    return { tenantId, outcome: 'ALREADY', cancelAt: t?.cancelAt };
  }
  return finishOffboarding(t, requiredEnv(STRIPE_ENV.CANCELLATION) as CancellationPolicy, deps);
}

async function finishOffboarding(t: TenantRecord, policy: CancellationPolicy, deps: OffboardingDeps): Promise<OffboardingResult> {
  const { tenantId, generation: g } = t;
  const prefix = requiredEnv(STRIPE_ENV.IDENTIFIER_PREFIX);
  const removeCustomer = process.env[STRIPE_ENV.DELETE_CUSTOMER] === 'true';
  if (t.finalizeAt && Date.now() < Date.parse(t.finalizeAt)) {
    await scheduleOnce({ finalizeOffboarding: { tenantId, generation: g } }, Date.parse(t.finalizeAt), scheduleTarget(deps));
    metrics.addMetric(STRIPE_METRICS.OFFBOARDINGS_WAITING, MetricUnit.Count, 1);
    logger.info('Offboarding waits for the tenant\'s last windows to close', { finalizeAt: t.finalizeAt });
    return { tenantId, outcome: 'WAITING', finalizeAt: t.finalizeAt };
  }

  const windowsPushed = await finalPush(tenantId, deps);

  let cancelAt: string | undefined;
  if (t.subscriptionId) cancelAt = await cancelSubscription(t.subscriptionId, policy, prefix);
  let customerDeletion: 'DONE' | 'PENDING' | undefined;
  if (removeCustomer && t.customerId) {
    customerDeletion = await deleteCustomerIfSettled(t.customerId) ? 'DONE' : 'PENDING';
    if (customerDeletion === 'PENDING') {
      await scheduleOnce({ deleteCustomerWhenSettled: { tenantId, generation: g, attempt: 1 } },
        Date.now() + DELETION_RETRY_MS, scheduleTarget(deps));
      metrics.addMetric(STRIPE_METRICS.CUSTOMER_DELETIONS_DEFERRED, MetricUnit.Count, 1);
      logger.info('Customer kept until its invoices are paid or voided: deletion retried daily', { customerId: t.customerId });
    }
  }

  const done = await updateTenant(tenantId, { generation: g, status: ['OFFBOARDING'] }, {
    status: 'OFFBOARDED',
    cancellation: policy,
    ...(cancelAt ? { cancelAt } : {}),
    customerDeleted: customerDeletion === 'DONE',
    ...(customerDeletion ? { customerDeletion } : {}),
  });
  if (!done) throw new Error(`Tenant ${tenantId}: its mapping changed during the offboarding; retry`);
  logger.info('Tenant offboarded', { policy, cancelAt, customerDeletion, windowsPushed });
  return { tenantId, outcome: 'OFFBOARDED', windowsPushed, cancelAt, ...(customerDeletion ? { customerDeletion } : {}) };
}

/** The one-time schedule's step: a customer deletion that waited for its invoices to settle. */
export async function deleteCustomerWhenSettled(
  tenantId: string, generation: number, attempt: number, deps: OffboardingDeps,
): Promise<OffboardingResult> {
  const t = await getTenant(tenantId);
  if (!t || t.generation !== generation || t.status !== 'OFFBOARDED' || t.customerDeletion !== 'PENDING' || !t.customerId) {
    logger.info('No customer deletion pending for this generation (re-onboarded, or done)', { generation, status: t?.status });
    return { tenantId, outcome: 'ALREADY' };
  }
  let state: 'DONE' | 'PENDING' | 'GAVE_UP' = await deleteCustomerIfSettled(t.customerId) ? 'DONE' : 'PENDING';
  if (state === 'PENDING' && attempt >= DELETION_ATTEMPTS) {
    state = 'GAVE_UP';
    logger.warn('The customer still has an open invoice after 30 days: it is kept; settle the invoice and delete the customer by hand', { customerId: t.customerId });
  } else if (state === 'PENDING') {
    await scheduleOnce({ deleteCustomerWhenSettled: { tenantId, generation, attempt: attempt + 1 } },
      Date.now() + DELETION_RETRY_MS, scheduleTarget(deps));
    metrics.addMetric(STRIPE_METRICS.CUSTOMER_DELETIONS_DEFERRED, MetricUnit.Count, 1);
  }
  await updateTenant(tenantId, { generation, status: ['OFFBOARDED'] }, { customerDeletion: state, customerDeleted: state === 'DONE' });
  return { tenantId, outcome: 'OFFBOARDED', customerDeletion: state };
}
