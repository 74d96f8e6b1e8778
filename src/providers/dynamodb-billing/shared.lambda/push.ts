import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, NumberValue, PutCommand, QueryCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { decimalOf, isDecimal, multiplyDecimal } from './decimal';
import { billingPeriodOf, chargeSk, CUSTOMER_SK, customerPk, periodSk, STATUS, WATERMARK_KEY } from './layout';
import { AGGREGATE_LAYOUT, closeBucketOf } from '../../../ingestor/layout';

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
  readonly aggregateTable: string;
  readonly billingTable: string;
  readonly prices: PriceEntry[];
  /** Where the first run starts when there is no watermark yet. */
  readonly initialLookbackSeconds: number;
  /** Windows are billed only once they have been closed this long (index propagation margin). */
  readonly settleSeconds: number;
  readonly nowSeconds: number;
  /** Called before each bucket; false stops the run early (the watermark keeps the progress). */
  readonly hasTimeLeft?: () => boolean;
}

/** What a push run did. */
export interface PushSummary {
  readonly bucketsScanned: number;
  readonly bucketsCompleted: number;
  readonly windowsBilled: number;
  readonly windowsAlreadyBilled: number;
  readonly windowsUnpriced: number;
  readonly windowsAfterClose: number;
  /** The first close bucket the next run reads (`CLOSE#<YYYY-MM-DDTHH>`). */
  readonly nextBucket: string;
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

const HOUR = 3600;

function numberText(v: unknown): string {
  if (v instanceof NumberValue) return v.value;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && 'value' in v) return String((v as { value: unknown }).value);
  throw new Error(`Not a number: ${JSON.stringify(v)}`);
}

function hourOfBucket(bucket: string): number {
  return Date.parse(`${bucket.slice('CLOSE#'.length)}:00:00Z`) / 1000;
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
 * Pushes closed usage windows into charge lines. For each window closed by
 * `now - settle`, one transaction puts its charge line (condition: not there
 * yet: the line doubles as the window's pushed marker) and adds its amount to
 * the customer's period total. A rerun after a crash at any point skips the
 * lines already written and writes the others: no window is billed twice or
 * dropped. The watermark (first close bucket still to read) advances only after
 * a bucket's hour has fully passed and every window in it has a line.
 */
export async function pushUsage(opts: PushOptions): Promise<PushSummary> {
  const prices = new Map(opts.prices.map((p) => [p.metric, p]));
  const cutoff = opts.nowSeconds - opts.settleSeconds;
  const upperSortKey = `${String(cutoff).padStart(12, '0')}~`;
  const customers = new Map<string, { customerId?: string; closedAt?: string }>();

  const wm = await opts.client.send(new GetCommand({ TableName: opts.billingTable, Key: WATERMARK_KEY, ConsistentRead: true }));
  const startHour = wm.Item?.nextBucket
    ? hourOfBucket(String(wm.Item.nextBucket))
    : Math.floor((cutoff - opts.initialLookbackSeconds) / HOUR) * HOUR;
  const lastHour = Math.floor(cutoff / HOUR) * HOUR;

  let bucketsScanned = 0;
  let bucketsCompleted = 0;
  let windowsBilled = 0;
  let windowsAlreadyBilled = 0;
  let windowsUnpriced = 0;
  let windowsAfterClose = 0;
  let nextHour = startHour;
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

  for (let hour = startHour; hour <= lastHour; hour += HOUR) {
    if (opts.hasTimeLeft && !opts.hasTimeLeft()) {
      stoppedEarly = true;
      break;
    }
    const bucket = closeBucketOf(hour);
    bucketsScanned++;
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await opts.client.send(new QueryCommand({
        TableName: opts.aggregateTable,
        IndexName: AGGREGATE_LAYOUT.closeIndexName,
        KeyConditionExpression: '#b = :b AND #s <= :upper',
        ExpressionAttributeNames: { '#b': AGGREGATE_LAYOUT.closeIndexPartitionKey, '#s': AGGREGATE_LAYOUT.closeIndexSortKey },
        ExpressionAttributeValues: { ':b': bucket, ':upper': upperSortKey },
        ExclusiveStartKey: startKey,
      }));
      for (const indexed of page.Items ?? []) {
        // Read the window itself with a strongly consistent read: the index is eventually consistent.
        const got = await opts.client.send(new GetCommand({
          TableName: opts.aggregateTable,
          Key: {
            [AGGREGATE_LAYOUT.partitionKey]: indexed[AGGREGATE_LAYOUT.partitionKey],
            [AGGREGATE_LAYOUT.sortKey]: indexed[AGGREGATE_LAYOUT.sortKey],
          },
          ConsistentRead: true,
        }));
        const w = got.Item;
        if (!w) throw new Error(`Aggregate ${String(indexed.pk)} / ${String(indexed.sk)} is in the index but not in the table`);
        const tenantId = String(w.tenantId);
        const metric = String(w.metric);
        const granularity = String(w.granularity);
        const windowStart = String(w.windowStart);
        const quantity = decimalOf(numberText(w.sum));
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
          windowEnd: String(w.windowEnd),
          quantity: NumberValue.from(quantity),
          recordCount: NumberValue.from(numberText(w.count ?? 0)),
          unitPrice: price?.unitPrice,
          currency,
          amount: NumberValue.from(amount),
          disposition,
          source: { pk: String(w.pk), sk: String(w.sk) },
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
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);

    if (hour + HOUR > cutoff) break; // the current hour: more windows may still close in it
    nextHour = hour + HOUR;
    try {
      await opts.client.send(new PutCommand({
        TableName: opts.billingTable,
        Item: { ...WATERMARK_KEY, nextBucket: closeBucketOf(nextHour), nextHour, updatedAt: new Date(opts.nowSeconds * 1000).toISOString() },
        // A concurrent run may be ahead: never move the watermark back.
        ConditionExpression: 'attribute_not_exists(pk) OR nextHour < :h',
        ExpressionAttributeValues: { ':h': nextHour },
      }));
    } catch (error) {
      if ((error as { name?: string }).name !== 'ConditionalCheckFailedException') throw error;
    }
    bucketsCompleted++;
  }

  return {
    bucketsScanned,
    bucketsCompleted,
    windowsBilled,
    windowsAlreadyBilled,
    windowsUnpriced,
    windowsAfterClose,
    nextBucket: closeBucketOf(nextHour),
    stoppedEarly,
  };
}
