/**
 * The entitlements' ledger consumer: invoked by the event source mapping on the
 * usage ledger's change feed (records of metrics with entitlements, and voids),
 * it applies the changes to the running totals exactly once
 * (`shared.lambda/totals.ts`), then evaluates every total the batch's records
 * count in (`shared.lambda/evaluate.ts`): threshold events, blocked state.
 *
 * Every step can run again: a batch redelivered, delivered to two invocations at
 * once, or rerun after a crash at any write applies nothing twice, evaluates
 * again, and writes each threshold event item once. A failure throws: the
 * event source mapping retries the batch (bisecting it), then sends its
 * description to the dead-letter queue.
 */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { DynamoDBStreamEvent } from 'aws-lambda';
import { METRICS } from './contract';
import { entitlementsConfig } from './shared.lambda/config';
import { evaluate, PeriodRef, PlanCache } from './shared.lambda/evaluate';
import { applyChanges } from './shared.lambda/totals';
import { LedgerChange, ledgerChangeOf } from '../ingestor/shared.lambda/ledger-changes';
import { logger } from '../shared.lambda/logger';

const metrics = new Metrics();

/** What one invocation did. */
export interface ConsumeSummary {
  readonly changes: number;
  readonly applied: number;
  readonly alreadyApplied: number;
  readonly thresholdEvents: number;
  readonly accessChanges: number;
}

export async function handler(event: DynamoDBStreamEvent): Promise<ConsumeSummary> {
  const config = entitlementsConfig();
  const changes = (event.Records ?? []).map(ledgerChangeOf).filter((c): c is LedgerChange => c !== undefined);
  const cache: PlanCache = new Map();
  const tenantOf = (tenantId: string) => {
    let p = cache.get(tenantId);
    if (!p) cache.set(tenantId, (p = config.plans.tenant(tenantId)));
    return p;
  };
  const applied = await applyChanges(changes, {
    tableName: config.tableName,
    periodsOf: config.periodsOf,
    anchorOf: async (tenantId) => (config.plans.anchor === 'ONBOARDING' ? (await tenantOf(tenantId))?.billingAnchor : undefined),
    retentionSeconds: config.retentionSeconds,
  });
  const byMetric = new Map<string, { tenantId: string; metric: string; periods: PeriodRef[] }>();
  for (const t of applied.touched) {
    const key = JSON.stringify([t.tenantId, t.metric]);
    const entry = byMetric.get(key) ?? { tenantId: t.tenantId, metric: t.metric, periods: [] };
    entry.periods.push({ period: t.period, periodStartMs: t.periodStartMs, periodEndMs: t.periodEndMs });
    byMetric.set(key, entry);
  }
  let thresholdEvents = 0;
  let accessChanges = 0;
  const options = { tableName: config.tableName, plans: config.plans, retentionSeconds: config.retentionSeconds, now: () => Date.now() };
  for (const { tenantId, metric, periods } of byMetric.values()) {
    const e = await evaluate(options, tenantId, metric, periods, cache);
    thresholdEvents += e.thresholdEvents;
    accessChanges += e.accessChanges;
  }
  const oldest = Math.min(...(event.Records ?? []).map((r) => Number(r.dynamodb?.ApproximateCreationDateTime ?? Infinity)));
  metrics.addMetric(METRICS.CHANGES_APPLIED, MetricUnit.Count, applied.applied);
  metrics.addMetric(METRICS.CHANGES_ALREADY_APPLIED, MetricUnit.Count, applied.alreadyApplied);
  metrics.addMetric(METRICS.THRESHOLD_EVENTS, MetricUnit.Count, thresholdEvents);
  metrics.addMetric(METRICS.ACCESS_CHANGES, MetricUnit.Count, accessChanges);
  if (Number.isFinite(oldest)) metrics.addMetric(METRICS.APPLY_LAG_SECONDS, MetricUnit.Seconds, Math.max(0, Date.now() / 1000 - oldest));
  metrics.publishStoredMetrics();
  const summary = { changes: changes.length, applied: applied.applied, alreadyApplied: applied.alreadyApplied, thresholdEvents, accessChanges };
  logger.info('Ledger changes applied', { ...summary });
  return summary;
}
