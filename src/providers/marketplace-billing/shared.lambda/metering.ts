/**
 * The metering push: each closed hourly window, read through the ingestor's usage read contract,
 * becomes one usage record of BatchMeterUsage, exactly once per subscriber (license), dimension
 * and hour, across crashes and reruns.
 *
 * Per window:
 * 1. **Decide** from the window, its dimension, its tenant and the tenant's subscription: meter it,
 *    put it aside for the next run (`PENDING`), or a final disposition recorded and never sent
 *    (`NO_DIMENSION`, `NO_REGISTRATION`, `AFTER_OFFBOARDING`, `AFTER_CANCELLATION`, `TOO_LATE`, `REJECTED`).
 * 2. **Reserve** its whole quantity and claim its record marker (`SENDING`), in one transaction
 *    with the monthly carry of its tenant and dimension: the record sends
 *    `round(month's exact + its exact) - month's units`, so a month bills the rounding of its total
 *    (`stripe-billing/shared.lambda/push.ts` does the same per billing period). A marker that
 *    exists already is this record's: a final one is skipped, a `SENDING` one is sent again with
 *    the quantity and timestamp it reserved (an identical record, which Marketplace takes once:
 *    "Identical requests are idempotent and can be retried with the same records or a subset of
 *    records", https://docs.aws.amazon.com/marketplace/latest/APIReference/API_marketplace-metering_BatchMeterUsage.html).
 * 3. **Send** the reserved records, at most 25 per BatchMeterUsage request (the same page).
 * 4. **Record** each result: `Success` → `SENT`, `DuplicateRecord` → `DUPLICATE_RECORD` (another
 *    quantity was metered for that hour), `CustomerNotSubscribed` → `NOT_SUBSCRIBED` (or, while the
 *    subscription is not confirmed yet, the next run), `UnprocessedRecords` → sent again (three
 *    times), then the next run. A request-level client error is isolated by sending its records one
 *    by one (`REJECTED` with the error, `TOO_LATE` for `TimestampOutOfBoundsException`).
 *
 * A crash anywhere leaves markers `SENDING` or windows unread: a rerun sends the same records again
 * (the markers are read before anything is reserved) and Marketplace answers `Success` to a repeat.
 * A record still `SENDING` when its acceptance window is over becomes `UNCERTAIN` (alarmed): it may
 * or may not have counted.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { BatchGetCommand, DeleteCommand, GetCommand, paginateQuery, PutCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { windowIdOf, type ClosedWindow, type UsageReader } from '../../../ingestor/shared.lambda/usage-reader';
import { documentClient } from '../../../shared.lambda/aws-clients';
import { addDecimals, DecimalError, multiplyDecimals, parseDecimal, roundDecimal, subtractDecimals, compareDecimals } from '../../../shared.lambda/decimal';
import { acquireLease as takeLease, cancellationCodes, isConditionalCheckFailed } from '../../../shared.lambda/dynamodb';
import { logger } from '../../../shared.lambda/logger';
import { sleep, withRetry } from '../../../shared.lambda/retry';
import { DimensionMapping, MARKETPLACE_METRICS as M, METERING_TABLE_LAYOUT as L } from '../contract';
import { MeteringConfig } from './config';
import { batchMeterUsage, errorName, isTransient, MeteringAnswer, UsageRecord } from './marketplace-api';
import { metrics } from './metrics';
import { getSubscriber, getTenant, SubscriberRecord, TenantRecord } from './registrations';

/** What the push needs of the usage read contract. */
export type UsageSource = Pick<UsageReader, 'readClosedWindows' | 'readTenantClosedWindows' | 'readOpenTotals'>;

/** A final disposition of a window (recorded on its record marker). */
export type Disposition = 'SENT' | 'ZERO' | 'NO_DIMENSION' | 'NO_REGISTRATION' | 'AFTER_OFFBOARDING' | 'AFTER_CANCELLATION'
| 'NOT_SUBSCRIBED' | 'DUPLICATE_RECORD' | 'TOO_LATE' | 'REJECTED' | 'UNCERTAIN';

/** Most usage records in one BatchMeterUsage request (its reference: "up to 25 UsageRecords at a time"). */
export const MAX_RECORDS_PER_REQUEST = 25;
/** The largest quantity of a usage record (`UsageQuantity`: an integer from 0 to 2147483647 in the service model). */
export const MAX_QUANTITY = 2_147_483_647;
/** A record is not sent later than this before its deadline (clock skew, the request's own time). */
export const SEND_MARGIN_MS = 5 * 60_000;
/** Closed windows read per page. */
export const PAGE_SIZE = 200;
/** Times records left in `UnprocessedRecords` are sent again within one run. */
const UNPROCESSED_ATTEMPTS = 3;
/** Tenant and metric groups reserved at once. */
const RESERVE_CONCURRENCY = 8;
/** Requests in a row Marketplace stays unavailable for before the run stops. */
const MAX_UNAVAILABLE = 3;

/** What one run did. */
export class MeterTally {
  public windowsRead = 0;
  public alreadyMetered = 0;
  public deferred = 0;
  public requests = 0;
  public unprocessedRetries = 0;
  public nearDeadline = 0;
  public usageAfterFinalMetering = 0;
  public zeroHoursSent = 0;
  public readonly dispositions: Record<Disposition, number> = {
    SENT: 0,
    ZERO: 0,
    NO_DIMENSION: 0,
    NO_REGISTRATION: 0,
    AFTER_OFFBOARDING: 0,
    AFTER_CANCELLATION: 0,
    NOT_SUBSCRIBED: 0,
    DUPLICATE_RECORD: 0,
    TOO_LATE: 0,
    REJECTED: 0,
    UNCERTAIN: 0,
  };
  /** Set when the run must stop (Marketplace unavailable). */
  public abort?: Error;
  public unavailableStreak = 0;

  public emit(): void {
    const d = this.dispositions;
    const counts: [string, number][] = [
      [M.RECORDS_SENT, d.SENT], [M.RECORDS_ZERO, d.ZERO], [M.WINDOWS_WITHOUT_DIMENSION, d.NO_DIMENSION],
      [M.WINDOWS_WITHOUT_REGISTRATION, d.NO_REGISTRATION], [M.WINDOWS_AFTER_CANCELLATION, d.AFTER_CANCELLATION + d.AFTER_OFFBOARDING],
      [M.RECORDS_NOT_SUBSCRIBED, d.NOT_SUBSCRIBED], [M.RECORDS_DUPLICATE, d.DUPLICATE_RECORD], [M.RECORDS_TOO_LATE, d.TOO_LATE],
      [M.RECORDS_REJECTED, d.REJECTED], [M.RECORDS_UNCERTAIN, d.UNCERTAIN], [M.RECORDS_DEFERRED, this.deferred],
      [M.METERING_REQUESTS, this.requests], [M.UNPROCESSED_RETRIES, this.unprocessedRetries],
      [M.USAGE_AFTER_FINAL_METERING, this.usageAfterFinalMetering], [M.ZERO_HOURS_SENT, this.zeroHoursSent],
    ];
    for (const [name, n] of counts) metrics.addMetric(name, MetricUnit.Count, n);
    metrics.addMetric(M.RECORDS_NEAR_DEADLINE, MetricUnit.Count, this.nearDeadline);
  }

  public summary() {
    return {
      windowsRead: this.windowsRead,
      alreadyMetered: this.alreadyMetered,
      deferred: this.deferred,
      requests: this.requests,
      unprocessedRetries: this.unprocessedRetries,
      nearDeadline: this.nearDeadline,
      zeroHoursSent: this.zeroHoursSent,
      usageAfterFinalMetering: this.usageAfterFinalMetering,
      ...this.dispositions,
    };
  }
}

/** A tenant as the push sees it: its record and its subscription. */
interface TenantView {
  readonly tenant?: TenantRecord;
  readonly subscriber?: SubscriberRecord;
}

/** One run: its configuration, clock, deadline and tally. */
export interface MeterRun {
  readonly config: MeteringConfig;
  readonly nowMs: () => number;
  readonly hasTimeLeft: () => boolean;
  readonly tally: MeterTally;
  readonly tenants: Map<string, Promise<TenantView>>;
  readonly carries: Map<string, Carry>;
  /** Windows read from the pending partition: their pending item is deleted once they are final. */
  readonly pendingIds: Set<string>;
}

/** A monthly carry (see `METERING_TABLE_LAYOUT`). */
interface Carry {
  readonly exact: string;
  readonly units: string;
  readonly version: number;
}

/** A new run. */
export function newRun(config: MeteringConfig, hasTimeLeft: () => boolean = () => true, nowMs: () => number = Date.now): MeterRun {
  return { config, nowMs, hasTimeLeft, tally: new MeterTally(), tenants: new Map(), carries: new Map(), pendingIds: new Set() };
}

const doc = () => documentClient();
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.000Z$/, 'Z');

/** The partition of a record marker. */
export function recordPartition(subscriber: string, dimension: string): string {
  return `${L.recordPrefix}${subscriber}#${dimension}`;
}
const markerKey = (subscriber: string, dimension: string, hour: string) =>
  ({ [L.partitionKey]: recordPartition(subscriber, dimension), [L.sortKey]: hour });
const pendingKey = (windowId: string) => ({ [L.partitionKey]: L.pendingPartition, [L.sortKey]: windowId });
const carryKey = (tenantId: string, dimension: string, month: string) => ({ [L.partitionKey]: `${L.carryPrefix}${tenantId}`, [L.sortKey]: `${dimension}#${month}` });

/**
 * The last moment Marketplace accepts a record of the hour starting at `hourStartMs`: the
 * acceptance window after it, and never later than 06:00 UTC on the first day of the next month
 * ("we accept usage records for the previous billing month until 06:00 UTC on the first day of the
 * next month", BatchMeterUsage in the current AWS SDK service model).
 */
export function deadlineOf(hourStartMs: number, acceptanceSeconds: number): number {
  const d = new Date(hourStartMs);
  const monthCutoff = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1, 6);
  return Math.min(hourStartMs + acceptanceSeconds * 1000, monthCutoff);
}

/** A window's exact value in the dimension's units, or why it cannot be metered. */
export function exactValue(sum: string, dimension: Pick<DimensionMapping, 'multiplier'>): { exact: string } | { problem: string } {
  try {
    const exact = multiplyDecimals(parseDecimal(sum, { allowNegative: true }), dimension.multiplier);
    if (exact.startsWith('-')) return { problem: `value ${exact} is negative: usage records take quantities of 0 or more` };
    return { exact };
  } catch (error) {
    if (error instanceof DecimalError) return { problem: `window sum is not a decimal: ${error.message}` };
    throw error;
  }
}

/** A window to meter, and the record it becomes. */
interface Meterable {
  readonly window: ClosedWindow;
  readonly tenantId: string;
  readonly subscriber: string;
  readonly dimension: DimensionMapping;
  readonly hour: string;
  readonly deadlineMs: number;
  readonly exact: string;
  readonly identity: Pick<UsageRecord, 'CustomerAWSAccountId' | 'LicenseArn' | 'CustomerIdentifier'>;
  /** The running total of an open hour, sent by a cancellation's final metering. */
  readonly partial: boolean;
  /** The subscription is not confirmed yet: CustomerNotSubscribed means "not yet". */
  readonly unconfirmed: boolean;
}

type Decision =
  | { readonly kind: 'meter'; readonly m: Meterable }
  | { readonly kind: 'final'; readonly disposition: Disposition; readonly reason: string; readonly subscriber?: string; readonly dimension?: string }
  | { readonly kind: 'defer'; readonly reason: string; readonly deadlineMs: number };

/** The identity fields of a tenant's records: `CustomerAWSAccountId` and `LicenseArn`, or `CustomerIdentifier` for a registration without them. */
export function identityOf(t: Pick<TenantRecord, 'licenseArn' | 'customerAWSAccountId' | 'customerIdentifier'>): Meterable['identity'] {
  if (t.licenseArn && t.customerAWSAccountId) return { CustomerAWSAccountId: t.customerAWSAccountId, LicenseArn: t.licenseArn };
  // BatchMeterUsage: CustomerIdentifier and CustomerAWSAccountId are mutually exclusive in one record.
  return { CustomerIdentifier: t.customerIdentifier };
}

/** Decides what to do with a window (step 1), from data only. */
export function decide(w: ClosedWindow, config: MeteringConfig, view: TenantView, nowMs: number, partial = false): Decision {
  const dimension = config.dimensions.get(w.metric);
  const hourMs = Date.parse(w.windowStart);
  const deadlineMs = deadlineOf(hourMs, config.acceptanceSeconds);
  const { tenant, subscriber } = view;
  if (!dimension) return { kind: 'final', disposition: 'NO_DIMENSION', reason: `no dimension maps metric '${w.metric}'` };
  if (w.granularity !== 'HOUR') return { kind: 'final', disposition: 'REJECTED', reason: `a ${w.granularity} window: AWS Marketplace meters hours` };
  if (!tenant) return { kind: 'final', disposition: 'NO_REGISTRATION', reason: 'the tenant is not linked to a Marketplace registration' };
  const subscriberId = tenant.subscriber;
  const final = (disposition: Disposition, reason: string): Decision => ({ kind: 'final', disposition, reason, subscriber: subscriberId, dimension: dimension.dimension });
  if (tenant.offboardedAt && hourMs >= Date.parse(tenant.offboardedAt) && tenant.status === 'OFFBOARDED') {
    return final('AFTER_OFFBOARDING', `usage after the tenant's offboarding at ${tenant.offboardedAt}`);
  }
  // After a cancellation, Marketplace takes the license's usage until `meterUntil` (its final metering).
  if (subscriber?.meterUntil ? nowMs > Date.parse(subscriber.meterUntil) : subscriber?.state === 'CANCELLED') {
    return final('AFTER_CANCELLATION', 'the subscription was cancelled and its final metering is over');
  }
  const v = exactValue(w.sum, dimension);
  if ('problem' in v) return final('REJECTED', v.problem);
  if (nowMs >= deadlineMs - SEND_MARGIN_MS) return final('TOO_LATE', `the hour's acceptance window ended at ${iso(deadlineMs)}`);
  const identity = identityOf(tenant);
  if (!identity.LicenseArn && !identity.CustomerIdentifier) return final('NO_REGISTRATION', 'the registration has neither a license nor a customer identifier');
  return {
    kind: 'meter',
    m: {
      window: w,
      tenantId: tenant.tenantId,
      subscriber: subscriberId,
      dimension,
      hour: iso(hourMs),
      deadlineMs,
      exact: v.exact,
      identity,
      partial,
      unconfirmed: !subscriber || subscriber.state === 'PENDING',
    },
  };
}

function tenantView(run: MeterRun, tenantId: string): Promise<TenantView> {
  let v = run.tenants.get(tenantId);
  if (!v) {
    v = (async () => {
      const tenant = await getTenant(run.config.registrationsTable, tenantId);
      const subscriber = tenant ? await getSubscriber(run.config.registrationsTable, tenant.subscriber) : undefined;
      return { tenant, subscriber };
    })();
    run.tenants.set(tenantId, v);
  }
  return v;
}

/** A reserved record, ready to send (reserved now, or by an earlier attempt). */
interface Reserved {
  readonly m: Meterable;
  readonly record: UsageRecord;
}

/** What a record marker says before the window is metered. */
interface MarkerState {
  readonly status: string;
  readonly quantity?: number;
  readonly timestamp?: string;
  readonly exact?: string;
  readonly partial?: boolean;
}

/** The windows' record markers, read 100 at a time (BatchGetItem). */
async function readMarkers(run: MeterRun, keys: { id: string; key: Record<string, string> }[]): Promise<Map<string, MarkerState>> {
  const states = new Map<string, MarkerState>();
  const byKey = new Map(keys.map((k) => [JSON.stringify(k.key), k.id]));
  for (let i = 0; i < keys.length; i += 100) {
    let pending = [...new Map(keys.slice(i, i + 100).map((k) => [JSON.stringify(k.key), k.key])).values()];
    await withRetry(async () => {
      const res = await doc().send(new BatchGetCommand({
        RequestItems: { [run.config.meteringTable]: { Keys: pending, ConsistentRead: true } },
      }));
      for (const item of res.Responses?.[run.config.meteringTable] ?? []) {
        const id = byKey.get(JSON.stringify({ [L.partitionKey]: item[L.partitionKey], [L.sortKey]: item[L.sortKey] }));
        if (id) {
          states.set(id, {
            status: String(item.status),
            quantity: item.quantity === undefined ? undefined : Number(String(item.quantity)),
            timestamp: item.timestamp as string | undefined,
            exact: item.exact === undefined ? undefined : String(item.exact),
            partial: item.partial === true,
          });
        }
      }
      pending = (res.UnprocessedKeys?.[run.config.meteringTable]?.Keys ?? []) as Record<string, string>[];
      if (pending.length > 0) throw Object.assign(new Error(`${pending.length} markers unread`), { name: 'UnreadMarkers' });
    }, { attempts: 8, baseDelayMs: 50, retryable: (e) => errorName(e) === 'UnreadMarkers' });
  }
  return states;
}

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

function windowOf(data: Record<string, unknown>, windowId: string): ClosedWindow {
  const closedAt = String(data.closedAt ?? data.windowEnd);
  return { ...data, sum: String(data.sum), count: Number(String(data.count)), windowId, closedAt } as ClosedWindow;
}

function recordOf(m: Meterable, quantity: number, timestamp: string): UsageRecord {
  return { Timestamp: new Date(timestamp), Dimension: m.dimension.dimension, Quantity: quantity, ...m.identity };
}

/**
 * Meters windows (steps 1 to 4): decides each, reserves the meterable ones, sends them 25 at a
 * time. Returns false when the run stopped before the end (deadline, Marketplace unavailable).
 */
export async function meterWindows(run: MeterRun, windows: readonly ClosedWindow[], opts: { partial?: boolean } = {}): Promise<boolean> {
  run.tally.windowsRead += windows.length;
  const decisions = new Map<string, Decision>();
  await forEachLimited([...new Set(windows.map((w) => w.tenantId))], RESERVE_CONCURRENCY, async (id) => void await tenantView(run, id));
  for (const w of windows) decisions.set(w.windowId, decide(w, run.config, await tenantView(run, w.tenantId), run.nowMs(), opts.partial));
  const keyed = windows.map((w) => {
    const d = decisions.get(w.windowId)!;
    const subscriber = d.kind === 'meter' ? d.m.subscriber : d.kind === 'final' ? d.subscriber : undefined;
    const dimension = d.kind === 'meter' ? d.m.dimension.dimension : d.kind === 'final' ? d.dimension : undefined;
    return { id: w.windowId, key: markerKey(subscriber ?? `tenant:${w.tenantId}`, dimension ?? `metric:${w.metric}`, iso(Date.parse(w.windowStart))) };
  });
  const markers = await readMarkers(run, keyed);
  const ready: Reserved[] = [];
  // Windows of one tenant and metric share a monthly carry: one after another; different ones at once.
  const groups = new Map<string, ClosedWindow[]>();
  for (const w of windows) {
    const k = `${w.tenantId}|${w.metric}`;
    groups.set(k, [...(groups.get(k) ?? []), w]);
  }
  let stopped = false;
  await forEachLimited([...groups.values()], RESERVE_CONCURRENCY, async (group) => {
    for (const w of group) {
      if (run.tally.abort || !run.hasTimeLeft()) {
        stopped = true;
        return;
      }
      const r = await prepare(run, w, decisions.get(w.windowId)!, markers.get(w.windowId), keyed.find((x) => x.id === w.windowId)!.key, opts);
      if (r) ready.push(r);
    }
  });
  // Sent in the order read, whatever order the reservations finished in.
  const order = new Map(windows.map((w, i) => [w.windowId, i]));
  ready.sort((a, b) => order.get(a.m.window.windowId)! - order.get(b.m.window.windowId)!);
  for (let i = 0; i < ready.length; i += MAX_RECORDS_PER_REQUEST) {
    if (run.tally.abort) {
      for (const r of ready.slice(i)) await defer(run, r.m.window, 'the run stopped: Marketplace unavailable', r.m.deadlineMs);
      return false;
    }
    await sendBatch(run, ready.slice(i, i + MAX_RECORDS_PER_REQUEST));
  }
  return !run.tally.abort && !stopped;
}

/** Decides one window's fate before sending: skipped, recorded final, or reserved (returned). */
async function prepare(
  run: MeterRun, w: ClosedWindow, d: Decision, marker: MarkerState | undefined, key: Record<string, string>, opts: { partial?: boolean },
): Promise<Reserved | undefined> {
  if (marker && marker.status !== 'SENDING') {
    run.tally.alreadyMetered++;
    if ((marker.partial || marker.exact === '0') && d.kind === 'meter' && !opts.partial && marker.exact !== undefined && compareDecimals(d.m.exact, marker.exact) > 0) {
      // The hour was metered before its window closed (a cancellation's final metering, or a zero hour): usage counted after it is not billed.
      run.tally.usageAfterFinalMetering++;
      logger.warn('Usage counted after its hour was metered: not billed', { windowId: w.windowId, sent: marker.exact, closed: d.m.exact });
    }
    await clearPending(run, w.windowId);
    return undefined;
  }
  if (marker?.status === 'SENDING' && d.kind === 'meter') {
    // Reserved by an interrupted attempt: the identical record again.
    return { m: d.m, record: recordOf(d.m, marker.quantity!, marker.timestamp!) };
  }
  if (marker?.status === 'SENDING') {
    // Reserved, never answered, and no longer meterable (its deadline passed, the subscription ended).
    await recordMarker(run, w, key, 'UNCERTAIN', `sent without an answer, then ${d.kind === 'meter' ? 'meterable again' : d.reason}`, true);
    return undefined;
  }
  if (d.kind === 'final') {
    await recordMarker(run, w, key, d.disposition, d.reason, false);
    return undefined;
  }
  if (d.kind === 'defer') {
    await defer(run, w, d.reason, d.deadlineMs);
    return undefined;
  }
  const reserved = await reserve(run, d.m);
  if (reserved === 'final') {
    run.tally.alreadyMetered++;
    await clearPending(run, w.windowId);
    return undefined;
  }
  if (reserved === 'zero') {
    run.tally.dispositions.ZERO++;
    await clearPending(run, w.windowId);
    return undefined;
  }
  return reserved;
}

/** Runs `work` over `items`, at most `limit` at once; every worker is awaited, a failure is thrown after. */
async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  const results = await Promise.allSettled(Array.from({ length: Math.min(limit, queue.length) }, async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await work(item);
  }));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** Reserves a window's quantity and claims its marker, with the month's carry, in one transaction (step 2). */
async function reserve(run: MeterRun, m: Meterable): Promise<Reserved | 'zero' | 'final'> {
  const month = m.hour.slice(0, 7);
  const key = carryKey(m.tenantId, m.dimension.dimension, month);
  const id = `${m.tenantId}|${m.dimension.dimension}|${month}`;
  for (let attempt = 1; ; attempt++) {
    let carry = run.carries.get(id);
    if (!carry) {
      const got = await doc().send(new GetCommand({ TableName: run.config.meteringTable, Key: key, ConsistentRead: true }));
      carry = got.Item ? { exact: String(got.Item.exact), units: String(got.Item.units), version: Number(String(got.Item.version)) } : { exact: '0', units: '0', version: 0 };
      run.carries.set(id, carry);
    }
    const exact = addDecimals(carry.exact, m.exact);
    const units = roundDecimal(exact, 0, m.dimension.rounding);
    const share = subtractDecimals(units, carry.units);
    const quantity = share.startsWith('-') ? 0 : Number(share);
    if (quantity > MAX_QUANTITY) {
      await recordMarker(run, m.window, markerKey(m.subscriber, m.dimension.dimension, m.hour), 'REJECTED',
        `quantity ${share} is more than the ${MAX_QUANTITY} a usage record takes: lower the dimension's multiplier`, false);
      return 'final';
    }
    const zero = quantity === 0 && !run.config.reportZeroHours;
    const now = iso(run.nowMs());
    const next: Carry = { exact, units: share.startsWith('-') ? carry.units : units, version: carry.version + 1 };
    const fields = {
      ':w': windowFields(m.window),
      ':wid': m.window.windowId,
      ':t': m.tenantId,
      ':x': m.exact,
      ':q': quantity,
      ':ts': m.hour,
      ':dl': iso(m.deadlineMs),
      ':now': now,
      ':p': m.partial,
      ':id': m.identity,
    };
    const marker = zero
      ? {
        UpdateExpression: 'SET #s = :zero, #r = :r, decidedAt = :now, windowData = :w, windowId = :wid, tenantId = :t, #x = :x, #q = :q, #ts = :ts, #dl = :dl, #p = :p, #idn = :id',
        values: { ...fields, ':zero': 'ZERO', ':r': `its share of the month's rounded total is 0 (${m.exact} carried)` },
      }
      : {
        UpdateExpression: 'SET #s = :sending, reservedAt = :now, windowData = :w, windowId = :wid, tenantId = :t, #x = :x, #q = :q, #ts = :ts, #dl = :dl, #p = :p, #idn = :id',
        values: { ...fields, ':sending': 'SENDING' },
      };
    try {
      await doc().send(new TransactWriteCommand({
        TransactItems: [
          {
            Update: {
              TableName: run.config.meteringTable,
              Key: markerKey(m.subscriber, m.dimension.dimension, m.hour),
              UpdateExpression: marker.UpdateExpression,
              ConditionExpression: 'attribute_not_exists(#s)',
              ExpressionAttributeNames: {
                '#s': 'status', '#ts': 'timestamp', '#x': 'exact', '#q': 'quantity', '#dl': 'deadline', '#p': 'partial', '#idn': 'identity', ...(zero ? { '#r': 'reason' } : {}),
              },
              ExpressionAttributeValues: marker.values,
            },
          },
          {
            Update: {
              TableName: run.config.meteringTable,
              Key: key,
              UpdateExpression: 'SET #x = :e, units = :u, version = :nv, updatedAt = :now',
              ExpressionAttributeNames: { '#x': 'exact' },
              ConditionExpression: carry.version === 0 ? 'attribute_not_exists(version)' : 'version = :ov',
              ExpressionAttributeValues: { ':e': next.exact, ':u': next.units, ':nv': next.version, ':now': now, ...(carry.version === 0 ? {} : { ':ov': carry.version }) },
            },
          },
        ],
      }));
    } catch (error) {
      const codes = cancellationCodes(error);
      if (!codes) throw error;
      if (codes[0] === 'ConditionalCheckFailed') {
        // Reserved concurrently (another run, a cancellation's final metering): read what it reserved.
        const key_ = markerKey(m.subscriber, m.dimension.dimension, m.hour);
        const got = await doc().send(new GetCommand({ TableName: run.config.meteringTable, Key: key_, ConsistentRead: true }));
        if (got.Item?.status === 'SENDING') return { m, record: recordOf(m, Number(String(got.Item.quantity)), String(got.Item.timestamp)) };
        return 'final';
      }
      if ((codes[1] === 'ConditionalCheckFailed' || codes.includes('TransactionConflict')) && attempt < 8) {
        run.carries.delete(id); // another writer moved the carry: read it again
        continue;
      }
      throw error;
    }
    run.carries.set(id, next);
    return zero ? 'zero' : { m, record: recordOf(m, quantity, m.hour) };
  }
}

const recordId = (r: UsageRecord) => JSON.stringify([r.LicenseArn ?? '', r.CustomerAWSAccountId ?? '', r.CustomerIdentifier ?? '', r.Dimension, new Date(r.Timestamp).getTime()]);

/** Sends reserved records in one request and records each answer (steps 3 and 4). */
async function sendBatch(run: MeterRun, batch: readonly Reserved[]): Promise<void> {
  let pending = [...batch];
  for (let attempt = 0; pending.length > 0; attempt++) {
    let answer: MeteringAnswer;
    try {
      run.tally.requests++;
      answer = await batchMeterUsage(pending.map((r) => r.record), productCodeFor(run, pending));
    } catch (error) {
      if (isTransient(error)) {
        run.tally.unavailableStreak++;
        if (run.tally.unavailableStreak >= MAX_UNAVAILABLE) run.tally.abort ??= new Error(`AWS Marketplace stayed unavailable (${errorName(error)}): stopping this run`);
        for (const r of pending) await defer(run, r.m.window, `Marketplace unavailable (${errorName(error)})`, r.m.deadlineMs);
        return;
      }
      if (pending.length > 1 && errorName(error) !== 'AccessDeniedException' && errorName(error) !== 'UnrecognizedClientException') {
        // A request-level client error names no record: send each alone to find the one it is about.
        for (const r of pending) await sendBatch(run, [r]);
        return;
      }
      if (pending.length === 1) {
        const name = errorName(error);
        const r = pending[0];
        await recordSent(run, r, name === 'TimestampOutOfBoundsException' ? 'TOO_LATE' : 'REJECTED',
          `AWS Marketplace refused the record: ${name}: ${(error as Error).message}`.slice(0, 1000));
        return;
      }
      run.tally.abort ??= error as Error;
      throw error;
    }
    run.tally.unavailableStreak = 0;
    const byId = new Map(pending.map((r) => [recordId(r.record), r]));
    for (const result of answer.results) {
      const r = byId.get(recordId(result.record));
      if (!r) continue;
      byId.delete(recordId(result.record));
      if (result.status === 'Success') {
        await recordSent(run, r, 'SENT', 'accepted by AWS Marketplace', { meteringRecordId: result.meteringRecordId });
      } else if (result.status === 'DuplicateRecord') {
        await recordSent(run, r, 'DUPLICATE_RECORD', 'AWS Marketplace holds another quantity for this license, dimension and hour');
      } else if (result.status === 'CustomerNotSubscribed' && r.m.unconfirmed && run.nowMs() < r.m.deadlineMs - SEND_MARGIN_MS) {
        // The agreement may not be active yet: Marketplace decides eligibility when it meters; try again next run.
        await defer(run, r.m.window, 'CustomerNotSubscribed while the subscription is not confirmed yet', r.m.deadlineMs);
      } else {
        await recordSent(run, r, result.status === 'CustomerNotSubscribed' ? 'NOT_SUBSCRIBED' : 'REJECTED', `AWS Marketplace answered ${result.status}`);
      }
    }
    // Records in UnprocessedRecords (or in no list at all) were not processed: send them again.
    pending = [...byId.values()];
    if (pending.length === 0) return;
    if (attempt + 1 >= UNPROCESSED_ATTEMPTS) {
      for (const r of pending) await defer(run, r.m.window, 'left unprocessed by AWS Marketplace', r.m.deadlineMs);
      return;
    }
    run.tally.unprocessedRetries += pending.length;
    await sleep(Math.min(2000, 100 * 2 ** attempt) * Math.random());
  }
}

/** Records with a license need no product code; a request with a customer-identifier record names the product. */
function productCodeFor(run: MeterRun, batch: readonly Reserved[]): string | undefined {
  return batch.some((r) => !r.record.LicenseArn) ? run.config.productCode : undefined;
}

/** Records the answer to a reserved record (its marker is `SENDING`). */
async function recordSent(run: MeterRun, r: Reserved, disposition: Disposition, reason: string, extra: Record<string, unknown> = {}): Promise<void> {
  await recordMarker(run, r.m.window, markerKey(r.m.subscriber, r.m.dimension.dimension, r.m.hour), disposition, reason, true, extra);
}

/**
 * Records a final disposition on a marker. `claimed`: the marker is `SENDING` (reserved and sent);
 * otherwise it is recorded only where no marker exists.
 */
async function recordMarker(
  run: MeterRun, w: ClosedWindow, key: Record<string, string>, disposition: Disposition, reason: string, claimed: boolean,
  extra: Record<string, unknown> = {},
): Promise<void> {
  const fields = Object.entries(extra).filter(([, v]) => v !== undefined);
  try {
    await doc().send(new UpdateCommand({
      TableName: run.config.meteringTable,
      Key: key,
      UpdateExpression: `SET #s = :s, #r = :r, decidedAt = :now, windowData = if_not_exists(windowData, :w), windowId = if_not_exists(windowId, :wid)${fields.map((_, i) => `, #x${i} = :x${i}`).join('')}`,
      ConditionExpression: claimed ? '#s = :sending' : 'attribute_not_exists(#s)',
      ExpressionAttributeNames: { '#s': 'status', '#r': 'reason', ...Object.fromEntries(fields.map(([k], i) => [`#x${i}`, k])) },
      ExpressionAttributeValues: {
        ':s': disposition,
        ':r': reason,
        ':now': iso(run.nowMs()),
        ':w': windowFields(w),
        ':wid': w.windowId,
        ...(claimed ? { ':sending': 'SENDING' } : {}),
        ...Object.fromEntries(fields.map(([, v], i) => [`:x${i}`, v])),
      },
    }));
    run.tally.dispositions[disposition]++;
    if (!['SENT', 'ZERO', 'NO_DIMENSION', 'NO_REGISTRATION', 'AFTER_OFFBOARDING', 'AFTER_CANCELLATION'].includes(disposition)) {
      logger.warn('Usage record not billed', { windowId: w.windowId, tenantId: w.tenantId, metric: w.metric, disposition, reason });
    }
  } catch (error) {
    if (!isConditionalCheckFailed(error)) throw error;
    run.tally.alreadyMetered++; // recorded by a concurrent or earlier run
  }
  await clearPending(run, w.windowId);
}

async function clearPending(run: MeterRun, windowId: string): Promise<void> {
  if (!run.pendingIds.has(windowId)) return;
  await doc().send(new DeleteCommand({ TableName: run.config.meteringTable, Key: pendingKey(windowId) }));
  run.pendingIds.delete(windowId);
}

/** Puts a window aside for the next run. */
async function defer(run: MeterRun, w: ClosedWindow, reason: string, deadlineMs: number): Promise<void> {
  await doc().send(new UpdateCommand({
    TableName: run.config.meteringTable,
    Key: pendingKey(w.windowId),
    UpdateExpression: 'SET windowData = :w, windowId = :id, #r = :r, #dl = :dl, deferredAt = if_not_exists(deferredAt, :now)',
    ExpressionAttributeNames: { '#r': 'reason', '#dl': 'deadline' },
    ExpressionAttributeValues: { ':w': windowFields(w), ':id': w.windowId, ':r': reason, ':dl': iso(deadlineMs), ':now': iso(run.nowMs()) },
  }));
  run.pendingIds.delete(w.windowId); // kept: it is pending again
  run.tally.deferred++;
  logger.info('Usage record deferred to the next run', { windowId: w.windowId, reason });
}

/** Meters the windows put aside by earlier runs; counts those near their deadline. */
export async function meterPendingWindows(run: MeterRun): Promise<boolean> {
  const windows: ClosedWindow[] = [];
  for await (const page of paginateQuery({ client: doc() }, {
    TableName: run.config.meteringTable,
    KeyConditionExpression: '#pk = :p',
    ExpressionAttributeNames: { '#pk': L.partitionKey },
    ExpressionAttributeValues: { ':p': L.pendingPartition },
    ConsistentRead: true,
  })) {
    for (const item of page.Items ?? []) {
      run.pendingIds.add(String(item.windowId));
      windows.push(windowOf(item.windowData as Record<string, unknown>, String(item.windowId)));
    }
  }
  for (let i = 0; i < windows.length; i += PAGE_SIZE) {
    if (!(await meterWindows(run, windows.slice(i, i + PAGE_SIZE)))) return false;
  }
  return true;
}

/** Counts the records still pending with less than the warning time before their deadline (the near-deadline alarm's metric). */
export async function countNearDeadline(run: MeterRun): Promise<number> {
  let near = 0;
  const warnBefore = run.nowMs() + run.config.warningSeconds * 1000;
  for await (const page of paginateQuery({ client: doc() }, {
    TableName: run.config.meteringTable,
    KeyConditionExpression: '#pk = :p',
    ExpressionAttributeValues: { ':p': L.pendingPartition },
    ProjectionExpression: '#dl',
    ExpressionAttributeNames: { '#pk': L.partitionKey, '#dl': 'deadline' },
  })) {
    for (const item of page.Items ?? []) if (Date.parse(String(item.deadline)) <= warnBefore) near++;
  }
  run.tally.nearDeadline = near;
  return near;
}

const cursorKey = { [L.partitionKey]: L.statePartition, [L.sortKey]: L.cursorSortKey };

/** Meters the windows closed since the stored cursor, page by page; the cursor is stored after each page. */
export async function meterNewWindows(run: MeterRun, reader: Pick<UsageSource, 'readClosedWindows'>): Promise<boolean> {
  const state = await doc().send(new GetCommand({ TableName: run.config.meteringTable, Key: cursorKey, ConsistentRead: true }));
  let cursor = state.Item?.cursor as string | undefined;
  const since = new Date(run.nowMs() - run.config.initialLookbackSeconds * 1000).toISOString();
  for (;;) {
    if (!run.hasTimeLeft()) return false;
    const page = await reader.readClosedWindows(cursor ? { cursor, limit: PAGE_SIZE } : { since, limit: PAGE_SIZE });
    if (!(await meterWindows(run, page.windows))) return false;
    if (page.cursor !== cursor) {
      const item = { ...cursorKey, cursor: page.cursor, updatedAt: iso(run.nowMs()) };
      await doc().send(new PutCommand({ TableName: run.config.meteringTable, Item: item }));
      cursor = page.cursor;
    }
    if (page.windows.length < PAGE_SIZE) return true;
  }
}

/**
 * A cancellation's final metering: the tenant's closed windows still within the acceptance window,
 * and the running totals of its open hours (Marketplace stops accepting the license's usage soon:
 * the open hours cannot wait for their windows to close). Returns the records sent.
 */
export async function meterFinal(run: MeterRun, tenantId: string, reader: UsageSource): Promise<number> {
  const before = run.tally.dispositions.SENT;
  const since = new Date(run.nowMs() - run.config.acceptanceSeconds * 1000).toISOString();
  const closed = await reader.readTenantClosedWindows(tenantId, { since });
  await meterWindows(run, closed);
  const closedIds = new Set(closed.map((w) => w.windowId));
  const open = (await reader.readOpenTotals(tenantId))
    .filter((t) => t.granularity === 'HOUR' && Date.parse(t.windowStart) <= run.nowMs())
    .map((t): ClosedWindow => ({
      tenantId,
      metric: t.metric,
      granularity: t.granularity,
      windowStart: t.windowStart,
      windowEnd: t.windowEnd,
      closedAt: iso(run.nowMs()),
      sum: t.sum,
      count: t.count,
      windowId: windowIdOf(tenantId, t.metric, t.granularity, t.windowStart),
    }))
    .filter((w) => !closedIds.has(w.windowId));
  if (open.length > 0) await meterWindows(run, open, { partial: true });
  if (run.tally.abort) throw run.tally.abort;
  return run.tally.dispositions.SENT - before;
}

const leaseKey = { [L.partitionKey]: L.statePartition, [L.sortKey]: L.leaseSortKey };

/** Takes the push lease (one scheduled run at a time). Returns a release function, or undefined when another run holds it. */
export async function acquireLease(run: MeterRun, owner: string, holdMs: number): Promise<(() => Promise<void>) | undefined> {
  return takeLease({
    client: doc(), tableName: run.config.meteringTable, key: leaseKey, partitionKeyName: L.partitionKey, owner, holdMs, nowMs: run.nowMs(),
  });
}
