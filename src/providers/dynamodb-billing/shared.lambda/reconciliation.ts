/**
 * The reconciliation records of the usage push (`ReconciliationRecord` in the
 * contract): one per tenant, metric and billing period.
 *
 * - `reconciliationUpdate`: the update that adds one window to its record. The
 *   push puts it in the transaction that writes the window's charge line, on
 *   condition that the line does not exist yet, so a window is counted exactly
 *   once: a rerun finds the line and the whole transaction is cancelled.
 * - `finalizePeriod`: sets a period's records `FINAL`, adding a minimum charge
 *   line (`CHARGE#<period>#MINIMUM#<metric>`) to a record whose `billedAmount`
 *   is below the minimum charge its tenant's plan has at the period's end, in
 *   the same transaction. The push calls it once it
 *   has handled a window that starts at or after the period's end: the ingestor
 *   closes windows in the order of their start and the usage read contract
 *   returns them in that order, so every window of the period has been handled
 *   (its charge line written, its quantity in the record) by then.
 */
import { NumberValue, QueryCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { writtenIf } from './conditional-write';
import type { MinimumCharge } from './plan-pricing';
import { documentClient } from '../../../shared.lambda/aws-clients';
import { compareDecimals, parseDecimal, subtractDecimals } from '../../../shared.lambda/decimal';
import { cancellationCodes } from '../../../shared.lambda/dynamodb';
import {
  BILLING_TABLE, CHARGE_SK_PREFIX, customerPk, DISPOSITION, Disposition, periodBoundsOf, periodTotalKey, RECONCILIATION_STATUS, reconciliationKey,
  reconciliationPk,
} from '../contract';

/** The window a record is updated with. */
export interface ReconciledWindow {
  readonly tenantId: string;
  readonly metric: string;
  /** `YYYY-MM`. */
  readonly period: string;
  /** Exact decimal string. */
  readonly quantity: string;
  readonly disposition: Disposition;
  /** ISO-8601. */
  readonly now: string;
  /** The amount billed for the window (added to `billedAmount`), for a billed window. */
  readonly amount?: string;
  /** Only if the record's `billed` is this (absent record: '0'): the units the window was priced after. */
  readonly expectBilled?: string;
}

/** The amounts a window adds to its record, by disposition (every other amount is created as 0 if absent). */
function amountsOf(disposition: Disposition): string[] {
  switch (disposition) {
    case DISPOSITION.BILLED: return ['metered', 'billed', 'countedByProvider'];
    case DISPOSITION.UNPRICED: return ['metered', 'rejected', 'unpriced'];
    case DISPOSITION.NOT_BILLED_AFTER_CLOSE: return ['metered', 'rejected', 'notBilledAfterClose'];
  }
}

const AMOUNTS = ['metered', 'billed', 'carriedOver', 'rejected', 'countedByProvider', 'unpriced', 'notBilledAfterClose'];

/** The `Update` of a TransactWriteItems that adds one window to its record (created `OPEN` by the first). */
export function reconciliationUpdate(table: string, w: ReconciledWindow) {
  const added = amountsOf(w.disposition);
  const zeroed = AMOUNTS.filter((a) => !added.includes(a));
  const names: Record<string, string> = { '#status': 'status', '#windows': 'windows', '#billedAmount': 'billedAmount' };
  for (const a of AMOUNTS) names[`#${a}`] = a;
  const set = { tenantId: w.tenantId, metric: w.metric, period: w.period, ...periodBoundsOf(w.period), kind: 'RECONCILIATION', updatedAt: w.now };
  for (const a of Object.keys(set)) names[`#${a}`] = a;
  const expect = w.expectBilled === undefined ? {} : {
    ConditionExpression: compareDecimals(w.expectBilled, '0') === 0 ? '(attribute_not_exists(#billed) OR #billed = :before)' : '#billed = :before',
  };
  return {
    TableName: table,
    Key: reconciliationKey(w.period, w.tenantId, w.metric),
    ...expect,
    UpdateExpression: `ADD ${added.map((a) => `#${a} :quantity`).join(', ')}, #windows :one, #billedAmount :amount`
      + ` SET #status = if_not_exists(#status, :open), ${zeroed.map((a) => `#${a} = if_not_exists(#${a}, :zero)`).join(', ')}, `
      + Object.keys(set).map((a) => `#${a} = :${a}`).join(', '),
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: {
      ':quantity': NumberValue.from(w.quantity),
      ':amount': NumberValue.from(w.amount ?? '0'),
      ...(w.expectBilled !== undefined ? { ':before': NumberValue.from(w.expectBilled) } : {}),
      ':one': 1,
      ':zero': 0,
      ':open': RECONCILIATION_STATUS.OPEN,
      ...Object.fromEntries(Object.entries(set).map(([a, v]) => [`:${a}`, v])),
    },
  };
}

/** The minimum charge of a tenant's metric for the period being finalized, if any. */
export type MinimumOf = (tenantId: string, metric: string) => Promise<MinimumCharge | undefined>;

/**
 * Sets every `OPEN` record of a period `FINAL` (idempotent), with a minimum
 * charge line where `minimumOf` gives a minimum above the record's
 * `billedAmount`; returns how many records it changed.
 */
export async function finalizePeriod(table: string, period: string, now: Date, minimumOf?: MinimumOf): Promise<number> {
  let finalized = 0;
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await documentClient().send(new QueryCommand({
      TableName: table,
      KeyConditionExpression: '#pk = :pk',
      FilterExpression: '#status = :open',
      ProjectionExpression: '#pk, #sk, tenantId, metric, billedAmount',
      ExpressionAttributeNames: { '#pk': BILLING_TABLE.partitionKey, '#sk': BILLING_TABLE.sortKey, '#status': 'status' },
      ExpressionAttributeValues: { ':pk': reconciliationPk(period), ':open': RECONCILIATION_STATUS.OPEN },
      ExclusiveStartKey: startKey,
      ConsistentRead: true,
    }));
    for (const record of page.Items ?? []) {
      const key = { [BILLING_TABLE.partitionKey]: record[BILLING_TABLE.partitionKey], [BILLING_TABLE.sortKey]: record[BILLING_TABLE.sortKey] };
      const minimum = minimumOf && record.tenantId !== undefined ? await minimumOf(String(record.tenantId), String(record.metric)) : undefined;
      const billedAmount = record.billedAmount === undefined ? '0' : parseDecimal(String(record.billedAmount), { allowNegative: true });
      if (minimum && compareDecimals(billedAmount, minimum.minimumCharge) < 0) {
        if (await finalizeWithMinimum(table, period, String(record.tenantId), String(record.metric), key, billedAmount, minimum, now)) finalized++;
        continue;
      }
      const changed = await writtenIf(() => documentClient().send(new UpdateCommand({
        TableName: table,
        Key: key,
        UpdateExpression: 'SET #status = :final, #finalizedAt = :now, #updatedAt = :now',
        ConditionExpression: '#status = :open',
        ExpressionAttributeNames: { '#status': 'status', '#finalizedAt': 'finalizedAt', '#updatedAt': 'updatedAt' },
        ExpressionAttributeValues: { ':final': RECONCILIATION_STATUS.FINAL, ':open': RECONCILIATION_STATUS.OPEN, ':now': now.toISOString() },
      })));
      if (changed) finalized++;
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return finalized;
}

/**
 * Sets a record FINAL and adds the minimum charge line (the minimum less what the
 * metric's lines of the period add up to) and its amount to the period total, in
 * one transaction on condition that the record is still OPEN; false when it was not.
 */
async function finalizeWithMinimum(
  table: string, period: string, tenantId: string, metric: string, key: Record<string, unknown>,
  billedAmount: string, minimum: MinimumCharge, now: Date,
): Promise<boolean> {
  const amount = subtractDecimals(minimum.minimumCharge, billedAmount);
  const at = now.toISOString();
  try {
    await documentClient().send(new TransactWriteCommand({
      TransactItems: [{
        Update: {
          TableName: table,
          Key: key,
          UpdateExpression: 'SET #status = :final, #finalizedAt = :now, #updatedAt = :now, #minimumCharge = :amount',
          ConditionExpression: '#status = :open',
          ExpressionAttributeNames: { '#status': 'status', '#finalizedAt': 'finalizedAt', '#updatedAt': 'updatedAt', '#minimumCharge': 'minimumCharge' },
          ExpressionAttributeValues: { ':final': RECONCILIATION_STATUS.FINAL, ':open': RECONCILIATION_STATUS.OPEN, ':now': at, ':amount': NumberValue.from(amount) },
        },
      }, {
        Put: {
          TableName: table,
          Item: {
            [BILLING_TABLE.partitionKey]: customerPk(tenantId),
            [BILLING_TABLE.sortKey]: `${CHARGE_SK_PREFIX}${period}#MINIMUM#${metric}`,
            kind: 'MINIMUM_CHARGE',
            tenantId,
            period,
            metric,
            plan: minimum.plan,
            minimumCharge: NumberValue.from(minimum.minimumCharge),
            chargedBefore: NumberValue.from(billedAmount),
            amount: NumberValue.from(amount),
            currency: minimum.currency,
            disposition: 'MINIMUM_CHARGE',
            pushedAt: at,
          },
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': BILLING_TABLE.partitionKey },
        },
      }, {
        Update: {
          TableName: table,
          Key: periodTotalKey(tenantId, period, minimum.currency),
          UpdateExpression: 'ADD totalAmount :amount, lineCount :one SET tenantId = :t, period = :p, currency = :c, kind = :k, updatedAt = :now',
          ExpressionAttributeValues: {
            ':amount': NumberValue.from(amount), ':one': 1, ':t': tenantId, ':p': period, ':c': minimum.currency, ':k': 'PERIOD_TOTAL', ':now': at,
          },
        },
      }],
    }));
    return true;
  } catch (error) {
    if (cancellationCodes(error)?.some((c) => c === 'ConditionalCheckFailed')) return false;
    throw error;
  }
}
