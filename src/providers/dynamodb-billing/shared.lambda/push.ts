/**
 * The usage push: closed usage windows become charge lines, exactly once.
 *
 * A run reads pages of closed windows through the usage read contract from
 * its stored cursor on (in the order of their start), and for each window:
 *
 * 1. `customerOf`: reads its customer (once per run);
 * 2. `dispositionOf`: decides whether it is billed (`BILLED`), has no price
 *    (`UNPRICED`) or fell entirely inside a span in which the customer was
 *    closed (`NOT_BILLED_AFTER_CLOSE`): a window is priced as a whole, so one
 *    that overlaps any open time of the customer is billed whole;
 * 3. `chargeLineOf`: prices it exactly, at the price `pricing` gives (the
 *    tenant's plan at the window's end, else the construct's unit price); a
 *    price with a free quantity or tiers prices the window at its place in the
 *    billing period (the units of the tenant's metric billed before it in the
 *    period, its reconciliation record's `billed`);
 * 4. `writeChargeLine`: one transaction puts the charge line (on condition that
 *    it does not exist: the line, keyed by the window, is its pushed marker),
 *    adds the window to its reconciliation record (on condition, for a price
 *    that depends on it, that the units billed before it are still those it was
 *    priced at) and, when billed, adds the amount to the customer's period total.
 *
 * After each page, the reconciliation records of the periods that ended before
 * the page's last window started are set FINAL (`finalizePeriod`, which adds a
 * minimum charge line where the plan at the period's end has a minimum the
 * metric's charges did not reach), then the
 * cursor is stored. A rerun after a crash at any point reads again from the
 * last stored cursor and skips the lines already written: no window is billed
 * or counted twice, or dropped.
 */
import { NumberValue, PutCommand, GetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { ClosedWindow, ClosedWindowSource } from './closed-windows';
import { PlanPricing, Pricing, ResolvedPrice } from './plan-pricing';
import { finalizePeriod, reconciliationUpdate } from './reconciliation';
import { PriceDefinition } from '../../../plans/contract';
import { dependsOnPosition, windowAmount } from '../../../plans/shared.lambda/pricing';
import { documentClient } from '../../../shared.lambda/aws-clients';
import { addDecimals, parseDecimal } from '../../../shared.lambda/decimal';
import { cancellationCodes } from '../../../shared.lambda/dynamodb';
import { withRetry } from '../../../shared.lambda/retry';
import {
  BILLING_TABLE, billingPeriodOf, chargeLineKey, customerKey, CustomerState, DISPOSITION, Disposition,
  nextBillingPeriod, periodTotalKey, PUSH_CURSOR_KEY, reconciliationKey, STATUS, UnitPrice,
} from '../contract';

/** What one push run needs. */
export interface PushOptions {
  readonly billingTable: string;
  readonly windows: ClosedWindowSource;
  readonly prices: ReadonlyMap<string, UnitPrice>;
  /** Where prices come from. @default the unit prices only (`new PlanPricing(prices)`) */
  readonly pricing?: Pricing;
  /** Where the first run starts reading (it has no cursor yet): ISO-8601. */
  readonly firstRunSince: string;
  readonly now: Date;
  /** Checked before each page; false stops the run (the stored cursor keeps the progress). */
  readonly hasTimeLeft: () => boolean;
  /** Windows per page. @default 100 */
  readonly pageSize?: number;
}

/** What happened to a window in a run. */
export type WindowOutcome = Disposition | 'ALREADY_PUSHED';

/** What a push run did. */
export interface PushSummary {
  readonly pages: number;
  readonly windowsBilled: number;
  readonly windowsUnpriced: number;
  readonly windowsAfterClose: number;
  /** Windows whose charge line an earlier run had written (a rerun, or windows read again). */
  readonly windowsAlreadyBilled: number;
  /** Reconciliation records this run set FINAL. */
  readonly recordsFinalized: number;
  readonly stoppedEarly: boolean;
}

/** Pushes every closed window not pushed yet (see the file header). */
export async function pushUsage(opts: PushOptions): Promise<PushSummary> {
  const tally: Record<WindowOutcome, number> = { BILLED: 0, UNPRICED: 0, NOT_BILLED_AFTER_CLOSE: 0, ALREADY_PUSHED: 0 };
  const customers = new Map<string, Promise<CustomerState>>();
  const customerOf = (tenantId: string) => {
    if (!customers.has(tenantId)) customers.set(tenantId, readCustomer(opts.billingTable, tenantId));
    return customers.get(tenantId)!;
  };
  const pricing = opts.pricing ?? new PlanPricing(opts.prices);
  const positions = new Positions(opts.billingTable);
  const stored = await readCursor(opts.billingTable);
  let cursor = stored.cursor;
  let openPeriodsFrom = stored.openPeriodsFrom;
  let recordsFinalized = 0;
  let pages = 0;
  let stoppedEarly = false;
  for (;;) {
    if (!opts.hasTimeLeft()) {
      stoppedEarly = true;
      break;
    }
    const page = await opts.windows.readClosedWindows({ cursor, since: cursor ? undefined : opts.firstRunSince, limit: opts.pageSize ?? 100 });
    pages++;
    for (const window of page.windows) {
      tally[await pushWindow(opts, pricing, positions, window, await customerOf(window.tenantId))]++;
    }
    if (page.windows.length > 0) {
      // Every window that starts before the page's last one has been handled: the periods that ended before it are complete.
      const reached = billingPeriodOf(page.windows[page.windows.length - 1].windowStart);
      let period = openPeriodsFrom ?? billingPeriodOf(page.windows[0].windowStart);
      for (; period < reached; period = nextBillingPeriod(period)) {
        const ending = period;
        const minimumOf = (tenantId: string, metric: string) => pricing.minimumOf(tenantId, metric, ending);
        recordsFinalized += await finalizePeriod(opts.billingTable, period, opts.now, minimumOf);
      }
      openPeriodsFrom = period;
    }
    if (page.cursor === cursor) break; // caught up: nothing closed after the cursor yet
    await saveCursor(opts.billingTable, page.cursor, openPeriodsFrom, opts.now);
    cursor = page.cursor;
  }
  return {
    pages,
    windowsBilled: tally.BILLED,
    windowsUnpriced: tally.UNPRICED,
    windowsAfterClose: tally.NOT_BILLED_AFTER_CLOSE,
    windowsAlreadyBilled: tally.ALREADY_PUSHED,
    recordsFinalized,
    stoppedEarly,
  };
}

/** Steps 2 to 4 for one window. */
async function pushWindow(
  opts: PushOptions, pricing: Pricing, positions: Positions, window: ClosedWindow, customer: CustomerState,
): Promise<WindowOutcome> {
  const resolved = await pricing.priceOf(window.tenantId, window.metric, window.windowEnd);
  const disposition = dispositionOf(window, customer, resolved.price);
  const billed = disposition === DISPOSITION.BILLED ? resolved : undefined;
  const period = billingPeriodOf(window.windowStart);
  const positional = billed?.price !== undefined && dependsOnPosition(billed.price);
  for (let attempt = 1; ; attempt++) {
    const before = positional ? await positions.get(period, window.tenantId, window.metric) : undefined;
    const line = chargeLineOf(window, customer, billed, disposition, opts.now, before);
    const written = await writeChargeLine(opts.billingTable, line);
    if (written === 'WRITTEN') {
      if (disposition === DISPOSITION.BILLED) positions.advance(period, window.tenantId, window.metric, line.quantity);
      return disposition;
    }
    if (written === 'EXISTS') return 'ALREADY_PUSHED';
    // Another run billed units of this period meanwhile: price the window again at its new place.
    positions.forget(period, window.tenantId, window.metric);
    if (attempt >= 5) {
      throw new Error(`Tenant ${window.tenantId}, ${window.metric}: the units billed in ${period} kept changing under concurrent pushes; the next run retries`);
    }
  }
}

/**
 * The units of each tenant's metric billed so far in each period (the
 * reconciliation record's `billed`), read once per run and kept up to date by
 * the run's own lines.
 */
class Positions {
  private readonly known = new Map<string, string>();

  constructor(private readonly table: string) {}

  public async get(period: string, tenantId: string, metric: string): Promise<string> {
    const key = JSON.stringify([period, tenantId, metric]);
    const cached = this.known.get(key);
    if (cached !== undefined) return cached;
    const { Item } = await documentClient().send(new GetCommand({
      TableName: this.table, Key: reconciliationKey(period, tenantId, metric), ConsistentRead: true, ProjectionExpression: 'billed',
    }));
    const billed = Item?.billed === undefined ? '0' : parseDecimal(String(Item.billed), { allowNegative: true });
    this.known.set(key, billed);
    return billed;
  }

  public advance(period: string, tenantId: string, metric: string, quantity: string): void {
    const key = JSON.stringify([period, tenantId, metric]);
    const known = this.known.get(key);
    if (known !== undefined) this.known.set(key, addDecimals(known, quantity));
  }

  public forget(period: string, tenantId: string, metric: string): void {
    this.known.delete(JSON.stringify([period, tenantId, metric]));
  }
}

/**
 * The spans in which the customer was closed, as `[from, until)` in epoch ms
 * (`until` infinite while it is closed now), in order, with touching or
 * overlapping spans merged (a reopening and a closing at the same instant
 * leave no open time between them).
 */
export function closedSpansOf(customer: CustomerState): Array<[number, number]> {
  const spans: Array<[number, number]> = (customer.closedPeriods ?? []).map((p) => [Date.parse(p.from), Date.parse(p.until)]);
  if (customer.status === STATUS.CLOSED && customer.closedAt !== undefined) spans.push([Date.parse(customer.closedAt), Infinity]);
  const merged: Array<[number, number]> = [];
  for (const [from, until] of spans.filter(([f, u]) => f < u).sort(([a], [b]) => a - b)) {
    const last = merged[merged.length - 1];
    if (last && from <= last[1]) last[1] = Math.max(last[1], until);
    else merged.push([from, until]);
  }
  return merged;
}

/**
 * Whether the customer was closed for the whole of `[windowStart, windowEnd)`:
 * the window overlaps no time in which the customer was open. A window that
 * overlaps an open time (it holds the offboarding, or the re-onboarding, or both)
 * is not: it is billed whole, since a window is priced as its sum.
 */
export function wasClosedThroughout(customer: CustomerState, windowStart: string, windowEnd: string): boolean {
  const start = Date.parse(windowStart);
  const end = Date.parse(windowEnd);
  return closedSpansOf(customer).some(([from, until]) => from <= start && end <= until);
}

/** Step 2. */
export function dispositionOf(window: ClosedWindow, customer: CustomerState, price: UnitPrice | PriceDefinition | undefined): Disposition {
  if (wasClosedThroughout(customer, window.windowStart, window.windowEnd)) return DISPOSITION.NOT_BILLED_AFTER_CLOSE;
  return price ? DISPOSITION.BILLED : DISPOSITION.UNPRICED;
}

/** A charge line, ready to write. */
interface ChargeLine {
  readonly item: Record<string, unknown>;
  readonly disposition: Disposition;
  readonly metric: string;
  readonly quantity: string;
  readonly amount: string;
  readonly currency: string;
  readonly tenantId: string;
  readonly period: string;
  readonly pushedAt: string;
  /** For a price that depends on it: the units of the period billed before this window. */
  readonly before?: string;
}

/**
 * Step 3: `billed` is given for a billed window only; the amount is exact.
 * `before`: the units of the tenant's metric billed before it in the period, for a price that depends on them.
 */
function chargeLineOf(
  window: ClosedWindow, customer: CustomerState, billed: ResolvedPrice | undefined, disposition: Disposition, now: Date, before?: string,
): ChargeLine {
  const quantity = parseDecimal(window.sum, { allowNegative: true });
  const price = billed?.price;
  const amount = price ? windowAmount(price, before ?? '0', quantity) : '0';
  const currency = price?.currency ?? 'NONE';
  const period = billingPeriodOf(window.windowStart);
  const pushedAt = now.toISOString();
  return {
    disposition,
    metric: window.metric,
    quantity,
    amount,
    currency,
    period,
    pushedAt,
    tenantId: window.tenantId,
    before,
    item: {
      ...chargeLineKey(window.tenantId, window.windowStart, window.granularity, window.metric),
      kind: 'CHARGE',
      tenantId: window.tenantId,
      customerId: customer.customerId,
      period,
      metric: window.metric,
      granularity: window.granularity,
      windowStart: window.windowStart,
      windowEnd: window.windowEnd,
      quantity: NumberValue.from(quantity),
      recordCount: window.count,
      unitPrice: price?.unitPrice,
      plan: billed?.plan,
      // A free quantity or tiers: the window's place in the period, so that its amount can be recomputed.
      ...(before !== undefined ? { unitsBefore: NumberValue.from(before), tiers: price?.tiers, freeQuantity: price?.freeQuantity } : {}),
      currency,
      amount: NumberValue.from(amount),
      disposition,
      windowId: window.windowId,
      pushedAt,
    },
  };
}

/**
 * Step 4: the line (unless it exists), its quantity on the reconciliation
 * record and, when billed, its amount on the period total, in one transaction.
 * `EXISTS` when the line was already there, `MOVED` when the units billed
 * before it changed (then nothing is written). A transaction cancelled by a
 * concurrent one on the same record or total is retried.
 */
async function writeChargeLine(table: string, line: ChargeLine): Promise<'WRITTEN' | 'EXISTS' | 'MOVED'> {
  const items: NonNullable<ConstructorParameters<typeof TransactWriteCommand>[0]['TransactItems']> = [{
    Put: {
      TableName: table,
      Item: line.item,
      ConditionExpression: 'attribute_not_exists(#pk)',
      ExpressionAttributeNames: { '#pk': BILLING_TABLE.partitionKey },
    },
  }, {
    Update: reconciliationUpdate(table, {
      tenantId: line.tenantId,
      metric: line.metric,
      period: line.period,
      quantity: line.quantity,
      disposition: line.disposition,
      now: line.pushedAt,
      amount: line.disposition === DISPOSITION.BILLED ? line.amount : undefined,
      expectBilled: line.before,
    }),
  }];
  if (line.disposition === DISPOSITION.BILLED) {
    items.push({
      Update: {
        TableName: table,
        Key: periodTotalKey(line.tenantId, line.period, line.currency),
        UpdateExpression: 'ADD totalAmount :amount, lineCount :one SET tenantId = :t, period = :p, currency = :c, kind = :k, updatedAt = :now',
        ExpressionAttributeValues: {
          ':amount': NumberValue.from(line.amount), ':one': 1, ':t': line.tenantId, ':p': line.period, ':c': line.currency, ':k': 'PERIOD_TOTAL', ':now': line.pushedAt,
        },
      },
    });
  }
  try {
    await withRetry(() => documentClient().send(new TransactWriteCommand({ TransactItems: items })), {
      attempts: 6,
      baseDelayMs: 50,
      retryable: (error) => cancellationCodes(error)?.includes('TransactionConflict') ?? false,
    });
    return 'WRITTEN';
  } catch (error) {
    const codes = cancellationCodes(error);
    if (codes?.[0] === 'ConditionalCheckFailed') return 'EXISTS';
    if (codes?.[1] === 'ConditionalCheckFailed') return 'MOVED';
    throw error;
  }
}

/** Step 1: the customer's state as the lifecycle handlers keep it (an unknown tenant is an active one without a customer id). */
async function readCustomer(table: string, tenantId: string): Promise<CustomerState> {
  const { Item } = await documentClient().send(new GetCommand({ TableName: table, Key: customerKey(tenantId), ConsistentRead: true }));
  return (Item ?? {}) as CustomerState;
}

/** The cursor item: where the usage read contract continues, and the earliest period whose records may still be OPEN. */
async function readCursor(table: string): Promise<{ readonly cursor?: string; readonly openPeriodsFrom?: string }> {
  const { Item } = await documentClient().send(new GetCommand({ TableName: table, Key: PUSH_CURSOR_KEY, ConsistentRead: true }));
  return {
    cursor: typeof Item?.cursor === 'string' ? Item.cursor : undefined,
    // A period as `YYYY-MM` only (anything else would never compare past the periods the run reaches).
    openPeriodsFrom: typeof Item?.openPeriodsFrom === 'string' && /^\d{4}-\d{2}$/.test(Item.openPeriodsFrom) ? Item.openPeriodsFrom : undefined,
  };
}

async function saveCursor(table: string, cursor: string, openPeriodsFrom: string | undefined, now: Date): Promise<void> {
  await documentClient().send(new PutCommand({
    TableName: table,
    Item: { ...PUSH_CURSOR_KEY, cursor, openPeriodsFrom, updatedAt: now.toISOString() },
  }));
}
