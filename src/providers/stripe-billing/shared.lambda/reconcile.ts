/**
 * The reconciler: compares, per tenant, meter and billing period, the units the push sent with what
 * Stripe counted, and repairs what it can.
 *
 * Why: meter events are processed asynchronously. "Stripe processes meter events asynchronously, so
 * aggregated usage in meter event summaries and on upcoming invoices might not immediately reflect
 * recently received meter events" (https://docs.stripe.com/billing/subscriptions/usage-based/recording-usage),
 * and an event Stripe cannot apply (a deleted customer, an inactive meter, an event name without a
 * meter) is answered 200 and reported later only as a meter error report event
 * (`v1.billing.meter.error_report_triggered`, `v1.billing.meter.no_meter_found`:
 * https://docs.stripe.com/api/v2/core/events/event-types), delivered to event destinations, not to
 * v1 webhook endpoints. Meter event summaries show what Stripe counted: "A billing meter event
 * summary represents an aggregated view of a customer's billing meter events within a specified
 * timeframe" (https://docs.stripe.com/api/billing/meter-event-summary). The reconciler reads them
 * instead of an event destination: it needs no Stripe-side setup (event destinations are a v2 API
 * that the library's tests cannot run against), it also catches what an error report would not say
 * (an event lost for any other reason), and it gives each period an exact record.
 *
 * Per run (hourly; one at a time, beside the push: it changes only markers the push has finished
 * with, and both only add to the records), for each tenant's OPEN reconciliation record with a meter:
 * 1. When the last send into the period is at least `RECONCILE_LAG_SECONDS` old and the record was
 *    not checked in the last 6 hours, or its invoice has been finalized: one meter event summary for
 *    the customer over the period gives `counted`.
 * 2. `counted < sent`: the tenant's windows of the period are read back with their markers and
 *    compared hour by hour with hourly summaries. A window Stripe did not count (`WindowsNotCounted`)
 *    is sent again once, with a new identifier (`<identifier>-r1`), into its period when that
 *    invoice is still open, else into the current period with an invoice item saying so
 *    (`WindowsResent`); if its meter is inactive or its customer is gone, or it was not counted
 *    after the resend either, it is `DROPPED` (`WindowsDropped`, alarmed; redrivable once fixed). While
 *    its meter is inactive it stays as it is (the record shows the difference) and is resent once the
 *    meter is active again.
 * 3. `counted > sent`: units Stripe counted beyond what was sent (`UnitsOverCounted`, alarmed).
 * 4. The record gets `counted`, `difference` and, once the period's invoice is finalized (its end
 *    plus the declared grace period) and nothing of the tenant is pending, `FINAL`.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { BatchGetCommand, GetCommand, NumberValue, paginateQuery, paginateScan, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { ClosedWindow } from '../../../ingestor/shared.lambda/usage-reader';
import { documentClient } from '../../../shared.lambda/aws-clients';
import { addDecimals, compareDecimals, subtractDecimals } from '../../../shared.lambda/decimal';
import { cancellationCodes } from '../../../shared.lambda/dynamodb';
import { numberEnv, requiredEnv } from '../../../shared.lambda/env';
import { logger } from '../../../shared.lambda/logger';
import { CUSTOMERS_TABLE_LAYOUT, MANAGED_BY, STRIPE_ENV, STRIPE_METADATA, STRIPE_METRICS, USAGE_PUSH_TABLE_LAYOUT as L } from '../contract';
import { Accounting, accountingUpdate, mergeAccounting, reconKey } from './accounting';
import { currentSubscriptionStatus, FINALIZATION_SAFETY_SECONDS, NOT_BILLING_STATUSES } from './billing-period';
import { carryNoteKey, resendIdentifier } from './keys';
import { metrics } from './metrics';
import { activeMeterIds, ClosedWindowSource, meterIdsOf, PushRun } from './push';
import { stripeCall } from './stripe-client';
import { TenantRecord } from './tenants';

/** How often an open record with nothing new sent is checked again. */
const RECHECK_MS = 6 * 3600 * 1000;
/** Most windows of one tenant read back when a period does not add up. */
const MAX_DRILL_WINDOWS = 20_000;

/** The reconciler's configuration. */
export interface ReconcileConfig {
  readonly table: string;
  readonly customersTable: string;
  readonly graceSeconds: number;
  readonly lagSeconds: number;
}

/** Reads the configuration from the environment the construct sets. */
export function reconcileConfigFromEnv(): ReconcileConfig {
  return {
    table: requiredEnv(STRIPE_ENV.USAGE_PUSH_TABLE_NAME),
    customersTable: requiredEnv(STRIPE_ENV.CUSTOMERS_TABLE_NAME),
    graceSeconds: numberEnv(STRIPE_ENV.INVOICE_GRACE_SECONDS, { min: 0, max: 72 * 3600, integer: true, fallback: 3600 }),
    lagSeconds: numberEnv(STRIPE_ENV.RECONCILE_LAG_SECONDS, { min: 0, max: 86_400, integer: true, fallback: 1800 }),
  };
}

/** What a run did. */
export interface ReconcileSummary {
  tenants: number;
  recordsChecked: number;
  recordsFinal: number;
  stripeRequests: number;
  windowsNotCounted: number;
  windowsResent: number;
  windowsDropped: number;
  unitsOverCounted: string;
}

/** A stored reconciliation record, as read. */
interface StoredRecord {
  readonly sk: string;
  readonly metric: string;
  readonly eventName?: string;
  readonly periodStart: string;
  readonly status: string;
  readonly sent: string;
  readonly lastSentAt?: string;
  readonly checkedAt?: string;
  readonly periodEnd?: string;
}

const doc = () => documentClient();
const num = (v: unknown) => (v === undefined ? '0' : String(v));
const minuteFloor = (ms: number) => Math.floor(ms / 60_000) * 60;

/** The end of a record's period (epoch seconds): as the push recorded it, or as the tenant's mapping knows it, or undefined. */
function periodEndOf(periodStart: string, t: TenantRecord, recorded?: string): number | undefined {
  if (recorded) return Date.parse(recorded) / 1000;
  if (periodStart.startsWith('month:')) {
    const [y, m] = periodStart.slice(6).split('-').map(Number);
    return Date.UTC(y, m, 1) / 1000;
  }
  if (periodStart === t.periodStart && t.periodEnd) return Date.parse(t.periodEnd) / 1000;
  if (periodStart === t.previousPeriodStart && t.periodStart) return Date.parse(t.periodStart) / 1000;
  return undefined;
}

function periodStartSeconds(periodStart: string): number {
  return periodStart.startsWith('month:') ? Date.parse(`${periodStart.slice(6)}-01T00:00:00Z`) / 1000 : Date.parse(periodStart) / 1000;
}

/** Runs the reconciler over every tenant (see the module comment). */
export async function reconcile(run: PushRun, config: ReconcileConfig, reader: ClosedWindowSource, nowMs: number): Promise<ReconcileSummary> {
  const summary: ReconcileSummary = {
    tenants: 0, recordsChecked: 0, recordsFinal: 0, stripeRequests: 0, windowsNotCounted: 0, windowsResent: 0, windowsDropped: 0, unitsOverCounted: '0',
  };
  for await (const page of paginateScan({ client: doc() }, {
    TableName: config.customersTable,
    FilterExpression: 'begins_with(#pk, :tenant)',
    ExpressionAttributeNames: { '#pk': CUSTOMERS_TABLE_LAYOUT.partitionKey },
    ExpressionAttributeValues: { ':tenant': CUSTOMERS_TABLE_LAYOUT.tenantPrefix },
  })) {
    for (const item of page.Items ?? []) {
      if (!run.hasTimeLeft()) return summary;
      const tenant = { ...(item as unknown as TenantRecord), generation: Number(String(item.generation)) };
      if (!tenant.customerId) continue;
      summary.tenants++;
      await reconcileTenant(run, config, reader, tenant, nowMs, summary);
    }
  }
  metrics.addMetric(STRIPE_METRICS.WINDOWS_NOT_COUNTED, MetricUnit.Count, summary.windowsNotCounted);
  metrics.addMetric(STRIPE_METRICS.WINDOWS_RESENT, MetricUnit.Count, summary.windowsResent);
  metrics.addMetric(STRIPE_METRICS.WINDOWS_DROPPED, MetricUnit.Count, summary.windowsDropped);
  metrics.addMetric(STRIPE_METRICS.UNITS_OVER_COUNTED, MetricUnit.Count, Number(summary.unitsOverCounted));
  return summary;
}

async function openRecords(config: ReconcileConfig, tenantId: string): Promise<StoredRecord[]> {
  const records: StoredRecord[] = [];
  for await (const page of paginateQuery({ client: doc() }, {
    TableName: config.table,
    KeyConditionExpression: '#pk = :pk',
    FilterExpression: '#status = :open',
    ExpressionAttributeNames: { '#pk': L.partitionKey, '#status': 'status' },
    ExpressionAttributeValues: { ':pk': `${L.reconciliationPrefix}${tenantId}`, ':open': 'OPEN' },
    ConsistentRead: true,
  })) {
    for (const i of page.Items ?? []) {
      records.push({
        sk: String(i[L.sortKey]),
        metric: String(i.metric),
        eventName: i.eventName as string | undefined,
        periodStart: String(i.periodStart),
        status: String(i.status),
        sent: num(i.sent),
        lastSentAt: i.lastSentAt as string | undefined,
        checkedAt: i.checkedAt as string | undefined,
        periodEnd: i.periodEnd as string | undefined,
      });
    }
  }
  return records;
}

async function hasPending(config: ReconcileConfig, tenantId: string): Promise<boolean> {
  for await (const page of paginateQuery({ client: doc() }, {
    TableName: config.table,
    KeyConditionExpression: '#pk = :p',
    FilterExpression: 'windowData.tenantId = :t',
    ExpressionAttributeNames: { '#pk': L.partitionKey },
    ExpressionAttributeValues: { ':p': L.pendingPartition, ':t': tenantId },
    ConsistentRead: true,
  })) if ((page.Items ?? []).length > 0) return true;
  return false;
}

async function countedBetween(meterId: string, customerId: string, start: number, end: number, summary: ReconcileSummary): Promise<number> {
  if (end <= start) return 0;
  summary.stripeRequests++;
  const page = await stripeCall((s) => s.billing.meters.listEventSummaries(meterId, { customer: customerId, start_time: start, end_time: end }));
  return page.data.reduce((sum, x) => sum + x.aggregated_value, 0);
}

async function reconcileTenant(
  run: PushRun, config: ReconcileConfig, reader: ClosedWindowSource, tenant: TenantRecord, nowMs: number, summary: ReconcileSummary,
) {
  const records = await openRecords(config, tenant.tenantId);
  if (records.length === 0) return;
  let pending: boolean | undefined;
  for (const record of records) {
    if (!record.eventName || record.periodStart === 'earlier') continue;
    const end = periodEndOf(record.periodStart, tenant, record.periodEnd);
    const finalDue = end !== undefined && nowMs / 1000 >= end + config.graceSeconds;
    const lastSent = record.lastSentAt ? Date.parse(record.lastSentAt) : undefined;
    const settled = lastSent === undefined || lastSent <= nowMs - config.lagSeconds * 1000;
    const checked = record.checkedAt ? Date.parse(record.checkedAt) : undefined;
    const stale = checked === undefined || nowMs - checked >= RECHECK_MS;
    if (!settled || !(stale || finalDue)) continue;

    // An inactive meter's summaries are read too (what it counted while it was active).
    const meterId = (await meterIdsOf(run)).get(record.eventName)?.id;
    const start = periodStartSeconds(record.periodStart);
    const stop = Math.min(end ?? Infinity, minuteFloor(nowMs));
    summary.recordsChecked++;
    let counted = meterId ? await countedBetween(meterId, tenant.customerId!, start, stop, summary) : 0;
    let open = 0;
    if (compareDecimals(String(counted), record.sent) < 0) {
      open = (await drillDown(run, config, reader, tenant, record, meterId, start, stop, nowMs, summary)).open;
      counted = meterId ? await countedBetween(meterId, tenant.customerId!, start, stop, summary) : 0;
    }
    const ended = endedByStripe(tenant, start, end);
    if (ended) {
      // Stripe ended the subscription (a customer deleted in Stripe, a subscription cancelled there or expired):
      // it invoices nothing more of this period, so what was counted in it is not billed. Reported, not lost.
      await notInvoiced(config, tenant, record, ended, nowMs);
      summary.recordsFinal++;
      continue;
    }
    const after = await doc().send(new GetCommand({
      TableName: config.table, Key: reconKey(tenant.tenantId, record.metric, record.periodStart), ConsistentRead: true,
    }));
    const sent = num(after.Item?.sent);
    const difference = subtractDecimals(String(counted), sent);
    if (compareDecimals(difference, '0') > 0) summary.unitsOverCounted = addDecimals(summary.unitsOverCounted, difference);
    pending ??= finalDue ? await hasPending(config, tenant.tenantId) : undefined;
    const final = finalDue && pending === false && settled && open === 0;
    if (final) summary.recordsFinal++;
    await doc().send(new UpdateCommand({
      TableName: config.table,
      Key: reconKey(tenant.tenantId, record.metric, record.periodStart),
      UpdateExpression: 'SET counted = :c, difference = :d, checkedAt = :now, updatedAt = :now, #status = :s'
        + `${end !== undefined ? ', periodEnd = :end' : ''}`,
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: {
        ':c': counted,
        ':d': difference,
        ':now': new Date(nowMs).toISOString(),
        ':s': final ? 'FINAL' : 'OPEN',
        ...(end !== undefined ? { ':end': new Date(end * 1000).toISOString().replace('.000Z', 'Z') } : {}),
      },
    }));
    if (difference !== '0') {
      logger.warn('Reconciliation: Stripe counted a different number of units than were sent', {
        tenantId: tenant.tenantId, metric: record.metric, periodStart: record.periodStart, sent, counted, final,
      });
    }
  }
}

/**
 * When Stripe ended the tenant's subscription within [start, end) outside an offboarding (epoch ms), if it did:
 * deleting a customer "immediately cancels any active subscriptions on the customer"
 * (https://docs.stripe.com/api/customers/delete), and a subscription cancelled without `invoice_now`
 * invoices no more usage (https://docs.stripe.com/api/subscriptions/cancel).
 */
function endedByStripe(t: TenantRecord, start: number, end: number | undefined): number | undefined {
  if (t.status === 'OFFBOARDING' || t.status === 'OFFBOARDED') return undefined;
  const status = currentSubscriptionStatus(t);
  const at = t.customerDeletedByStripe && t.customerDeletedByStripeAt !== undefined ? t.customerDeletedByStripeAt * 1000
    : status && NOT_BILLING_STATUSES.includes(status)
      ? (t.subscriptionEndedAt ? Date.parse(t.subscriptionEndedAt) : (t.subscriptionStatusAt ?? 0) * 1000)
      : undefined;
  // Only the period known to hold that moment (the mapping's current or previous period).
  if (at === undefined || end === undefined) return undefined;
  return at >= start * 1000 && at < end * 1000 ? at : undefined;
}

/** The record of the period Stripe ended the subscription in: its usage billed here moves to rejected, FINAL, with the reason. */
async function notInvoiced(config: ReconcileConfig, tenant: TenantRecord, record: StoredRecord, endedAt: number, nowMs: number): Promise<void> {
  const key = reconKey(tenant.tenantId, record.metric, record.periodStart);
  const item = (await doc().send(new GetCommand({ TableName: config.table, Key: key, ConsistentRead: true }))).Item ?? {};
  const billed = num(item.billedHere);
  await doc().send(new UpdateCommand({
    TableName: config.table,
    Key: key,
    UpdateExpression: 'SET #status = :final, reason = :why, notInvoiced = :sent, checkedAt = :now, updatedAt = :now ADD billedHere :minus, rejected :billed',
    ConditionExpression: '#status = :open',
    ExpressionAttributeNames: { '#status': 'status' },
    ExpressionAttributeValues: {
      ':final': 'FINAL',
      ':open': 'OPEN',
      ':sent': num(item.sent),
      ':now': new Date(nowMs).toISOString(),
      ':why': `Stripe ended the subscription at ${new Date(endedAt).toISOString()} (not an offboarding): the ${num(item.sent)} units sent into this period are on no invoice`,
      ':minus': new NumberValue(negate(billed)),
      ':billed': new NumberValue(billed),
    },
  }));
  metrics.addMetric(STRIPE_METRICS.UNITS_NOT_INVOICED, MetricUnit.Count, Number(num(item.sent)));
  logger.warn('Stripe ended the subscription outside an offboarding: the period\'s usage is on no invoice', {
    tenantId: tenant.tenantId, metric: record.metric, periodStart: record.periodStart, units: num(item.sent),
  });
}

const negate = (x: string) => (x.startsWith('-') ? x.slice(1) : x === '0' ? '0' : `-${x}`);

/** A sent window's marker, as the drill-down reads it. */
interface SentMarker {
  readonly windowId: string;
  readonly status: string;
  readonly value: string;
  readonly exact: string;
  readonly timestamp: number;
  readonly identifier: string;
  readonly eventName: string;
  readonly customerId: string;
  readonly billingPeriodStart: string;
  readonly usagePeriodStart: string;
  readonly carriedOver: boolean;
  readonly resends: number;
  /** When it was sent (last); a window sent less than the lag ago may not be counted yet. */
  readonly sentAt?: string;
  readonly window: ClosedWindow;
}

async function markersOf(config: ReconcileConfig, windows: readonly ClosedWindow[]): Promise<SentMarker[]> {
  const found: SentMarker[] = [];
  for (let i = 0; i < windows.length; i += 100) {
    const chunk = windows.slice(i, i + 100);
    let keys: Record<string, unknown>[] = chunk.map((w) => ({ [L.partitionKey]: `${L.markerPrefix}${w.windowId}`, [L.sortKey]: L.markerSortKey }));
    for (let round = 0; keys.length > 0 && round < 8; round++) {
      const res = await doc().send(new BatchGetCommand({ RequestItems: { [config.table]: { Keys: keys, ConsistentRead: true } } }));
      for (const m of res.Responses?.[config.table] ?? []) {
        const windowId = String(m[L.partitionKey]).slice(L.markerPrefix.length);
        const w = chunk.find((x) => x.windowId === windowId)!;
        if (m.value === undefined) continue;
        found.push({
          windowId,
          status: String(m.status),
          value: String(m.value),
          exact: String(m.exactValue),
          timestamp: Number(String(m.timestamp)),
          identifier: String(m.identifier),
          eventName: String(m.eventName),
          customerId: String(m.customerId),
          billingPeriodStart: String(m.billingPeriodStart),
          usagePeriodStart: String(m.usagePeriodStart ?? m.billingPeriodStart),
          carriedOver: m.carriedOver === true,
          resends: Number(String(m.resends ?? 0)),
          sentAt: m.sentAt as string | undefined,
          window: w,
        });
      }
      keys = (res.UnprocessedKeys?.[config.table]?.Keys ?? []) as Record<string, unknown>[];
    }
    if (keys.length > 0) throw new Error(`BatchGetItem left ${keys.length} markers unread`);
  }
  return found;
}

/** Finds the windows of a period Stripe did not count, hour by hour, and repairs them. */
async function drillDown(
  run: PushRun, config: ReconcileConfig, reader: ClosedWindowSource, tenant: TenantRecord, record: StoredRecord,
  meterId: string | undefined, start: number, stop: number, nowMs: number, summary: ReconcileSummary,
): Promise<{ open: number }> {
  let open = 0;
  // Windows sent into the period: its own, and earlier ones carried into it (up to one period back).
  const back = tenant.previousPeriodStart && record.periodStart === tenant.periodStart
    ? Date.parse(tenant.previousPeriodStart) / 1000
    : start - 31 * 86_400;
  const windows = (await reader.readTenantClosedWindows(tenant.tenantId, {
    since: new Date(Math.min(back, start) * 1000).toISOString(), until: new Date(stop * 1000).toISOString(),
  })).filter((w) => w.metric === record.metric).slice(0, MAX_DRILL_WINDOWS);
  // Only sends Stripe has had the lag to process: a newer one not counted yet is not judged.
  const settledBefore = nowMs - config.lagSeconds * 1000;
  const sent = (await markersOf(config, windows)).filter((m) => m.billingPeriodStart === record.periodStart
    && ['SENT', 'CARRIED_OVER', 'RESENDING'].includes(m.status) && m.timestamp >= start && m.timestamp < stop
    && (m.sentAt === undefined || Date.parse(m.sentAt) <= settledBefore));
  const countedByHour = new Map<number, number>();
  if (meterId) {
    const from = Math.floor(start / 3600) * 3600;
    const to = Math.ceil(stop / 3600) * 3600;
    summary.stripeRequests += Math.max(1, Math.ceil((to - from) / 3600 / 100)); // pages of 100 hours
    const hours = await stripeCall(async (s) => {
      const all: { start_time: number; aggregated_value: number }[] = [];
      for await (const x of s.billing.meters.listEventSummaries(meterId, {
        customer: tenant.customerId!, start_time: from, end_time: to, value_grouping_window: 'hour', limit: 100,
      })) all.push(x);
      return all;
    });
    for (const x of hours) countedByHour.set(x.start_time, (countedByHour.get(x.start_time) ?? 0) + x.aggregated_value);
  }
  const byHour = new Map<number, SentMarker[]>();
  for (const m of sent) {
    const hour = Math.floor(m.timestamp / 3600) * 3600;
    byHour.set(hour, [...(byHour.get(hour) ?? []), m]);
  }
  const notCounted: SentMarker[] = [];
  for (const [hour, ms] of byHour) {
    const expected = ms.reduce((sum, m) => sum + Number(m.value), 0);
    const counted = countedByHour.get(hour) ?? 0;
    if (counted >= expected) continue;
    if (counted === 0) {notCounted.push(...ms);} else {
      const match = ms.filter((m) => Number(m.value) === expected - counted);
      if (match.length === 1) notCounted.push(match[0]);
    }
  }
  summary.windowsNotCounted += notCounted.length;
  const meters = await activeMeterIds(run);
  for (const m of notCounted) {
    const customerGone = tenant.customerDeletedByStripe || tenant.customerDeleted || tenant.status === 'OFFBOARDED';
    if (m.status === 'RESENDING' || (m.resends === 0 && meters.has(m.eventName) && !customerGone)) {
      await resend(config, tenant, m, nowMs, summary);
      open++; // checked again once Stripe had the time to count the resend
    } else if (!meters.has(m.eventName) && !customerGone && m.resends === 0) {
      // The meter is inactive: nothing counts until it is active again. Kept as sent (the record shows the
      // difference, WindowsNotCounted alarms); a later run resends it once the meter is reactivated.
      logger.warn('Window not counted: its meter is not active; resent once it is reactivated', { windowId: m.windowId, eventName: m.eventName });
      open++;
    } else {
      await drop(config, m, `Stripe did not count it${m.resends > 0 ? ' after a resend either' : ''}${customerGone ? ' (customer deleted or offboarded)' : ''}`, summary);
    }
  }
  return { open };
}

/** Sends a window Stripe did not count again (step 2): into its period while that invoice is open, else carried over. */
async function resend(config: ReconcileConfig, tenant: TenantRecord, m: SentMarker, nowMs: number, summary: ReconcileSummary): Promise<void> {
  const nowSeconds = Math.floor(nowMs / 1000);
  let placement = { timestamp: m.timestamp, billingPeriodStart: m.billingPeriodStart, carriedOver: m.carriedOver, identifier: m.identifier };
  if (m.status !== 'RESENDING') {
    const current = tenant.periodStart !== undefined && m.billingPeriodStart === tenant.periodStart;
    const previousOpen = tenant.periodStart !== undefined && m.billingPeriodStart === tenant.previousPeriodStart
      && nowSeconds < Date.parse(tenant.periodStart) / 1000 + config.graceSeconds - FINALIZATION_SAFETY_SECONDS;
    const carry = !(current || previousOpen || m.billingPeriodStart.startsWith('month:')) && tenant.periodStart !== undefined;
    placement = {
      timestamp: carry ? Date.parse(tenant.periodStart!) / 1000 : m.timestamp,
      billingPeriodStart: carry ? tenant.periodStart! : m.billingPeriodStart,
      carriedOver: carry || m.carriedOver,
      identifier: resendIdentifier(m.identifier, m.resends + 1),
    };
    // Marker and accounting first (RESENDING: a crash before the send is finished by the next run, same identifier).
    // The period it goes into records the send, so that its next check waits for Stripe's processing.
    const moves: Accounting[] = [{
      tenantId: m.window.tenantId,
      metric: m.window.metric,
      eventName: m.eventName,
      periodStart: placement.billingPeriodStart,
      sentAt: new Date(nowMs).toISOString(),
      add: {},
    }];
    if (placement.billingPeriodStart !== m.billingPeriodStart) {
      moves.length = 0;
      const base = { tenantId: m.window.tenantId, metric: m.window.metric, eventName: m.eventName };
      moves.push({ ...base, periodStart: m.billingPeriodStart, add: { sent: `-${m.value}`, ...(m.carriedOver ? { carriedIn: `-${m.exact}` } : {}) } });
      moves.push({
        ...base, periodStart: placement.billingPeriodStart, sentAt: new Date(nowMs).toISOString(), add: { sent: m.value, carriedIn: m.exact },
      });
      if (!m.carriedOver) moves.push({ ...base, periodStart: m.usagePeriodStart, add: { billedHere: `-${m.exact}`, carriedOver: m.exact } });
    }
    await transact(config, m, {
      set: {
        status: 'RESENDING',
        identifier: placement.identifier,
        timestamp: placement.timestamp,
        billingPeriodStart: placement.billingPeriodStart,
        carriedOver: placement.carriedOver,
        resends: m.resends + 1,
        reason: 'not counted by Stripe: sent again',
      },
    }, moves);
  }
  await stripeCall((s) => s.billing.meterEvents.create({
    event_name: m.eventName,
    identifier: placement.identifier,
    timestamp: placement.timestamp,
    payload: { stripe_customer_id: m.customerId, value: m.value },
  }, { idempotencyKey: `meter-event-${placement.identifier}` })).catch((error) => {
    if (!/already exists with identifier/i.test((error as Error).message ?? '')) throw error;
  });
  if (placement.carriedOver && placement.billingPeriodStart !== m.billingPeriodStart && tenant.currency) {
    await stripeCall((s) => s.invoiceItems.create({
      customer: m.customerId,
      ...(tenant.subscriptionId ? { subscription: tenant.subscriptionId } : {}),
      amount: 0,
      currency: tenant.currency!,
      description: `${m.value} ${m.eventName} units used ${m.window.windowStart} to ${m.window.windowEnd} were not counted by Stripe before that `
        + `period's invoice was finalized: they are billed in this invoice's ${m.eventName} usage.`,
      period: { start: Math.floor(Date.parse(m.window.windowStart) / 1000), end: Math.floor(Date.parse(m.window.windowEnd) / 1000) },
      metadata: { windowId: m.windowId, [STRIPE_METADATA.MANAGED_BY]: MANAGED_BY },
    }, { idempotencyKey: carryNoteKey(placement.identifier) }));
  }
  await doc().send(new UpdateCommand({
    TableName: config.table,
    Key: { [L.partitionKey]: `${L.markerPrefix}${m.windowId}`, [L.sortKey]: L.markerSortKey },
    UpdateExpression: 'SET #s = :s, sentAt = :now',
    ConditionExpression: '#s = :resending',
    ExpressionAttributeNames: { '#s': 'status' },
    ExpressionAttributeValues: { ':s': placement.carriedOver ? 'CARRIED_OVER' : 'SENT', ':now': new Date(nowMs).toISOString(), ':resending': 'RESENDING' },
  }));
  summary.windowsResent++;
  logger.warn('Window not counted by Stripe: sent again', { windowId: m.windowId, identifier: placement.identifier, carriedOver: placement.carriedOver });
}

/** Records a window Stripe did not count and that cannot be sent again: `DROPPED`, its units moved from sent to rejected. */
async function drop(config: ReconcileConfig, m: SentMarker, reason: string, summary: ReconcileSummary): Promise<void> {
  const base = { tenantId: m.window.tenantId, metric: m.window.metric, eventName: m.eventName };
  const moves: Accounting[] = [
    { ...base, periodStart: m.billingPeriodStart, add: { sent: `-${m.value}`, ...(m.carriedOver ? { carriedIn: `-${m.exact}` } : { billedHere: `-${m.exact}` }) } },
  ];
  if (m.usagePeriodStart === m.billingPeriodStart) moves[0] = { ...moves[0], add: { ...moves[0].add, rejected: m.exact } };
  else moves.push({ ...base, periodStart: m.usagePeriodStart, add: { carriedOver: `-${m.exact}`, rejected: m.exact } });
  await transact(config, m, { set: { status: 'DROPPED', reason: `${reason}; fix the cause, then redrive it` } }, moves);
  summary.windowsDropped++;
  logger.warn('Window not counted by Stripe and not sent again: DROPPED', { windowId: m.windowId, reason });
}

/** Updates a marker (on the condition that it is as read) together with its accounting. */
async function transact(
  config: ReconcileConfig, m: SentMarker, change: { set: Record<string, unknown> }, accounting: readonly Accounting[],
): Promise<void> {
  const entries = Object.entries(change.set);
  try {
    await doc().send(new TransactWriteCommand({
      TransactItems: [
        {
          Update: {
            TableName: config.table,
            Key: { [L.partitionKey]: `${L.markerPrefix}${m.windowId}`, [L.sortKey]: L.markerSortKey },
            UpdateExpression: `SET ${entries.map((_, i) => `#k${i} = :v${i}`).join(', ')}`,
            ConditionExpression: '#s = :was AND identifier = :id',
            ExpressionAttributeNames: { '#s': 'status', ...Object.fromEntries(entries.map(([k], i) => [`#k${i}`, k])) },
            ExpressionAttributeValues: { ':was': m.status, ':id': m.identifier, ...Object.fromEntries(entries.map(([, v], i) => [`:v${i}`, v])) },
          },
        },
        ...mergeAccounting(accounting).map((a) => accountingUpdate(config.table, a)),
      ],
    }));
  } catch (error) {
    if (cancellationCodes(error)?.[0] === 'ConditionalCheckFailed') {
      logger.info('Marker changed since it was read: left to the next run', { windowId: m.windowId });
      return;
    }
    throw error;
  }
}
