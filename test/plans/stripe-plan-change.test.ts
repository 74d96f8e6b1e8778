/**
 * StripeBilling with plans, bundled as Lambda runs it, against moto and stripe-mock
 * (behind the state-keeping proxy): a tenant subscribed to its plan's prices at
 * onboarding, and a plan change mid-period that swaps the subscription's items to
 * the new plan's prices on the same customer and subscription, prorated as of the
 * change's effectiveAt, once however often and however interrupted.
 */
import { App, Stack } from 'aws-cdk-lib';
import { BillingPlans, StripeProrationBehavior } from '../../src';
import { planNamedIn } from '../../src/plans/contract';
import { prorationDate } from '../../src/providers/stripe-billing/shared.lambda/plan-change';
import { bundle, lifecycleEvent, startWorld, StripeWorld, synthesizeStripeBilling } from '../providers/stripe-billing/support';
import { scratchDir } from '../support/synth';

type Handler = (event: unknown, context?: unknown) => Promise<Record<string, any>>;

const plans = new BillingPlans(new Stack(new App({ outdir: scratchDir('stripe-plans') }), 'Plans'), 'Plans', {
  plans: [
    { name: 'basic', stripePriceIds: ['price_basic_base', 'price_api_calls'] },
    { name: 'premium', stripePriceIds: ['price_premium_base', 'price_api_calls'] },
  ],
});

let world: StripeWorld;
let onboard: Handler;
let changePlan: Handler;
let seq = 0;

beforeAll(async () => {
  world = await startWorld({ plans, planChangeProration: StripeProrationBehavior.ALWAYS_INVOICE });
  onboard = bundle<{ handler: Handler }>('create-customer').handler;
  changePlan = bundle<{ handler: Handler }>('change-plan').handler;
}, 300_000);

afterAll(async () => {
  await world?.stop();
});

beforeEach(() => {
  world.crash.arm(undefined);
  world.stripe.clearRecording();
});

const subscriptionOf = (tenantId: string) => [...world.stripe.state.subscriptions.values()]
  .find((sub) => [...world.stripe.state.customers.values()]
    .some((c) => c.id === sub.customer && (c.metadata as Record<string, string>).tenantId === tenantId));

function planChanged(tenantId: string, plan: string, version: number, effectiveAt = new Date().toISOString()) {
  return lifecycleEvent('cdk_saas_billing_planChanged', { tenantId, plan, previousPlan: 'basic', effectiveAt, reason: 'CHANGE', version, requestEventId: `req-${version}` });
}

async function onboarded(tier: string): Promise<string> {
  const tenantId = `plan-tenant-${++seq}-${Date.now()}`;
  world.useFunction('CreateCustomer');
  await onboard(lifecycleEvent('sbt_aws_onboardingRequest', { tenantId, tier, tenantName: 'Acme' }));
  return tenantId;
}

test('the construct wires the swap to the plans\' planChanged event', () => {
  const { template } = synthesizeStripeBilling({ plans });
  template.hasResourceProperties('AWS::Events::Rule', {
    EventPattern: { 'source': ['sbt.control.plane'], 'detail-type': ['cdk_saas_billing_planChanged'] },
  });
});

test('onboarding subscribes to the plan\'s prices; a plan change swaps the items on the same customer and subscription', async () => {
  const tenantId = await onboarded('basic');
  const before = subscriptionOf(tenantId)!;
  expect(before.prices).toEqual(['price_basic_base', 'price_api_calls']);
  const keptItem = (before.items as { data: Array<{ id: string; price: { id: string } }> }).data.find((i) => i.price.id === 'price_api_calls')!.id;

  world.useFunction('ChangePlan');
  // The change took effect within the subscription's current period (one before it is prorated from the period's start: below).
  const periodStart = (before.items as { data: Array<{ current_period_start?: number }> }).data[0].current_period_start ?? 0;
  const effectiveAt = new Date(Math.max(Date.now() - 5_000, (periodStart + 1) * 1000)).toISOString();
  const result = await changePlan(planChanged(tenantId, 'premium', 2, effectiveAt));
  expect(result.outcome).toBe('SWAPPED');
  const after = subscriptionOf(tenantId)!;
  expect(after.id).toBe(before.id);
  expect(after.customer).toBe(before.customer);
  expect(after.prices).toEqual(['price_api_calls', 'price_premium_base']);
  // The metered price both plans share keeps its item (and its usage); the base price is swapped.
  expect((after.items as { data: Array<{ id: string }> }).data.map((i) => i.id)).toContain(keptItem);
  expect(after.lastUpdate).toMatchObject({ prorationBehavior: 'always_invoice', prorationDate: Math.floor(Date.parse(effectiveAt) / 1000) });
  const updates = world.stripe.requests.filter((r) => r.method === 'POST' && r.path === `/v1/subscriptions/${before.id}`);
  expect(updates).toHaveLength(1);

  // Redelivered, or an older version delivered late: nothing more is sent to Stripe.
  world.stripe.clearRecording();
  expect((await changePlan(planChanged(tenantId, 'premium', 2, effectiveAt))).outcome).toBe('IGNORED');
  expect((await changePlan(planChanged(tenantId, 'basic', 1, effectiveAt))).outcome).toBe('IGNORED');
  expect(world.stripe.requests.filter((r) => r.method === 'POST')).toEqual([]);
});

test('a crash at each request of the swap, then a rerun: the subscription holds the new plan\'s prices, swapped once', async () => {
  const probe = await onboarded('basic');
  world.useFunction('ChangePlan');
  world.crash.arm(undefined);
  await changePlan(planChanged(probe, 'premium', 2));
  const requests = world.crash.requests;
  expect(requests).toBeGreaterThanOrEqual(4);
  for (let at = 1; at <= requests; at++) {
    const tenantId = await onboarded('basic');
    world.useFunction('ChangePlan');
    const event = planChanged(tenantId, 'premium', 2);
    world.crash.arm(at);
    await expect(changePlan(event)).rejects.toThrow();
    world.crash.arm(undefined);
    const rerun = await changePlan(event);
    // SWAPPED (the crash came before the update), UNCHANGED (after it), IGNORED (after the plan was recorded).
    expect(['SWAPPED', 'UNCHANGED', 'IGNORED']).toContain(rerun.outcome);
    expect({ at, prices: subscriptionOf(tenantId)!.prices }).toEqual({ at, prices: ['price_api_calls', 'price_premium_base'] });
  }
}, 300_000);

test('a tenant being onboarded waits (retried); an offboarded or unknown one is left alone', async () => {
  world.useFunction('ChangePlan');
  expect((await changePlan(planChanged('nobody', 'premium', 2))).outcome).toBe('IGNORED');
});

test('a plan change delivered after the period rolled over is prorated from the current period\'s start (Stripe refuses a date before it)', () => {
  const periodStart = Date.parse('2026-03-01T00:00:00Z') / 1000;
  // in the period: the change's own instant
  expect(prorationDate('2026-03-14T10:30:00.000Z', periodStart)).toBe(Date.parse('2026-03-14T10:30:00Z') / 1000);
  // before it (a late delivery): the period's start
  expect(prorationDate('2026-02-28T23:59:00.000Z', periodStart)).toBe(periodStart);
  // no period known: the change's instant
  expect(prorationDate('2026-02-28T23:59:00.000Z', undefined)).toBe(Date.parse('2026-02-28T23:59:00Z') / 1000);
});

test('the plan an onboarding event names is read alike by BillingPlans and the providers: text, a number as its text, under tenantData', () => {
  expect(planNamedIn({ tier: ' premium ' }, 'tier')).toBe('premium');
  expect(planNamedIn({ tier: 2 }, 'tier')).toBe('2');
  expect(planNamedIn({ tenantData: { tier: 'basic' } }, 'tier')).toBe('basic');
  expect(planNamedIn({ tier: '' }, 'tier')).toBeUndefined();
  expect(planNamedIn({ tier: Number.NaN }, 'tier')).toBeUndefined();
  expect(planNamedIn(undefined, 'tier')).toBeUndefined();
});
