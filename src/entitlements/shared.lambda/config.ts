/**
 * What the entitlements' handlers read from their environment, in one place:
 * the table, the retention, the plans (through the plan read contract), and the
 * entitlement periods each metric's totals are kept for.
 */
import { PlanReader } from '../../plans/shared.lambda/plan-reader';
import { numberEnv, requiredEnv } from '../../shared.lambda/env';
import { ENTITLEMENTS_ENV } from '../contract';

/** The handlers' settings. */
export interface EntitlementsConfig {
  readonly tableName: string;
  readonly retentionSeconds: number;
  readonly plans: PlanReader;
  /** The entitlement periods of a metric in any plan: its totals are kept for each (a plan change keeps them right). */
  readonly periodsOf: (metric: string) => readonly string[];
  /** Every metric some plan has an entitlement on. */
  readonly metrics: readonly string[];
}

/** The settings of this function's environment. */
export function entitlementsConfig(): EntitlementsConfig {
  const plans = PlanReader.fromEnvironment();
  const periods = new Map<string, Set<string>>();
  for (const plan of plans.definitions) {
    for (const [metric, def] of Object.entries(plan.metrics)) {
      for (const e of def.entitlements ?? []) {
        const set = periods.get(metric) ?? new Set<string>();
        set.add(e.period);
        periods.set(metric, set);
      }
    }
  }
  const byMetric = new Map([...periods].map(([m, set]) => [m, [...set].sort()]));
  return {
    tableName: requiredEnv(ENTITLEMENTS_ENV.TABLE_NAME),
    retentionSeconds: numberEnv(ENTITLEMENTS_ENV.RETENTION_SECONDS, { min: 0, integer: true }),
    plans,
    periodsOf: (metric) => byMetric.get(metric) ?? [],
    metrics: [...byMetric.keys()].sort(),
  };
}
