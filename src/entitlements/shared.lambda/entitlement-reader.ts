/**
 * The entitlements read contract: a tenant's access to a metric (one GetItem of
 * its access item) and its balances (used, limit, remaining and the thresholds
 * crossed, for each entitlement of its current plan in the current period). A
 * function bound with `entitlements.bindEntitlementReader(fn)` gets the
 * environment `EntitlementReader.fromEnvironment()` reads and the read access.
 *
 * Handler-side module; it uses the AWS SDK v3.
 */
import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { currentPeriods } from './evaluate';
import { isoSeconds } from './totals';
import { PlanReader } from '../../plans/shared.lambda/plan-reader';
import { documentClient } from '../../shared.lambda/aws-clients';
import { compareDecimals, parseDecimal, subtractDecimals } from '../../shared.lambda/decimal';
import { accessKey, accessOf, blockedAttribute, ENTITLEMENT_READER_ENV, THRESHOLD_SK_PREFIX, totalKey, totalsPk } from '../contract';

/** What a tenant may do with a metric now. */
export type Access = 'ALLOWED' | 'BLOCKED' | 'UNKNOWN' | 'OFFBOARDED';

/** A tenant's balance of one entitlement in its current period. */
export interface EntitlementBalance {
  readonly metric: string;
  /** `HOUR`, `DAY`, `CALENDAR_MONTH` or `BILLING_PERIOD`. */
  readonly period: string;
  /** ISO-8601 to the second. */
  readonly periodStart: string;
  readonly periodEnd: string;
  /** Exact decimal strings. */
  readonly limit: string;
  readonly used: string;
  /** The limit less the usage, 0 once reached. */
  readonly remaining: string;
  /** The soft thresholds of the limit, in percent. */
  readonly thresholds: number[];
  /** The thresholds announced in this period (100: the limit). */
  readonly thresholdsCrossed: number[];
  /** `NOTIFY` or `BLOCK`. */
  readonly onLimit: string;
  /** Whether the tenant is blocked for the metric now (by this limit or another). */
  readonly blocked: boolean;
}

/** A tenant's entitlements now. */
export interface TenantEntitlements {
  readonly tenantId: string;
  readonly access: Access;
  /** Its plan (absent: none). */
  readonly plan?: string;
  readonly balances: EntitlementBalance[];
}

/** The entitlements read contract's reader. */
export class EntitlementReader {
  /** The reader of the entitlements bound to this function (`entitlements.bindEntitlementReader(fn)`). */
  public static fromEnvironment(env: Readonly<Record<string, string | undefined>> = process.env): EntitlementReader {
    const table = env[ENTITLEMENT_READER_ENV.TABLE_NAME];
    if (!table) throw new Error(`Environment variable ${ENTITLEMENT_READER_ENV.TABLE_NAME} is not set: bind this function with entitlements.bindEntitlementReader(fn)`);
    return new EntitlementReader(table, PlanReader.fromEnvironment(env));
  }

  constructor(private readonly tableName: string, private readonly plans: PlanReader) {}

  /** The tenant's access item as stored (undefined: unknown tenant): one GetItem. */
  public async accessItem(tenantId: string): Promise<Record<string, unknown> | undefined> {
    const { Item } = await documentClient().send(new GetCommand({ TableName: this.tableName, Key: accessKey(tenantId) }));
    return Item;
  }

  /** May the tenant use the metric now? One GetItem (eventually consistent). */
  public async access(tenantId: string, metric: string, nowMs: number = Date.now()): Promise<Access> {
    return accessOf(await this.accessItem(tenantId), metric, Math.floor(nowMs / 1000));
  }

  /** The tenant's access and its balances in the current periods of its plan's entitlements. */
  public async tenantEntitlements(tenantId: string, nowMs: number = Date.now()): Promise<TenantEntitlements> {
    const [tenant, item] = await Promise.all([this.plans.tenant(tenantId), this.accessItem(tenantId)]);
    const nowSeconds = Math.floor(nowMs / 1000);
    const definition = tenant?.status === 'ACTIVE' ? this.plans.definition(tenant.plan) : undefined;
    const balances: EntitlementBalance[] = [];
    for (const [metric, def] of Object.entries(definition?.metrics ?? {})) {
      const entitlements = def.entitlements ?? [];
      const periods = currentPeriods(entitlements, nowMs, tenant?.billingAnchor);
      for (const [i, e] of entitlements.entries()) {
        const p = periods[i];
        const periodStart = isoSeconds(p.periodStartMs);
        const key = totalKey(tenantId, metric, e.period, periodStart);
        const { Item: total } = await documentClient().send(new GetCommand({ TableName: this.tableName, Key: key }));
        const crossed = await documentClient().send(new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
          ExpressionAttributeValues: { ':pk': totalsPk(tenantId, metric), ':prefix': `${THRESHOLD_SK_PREFIX}${e.period}#${periodStart}#${e.limit}#` },
          ProjectionExpression: 'threshold',
        }));
        const used = total ? parseDecimal(String(total.used), { allowNegative: true }) : '0';
        const left = subtractDecimals(e.limit, used);
        balances.push({
          metric,
          period: e.period,
          periodStart,
          periodEnd: isoSeconds(p.periodEndMs),
          limit: e.limit,
          used,
          remaining: compareDecimals(left, '0') > 0 ? left : '0',
          thresholds: e.thresholds,
          thresholdsCrossed: (crossed.Items ?? []).map((x) => Number(String(x.threshold))).sort((a, b) => a - b),
          onLimit: e.onLimit,
          blocked: Number(item?.[blockedAttribute(metric)] ?? 0) > nowSeconds,
        });
      }
    }
    // The tenant's standing (unknown, offboarded or allowed); blocks are per metric, in the balances.
    return { tenantId, access: accessOf(item, '', nowSeconds), plan: tenant?.plan, balances };
  }
}
