/**
 * A month of StripeBilling against the billing-period model (month-simulation.ts): every unit the
 * ledger closed is on its period's invoice, or carried over and reported, or reported not billed
 * with a disposition; the reconciliation records add up to the ledger. Then the same month with
 * each safeguard removed in turn, which loses or misplaces usage.
 */
import { MONTH_PRICES, simulateMonth } from './month-simulation';
import { startWorld, StripeWorld } from './support';

const DAYS = Number(process.env.MONTH_DAYS ?? 30);
let world: StripeWorld;

beforeAll(async () => {
  world = await startWorld({ prices: MONTH_PRICES });
});

afterAll(async () => {
  await world?.stop();
});

test('a month with every safeguard: every unit on its period\'s invoice, or carried over and reported, or reported; the records add up', async () => {
  const result = await simulateMonth(world, { days: DAYS });
  console.log(`month: ${JSON.stringify({ ...result, invoices: result.invoices.length, periods: result.periods.length })}`);
  expect(result.lostWindows).toEqual([]);
  expect(result.carriedWithoutFault).toEqual([]);
  expect(result.eventsBeforeSubscription).toBe(0);
  expect(result.reconciliationProblems).toEqual([]);
  for (const [k, t] of Object.entries(result.totals)) {
    // api_calls are whole units: nothing unaccounted; storage_mb is rounded up once per period (< 1 unit each).
    if (k.endsWith('|api_calls')) expect(`${k} ${t.unaccounted}`).toBe(`${k} 0`);
    else expect(Number(t.unaccounted)).toBeLessThanOrEqual(0);
  }
}, 3_600_000);
