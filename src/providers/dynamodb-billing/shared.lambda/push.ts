import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, NumberValue, PutCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { decimalOf, isDecimal, multiplyDecimal } from './decimal';
import { billingPeriodOf, chargeSk, CUSTOMER_SK, customerPk, periodSk, STATUS, WATERMARK_KEY } from './layout';
import { ClosedWindow, UsageReader } from '../../../ingestor/shared.lambda/usage-reader';

/** A unit price as the construct passes it to the function (environment `UNIT_PRICES`, JSON array). */
export interface PriceEntry {
  readonly metric: string;
  /** Price of one unit of the metric, a decimal string (exact). */
  readonly unitPrice: string;
  /** ISO 4217 code. */
  readonly currency: string;
}

/** What a window's charge line says about it. */
export type Disposition = 'BILLED' | 'UNPRICED' | 'NOT_BILLED_AFTER_CLOSE';

/** Configuration of one push run. */
export interface PushOptions {
  readonly client: DynamoDBDocumentClient;
  /** The usage read contract of the ingestor (closed windows). */
  readonly reader: UsageReader;
  readonly billingTable: string;
  readonly prices: PriceEntry[];
  /** Where the first run starts when there is no watermark yet. */
  readonly initialLookbackSeconds: number;
  readonly nowSeconds: number;
  /** Called before each page of closed windows; false stops the run early (the watermark keeps the progress). */
  readonly hasTimeLeft?: () => boolean;
}

/** What a push run did. */
export interface PushSummary {
  /** Pages of closed windows read. */
  readonly pagesRead: number;
  readonly windowsBilled: number;
  readonly windowsAlreadyBilled: number;
  readonly windowsUnpriced: number;
  readonly windowsAfterClose: number;
  /** The usage reader's cursor the next run continues from. */
  readonly cursor: string;
  readonly stoppedEarly: boolean;
}

/** A document client that returns numbers as exact strings (`NumberValue`). */
export function exactClient(client: DynamoDBClient = new DynamoDBClient({})): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true },
    unmarshallOptions: { wrapNumbers: true },
  });
}

/** Parses and checks the `UNIT_PRICES` environment value. */
export function parsePrices(json: string | undefined): PriceEntry[] {
  if (!json) return [];
  const parsed = JSON.parse(json) as PriceEntry[];
  if (!Array.isArray(parsed)) throw new Error('UNIT_PRICES must be a JSON array');
  for (const p of parsed) {
    if (typeof p.metric !== 'string' || typeof p.unitPrice !== 'string' || !isDecimal(p.unitPrice) || typeof p.currency !== 'string') {
      throw new Error(`UNIT_PRICES has an invalid entry for metric '${String(p.metric)}'`);
    }
  }
  return parsed;
}

function isTransactionConditionFailure(error: unknown): boolean {
  const e = error as { name?: string; message?: string; CancellationReasons?: { Code?: string }[] };
  if (e?.name !== 'TransactionCanceledException') return false;
  if (e.CancellationReasons?.length) return e.CancellationReasons[0]?.Code === 'ConditionalCheckFailed';
  return /ConditionalCheckFailed/.test(e.message ?? '');
}

type TransactItems = NonNullable<ConstructorParameters<typeof TransactWriteCommand>[0]['TransactItems']>;

function isTransactionConflict(error: unknown): boolean {
  const e = error as { name?: string; CancellationReasons?: { Code?: string }[] };
  return e?.name === 'TransactionCanceledException' && (e.CancellationReasons ?? []).some((r) => r.Code === 'TransactionConflict');
}

/**
 * One transaction; retried (with jitter) when DynamoDB cancels it because another
 * transaction (a concurrent push) touched the same period total at that moment.
 */
async function transactWithConflictRetry(client: DynamoDBDocumentClient, items: TransactItems): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await client.send(new TransactWriteCommand({ TransactItems: items }));
      return;
    } catch (error) {
      if (!isTransactionConflict(error) || attempt >= 6) throw error;
      await new Promise((r) => setTimeout(r, Math.random() * 50 * 2 ** attempt));
    }
  }
}

/**
 * Pushes closed usage windows into charge lines. The ingestor's usage reader
 * returns each closed window (final, never changed) after the stored cursor;
 * for each, one transaction puts its charge line (condition: not there yet:
 * the line doubles as the window's pushed marker) and adds its amount to the
 * customer's period total. A rerun after a crash at any point skips the lines
 * already written and writes the others: no window is billed twice or dropped.
 * The watermark (the reader's cursor) advances after each page is handled.
 */
export async function pushUsage(opts: PushOptions): Promise<PushSummary> {
  const prices = new Map(opts.prices.map((p) => [p.metric, p]));
  const customers = new Map<string, { customerId?: string; closedAt?: string }>();

  const wm = await opts.client.send(new GetCommand({ TableName: opts.billingTable, Key: WATERMARK_KEY, ConsistentRead: true }));
  let cursor = typeof wm.Item?.cursor === 'string' ? wm.Item.cursor : undefined;
  const since = new Date((opts.nowSeconds - opts.initialLookbackSeconds) * 1000).toISOString();

  let pagesRead = 0;
  let windowsBilled = 0;
  let windowsAlreadyBilled = 0;
  let windowsUnpriced = 0;
  let windowsAfterClose = 0;
  let stoppedEarly = false;

  const customerOf = async (tenantId: string) => {
    let c = customers.get(tenantId);
    if (!c) {
      const got = await opts.client.send(new GetCommand({
        TableName: opts.billingTable,
        Key: { pk: customerPk(tenantId), sk: CUSTOMER_SK },
        ConsistentRead: true,
      }));
      c = {
        customerId: got.Item?.customerId as string | undefined,
        closedAt: got.Item?.status === STATUS.CLOSED ? String(got.Item.closedAt) : undefined,
      };
      customers.set(tenantId, c);
    }
    return c;
  };

  const pushWindow = async (w: ClosedWindow) => {
    const { tenantId, metric, granularity, windowStart } = w;
    const quantity = decimalOf(w.sum);
    const customer = await customerOf(tenantId);
    const price = prices.get(metric);
    let disposition: Disposition = 'BILLED';
    if (customer.closedAt !== undefined && Date.parse(windowStart) >= Date.parse(customer.closedAt)) disposition = 'NOT_BILLED_AFTER_CLOSE';
    else if (!price) disposition = 'UNPRICED';
    const amount = disposition === 'BILLED' ? multiplyDecimal(quantity, price!.unitPrice) : '0';
    const currency = price?.currency ?? 'NONE';
    const period = billingPeriodOf(windowStart);
    const pushedAt = new Date(opts.nowSeconds * 1000).toISOString();
    const line = {
      pk: customerPk(tenantId),
      sk: chargeSk(windowStart, granularity, metric),
      kind: 'CHARGE',
      tenantId,
      customerId: customer.customerId,
      period,
      metric,
      granularity,
      windowStart,
      windowEnd: w.windowEnd,
      quantity: NumberValue.from(quantity),
      recordCount: NumberValue.from(String(w.count)),
      unitPrice: price?.unitPrice,
      currency,
      amount: NumberValue.from(amount),
      disposition,
      windowId: w.windowId,
      pushedAt,
    };
    const items: TransactItems = [
      { Put: { TableName: opts.billingTable, Item: line, ConditionExpression: 'attribute_not_exists(pk)' } },
    ];
    if (disposition === 'BILLED') {
      items.push({
        Update: {
          TableName: opts.billingTable,
          Key: { pk: customerPk(tenantId), sk: periodSk(period, currency) },
          UpdateExpression: 'ADD totalAmount :amount, lineCount :one SET tenantId = :t, period = :p, currency = :c, kind = :k, updatedAt = :now',
          ExpressionAttributeValues: {
            ':amount': NumberValue.from(amount),
            ':one': 1,
            ':t': tenantId,
            ':p': period,
            ':c': currency,
            ':k': 'PERIOD_TOTAL',
            ':now': pushedAt,
          },
        },
      });
    }
    try {
      await transactWithConflictRetry(opts.client, items);
      if (disposition === 'BILLED') windowsBilled++;
      else if (disposition === 'UNPRICED') windowsUnpriced++;
      else windowsAfterClose++;
    } catch (error) {
      if (!isTransactionConditionFailure(error)) throw error;
      windowsAlreadyBilled++;
    }
  };

  for (;;) {
    if (opts.hasTimeLeft && !opts.hasTimeLeft()) {
      stoppedEarly = true;
      break;
    }
    const page = await opts.reader.readClosedWindows({ cursor, since, limit: 500 });
    pagesRead++;
    for (const w of page.windows) await pushWindow(w);
    if (page.cursor !== cursor) {
      cursor = page.cursor;
      await opts.client.send(new PutCommand({
        TableName: opts.billingTable,
        Item: { ...WATERMARK_KEY, cursor, updatedAt: new Date(opts.nowSeconds * 1000).toISOString() },
      }));
    }
    if (page.windows.length === 0) break;
  }

  return {
    pagesRead,
    windowsBilled,
    windowsAlreadyBilled,
    windowsUnpriced,
    windowsAfterClose,
    cursor: cursor ?? '',
    stoppedEarly,
  };
}
