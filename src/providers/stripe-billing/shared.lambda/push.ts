/**
 * The usage push: closed windows, read through the ingestor's usage read
 * contract, become Stripe meter events, each window exactly once.
 *
 * Per window (`pushWindow`):
 * 1. **Decide** from the window, its meter and its tenant's mapping, before any write:
 *    send (with a timestamp and a billing period: `billing-period.ts`), put aside to retry
 *    (`deferred`: no customer yet, period not known yet, Stripe unavailable), or a final
 *    disposition that is recorded and never sent (`NO_METER`, `TOO_OLD`, `REJECTED`,
 *    `AFTER_OFFBOARDING`, `NO_SUBSCRIPTION`).
 * 2. **Reserve** the window's whole units and claim its marker (`SENDING`, keeping the time of
 *    the first attempt) in one transaction with the rounding carry of its tenant, meter and
 *    billing period: the window sends `round(carried exact + its exact) - carried units`, so a
 *    period bills the rounding of its total (720 hourly windows of 0.4 bill 288, not 0). A window
 *    whose share is 0 is recorded `ZERO` in that transaction. A window already pushed is skipped,
 *    beyond Stripe's 24-hour dedup window too; a window reserved by an interrupted run is sent
 *    again with the units and timestamp it reserved.
 * 3. **Send** one meter event with the window's deterministic `identifier` and
 *    `Idempotency-Key`: every retry (429 as Stripe's `Retry-After` says, 5xx,
 *    timeouts) and every rerun after a crash sends the same identifier, which Stripe drops.
 * 4. **Record** `SENT`, or `CARRIED_OVER` when the window's own period's invoice was finalized
 *    and it was sent into the current period (then with a zero-amount invoice item, for the
 *    window's period, saying so). A crash between 3 and 4 leaves `SENDING`: a rerun within
 *    23 hours of the first attempt sends again (Stripe answers with its first
 *    answer, or refuses the known identifier: both mean counted); a rerun later
 *    first reads the meter's event summary of the window's hour for the customer:
 *    the window's value means counted (`SENT`), 0 means not (sent now); anything
 *    else makes the window `UNCERTAIN`, with an alarm, never sent twice.
 *
 * A 4xx for one window (`REJECTED`, alarmed) does not stop the others. Windows
 * of one customer and meter are sent one after another (Stripe allows one
 * concurrent call per customer and meter); different pairs go in parallel.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { BatchGetCommand, DeleteCommand, GetCommand, paginateQuery, PutCommand, QueryCommandInput, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { ClosedWindow, UsageReader } from '../../../ingestor/shared.lambda/usage-reader';
import { documentClient } from '../../../shared.lambda/aws-clients';
import { addDecimals, DecimalError, multiplyDecimals, parseDecimal, roundDecimal, subtractDecimals } from '../../../shared.lambda/decimal';
import { acquireLease as takeLease, cancellationCodes, isConditionalCheckFailed } from '../../../shared.lambda/dynamodb';
import { jsonEnv, numberEnv, requiredEnv } from '../../../shared.lambda/env';
import { logger } from '../../../shared.lambda/logger';
import { withRetry } from '../../../shared.lambda/retry';
import { MANAGED_BY, MeterMapping, STRIPE_ENV, STRIPE_METADATA, STRIPE_METRICS, USAGE_PUSH_TABLE_LAYOUT as L } from '../contract';
import { Accounting, accountingUpdate, mergeAccounting, usagePeriodOf } from './accounting';
import { currentSubscriptionStatus, NOT_BILLING_STATUSES, needsPeriodRead, placeWindow, readPeriod } from './billing-period';
import { carryNoteKey, meterEventIdentifier, meterEventKey } from './keys';
import { metrics } from './metrics';
import { IDEMPOTENCY_SAFE_MS } from './onboarding';
import { describeFailure, failureKind, isDuplicateIdentifier, isServerError, stripeCall } from './stripe-client';
import { getTenant, TenantRecord } from './tenants';

/** What the push needs of the usage read contract. */
export type ClosedWindowSource = Pick<UsageReader, 'readClosedWindows' | 'readTenantClosedWindows'>;

/** A final disposition: recorded on the window's marker. */
export type Disposition = 'SENT' | 'CARRIED_OVER' | 'ZERO' | 'NO_METER' | 'TOO_OLD' | 'REJECTED' | 'UNCERTAIN' | 'AFTER_OFFBOARDING' | 'NO_SUBSCRIPTION'
/** Set by the reconciler: Stripe did not count the window after a resend either. */
| 'DROPPED';

/** Stripe accepts meter event timestamps of the past 35 days... */
export const MAX_EVENT_AGE_SECONDS = 35 * 24 * 3600;
/** ...minus this margin, so a window judged sendable is still accepted when it arrives. */
export const EVENT_AGE_MARGIN_SECONDS = 3600;
/** ...and at most 5 minutes ahead; a window starting later than this waits. */
export const MAX_EVENT_LEAD_SECONDS = 240;
/** Stripe refuses meter event values of more than 15 digits. */
export const MAX_VALUE_DIGITS = 15;
/** Windows read per page. */
export const PAGE_SIZE = 200;
/** Consecutive windows Stripe stays unavailable for before the run stops. */
const MAX_CONSECUTIVE_UNAVAILABLE = 3;

/** The push's configuration, from the environment the construct sets. */
export interface PushConfig {
  readonly table: string;
  readonly prefix: string;
  readonly meters: ReadonlyMap<string, MeterMapping>;
  readonly concurrency: number;
  readonly initialLookbackSeconds: number;
  /** The invoice finalization grace period the user declares, seconds. */
  readonly graceSeconds: number;
}

/** Reads the push configuration from the environment. */
export function pushConfigFromEnv(): PushConfig {
  const meters = jsonEnv<MeterMapping[]>(STRIPE_ENV.METERS, []);
  return {
    table: requiredEnv(STRIPE_ENV.USAGE_PUSH_TABLE_NAME),
    prefix: requiredEnv(STRIPE_ENV.IDENTIFIER_PREFIX),
    meters: new Map(meters.map((m) => [m.metric, m])),
    concurrency: numberEnv(STRIPE_ENV.PUSH_CONCURRENCY, { min: 1, max: 64, integer: true, fallback: 8 }),
    initialLookbackSeconds: numberEnv(STRIPE_ENV.INITIAL_LOOKBACK_SECONDS,
      { min: 3600, max: MAX_EVENT_AGE_SECONDS, integer: true, fallback: MAX_EVENT_AGE_SECONDS - EVENT_AGE_MARGIN_SECONDS }),
    graceSeconds: numberEnv(STRIPE_ENV.INVOICE_GRACE_SECONDS, { min: 0, max: 72 * 3600, integer: true, fallback: 3600 }),
  };
}

/**
 * A window's exact value in the meter's units (its sum times the multiplier), or why it cannot be
 * sent. Its whole units are decided when it is reserved (the rounding carry).
 */
export function meterValue(sum: string, meter: Pick<MeterMapping, 'multiplier'>): { exact: string } | { problem: string } {
  let exact: string;
  try {
    exact = multiplyDecimals(parseDecimal(sum, { allowNegative: true }), meter.multiplier);
  } catch (error) {
    if (error instanceof DecimalError) return { problem: `window sum is not a decimal: ${error.message}` };
    throw error;
  }
  if (exact.startsWith('-')) return { problem: `value ${exact} is negative; Stripe meter events count usage of 0 or more` };
  if (roundDecimal(exact, 0, 'UP').length > MAX_VALUE_DIGITS) {
    return { problem: `value ${exact} has more than ${MAX_VALUE_DIGITS} digits, which Stripe refuses: lower the meter's multiplier` };
  }
  return { exact };
}

/** A window to send: whom, which meter, its exact value, and where it is billed. */
export interface SendDecision {
  readonly kind: 'send';
  readonly customerId: string;
  readonly subscriptionId?: string;
  readonly currency?: string;
  readonly eventName: string;
  readonly rounding: MeterMapping['rounding'];
  readonly exact: string;
  /** The meter event's timestamp, epoch seconds. */
  readonly timestamp: number;
  readonly billingPeriodStart: string;
  readonly billingPeriodEnd?: string;
  readonly usagePeriodStart?: string;
  readonly carriedOver: boolean;
}

type Decision =
  | SendDecision
  | { readonly kind: 'final'; readonly disposition: Exclude<Disposition, 'SENT' | 'CARRIED_OVER' | 'UNCERTAIN' | 'ZERO' | 'DROPPED'>; readonly reason: string; readonly exact?: string }
  | { readonly kind: 'defer'; readonly reason: string };

/** Decides what to do with a window (step 1), from data only. `graceSeconds`: the declared invoice finalization grace period. */
export function decide(
  w: ClosedWindow, meter: MeterMapping | undefined, tenant: TenantRecord | undefined, nowMs: number, graceSeconds = 3600,
): Decision {
  if (!meter) return { kind: 'final', disposition: 'NO_METER', reason: `no meter maps metric '${w.metric}'` };
  const v = meterValue(w.sum, meter);
  if ('problem' in v) return { kind: 'final', disposition: 'REJECTED', reason: v.problem };
  const windowStart = Math.floor(Date.parse(w.windowStart) / 1000);
  const nowSeconds = Math.floor(nowMs / 1000);
  if (!Number.isFinite(windowStart)) return { kind: 'final', disposition: 'REJECTED', reason: `window start '${w.windowStart}' is not a time` };
  if (windowStart > nowSeconds + MAX_EVENT_LEAD_SECONDS) return { kind: 'defer', reason: 'window start is ahead of the clock' };
  if (!tenant?.customerId || tenant.status === 'CREATING') return { kind: 'defer', reason: 'tenant has no Stripe customer yet' };
  if (tenant.status === 'OFFBOARDED') {
    const stillBilled = tenant.cancellation === 'AT_PERIOD_END' && !tenant.customerDeleted
      && tenant.cancelAt !== undefined && Date.parse(w.windowStart) < Date.parse(tenant.cancelAt);
    if (!stillBilled) return { kind: 'final', disposition: 'AFTER_OFFBOARDING', reason: 'tenant offboarded and its subscription no longer bills', exact: v.exact };
  } else if (tenant.status === 'OFFBOARDING' && tenant.offboardedAt !== undefined && Date.parse(w.windowStart) >= Date.parse(tenant.offboardedAt)) {
    return { kind: 'final', disposition: 'AFTER_OFFBOARDING', reason: `usage after the offboarding at ${tenant.offboardedAt}`, exact: v.exact };
  }
  const status = currentSubscriptionStatus(tenant);
  if (tenant.status !== 'OFFBOARDED' && (tenant.customerDeletedByStripe || NOT_BILLING_STATUSES.includes(status ?? ''))) {
    const why = tenant.customerDeletedByStripe ? 'the Stripe customer was deleted in Stripe' : `the subscription is ${status}`;
    return { kind: 'final', disposition: 'NO_SUBSCRIPTION', reason: `${why}: no subscription bills this usage (fix it, then redrive)`, exact: v.exact };
  }
  const placement = placeWindow(windowStart, tenant, nowSeconds, graceSeconds);
  if (placement.kind === 'wait') return { kind: 'defer', reason: placement.reason };
  if (placement.timestamp < nowSeconds - MAX_EVENT_AGE_SECONDS + EVENT_AGE_MARGIN_SECONDS) {
    return { kind: 'final', disposition: 'TOO_OLD', reason: `window start ${w.windowStart} is older than the 35 days Stripe accepts`, exact: v.exact };
  }
  return {
    kind: 'send',
    customerId: tenant.customerId,
    subscriptionId: tenant.subscriptionId,
    currency: tenant.currency,
    eventName: meter.eventName,
    rounding: meter.rounding,
    exact: v.exact,
    timestamp: placement.timestamp,
    billingPeriodStart: placement.billingPeriodStart,
    billingPeriodEnd: placement.billingPeriodEnd,
    usagePeriodStart: placement.usagePeriodStart,
    carriedOver: placement.carriedOver,
  };
}

/** What one run did. */
export class PushTally {
  public windowsRead = 0;
  public alreadyPushed = 0;
  public deferred = 0;
  public readonly dispositions: Record<Disposition, number> = {
    SENT: 0, CARRIED_OVER: 0, ZERO: 0, NO_METER: 0, TOO_OLD: 0, REJECTED: 0, UNCERTAIN: 0, AFTER_OFFBOARDING: 0, NO_SUBSCRIPTION: 0, DROPPED: 0,
  };
  /** Set when the run must stop (Stripe unavailable, API key refused). */
  public abort?: Error;
  /** Consecutive windows Stripe was unavailable for. */
  public unavailableStreak = 0;

  /** Emits the counts as metrics (published by the handler). */
  public emit(): void {
    const m = STRIPE_METRICS;
    const counts: [string, number][] = [
      [m.WINDOWS_SENT, this.dispositions.SENT], [m.WINDOWS_ZERO, this.dispositions.ZERO],
      [m.WINDOWS_WITHOUT_METER, this.dispositions.NO_METER], [m.WINDOWS_TOO_OLD, this.dispositions.TOO_OLD],
      [m.WINDOWS_REJECTED, this.dispositions.REJECTED], [m.WINDOWS_UNCERTAIN, this.dispositions.UNCERTAIN],
      [m.WINDOWS_AFTER_OFFBOARDING, this.dispositions.AFTER_OFFBOARDING], [m.WINDOWS_DEFERRED, this.deferred],
      [m.WINDOWS_CARRIED_OVER, this.dispositions.CARRIED_OVER], [m.WINDOWS_NO_SUBSCRIPTION, this.dispositions.NO_SUBSCRIPTION],
    ];
    for (const [name, n] of counts) metrics.addMetric(name, MetricUnit.Count, n);
  }

  public summary() {
    return { windowsRead: this.windowsRead, alreadyPushed: this.alreadyPushed, deferred: this.deferred, ...this.dispositions };
  }
}

/** One push: its configuration, clock, deadline and tally. */
export interface PushRun {
  readonly config: PushConfig;
  readonly nowMs: () => number;
  /** False when the invocation must stop starting new work. */
  readonly hasTimeLeft: () => boolean;
  readonly tally: PushTally;
  /** Tenant mappings read during this run. */
  readonly tenants: Map<string, Promise<TenantRecord | undefined>>;
  /** Windows read from the pending partition: their pending item is deleted once they are final. */
  readonly pendingIds: Set<string>;
  /** Stripe's active meters by event name, read once per run when needed. */
  meterIds?: Promise<Map<string, { id: string; active: boolean }>>;
  /** The rounding carries this run read or wrote (the run holds the push lease; versions guard the rest). */
  readonly carries: Map<string, Carry>;
}

/** A rounding carry (see `USAGE_PUSH_TABLE_LAYOUT`). */
export interface Carry {
  readonly exact: string;
  readonly units: string;
  readonly version: number;
}

/** A new run. */
export function newRun(config: PushConfig, hasTimeLeft: () => boolean = () => true, nowMs: () => number = Date.now): PushRun {
  return { config, nowMs, hasTimeLeft, tally: new PushTally(), tenants: new Map(), pendingIds: new Set(), carries: new Map() };
}

const doc = () => documentClient();
const markerKey = (windowId: string) => ({ [L.partitionKey]: `${L.markerPrefix}${windowId}`, [L.sortKey]: L.markerSortKey });
const pendingKey = (windowId: string) => ({ [L.partitionKey]: L.pendingPartition, [L.sortKey]: windowId });
/** The window as kept on its marker and pending item (`windowData`). */
const windowFields = (w: ClosedWindow) => ({
  tenantId: w.tenantId,
  metric: w.metric,
  granularity: w.granularity,
  windowStart: w.windowStart,
  windowEnd: w.windowEnd,
  closedAt: w.closedAt,
  sum: w.sum,
  count: w.count,
});

/** A window back from its `windowData` (numbers come back as exact `NumberValue`s). */
function windowOf(data: Record<string, unknown>, windowId: string): ClosedWindow {
  const closedAt = String(data.closedAt ?? data.windowEnd);
  return { ...data, sum: String(data.sum), count: Number(String(data.count)), windowId, closedAt } as ClosedWindow;
}

/** Dispositions an operator may send again (`redriveWindows`) once the cause is fixed. */
export const REDRIVABLE: readonly Disposition[] = ['REJECTED', 'UNCERTAIN', 'NO_METER', 'AFTER_OFFBOARDING', 'NO_SUBSCRIPTION', 'DROPPED'];

/**
 * Puts windows recorded as REJECTED, UNCERTAIN, NO_METER, AFTER_OFFBOARDING, NO_SUBSCRIPTION or
 * DROPPED back to be pushed by this run (an operator's decision, after fixing the cause:
 * an UNCERTAIN window is resent only if it was not counted). Returns what was
 * done with each id.
 */
export async function redriveWindows(run: PushRun, windowIds: readonly string[]): Promise<Record<string, string>> {
  const outcome: Record<string, string> = {};
  for (const id of windowIds) {
    try {
      const old = await doc().send(new DeleteCommand({
        TableName: run.config.table,
        Key: markerKey(id),
        ConditionExpression: `#s IN (${REDRIVABLE.map((_, i) => `:d${i}`).join(', ')})`,
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: Object.fromEntries(REDRIVABLE.map((d, i) => [`:d${i}`, d])),
        ReturnValues: 'ALL_OLD',
      }));
      const data = old.Attributes?.windowData as Record<string, unknown>;
      await defer(run, windowOf(data, id), `redriven from ${String(old.Attributes?.status)}`);
      outcome[id] = `redriven from ${String(old.Attributes?.status)}`;
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
      outcome[id] = `not redriven: no marker with one of ${REDRIVABLE.join(', ')}`;
    }
  }
  run.tally.deferred -= Object.values(outcome).filter((o) => o.startsWith('redriven')).length;
  return outcome;
}

/**
 * Records a final disposition. `claimed`: the window is ours (`SENDING`) and
 * was attempted; otherwise it is recorded unless a marker exists, and a window
 * attempted by an earlier run (`SENDING`) becomes UNCERTAIN instead.
 */
async function recordFinal(
  run: PushRun, w: ClosedWindow, disposition: Disposition, reason: string, claimed: boolean, extra: Record<string, unknown> = {},
  accounting: readonly Accounting[] = [],
): Promise<void> {
  const fields = Object.entries(extra).filter(([, v]) => v !== undefined);
  const write = async (status: Disposition, why: string, onlyIfSending: boolean, withAccounting: readonly Accounting[]) => {
    const update = {
      TableName: run.config.table,
      Key: markerKey(w.windowId),
      UpdateExpression: `SET #s = :s, reason = :r, decidedAt = :now, windowData = :w${fields.map((_, i) => `, #x${i} = :x${i}`).join('')}`,
      ConditionExpression: onlyIfSending ? '#s = :sending' : 'attribute_not_exists(#s)',
      ExpressionAttributeNames: { '#s': 'status', ...Object.fromEntries(fields.map(([k], i) => [`#x${i}`, k])) },
      ExpressionAttributeValues: {
        ':s': status,
        ':r': why,
        ':now': new Date(run.nowMs()).toISOString(),
        ':w': windowFields(w),
        ...(onlyIfSending ? { ':sending': 'SENDING' } : {}),
        ...Object.fromEntries(fields.map(([, v], i) => [`:x${i}`, v])),
      },
    };
    if (withAccounting.length === 0) return void await doc().send(new UpdateCommand(update));
    // The marker and its accounting together: a window is accounted exactly once.
    try {
      await doc().send(new TransactWriteCommand({
        TransactItems: [{ Update: update }, ...withAccounting.map((a) => accountingUpdate(run.config.table, a))],
      }));
    } catch (error) {
      if (cancellationCodes(error)?.[0] === 'ConditionalCheckFailed') throw Object.assign(new Error('marker condition failed'), { name: 'ConditionalCheckFailedException' });
      throw error;
    }
  };
  let recorded: Disposition | undefined = disposition;
  try {
    await write(disposition, reason, claimed, accounting);
  } catch (error) {
    if (!isConditionalCheckFailed(error)) throw error;
    recorded = undefined;
    if (!claimed) {
      // A marker exists: final already, or attempted by an earlier run, which may have been counted.
      try {
        await write('UNCERTAIN', `attempted by an earlier run, now ${disposition}: ${reason}`, true, []);
        recorded = 'UNCERTAIN';
      } catch (again) {
        if (!isConditionalCheckFailed(again)) throw again;
      }
    }
  }
  if (recorded) run.tally.dispositions[recorded]++;
  else run.tally.alreadyPushed++; // final already (a concurrent or earlier run)
  await clearPending(run, w.windowId);
  if (recorded && recorded !== 'SENT' && recorded !== 'ZERO' && recorded !== 'CARRIED_OVER') {
    logger.warn('Window not billed', { windowId: w.windowId, tenantId: w.tenantId, metric: w.metric, disposition: recorded, reason });
  }
}

async function clearPending(run: PushRun, windowId: string): Promise<void> {
  if (!run.pendingIds.has(windowId)) return;
  await doc().send(new DeleteCommand({ TableName: run.config.table, Key: pendingKey(windowId) }));
  run.pendingIds.delete(windowId);
}

/** Puts a window aside for the next run. */
async function defer(run: PushRun, w: ClosedWindow, reason: string): Promise<void> {
  await doc().send(new UpdateCommand({
    TableName: run.config.table,
    Key: pendingKey(w.windowId),
    UpdateExpression: 'SET windowData = :w, windowId = :id, closedAt = :c, reason = :r, deferredAt = if_not_exists(deferredAt, :now)',
    ExpressionAttributeValues: { ':w': windowFields(w), ':id': w.windowId, ':c': w.closedAt, ':r': reason, ':now': new Date(run.nowMs()).toISOString() },
  }));
  run.tally.deferred++;
  logger.info('Window deferred to the next run', { windowId: w.windowId, reason });
}

/** What a claimed window sends: reserved now, or by an earlier, interrupted attempt. */
interface Reservation {
  readonly value: string;
  readonly timestamp: number;
  readonly customerId: string;
  readonly eventName: string;
  readonly identifier: string;
  readonly carriedOver: boolean;
  readonly billingPeriodStart: string;
  /** The period the usage belongs to (`earlier` when it is before the periods known). */
  readonly usagePeriodStart: string;
  /** The window's exact value in the meter's units. */
  readonly exact: string;
  readonly firstAttemptAt?: string;
}

/** The accounting of a reserved window (`sign` -1 takes it back, when Stripe refuses it). */
function reservedAccounting(w: ClosedWindow, r: Pick<Reservation, 'value' | 'exact' | 'carriedOver' | 'billingPeriodStart' | 'usagePeriodStart' | 'eventName'>,
  sentAt: string | undefined, sign: 1 | -1, periodEnd?: string): Accounting[] {
  const v = (x: string) => (sign === 1 ? x : x.startsWith('-') ? x.slice(1) : `-${x}`);
  const base = { tenantId: w.tenantId, metric: w.metric, eventName: r.eventName };
  if (!r.carriedOver) {
    const add = { metered: v(r.exact), billedHere: v(r.exact), sent: v(r.value) };
    return [{ ...base, periodStart: r.billingPeriodStart, sentAt, periodEnd, add }];
  }
  return [
    { ...base, periodStart: r.usagePeriodStart, add: { metered: v(r.exact), carriedOver: v(r.exact) } },
    { ...base, periodStart: r.billingPeriodStart, sentAt, periodEnd, add: { carriedIn: v(r.exact), sent: v(r.value) } },
  ];
}

const carryKey = (tenantId: string, eventName: string, billingPeriodStart: string) =>
  ({ [L.partitionKey]: `${L.carryPrefix}${tenantId}`, [L.sortKey]: `${eventName}#${billingPeriodStart}` });

async function readCarry(run: PushRun, id: string, key: Record<string, string>): Promise<Carry> {
  const cached = run.carries.get(id);
  if (cached) return cached;
  const got = await doc().send(new GetCommand({ TableName: run.config.table, Key: key, ConsistentRead: true }));
  const carry: Carry = got.Item
    ? { exact: String(got.Item.exact), units: String(got.Item.units), version: Number(String(got.Item.version)) }
    : { exact: '0', units: '0', version: 0 };
  run.carries.set(id, carry);
  return carry;
}

/** The marker as an interrupted attempt left it (`SENDING` with its reservation), taken for another attempt; 'final' when it is final. */
async function reclaim(run: PushRun, w: ClosedWindow): Promise<Reservation | 'final'> {
  const now = new Date(run.nowMs()).toISOString();
  try {
    const res = await doc().send(new UpdateCommand({
      TableName: run.config.table,
      Key: markerKey(w.windowId),
      UpdateExpression: 'SET lastAttemptAt = :now ADD attempts :one',
      ConditionExpression: '#s = :sending AND attribute_exists(#v)',
      ExpressionAttributeNames: { '#s': 'status', '#v': 'value' },
      ExpressionAttributeValues: { ':sending': 'SENDING', ':now': now, ':one': 1 },
      ReturnValues: 'ALL_NEW',
    }));
    const m = res.Attributes ?? {};
    return {
      value: String(m.value),
      timestamp: Number(String(m.timestamp)),
      customerId: String(m.customerId),
      eventName: String(m.eventName),
      identifier: String(m.identifier),
      carriedOver: m.carriedOver === true,
      // A marker of an older version of the push has neither: it was not accounted.
      billingPeriodStart: String(m.billingPeriodStart ?? 'unaccounted'),
      usagePeriodStart: String(m.usagePeriodStart ?? m.billingPeriodStart ?? 'unaccounted'),
      exact: String(m.exactValue ?? m.value),
      firstAttemptAt: m.firstAttemptAt as string | undefined,
    };
  } catch (error) {
    if (isConditionalCheckFailed(error)) return 'final';
    throw error;
  }
}

/**
 * Reserves the window's whole units from its rounding carry and claims its marker, in one
 * transaction (step 2). Returns the reservation, 'zero' when its share is 0 (recorded `ZERO` in the
 * same transaction), or what an earlier attempt left ('final', or its reservation).
 */
async function reserve(run: PushRun, w: ClosedWindow, d: SendDecision, identifier: string, firstAttemptAt?: string): Promise<Reservation | 'zero' | 'final'> {
  const key = carryKey(w.tenantId, d.eventName, d.billingPeriodStart);
  const id = `${w.tenantId}|${d.eventName}|${d.billingPeriodStart}`;
  for (let attempt = 1; ; attempt++) {
    const carry = await readCarry(run, id, key);
    const exact = addDecimals(carry.exact, d.exact);
    const units = roundDecimal(exact, 0, d.rounding);
    const value = subtractDecimals(units, carry.units);
    const now = new Date(run.nowMs()).toISOString();
    const next: Carry = { exact, units, version: carry.version + 1 };
    const zero = value === '0' || value.startsWith('-');
    const usagePeriodStart = d.usagePeriodStart ?? (d.carriedOver ? 'earlier' : d.billingPeriodStart);
    const placement = { ':bp': d.billingPeriodStart, ':co': d.carriedOver, ':x': d.exact, ':w': windowFields(w), ':now': now, ':up': usagePeriodStart };
    const common = 'windowData = :w, exactValue = :x, billingPeriodStart = :bp, carriedOver = :co, usagePeriodStart = :up';
    const reservation: Reservation = {
      value,
      timestamp: d.timestamp,
      customerId: d.customerId,
      eventName: d.eventName,
      identifier,
      carriedOver: d.carriedOver,
      billingPeriodStart: d.billingPeriodStart,
      usagePeriodStart,
      exact: d.exact,
      firstAttemptAt,
    };
    // A share of 0 is billed too: its exact value is in the carry the period's total is rounded from.
    const accounting = reservedAccounting(w, zero ? { ...reservation, value: '0' } : reservation, zero ? undefined : now, 1, d.billingPeriodEnd);
    const marker = zero
      ? {
        UpdateExpression: `SET #s = :zero, reason = :r, decidedAt = :now, ${common}`,
        ExpressionAttributeValues: { ...placement, ':zero': 'ZERO', ':r': `its share of the period's rounded total is 0 (${d.exact} carried)` },
      }
      : {
        UpdateExpression: 'SET #s = :sending, firstAttemptAt = if_not_exists(firstAttemptAt, :now), lastAttemptAt = :now, reservedAt = :now, '
          + `identifier = :id, customerId = :c, eventName = :e, #v = :v, #ts = :ts, ${common} ADD attempts :one`,
        ExpressionAttributeValues: {
          ...placement, ':sending': 'SENDING', ':id': identifier, ':c': d.customerId, ':e': d.eventName, ':v': value, ':ts': d.timestamp, ':one': 1,
        },
      };
    try {
      await doc().send(new TransactWriteCommand({
        TransactItems: [
          {
            Update: {
              TableName: run.config.table,
              Key: markerKey(w.windowId),
              ...marker,
              // No marker, or one left by an attempt that recorded no units.
              ConditionExpression: 'attribute_not_exists(#s) OR (#s = :sendingOld AND attribute_not_exists(#v))',
              ExpressionAttributeNames: { '#s': 'status', '#v': 'value', ...(zero ? {} : { '#ts': 'timestamp' }) },
              ExpressionAttributeValues: { ...marker.ExpressionAttributeValues, ':sendingOld': 'SENDING' },
            },
          },
          {
            Update: {
              TableName: run.config.table,
              Key: key,
              UpdateExpression: 'SET exact = :e, units = :u, version = :nv, updatedAt = :now',
              ConditionExpression: carry.version === 0 ? 'attribute_not_exists(version)' : 'version = :ov',
              ExpressionAttributeValues: {
                ':e': exact, ':u': units, ':nv': next.version, ':now': now, ...(carry.version === 0 ? {} : { ':ov': carry.version }),
              },
            },
          },
          ...accounting.map((a) => accountingUpdate(run.config.table, a)),
        ],
      }));
    } catch (error) {
      const codes = cancellationCodes(error);
      if (!codes) throw error;
      if (codes[0] === 'ConditionalCheckFailed') return reclaim(run, w); // reserved or final already
      if (codes[1] === 'ConditionalCheckFailed' && attempt < 5) {
        run.carries.delete(id); // another writer moved the carry: read it again
        continue;
      }
      throw error;
    }
    run.carries.set(id, next);
    return zero ? 'zero' : reservation;
  }
}

/**
 * Moves a reservation to another billing period (carry-over): the marker's timestamp and period and the
 * records' accounting, in one transaction on the condition that the marker is as reclaimed. The units stay
 * what were reserved (the rounding carry of the first period keeps them: its total may differ by a unit).
 */
async function replace(run: PushRun, w: ClosedWindow, r: Reservation, d: SendDecision): Promise<Reservation | 'final'> {
  const moved: Reservation = { ...r, timestamp: d.timestamp, billingPeriodStart: d.billingPeriodStart, carriedOver: true };
  const now = new Date(run.nowMs()).toISOString();
  try {
    await doc().send(new TransactWriteCommand({
      TransactItems: [
        {
          Update: {
            TableName: run.config.table,
            Key: markerKey(w.windowId),
            UpdateExpression: 'SET #ts = :ts, billingPeriodStart = :bp, carriedOver = :t',
            ConditionExpression: '#s = :sending AND identifier = :id',
            ExpressionAttributeNames: { '#s': 'status', '#ts': 'timestamp' },
            ExpressionAttributeValues: { ':ts': moved.timestamp, ':bp': moved.billingPeriodStart, ':t': true, ':sending': 'SENDING', ':id': r.identifier },
          },
        },
        ...mergeAccounting([...reservedAccounting(w, r, undefined, -1), ...reservedAccounting(w, moved, now, 1, d.billingPeriodEnd)])
          .map((a) => accountingUpdate(run.config.table, a)),
      ],
    }));
  } catch (error) {
    if (cancellationCodes(error)?.[0] === 'ConditionalCheckFailed') return 'final';
    throw error;
  }
  return moved;
}

/**
 * Whether Stripe counted an earlier attempt at a window, from the meter's event
 * summary of the event's hour for the customer (one window per customer,
 * meter and hour is ours; Stripe's aggregation is long settled a day later):
 * the window's value means counted, 0 means not, anything else is unknown
 * (events from elsewhere on the same meter).
 */
async function countedByStripe(run: PushRun, r: Reservation): Promise<'counted' | 'not-counted' | 'unknown'> {
  const meterId = (await activeMeterIds(run)).get(r.eventName);
  if (!meterId) return 'unknown';
  const hour = Math.floor(r.timestamp / 3600) * 3600;
  const summaries = await stripeCall((s) => s.billing.meters.listEventSummaries(meterId, {
    customer: r.customerId, start_time: hour, end_time: hour + 3600, value_grouping_window: 'hour',
  }));
  const total = summaries.data.reduce((sum, x) => sum + x.aggregated_value, 0);
  if (total === 0) return 'not-counted';
  return total === Number(r.value) ? 'counted' : 'unknown';
}

/** Stripe's meters by event name, and whether each is active (read once per run). */
export function meterIdsOf(run: Pick<PushRun, 'meterIds'>): Promise<Map<string, { id: string; active: boolean }>> {
  run.meterIds ??= stripeCall(async (s) => {
    const ids = new Map<string, { id: string; active: boolean }>();
    for await (const meter of s.billing.meters.list({ limit: 100 })) {
      // An event name belongs to one meter; an active one wins over an inactive one with the same name.
      if (meter.status === 'active' || !ids.has(meter.event_name)) ids.set(meter.event_name, { id: meter.id, active: meter.status === 'active' });
    }
    return ids;
  });
  return run.meterIds;
}

/** Stripe's active meters by event name (read once per run). */
export async function activeMeterIds(run: Pick<PushRun, 'meterIds'>): Promise<Map<string, string>> {
  return new Map([...(await meterIdsOf(run))].filter(([, m]) => m.active).map(([name, m]) => [name, m.id]));
}

/**
 * The invoice item that says, on the invoice that bills it, what a carried-over window is:
 * amount 0 (its units are in the meter's usage line), the window's period, a description.
 * "If no invoice is specified, the item will be on the next invoice created for the customer"
 * (https://docs.stripe.com/api/invoiceitems/create).
 */
async function noteCarryOver(w: ClosedWindow, r: Reservation, d: Pick<SendDecision, 'subscriptionId' | 'currency' | 'usagePeriodStart'>): Promise<void> {
  if (!d.currency) {
    logger.warn('Carried-over window: the subscription\'s currency is not known, so no invoice item says so', { windowId: w.windowId });
    return;
  }
  const period = d.usagePeriodStart ? `the billing period from ${d.usagePeriodStart}` : 'an earlier billing period';
  const description = `${r.value} ${r.eventName} units used ${w.windowStart} to ${w.windowEnd} (${period}) reached Stripe after that period's `
    + `invoice was finalized: they are billed in this invoice's ${r.eventName} usage.`;
  await stripeCall((s) => s.invoiceItems.create({
    customer: r.customerId,
    ...(d.subscriptionId ? { subscription: d.subscriptionId } : {}),
    amount: 0,
    currency: d.currency!,
    description,
    period: { start: Math.floor(Date.parse(w.windowStart) / 1000), end: Math.floor(Date.parse(w.windowEnd) / 1000) },
    metadata: { windowId: w.windowId, [STRIPE_METADATA.MANAGED_BY]: MANAGED_BY },
  }, { idempotencyKey: carryNoteKey(r.identifier) }));
}

/** Pushes one window (steps 1 to 4). */
export async function pushWindow(run: PushRun, w: ClosedWindow, tenant: TenantRecord | undefined, marker?: MarkerState): Promise<void> {
  const d = decide(w, run.config.meters.get(w.metric), tenant, run.nowMs(), run.config.graceSeconds);
  if (d.kind === 'defer') return defer(run, w, d.reason);
  if (d.kind === 'final') {
    // Not billed: accounted as rejected usage of the period it belongs to (in the metric's own units without a meter).
    const exact = d.exact ?? w.sum;
    return recordFinal(run, w, d.disposition, d.reason, false, { exactValue: exact }, [{
      tenantId: w.tenantId,
      metric: w.metric,
      eventName: run.config.meters.get(w.metric)?.eventName,
      periodStart: usagePeriodOf(w.windowStart, tenant),
      add: { metered: exact, rejected: exact },
    }]);
  }

  let r = marker?.reserved
    ? await reclaim(run, w)
    : await reserve(run, w, d, meterEventIdentifier(run.config.prefix, w.windowId), marker?.firstAttemptAt);
  if (r !== 'final' && r !== 'zero' && d.carriedOver && r.billingPeriodStart !== d.billingPeriodStart) {
    // Reserved by an attempt that did not get through, for a period whose invoice is final by now:
    // sent into the current period instead, with the same identifier (Stripe drops it if the attempt did count).
    r = await replace(run, w, r, d);
  }
  if (r === 'final') {
    run.tally.alreadyPushed++;
    await clearPending(run, w.windowId);
    return;
  }
  if (r === 'zero') {
    run.tally.dispositions.ZERO++;
    await clearPending(run, w.windowId);
    return;
  }
  const delivered = r.carriedOver ? 'CARRIED_OVER' : 'SENT';
  const deliveredReason = r.carriedOver ? 'its period\'s invoice was finalized: sent into the current period (billed on the next invoice)' : 'meter event accepted';
  if (r.firstAttemptAt && run.nowMs() - Date.parse(r.firstAttemptAt) > IDEMPOTENCY_SAFE_MS) {
    // Stripe's dedup of this identifier may have expired: ask Stripe what it counted before sending again.
    const found = await countedByStripe(run, r);
    if (found === 'counted') {
      return recordFinal(run, w, delivered, 'an earlier attempt was counted (the meter\'s event summary for this customer and hour holds the value)', true,
        { sentAt: new Date(run.nowMs()).toISOString() });
    }
    if (found === 'unknown') {
      return recordFinal(run, w, 'UNCERTAIN', `first attempted ${r.firstAttemptAt}, beyond Stripe's 24-hour identifier dedup, and the meter's `
        + 'event summary for this customer and hour does not tell whether it was counted; compare it with this window and bill the difference by hand', true);
    }
    // 'not-counted': nothing for this customer and hour in Stripe; the send below is the first to count.
  }
  let serverErrors = 0;
  try {
    await stripeCall((s, previous) => {
      // Stripe repeats a 5xx to every retry with the same Idempotency-Key: after one, a
      // fresh key. The identifier stays: Stripe refuses it if the first attempt was counted.
      if (isServerError(previous)) serverErrors++;
      return s.billing.meterEvents.create({
        event_name: r.eventName,
        identifier: r.identifier,
        timestamp: r.timestamp,
        payload: { stripe_customer_id: r.customerId, value: r.value },
      }, { idempotencyKey: meterEventKey(r.identifier, serverErrors) });
    });
  } catch (error) {
    if (isDuplicateIdentifier(error)) {
      // An earlier attempt was counted (its answer was lost): delivered.
      run.tally.unavailableStreak = 0;
      if (r.carriedOver) await noteCarryOver(w, r, d);
      return recordFinal(run, w, delivered, 'Stripe already held this identifier (an earlier attempt was counted)', true,
        { sentAt: new Date(run.nowMs()).toISOString() });
    }
    const kind = failureKind(error);
    if (kind === 'refused') {
      // Not billed: its reservation moves from sent to rejected.
      const back = reservedAccounting(w, r, undefined, -1);
      const rejected: Accounting = {
        tenantId: w.tenantId, metric: w.metric, eventName: r.eventName, periodStart: r.usagePeriodStart, add: { rejected: r.exact },
      };
      return recordFinal(run, w, 'REJECTED', `Stripe refused the meter event: ${(error as Error).message}`.slice(0, 1000), true, describeFailure(error),
        mergeAccounting([...back, rejected]));
    }
    if (kind === 'rate-limited' || kind === 'transient') {
      run.tally.unavailableStreak++;
      if (run.tally.unavailableStreak >= MAX_CONSECUTIVE_UNAVAILABLE) run.tally.abort ??= new Error('Stripe stayed unavailable for several windows in a row: stopping this run');
      return defer(run, w, `Stripe unavailable (${kind}) after retries`);
    }
    run.tally.abort ??= error as Error;
    throw error;
  }
  run.tally.unavailableStreak = 0;
  if (r.carriedOver) await noteCarryOver(w, r, d);
  await recordFinal(run, w, delivered, deliveredReason, true, { sentAt: new Date(run.nowMs()).toISOString() });
}

class UnreadMarkers extends Error {
  constructor(n: number) {
    super(`BatchGetItem left ${n} pushed markers unread`);
  }
}

/** What a window's marker says before the window is pushed (read for a page at once). */
interface MarkerState {
  readonly status: string;
  /** Units were reserved for it (by this or an older version of the push): it is sent again with them. */
  readonly reserved: boolean;
  readonly firstAttemptAt?: string;
}

/**
 * The markers of these windows (one BatchGetItem per 100 windows): a final one is skipped
 * without a write (a re-read page, an offboarding's final push); an interrupted one is sent again
 * with what it reserved. Knowing them up front also keeps the reservation's transaction from
 * failing on a marker that exists: a failed transaction costs its writes, and moto, unlike
 * DynamoDB, restores whole tables when one fails, undoing concurrent writes.
 */
async function readMarkers(run: PushRun, windows: readonly ClosedWindow[]): Promise<Map<string, MarkerState>> {
  const states = new Map<string, MarkerState>();
  for (let i = 0; i < windows.length; i += 100) {
    let keys: Record<string, unknown>[] = [...new Set(windows.slice(i, i + 100).map((w) => w.windowId))].map(markerKey);
    await withRetry(async () => {
      const res = await doc().send(new BatchGetCommand({
        RequestItems: {
          [run.config.table]: {
            Keys: keys,
            ConsistentRead: true,
            ProjectionExpression: '#pk, #s, #v, firstAttemptAt',
            ExpressionAttributeNames: { '#pk': L.partitionKey, '#s': 'status', '#v': 'value' },
          },
        },
      }));
      for (const item of res.Responses?.[run.config.table] ?? []) {
        states.set(String(item[L.partitionKey]).slice(L.markerPrefix.length), {
          status: String(item.status), reserved: item.value !== undefined, firstAttemptAt: item.firstAttemptAt as string | undefined,
        });
      }
      keys = (res.UnprocessedKeys?.[run.config.table]?.Keys ?? []) as Record<string, unknown>[];
      if (keys.length > 0) throw new UnreadMarkers(keys.length);
    }, { attempts: 8, baseDelayMs: 50, retryable: (e) => e instanceof UnreadMarkers });
  }
  return states;
}

function tenantOf(run: PushRun, tenantId: string): Promise<TenantRecord | undefined> {
  let t = run.tenants.get(tenantId);
  if (!t) {
    t = getTenant(tenantId);
    run.tenants.set(tenantId, t);
  }
  return t;
}

/**
 * Pushes windows: grouped by customer and meter (one group at a time per
 * pair, `concurrency` groups at once). Returns false when it stopped before
 * the end (deadline, abort).
 */
export async function pushWindows(run: PushRun, windows: readonly ClosedWindow[]): Promise<boolean> {
  run.tally.windowsRead += windows.length;
  const markerStates = await readMarkers(run, windows);
  const groups = new Map<string, ClosedWindow[]>();
  const ids = [...new Set(windows.map((w) => w.tenantId))];
  const tenants = new Map<string, TenantRecord | undefined>();
  await forEachLimited(ids, run.config.concurrency, async (id) => {
    let t = await tenantOf(run, id);
    if (t && needsPeriodRead(t, run.nowMs())) {
      // Once per tenant and period: its windows are placed by the subscription's current period.
      try {
        t = await readPeriod(t, run.nowMs());
      } catch (error) {
        if (failureKind(error) === 'not-stripe') throw error;
        logger.warn('The subscription\'s period could not be read: its windows wait for the next run', { tenantId: id, ...describeFailure(error) });
      }
      run.tenants.set(id, Promise.resolve(t));
    }
    tenants.set(id, t);
  });
  for (const w of windows) {
    const state = markerStates.get(w.windowId);
    if (state && state.status !== 'SENDING') {
      run.tally.alreadyPushed++;
      await clearPending(run, w.windowId);
      continue;
    }
    const customer = tenants.get(w.tenantId)?.customerId ?? `tenant:${w.tenantId}`;
    const key = `${customer}|${run.config.meters.get(w.metric)?.eventName ?? ''}`;
    const group = groups.get(key);
    if (group) group.push(w);
    else groups.set(key, [w]);
  }
  const queue = [...groups.values()];
  let complete = true;
  const worker = async () => {
    for (let group = queue.shift(); group; group = queue.shift()) {
      for (const w of group) {
        if (run.tally.abort || !run.hasTimeLeft()) {
          complete = false;
          return;
        }
        try {
          await pushWindow(run, w, tenants.get(w.tenantId), markerStates.get(w.windowId));
        } catch (error) {
          run.tally.abort ??= error as Error; // the other workers stop after their current window
          throw error;
        }
      }
    }
  };
  // Every worker is awaited, also when one fails: nothing keeps running after the invocation returns.
  const results = await Promise.allSettled(Array.from({ length: Math.min(run.config.concurrency, queue.length) }, worker));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return complete && !run.tally.abort;
}

/** Retries the windows put aside by earlier runs. Returns the age of the oldest one left, hours. */
export async function pushPendingWindows(run: PushRun): Promise<number> {
  for await (const page of pendingPages(run, { ConsistentRead: true })) {
    const windows = (page.Items ?? []).map((item) => {
      run.pendingIds.add(String(item.windowId));
      const data = item.windowData as Record<string, unknown>;
      return windowOf({ ...data, closedAt: item.closedAt }, String(item.windowId));
    });
    if (!(await pushWindows(run, windows))) return 0;
  }
  return oldestPendingHours(run);
}

async function oldestPendingHours(run: PushRun): Promise<number> {
  let oldest = Infinity;
  for await (const page of pendingPages(run, { ProjectionExpression: 'deferredAt' })) {
    for (const item of page.Items ?? []) oldest = Math.min(oldest, Date.parse(String(item.deferredAt)));
  }
  return Number.isFinite(oldest) ? Math.max(0, (run.nowMs() - oldest) / 3_600_000) : 0;
}

/** The pages of the windows put aside (the pending partition of the push table). */
function pendingPages(run: PushRun, extra: Pick<QueryCommandInput, 'ConsistentRead' | 'ProjectionExpression'>) {
  return paginateQuery({ client: doc() }, {
    TableName: run.config.table,
    KeyConditionExpression: '#pk = :p',
    ExpressionAttributeNames: { '#pk': L.partitionKey },
    ExpressionAttributeValues: { ':p': L.pendingPartition },
    ...extra,
  });
}

const cursorKey = { [L.partitionKey]: L.statePartition, [L.sortKey]: L.cursorSortKey };

/**
 * Pushes the windows closed since the stored cursor, page by page; the cursor
 * is stored after each page is complete, so a crash re-reads at most one page
 * (whose pushed windows the markers skip).
 */
export async function pushNewWindows(run: PushRun, reader: ClosedWindowSource): Promise<boolean> {
  const state = await doc().send(new GetCommand({ TableName: run.config.table, Key: cursorKey, ConsistentRead: true }));
  let cursor = state.Item?.cursor as string | undefined;
  const since = new Date(run.nowMs() - run.config.initialLookbackSeconds * 1000).toISOString();
  for (;;) {
    if (!run.hasTimeLeft()) return false;
    const page = await reader.readClosedWindows(cursor ? { cursor, limit: PAGE_SIZE } : { since, limit: PAGE_SIZE });
    if (!(await pushWindows(run, page.windows))) return false;
    if (page.cursor !== cursor) {
      const item = { ...cursorKey, cursor: page.cursor, updatedAt: new Date(run.nowMs()).toISOString() };
      await doc().send(new PutCommand({ TableName: run.config.table, Item: item }));
      cursor = page.cursor;
    }
    if (page.windows.length < PAGE_SIZE) return true;
  }
}

const leaseKeyOf = (sortKey: string) => ({ [L.partitionKey]: L.statePartition, [L.sortKey]: sortKey });

/**
 * Takes the push lease (one push at a time: the scheduled push and the final
 * push of an offboarding never send for the same customer and meter at once).
 * Returns a release function, or undefined when another run holds it.
 */
export async function acquireLease(
  run: PushRun, owner: string, holdMs: number, sortKey: string = L.leaseSortKey,
): Promise<(() => Promise<void>) | undefined> {
  return takeLease({
    client: doc(), tableName: run.config.table, key: leaseKeyOf(sortKey), partitionKeyName: L.partitionKey, owner, holdMs, nowMs: run.nowMs(),
  });
}

/** The metric of the oldest deferred window. */
export function emitPendingAge(hours: number): void {
  metrics.addMetric(STRIPE_METRICS.OLDEST_PENDING_WINDOW_HOURS, MetricUnit.Count, Math.round(hours * 100) / 100);
}

/** Runs `work` over `items`, at most `limit` at once. */
async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  const results = await Promise.allSettled(Array.from({ length: Math.min(limit, queue.length) }, async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await work(item);
  }));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}
