/**
 * Plans as users write them (`BillingPlan`) checked at synth time and turned
 * into the definitions handlers read (`PlanDefinition`, defaults applied). The
 * one validator of plans, used by every construct that takes them.
 */
import { Token } from 'aws-cdk-lib';
import { PlanDefinition, PriceDefinition } from './contract';
import { BillingPlan, Entitlement, EntitlementPeriod, LimitAction, MetricPrice, PlanMetric } from './plan';
import { identifierRule, isMetricName } from '../events/identifiers';
import { PropsValidator } from '../private/validation';

/** Plan names: the identifier characters, at most 64 (they are keys and Stripe metadata). */
const PLAN_NAME = /^[A-Za-z0-9_.:@+=-]{1,64}$/;
/** Decimal quantities and limits: up to 15 digits before the point and 9 after (the usage record's own limits). */
const QUANTITY = /^\d{1,15}(\.\d{1,9})?$/;
/** Prices and charges: up to 24 digits before the point and 12 after (DynamoDbBilling's unit prices). */
const MONEY = /^\d{1,24}(\.\d{1,12})?$/;
const CURRENCY = /^[A-Z]{3}$/;
const STRIPE_PRICE = /^(price|plan)_[A-Za-z0-9_]{1,250}$/;
/** What the plan definitions may take of a function's environment (Lambda allows 4 KB in all). */
export const MAX_PLAN_DEFINITIONS_JSON = 3000;

const PERIODS = Object.values(EntitlementPeriod) as string[];
const ACTIONS = Object.values(LimitAction) as string[];

function decimalLess(a: string, b: string): boolean {
  const [ai, af = ''] = a.split('.');
  const [bi, bf = ''] = b.split('.');
  const width = Math.max(af.length, bf.length);
  return BigInt(ai + af.padEnd(width, '0')) < BigInt(bi + bf.padEnd(width, '0'));
}

function checkPrice(v: PropsValidator, at: string, price: MetricPrice): void {
  const hasUnit = price.unitPrice !== undefined;
  const hasTiers = price.tiers !== undefined;
  if (hasUnit === hasTiers) {
    v.add(at, price, hasUnit ? 'has both unitPrice and tiers' : 'has neither unitPrice nor tiers',
      'give unitPrice for one price per unit, or tiers for graduated prices');
  }
  if (hasUnit && !Token.isUnresolved(price.unitPrice) && (typeof price.unitPrice !== 'string' || !MONEY.test(price.unitPrice))) {
    v.add(`${at}.unitPrice`, price.unitPrice, 'must be a non-negative decimal string with at most 12 decimal places', 'for example \'0.0025\'');
  }
  if (hasTiers) {
    const tiers = price.tiers ?? [];
    if (!Array.isArray(tiers) || tiers.length === 0) {
      v.add(`${at}.tiers`, tiers, 'must hold at least one tier', 'give [{ upTo: \'90000\', unitPrice: \'0.002\' }, { unitPrice: \'0.001\' }], or use unitPrice');
    }
    let previous: string | undefined;
    tiers.forEach((tier, i) => {
      const tat = `${at}.tiers[${i}]`;
      if (typeof tier?.unitPrice !== 'string' || !MONEY.test(tier.unitPrice)) {
        v.add(`${tat}.unitPrice`, tier?.unitPrice, 'must be a non-negative decimal string with at most 12 decimal places', 'for example \'0.002\'');
      }
      const last = i === tiers.length - 1;
      if (last && tier?.upTo !== undefined) {
        v.add(`${tat}.upTo`, tier.upTo, 'is set on the last tier', 'leave upTo out of the last tier: it prices every unit beyond the tier before it');
      } else if (!last) {
        if (typeof tier?.upTo !== 'string' || !QUANTITY.test(tier.upTo) || tier.upTo === '0') {
          v.add(`${tat}.upTo`, tier?.upTo, 'must be a positive decimal string on every tier but the last', 'give the last billable unit of the tier, for example \'90000\'');
        } else {
          if (previous !== undefined && !decimalLess(previous, tier.upTo)) {
            v.add(`${tat}.upTo`, tier.upTo, `must be greater than the tier before it (${previous})`, 'list tiers in increasing order of upTo');
          }
          previous = tier.upTo;
        }
      }
    });
  }
  if (price.freeQuantity !== undefined && (typeof price.freeQuantity !== 'string' || !QUANTITY.test(price.freeQuantity))) {
    v.add(`${at}.freeQuantity`, price.freeQuantity, 'must be a non-negative decimal string (at most 15 digits before the point and 9 after)', 'for example \'10000\'');
  }
  if (price.minimumCharge !== undefined && (typeof price.minimumCharge !== 'string' || !MONEY.test(price.minimumCharge))) {
    v.add(`${at}.minimumCharge`, price.minimumCharge, 'must be a non-negative decimal string with at most 12 decimal places', 'for example \'5\'');
  }
  if (price.currency !== undefined && (typeof price.currency !== 'string' || !CURRENCY.test(price.currency))) {
    v.add(`${at}.currency`, price.currency, 'must be an ISO 4217 code in capitals', 'for example \'USD\' or \'EUR\'');
  }
}

function checkEntitlement(v: PropsValidator, at: string, e: Entitlement, windowSeconds: number | undefined): void {
  if (typeof e?.limit !== 'string' || !QUANTITY.test(e.limit)) {
    v.add(`${at}.limit`, e?.limit, 'must be a non-negative decimal string (at most 15 digits before the point and 9 after)', 'for example \'100000\'');
  }
  if (!PERIODS.includes(e?.period)) {
    v.add(`${at}.period`, e?.period, `must be one of ${PERIODS.join(', ')}`, 'for example EntitlementPeriod.CALENDAR_MONTH');
  } else if (e.period === EntitlementPeriod.HOUR && windowSeconds !== undefined && windowSeconds > 3600) {
    v.add(`${at}.period`, e.period, `needs hourly usage windows, and the ingestor's windows are ${windowSeconds / 3600} hours long`,
      'use EntitlementPeriod.DAY or longer, or an ingestor with WindowGranularity.HOUR');
  }
  if (e?.onLimit !== undefined && !ACTIONS.includes(e.onLimit)) {
    v.add(`${at}.onLimit`, e.onLimit, `must be one of ${ACTIONS.join(', ')}`, 'LimitAction.NOTIFY or LimitAction.BLOCK');
  }
  const thresholds = e?.thresholds ?? [];
  if (!Array.isArray(thresholds)) {
    v.add(`${at}.thresholds`, thresholds, 'must be an array of percentages', 'for example [80, 90]');
    return;
  }
  const seen = new Set<number>();
  thresholds.forEach((t, i) => {
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > 99) {
      v.add(`${at}.thresholds[${i}]`, t, 'must be a whole percentage between 1 and 99', 'for example 80; the limit itself (100) is announced by usageLimitReached');
    } else if (seen.has(t)) {
      v.add(`${at}.thresholds[${i}]`, t, 'is listed twice', 'list each threshold once');
    }
    seen.add(t);
  });
}

/**
 * Checks plans, adding every problem to `v` under `prop` (for example `plans`).
 * `windowSeconds`: the usage windows' length, when known (an `HOUR` limit needs hourly windows).
 */
export function validatePlans(v: PropsValidator, prop: string, plans: readonly BillingPlan[] | undefined, windowSeconds?: number): void {
  if (!Array.isArray(plans) || plans.length === 0) {
    v.add(prop, plans, 'must hold at least one plan', 'give [{ name: \'basic\', metrics: [...] }, ...]');
    return;
  }
  const names = new Set<string>();
  plans.forEach((plan, p) => {
    const at = `${prop}[${p}]`;
    if (typeof plan?.name !== 'string' || !PLAN_NAME.test(plan.name)) {
      v.add(`${at}.name`, plan?.name, 'must be 1 to 64 characters of ASCII letters, digits and _ - . : @ + =', 'use the SBT tier, for example \'basic\'');
    } else if (names.has(plan.name)) {
      v.add(`${at}.name`, plan.name, 'names two plans', 'give each plan its own name');
    }
    names.add(plan?.name);
    const metrics = new Set<string>();
    (plan?.metrics ?? [] as PlanMetric[]).forEach((m: PlanMetric, i: number) => {
      const mat = `${at}.metrics[${i}]`;
      if (!isMetricName(m?.metric)) {
        v.add(`${mat}.metric`, m?.metric, identifierRule('metric'), 'use the metric name exactly as producers write it, for example \'apiCalls\'');
      } else if (metrics.has(m.metric)) {
        v.add(`${mat}.metric`, m.metric, 'is listed twice in the plan', 'give each metric one entry: its price and its entitlements together');
      }
      metrics.add(m?.metric);
      if (m?.price !== undefined) checkPrice(v, `${mat}.price`, m.price);
      const periods = new Set<string>();
      (m?.entitlements ?? [] as Entitlement[]).forEach((e: Entitlement, j: number) => {
        checkEntitlement(v, `${mat}.entitlements[${j}]`, e, windowSeconds);
        if (periods.has(e?.period)) {
          v.add(`${mat}.entitlements[${j}].period`, e.period, 'has two limits on the metric', 'give one limit per period and metric');
        }
        periods.add(e?.period);
      });
    });
    const prices: string[] = plan?.stripePriceIds ?? [];
    if (prices.length > 20) v.add(`${at}.stripePriceIds`, prices, 'has more than 20 prices, the most a Stripe subscription holds', 'give at most 20 prices');
    prices.forEach((id: string, i: number) => {
      if (typeof id !== 'string' || !STRIPE_PRICE.test(id)) {
        v.add(`${at}.stripePriceIds[${i}]`, id, 'must be a Stripe price id', 'give the id of a price, for example \'price_1PQ2abc\'');
      }
    });
  });
  if (v.hasProblems) return; // the size of plans that are wrong is not worth reporting
  const size = JSON.stringify(planDefinitionsOf(plans)).length;
  if (size > MAX_PLAN_DEFINITIONS_JSON) {
    v.add(prop, plans, `take ${size} characters of the functions' environment once written out (limit ${MAX_PLAN_DEFINITIONS_JSON}; Lambda allows 4 KB in all)`,
      'define fewer plans, metrics or tiers, or shorten their names');
  }
}

function priceOf(p: MetricPrice): PriceDefinition {
  return {
    ...(p.unitPrice !== undefined ? { unitPrice: p.unitPrice } : {}),
    ...(p.tiers !== undefined ? { tiers: p.tiers.map((t) => ({ ...(t.upTo !== undefined ? { upTo: t.upTo } : {}), unitPrice: t.unitPrice })) } : {}),
    freeQuantity: p.freeQuantity ?? '0',
    ...(p.minimumCharge !== undefined ? { minimumCharge: p.minimumCharge } : {}),
    currency: p.currency ?? 'USD',
  };
}

/** The plans as handlers read them (defaults applied). */
export function planDefinitionsOf(plans: readonly BillingPlan[]): PlanDefinition[] {
  return plans.map((plan) => ({
    name: plan.name,
    metrics: Object.fromEntries((plan.metrics ?? []).map((m) => [m.metric, {
      ...(m.price ? { price: priceOf(m.price) } : {}),
      ...(m.entitlements?.length ? {
        entitlements: m.entitlements.map((e) => ({
          limit: e.limit,
          period: e.period,
          thresholds: [...(e.thresholds ?? [])].sort((a, b) => a - b),
          onLimit: e.onLimit ?? LimitAction.NOTIFY,
        })),
      } : {}),
    }])),
    ...(plan.stripePriceIds?.length ? { stripePriceIds: [...plan.stripePriceIds] } : {}),
  }));
}
