/**
 * The reconciliation records' accounting (see `ReconciliationRecord` in contract.ts): every window
 * the push decides is added, in the same transaction as its marker, to the record of its tenant,
 * metric and billing period, so that a rerun never adds it twice and a crash never loses it.
 * DynamoDB numbers are exact decimals of up to 38 digits and `ADD` adds them exactly
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html#HowItWorks.DataTypes.Number),
 * so the sums stay exact.
 */
import { NumberValue } from '@aws-sdk/lib-dynamodb';
import { addDecimals } from '../../../shared.lambda/decimal';
import { USAGE_PUSH_TABLE_LAYOUT as L } from '../contract';
import type { TenantRecord } from './tenants';

/** The counters of a record that the push and the reconciler add to. */
export type AccountingField = 'metered' | 'billedHere' | 'carriedIn' | 'carriedOver' | 'rejected' | 'sent';

/** The key of a tenant's record of a metric and billing period. */
export function reconKey(tenantId: string, metric: string, periodStart: string) {
  return { [L.partitionKey]: `${L.reconciliationPrefix}${tenantId}`, [L.sortKey]: `${metric}#${periodStart}` };
}

/** What goes into one record. */
export interface Accounting {
  readonly tenantId: string;
  readonly metric: string;
  readonly periodStart: string;
  readonly add: Partial<Record<AccountingField, string>>;
  /** The Stripe meter, when the metric has one. */
  readonly eventName?: string;
  /** When a meter event was last sent into this period (the reconciler waits for Stripe's processing after it). */
  readonly sentAt?: string;
  /** The period's end, when known (ISO): kept from the first write that knows it. */
  readonly periodEnd?: string;
}

/** One `TransactWriteItems` update that applies `a`. */
export function accountingUpdate(table: string, a: Accounting) {
  const adds = Object.entries(a.add).filter(([, v]) => v !== undefined && v !== '0');
  const names: Record<string, string> = { '#status': 'status' };
  const values: Record<string, unknown> = { ':open': 'OPEN', ':t': a.tenantId, ':m': a.metric, ':p': a.periodStart };
  const sets = ['#status = if_not_exists(#status, :open)', 'tenantId = :t', 'metric = :m', 'periodStart = :p'];
  if (a.eventName) {
    sets.push('eventName = :e');
    values[':e'] = a.eventName;
  }
  if (a.sentAt) {
    sets.push('lastSentAt = :sentAt');
    values[':sentAt'] = a.sentAt;
  }
  if (a.periodEnd) {
    sets.push('periodEnd = if_not_exists(periodEnd, :end)');
    values[':end'] = a.periodEnd;
  }
  adds.forEach(([field, v], i) => {
    names[`#a${i}`] = field;
    values[`:a${i}`] = new NumberValue(v!);
  });
  return {
    Update: {
      TableName: table,
      Key: reconKey(a.tenantId, a.metric, a.periodStart),
      UpdateExpression: `SET ${sets.join(', ')}${adds.length ? ` ADD ${adds.map((_, i) => `#a${i} :a${i}`).join(', ')}` : ''}`,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    },
  };
}

/**
 * The billing period a window's usage belongs to, by its start and the tenant's periods as last
 * read (for windows that are not sent, whose placement was not computed): `earlier` when it is
 * before the periods the mapping knows.
 */
export function usagePeriodOf(windowStartIso: string, tenant: TenantRecord | undefined): string {
  const t = Date.parse(windowStartIso);
  if (!tenant?.subscriptionId || !tenant.periodStart) return `month:${windowStartIso.slice(0, 7)}`;
  if (t >= Date.parse(tenant.periodStart)) return tenant.periodStart;
  if (tenant.previousPeriodStart && t >= Date.parse(tenant.previousPeriodStart)) return tenant.previousPeriodStart;
  return 'earlier';
}

/** Accounting entries merged per record (one transaction may update an item once). */
export function mergeAccounting(entries: readonly Accounting[]): Accounting[] {
  const byRecord = new Map<string, Accounting>();
  for (const e of entries) {
    const key = `${e.tenantId}#${e.metric}#${e.periodStart}`;
    const seen = byRecord.get(key);
    if (!seen) {
      byRecord.set(key, e);
      continue;
    }
    const add = { ...seen.add };
    for (const [f, v] of Object.entries(e.add) as [keyof Accounting['add'], string][]) add[f] = add[f] === undefined ? v : addDecimals(add[f]!, v);
    byRecord.set(key, { ...seen, add, sentAt: seen.sentAt ?? e.sentAt, periodEnd: seen.periodEnd ?? e.periodEnd });
  }
  return [...byRecord.values()];
}
