/**
 * A model of Stripe's billing periods, for tests that run the bundled handlers
 * across periods on a movable clock. It encodes our reading of Stripe's
 * documentation; every rule it enforces cites the page it comes from. Where the
 * documentation is silent, the comment says so and names the model's choice.
 *
 * Attach it to a `StripeProxy` (`new StripeBillingModel(...).attach(proxy)`).
 * Requests still go through stripe-mock first: a request it refuses is answered
 * as it answered. For the requests it accepts, the model keeps the state and
 * shapes the answer (stripe-mock's fixture, with the model's fields):
 *
 * - `POST /v1/subscriptions`, `GET /v1/subscriptions` (customer, status, paging),
 *   `GET|POST|DELETE /v1/subscriptions/:id` (cancel_at_period_end, items, metadata;
 *   DELETE with invoice_now and prorate);
 * - `POST /v1/invoiceitems`; `GET /v1/invoices` (customer, subscription, status, paging),
 *   `GET /v1/invoices/:id`;
 * - `POST /v1/billing/meter_events` (the proxy's 24-hour identifier dedup is kept);
 * - `GET /v1/billing/meters/:id/event_summaries` (customer, start_time, end_time,
 *   value_grouping_window hour|day, paging);
 * - `DELETE /v1/customers/:id` also cancels the customer's subscriptions;
 *   `POST /v1/customers` with `payment_method` or
 *   `invoice_settings[default_payment_method]` gives the customer a payment method.
 * Everything else (customers, meters, webhook endpoints) is the proxy's own state,
 * which the model reads (customers and their deletion, meters and their status).
 *
 * The clock is the proxy's (`proxy.now()`: `Date.now()` plus `clockOffsetMs`).
 * Time moves in one direction: every request, and every test call below, first
 * processes what fell due up to the clock, in time order (meter events counted,
 * invoices finalized, periods ended, incomplete subscriptions expired).
 *
 * Test API (times are epoch milliseconds; Stripe answers carry seconds):
 * - `new StripeBillingModel(options?)`: `prices`, `gracePeriodMs` (default 1 h),
 *   `processingLagMs` (default 0), `customersHavePaymentMethod` (default false),
 *   `finalInvoiceUsage` (`'at-cancel'`, default, or `'at-finalization'`),
 *   `emptySummaryWindows` (default false).
 * - `attach(proxy)` / `detach()`; `reset()` forgets all state but prices and options.
 * - `definePrice({ id, type: 'metered', eventName, unitAmount, interval })` or
 *   `definePrice({ id, type: 'fixed', amount, interval })`; interval `'day'|'month'`;
 *   amounts in the currency's smallest unit (cents).
 * - `tick()`: processes everything due up to the clock (the calls below do it too).
 * - `invoices(customerId?)`: `ModelInvoice[]`, oldest first: id, customer, subscription,
 *   billingReason, status, period {start, end}, createdAt, finalizeAt, finalizedAt, paidAt,
 *   voidedAt, lines (`metered`: meter, eventName, price, quantity, amount;
 *   `fixed` and `proration`: price, amount; `invoiceitem`: invoiceItem, description,
 *   metadata, amount; each with its period), total. A draft shows the quantities
 *   counted so far; a finalized invoice's lines never change.
 * - `subscriptions(customerId?)`, `subscription(id)`: `ModelSubscription` views.
 * - `usage(customerId, eventName, startMs, endMs)`: what Stripe counted for the customer
 *   and meter, events timestamped in [start, end), counted by now.
 * - `meterEvents()`: every accepted event with its outcome (`pending`, `counted`, `error`).
 * - `errorReports()`: `MeterErrorReport[]`, what `v1.billing.meter.error_report_triggered`
 *   and `v1.billing.meter.no_meter_found` would report, one per event not counted.
 * - Levers: `deactivateMeter(idOrEventName)`, `reactivateMeter(idOrEventName)`,
 *   `deleteCustomer(id)`, `setGracePeriod(ms)`, `setPaymentMethod(customerId, has)`,
 *   `payInvoice(id)`, `voidInvoice(id)`, `processingLagMs` (settable).
 * - `refusedByStripeMock(requests, endpoint)` (a function): replays recorded requests
 *   against a plain stripe-mock (no proxy) and returns those it refuses, with its message.
 *
 * Not modelled: taxes, discounts, credit balances, trials, quantities of licensed
 * prices (always 1), payment retries (Smart Retries), mixed intervals on one
 * subscription, prorations of item changes, threshold billing, pre-aggregated meters.
 * Amounts of prorated lines are an approximation (share of the interval, rounded);
 * quantities of metered lines are what the model is for.
 */
import type { RecordedRequest, StripeAnswer, StripeModel, StripeModelRequest, StripeProxy } from '../../examples/stripe-local';

type Obj = Record<string, any>;

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** How often a price bills. */
export type PriceInterval = 'day' | 'month';

/** A price the model knows (the test defines them; the handlers subscribe to them by id). */
export type PriceDefinition =
  /** Per-unit metered price on the meter with `eventName`: `unitAmount` per unit counted in the period, billed in arrears. */
  | { readonly id: string; readonly type: 'metered'; readonly eventName: string; readonly unitAmount: number; readonly interval: PriceInterval }
  /** Fixed recurring price: `amount` per interval, billed in advance. */
  | { readonly id: string; readonly type: 'fixed'; readonly amount: number; readonly interval: PriceInterval };

export interface StripeBillingModelOptions {
  readonly prices?: readonly PriceDefinition[];
  /** Invoice finalization grace period. @default 1 hour (Stripe's default) */
  readonly gracePeriodMs?: number;
  /** Time between Stripe accepting a meter event and counting it. @default 0 */
  readonly processingLagMs?: number;
  /** Whether customers created without a payment method have one anyway. @default false */
  readonly customersHavePaymentMethod?: boolean;
  /**
   * The usage on the final invoice of `DELETE /v1/subscriptions/:id?invoice_now=true`:
   * counted at the cancellation (`'at-cancel'`), or at the invoice's finalization
   * (`'at-finalization'`, if the grace period applies to it as to every invoice).
   * @default 'at-cancel'
   */
  readonly finalInvoiceUsage?: 'at-cancel' | 'at-finalization';
  /** Whether grouped event summaries include windows with nothing counted (value 0). @default false */
  readonly emptySummaryWindows?: boolean;
}

export type SubscriptionStatus = 'active' | 'incomplete' | 'incomplete_expired' | 'past_due' | 'canceled';
export type InvoiceStatus = 'draft' | 'open' | 'paid' | 'void';

/** A period, epoch ms: [start, end). */
export interface ModelPeriod {
  readonly start: number;
  readonly end: number;
}

export interface ModelInvoiceLine {
  readonly kind: 'metered' | 'fixed' | 'proration' | 'invoiceitem';
  readonly amount: number;
  readonly period: ModelPeriod;
  readonly description: string;
  /** The price (metered, fixed, proration). */
  readonly price?: string;
  /** Metered: the meter's id and event name, and the quantity counted in the period. */
  readonly meter?: string;
  readonly eventName?: string;
  readonly quantity?: number;
  /** Invoice item lines: the item's id and metadata. */
  readonly invoiceItem?: string;
  readonly metadata?: Record<string, string>;
}

export interface ModelInvoice {
  readonly id: string;
  readonly customer: string;
  readonly subscription?: string;
  /** `subscription_create`, `subscription_cycle`, or `subscription_update` (the final invoice of invoice_now). */
  readonly billingReason: string;
  readonly status: InvoiceStatus;
  /** The usage period the invoice bills (for the first invoice: its creation instant). */
  readonly period: ModelPeriod;
  readonly createdAt: number;
  readonly finalizeAt: number;
  readonly finalizedAt?: number;
  readonly paidAt?: number;
  readonly voidedAt?: number;
  readonly lines: readonly ModelInvoiceLine[];
  readonly total: number;
}

export interface ModelSubscription {
  readonly id: string;
  readonly customer: string;
  readonly status: SubscriptionStatus;
  readonly created: number;
  readonly anchor: number;
  readonly interval: PriceInterval;
  readonly currentPeriod: ModelPeriod;
  readonly cancelAtPeriodEnd: boolean;
  readonly canceledAt?: number;
  readonly endedAt?: number;
  readonly prices: readonly string[];
  readonly metadata: Record<string, string>;
}

/** A meter event Stripe accepted, and what became of it. */
export interface ModelMeterEvent {
  readonly identifier: string;
  readonly eventName: string;
  /** The customer and value read from the payload with the meter's keys (when processed). */
  customer?: string;
  value: string;
  /** The event's timestamp, epoch seconds. */
  readonly timestamp: number;
  readonly receivedAt: number;
  /** When Stripe processes it (receivedAt + processing lag). */
  readonly processAt: number;
  outcome: 'pending' | 'counted' | 'error';
  /** The meter it counted on. */
  meter?: string;
  error?: MeterErrorCode;
}

export type MeterErrorCode = 'meter_event_customer_not_found' | 'meter_event_no_customer_defined' | 'meter_event_invalid_value' | 'archived_meter' | 'no_meter';

/** What Stripe's meter error report events would say about one event it accepted and did not count. */
export interface MeterErrorReport {
  readonly type: 'v1.billing.meter.error_report_triggered' | 'v1.billing.meter.no_meter_found';
  readonly code: MeterErrorCode;
  readonly message: string;
  /** The meter (absent for `no_meter`). */
  readonly meter?: string;
  readonly eventName: string;
  readonly customer?: string;
  readonly identifier: string;
  readonly value: string;
  readonly timestamp: number;
  readonly processedAt: number;
}

interface EventRecord extends ModelMeterEvent {
  readonly payload: Record<string, string>;
}

interface Price {
  readonly id: string;
  readonly type: 'metered' | 'fixed';
  readonly interval: PriceInterval;
  readonly amount: number;
  readonly eventName?: string;
}

interface Item {
  readonly id: string;
  readonly price: Price;
  readonly addedAt: number;
  deletedAt?: number;
}

interface Sub {
  readonly id: string;
  readonly customer: string;
  readonly created: number;
  readonly anchor: number;
  readonly interval: PriceInterval;
  readonly items: Item[];
  metadata: Record<string, string>;
  status: SubscriptionStatus;
  periodStart: number;
  periodEnd: number;
  cancelAtPeriodEnd: boolean;
  canceledAt?: number;
  endedAt?: number;
  firstInvoice?: string;
  latestInvoice?: string;
  expiresAt?: number;
}

/** A metered item billed on an invoice, over [from, to). */
interface MeteredSpan {
  readonly item: string;
  readonly price: Price;
  readonly from: number;
  readonly to: number;
}

interface Invoice {
  readonly id: string;
  readonly customer: string;
  readonly subscription?: string;
  readonly billingReason: string;
  status: InvoiceStatus;
  readonly period: ModelPeriod;
  readonly createdAt: number;
  readonly finalizeAt: number;
  finalizedAt?: number;
  paidAt?: number;
  voidedAt?: number;
  /** Lines fixed at creation (fixed, proration, invoice items). */
  readonly fixedLines: ModelInvoiceLine[];
  readonly metered: readonly MeteredSpan[];
  /** Metered quantities count events processed by this time (undefined: until finalization). */
  usageAsOf?: number;
  /** Metered lines, frozen at finalization. */
  frozen?: ModelInvoiceLine[];
}

interface PendingItem {
  readonly id: string;
  readonly customer: string;
  readonly subscription?: string;
  readonly amount: number;
  readonly currency: string;
  readonly description: string;
  readonly metadata: Record<string, string>;
  readonly createdAt: number;
  invoice?: string;
}

const sec = (ms: number) => Math.floor(ms / 1000);

function stripeError(status: number, message: string, extra: Obj = {}): StripeAnswer {
  return { status, body: { error: { type: status === 402 ? 'card_error' : 'invalid_request_error', message, ...extra } }, headers: { 'stripe-should-retry': 'false' } };
}

function nested(form: Record<string, string>, prefix: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(form)) {
    const m = /^([^[]+)\[([^\]]+)\]$/.exec(k);
    if (m && m[1] === prefix) out[m[2]] = v;
  }
  return out;
}

/** `items[0][price]=p&items[1][id]=si&items[1][deleted]=true` -> `[{ price: 'p' }, { id: 'si', deleted: 'true' }]`. */
function indexed(form: Record<string, string>, prefix: string): Record<string, string>[] {
  const rows = new Map<number, Record<string, string>>();
  for (const [k, v] of Object.entries(form)) {
    const m = /^([^[]+)\[(\d+)\]\[([^\]]+)\]$/.exec(k);
    if (!m || m[1] !== prefix) continue;
    const row = rows.get(Number(m[2])) ?? {};
    row[m[3]] = v;
    rows.set(Number(m[2]), row);
  }
  return [...rows.entries()].sort(([a], [b]) => a - b).map(([, r]) => r);
}

/**
 * Period boundary `k` after the anchor. Monthly: the anchor's day of month, or the
 * month's last day when the month is shorter ("a monthly subscription with a billing
 * cycle anchor date of January 31 bills the last day of the month closest to the anchor
 * date, so February 28 ..., then March 31"; https://docs.stripe.com/billing/subscriptions/billing-cycle).
 */
function boundary(anchor: number, k: number, interval: PriceInterval): number {
  if (interval === 'day') return anchor + k * DAY_MS;
  const a = new Date(anchor);
  const month = a.getUTCMonth() + k;
  const lastDay = new Date(Date.UTC(a.getUTCFullYear(), month + 1, 0)).getUTCDate();
  return Date.UTC(a.getUTCFullYear(), month, Math.min(a.getUTCDate(), lastDay), a.getUTCHours(), a.getUTCMinutes(), a.getUTCSeconds());
}

/** A Stripe list page of `items` (already in Stripe's order), by `limit`, `starting_after`, `ending_before`. */
function page(items: Obj[], q: URLSearchParams, url: string): StripeAnswer {
  const limit = Math.min(100, Math.max(1, Number(q.get('limit') ?? 10) || 10));
  const after = q.get('starting_after');
  const before = q.get('ending_before');
  let slice: Obj[];
  let hasMore: boolean;
  if (before) {
    const end = Math.max(0, items.findIndex((i) => i.id === before));
    slice = items.slice(Math.max(0, end - limit), end);
    hasMore = end - limit > 0;
  } else {
    const from = after ? items.findIndex((i) => i.id === after) + 1 : 0;
    slice = items.slice(from, from + limit);
    hasMore = from + limit < items.length;
  }
  return { status: 200, body: { object: 'list', data: slice, has_more: hasMore, url } };
}

/** The billing-period model (see the module comment). */
export class StripeBillingModel implements StripeModel {
  /** Time between Stripe accepting a meter event and counting it, ms. Applies to events received after a change. */
  public processingLagMs: number;
  private readonly prices = new Map<string, Price>();
  private readonly options: StripeBillingModelOptions;
  private gracePeriodMs: number;
  private proxy?: StripeProxy;
  private subs = new Map<string, Sub>();
  private invoiceMap = new Map<string, Invoice>();
  private pendingItems: PendingItem[] = [];
  private events: EventRecord[] = [];
  /** Accepted events not processed yet, in processing order. */
  private queue: EventRecord[] = [];
  private reports: MeterErrorReport[] = [];
  private paymentMethods = new Map<string, boolean>();
  private templates: { subscription?: Obj; invoice?: Obj; invoiceitem?: Obj } = {};
  private processedUntil = 0;

  constructor(options: StripeBillingModelOptions = {}) {
    this.options = options;
    this.gracePeriodMs = 0;
    this.setGracePeriod(options.gracePeriodMs ?? HOUR_MS);
    this.processingLagMs = options.processingLagMs ?? 0;
    for (const p of options.prices ?? []) this.definePrice(p);
  }

  /** Answers `proxy`'s requests from now on. */
  public attach(proxy: StripeProxy): this {
    this.proxy = proxy;
    proxy.model = this;
    return this;
  }

  public detach(): void {
    if (this.proxy?.model === this) this.proxy.model = undefined;
    this.proxy = undefined;
  }

  /** Forgets subscriptions, invoices, items, events, reports and payment methods (prices and options stay). */
  public reset(): void {
    this.subs = new Map();
    this.invoiceMap = new Map();
    this.pendingItems = [];
    this.events = [];
    this.queue = [];
    this.reports = [];
    this.paymentMethods = new Map();
    this.processedUntil = 0;
    this.gracePeriodMs = this.options.gracePeriodMs ?? HOUR_MS;
    this.processingLagMs = this.options.processingLagMs ?? 0;
  }

  /**
   * Defines a price. Metered prices are per unit (`billing_scheme=per_unit`) on the meter
   * of `eventName` and bill "the total usage" of the period (`usage_type=metered`); fixed
   * prices are licensed with quantity 1 (https://docs.stripe.com/api/prices/object).
   */
  public definePrice(p: PriceDefinition): void {
    this.prices.set(p.id, p.type === 'metered'
      ? { id: p.id, type: 'metered', interval: p.interval, amount: p.unitAmount, eventName: p.eventName }
      : { id: p.id, type: 'fixed', interval: p.interval, amount: p.amount });
  }

  /**
   * The finalization grace period of invoices created from now on: "All invoices have a
   * default finalization grace period of 1 hour ... You can set a delay of up to 72 hours"
   * (https://docs.stripe.com/billing/subscriptions/usage-based/configure-grace-period).
   */
  public setGracePeriod(ms: number): void {
    if (!(ms >= 0 && ms <= 72 * HOUR_MS)) throw new Error(`grace period must be between 0 and 72 hours (given ${ms} ms)`);
    this.gracePeriodMs = ms;
  }

  /** Gives a customer a default payment method, or takes it away. */
  public setPaymentMethod(customerId: string, has: boolean): void {
    this.paymentMethods.set(customerId, has);
  }

  /** Processes everything due up to the clock. */
  public tick(): void {
    this.advanceTo(this.now());
  }

  public invoices(customerId?: string): ModelInvoice[] {
    this.tick();
    return [...this.invoiceMap.values()].filter((i) => !customerId || i.customer === customerId).map((i) => this.view(i));
  }

  public subscriptions(customerId?: string): ModelSubscription[] {
    this.tick();
    return [...this.subs.values()].filter((s) => !customerId || s.customer === customerId).map((s) => this.subView(s));
  }

  public subscription(id: string): ModelSubscription | undefined {
    this.tick();
    const s = this.subs.get(id);
    return s && this.subView(s);
  }

  /** What Stripe counted for the customer on the meter of `eventName`: events timestamped in [startMs, endMs), counted by now. */
  public usage(customerId: string, eventName: string, startMs: number, endMs: number): number {
    this.tick();
    return this.events.filter((e) => e.outcome === 'counted' && e.customer === customerId && e.eventName === eventName
      && e.timestamp * 1000 >= startMs && e.timestamp * 1000 < endMs).reduce((sum, e) => sum + Number(e.value), 0);
  }

  public meterEvents(): readonly ModelMeterEvent[] {
    this.tick();
    return this.events;
  }

  public errorReports(): readonly MeterErrorReport[] {
    this.tick();
    return this.reports;
  }

  /**
   * Deactivates a meter (by id or event name): "When a meter is deactivated, no more meter
   * events will be accepted for this meter" (https://docs.stripe.com/api/billing/meter/deactivate).
   * Events processed while it is inactive are not counted (see `process`).
   */
  public deactivateMeter(idOrEventName: string): void {
    this.tick();
    for (const m of this.meters()) if (m.id === idOrEventName || m.event_name === idOrEventName) m.status = 'inactive';
  }

  /** "When a meter is reactivated, events for this meter can be accepted" (https://docs.stripe.com/api/billing/meter/reactivate). */
  public reactivateMeter(idOrEventName: string): void {
    this.tick();
    for (const m of this.meters()) if (m.id === idOrEventName || m.event_name === idOrEventName) m.status = 'active';
  }

  /** Deletes a customer as `DELETE /v1/customers/:id` does (see `customerDeleted`). */
  public deleteCustomer(id: string): void {
    this.tick();
    const c = this.requireProxy().state.customers.get(id);
    if (!c) throw new Error(`no customer ${id}`);
    c.deleted = true;
    this.customerDeleted(id, this.now());
  }

  /** Pays an open invoice. Paying the first invoice of an incomplete subscription activates it; paying a past_due subscription's last open invoice makes it active again. */
  public payInvoice(id: string): void {
    this.tick();
    const inv = this.invoiceMap.get(id);
    if (!inv || inv.status !== 'open') throw new Error(`invoice ${id} is ${inv?.status ?? 'unknown'}, not open`);
    this.markPaid(inv, this.now());
  }

  /** Voids an open invoice: "Mark a finalized invoice as void ... it only applies to finalized invoices" (https://docs.stripe.com/api/invoices/void). */
  public voidInvoice(id: string): void {
    this.tick();
    const inv = this.invoiceMap.get(id);
    if (!inv || inv.status !== 'open') throw new Error(`invoice ${id} is ${inv?.status ?? 'unknown'}, not open`);
    inv.status = 'void';
    inv.voidedAt = this.now();
  }

  /** The answer for a request stripe-mock accepted (`StripeModel`). */
  public answer(req: StripeModelRequest, next: () => StripeAnswer): StripeAnswer {
    const now = this.now();
    this.advanceTo(now);
    const { method, path: p, form, query, mock } = req;
    let m: RegExpExecArray | null;
    if (p === '/v1/customers' && method === 'POST') {
      const a = next();
      const id = (a.body as Obj)?.id;
      if (a.status < 300 && id && (form.payment_method || form['invoice_settings[default_payment_method]'])) this.paymentMethods.set(id, true);
      return a;
    }
    if ((m = /^\/v1\/customers\/([^/]+)$/.exec(p)) && method === 'DELETE') {
      const a = next();
      if (a.status < 300) this.customerDeleted(m[1], now);
      return a;
    }
    if (p === '/v1/subscriptions' && method === 'POST') return this.createSubscription(form, mock, now);
    if (p === '/v1/subscriptions' && method === 'GET') return this.listSubscriptions(query, mock, p);
    if ((m = /^\/v1\/subscriptions\/([^/]+)$/.exec(p))) {
      const sub = this.subs.get(m[1]);
      if (!sub) return stripeError(404, `No such subscription: '${m[1]}'`, { code: 'resource_missing', param: 'id' });
      if (method === 'GET') return this.ok(this.renderSub(sub, mock));
      if (method === 'DELETE') return this.cancelSubscription(sub, form, mock, now);
      return this.updateSubscription(sub, form, mock, now);
    }
    if (p === '/v1/invoiceitems' && method === 'POST') return this.createInvoiceItem(form, mock, now);
    if (p === '/v1/invoices' && method === 'GET') {
      this.keepTemplate('invoice', (mock.data as Obj[] | undefined)?.[0]);
      const list = [...this.invoiceMap.values()].filter((i) => (!query.get('customer') || i.customer === query.get('customer'))
        && (!query.get('subscription') || i.subscription === query.get('subscription'))
        && (!query.get('status') || i.status === query.get('status'))).reverse();
      return page(list.map((i) => this.renderInvoice(i)), query, p);
    }
    if ((m = /^\/v1\/invoices\/([^/]+)$/.exec(p)) && method === 'GET') {
      this.keepTemplate('invoice', mock);
      const inv = this.invoiceMap.get(m[1]);
      if (!inv) return stripeError(404, `No such invoice: '${m[1]}'`, { code: 'resource_missing', param: 'id' });
      return this.ok(this.renderInvoice(inv));
    }
    if (p === '/v1/billing/meter_events' && method === 'POST') return this.meterEvent(form, next, now);
    if ((m = /^\/v1\/billing\/meters\/([^/]+)\/event_summaries$/.exec(p)) && method === 'GET') return this.summaries(m[1], query, p);
    return next();
  }

  // ---- requests -------------------------------------------------------------------------

  private createSubscription(form: Record<string, string>, mock: Obj, now: number): StripeAnswer {
    this.keepTemplate('subscription', mock);
    const customer = form.customer;
    const c = this.requireProxy().state.customers.get(customer);
    // "Deleting customers ... prevents any further operations to be performed (such as adding
    // a new subscription)" (https://docs.stripe.com/api/customers/delete).
    if (!c || c.deleted) return stripeError(400, `No such customer: '${customer}'`, { code: 'resource_missing', param: 'customer' });
    const rows = indexed(form, 'items');
    const prices: Price[] = [];
    for (const [i, row] of rows.entries()) {
      const price = this.prices.get(row.price);
      if (!price) return stripeError(400, `No such price: '${row.price}'`, { code: 'resource_missing', param: `items[${i}][price]` });
      prices.push(price);
    }
    if (prices.length === 0) return stripeError(400, 'Missing required param: items.', { code: 'parameter_missing', param: 'items' });
    const interval = prices[0].interval;
    if (prices.some((x) => x.interval !== interval)) return stripeError(400, 'model: prices of different intervals on one subscription are not modelled');
    const created = sec(now) * 1000;
    const natural = boundary(created, 1, interval);
    let anchor = created;
    if (form.billing_cycle_anchor !== undefined) {
      // "The anchor must be a future UNIX timestamp before the next natural subscription
      // billing date" (https://docs.stripe.com/payments/checkout/billing-cycle; the same
      // parameter on subscriptions: https://docs.stripe.com/billing/subscriptions/billing-cycle).
      anchor = Number(form.billing_cycle_anchor) * 1000;
      if (anchor <= created) {
        return stripeError(400, `billing_cycle_anchor must be in the future (given ${form.billing_cycle_anchor}, now ${sec(created)})`, { param: 'billing_cycle_anchor' });
      }
      if (anchor > natural) {
        return stripeError(400, `billing_cycle_anchor cannot be later than next natural billing date (${sec(natural)}) for plan`, { param: 'billing_cycle_anchor' });
      }
    }
    const proration = form.proration_behavior ?? 'create_prorations';
    const behavior = form.payment_behavior ?? 'allow_incomplete';
    const sub: Sub = {
      id: this.newId('sub'),
      customer,
      created,
      anchor,
      interval,
      items: prices.map((price) => ({ id: this.newId('si'), price, addedAt: created })),
      metadata: nested(form, 'metadata'),
      status: 'active',
      // "For the initial billing period up until the first full invoice date" the period is
      // [created, anchor); "Full billing periods start on the first full invoice date, which is
      // often the same as the billing cycle anchor and is always interval-aligned with it"
      // (https://docs.stripe.com/billing/subscriptions/billing-cycle).
      periodStart: created,
      periodEnd: anchor > created ? anchor : natural,
      cancelAtPeriodEnd: false,
    };
    // The first invoice bills licensed (fixed) prices in advance for the first period. With an
    // anchor, "the proration_behavior flag determines whether the customer receives a prorated
    // invoice at all. If proration_behavior is none, the initial period up to the billing cycle
    // anchor will be free" (https://docs.stripe.com/billing/subscriptions/billing-cycle).
    const lines: ModelInvoiceLine[] = [];
    for (const item of sub.items.filter((i) => i.price.type === 'fixed')) {
      if (anchor > created && proration === 'none') continue;
      const share = anchor > created ? (anchor - created) / (natural - created) : 1;
      lines.push({
        kind: 'fixed',
        price: item.price.id,
        amount: Math.round(item.price.amount * share),
        period: { start: created, end: sub.periodEnd },
        description: share < 1 ? `Remaining time on ${item.price.id}` : `1 × ${item.price.id}`,
      });
    }
    const due = lines.reduce((s, l) => s + l.amount, 0) + this.takePendingItems(sub, undefined).reduce((s, l) => s + l.amount, 0);
    const hasPayment = this.hasPaymentMethod(customer);
    // payment_behavior (https://docs.stripe.com/api/subscriptions/create#create_subscription-payment_behavior):
    // allow_incomplete (the default) "create[s] Subscriptions with status=incomplete if the first
    // invoice can't be paid"; default_incomplete "with status=incomplete when the first invoice
    // requires payment"; error_if_incomplete: "return an HTTP 402 status code if a subscription's
    // first invoice can't be paid".
    const canPay = due === 0 || (hasPayment && behavior !== 'default_incomplete');
    if (!canPay && behavior === 'error_if_incomplete') {
      return stripeError(402, 'This customer has no attached payment source or default payment method.', { code: 'resource_missing' });
    }
    this.subs.set(sub.id, sub);
    // "When you create a subscription for a customer, Stripe: Creates an invoice. Finalizes the
    // invoice immediately when collection_method is set to charge_automatically"
    // (https://docs.stripe.com/subscriptions/invoices).
    const inv = this.newInvoice(sub, 'subscription_create', { start: created, end: created }, lines, [], now, now);
    this.takePendingItems(sub, inv);
    sub.firstInvoice = inv.id;
    this.finalize(inv, now, false);
    if (canPay) {this.markPaid(inv, now);} else {
      // "The subscription is created in an incomplete status, where it remains for up to 23
      // hours. During that time period, it can be moved into an active state by paying the first
      // invoice. If no successful payment is made, the subscription moves into a final
      // incomplete_expired state" (https://docs.stripe.com/changelog/2019-03-14/subscriptions-successfully-created-first-payment-fails).
      sub.status = 'incomplete';
      sub.expiresAt = created + 23 * HOUR_MS;
    }
    return this.ok(this.renderSub(sub, mock));
  }

  private listSubscriptions(query: URLSearchParams, mock: Obj, p: string): StripeAnswer {
    this.keepTemplate('subscription', (mock.data as Obj[] | undefined)?.[0]);
    const status = query.get('status');
    // "If no value is supplied, all subscriptions that have not been canceled are returned";
    // `ended`: canceled and incomplete_expired; `all`: every status
    // (https://docs.stripe.com/api/subscriptions/list#list_subscriptions-status).
    const wanted = (s: Sub) => status === 'all' || (status === 'ended' ? ['canceled', 'incomplete_expired'].includes(s.status)
      : status ? s.status === status : s.status !== 'canceled');
    const list = [...this.subs.values()].filter((s) => (!query.get('customer') || s.customer === query.get('customer')) && wanted(s)).reverse();
    return page(list.map((s) => this.renderSub(s)), query, p);
  }

  private updateSubscription(sub: Sub, form: Record<string, string>, mock: Obj, now: number): StripeAnswer {
    this.keepTemplate('subscription', mock);
    if (sub.status === 'canceled' || sub.status === 'incomplete_expired') {
      // "After it's canceled, the subscription is largely immutable. You can still update its
      // metadata and cancellation_details" (https://docs.stripe.com/api/subscriptions/cancel).
      const others = Object.keys(form).filter((k) => !/^(metadata|cancellation_details)\[/.test(k) && k !== 'expand[]');
      if (others.length) return stripeError(400, 'A canceled subscription can only update its cancellation_details and metadata.');
    }
    Object.assign(sub.metadata, nested(form, 'metadata'));
    if (form.cancel_at_period_end !== undefined) sub.cancelAtPeriodEnd = form.cancel_at_period_end === 'true';
    for (const [i, row] of indexed(form, 'items').entries()) {
      if (row.id) {
        const item = sub.items.find((x) => x.id === row.id && x.deletedAt === undefined);
        if (!item) return stripeError(400, `No such subscription item: '${row.id}'`, { code: 'resource_missing', param: `items[${i}][id]` });
        // "After deletion, the invoice doesn't reflect any usage from that item"
        // (https://docs.stripe.com/billing/subscriptions/usage-based/manage-billing-setup).
        if (row.deleted === 'true') item.deletedAt = now;
        continue;
      }
      const price = this.prices.get(row.price);
      if (!price) return stripeError(400, `No such price: '${row.price}'`, { code: 'resource_missing', param: `items[${i}][price]` });
      if (price.interval !== sub.interval) return stripeError(400, 'model: prices of different intervals on one subscription are not modelled');
      // "If you add a new subscription item with a billing meter price in the middle of the
      // subscription cycle ... the invoice includes usage from January 16 [the addition]"
      // (https://docs.stripe.com/billing/subscriptions/usage-based/manage-billing-setup).
      sub.items.push({ id: this.newId('si'), price, addedAt: sec(now) * 1000 });
    }
    return this.ok(this.renderSub(sub, mock));
  }

  private cancelSubscription(sub: Sub, form: Record<string, string>, mock: Obj, now: number): StripeAnswer {
    this.keepTemplate('subscription', mock);
    if (sub.status === 'canceled' || sub.status === 'incomplete_expired') {
      return stripeError(400, 'A canceled subscription can only update its cancellation_details and metadata.');
    }
    const at = sec(now) * 1000;
    const wasBilling = sub.status !== 'incomplete';
    this.endSubscription(sub, at);
    // invoice_now: "Will generate a final invoice that invoices for any un-invoiced metered usage
    // and new/pending proration invoice items"; prorate: "Will generate a proration invoice item
    // that credits remaining unused time until the subscription period end"
    // (https://docs.stripe.com/api/subscriptions/cancel). Without invoice_now the period's usage
    // is on no invoice. "Pending invoice items are included on a final invoice if you generate
    // one. Otherwise, they remain pending" (same page).
    if (form.invoice_now === 'true') {
      const lines: ModelInvoiceLine[] = [];
      if (form.prorate === 'true' && wasBilling) {
        for (const item of sub.items.filter((i) => i.price.type === 'fixed' && i.deletedAt === undefined)) {
          const share = (sub.periodEnd - at) / (sub.periodEnd - sub.periodStart);
          if (share > 0) {
            lines.push({
              kind: 'proration',
              price: item.price.id,
              amount: -Math.round(item.price.amount * share),
              period: { start: at, end: sub.periodEnd },
              description: `Unused time on ${item.price.id}`,
            });
          }
        }
      }
      const inv = this.newInvoice(sub, 'subscription_update', { start: sub.periodStart, end: at }, lines, this.spans(sub, sub.periodStart, at), now,
        now + this.gracePeriodMs);
      this.takePendingItems(sub, inv);
      if ((this.options.finalInvoiceUsage ?? 'at-cancel') === 'at-cancel') inv.usageAsOf = now;
    }
    return this.ok(this.renderSub(sub, mock));
  }

  private createInvoiceItem(form: Record<string, string>, mock: Obj, now: number): StripeAnswer {
    this.keepTemplate('invoiceitem', mock);
    const c = this.requireProxy().state.customers.get(form.customer);
    if (!c || c.deleted) return stripeError(400, `No such customer: '${form.customer}'`, { code: 'resource_missing', param: 'customer' });
    if (form.subscription) {
      const sub = this.subs.get(form.subscription);
      if (!sub || sub.customer !== form.customer) return stripeError(400, `No such subscription: '${form.subscription}'`, { code: 'resource_missing', param: 'subscription' });
    }
    if (form.amount === undefined || form.invoice !== undefined) return stripeError(400, 'model: only invoice items with an amount and no invoice are modelled');
    const item: PendingItem = {
      id: this.newId('ii'),
      customer: form.customer,
      subscription: form.subscription,
      amount: Number(form.amount),
      currency: form.currency ?? 'usd',
      description: form.description ?? '',
      metadata: nested(form, 'metadata'),
      createdAt: now,
    };
    // "If no invoice is specified, the item will be on the next invoice created for the customer
    // specified" (https://docs.stripe.com/api/invoiceitems/create); with `subscription`, "scheduled
    // invoices for subscriptions other than the specified subscription will ignore the invoice
    // item" (same page).
    this.pendingItems.push(item);
    return this.ok(this.renderInvoiceItem(item, mock));
  }

  private meterEvent(form: Record<string, string>, next: () => StripeAnswer, now: number): StripeAnswer {
    const timestamp = form.timestamp === undefined ? sec(now) : Number(form.timestamp);
    // "The time of the event ... Must be within the past 35 calendar days or up to 5 minutes in
    // the future" (https://docs.stripe.com/api/billing/meter-event/create); refused at once.
    if (timestamp * 1000 < now - 35 * DAY_MS) {
      return stripeError(400, `Timestamp ${timestamp} is too far in the past: meter events must be within the past 35 days.`, { param: 'timestamp' });
    }
    if (timestamp * 1000 > now + 5 * 60_000) {
      return stripeError(400, `Timestamp ${timestamp} is too far in the future: meter events can be at most 5 minutes in the future.`, { param: 'timestamp' });
    }
    const answer = next(); // the proxy's identifier dedup (24 hours)
    if (answer.status >= 300) return answer;
    // "Stripe processes meter events asynchronously, so aggregated usage in meter event summaries
    // and on upcoming invoices might not immediately reflect recently received meter events"
    // (https://docs.stripe.com/billing/subscriptions/usage-based/recording-usage).
    const event: EventRecord = {
      identifier: form.identifier ?? (answer.body as Obj)?.identifier,
      eventName: form.event_name,
      value: '',
      timestamp,
      receivedAt: now,
      processAt: now + this.processingLagMs,
      outcome: 'pending',
      payload: nested(form, 'payload'),
    };
    this.events.push(event);
    const at = this.queue.findIndex((e) => e.processAt > event.processAt);
    this.queue.splice(at < 0 ? this.queue.length : at, 0, event);
    this.advanceTo(now);
    return answer;
  }

  private summaries(meterId: string, query: URLSearchParams, p: string): StripeAnswer {
    const meter = this.requireProxy().state.meters.get(meterId);
    if (!meter) return stripeError(404, `No such billing meter: '${meterId}'`, { code: 'resource_missing', param: 'id' });
    const [start, end] = [Number(query.get('start_time')), Number(query.get('end_time'))];
    const window = query.get('value_grouping_window');
    // start_time and end_time "Must be aligned with minute boundaries"; "For hourly granularity,
    // start and end times must align with hour boundaries ... For daily granularity, start and
    // end times must align with UTC day boundaries" (https://docs.stripe.com/api/billing/meter-event-summary/list).
    const step = window === 'day' ? 86_400 : window === 'hour' ? 3600 : 60;
    for (const [name, t] of [['start_time', start], ['end_time', end]] as const) {
      if (t % step !== 0) return stripeError(400, `${name} (${t}) must be aligned with ${window ?? 'minute'} boundaries`, { param: name });
    }
    if (end <= start) return stripeError(400, 'end_time must be after start_time', { param: 'end_time' });
    const customer = query.get('customer');
    const counted = this.events.filter((e) => e.outcome === 'counted' && e.meter === meterId && e.customer === customer
      && e.timestamp >= start && e.timestamp < end);
    const windows: Obj[] = [];
    const width = window ? step : end - start;
    for (let from = start; from < end; from += width) {
      const inWindow = counted.filter((e) => e.timestamp >= from && e.timestamp < from + width);
      if (window && inWindow.length === 0 && !this.options.emptySummaryWindows) continue;
      windows.push({
        id: `mtrusg_${meterId}_${customer}_${from}_${width}`,
        object: 'billing.meter_event_summary',
        aggregated_value: inWindow.reduce((s, e) => s + Number(e.value), 0),
        start_time: from,
        end_time: from + width,
        meter: meterId,
        livemode: false,
      });
    }
    return page(windows, query, p);
  }

  // ---- time -----------------------------------------------------------------------------

  /** Processes what fell due up to `t`, in time order (ties: events, finalizations, expiries, period ends). */
  private advanceTo(t: number): void {
    for (;;) {
      let best: { at: number; rank: number; run: () => void } | undefined;
      const consider = (at: number, rank: number, run: () => void) => {
        if (at <= t && (!best || at < best.at || (at === best.at && rank < best.rank))) best = { at, rank, run };
      };
      const event = this.queue[0];
      if (event) consider(event.processAt, 0, () => this.process(this.queue.shift()!));
      for (const inv of this.invoiceMap.values()) if (inv.status === 'draft') consider(inv.finalizeAt, 1, () => this.finalize(inv, inv.finalizeAt));
      for (const s of this.subs.values()) {
        if (s.status === 'incomplete' && s.expiresAt !== undefined) consider(s.expiresAt, 2, () => this.expire(s));
        if (s.status !== 'canceled' && s.status !== 'incomplete_expired') consider(s.periodEnd, 3, () => this.endPeriod(s));
      }
      if (!best) break;
      best.run();
    }
    this.processedUntil = Math.max(this.processedUntil, t);
  }

  /**
   * Stripe processes an accepted event. Failures are reported, not refused: "Occurs when a Meter
   * has invalid async usage events" (`v1.billing.meter.error_report_triggered`) and "Occurs when a
   * Meter's id is missing or invalid in async usage events" (`v1.billing.meter.no_meter_found`)
   * (https://docs.stripe.com/api/v2/events/event-types); the error codes are those of the error
   * report (`archived_meter`, `meter_event_customer_not_found`, `meter_event_no_customer_defined`,
   * `meter_event_invalid_value`, `no_meter`: https://docs.stripe.com/api/v2/core/events/object).
   */
  private process(e: EventRecord): void {
    const meters = this.meters().filter((m) => m.event_name === e.eventName);
    // An inactive meter accepts no more events (https://docs.stripe.com/api/billing/meter/deactivate).
    const meter = meters.find((m) => m.status === 'active');
    const customerKey = meter?.customer_mapping?.event_payload_key ?? 'stripe_customer_id';
    const valueKey = meter?.value_settings?.event_payload_key ?? 'value';
    e.customer = e.payload[customerKey];
    e.value = e.payload[valueKey] ?? '';
    const fail = (code: MeterErrorCode, message: string, meterId?: string) => {
      e.outcome = 'error';
      e.error = code;
      e.meter = meterId;
      this.reports.push({
        type: code === 'no_meter' ? 'v1.billing.meter.no_meter_found' : 'v1.billing.meter.error_report_triggered',
        code,
        message,
        meter: meterId,
        eventName: e.eventName,
        customer: e.customer,
        identifier: e.identifier,
        value: e.value,
        timestamp: e.timestamp,
        processedAt: e.processAt,
      });
    };
    if (meters.length === 0) return fail('no_meter', `No active meter was found for event name ${e.eventName}.`);
    if (!meter) return fail('archived_meter', `The meter for event name ${e.eventName} is inactive.`, meters[0].id);
    if (!e.customer) return fail('meter_event_no_customer_defined', `Customer mapping key ${customerKey} not found in payload.`, meter.id);
    const c = this.requireProxy().state.customers.get(e.customer);
    // A deleted customer: "Permanently deletes a customer. It cannot be undone" (https://docs.stripe.com/api/customers/delete).
    if (!c || c.deleted) return fail('meter_event_customer_not_found', `No such customer: ${e.customer}.`, meter.id);
    if (!/^-?\d+(\.\d+)?$/.test(e.value)) return fail('meter_event_invalid_value', `Value ${JSON.stringify(e.value)} is not a number.`, meter.id);
    e.outcome = 'counted';
    e.meter = meter.id;
  }

  /**
   * A period ends. "When subscriptions renew, Stripe: Creates an invoice. Leaves the invoice in a
   * draft state for about an hour. Attempts to finalize and pay the invoice"
   * (https://docs.stripe.com/billing/invoices/subscription); the hour is the finalization grace
   * period, during which "you can continue to report usage for the previous billing period. During
   * finalization, Stripe updates the invoice to reflect the latest quantity for its billing period"
   * (https://docs.stripe.com/billing/subscriptions/usage-based/configure-grace-period). The invoice
   * bills the ended period's metered usage and, in advance, the next period's fixed prices. With
   * cancel_at_period_end, "Any metered usage is charged for in a final invoice when the subscription
   * cancels at the end of the billing period" (https://docs.stripe.com/billing/subscriptions/cancel; the search tool
   * holds this page's text only as quoted by a third-party page, not the page itself).
   * Undocumented, the model's choice: an incomplete subscription's period ends like an active one's.
   */
  private endPeriod(s: Sub): void {
    const [start, end] = [s.periodStart, s.periodEnd];
    const nextEnd = this.nextBoundary(s, end);
    const lines: ModelInvoiceLine[] = s.cancelAtPeriodEnd ? [] : s.items.filter((i) => i.price.type === 'fixed' && i.deletedAt === undefined)
      .map((i) => ({ kind: 'fixed' as const, price: i.price.id, amount: i.price.amount, period: { start: end, end: nextEnd }, description: `1 × ${i.price.id}` }));
    const inv = this.newInvoice(s, 'subscription_cycle', { start, end }, lines, this.spans(s, start, end), end, end + this.gracePeriodMs);
    this.takePendingItems(s, inv);
    if (s.cancelAtPeriodEnd) {
      this.endSubscription(s, end);
      return;
    }
    s.periodStart = end;
    s.periodEnd = nextEnd;
  }

  private expire(s: Sub): void {
    s.status = 'incomplete_expired';
    s.endedAt = s.expiresAt;
  }

  /** The next period end after `end`: the first anchor-aligned boundary after it. */
  private nextBoundary(s: Sub, end: number): number {
    for (let k = 1; ; k++) {
      const b = boundary(s.anchor, k - (s.anchor > s.created ? 1 : 0), s.interval);
      if (b > end) return b;
    }
  }

  private endSubscription(s: Sub, at: number): void {
    s.status = 'canceled';
    s.canceledAt = s.canceledAt ?? at;
    s.endedAt = at;
  }

  /** "Permanently deletes a customer ... Also immediately cancels any active subscriptions on the customer"; "Deleting customers removes all credit card details" (https://docs.stripe.com/api/customers/delete). */
  private customerDeleted(id: string, now: number): void {
    this.paymentMethods.set(id, false);
    for (const s of this.subs.values()) {
      if (s.customer === id && s.status !== 'canceled' && s.status !== 'incomplete_expired') this.endSubscription(s, sec(now) * 1000);
    }
  }

  // ---- invoices -------------------------------------------------------------------------

  private newInvoice(
    s: Sub, billingReason: string, period: ModelPeriod, lines: ModelInvoiceLine[], metered: MeteredSpan[], createdAt: number, finalizeAt: number,
  ): Invoice {
    const inv: Invoice = {
      id: this.newId('in'), customer: s.customer, subscription: s.id, billingReason, status: 'draft', period, createdAt, finalizeAt, fixedLines: lines, metered,
    };
    this.invoiceMap.set(inv.id, inv);
    s.latestInvoice = inv.id;
    return inv;
  }

  /** The metered items of `s` billed over [from, to): each from its addition, none deleted. */
  private spans(s: Sub, from: number, to: number): MeteredSpan[] {
    return s.items.filter((i) => i.price.type === 'metered' && i.deletedAt === undefined && i.addedAt < to)
      .map((i) => ({ item: i.id, price: i.price, from: Math.max(from, i.addedAt), to }));
  }

  /** Moves the pending invoice items `inv` takes (see `createInvoiceItem`) onto it; without `inv`, only lists them. */
  private takePendingItems(s: Sub, inv: Invoice | undefined): ModelInvoiceLine[] {
    const taken = this.pendingItems.filter((i) => !i.invoice && i.customer === s.customer && (!i.subscription || i.subscription === s.id));
    const lines = taken.map((i): ModelInvoiceLine => ({
      kind: 'invoiceitem',
      invoiceItem: i.id,
      amount: i.amount,
      description: i.description,
      metadata: i.metadata,
      period: { start: i.createdAt, end: i.createdAt },
    }));
    if (inv) {
      for (const i of taken) i.invoice = inv.id;
      inv.fixedLines.push(...lines);
    }
    return lines;
  }

  private meteredLines(inv: Invoice, asOf: number): ModelInvoiceLine[] {
    return inv.metered.map((span) => {
      const meter = this.meters().find((m) => m.event_name === span.price.eventName);
      const quantity = this.events.filter((e) => e.outcome === 'counted' && e.processAt <= asOf && e.customer === inv.customer
        && e.eventName === span.price.eventName && e.timestamp * 1000 >= span.from && e.timestamp * 1000 < span.to)
        .reduce((sum, e) => sum + Number(e.value), 0);
      return {
        kind: 'metered' as const,
        price: span.price.id,
        meter: meter?.id,
        eventName: span.price.eventName,
        quantity,
        amount: Math.round(quantity * span.price.amount),
        period: { start: span.from, end: span.to },
        description: `${quantity} × ${span.price.id}`,
      };
    });
  }

  private lines(inv: Invoice): ModelInvoiceLine[] {
    return [...(inv.frozen ?? this.meteredLines(inv, inv.usageAsOf ?? this.processedUntil)), ...inv.fixedLines];
  }

  /**
   * Finalization, then the automatic payment attempt. An invoice with nothing due is paid ("if no
   * payment is required, the invoice is marked as status=paid": https://docs.stripe.com/billing/invoices/subscription).
   * Otherwise it is paid when the customer has a payment method; when not, it stays open and an
   * active subscription becomes past_due ("Payment on the latest finalized invoice either failed or
   * wasn't attempted. The subscription continues to create invoices":
   * https://docs.stripe.com/billing/subscriptions/overview#subscription-statuses). "Upon subscription
   * cancellation, Stripe stops automatic collection of all finalized invoices for the customer"
   * (https://docs.stripe.com/api/subscriptions/cancel): invoices of a canceled subscription are not
   * collected, except its final invoice (invoice_now).
   */
  private finalize(inv: Invoice, at: number, collect = true): void {
    inv.frozen = this.meteredLines(inv, inv.usageAsOf ?? at);
    inv.status = 'open';
    inv.finalizedAt = at;
    if (!collect) return;
    const sub = inv.subscription ? this.subs.get(inv.subscription) : undefined;
    const total = this.lines(inv).reduce((s, l) => s + l.amount, 0);
    const collectable = !sub || sub.status !== 'canceled' || inv.billingReason === 'subscription_update';
    if (total <= 0) return this.markPaid(inv, at);
    if (collectable && this.hasPaymentMethod(inv.customer)) return this.markPaid(inv, at);
    if (sub && sub.status === 'active') sub.status = 'past_due';
  }

  private markPaid(inv: Invoice, at: number): void {
    inv.status = 'paid';
    inv.paidAt = at;
    const sub = inv.subscription ? this.subs.get(inv.subscription) : undefined;
    if (!sub) return;
    if (sub.status === 'incomplete' && sub.firstInvoice === inv.id) {
      sub.status = 'active';
      sub.expiresAt = undefined;
    }
    const open = [...this.invoiceMap.values()].some((i) => i.subscription === sub.id && i.status === 'open');
    if (sub.status === 'past_due' && !open) sub.status = 'active';
  }

  private hasPaymentMethod(customer: string): boolean {
    return this.paymentMethods.get(customer) ?? this.options.customersHavePaymentMethod ?? false;
  }

  // ---- views and answers ------------------------------------------------------------------

  private view(inv: Invoice): ModelInvoice {
    const lines = this.lines(inv);
    return {
      id: inv.id,
      customer: inv.customer,
      subscription: inv.subscription,
      billingReason: inv.billingReason,
      status: inv.status,
      period: inv.period,
      createdAt: inv.createdAt,
      finalizeAt: inv.finalizeAt,
      finalizedAt: inv.finalizedAt,
      paidAt: inv.paidAt,
      voidedAt: inv.voidedAt,
      lines,
      total: lines.reduce((s, l) => s + l.amount, 0),
    };
  }

  private subView(s: Sub): ModelSubscription {
    return {
      id: s.id,
      customer: s.customer,
      status: s.status,
      created: s.created,
      anchor: s.anchor,
      interval: s.interval,
      currentPeriod: { start: s.periodStart, end: s.periodEnd },
      cancelAtPeriodEnd: s.cancelAtPeriodEnd,
      canceledAt: s.canceledAt,
      endedAt: s.endedAt,
      prices: s.items.filter((i) => i.deletedAt === undefined).map((i) => i.price.id),
      metadata: s.metadata,
    };
  }

  /**
   * The subscription as Stripe renders it in API version 2025-09-30.clover: since 2025-03-31.basil
   * "current_period_start and current_period_end fields are no longer available on the subscription
   * resource" but on its items (https://docs.stripe.com/changelog/basil/2025-03-31/deprecate-subscription-current-period-start-and-end).
   */
  private renderSub(s: Sub, mock?: Obj): Obj {
    const base = (mock?.object === 'subscription' ? mock : this.templates.subscription) ?? {};
    const itemBase: Obj = base.items?.data?.[0] ?? {};
    const ended = s.status === 'canceled' || s.status === 'incomplete_expired';
    return {
      ...base,
      id: s.id,
      object: 'subscription',
      customer: s.customer,
      status: s.status,
      created: sec(s.created),
      start_date: sec(s.created),
      billing_cycle_anchor: sec(s.anchor > s.created ? s.anchor : s.created),
      billing_cycle_anchor_config: null,
      cancel_at_period_end: s.cancelAtPeriodEnd,
      cancel_at: s.cancelAtPeriodEnd && !ended ? sec(s.periodEnd) : null,
      canceled_at: s.canceledAt === undefined ? null : sec(s.canceledAt),
      ended_at: s.endedAt === undefined ? null : sec(s.endedAt),
      collection_method: 'charge_automatically',
      currency: 'usd',
      metadata: s.metadata,
      latest_invoice: s.latestInvoice ?? null,
      trial_start: null,
      trial_end: null,
      test_clock: null,
      schedule: null,
      items: {
        object: 'list',
        has_more: false,
        url: `/v1/subscription_items?subscription=${s.id}`,
        data: s.items.filter((i) => i.deletedAt === undefined).map((i) => ({
          ...itemBase,
          id: i.id,
          object: 'subscription_item',
          subscription: s.id,
          created: sec(i.addedAt),
          current_period_start: sec(s.periodStart),
          current_period_end: sec(s.periodEnd),
          metadata: {},
          quantity: i.price.type === 'metered' ? undefined : 1,
          price: {
            ...(itemBase.price ?? {}),
            id: i.price.id,
            object: 'price',
            billing_scheme: 'per_unit',
            currency: 'usd',
            type: 'recurring',
            unit_amount: i.price.amount,
            unit_amount_decimal: String(i.price.amount),
            transform_quantity: null,
            recurring: {
              interval: i.price.interval,
              interval_count: 1,
              meter: i.price.type === 'metered' ? this.meters().find((m) => m.event_name === i.price.eventName)?.id ?? null : null,
              usage_type: i.price.type === 'metered' ? 'metered' : 'licensed',
            },
          },
        })),
      },
    };
  }

  private renderInvoice(inv: Invoice): Obj {
    const base = this.templates.invoice ?? {};
    const lines = this.lines(inv);
    const total = lines.reduce((s, l) => s + l.amount, 0);
    const sub = inv.subscription ? this.subs.get(inv.subscription) : undefined;
    const paid = inv.status === 'paid' ? total : 0;
    return {
      ...base,
      id: inv.id,
      object: 'invoice',
      customer: inv.customer,
      status: inv.status,
      billing_reason: inv.billingReason,
      collection_method: 'charge_automatically',
      currency: 'usd',
      created: sec(inv.createdAt),
      period_start: sec(inv.period.start),
      period_end: sec(inv.period.end),
      auto_advance: inv.status === 'draft',
      automatically_finalizes_at: inv.status === 'draft' ? sec(inv.finalizeAt) : null,
      effective_at: inv.finalizedAt === undefined ? null : sec(inv.finalizedAt),
      status_transitions: {
        finalized_at: inv.finalizedAt === undefined ? null : sec(inv.finalizedAt),
        paid_at: inv.paidAt === undefined ? null : sec(inv.paidAt),
        voided_at: inv.voidedAt === undefined ? null : sec(inv.voidedAt),
        marked_uncollectible_at: null,
      },
      parent: sub ? { type: 'subscription_details', quote_details: null, subscription_details: { subscription: sub.id, metadata: sub.metadata } } : null,
      subtotal: total,
      subtotal_excluding_tax: total,
      total,
      total_excluding_tax: total,
      amount_due: total,
      amount_paid: paid,
      amount_remaining: inv.status === 'void' ? 0 : total - paid,
      discounts: [],
      test_clock: null,
      lines: {
        object: 'list',
        has_more: false,
        total_count: lines.length,
        url: `/v1/invoices/${inv.id}/lines`,
        data: lines.map((l, n) => ({
          id: `il_${inv.id}_${n}`,
          object: 'line_item',
          invoice: inv.id,
          amount: l.amount,
          currency: 'usd',
          description: l.description,
          discountable: true,
          discount_amounts: [],
          discounts: [],
          livemode: false,
          metadata: l.metadata ?? {},
          period: { start: sec(l.period.start), end: sec(l.period.end) },
          quantity: l.quantity ?? 1,
          pretax_credit_amounts: [],
          taxes: [],
          pricing: l.price ? { type: 'price_details', price_details: { price: l.price, product: 'prod_model' }, unit_amount_decimal: null } : null,
          parent: l.kind === 'invoiceitem'
            ? {
              type: 'invoice_item_details',
              subscription_item_details: null,
              invoice_item_details: {
                invoice_item: l.invoiceItem, proration: false, proration_details: { credited_items: null }, subscription: inv.subscription ?? null,
              },
            }
            : {
              type: 'subscription_item_details',
              invoice_item_details: null,
              subscription_item_details: {
                invoice_item: null,
                proration: l.kind === 'proration',
                proration_details: { credited_items: null },
                subscription: inv.subscription ?? null,
                subscription_item: null,
              },
            },
        })),
      },
    };
  }

  private renderInvoiceItem(i: PendingItem, mock: Obj): Obj {
    return {
      ...mock,
      id: i.id,
      object: 'invoiceitem',
      customer: i.customer,
      amount: i.amount,
      currency: i.currency,
      description: i.description,
      metadata: i.metadata,
      date: sec(i.createdAt),
      invoice: i.invoice ?? null,
      quantity: 1,
      proration: false,
      period: { start: sec(i.createdAt), end: sec(i.createdAt) },
      parent: i.subscription ? { type: 'subscription_details', subscription_details: { subscription: i.subscription, metadata: null } } : null,
      test_clock: null,
    };
  }

  // ---- helpers --------------------------------------------------------------------------

  private ok(body: unknown): StripeAnswer {
    return { status: 200, body };
  }

  private keepTemplate(kind: 'subscription' | 'invoice' | 'invoiceitem', body: Obj | undefined): void {
    if (body && body.object === kind && !this.templates[kind]) this.templates[kind] = body;
  }

  private meters(): Obj[] {
    return [...this.requireProxy().state.meters.values()];
  }

  private newId(prefix: string): string {
    return this.requireProxy().state.id(prefix);
  }

  private now(): number {
    return this.requireProxy().now();
  }

  private requireProxy(): StripeProxy {
    if (!this.proxy) throw new Error('StripeBillingModel is not attached to a StripeProxy (call attach(proxy))');
    return this.proxy;
  }
}

/** A recorded request plain stripe-mock refuses, with its answer. */
export interface RefusedRequest {
  readonly request: RecordedRequest;
  readonly status: number;
  readonly message: string;
}

/**
 * Replays recorded requests (method, path, query, form, Stripe-Version) directly against a plain
 * stripe-mock at `endpoint` (no proxy in between: its validation against Stripe's OpenAPI spec
 * alone) and returns those it refuses, with its message. Identical requests are sent once.
 */
export async function refusedByStripeMock(requests: readonly RecordedRequest[], endpoint: string): Promise<RefusedRequest[]> {
  const refused: RefusedRequest[] = [];
  const seen = new Set<string>();
  for (const r of requests) {
    const body = r.method === 'POST' ? new URLSearchParams(r.form).toString() : undefined;
    const url = `${endpoint}${r.path}${r.method === 'POST' ? '' : r.query}`;
    const key = `${r.method} ${url} ${body ?? ''} ${r.stripeVersion ?? ''}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const res = await fetch(url, {
      method: r.method,
      headers: {
        'authorization': 'Bearer sk_test_replay',
        'content-type': 'application/x-www-form-urlencoded',
        ...(r.stripeVersion ? { 'stripe-version': r.stripeVersion } : {}),
      },
      body,
    });
    const text = await res.text();
    if (res.status < 400) continue;
    let message = text;
    try {
      message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? text;
    } catch {
      // not JSON: keep the text
    }
    refused.push({ request: r, status: res.status, message });
  }
  return refused;
}
