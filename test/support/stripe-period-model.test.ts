/**
 * The billing-period model (test/support/stripe-period-model.ts), driven through
 * the real Stripe SDK (the API version the handlers pin) against stripe-mock behind
 * the proxy with the model attached. Each test checks one of the rules the model
 * encodes; the clock is the proxy's, moved forward with `clockOffsetMs`.
 */
import Stripe from 'stripe';
import type { RecordedRequest } from './stripe-mock';
import { startStripeMock, StripeMock, StripeProxy } from './stripe-mock';
import { refusedByStripeMock, StripeBillingModel } from './stripe-period-model';
import { STRIPE_API_VERSION } from '../../src/providers/stripe-billing/contract';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** 2026-03-10 10:23:17 UTC: the start of every test's clock. */
const T0 = Date.UTC(2026, 2, 10, 10, 23, 17);
/** The next UTC midnight after T0: the anchor of the tests' daily subscriptions. */
const M = Date.UTC(2026, 2, 11);
const sec = (ms: number) => Math.floor(ms / 1000);

let mock: StripeMock;
let proxy: StripeProxy;
let stripe: Stripe;
const model = new StripeBillingModel({
  prices: [
    { id: 'price_api_day', type: 'metered', eventName: 'api_calls', unitAmount: 2, interval: 'day' },
    { id: 'price_storage_day', type: 'metered', eventName: 'storage_mb', unitAmount: 1, interval: 'day' },
    { id: 'price_base_day', type: 'fixed', amount: 2400, interval: 'day' },
    { id: 'price_api_month', type: 'metered', eventName: 'api_calls', unitAmount: 2, interval: 'month' },
  ],
});
let meters: Record<string, string>;

beforeAll(async () => {
  mock = await startStripeMock();
  proxy = new StripeProxy(mock.endpoint);
  const url = new URL(await proxy.start());
  model.attach(proxy);
  stripe = new Stripe('sk_test_local', {
    apiVersion: STRIPE_API_VERSION as Stripe.LatestApiVersion,
    host: url.hostname,
    port: url.port,
    protocol: 'http',
    maxNetworkRetries: 0,
    telemetry: false,
  });
});

afterAll(async () => {
  await proxy?.stop();
  await mock?.stop();
});

beforeEach(async () => {
  proxy.reset();
  model.reset();
  setClock(T0);
  meters = {};
  for (const eventName of ['api_calls', 'storage_mb']) {
    const meter = await stripe.billing.meters.create({ display_name: eventName, event_name: eventName, default_aggregation: { formula: 'sum' } });
    meters[eventName] = meter.id;
  }
});

/** Moves the proxy's clock to `ms` (forward only: the model processes time in order). */
function setClock(ms: number): void {
  proxy.clockOffsetMs = ms - Date.now();
}

async function customer(): Promise<string> {
  return (await stripe.customers.create({ name: 'tenant', metadata: { tenantId: 't1' } })).id;
}

/** A subscription to daily prices, anchored on the next UTC midnight (M). */
async function subscribe(customerId: string, prices = ['price_api_day'], extra: Partial<Stripe.SubscriptionCreateParams> = {}) {
  return stripe.subscriptions.create({
    customer: customerId,
    items: prices.map((price) => ({ price })),
    billing_cycle_anchor: sec(M),
    metadata: { tenantId: 't1' },
    ...extra,
  });
}

async function usage(customerId: string, eventName: string, timestampMs: number, value: number, identifier = `id-${Math.random()}`) {
  return stripe.billing.meterEvents.create({
    event_name: eventName,
    identifier,
    timestamp: sec(timestampMs),
    payload: { stripe_customer_id: customerId, value: String(value) },
  });
}

function meteredQuantity(inv: { lines: readonly { kind: string; eventName?: string; quantity?: number }[] }, eventName = 'api_calls'): number | undefined {
  return inv.lines.find((l) => l.kind === 'metered' && l.eventName === eventName)?.quantity;
}

describe('subscriptions and periods', () => {
  test('an anchored subscription: the first period is [created, anchor), then whole days from the anchor, on the items', async () => {
    // GIVEN a customer subscribed at 10:23 to a daily metered price, anchored on the next midnight
    const c = await customer();
    const sub = await subscribe(c);

    // THEN the first period runs from the creation to the anchor (on the item, API version 2025-09-30.clover)
    expect(sub.status).toBe('active');
    expect(sub.billing_cycle_anchor).toBe(sec(M));
    expect(sub.items.data[0].current_period_start).toBe(sub.created);
    expect(sub.items.data[0].current_period_end).toBe(sec(M));
    expect(sub.created).toBeGreaterThanOrEqual(sec(T0));

    // WHEN the clock passes the anchor and one more day
    setClock(M + DAY + 2 * HOUR);
    const later = await stripe.subscriptions.retrieve(sub.id);

    // THEN the current period is the third, a whole day from the anchor, and each ended period has its invoice
    expect([later.items.data[0].current_period_start, later.items.data[0].current_period_end]).toEqual([sec(M + DAY), sec(M + 2 * DAY)]);
    const invoices = model.invoices(c);
    expect(invoices.map((i) => [i.billingReason, i.period.start, i.period.end, i.status])).toEqual([
      ['subscription_create', sub.created * 1000, sub.created * 1000, 'paid'],
      ['subscription_cycle', sub.created * 1000, M, 'paid'],
      ['subscription_cycle', M, M + DAY, 'paid'],
    ]);
  });

  test('fails if billing_cycle_anchor is not in the future or is after the next natural billing date', async () => {
    const c = await customer();
    await expect(subscribe(c, ['price_api_day'], { billing_cycle_anchor: sec(T0 - HOUR) })).rejects.toThrow(/billing_cycle_anchor must be in the future/);
    await expect(subscribe(c, ['price_api_day'], { billing_cycle_anchor: sec(T0 + DAY + HOUR) }))
      .rejects.toThrow(/billing_cycle_anchor cannot be later than next natural billing date/);
    await expect(subscribe(c, ['price_unknown'])).rejects.toThrow(/No such price: 'price_unknown'/);
    expect(model.subscriptions(c)).toEqual([]);
  });

  test('a monthly subscription without an anchor renews on its day of month, on the last day of shorter months', async () => {
    // GIVEN a monthly subscription created on January 31
    setClock(Date.UTC(2027, 0, 31, 12));
    const c = await customer();
    const sub = await stripe.subscriptions.create({ customer: c, items: [{ price: 'price_api_month' }] });
    expect(sub.items.data[0].current_period_end).toBe(sec(Date.UTC(2027, 1, 28, 12)));

    // WHEN two months pass
    setClock(Date.UTC(2027, 2, 31, 13));

    // THEN it renewed on February 28, then March 31
    expect(model.invoices(c).filter((i) => i.billingReason === 'subscription_cycle').map((i) => new Date(i.period.end).toISOString()))
      .toEqual(['2027-02-28T12:00:00.000Z', '2027-03-31T12:00:00.000Z']);
  });

  test('list by customer excludes canceled subscriptions unless status=all; update sets cancel_at_period_end and adds items', async () => {
    const c = await customer();
    const a = await subscribe(c);
    const b = await subscribe(c);
    await stripe.subscriptions.cancel(a.id);
    expect((await stripe.subscriptions.list({ customer: c })).data.map((s) => s.id)).toEqual([b.id]);
    expect((await stripe.subscriptions.list({ customer: c, status: 'all' })).data.map((s) => s.id).sort()).toEqual([a.id, b.id].sort());

    const updated = await stripe.subscriptions.update(b.id, { cancel_at_period_end: true, items: [{ price: 'price_storage_day' }] });
    expect(updated.cancel_at_period_end).toBe(true);
    expect(updated.cancel_at).toBe(sec(M));
    expect(updated.items.data.map((i) => i.price.id)).toEqual(['price_api_day', 'price_storage_day']);
    await expect(stripe.subscriptions.update(a.id, { cancel_at_period_end: true })).rejects.toThrow(/canceled subscription/);

    // WHEN the period ends: the subscription ends with a final invoice for the period's usage of both items
    setClock(T0 + HOUR);
    await usage(c, 'storage_mb', T0 + HOUR, 4);
    setClock(M + 2 * HOUR);
    expect((await stripe.subscriptions.retrieve(b.id)).status).toBe('canceled');
    const last = model.invoices(c).filter((i) => i.subscription === b.id).pop()!;
    expect([last.period.end, meteredQuantity(last, 'storage_mb'), last.lines.filter((l) => l.kind === 'fixed')]).toEqual([M, 4, []]);
  });
});

describe('invoices and the finalization grace period', () => {
  test('usage reported within the grace period is on the period\'s invoice; the invoice finalizes one hour after the period ends', async () => {
    // GIVEN usage during the first period, and more for it reported 30 minutes after it ended
    const c = await customer();
    await subscribe(c);
    setClock(T0 + HOUR);
    await usage(c, 'api_calls', T0 + HOUR, 5);
    setClock(M + 30 * 60_000);
    await usage(c, 'api_calls', M - 10 * 60_000, 3);

    // THEN the period's invoice is a draft with both until the grace period ends
    setClock(M + 59 * 60_000);
    const draft = model.invoices(c).find((i) => i.period.end === M)!;
    expect([draft.status, meteredQuantity(draft), draft.finalizeAt]).toEqual(['draft', 8, M + HOUR]);

    // WHEN the grace period has passed
    setClock(M + 61 * 60_000);
    const final = model.invoices(c).find((i) => i.period.end === M)!;

    // THEN it is finalized with 8 units (open: the customer has no payment method)
    expect([final.status, final.finalizedAt, meteredQuantity(final), final.total]).toEqual(['open', M + HOUR, 8, 16]);
    expect(model.subscription(final.subscription!)!.status).toBe('past_due');
  });

  test('usage for a period reported after its invoice finalized is counted by Stripe but on no invoice', async () => {
    // GIVEN a finalized first-period invoice with 5 units
    const c = await customer();
    model.setPaymentMethod(c, true);
    await subscribe(c);
    setClock(T0 + HOUR);
    await usage(c, 'api_calls', T0 + 10 * 60_000, 5);
    setClock(M + 2 * HOUR);

    // WHEN 4 more units for the first period arrive
    await usage(c, 'api_calls', M - 5 * 60_000, 4);

    // THEN Stripe counted them (usage and summaries), yet the finalized invoice keeps 5 and the next period's invoice has none of them
    expect(model.usage(c, 'api_calls', T0, M)).toBe(9);
    const summary = await stripe.billing.meters.listEventSummaries(meters.api_calls, { customer: c, start_time: sec(M - HOUR), end_time: sec(M) });
    expect(summary.data.map((s) => s.aggregated_value)).toEqual([4]);
    setClock(M + DAY + 2 * HOUR);
    const [first, second] = model.invoices(c).filter((i) => i.billingReason === 'subscription_cycle');
    expect([first.status, meteredQuantity(first), second.period.start, meteredQuantity(second)]).toEqual(['paid', 5, M, 0]);
  });

  test('a longer grace period keeps the invoice open to late usage longer (up to 72 hours)', async () => {
    const c = await customer();
    await subscribe(c);
    model.setGracePeriod(3 * HOUR);
    setClock(M + 2 * HOUR);
    await usage(c, 'api_calls', M - HOUR, 6);
    setClock(M + 3 * HOUR + 1000);
    const inv = model.invoices(c).find((i) => i.period.end === M)!;
    expect([inv.finalizedAt, meteredQuantity(inv)]).toEqual([M + 3 * HOUR, 6]);
    expect(() => model.setGracePeriod(73 * HOUR)).toThrow(/between 0 and 72 hours/);
  });

  test('invoice items go on the next invoice created for their subscription, never on one already created', async () => {
    // GIVEN a subscription whose first period ended; then an invoice item for it
    const c = await customer();
    model.setPaymentMethod(c, true);
    const sub = await subscribe(c);
    setClock(M + 2 * HOUR);
    const first = await stripe.invoiceItems.create({ customer: c, subscription: sub.id, amount: 250, currency: 'usd', description: 'usage carried over', metadata: { tenantId: 't1' } });

    // WHEN a second item is created while the next period's invoice is a draft
    setClock(M + DAY + 10 * 60_000);
    const second = await stripe.invoiceItems.create({ customer: c, subscription: sub.id, amount: 100, currency: 'usd', description: 'second carry-over' });
    setClock(M + 2 * DAY + 2 * HOUR);

    // THEN the first is on the invoice created at M + 1 day, the second on the one created at M + 2 days
    const items = (end: number) => model.invoices(c).find((i) => i.period.end === end)!.lines.filter((l) => l.kind === 'invoiceitem').map((l) => l.invoiceItem);
    expect([items(M), items(M + DAY), items(M + 2 * DAY)]).toEqual([[], [first.id], [second.id]]);

    // AND the API lists them with that line, filtered by customer, subscription and status
    const listed = await stripe.invoices.list({ customer: c, subscription: sub.id, status: 'paid', limit: 100 });
    const withItem = listed.data.find((i) => i.lines.data.some((l) => l.description === 'usage carried over'))!;
    expect(withItem.period_end).toBe(sec(M + DAY));
    expect(withItem.lines.data.find((l) => l.description === 'usage carried over')!.amount).toBe(250);
    expect((await stripe.invoices.list({ customer: c, status: 'draft' })).data).toEqual([]);
    expect((await stripe.invoices.retrieve(withItem.id)).total).toBe(withItem.total);
  });
});

describe('cancellation', () => {
  test('cancel with invoice_now: a final invoice for the usage counted so far in the current period; later usage is on no invoice', async () => {
    // GIVEN 12 units in the first period
    const c = await customer();
    model.setPaymentMethod(c, true);
    const sub = await subscribe(c);
    setClock(T0 + HOUR);
    await usage(c, 'api_calls', T0 + HOUR, 5);
    setClock(T0 + 2 * HOUR);
    await usage(c, 'api_calls', T0 + 2 * HOUR, 7);

    // WHEN the subscription is cancelled at once with invoice_now and prorate
    setClock(T0 + 3 * HOUR);
    const canceled = await stripe.subscriptions.cancel(sub.id, { invoice_now: true, prorate: true });
    setClock(T0 + 3 * HOUR + 5 * 60_000);
    await usage(c, 'api_calls', T0 + 2.5 * HOUR, 3);

    // THEN the subscription ended then; the final invoice covers [created, cancel) with the 12 units counted at the cancellation
    expect([canceled.status, canceled.ended_at]).toEqual(['canceled', sec(T0 + 3 * HOUR)]);
    setClock(M + 2 * HOUR);
    const invoices = model.invoices(c);
    const final = invoices.find((i) => i.billingReason === 'subscription_update')!;
    expect([final.period.start, final.period.end, final.status, meteredQuantity(final)]).toEqual([canceled.created * 1000, sec(T0 + 3 * HOUR) * 1000, 'paid', 12]);
    expect(model.usage(c, 'api_calls', T0, M)).toBe(15);
    // no period invoice after a cancellation
    expect(invoices.filter((i) => i.billingReason === 'subscription_cycle')).toEqual([]);
    await expect(stripe.subscriptions.cancel(sub.id)).rejects.toThrow(/canceled subscription/);
  });

  test('cancel without invoice_now: the period\'s usage is on no invoice', async () => {
    const c = await customer();
    const sub = await subscribe(c);
    await usage(c, 'api_calls', T0 + 60_000, 9);
    await stripe.subscriptions.cancel(sub.id);
    setClock(M + 2 * HOUR);
    expect(model.invoices(c).map((i) => i.billingReason)).toEqual(['subscription_create']);
  });

  test('with finalInvoiceUsage at-finalization, usage counted during the final invoice\'s grace period is on it', async () => {
    const lenient = new StripeBillingModel({ prices: [{ id: 'price_api_day', type: 'metered', eventName: 'api_calls', unitAmount: 2, interval: 'day' }], finalInvoiceUsage: 'at-finalization' });
    lenient.attach(proxy);
    try {
      const c = await customer();
      const sub = await subscribe(c);
      await usage(c, 'api_calls', T0 + 60_000, 2);
      setClock(T0 + HOUR);
      await stripe.subscriptions.cancel(sub.id, { invoice_now: true });
      setClock(T0 + 1.5 * HOUR);
      await usage(c, 'api_calls', T0 + 0.5 * HOUR, 3);
      setClock(T0 + 2.5 * HOUR);
      expect(meteredQuantity(lenient.invoices(c).find((i) => i.billingReason === 'subscription_update')!)).toBe(5);
    } finally {
      model.attach(proxy);
    }
  });
});

describe('payment and incomplete subscriptions', () => {
  test('a fixed price and no payment method: incomplete, then incomplete_expired after 23 hours, and no more invoices', async () => {
    // GIVEN a customer without a payment method subscribed to a fixed daily price (prorated first invoice)
    const c = await customer();
    const sub = await subscribe(c, ['price_base_day', 'price_api_day']);
    expect(sub.status).toBe('incomplete');
    const [first] = model.invoices(c);
    expect([first.status, first.total]).toEqual(['open', Math.round(2400 * (M - sub.created * 1000) / DAY)]);

    // WHEN 23 hours pass without payment
    setClock(sub.created * 1000 + 23 * HOUR - 1000);
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe('incomplete');
    setClock(sub.created * 1000 + 23 * HOUR + 1000);

    // THEN it is incomplete_expired, listed as ended, and no later period bills
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe('incomplete_expired');
    expect((await stripe.subscriptions.list({ customer: c, status: 'ended' })).data.map((s) => s.id)).toEqual([sub.id]);
    setClock(M + 3 * DAY);
    expect(model.invoices(c).filter((i) => i.createdAt > sub.created * 1000 + 23 * HOUR)).toEqual([]);
  });

  test('with a payment method the first invoice is paid and the subscription active; paying an incomplete one activates it', async () => {
    const paying = await customer();
    model.setPaymentMethod(paying, true);
    expect((await subscribe(paying, ['price_base_day'])).status).toBe('active');
    expect(model.invoices(paying)[0].status).toBe('paid');

    const late = await customer();
    const sub = await subscribe(late, ['price_base_day']);
    setClock(T0 + 5 * HOUR);
    model.payInvoice(model.invoices(late)[0].id);
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe('active');

    const strict = await customer();
    await expect(subscribe(strict, ['price_base_day'], { payment_behavior: 'error_if_incomplete' })).rejects.toThrow(/payment/);
    // metered prices only: nothing due up front, so active without a payment method
    expect((await subscribe(strict, ['price_api_day'])).status).toBe('active');
    // proration_behavior none: the period up to the anchor is free
    expect((await subscribe(strict, ['price_base_day'], { proration_behavior: 'none' })).status).toBe('active');
  });
});

describe('meter events', () => {
  test('events for a deleted customer, an inactive meter or an unknown event name are accepted, not counted, and reported', async () => {
    // GIVEN two customers with subscriptions
    const a = await customer();
    const b = await customer();
    await subscribe(a, ['price_api_day', 'price_storage_day']);
    const subB = await subscribe(b);

    // WHEN the storage meter is deactivated and customer b deleted
    await stripe.billing.meters.deactivate(meters.storage_mb);
    await stripe.customers.del(b);
    const accepted = [
      await usage(a, 'storage_mb', T0, 10),
      await usage(b, 'api_calls', T0, 20),
      await usage('cus_unknown', 'api_calls', T0, 30),
      await usage(a, 'no_such_meter', T0, 40),
      await usage(a, 'api_calls', T0, 1),
    ];
    await stripe.billing.meters.reactivate(meters.storage_mb);
    await usage(a, 'storage_mb', T0, 2);

    // THEN every event got a 200, only a's api_calls and the storage event after reactivation count
    expect(accepted.map((e) => e.object)).toEqual(Array(5).fill('billing.meter_event'));
    expect([model.usage(a, 'storage_mb', T0, M), model.usage(a, 'api_calls', T0, M), model.usage(b, 'api_calls', T0, M)]).toEqual([2, 1, 0]);
    expect(model.errorReports().map((r) => [r.type, r.code, r.customer, r.value])).toEqual([
      ['v1.billing.meter.error_report_triggered', 'archived_meter', a, '10'],
      ['v1.billing.meter.error_report_triggered', 'meter_event_customer_not_found', b, '20'],
      ['v1.billing.meter.error_report_triggered', 'meter_event_customer_not_found', 'cus_unknown', '30'],
      ['v1.billing.meter.no_meter_found', 'no_meter', a, '40'],
    ]);
    // AND summaries show only what was counted; the deleted customer's subscription was canceled at once
    const summaries = async (cus: string, meter: string) => (await stripe.billing.meters.listEventSummaries(meter, {
      customer: cus, start_time: sec(T0 - 17_000), end_time: sec(M),
    })).data.map((s) => s.aggregated_value);
    expect([await summaries(a, meters.storage_mb), await summaries(b, meters.api_calls)]).toEqual([[2], [0]]);
    expect((await stripe.subscriptions.retrieve(subB.id)).status).toBe('canceled');
    model.deactivateMeter('api_calls');
    await usage(a, 'api_calls', T0, 5);
    expect(model.errorReports().at(-1)!.code).toBe('archived_meter');
  });

  test('timestamps more than 35 days old or more than 5 minutes ahead are refused at once; identifiers are unique for 24 hours', async () => {
    const c = await customer();
    await expect(usage(c, 'api_calls', T0 - 36 * DAY, 1)).rejects.toThrow(/35 days/);
    await expect(usage(c, 'api_calls', T0 + 6 * 60_000, 1)).rejects.toThrow(/5 minutes/);
    await usage(c, 'api_calls', T0 - 34 * DAY, 1, 'same-id');
    await expect(usage(c, 'api_calls', T0, 1, 'same-id')).rejects.toThrow(/already exists/);
    expect(model.meterEvents().map((e) => e.outcome)).toEqual(['counted']);
  });

  test('with a processing lag an event counts only once processed, and a meter deactivated before then drops it', async () => {
    const c = await customer();
    model.processingLagMs = 10 * 60_000;
    await usage(c, 'api_calls', T0, 4);
    await usage(c, 'storage_mb', T0, 6);
    model.deactivateMeter(meters.storage_mb);
    expect(model.meterEvents().map((e) => e.outcome)).toEqual(['pending', 'pending']);
    expect(model.usage(c, 'api_calls', T0 - HOUR, T0 + HOUR)).toBe(0);
    setClock(T0 + 11 * 60_000);
    expect(model.meterEvents().map((e) => e.outcome)).toEqual(['counted', 'error']);
    expect(model.usage(c, 'api_calls', T0 - HOUR, T0 + HOUR)).toBe(4);
  });

  test('event summaries: grouped by hour or day over aligned times, paged; misaligned times are refused', async () => {
    const c = await customer();
    const hour = Math.floor(T0 / HOUR) * HOUR;
    setClock(hour + 3 * HOUR);
    for (const [offset, value] of [[-2, 1], [-2, 2], [-1, 3], [1, 4], [2, 5]]) await usage(c, 'api_calls', hour + offset * HOUR + 60_000, value);
    const range = { customer: c, start_time: sec(hour - 2 * HOUR), end_time: sec(hour + 3 * HOUR) };
    const hourly = await stripe.billing.meters.listEventSummaries(meters.api_calls, { ...range, value_grouping_window: 'hour', limit: 2 });
    expect([hourly.data.map((s) => [s.start_time, s.aggregated_value]), hourly.has_more])
      .toEqual([[[sec(hour - 2 * HOUR), 3], [sec(hour - HOUR), 3]], true]);
    const all: number[] = [];
    for await (const s of stripe.billing.meters.listEventSummaries(meters.api_calls, { ...range, value_grouping_window: 'hour', limit: 2 })) all.push(s.aggregated_value);
    expect(all).toEqual([3, 3, 4, 5]);
    const daily = await stripe.billing.meters.listEventSummaries(meters.api_calls, { customer: c, start_time: sec(Date.UTC(2026, 2, 10)), end_time: sec(M), value_grouping_window: 'day' });
    expect(daily.data.map((s) => s.aggregated_value)).toEqual([15]);
    await expect(stripe.billing.meters.listEventSummaries(meters.api_calls, { ...range, start_time: sec(hour) + 60, value_grouping_window: 'hour' }))
      .rejects.toThrow(/aligned/);
  });
});

describe('refusedByStripeMock', () => {
  test('replays recorded requests against plain stripe-mock: valid ones pass, an invalid one is reported with its message', async () => {
    // GIVEN the requests of a small run through the proxy
    const c = await customer();
    const sub = await subscribe(c);
    await usage(c, 'api_calls', T0, 1);
    await stripe.invoiceItems.create({ customer: c, subscription: sub.id, amount: 5, currency: 'usd', description: 'x' });
    await stripe.subscriptions.cancel(sub.id, { invoice_now: true, prorate: true });
    const recorded = [...proxy.requests];
    expect(recorded.length).toBeGreaterThanOrEqual(7);

    // WHEN they are replayed, with one that stripe-mock's validation refuses
    const invalid: RecordedRequest = {
      seq: 0,
      method: 'DELETE',
      path: `/v1/subscriptions/${sub.id}`,
      query: '?invoice_now=maybe',
      form: { invoice_now: 'maybe' },
      stripeVersion: STRIPE_API_VERSION,
      outcome: 'forwarded',
    };
    const refused = await refusedByStripeMock([...recorded, invalid], mock.endpoint);

    // THEN only the invalid one is reported, with stripe-mock's message
    expect(refused.map((r) => [r.request, r.status])).toEqual([[invalid, 400]]);
    expect(refused[0].message).toMatch(/invoice_now/);
  });
});
