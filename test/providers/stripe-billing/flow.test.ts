/**
 * `npx projen demo:stripe` as a test: the flow it prints (examples/stripe-flow.ts)
 * ends with what Stripe and the bus should hold.
 */
import { FlowStep, runStripeFlow } from '../../../examples/stripe-flow';

test('the demo flow: setup, onboarding, usage pushed once, a signed webhook, offboarding', async () => {
  const steps: FlowStep[] = [];
  const result = await runStripeFlow((s) => steps.push(s));
  expect(result.customers).toBe(1);
  expect(result.meters).toEqual(['api_calls', 'storage_mb_hours']);
  expect(result.subscriptions).toEqual([{ id: expect.stringMatching(/^sub_/), status: 'canceled', prices: ['price_1ExampleBasePlan', 'price_1ExampleApiCalls', 'price_1ExampleStorage'] }]);
  // 12.3456 GB-hours x 1000, rounded up: 12346 MB-hours.
  expect(result.meterEvents.map((e) => `${e.eventName}=${e.value}`).sort()).toEqual(['api_calls=1250', 'api_calls=42', 'storage_mb_hours=12346']);
  expect(new Set(result.meterEvents.map((e) => e.identifier)).size).toBe(3);
  expect(result.secondRunSent).toBe(0);
  expect(result.billingEvents).toEqual([{ detailType: 'sbt_aws_billingSuccess', detail: expect.objectContaining({ tenantId: 'acme-corp', amount: 1999, currency: 'usd' }) }]);
  expect(steps.map((s) => s.name)).toEqual(expect.arrayContaining(['setup', 'onboarding', 'usage', 'close', 'push', 'push again', 'webhook', 'bus', 'offboarding']));
  // The printed steps name units, the multiplier and its rounding, and the minor currency unit.
  const details = steps.map((s) => s.detail);
  expect(details).toContainEqual(expect.stringMatching(
    /^storage_mb_hours = 12346 MB-hours for cus_\w+ at \S+: storageGb 12\.3456 GB-hours × multiplier 1000 = 12345\.6 MB-hours, rounded UP to a whole number/));
  expect(details).toContainEqual(expect.stringMatching(/^sbt_aws_billingSuccess for tenant acme-corp: amount 1999 cents \(19\.99 USD\)/));
});
