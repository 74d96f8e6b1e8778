import type { Context, ScheduledEvent } from 'aws-lambda';
import { meteringConfig } from './shared.lambda/config';
import { acquireLease, countNearDeadline, meterNewWindows, meterPendingWindows, newRun, UsageSource } from './shared.lambda/metering';
import { publishMetrics } from './shared.lambda/metrics';
import { meterZeroHours } from './shared.lambda/zero-hours';
import { UsageReader } from '../../ingestor/shared.lambda/usage-reader';
import { logger } from '../../shared.lambda/logger';

/** What a metering run did. */
export interface MeteringResult {
  readonly outcome: 'DONE' | 'STOPPED_EARLY' | 'ANOTHER_RUN_HOLDS_THE_LEASE';
  readonly [count: string]: unknown;
}

/** Builds the push handler on a usage reader factory (tests and benches may pass another reader). */
export function pushHandler(reader: () => UsageSource) {
  return async (event: Partial<ScheduledEvent> | undefined, context?: Context): Promise<MeteringResult> => {
    logger.resetKeys();
    logger.appendKeys({ eventId: event?.id });
    const run = newRun(meteringConfig(), () => !context || context.getRemainingTimeInMillis() > 60_000);
    const release = await acquireLease(run, context?.awsRequestId ?? `push-${event?.id ?? Date.now()}`, (context?.getRemainingTimeInMillis() ?? 300_000) + 60_000);
    if (!release) {
      logger.info('Another metering run holds the lease: nothing to do');
      return { outcome: 'ANOTHER_RUN_HOLDS_THE_LEASE' };
    }
    try {
      let complete = await meterPendingWindows(run);
      complete = complete && !run.tally.abort && await meterNewWindows(run, reader());
      if (complete && run.config.reportZeroHours) complete = await meterZeroHours(run);
      await countNearDeadline(run);
      if (run.tally.abort) throw run.tally.abort;
      const result: MeteringResult = { outcome: complete ? 'DONE' : 'STOPPED_EARLY', ...run.tally.summary() };
      logger.info('Metering run finished', { ...result });
      return result;
    } finally {
      run.tally.emit();
      publishMetrics();
      await release();
    }
  };
}

/**
 * The scheduled metering push (`putUsageFunction`): closed hourly windows become BatchMeterUsage
 * usage records, each license, dimension and hour once (see `shared.lambda/metering.ts`). Throws
 * when Marketplace stays unavailable, so the errors alarm fires; the next run resumes.
 */
export const handler = pushHandler(() => UsageReader.fromEnvironment());
