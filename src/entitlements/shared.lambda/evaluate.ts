/**
 * What a tenant's running totals mean under its plan: threshold events, and
 * the blocked state.
 *
 * - **Threshold events.** For each entitlement of the metric in the tenant's
 *   current plan and each period evaluated: every threshold (and the limit, 100%)
 *   the total has reached gets its threshold event item, put on condition that
 *   it does not exist: once per tenant, metric, period, limit and percent,
 *   however many evaluations (redeliveries, concurrent batches, reruns after a
 *   crash) see the total past it. The entitlements table's stream and a pipe put
 *   each item on the bus.
 * - **Blocked state.** For a `BLOCK` limit, while its period is current: the
 *   tenant is blocked for the metric until the period's end when its total has
 *   reached the limit, and not blocked when it is under (a void took usage out,
 *   or the plan changed to a larger limit or to none). The access item is written
 *   in a transaction with condition checks that the totals and the plan it was
 *   decided from are still the ones read: a decision from stale totals never
 *   lands after one from newer totals. A period that rolls over needs no write:
 *   the block ends at the period's end.
 */
import { createHash } from 'crypto';
import { BatchGetCommand, GetCommand, PutCommand, QueryCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { isoSeconds } from './totals';
import { EntitlementDefinition, periodOf, TenantPlanRecord } from '../../plans/contract';
import { PlanReader } from '../../plans/shared.lambda/plan-reader';
import { documentClient } from '../../shared.lambda/aws-clients';
import { compareDecimals, multiplyDecimals, parseDecimal } from '../../shared.lambda/decimal';
import { cancellationCodes, isConditionalCheckFailed } from '../../shared.lambda/dynamodb';
import { backoffMs, sleep } from '../../shared.lambda/retry';
import {
  accessKey, blockedAttribute, periodBlockAttribute, THRESHOLD_ITEM_KINDS, thresholdKey, totalKey, totalsPk,
} from '../contract';

/** A period of an entitlement to evaluate. */
export interface PeriodRef {
  readonly period: string;
  readonly periodStartMs: number;
  readonly periodEndMs: number;
}

/** What evaluating did. */
export interface EvaluationSummary {
  /** Threshold event items written by this evaluation. */
  thresholdEvents: number;
  /** Access items changed (blocked or unblocked) by this evaluation. */
  accessChanges: number;
}

/** What `evaluate` needs. */
export interface EvaluateOptions {
  readonly tableName: string;
  readonly plans: PlanReader;
  readonly retentionSeconds: number;
  readonly now: () => number;
}

/** The tenant's plan record, read once per invocation per tenant. */
export type PlanCache = Map<string, Promise<TenantPlanRecord | undefined>>;

/** A threshold: a percentage of a limit, and the total that reaches it. */
function thresholdValue(limit: string, percent: number): string {
  return multiplyDecimals(limit, percent === 100 ? '1' : `0.${String(percent).padStart(2, '0')}`);
}

/** The deterministic id of a threshold event (SHA-256, base64url). */
export function thresholdEventId(tenantId: string, metric: string, period: string, periodStart: string, limit: string, percent: number): string {
  return createHash('sha256').update(JSON.stringify([tenantId, metric, period, periodStart, limit, percent])).digest('base64url');
}

/** The current period of each entitlement of a metric. */
export function currentPeriods(entitlements: readonly EntitlementDefinition[], nowMs: number, anchor?: string): PeriodRef[] {
  return entitlements.map((e) => {
    const b = periodOf(e.period, nowMs, anchor);
    return { period: e.period, periodStartMs: b.startMs, periodEndMs: b.endMs };
  });
}

/**
 * Evaluates a tenant's metric for the given periods (see the module comment).
 * `periods`: the periods whose totals changed (the ledger consumer), or the
 * current ones (the plan sync); a period of a kind the plan has no entitlement
 * of is skipped.
 */
export async function evaluate(
  opts: EvaluateOptions, tenantId: string, metric: string, periods: readonly PeriodRef[], cache: PlanCache,
): Promise<EvaluationSummary> {
  const summary: EvaluationSummary = { thresholdEvents: 0, accessChanges: 0 };
  let tenantPromise = cache.get(tenantId);
  if (!tenantPromise) cache.set(tenantId, (tenantPromise = opts.plans.tenant(tenantId)));
  const tenant = await tenantPromise;
  const entitlements = (tenant?.status === 'ACTIVE' ? opts.plans.definition(tenant.plan)?.metrics[metric]?.entitlements : undefined) ?? [];
  const totals = await readTotals(opts.tableName, tenantId, metric, periods);
  for (const e of entitlements) {
    for (const p of periods.filter((x) => x.period === e.period)) {
      summary.thresholdEvents += await announce(opts, tenant!, metric, e, p, totals.get(p.period)?.get(p.periodStartMs)?.used ?? '0');
    }
  }
  summary.accessChanges += await settleAccess(opts, tenantId, metric, cache);
  return summary;
}

interface TotalRead {
  readonly used: string;
  readonly version?: number;
}

/** The running totals of periods (consistent reads); an absent total is 0 at no version. */
async function readTotals(
  tableName: string, tenantId: string, metric: string, periods: readonly PeriodRef[],
): Promise<Map<string, Map<number, TotalRead>>> {
  const out = new Map<string, Map<number, TotalRead>>();
  const keys = periods.map((p) => totalKey(tenantId, metric, p.period, isoSeconds(p.periodStartMs)));
  for (let i = 0; i < keys.length; i += 100) {
    let request = keys.slice(i, i + 100);
    while (request.length > 0) {
      const res = await documentClient().send(new BatchGetCommand({ RequestItems: { [tableName]: { Keys: request, ConsistentRead: true } } }));
      for (const item of res.Responses?.[tableName] ?? []) {
        const byStart = out.get(String(item.period)) ?? new Map<number, TotalRead>();
        byStart.set(Date.parse(String(item.periodStart)), {
          used: parseDecimal(String(item.used), { allowNegative: true }),
          version: Number(String(item.version)),
        });
        out.set(String(item.period), byStart);
      }
      request = (res.UnprocessedKeys?.[tableName]?.Keys ?? []) as typeof request;
      if (request.length > 0) await sleep(backoffMs(1, 50));
    }
  }
  return out;
}

/** Writes the threshold event items the total has reached and that do not exist yet; returns how many this call wrote. */
async function announce(
  opts: EvaluateOptions, tenant: TenantPlanRecord, metric: string, e: EntitlementDefinition, p: PeriodRef, used: string,
): Promise<number> {
  const reached = [...e.thresholds, 100].filter((percent) => compareDecimals(used, thresholdValue(e.limit, percent)) >= 0);
  if (reached.length === 0 || compareDecimals(used, '0') === 0) return 0;
  const periodStart = isoSeconds(p.periodStartMs);
  const prefix = thresholdKey(tenant.tenantId, metric, p.period, periodStart, e.limit, 0).sk.replace(/0$/, '');
  const existing = await documentClient().send(new QueryCommand({
    TableName: opts.tableName,
    KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
    ExpressionAttributeValues: { ':pk': totalsPk(tenant.tenantId, metric), ':prefix': prefix },
    ProjectionExpression: 'sk',
    ConsistentRead: true,
  }));
  const written = new Set((existing.Items ?? []).map((i) => String(i.sk)));
  let count = 0;
  for (const percent of reached) {
    const key = thresholdKey(tenant.tenantId, metric, p.period, periodStart, e.limit, percent);
    if (written.has(key.sk)) continue;
    try {
      await documentClient().send(new PutCommand({
        TableName: opts.tableName,
        Item: {
          ...key,
          kind: percent === 100 ? THRESHOLD_ITEM_KINDS.LIMIT_REACHED : THRESHOLD_ITEM_KINDS.THRESHOLD_CROSSED,
          tenantId: tenant.tenantId,
          metric,
          plan: tenant.plan ?? '',
          period: p.period,
          periodStart,
          periodEnd: isoSeconds(p.periodEndMs),
          threshold: percent,
          thresholdValue: thresholdValue(e.limit, percent),
          total: used,
          limit: e.limit,
          onLimit: e.onLimit,
          eventId: thresholdEventId(tenant.tenantId, metric, p.period, periodStart, e.limit, percent),
          createdAt: new Date(opts.now()).toISOString(),
          expiresAt: Math.floor(p.periodEndMs / 1000) + opts.retentionSeconds,
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      }));
      count++;
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
    }
  }
  return count;
}

/**
 * Brings the tenant's access item in line with its totals and plan for a
 * metric: blocked until the end of each current period whose `BLOCK` limit the
 * total has reached, unblocked otherwise. Returns 1 when it changed the item.
 */
export async function settleAccess(opts: EvaluateOptions, tenantId: string, metric: string, cache: PlanCache): Promise<number> {
  for (let round = 0; round < 6; round++) {
    if (round > 0) {
      await sleep(backoffMs(round, 20, 500));
      cache.delete(tenantId);
    }
    let tenantPromise = cache.get(tenantId);
    if (!tenantPromise) cache.set(tenantId, (tenantPromise = opts.plans.tenant(tenantId)));
    const tenant = await tenantPromise;
    const nowMs = opts.now();
    const blocking = ((tenant?.status === 'ACTIVE' ? opts.plans.definition(tenant.plan)?.metrics[metric]?.entitlements : undefined) ?? [])
      .filter((e) => e.onLimit === 'BLOCK');
    const periods = currentPeriods(blocking, nowMs, tenant?.billingAnchor);
    const totals = await readTotals(opts.tableName, tenantId, metric, periods);
    const { Item: access } = await documentClient().send(new GetCommand({
      TableName: opts.tableName, Key: accessKey(tenantId), ConsistentRead: true,
    }));
    // Every period attribute of the metric the item holds, and every blocking period of the plan.
    const attributes = new Set(Object.keys(access ?? {}).filter((a) => a.startsWith(`b#${metric}#`)));
    const desired = new Map<string, number>();
    for (const a of attributes) desired.set(a, 0);
    const checks: Array<{ key: { pk: string; sk: string }; version?: number }> = [];
    blocking.forEach((e, i) => {
      const p = periods[i];
      const total = totals.get(p.period)?.get(p.periodStartMs);
      checks.push({ key: totalKey(tenantId, metric, p.period, isoSeconds(p.periodStartMs)), version: total?.version });
      const over = compareDecimals(total?.used ?? '0', e.limit) >= 0 && total !== undefined;
      desired.set(periodBlockAttribute(metric, e.period), over ? Math.floor(p.periodEndMs / 1000) : 0);
    });
    const changed = [...desired].filter(([a, v]) => Number(access?.[a] ?? 0) !== v);
    if (changed.length === 0) return 0;
    const until = Math.max(0, ...[...desired.values()]);
    const names: Record<string, string> = { '#blocked': blockedAttribute(metric) };
    const values: Record<string, unknown> = { ':blocked': until, ':now': new Date(nowMs).toISOString(), ':one': 1 };
    const sets = ['#blocked = :blocked', 'updatedAt = :now'];
    [...desired].forEach(([a, v], i) => {
      names[`#b${i}`] = a;
      values[`:b${i}`] = v;
      sets.push(`#b${i} = :b${i}`);
    });
    const readVersion = access?.ver === undefined ? undefined : Number(String(access.ver));
    if (readVersion !== undefined) values[':ver'] = readVersion;
    try {
      await documentClient().send(new TransactWriteCommand({
        TransactItems: [
          ...checks.map((c) => ({
            ConditionCheck: {
              TableName: opts.tableName,
              Key: c.key,
              ...(c.version === undefined
                ? { ConditionExpression: 'attribute_not_exists(pk)' }
                : { ConditionExpression: 'version = :v', ExpressionAttributeValues: { ':v': c.version } }),
            },
          })),
          { ConditionCheck: opts.plans.versionCheck(tenantId, tenant?.version) },
          {
            Update: {
              TableName: opts.tableName,
              Key: accessKey(tenantId),
              UpdateExpression: `SET ${sets.join(', ')}, tenantId = :t ADD ver :one`,
              ConditionExpression: readVersion === undefined ? 'attribute_not_exists(ver)' : 'ver = :ver',
              ExpressionAttributeNames: names,
              ExpressionAttributeValues: { ...values, ':t': tenantId },
            },
          },
        ],
      }));
      return 1;
    } catch (error) {
      const codes = cancellationCodes(error);
      if (!codes?.some((c) => c === 'ConditionalCheckFailed' || c === 'TransactionConflict')) throw error;
      // The totals, the plan or the access item changed since they were read: decide again.
    }
  }
  throw new Error(`Tenant ${tenantId}, ${metric}: its totals or plan kept changing while its access was decided; the batch will be retried`);
}
