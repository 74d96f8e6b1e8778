import { runFlow } from '../../examples/local-flow/flow';
import { scratchDir } from '../support/synth';

test('end to end: onboarding -> customer, usage -> aggregates -> charges, signed webhook -> billingSuccess on the bus', async () => {
  const result = await runFlow({ outdir: scratchDir('flow') });

  // The onboarding rule, with the synthesized pattern, routed the control plane's event (and not the other source's).
  expect(result.onboardingDeliveries).toBe(1);
  expect(result.customersForTenant).toBe(1);

  // Usage: 4 records put, one a producer retry, and the batch delivered twice: each record counted once.
  expect(result.aggregates.sort((a, b) => a.metric.localeCompare(b.metric))).toEqual([
    { metric: 'apiCalls', sum: '2000', count: '2' },
    { metric: 'storageGb', sum: '3.3', count: '1' },
  ]);
  expect(result.duplicateRecordsCounted).toBe(0);

  // Push: 2000 x 0.0025 = 5 USD, 3.3 x 0.1 = 0.33 USD, exactly.
  expect(result.chargeLines.sort((a, b) => a.metric.localeCompare(b.metric))).toEqual([
    { metric: 'apiCalls', quantity: '2000', unitPrice: '0.0025', amount: '5', currency: 'USD' },
    { metric: 'storageGb', quantity: '3.3', unitPrice: '0.1', amount: '0.33', currency: 'USD' },
  ]);

  // Webhook: accepted, and the billing event arrived on the bus for the rest of the control plane.
  expect(result.webhookStatus).toBe(200);
  expect(result.billingEvents).toEqual([
    expect.objectContaining({ source: 'sbt.control.plane', detailType: 'sbt_aws_billingSuccess', detail: expect.objectContaining({ tenantId: 'tenant-flow-1', eventId: 'evt_flow_1' }) }),
  ]);

  // The printed steps name units and multipliers.
  expect(result.steps.find((s) => s.name === 'push usage')?.detail)
    .toMatch(/charge lines \(exact decimals, in major units\): .*apiCalls 2000 API calls × 0\.0025 USD per API call = 5 USD/);

  // Which steps the emulator performed and which the flow did in its place.
  expect(result.steps.map((s) => `${s.actor}: ${s.name}`)).toEqual([
    'flow: synthesize',
    'flow: emulator resources',
    'flow: rules',
    'emulator: onboarding event',
    'flow: create customer',
    'emulator: usage records',
    'flow: aggregate',
    'flow: close windows',
    'flow: push usage',
    'flow: webhook',
    'emulator: billing event',
  ]);
});
