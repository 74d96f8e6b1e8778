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
 * 3. `chargeLineOf`: prices it exactly;
 * 4. `writeChargeLine`: one transaction puts the charge line (on condition that
 *    it does not exist: the line, keyed by the window, is its pushed marker),
 *    adds the window to its reconciliation record and, when billed, adds the
 *    amount to the customer's period total.
 *
 * After each page, the reconciliation records of the periods that ended before
 * the page's last window started are set FINAL (`finalizePeriod`), then the
 * cursor is stored. A rerun after a crash at any point reads again from the
 * last stored cursor and skips the lines already written: no window is billed
 * or counted twice, or dropped.
 */
import { NumberValue, PutCommand, GetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { ClosedWindow, ClosedWindowSource } from './closed-windows';
import { finalizePeriod, reconciliationUpdate } from './reconciliation';
import { documentClient } from '../../../shared.lambda/aws-clients';
import { multiplyDecimals, parseDecimal } from '../../../shared.lambda/decimal';
import { cancellationCodes } from '../../../shared.lambda/dynamodb';
import { withRetry } from '../../../shared.lambda/retry';
import {
  BILLING_TABLE, billingPeriodOf, chargeLineKey, customerKey, CustomerState, DISPOSITION, Disposition,
  nextBillingPeriod, periodTotalKey, PUSH_CURSOR_KEY, STATUS, UnitPrice,
} from '../contract';

/** What one push run needs. */
export interface PushOptions {
  readonly billingTable: string;
  readonly windows: ClosedWindowSource;
  readonly prices: ReadonlyMap<string, UnitPrice>;
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
      tally[await pushWindow(opts, window, await customerOf(window.tenantId))]++;
    }
    if (page.windows.length > 0) {
      // Every window that starts before the page's last one has been handled: the periods that ended before it are complete.
      const reached = billingPeriodOf(page.windows[page.windows.length - 1].windowStart);
      let period = openPeriodsFrom ?? billingPeriodOf(page.windows[0].windowStart);
      for (; period < reached; period = nextBillingPeriod(period)) recordsFinalized += await finalizePeriod(opts.billingTable, period, opts.now);
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
async function pushWindow(opts: PushOptions, window: ClosedWindow, customer: CustomerState): Promise<WindowOutcome> {
  const price = opts.prices.get(window.metric);
  const disposition = dispositionOf(window, customer, price);
  const line = chargeLineOf(window, customer, disposition === DISPOSITION.BILLED ? price : undefined, disposition, opts.now);
  const written = await writeChargeLine(opts.billingTable, line);
  return written ? disposition : 'ALREADY_PUSHED';
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
export function dispositionOf(window: ClosedWindow, customer: CustomerState, price: UnitPrice | undefined): Disposition {
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
}

/** Step 3: `price` is given for a billed window only; the amount is exact. */
function chargeLineOf(window: ClosedWindow, customer: CustomerState, price: UnitPrice | undefined, disposition: Disposition, now: Date): ChargeLine {
  const quantity = parseDecimal(window.sum, { allowNegative: true });
  const amount = price ? multiplyDecimals(quantity, price.unitPrice) : '0';
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
 * record and, when billed, its amount on the period total, in one transaction;
 * false when the line was already there (then nothing is written). A
 * transaction cancelled by a concurrent one on the same record or total is retried.
 */
async function writeChargeLine(table: string, line: ChargeLine): Promise<boolean> {
  const items: NonNullable<ConstructorParameters<typeof TransactWriteCommand>[0]['TransactItems']> = [{
    Put: {
      TableName: table,
      Item: line.item,
      ConditionExpression: 'attribute_not_exists(#pk)',
      ExpressionAttributeNames: { '#pk': BILLING_TABLE.partitionKey },
    },
  }, {
    Update: reconciliationUpdate(table, {
      tenantId: line.tenantId, metric: line.metric, period: line.period, quantity: line.quantity, disposition: line.disposition, now: line.pushedAt,
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
    return true;
  } catch (error) {
    if (cancellationCodes(error)?.[0] === 'ConditionalCheckFailed') return false;
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
