/**
 * The reconciliation records of the usage push (`ReconciliationRecord` in the
 * contract): one per tenant, metric and billing period.
 *
 * - `reconciliationUpdate`: the update that adds one window to its record. The
 *   push puts it in the transaction that writes the window's charge line, on
 *   condition that the line does not exist yet, so a window is counted exactly
 *   once: a rerun finds the line and the whole transaction is cancelled.
 * - `finalizePeriod`: sets a period's records `FINAL`. The push calls it once it
 *   has handled a window that starts at or after the period's end: the ingestor
 *   closes windows in the order of their start and the usage read contract
 *   returns them in that order, so every window of the period has been handled
 *   (its charge line written, its quantity in the record) by then.
 */
import { NumberValue, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { writtenIf } from './conditional-write';
import { documentClient } from '../../../shared.lambda/aws-clients';
import { BILLING_TABLE, DISPOSITION, Disposition, periodBoundsOf, RECONCILIATION_STATUS, reconciliationKey, reconciliationPk } from '../contract';

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
  const names: Record<string, string> = { '#status': 'status', '#windows': 'windows' };
  for (const a of AMOUNTS) names[`#${a}`] = a;
  const set = { tenantId: w.tenantId, metric: w.metric, period: w.period, ...periodBoundsOf(w.period), kind: 'RECONCILIATION', updatedAt: w.now };
  for (const a of Object.keys(set)) names[`#${a}`] = a;
  return {
    TableName: table,
    Key: reconciliationKey(w.period, w.tenantId, w.metric),
    UpdateExpression: `ADD ${added.map((a) => `#${a} :quantity`).join(', ')}, #windows :one`
      + ` SET #status = if_not_exists(#status, :open), ${zeroed.map((a) => `#${a} = if_not_exists(#${a}, :zero)`).join(', ')}, `
      + Object.keys(set).map((a) => `#${a} = :${a}`).join(', '),
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: {
      ':quantity': NumberValue.from(w.quantity),
      ':one': 1,
      ':zero': 0,
      ':open': RECONCILIATION_STATUS.OPEN,
      ...Object.fromEntries(Object.entries(set).map(([a, v]) => [`:${a}`, v])),
    },
  };
}

/** Sets every `OPEN` record of a period `FINAL` (idempotent); returns how many it changed. */
export async function finalizePeriod(table: string, period: string, now: Date): Promise<number> {
  let finalized = 0;
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await documentClient().send(new QueryCommand({
      TableName: table,
      KeyConditionExpression: '#pk = :pk',
      FilterExpression: '#status = :open',
      ProjectionExpression: '#pk, #sk',
      ExpressionAttributeNames: { '#pk': BILLING_TABLE.partitionKey, '#sk': BILLING_TABLE.sortKey, '#status': 'status' },
      ExpressionAttributeValues: { ':pk': reconciliationPk(period), ':open': RECONCILIATION_STATUS.OPEN },
      ExclusiveStartKey: startKey,
      ConsistentRead: true,
    }));
    for (const key of page.Items ?? []) {
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
