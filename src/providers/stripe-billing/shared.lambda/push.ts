/**
 * The usage push: closed windows, read through the ingestor's usage read
 * contract, become Stripe meter events, each window exactly once.
 *
 * Per window (`pushWindow`):
 * 1. **Decide** from the window, its meter and its tenant's mapping, before any write:
 *    send, put aside to retry (`deferred`: no customer yet, Stripe unavailable), or a
 *    final disposition that is recorded and never sent (`ZERO`, `NO_METER`,
 *    `TOO_OLD`, `REJECTED`, `AFTER_OFFBOARDING`).
 * 2. **Claim** the window's marker (`SENDING`, keeping the time of the first
 *    attempt) on the condition that it is not final: a window already pushed is
 *    skipped, beyond Stripe's 24-hour dedup window too.
 * 3. **Send** one meter event with the window's deterministic `identifier` and
 *    `Idempotency-Key`: every retry (429 as Stripe's `Retry-After` says, 5xx,
 *    timeouts) and every rerun after a crash sends the same identifier, which Stripe drops.
 * 4. **Record** `SENT`. A crash between 3 and 4 leaves `SENDING`: a rerun within
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
import { BatchGetCommand, DeleteCommand, GetCommand, paginateQuery, PutCommand, QueryCommandInput, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { ClosedWindow, UsageReader } from '../../../ingestor/shared.lambda/usage-reader';
import { documentClient } from '../../../shared.lambda/aws-clients';
import { DecimalError, multiplyDecimals, parseDecimal, roundDecimal } from '../../../shared.lambda/decimal';
import { isConditionalCheckFailed } from '../../../shared.lambda/dynamodb';
import { jsonEnv, numberEnv, requiredEnv } from '../../../shared.lambda/env';
import { logger } from '../../../shared.lambda/logger';
import { withRetry } from '../../../shared.lambda/retry';
import { MeterMapping, STRIPE_ENV, STRIPE_METRICS, USAGE_PUSH_TABLE_LAYOUT as L } from '../contract';
import { meterEventIdentifier, meterEventKey } from './keys';
import { metrics } from './metrics';
import { IDEMPOTENCY_SAFE_MS } from './onboarding';
import { describeFailure, failureKind, isDuplicateIdentifier, isServerError, stripeCall } from './stripe-client';
import { getTenant, TenantRecord } from './tenants';

/** What the push needs of the usage read contract. */
export type ClosedWindowSource = Pick<UsageReader, 'readClosedWindows' | 'readTenantClosedWindows'>;

/** A final disposition: recorded on the window's marker. */
export type Disposition = 'SENT' | 'ZERO' | 'NO_METER' | 'TOO_OLD' | 'REJECTED' | 'UNCERTAIN' | 'AFTER_OFFBOARDING';

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
  };
}

/** The whole-number value Stripe receives for a window, or why it cannot be sent. */
export function meterValue(sum: string, meter: Pick<MeterMapping, 'multiplier' | 'rounding'>): { value: string; exact: string } | { problem: string } {
  let exact: string;
  try {
    exact = multiplyDecimals(parseDecimal(sum, { allowNegative: true }), meter.multiplier);
  } catch (error) {
    if (error instanceof DecimalError) return { problem: `window sum is not a decimal: ${error.message}` };
    throw error;
  }
  const value = roundDecimal(exact, 0, meter.rounding);
  if (value.startsWith('-')) return { problem: `value ${value} is negative; Stripe meter events count usage of 0 or more` };
  if (value.length > MAX_VALUE_DIGITS) return { problem: `value ${value} has more than ${MAX_VALUE_DIGITS} digits, which Stripe refuses: lower the meter's multiplier` };
  return { value, exact };
}

type Decision =
  | { readonly kind: 'send'; readonly customerId: string; readonly eventName: string; readonly value: string; readonly exact: string; readonly timestamp: number }
  | { readonly kind: 'final'; readonly disposition: Exclude<Disposition, 'SENT' | 'UNCERTAIN'>; readonly reason: string; readonly value?: string }
  | { readonly kind: 'defer'; readonly reason: string };

/** Decides what to do with a window (step 1), from data only. */
export function decide(w: ClosedWindow, meter: MeterMapping | undefined, tenant: TenantRecord | undefined, nowMs: number): Decision {
  if (!meter) return { kind: 'final', disposition: 'NO_METER', reason: `no meter maps metric '${w.metric}'` };
  const v = meterValue(w.sum, meter);
  if ('problem' in v) return { kind: 'final', disposition: 'REJECTED', reason: v.problem };
  if (v.value === '0') return { kind: 'final', disposition: 'ZERO', reason: `sum ${w.sum} x ${meter.multiplier} rounds to 0`, value: '0' };
  const timestamp = Math.floor(Date.parse(w.windowStart) / 1000);
  const nowSeconds = Math.floor(nowMs / 1000);
  if (!Number.isFinite(timestamp)) return { kind: 'final', disposition: 'REJECTED', reason: `window start '${w.windowStart}' is not a time` };
  if (timestamp < nowSeconds - MAX_EVENT_AGE_SECONDS + EVENT_AGE_MARGIN_SECONDS) {
    return { kind: 'final', disposition: 'TOO_OLD', reason: `window start ${w.windowStart} is older than the 35 days Stripe accepts`, value: v.value };
  }
  if (timestamp > nowSeconds + MAX_EVENT_LEAD_SECONDS) return { kind: 'defer', reason: 'window start is ahead of the clock' };
  if (!tenant?.customerId || tenant.status === 'CREATING') return { kind: 'defer', reason: 'tenant has no Stripe customer yet' };
  if (tenant.status === 'OFFBOARDED') {
    const stillBilled = tenant.cancellation === 'AT_PERIOD_END' && !tenant.customerDeleted
      && tenant.cancelAt !== undefined && Date.parse(w.windowStart) < Date.parse(tenant.cancelAt);
    if (!stillBilled) return { kind: 'final', disposition: 'AFTER_OFFBOARDING', reason: 'tenant offboarded and its subscription no longer bills', value: v.value };
  }
  return { kind: 'send', customerId: tenant.customerId, eventName: meter.eventName, value: v.value, exact: v.exact, timestamp };
}

/** What one run did. */
export class PushTally {
  public windowsRead = 0;
  public alreadyPushed = 0;
  public deferred = 0;
  public readonly dispositions: Record<Disposition, number> = {
    SENT: 0, ZERO: 0, NO_METER: 0, TOO_OLD: 0, REJECTED: 0, UNCERTAIN: 0, AFTER_OFFBOARDING: 0,
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
  meterIds?: Promise<Map<string, string>>;
}

/** A new run. */
export function newRun(config: PushConfig, hasTimeLeft: () => boolean = () => true, nowMs: () => number = Date.now): PushRun {
  return { config, nowMs, hasTimeLeft, tally: new PushTally(), tenants: new Map(), pendingIds: new Set() };
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
export const REDRIVABLE: readonly Disposition[] = ['REJECTED', 'UNCERTAIN', 'NO_METER', 'AFTER_OFFBOARDING'];

/**
 * Puts windows recorded as REJECTED, UNCERTAIN, NO_METER or AFTER_OFFBOARDING
 * back to be pushed by this run (an operator's decision, after fixing the cause:
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
): Promise<void> {
  const fields = Object.entries(extra).filter(([, v]) => v !== undefined);
  const write = (status: Disposition, why: string, onlyIfSending: boolean) => doc().send(new UpdateCommand({
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
  }));
  let recorded: Disposition | undefined = disposition;
  try {
    await write(disposition, reason, claimed);
  } catch (error) {
    if (!isConditionalCheckFailed(error)) throw error;
    recorded = undefined;
    if (!claimed) {
      // A marker exists: final already, or attempted by an earlier run, which may have been counted.
      try {
        await write('UNCERTAIN', `attempted by an earlier run, now ${disposition}: ${reason}`, true);
        recorded = 'UNCERTAIN';
      } catch (again) {
        if (!isConditionalCheckFailed(again)) throw again;
      }
    }
  }
  if (recorded) run.tally.dispositions[recorded]++;
  else run.tally.alreadyPushed++; // final already (a concurrent or earlier run)
  await clearPending(run, w.windowId);
  if (recorded && recorded !== 'SENT' && recorded !== 'ZERO') {
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

/** Claims the window for sending (step 2): the earlier marker, or 'final' when it is final already. */
async function claim(run: PushRun, w: ClosedWindow, d: Extract<Decision, { kind: 'send' }>, identifier: string): Promise<{ firstAttemptAt?: string } | 'final'> {
  const now = new Date(run.nowMs()).toISOString();
  try {
    const res = await doc().send(new UpdateCommand({
      TableName: run.config.table,
      Key: markerKey(w.windowId),
      UpdateExpression: 'SET #s = :sending, firstAttemptAt = if_not_exists(firstAttemptAt, :now), lastAttemptAt = :now, '
        + 'identifier = :id, customerId = :c, eventName = :e, #v = :v, exactValue = :x, #ts = :ts, windowData = :w ADD attempts :one',
      ConditionExpression: 'attribute_not_exists(#s) OR #s = :sending',
      ExpressionAttributeNames: { '#s': 'status', '#v': 'value', '#ts': 'timestamp' },
      ExpressionAttributeValues: {
        ':sending': 'SENDING',
        ':now': now,
        ':id': identifier,
        ':c': d.customerId,
        ':e': d.eventName,
        ':v': d.value,
        ':x': d.exact,
        ':ts': d.timestamp,
        ':w': windowFields(w),
        ':one': 1,
      },
      ReturnValues: 'ALL_OLD',
    }));
    return { firstAttemptAt: res.Attributes?.firstAttemptAt as string | undefined };
  } catch (error) {
    if (isConditionalCheckFailed(error)) return 'final';
    throw error;
  }
}

/**
 * Whether Stripe counted an earlier attempt at a window, from the meter's event
 * summary of the window's hour for the customer (one window per customer,
 * meter and hour is ours; Stripe's aggregation is long settled a day later):
 * the window's value means counted, 0 means not, anything else is unknown
 * (events from elsewhere on the same meter).
 */
async function countedByStripe(run: PushRun, d: Extract<Decision, { kind: 'send' }>): Promise<'counted' | 'not-counted' | 'unknown'> {
  run.meterIds ??= stripeCall(async (s) => {
    const ids = new Map<string, string>();
    for await (const meter of s.billing.meters.list({ limit: 100 })) if (meter.status === 'active') ids.set(meter.event_name, meter.id);
    return ids;
  });
  const meterId = (await run.meterIds).get(d.eventName);
  if (!meterId) return 'unknown';
  const hour = Math.floor(d.timestamp / 3600) * 3600;
  const summaries = await stripeCall((s) => s.billing.meters.listEventSummaries(meterId, {
    customer: d.customerId, start_time: hour, end_time: hour + 3600, value_grouping_window: 'hour',
  }));
  const total = summaries.data.reduce((sum, x) => sum + x.aggregated_value, 0);
  if (total === 0) return 'not-counted';
  return total === Number(d.value) ? 'counted' : 'unknown';
}

/** Pushes one window (steps 1 to 4). */
export async function pushWindow(run: PushRun, w: ClosedWindow, tenant: TenantRecord | undefined): Promise<void> {
  const d = decide(w, run.config.meters.get(w.metric), tenant, run.nowMs());
  if (d.kind === 'defer') return defer(run, w, d.reason);
  if (d.kind === 'final') return recordFinal(run, w, d.disposition, d.reason, false, { value: d.value });

  const identifier = meterEventIdentifier(run.config.prefix, w.windowId);
  const claimed = await claim(run, w, d, identifier);
  if (claimed === 'final') {
    run.tally.alreadyPushed++;
    await clearPending(run, w.windowId);
    return;
  }
  if (claimed.firstAttemptAt && run.nowMs() - Date.parse(claimed.firstAttemptAt) > IDEMPOTENCY_SAFE_MS) {
    // Stripe's dedup of this identifier may have expired: ask Stripe what it counted before sending again.
    const found = await countedByStripe(run, d);
    if (found === 'counted') {
      return recordFinal(run, w, 'SENT', 'an earlier attempt was counted (the meter\'s event summary for this customer and hour holds the value)', true,
        { sentAt: new Date(run.nowMs()).toISOString() });
    }
    if (found === 'unknown') {
      return recordFinal(run, w, 'UNCERTAIN', `first attempted ${claimed.firstAttemptAt}, beyond Stripe's 24-hour identifier dedup, and the meter's `
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
        event_name: d.eventName,
        identifier,
        timestamp: d.timestamp,
        payload: { stripe_customer_id: d.customerId, value: d.value },
      }, { idempotencyKey: meterEventKey(identifier, serverErrors) });
    });
  } catch (error) {
    if (isDuplicateIdentifier(error)) {
      // An earlier attempt was counted (its answer was lost): delivered.
      run.tally.unavailableStreak = 0;
      return recordFinal(run, w, 'SENT', 'Stripe already held this identifier (an earlier attempt was counted)', true,
        { sentAt: new Date(run.nowMs()).toISOString() });
    }
    const kind = failureKind(error);
    if (kind === 'refused') {
      return recordFinal(run, w, 'REJECTED', `Stripe refused the meter event: ${(error as Error).message}`.slice(0, 1000), true, describeFailure(error));
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
  await recordFinal(run, w, 'SENT', 'meter event accepted', true, { sentAt: new Date(run.nowMs()).toISOString() });
}

class UnreadMarkers extends Error {
  constructor(n: number) {
    super(`BatchGetItem left ${n} pushed markers unread`);
  }
}

/**
 * The windows whose marker is final already (one BatchGetItem per 100
 * windows): a re-read page and an offboarding's final push skip them without a write.
 */
async function finalWindowIds(run: PushRun, windows: readonly ClosedWindow[]): Promise<Set<string>> {
  const final = new Set<string>();
  for (let i = 0; i < windows.length; i += 100) {
    let keys: Record<string, unknown>[] = [...new Set(windows.slice(i, i + 100).map((w) => w.windowId))].map(markerKey);
    await withRetry(async () => {
      const res = await doc().send(new BatchGetCommand({
        RequestItems: { [run.config.table]: { Keys: keys, ConsistentRead: true, ProjectionExpression: '#pk, #s', ExpressionAttributeNames: { '#pk': L.partitionKey, '#s': 'status' } } },
      }));
      for (const item of res.Responses?.[run.config.table] ?? []) {
        if (item.status !== 'SENDING') final.add(String(item[L.partitionKey]).slice(L.markerPrefix.length));
      }
      keys = (res.UnprocessedKeys?.[run.config.table]?.Keys ?? []) as Record<string, unknown>[];
      if (keys.length > 0) throw new UnreadMarkers(keys.length);
    }, { attempts: 8, baseDelayMs: 50, retryable: (e) => e instanceof UnreadMarkers });
  }
  return final;
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
  const final = await finalWindowIds(run, windows);
  const groups = new Map<string, ClosedWindow[]>();
  const ids = [...new Set(windows.map((w) => w.tenantId))];
  const tenants = new Map<string, TenantRecord | undefined>();
  await Promise.all(ids.map(async (id) => tenants.set(id, await tenantOf(run, id))));
  for (const w of windows) {
    if (final.has(w.windowId)) {
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
          await pushWindow(run, w, tenants.get(w.tenantId));
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
  const since = new Date(run.nowMs() - run.config.initialLookbackSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
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

const leaseKey = { [L.partitionKey]: L.statePartition, [L.sortKey]: L.leaseSortKey };

/**
 * Takes the push lease (one push at a time: the scheduled push and the final
 * push of an offboarding never send for the same customer and meter at once).
 * Returns a release function, or undefined when another run holds it.
 */
export async function acquireLease(run: PushRun, owner: string, holdMs: number): Promise<(() => Promise<void>) | undefined> {
  const now = run.nowMs();
  try {
    await doc().send(new PutCommand({
      TableName: run.config.table,
      Item: { ...leaseKey, owner, expiresAt: Math.ceil((now + holdMs) / 1000), takenAt: new Date(now).toISOString() },
      ConditionExpression: 'attribute_not_exists(#pk) OR expiresAt < :now OR #owner = :owner',
      ExpressionAttributeNames: { '#pk': L.partitionKey, '#owner': 'owner' },
      ExpressionAttributeValues: { ':now': Math.floor(now / 1000), ':owner': owner },
    }));
  } catch (error) {
    if (isConditionalCheckFailed(error)) return undefined;
    throw error;
  }
  return async () => {
    try {
      await doc().send(new DeleteCommand({
        TableName: run.config.table,
        Key: leaseKey,
        ConditionExpression: '#owner = :owner',
        ExpressionAttributeNames: { '#owner': 'owner' },
        ExpressionAttributeValues: { ':owner': owner },
      }));
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
    }
  };
}

/** The metric of the oldest deferred window. */
export function emitPendingAge(hours: number): void {
  metrics.addMetric(STRIPE_METRICS.OLDEST_PENDING_WINDOW_HOURS, MetricUnit.Count, Math.round(hours * 100) / 100);
}
