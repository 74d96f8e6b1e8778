import type { Context, ScheduledEvent } from 'aws-lambda';
import { METRICS, PUSH_ENV } from './contract';
import { publishCounts } from './shared.lambda/metrics';
import { PlanPricing } from './shared.lambda/plan-pricing';
import { readUnitPrices } from './shared.lambda/prices';
import { pushUsage, PushSummary } from './shared.lambda/push';
import { UsageReader } from '../../ingestor/shared.lambda/usage-reader';
import { PLAN_READER_ENV } from '../../plans/contract';
import { PlanReader } from '../../plans/shared.lambda/plan-reader';
import { numberEnv, requiredEnv } from '../../shared.lambda/env';
import { logger } from '../../shared.lambda/logger';

/** Time left at which a run stops reading pages; the next run continues from the cursor. */
const STOP_WITH_MS_LEFT = 60_000;

/**
 * Pushes the usage windows closed since the last run into charge lines (see `pushUsage`).
 * Throws on any failure (a refused unit price included), so the invocation is
 * retried, kept by the on-failure destination and seen by the errors alarm;
 * a rerun continues from the cursor without billing twice.
 */
export const handler = async (event: ScheduledEvent | undefined, context?: Context): Promise<PushSummary> => {
  logger.resetKeys();
  logger.appendKeys({ eventId: event?.id });
  const prices = readUnitPrices();
  const now = new Date(Date.now());
  const summary = await pushUsage({
    billingTable: requiredEnv(PUSH_ENV.BILLING_TABLE_NAME),
    windows: UsageReader.fromEnvironment(),
    prices,
    // With plans (BillingPlans.bindPlanReader): each window at its tenant's plan; else the unit prices.
    pricing: new PlanPricing(prices, process.env[PLAN_READER_ENV.TABLE_NAME] ? PlanReader.fromEnvironment() : undefined),
    firstRunSince: new Date(now.getTime() - numberEnv(PUSH_ENV.INITIAL_LOOKBACK_SECONDS, { min: 0 }) * 1000).toISOString(),
    now,
    hasTimeLeft: () => !context || context.getRemainingTimeInMillis() > STOP_WITH_MS_LEFT,
  });
  publishCounts({
    [METRICS.WINDOWS_BILLED]: summary.windowsBilled,
    [METRICS.WINDOWS_UNPRICED]: summary.windowsUnpriced,
    [METRICS.WINDOWS_NOT_BILLED_AFTER_CLOSE]: summary.windowsAfterClose,
  });
  if (summary.windowsAfterClose > 0) {
    logger.warn('Usage of closed customers was not billed (NOT_BILLED_AFTER_CLOSE): see the charge lines', { windows: summary.windowsAfterClose });
  }
  logger.info('Usage pushed', { ...summary });
  return summary;
};
