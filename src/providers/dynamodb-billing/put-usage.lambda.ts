import type { Context, ScheduledEvent } from 'aws-lambda';
import { exactClient, parsePrices, pushUsage, PushSummary } from './shared.lambda/push';
import { logger, requiredEnv } from './shared.lambda/runtime';
import { UsageReader } from '../../ingestor/shared.lambda/usage-reader';

const client = exactClient();

/**
 * Pushes the usage windows closed since the last run into charge lines (see `pushUsage`).
 * Throws on any failure, so the invocation is retried and then kept by the
 * on-failure destination; a rerun continues from the watermark without double billing.
 */
export const handler = async (event: ScheduledEvent | undefined, context?: Context): Promise<PushSummary> => {
  const summary = await pushUsage({
    client,
    reader: UsageReader.fromEnvironment(),
    billingTable: requiredEnv('BILLING_TABLE_NAME'),
    prices: parsePrices(process.env.UNIT_PRICES),
    initialLookbackSeconds: Number(process.env.INITIAL_LOOKBACK_SECONDS ?? 35 * 24 * 3600),
    nowSeconds: Math.floor(Date.now() / 1000),
    // Leave time to finish the current page; the next run continues from the watermark.
    hasTimeLeft: context ? () => context.getRemainingTimeInMillis() > 60_000 : undefined,
  });
  logger.info('Usage pushed', { ...summary, eventId: event?.id });
  return summary;
};
