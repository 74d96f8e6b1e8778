/**
 * `npx projen demo:marketplace`'s flow (examples/marketplace-flow.ts), run as a test: register,
 * onboard, usage, metering, cancellation against moto behind the Marketplace emulator.
 */
import { runMarketplaceFlow } from '../../../examples/marketplace-flow';
import { useMarketplaceSdk } from '../../support/marketplace-emulator';

test('the demo flow meters each hour once and ends with the subscription cancelled after its final metering', async () => {
  useMarketplaceSdk();
  const steps: string[] = [];
  const result = await runMarketplaceFlow((s) => steps.push(`${s.actor} ${s.name}: ${s.detail}`));
  // 1630 API calls (req-0002 counted once) = 1.63 thousands -> 2; 12.3456 GB-hours rounded up -> 13;
  // the open hour's 2100 at the cancellation: 1.63 + 2.1 = 3.73 -> 4 in the month, 2 more (same month) or 2 (a new one).
  expect(result.records.map((r) => [r.dimension, r.quantity])).toEqual([
    ['api_calls_thousands', 2], ['storage_gb_hours', 13], ['api_calls_thousands', 2],
  ]);
  expect(result.secondRunSent).toBe(0);
  expect(result.events).toEqual(['CONFIRMED', 'CONFIRMED', 'FAILED', 'CANCELLATION_PENDING', 'CANCELLED']);
  expect(result.finalState).toBe('CANCELLED');
  expect(steps.filter((s) => s.includes('HTTP 409'))).toHaveLength(1);
}, 300_000);
