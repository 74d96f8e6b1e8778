/**
 * DynamoDbBilling with plans, end to end on moto with the bundled handlers: usage
 * records through the aggregator and the closer, plans from BillingPlans' handler,
 * charge lines from the usage push.
 *
 * - A plan change in the middle of a period: the window it falls in and the later
 *   ones at the new plan, the units used before it counted toward the new plan's
 *   free quantity and tiers.
 * - A month for 3 tenants on 2 plans (tiers, a free quantity, a minimum charge),
 *   one of them changing plan: every invoice (period total) equals, to the cent and
 *   exactly, the amount this test computes from the records on its own (its own
 *   tier arithmetic on scaled integers, not the library's).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { Duration } from 'aws-cdk-lib';
import type { KinesisStreamBatchResponse, KinesisStreamEvent } from 'aws-lambda';
import { controlPlaneEvent, freshPlansTable, planEventsHandler } from './support';
import { BillingPlan, ControlPlaneEvents } from '../../src';
import { PUSH_ENV } from '../../src/providers/dynamodb-billing/contract';
import { seedClosedWindows } from '../ingestor/closed-windows';
import { bundle, createUsageTable, kinesisEvent, kinesisRecord, lambdaContext, TestClock, toRecords, Usage } from '../ingestor/support';
import { bundledHandler, synthesizedSchemas } from '../providers/handlers/harness';
import { createTable } from '../providers/support';
import { startMoto, Moto } from '../support/emulators';

const HOUR = 3_600_000;
const CPE = ControlPlaneEvents.SBT_AWS;

const PLANS: BillingPlan[] = [
  {
    name: 'basic',
    metrics: [
      { metric: 'apiCalls', price: { freeQuantity: '10000', tiers: [{ upTo: '90000', unitPrice: '0.002' }, { unitPrice: '0.001' }], minimumCharge: '5' } },
      { metric: 'storageGb', price: { unitPrice: '0.1', minimumCharge: '2.5' } },
    ],
  },
  {
    name: 'premium',
    metrics: [
      { metric: 'apiCalls', price: { freeQuantity: '50000', tiers: [{ upTo: '450000', unitPrice: '0.0015' }, { unitPrice: '0.0008' }], minimumCharge: '20' } },
      { metric: 'storageGb', price: { unitPrice: '0.075' } },
    ],
  },
];

let moto: Moto;
let client: DynamoDBClient;
let doc: DynamoDBDocumentClient;
let clock: TestClock;
let billingTable: string;
let tableSeq = 0;
const aggregate = () => bundle<KinesisStreamEvent, KinesisStreamBatchResponse>('aggregator');
const close = () => bundle<unknown, unknown>('closer');
const push = () => bundledHandler<unknown, { windowsBilled: number; recordsFinalized: number }>('put-usage');

beforeAll(async () => {
  moto = await startMoto();
  client = new DynamoDBClient({});
  doc = DynamoDBDocumentClient.from(client);
  Object.assign(process.env, { POWERTOOLS_LOG_LEVEL: 'SILENT', POWERTOOLS_METRICS_DISABLED: 'true', POWERTOOLS_SERVICE_NAME: 'plans-test' });
  clock = new TestClock(Date.UTC(2026, 0, 1));
}, 60_000);

afterAll(async () => {
  clock?.restore();
  client?.destroy();
  await moto?.stop();
});

async function freshBilling(): Promise<string> {
  const name = `billing-plans-${process.pid}-${++tableSeq}`;
  await createTable(synthesizedSchemas().billing(name));
  Object.assign(process.env, {
    [PUSH_ENV.BILLING_TABLE_NAME]: name,
    [PUSH_ENV.UNIT_PRICES]: '[]',
    [PUSH_ENV.INITIAL_LOOKBACK_SECONDS]: String(40 * 86400),
  });
  return name;
}

async function lines(tenantId: string) {
  const r = await doc.send(new QueryCommand({
    TableName: billingTable, KeyConditionExpression: 'pk = :pk AND begins_with(sk, :c)', ExpressionAttributeValues: { ':pk': `CUSTOMER#${tenantId}`, ':c': 'CHARGE#' },
  }));
  return r.Items ?? [];
}

async function periodTotals(): Promise<Map<string, string>> {
  const r = await doc.send(new ScanCommand({ TableName: billingTable, FilterExpression: 'kind = :k', ExpressionAttributeValues: { ':k': 'PERIOD_TOTAL' } }));
  return new Map((r.Items ?? []).map((i) => [`${i.tenantId}|${i.period}|${i.currency}`, String(i.totalAmount)]));
}

test('a plan change mid-period: the window it falls in and the later ones at the new plan; units used before it count toward the new plan', async () => {
  const start = Date.UTC(2026, 1, 2, 0, 0, 0); // 2026-02-02
  clock.set(start - HOUR);
  const usage = await createUsageTable(client, { allowedLateness: Duration.minutes(15) });
  await freshPlansTable({ plans: PLANS });
  billingTable = await freshBilling();
  const planEvents = planEventsHandler();
  await planEvents(controlPlaneEvent(CPE.onboardingRequest.detailType, { tenantId: 'mid', tier: 'basic' }, { time: new Date(start - HOUR) }));
  clock.set(start + 2 * HOUR + 30 * 60_000); // the change at 02:30
  await planEvents(controlPlaneEvent(CPE.planChangeRequest.detailType, { tenantId: 'mid', tier: 'premium' }));
  // 8,000 calls in each of the hours 00, 01 and 02 (02 holds the change) and 03.
  const at = (h: number) => new Date(start + h * HOUR).toISOString().replace('.000Z', 'Z');
  await seedClosedWindows(client, usage, [0, 1, 2, 3].map((h) => ({ tenantId: 'mid', metric: 'apiCalls', windowStart: at(h), sum: '8000', count: 8 })));
  clock.set(start + 6 * HOUR);
  await push()(undefined, lambdaContext());
  const byWindow = new Map((await lines('mid')).map((l) => [String(l.windowStart), l]));
  // basic: 10,000 free. 00: 8,000 free (0); 01: 2,000 free, 6,000 at 0.002 = 12.
  expect([at(0), at(1)].map((w) => [byWindow.get(w)?.plan, String(byWindow.get(w)?.amount)])).toEqual([['basic', '0'], ['basic', '12']]);
  // premium from the 02:00 window on: 16,000 used already count toward its 50,000 free: 02 is free (24,000), 03 is free (32,000).
  expect([at(2), at(3)].map((w) => [byWindow.get(w)?.plan, String(byWindow.get(w)?.amount), String(byWindow.get(w)?.unitsBefore)]))
    .toEqual([['premium', '0', '16000'], ['premium', '0', '24000']]);
}, 120_000);

// ------------------------------------------------------------------ the month

/** A seeded pseudo-random generator (a linear congruential one, BigInt: no bitwise operators): the same month every run. */
function rng(seed: number): () => number {
  let state = BigInt(seed);
  return () => {
    state = (state * 6364136223846793005n + 1442695040888963407n) % (2n ** 64n);
    return Number(state / 2n ** 11n) / 2 ** 53;
  };
}

/** Scaled integers (10^-12), the test's own arithmetic. */
const SCALE = 10n ** 12n;
function scaled(decimal: string): bigint {
  const [w, f = ''] = decimal.split('.');
  return BigInt(w) * SCALE + BigInt(f.padEnd(12, '0').slice(0, 12));
}
/** A price applied to a quantity: both scaled by 10^12, the result by 10^12. */
const times = (q: bigint, p: bigint) => (q * p) / SCALE; // exact: quantities have at most 9 decimals and prices 3 here
function costUpTo(plan: BillingPlan, metric: string, quantity: bigint): bigint {
  const price = plan.metrics!.find((m) => m.metric === metric)!.price!;
  let billable = quantity - scaled(price.freeQuantity ?? '0');
  if (billable < 0n) billable = 0n;
  if (price.unitPrice) return times(billable, scaled(price.unitPrice));
  let cost = 0n;
  let lower = 0n;
  for (const tier of price.tiers!) {
    const upper = tier.upTo === undefined ? billable : (scaled(tier.upTo) < billable ? scaled(tier.upTo) : billable);
    if (upper > lower) cost += times(upper - lower, scaled(tier.unitPrice));
    if (tier.upTo === undefined || billable <= scaled(tier.upTo)) break;
    lower = scaled(tier.upTo);
  }
  return cost;
}
const toCents = (x: bigint) => (x * 100n + SCALE / 2n) / SCALE; // half up, amounts are positive
const fromLibrary = (decimal: string) => scaled(decimal);

test('a month for 3 tenants on 2 plans, one plan change: every invoice equals the amount computed from the records, to the cent', async () => {
  const month = Date.UTC(2026, 2, 1); // March 2026: 31 days
  const end = Date.UTC(2026, 3, 1);
  clock.set(month - 2 * HOUR);
  // Daily windows (a month is 31 of them per tenant and metric); two days of lateness: a day's records are
  // aggregated at the day's end, within their windows' lateness.
  await createUsageTable(client, { granularity: 'DAY', allowedLateness: Duration.days(2) });
  const WINDOW = 86_400_000;
  await freshPlansTable({ plans: PLANS });
  billingTable = await freshBilling();
  const planEvents = planEventsHandler();
  const onboarded = { a: 'basic', b: 'premium', c: 'basic' } as const;
  for (const [tenantId, tier] of Object.entries(onboarded)) {
    await planEvents(controlPlaneEvent(CPE.onboardingRequest.detailType, { tenantId, tier }, { time: new Date(month - 2 * HOUR) }));
  }
  const changeAt = Date.UTC(2026, 2, 14, 10, 30, 0);

  // The records: every tenant and metric, about a third of the hours, 1 to 3 records each; 2% resent, 1% voided.
  const random = rng(17);
  const records: Usage[] = [];
  const voids: Array<{ id: string; tenantId: string; voids: string; timestamp: string }> = [];
  const volume = { a: 600, b: 90, c: 700 } as const; // calls per record, on average
  let n = 0;
  for (let t = month; t < end + 24 * HOUR; t += HOUR) {
    for (const tenantId of ['a', 'b', 'c'] as const) {
      for (const metric of ['apiCalls', 'storageGb']) {
        if (random() > 0.35) continue;
        for (let k = 1 + Math.floor(random() * 3); k > 0; k--) {
          const value = metric === 'apiCalls' ? String(Math.floor(random() * 2 * volume[tenantId])) : (random() * 4).toFixed(3);
          const r: Usage = { id: `r${++n}`, tenantId, metric, value, timestamp: new Date(t + Math.floor(random() * HOUR)).toISOString() };
          records.push(r);
          if (random() < 0.02) records.push(r);
          if (random() < 0.01) voids.push({ id: `v${n}`, tenantId, voids: r.id, timestamp: r.timestamp as string });
        }
      }
    }
  }

  // Through the aggregator, day by day, on time; the plan change at its instant.
  const day = 86_400_000;
  let changed = false;
  const phases: Record<string, number> = {};
  const realNow = () => performance.now();
  let t0 = realNow();
  for (let d = month; d < end + 24 * HOUR; d += day) {
    const dayEnd = d + day;
    if (!changed && changeAt < dayEnd) {
      clock.set(changeAt);
      await planEvents(controlPlaneEvent(CPE.planChangeRequest.detailType, { tenantId: 'c', tier: 'premium' }));
      changed = true;
    }
    clock.set(dayEnd + 60_000);
    const kinesis = [
      ...toRecords(records.filter((r) => Date.parse(r.timestamp as string) >= d && Date.parse(r.timestamp as string) < dayEnd)),
      ...voids.filter((v) => Date.parse(v.timestamp) >= d && Date.parse(v.timestamp) < dayEnd).map((v) => kinesisRecord({ data: v })),
    ];
    for (let i = 0; i < kinesis.length; i += 100) {
      const res = await aggregate()(kinesisEvent(kinesis.slice(i, i + 100)), lambdaContext());
      expect(res.batchItemFailures).toEqual([]);
    }
    // The closer runs through the month as its schedule does (a first run at the month's end would start
    // no further back than the ledger's retention: the closer's bounded start).
    await close()(undefined, lambdaContext());
  }
  phases.aggregateAndClose = realNow() - t0;
  t0 = realNow();
  clock.set(end + 4 * 86_400_000);
  await close()(undefined, lambdaContext());
  phases.close = realNow() - t0;
  t0 = realNow();
  const summary = await push()(undefined, lambdaContext());
  phases.push = realNow() - t0;
  expect(summary.recordsFinalized).toBeGreaterThan(0);

  // The test's own computation: distinct records, less the voided ones, per window; windows in order;
  // the plan at each window's end; free quantities and tiers over the month's units; the minimum of the plan at the month's end.
  const voided = new Set(voids.map((v) => `${v.tenantId}|${v.voids}`));
  const distinct = new Map(records.map((r) => [`${r.tenantId}|${r.id}`, r]));
  const windows = new Map<string, bigint>();
  for (const r of distinct.values()) {
    const ts = Date.parse(r.timestamp as string);
    if (ts >= end || voided.has(`${r.tenantId}|${r.id}`)) continue;
    const key = `${r.tenantId}|${r.metric}|${Math.floor(ts / WINDOW) * WINDOW}`;
    windows.set(key, (windows.get(key) ?? 0n) + scaled(String(r.value)));
  }
  const planOf = (tenantId: string, windowEndMs: number) => (tenantId === 'c' && windowEndMs > changeAt ? 'premium' : onboarded[tenantId as 'a' | 'b' | 'c']);
  const expected = new Map<string, bigint>();
  for (const tenantId of ['a', 'b', 'c']) {
    let invoice = 0n;
    for (const metric of ['apiCalls', 'storageGb']) {
      const own = [...windows.entries()].filter(([k]) => k.startsWith(`${tenantId}|${metric}|`))
        .map(([k, q]) => [Number(k.split('|')[2]), q] as const).sort((x, y) => x[0] - y[0]);
      let used = 0n;
      let charged = 0n;
      for (const [startMs, q] of own) {
        const plan = PLANS.find((p) => p.name === planOf(tenantId, startMs + WINDOW))!;
        charged += costUpTo(plan, metric, used + q) - costUpTo(plan, metric, used);
        used += q;
      }
      const minimum = PLANS.find((p) => p.name === planOf(tenantId, end))!.metrics!.find((m) => m.metric === metric)!.price!.minimumCharge;
      if (own.length > 0 && minimum !== undefined && charged < scaled(minimum)) charged = scaled(minimum);
      invoice += charged;
    }
    expected.set(`${tenantId}|2026-03|USD`, invoice);
  }

  const totals = await periodTotals();
  const got = new Map([...totals].filter(([k]) => k.includes('|2026-03|')));
  expect([...got.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [key, amount] of expected) {
    expect({ key, cents: toCents(fromLibrary(got.get(key)!)) }).toEqual({ key, cents: toCents(amount) });
    expect({ key, exact: fromLibrary(got.get(key)!) }).toEqual({ key, exact: amount });
  }
  // The month exercised what it is meant to: tiers crossed, a minimum charged, the change in the middle.
  const minimumLines = (await Promise.all(['a', 'b', 'c'].map(lines))).flat().filter((l) => l.kind === 'MINIMUM_CHARGE');
  expect(minimumLines.length).toBeGreaterThan(0);
  const cLines = (await lines('c')).filter((l) => l.kind === 'CHARGE' && String(l.windowStart) < '2026-04');
  expect(cLines.find((l) => l.windowStart === '2026-03-14T00:00:00Z')?.plan).toBe('premium'); // the day the change fell in
  expect(new Set(cLines.map((l) => l.plan))).toEqual(new Set(['basic', 'premium']));
  console.log(`month: ${records.length} records (${voids.length} voids), invoices ${JSON.stringify(Object.fromEntries([...got].map(([k, v]) => [k, v])))}, `
    + `${minimumLines.length} minimum charge lines; ms ${JSON.stringify(phases)}`);
}, 900_000);
