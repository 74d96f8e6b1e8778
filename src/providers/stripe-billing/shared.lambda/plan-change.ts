/**
 * A plan change in Stripe (`changePlanFunction`, on `BillingPlans`' `planChanged`
 * event): the tenant's subscription gets the new plan's prices as its items, on
 * the same customer and the same subscription (nothing deleted and created
 * again), with the `proration_behavior` chosen in props and `proration_date` at
 * the change's `effectiveAt`, so that prorations are computed from the instant
 * the change took effect.
 *
 * - Items whose price the new plan keeps stay as they are; the others are
 *   deleted and the new plan's missing prices added, in one update whose
 *   `Idempotency-Key` names the tenant, its generation and the plan version.
 * - Idempotent: a subscription whose prices are the plan's already is left
 *   alone; an event older than the plan recorded on the mapping (its `version`)
 *   changes nothing; the plan and version are recorded after the update.
 * - A tenant whose subscription is being created waits (the event fails and is
 *   retried); an offboarded tenant, or one without a subscription, is left alone.
 *
 * Stripe's rule for meter prices: with the classic billing mode, usage reported
 * on a meter price before it is removed is not billed; with `billing_mode`
 * flexible, removing it bills that usage unless `proration_behavior` is `none`
 * (https://docs.stripe.com/billing/subscriptions/usage-based/manage-billing-setup).
 * Plans that share their metered prices and differ in their licensed prices lose nothing either way.
 */
import { planChangeKey } from './keys';
import { stripeCall } from './stripe-client';
import { getTenant, updateTenant } from './tenants';
import { jsonEnv, requiredEnv } from '../../../shared.lambda/env';
import { logger } from '../../../shared.lambda/logger';
import { STRIPE_ENV } from '../contract';

/** What a plan change did. */
export interface PlanChangeResult {
  readonly tenantId: string;
  /** `SWAPPED`: the items changed; `UNCHANGED`: they were the plan's already; `IGNORED`: nothing to do (see `reason`). */
  readonly outcome: 'SWAPPED' | 'UNCHANGED' | 'IGNORED';
  readonly reason?: string;
  readonly subscriptionId?: string;
  readonly prices?: string[];
}

/** The detail of a `planChanged` event, as far as the swap reads it. */
export interface PlanChangedInput {
  readonly tenantId: string;
  readonly plan?: string;
  readonly reason: string;
  readonly effectiveAt: string;
  readonly version: number;
}

/** Swaps the tenant's subscription items to the plan's prices (see the module comment). */
export async function changePlan(input: PlanChangedInput): Promise<PlanChangeResult> {
  const { tenantId } = input;
  if (input.reason !== 'CHANGE' || input.plan === undefined) {
    return { tenantId, outcome: 'IGNORED', reason: `${input.reason}: onboarding subscribes to the plan, offboarding cancels` };
  }
  const byPlan = jsonEnv<Record<string, string[]>>(STRIPE_ENV.PLAN_PRICE_IDS, {});
  const target = byPlan[input.plan]?.length ? byPlan[input.plan] : jsonEnv<string[]>(STRIPE_ENV.PRICE_IDS, []);
  const tenant = await getTenant(tenantId);
  if (!tenant || tenant.status === 'OFFBOARDED' || tenant.status === 'OFFBOARDING') {
    return { tenantId, outcome: 'IGNORED', reason: tenant ? `the tenant is ${tenant.status}` : 'no customer for the tenant' };
  }
  if (tenant.status === 'CREATING') throw new Error(`Tenant ${tenantId} is being onboarded: the plan change is retried once its subscription exists`);
  if (!tenant.subscriptionId) return { tenantId, outcome: 'IGNORED', reason: 'the tenant has no subscription' };
  if (tenant.planVersion !== undefined && tenant.planVersion >= input.version) {
    return { tenantId, outcome: 'IGNORED', reason: `plan version ${tenant.planVersion} is recorded already (this event: ${input.version})` };
  }
  const subscriptionId = tenant.subscriptionId;
  const sub = await stripeCall((s) => s.subscriptions.retrieve(subscriptionId));
  const items = (sub.items?.data ?? []).map((i) => ({ id: i.id, price: typeof i.price === 'string' ? i.price : i.price?.id }));
  const remove = items.filter((i) => !target.includes(i.price ?? ''));
  const add = target.filter((p) => !items.some((i) => i.price === p));
  let outcome: PlanChangeResult['outcome'] = 'UNCHANGED';
  if (remove.length > 0 || add.length > 0) {
    const proration = requiredEnv(STRIPE_ENV.PLAN_CHANGE_PRORATION) as 'create_prorations' | 'none' | 'always_invoice';
    await stripeCall((s) => s.subscriptions.update(subscriptionId, {
      items: [...remove.map((i) => ({ id: i.id, deleted: true })), ...add.map((price) => ({ price }))],
      proration_behavior: proration,
      proration_date: prorationDate(input.effectiveAt, sub.items?.data?.[0]?.current_period_start),
      metadata: { planVersion: String(input.version) },
    }, { idempotencyKey: planChangeKey(requiredEnv(STRIPE_ENV.IDENTIFIER_PREFIX), tenantId, tenant.generation, input.version) }));
    outcome = 'SWAPPED';
  }
  await updateTenant(tenantId, { generation: tenant.generation }, { plan: input.plan, planVersion: input.version });
  logger.info('Plan change applied to the subscription', { outcome, subscriptionId, plan: input.plan, removed: remove.length, added: add.length });
  return { tenantId, outcome, subscriptionId, prices: target };
}

/**
 * Prorations as of the instant the change took effect, but never before the subscription's current
 * period: a change delivered late (after the period rolled over; EventBridge retries for up to 24
 * hours) is prorated from the period's start. Stripe refuses a `proration_date` outside the current
 * period ("Cannot specify proration date outside of current subscription period"; the parameter:
 * https://docs.stripe.com/api/subscriptions/update#update_subscription-proration_date).
 */
export function prorationDate(effectiveAt: string, currentPeriodStart: number | undefined): number {
  const at = Math.floor(Date.parse(effectiveAt) / 1000);
  return currentPeriodStart !== undefined && at < currentPeriodStart ? currentPeriodStart : at;
}
