/**
 * A month of StripeBilling against the billing-period model (month-simulation.ts): every unit the
 * ledger closed is on its period's invoice, or carried over and reported, or reported not billed
 * with a disposition; the reconciliation records add up to the ledger. Then the month's first week
 * (every fault of the month happens in it) with each safeguard removed in turn: usage is lost or
 * lands on the wrong invoice.
 */
import { ALL_SAFEGUARDS, MONTH_PRICES, MonthResult, Safeguards, simulateMonth } from './month-simulation';
import { startWorld, StripeWorld } from './support';

/** The month's length (MONTH_DAYS shortens it while working on the code), and the variants' (every fault is in the first 7 days). */
const DAYS = Number(process.env.MONTH_DAYS ?? 30);
const VARIANT_DAYS = Math.min(DAYS, 8);
let world: StripeWorld;

beforeAll(async () => {
  world = await startWorld({ prices: MONTH_PRICES });
});

afterAll(async () => {
  await world?.stop();
});

function figures(r: MonthResult) {
  return {
    windows: r.windows,
    dispositions: r.dispositions,
    totals: r.totals,
    lost: r.lostWindows.length,
    carriedWithoutFault: r.carriedWithoutFault.length,
    unbilledBeforeOffboarding: r.unbilledBeforeOffboarding.length,
    carryOverNotes: r.carryOverNotes,
    runs: r.runs,
    invoices: r.invoices.length,
  };
}

/** Units of api_calls (whole units, no rounding) that are on no invoice and in no report. */
function unaccountedApiCalls(r: MonthResult): number {
  return Object.entries(r.totals).filter(([k]) => k.endsWith('|api_calls')).reduce((sum, [, t]) => sum + Number(t.unaccounted), 0);
}

test('a month with every safeguard: every unit on its period\'s invoice, or carried over and reported, or reported; the records add up', async () => {
  const r = await simulateMonth(world, { days: DAYS });
  console.log(`month, every safeguard: ${JSON.stringify(figures(r))}`);
  expect(r.lostWindows).toEqual([]);
  expect(r.carriedWithoutFault).toEqual([]);
  expect(r.unbilledBeforeOffboarding).toEqual([]);
  expect(r.eventsBeforeSubscription).toBe(0);
  expect(r.reconciliationProblems).toEqual([]);
  // Every request the handlers made passes plain stripe-mock's validation of Stripe's OpenAPI spec.
  expect(r.stripeRequests).toBeGreaterThan(1000);
  expect(r.refusedByStripeMock).toEqual([]);
  // Every fault left its mark: carried over with a note, dropped and reported, not billed after the offboarding.
  expect(r.dispositions).toMatchObject({ CARRIED_OVER: expect.any(Number), DROPPED: expect.any(Number), AFTER_OFFBOARDING: expect.any(Number) });
  expect(r.carryOverNotes).toBe(r.dispositions.CARRIED_OVER);
  expect(unaccountedApiCalls(r)).toBe(0);
  for (const [k, t] of Object.entries(r.totals)) {
    // storage_mb is rounded up once per period (less than a unit each): invoiced is at most that much above the ledger.
    if (k.endsWith('|storage_mb')) expect(Number(t.unaccounted)).toBeLessThanOrEqual(0);
  }
}, 3_600_000);

const removed: [keyof Safeguards, (r: MonthResult) => void][] = [
  // The push believes the previous period's invoice stays open: usage of the outage is sent into a finalized period.
  ['carryOver', (r) => {
    expect(r.lostWindows.length).toBeGreaterThan(0);
    expect(unaccountedApiCalls(r)).toBeGreaterThan(0);
  }],
  // Periods start at the onboarding minute: the window holding each period end straddles it and misses its invoice.
  ['alignment', (r) => expect(r.carriedWithoutFault.length).toBeGreaterThan(0)],
  // The cancellation does not wait: the offboarded tenant's last windows are closed after it and not billed.
  ['offboardingWait', (r) => expect(r.unbilledBeforeOffboarding.length).toBeGreaterThan(0)],
  // Nobody compares with Stripe: events Stripe dropped (inactive meter, deleted customer) are lost without a report.
  ['reconciliation', (r) => {
    expect(r.lostWindows.length).toBeGreaterThan(0);
    expect(unaccountedApiCalls(r)).toBeGreaterThan(0);
  }],
];

test.each(removed)('without %s, the month loses or misplaces usage', async (safeguard, fails) => {
  const r = await simulateMonth(world, { days: VARIANT_DAYS, safeguards: { ...ALL_SAFEGUARDS, [safeguard]: false } });
  console.log(`month without ${safeguard}: ${JSON.stringify({ ...figures(r), lostWindows: r.lostWindows.slice(0, 5), carriedWithoutFault: r.carriedWithoutFault.slice(0, 5) })}`);
  fails(r);
}, 3_600_000);
