/**
 * A month of StripeBilling on a movable clock: the bundled handlers (onboarding, the push every 5
 * minutes, the reconciler at minute 55, offboarding with its one-time schedules) against moto and
 * stripe-mock behind the proxy, with the billing-period model (test/support/stripe-period-model.ts)
 * answering as our reading of Stripe's documentation says Stripe would: daily prices (a billing
 * period a day, to cross 30 period ends), invoices finalized an hour after their period.
 *
 * Usage records arrive up to 14 minutes late (within the ingestor's 15-minute allowed lateness);
 * windows close as the ingestor closes them (end + lateness + the closing margin, at the closer's
 * next 5-minute run) and are read through an in-memory usage reader with the read contract's
 * semantics (the ingestor's own exactness is proven by its tests; here the money path is).
 *
 * What happens (tenants A, B, C; meters api_calls x1 HALF_UP, storage_mb x1000 UP), all in the
 * first week so that a shorter run (`days: 8`) has every fault:
 * - C is onboarded at 06:05 on day 0, A at 09:23 (mid-hour: anchored at 07:00 and 10:00);
 * - B is onboarded on day 1 at 14:37 and offboarded on day 5 at 10:12, with records of its last
 *   window arriving after the offboarding and usage after it;
 * - Stripe is unavailable for meter events on day 2 from 10:00 to 12:00, over A's period end;
 * - C's customer is deleted in Stripe (not by an offboarding) on day 4 at 12:00;
 * - the storage_mb meter is deactivated on day 6 from 06:00 to 18:00.
 *
 * The safeguards can be removed one at a time (the settings a user could give):
 * `carryOver` (the push believes invoices stay open for 72 hours), `alignment` (no billing cycle
 * anchor), `offboardingWait` (no wait before the final push), `reconciliation` (no reconciler runs).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { bundle, captured, lambdaContext, lifecycleEvent, MemoryUsageReader, StripeWorld } from './support';
import type { ClosedWindow } from '../../../src/ingestor/shared.lambda/usage-reader';
import { STRIPE_ENV } from '../../../src/providers/stripe-billing/contract';
import { addDecimals, compareDecimals, multiplyDecimals, subtractDecimals } from '../../../src/shared.lambda/decimal';
import { ModelInvoice, refusedByStripeMock, StripeBillingModel } from '../../support/stripe-period-model';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

/** Which safeguards are on (all of them unless one is removed). */
export interface Safeguards {
  readonly carryOver: boolean;
  readonly alignment: boolean;
  readonly offboardingWait: boolean;
  readonly reconciliation: boolean;
}

export const ALL_SAFEGUARDS: Safeguards = { carryOver: true, alignment: true, offboardingWait: true, reconciliation: true };

/** A meter of the installation (test/providers/stripe-billing/support.ts TEST_METERS). */
const METERS = [
  { metric: 'apiCalls', eventName: 'api_calls', multiplier: '1' },
  { metric: 'storageGb', eventName: 'storage_mb', multiplier: '1000' },
];

/** The prices each tenant is subscribed to (the model bills them daily). */
export const MONTH_PRICES = ['price_base', 'price_api_calls', 'price_storage'];

interface TenantPlan {
  readonly id: string;
  readonly onboardAt: number;
  readonly offboardAt?: number;
  /** Usage stops then. */
  readonly usageUntil: number;
}

/** One tenant, meter and billing period: the ledger against the invoice. */
export interface PeriodCheck {
  readonly tenant: string;
  readonly eventName: string;
  readonly period: string;
  /** Whole units Stripe put on the period's (finalized) invoice. */
  readonly invoiced: number;
  /** Units the push sent into the period (its reconciliation record). */
  readonly sent: string;
  readonly counted: string;
  readonly status: string;
}

/** What the month did and how it adds up. */
export interface MonthResult {
  readonly days: number;
  readonly windows: number;
  readonly dispositions: Record<string, number>;
  /** Per tenant and meter: the ledger (exact units), invoiced units, units reported not billed (with a disposition), and the difference. */
  readonly totals: Record<string, { ledger: string; invoiced: string; reported: string; unaccounted: string }>;
  /** Windows carried to a later invoice although no fault was injected around them. */
  readonly carriedWithoutFault: string[];
  /** Windows whose usage is on no invoice and in no report (lost silently). */
  readonly lostWindows: string[];
  /** Windows of an offboarded tenant that started before its offboarding and were not billed (`AFTER_OFFBOARDING`). */
  readonly unbilledBeforeOffboarding: string[];
  /** Meter events timestamped before their subscription started. */
  readonly eventsBeforeSubscription: number;
  /** Reconciliation records that do not add up (metered != billedHere + carriedOver + rejected), or whose sum is not the ledger's. */
  readonly reconciliationProblems: string[];
  readonly periods: PeriodCheck[];
  /** Stripe requests the handlers made that plain stripe-mock (no proxy, no model) refuses when they are sent to it again. */
  readonly refusedByStripeMock: string[];
  /** Stripe requests the handlers made in the month. */
  readonly stripeRequests: number;
  /** Invoice items that mark carried-over usage. */
  readonly carryOverNotes: number;
  /** Handler runs and Stripe requests, for the bench. */
  readonly runs: { push: number; reconcile: number; reconcileStripeRequests: number };
  /** Every invoice, for a closer look. */
  readonly invoices: ModelInvoice[];
}

/** A reproducible pseudo-random generator (Park and Miller's minimal standard). */
function random(seed: number): () => number {
  let state = (Math.abs(Math.floor(seed)) % 2147483646) + 1;
  return () => {
    state = (state * 16807) % 2147483647;
    return (state - 1) / 2147483646;
  };
}

let simulations = 0;

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** Runs the month (see the module comment). */
export interface MonthOptions {
  readonly safeguards?: Safeguards;
  readonly days?: number;
  readonly seed?: number;
  /** Where the handlers' AWS requests go (a recording proxy in front of moto, for the bench). @default moto itself */
  readonly awsEndpoint?: string;
  /** Called before each handler run with its name (`onboard`, `push`, `reconcile`, `offboard`), e.g. to label requests. */
  readonly onHandler?: (name: string) => void;
}

export async function simulateMonth(world: StripeWorld, opts: MonthOptions = {}): Promise<MonthResult> {
  const safeguards = opts.safeguards ?? ALL_SAFEGUARDS;
  const days = opts.days ?? 30;
  const rnd = random(opts.seed ?? 7);
  const doc = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: world.moto.endpoint }));
  const realNow = Date.now;
  const t0 = Math.floor(realNow() / DAY) * DAY + DAY;
  // Straight to moto: the crash proxy in between only costs time here.
  const endpoint = process.env.AWS_ENDPOINT_URL;
  process.env.AWS_ENDPOINT_URL = opts.awsEndpoint ?? world.moto.endpoint;
  const handler = (name: string) => opts.onHandler?.(name);
  const timing: Record<string, number> = {};
  const timed = async <T>(what: string, work: () => Promise<T>): Promise<T> => {
    const started = realNow();
    try {
      return await work();
    } finally {
      timing[what] = (timing[what] ?? 0) + realNow() - started;
    }
  };
  let now = t0;
  Date.now = () => now;

  // Stripe as the documentation says it behaves, daily prices.
  const model = new StripeBillingModel({
    customersHavePaymentMethod: true,
    prices: [
      { id: 'price_base', type: 'fixed', amount: 99, interval: 'day' },
      { id: 'price_api_calls', type: 'metered', eventName: 'api_calls', unitAmount: 1, interval: 'day' },
      { id: 'price_storage', type: 'metered', eventName: 'storage_mb', unitAmount: 1, interval: 'day' },
    ],
  }).attach(world.stripe);
  for (const [id, eventName] of [['mtr_Api', 'api_calls'], ['mtr_Storage', 'storage_mb']]) {
    world.stripe.state.meters.set(id, { id, object: 'billing.meter', event_name: eventName, status: 'active', default_aggregation: { formula: 'sum' } });
  }

  // Each run its own tenants and push table (several runs share one world).
  const run = `m${++simulations}x${Math.floor(rnd() * 1e6)}`;
  world.stripe.clearRecording();
  const pushTable = `stripe-push-${run}`;
  await world.local.createPushTable(pushTable);
  const plans: TenantPlan[] = [
    { id: `${run}-a`, onboardAt: t0 + 9 * HOUR + 23 * MIN, usageUntil: t0 + days * DAY },
    { id: `${run}-b`, onboardAt: t0 + 1 * DAY + 14 * HOUR + 37 * MIN, offboardAt: t0 + 5 * DAY + 10 * HOUR + 12 * MIN, usageUntil: t0 + 5 * DAY + 12 * HOUR },
    { id: `${run}-c`, onboardAt: t0 + 6 * HOUR + 5 * MIN, usageUntil: t0 + days * DAY },
  ];
  const outage = { from: t0 + 2 * DAY + 10 * HOUR, to: t0 + 2 * DAY + 12 * HOUR };
  const inactiveMeter = { from: t0 + 6 * DAY + 6 * HOUR, to: t0 + 6 * DAY + 18 * HOUR };
  const customerDeletedAt = t0 + 4 * DAY + 12 * HOUR;
  world.stripe.inject({ method: 'POST', path: /\/v1\/billing\/meter_events$/, when: () => now >= outage.from && now < outage.to },
    ...Array.from({ length: 5000 }, () => ({ kind: 'rate-limit' as const, retryAfterSeconds: 0 })));

  // Usage records: each tenant, each hour of its usage, both meters, arriving up to 14 minutes late.
  interface Rec { tenant: string; metric: string; value: string; at: number; arrives: number }
  const records: Rec[] = [];
  for (const p of plans) {
    const until = Math.min(p.usageUntil, t0 + days * DAY);
    for (let h = Math.floor(p.onboardAt / HOUR) * HOUR; h < until; h += HOUR) {
      for (const m of METERS) {
        const at = Math.max(h + Math.floor(rnd() * HOUR), p.onboardAt + MIN);
        if (at >= until) continue;
        const value = m.metric === 'apiCalls' ? String(5 + Math.floor(rnd() * 46)) : `0.${String(4 + Math.floor(rnd() * 120)).padStart(4, '0')}`;
        records.push({ tenant: p.id, metric: m.metric, value, at, arrives: at + Math.floor(rnd() * 14 * MIN) });
      }
    }
  }
  records.sort((a, b) => a.arrives - b.arrives);

  const reader = new MemoryUsageReader();
  const open = new Map<string, { tenant: string; metric: string; start: number; sum: string; count: number }>();
  const customerOf = new Map<string, string>();
  const ctx = () => ({ ...lambdaContext(), invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:local-delete-customer' });
  const overrides: Record<string, string> = { [STRIPE_ENV.SANDBOX_REQUESTS_PER_SECOND]: '100000', [STRIPE_ENV.USAGE_PUSH_TABLE_NAME]: pushTable };
  const pushEnv = { ...overrides, ...(safeguards.carryOver ? {} : { [STRIPE_ENV.INVOICE_GRACE_SECONDS]: String(72 * 3600) }) };
  const push = bundle<{ pushHandler: (r: () => MemoryUsageReader) => (e: unknown, c: unknown) => Promise<unknown> }>('put-usage').pushHandler(() => reader);
  const reconcile = bundle<{ reconcileHandler: (r: () => MemoryUsageReader) => (e: unknown, c: unknown) => Promise<Record<string, unknown>> }>('reconcile')
    .reconcileHandler(() => reader);
  const offboard = bundle<{ offboardingHandler: (r: () => MemoryUsageReader) => (e: unknown, c: unknown) => Promise<unknown> }>('delete-customer')
    .offboardingHandler(() => reader);
  const onboard = bundle<{ handler: (e: unknown) => Promise<Record<string, unknown>> }>('create-customer').handler;
  const runs = { push: 0, reconcile: 0, reconcileStripeRequests: 0 };
  let waitingOffboardings = 0;
  let next = 0;
  let closedSincePush = 0;
  // Usage stops at the end of the last day; the run goes on until every period holding it has ended and its invoice is final.
  const end = t0 + days * DAY + DAY + 3 * HOUR;

  try {
    for (now = t0; now <= end; now += 5 * MIN) {
      // Lifecycle and Stripe-side events of this tick.
      for (const p of plans) {
        if (p.onboardAt > now - 5 * MIN && p.onboardAt <= now) {
          world.useFunction('CreateCustomer', { ...overrides, ...(safeguards.alignment ? {} : { [STRIPE_ENV.BILLING_ANCHOR_SECONDS]: '0' }) });
          handler('onboard');
          const r = await captured(() => onboard(lifecycleEvent('sbt_aws_onboardingRequest', { tenantId: p.id }, iso(p.onboardAt))));
          if (r.error) throw r.error;
          customerOf.set(p.id, String(r.result!.customerId));
        }
        if (p.offboardAt && p.offboardAt > now - 5 * MIN && p.offboardAt <= now) {
          world.useFunction('DeleteCustomer', { ...overrides, ...(safeguards.offboardingWait ? {} : { [STRIPE_ENV.OFFBOARDING_WAIT_SECONDS]: '0' }) });
          handler('offboard');
          const r = await captured(() => offboard(lifecycleEvent('sbt_aws_offboardingRequest', { tenantId: p.id }, new Date(p.offboardAt!).toISOString()), ctx()));
          if (r.error) throw r.error;
          if ((r.result as { outcome: string }).outcome === 'WAITING') waitingOffboardings++;
        }
      }
      const c = plans[2];
      if (c && customerDeletedAt > now - 5 * MIN && customerDeletedAt <= now && customerOf.has(c.id)) model.deleteCustomer(customerOf.get(c.id)!);
      if (inactiveMeter.from > now - 5 * MIN && inactiveMeter.from <= now) model.deactivateMeter('storage_mb');
      if (inactiveMeter.to > now - 5 * MIN && inactiveMeter.to <= now) model.reactivateMeter('storage_mb');

      // Records that arrived: into their window while it is open (until end + 15 minutes); later ones would be LATE.
      for (; next < records.length && records[next].arrives <= now; next++) {
        const r = records[next];
        const start = Math.floor(r.at / HOUR) * HOUR;
        if (r.arrives >= start + HOUR + 15 * MIN) continue;
        const key = `${r.tenant}|${r.metric}|${start}`;
        const w = open.get(key) ?? { tenant: r.tenant, metric: r.metric, start, sum: '0', count: 0 };
        open.set(key, { ...w, sum: addDecimals(w.sum, r.value), count: w.count + 1 });
      }
      // The closer (every 5 minutes): windows past end + lateness + the 2-minute margin close for good.
      for (const [key, w] of [...open]) {
        if (now < w.start + HOUR + 17 * MIN) continue;
        open.delete(key);
        const windowId = `${w.tenant}_${w.metric}_${iso(w.start).replace(/[^0-9]/g, '')}`.replace(/[^A-Za-z0-9_-]/g, '-');
        reader.windows.push({
          tenantId: w.tenant,
          metric: w.metric,
          granularity: 'HOUR',
          windowStart: iso(w.start),
          windowEnd: iso(w.start + HOUR),
          closedAt: new Date(now).toISOString(),
          sum: w.sum,
          count: w.count,
          windowId,
        } as ClosedWindow);
        closedSincePush++;
      }
      // The push every 5 minutes (a run with nothing new is skipped here: it would do nothing).
      if (closedSincePush > 0) {
        world.useFunction('PutUsage', pushEnv);
        handler('push');
        await timed('push', () => captured(() => push({ id: `push-${now}` }, lambdaContext())));
        runs.push++;
        closedSincePush = 0;
      }
      // The reconciler at minute 55.
      if (safeguards.reconciliation && now % HOUR === 55 * MIN) {
        world.useFunction('Reconcile', pushEnv);
        handler('reconcile');
        const r = await timed('reconcile', () => captured(() => reconcile({ id: `reconcile-${now}` }, lambdaContext())));
        if (r.error) throw r.error;
        runs.reconcile++;
        runs.reconcileStripeRequests += Number(r.result?.stripeRequests ?? 0);
      }
      // The offboardings' one-time schedules.
      if (waitingOffboardings > 0) {
        handler('offboard');
        const ran = await world.local.runDueSchedules(ctx(), overrides, offboard);
        waitingOffboardings -= ran.filter((x) => 'finalizeOffboarding' in (x as object)).length;
      }
    }
    model.tick();
    // Every request the handlers sent, sent again straight to plain stripe-mock: its spec validation alone.
    const requests = [...world.stripe.requests];
    const refused = (await refusedByStripeMock(requests, world.stripeMock.endpoint)).map((r) => `${r.request.method} ${r.request.path}: ${r.status} ${r.message}`);
    if (process.env.MONTH_DEBUG) {
      const all = (await doc.send(new ScanCommand({ TableName: pushTable, ConsistentRead: true }))).Items ?? [];
      for (const i of all.filter((x) => String(x.pk).startsWith(`WINDOW#${run}-b_storage`) && x.status === 'DROPPED').slice(0, 2)) {
        console.log(`DEBUG ${JSON.stringify(i)}`);
        console.log(`DEBUG events ${JSON.stringify(model.meterEvents().filter((e) => e.identifier.startsWith(String(i.identifier))))}`);
      }
    }
    return await outcome(pushTable, { refused, stripeRequests: requests.length }, doc, model, reader, plans, customerOf,
      { outage, inactiveMeter, customerDeletedAt }, days, runs);
  } finally {
    Date.now = realNow;
    process.env.AWS_ENDPOINT_URL = endpoint;
    if (process.env.MONTH_TIMING) {
      const byPath: Record<string, number> = {};
      for (const r of world.stripe.requests) {
        const k = `${r.method} ${r.path.replace(/\/[a-z]+_[A-Za-z0-9]+/g, '/:id')}`;
        byPath[k] = (byPath[k] ?? 0) + 1;
      }
      console.log(`month timing (ms): ${JSON.stringify(timing)}; Stripe requests ${world.stripe.requests.length}: ${JSON.stringify(byPath)}`);
    }
    model.detach();
    world.stripe.clearRecording();
  }
}

/** Reads the push table, the model's invoices and the reconciliation records, and adds them up. */
async function outcome(
  pushTable: string, stripe: { refused: string[]; stripeRequests: number }, doc: DynamoDBDocumentClient, model: StripeBillingModel,
  reader: MemoryUsageReader, plans: TenantPlan[],
  customerOf: Map<string, string>,
  faults: { outage: { from: number; to: number }; inactiveMeter: { from: number; to: number }; customerDeletedAt: number },
  days: number, runs: MonthResult['runs'],
): Promise<MonthResult> {
  const table = pushTable;
  const items: Record<string, any>[] = [];
  let key: Record<string, any> | undefined;
  do {
    const page = await doc.send(new ScanCommand({ TableName: table, ConsistentRead: true, ExclusiveStartKey: key }));
    items.push(...(page.Items ?? []));
    key = page.LastEvaluatedKey;
  } while (key);
  const markers = new Map(items.filter((i) => String(i.pk).startsWith('WINDOW#')).map((i) => [String(i.pk).slice(7), i]));
  const records = items.filter((i) => String(i.pk).startsWith('RECON#'));
  const notInvoiced = new Set(records.filter((r) => r.notInvoiced !== undefined).map((r) => `${String(r.pk).slice(6)}|${r.metric}|${r.periodStart}`));
  const dispositions: Record<string, number> = {};
  const invoices = model.invoices();
  const totals: MonthResult['totals'] = {};
  const carriedWithoutFault: string[] = [];
  const lostWindows: string[] = [];
  const near = (ms: number, span: { from: number; to: number }, slack: number) => ms >= span.from - slack && ms < span.to + slack;

  const unbilledBeforeOffboarding: string[] = [];
  for (const w of reader.windows) {
    const m = markers.get(w.windowId);
    const status = String(m?.status ?? 'NONE');
    const offboardAt = plans.find((p) => p.id === w.tenantId)?.offboardAt;
    if (status === 'AFTER_OFFBOARDING' && offboardAt !== undefined && Date.parse(w.windowStart) < offboardAt) unbilledBeforeOffboarding.push(w.windowId);
    dispositions[status] = (dispositions[status] ?? 0) + 1;
    const meter = METERS.find((x) => x.metric === w.metric)!;
    const customer = customerOf.get(w.tenantId)!;
    const k = `${w.tenantId}|${meter.eventName}`;
    const t = totals[k] ?? { ledger: '0', invoiced: '0', reported: '0', unaccounted: '0' };
    const exact = multiplyDecimals(w.sum, meter.multiplier);
    t.ledger = addDecimals(t.ledger, exact);
    totals[k] = t;
    const start = Date.parse(w.windowStart);
    if (status === 'CARRIED_OVER' && !near(start, faults.outage, 2 * HOUR) && !near(start, faults.inactiveMeter, DAY)) carriedWithoutFault.push(w.windowId);
    // Lost: sent, but counted on no invoice (by its identifier's event) and not reported.
    if (status === 'SENT' || status === 'CARRIED_OVER') {
      const ids = [String(m!.identifier)];
      const events = model.meterEvents().filter((e) => ids.includes(e.identifier) && e.outcome === 'counted');
      const onInvoice = events.some((e) => invoices.some((inv) => inv.customer === customer && inv.finalizedAt !== undefined
        && e.timestamp * 1000 >= inv.period.start && e.timestamp * 1000 < inv.period.end && e.processAt <= inv.finalizedAt
        && inv.lines.some((l) => l.kind === 'metered' && l.eventName === meter.eventName)));
      const reported = notInvoiced.has(`${w.tenantId}|${w.metric}|${String(m!.usagePeriodStart)}`);
      if (!onInvoice && !reported) lostWindows.push(`${w.windowId} (${status}${events.length ? ', counted after its invoice was finalized' : ', not counted'})`);
    } else if (status === 'NONE' || status === 'SENDING' || status === 'ZERO') {
      if (status !== 'ZERO') lostWindows.push(`${w.windowId} (${status})`);
    }
  }
  for (const [k, t] of Object.entries(totals)) {
    const [tenant, eventName] = k.split('|');
    const customer = customerOf.get(tenant)!;
    const invoiced = invoices.filter((inv) => inv.customer === customer && inv.finalizedAt !== undefined)
      .flatMap((inv) => inv.lines).filter((l) => l.kind === 'metered' && l.eventName === eventName).reduce((sum, l) => sum + (l.quantity ?? 0), 0);
    t.invoiced = String(invoiced);
    // Reported not billed: the records' rejected usage (dispositions, and periods Stripe ended).
    const metric = METERS.find((x) => x.eventName === eventName)!.metric;
    t.reported = records.filter((r) => String(r.pk) === `RECON#${tenant}` && r.metric === metric)
      .reduce((sum, r) => addDecimals(sum, r.rejected === undefined ? '0' : String(r.rejected)), '0');
    t.unaccounted = subtractDecimals(subtractDecimals(t.ledger, t.invoiced), t.reported);
  }

  // Reconciliation records: each adds up, and together they hold the ledger.
  const reconciliationProblems: string[] = [];
  const periods: PeriodCheck[] = [];
  for (const p of plans) {
    const recs: Record<string, any>[] = (await doc.send(new QueryCommand({
      TableName: table, KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': `RECON#${p.id}` }, ConsistentRead: true,
    }))).Items ?? [];
    for (const meter of METERS) {
      const mine = recs.filter((r) => r.metric === meter.metric);
      const n = (v: unknown) => (v === undefined ? '0' : String(v));
      let metered = '0';
      for (const r of mine) {
        metered = addDecimals(metered, n(r.metered));
        const parts = addDecimals(n(r.billedHere), n(r.carriedOver), n(r.rejected));
        if (compareDecimals(n(r.metered), parts) !== 0) reconciliationProblems.push(`${p.id} ${r.sk}: metered ${n(r.metered)} != billedHere + carriedOver + rejected ${parts}`);
        const customer = customerOf.get(p.id)!;
        const inv = invoices.find((i) => i.customer === customer && iso(i.period.start) === r.periodStart && i.finalizedAt !== undefined);
        const invoiced = inv?.lines.filter((l) => l.kind === 'metered' && l.eventName === meter.eventName).reduce((s, l) => s + (l.quantity ?? 0), 0) ?? 0;
        periods.push({
          tenant: p.id,
          eventName: meter.eventName,
          period: String(r.periodStart),
          invoiced,
          sent: n(r.sent),
          counted: n(r.counted),
          status: String(r.status),
        });
      }
      const ledger = totals[`${p.id}|${meter.eventName}`]?.ledger ?? '0';
      if (compareDecimals(metered, ledger) !== 0) reconciliationProblems.push(`${p.id} ${meter.metric}: records hold ${metered}, the ledger ${ledger}`);
    }
  }

  const subs = model.subscriptions();
  const startOf = new Map(subs.map((s) => [s.customer, s.created]));
  const eventsBeforeSubscription = model.meterEvents().filter((e) => e.customer && e.timestamp * 1000 < (startOf.get(e.customer) ?? 0)).length;
  const carryOverNotes = invoices.flatMap((i) => i.lines).filter((l) => l.kind === 'invoiceitem' && /finalized/.test(l.description)).length;
  return {
    days,
    windows: reader.windows.length,
    unbilledBeforeOffboarding,
    refusedByStripeMock: stripe.refused,
    stripeRequests: stripe.stripeRequests,
    dispositions,
    totals,
    carriedWithoutFault,
    lostWindows,
    eventsBeforeSubscription,
    reconciliationProblems,
    periods,
    carryOverNotes,
    runs,
    invoices,
  };
}
