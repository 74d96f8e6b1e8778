import type { Context, ScheduledEvent } from 'aws-lambda';
import { publishMetrics } from './shared.lambda/metrics';
import { acquireLease, ClosedWindowSource, emitPendingAge, newRun, pushConfigFromEnv, pushNewWindows, pushPendingWindows, redriveWindows } from './shared.lambda/push';
import { UsageReader } from '../../ingestor/shared.lambda/usage-reader';
import { logger } from '../../shared.lambda/logger';

/** What a push run did. */
export interface PutUsageResult {
  readonly outcome: 'DONE' | 'STOPPED_EARLY' | 'ANOTHER_RUN_HOLDS_THE_LEASE';
  readonly windowsRead: number;
  readonly alreadyPushed: number;
  readonly deferred: number;
  readonly [disposition: string]: unknown;
}

/** The scheduled event, or an operator's invocation `{ "redriveWindowIds": ["..."] }`. */
export type PutUsageEvent = (Partial<ScheduledEvent> & { readonly redriveWindowIds?: string[] }) | undefined;

/** Builds the push handler on a usage reader factory (tests may pass another reader). */
export function pushHandler(reader: () => ClosedWindowSource) {
  return async (event: PutUsageEvent, context?: Context): Promise<PutUsageResult> => {
    logger.resetKeys();
    logger.appendKeys({ eventId: event?.id });
    const run = newRun(pushConfigFromEnv(), () => !context || context.getRemainingTimeInMillis() > 60_000);
    const release = await acquireLease(run, context?.awsRequestId ?? `push-${event?.id ?? Date.now()}`,
      (context?.getRemainingTimeInMillis() ?? 900_000) + 60_000);
    if (!release) {
      logger.info('Another push run holds the lease: nothing to do');
      return { outcome: 'ANOTHER_RUN_HOLDS_THE_LEASE', windowsRead: 0, alreadyPushed: 0, deferred: 0 };
    }
    try {
      const redriven = event?.redriveWindowIds ? await redriveWindows(run, event.redriveWindowIds) : undefined;
      if (redriven) logger.info('Windows redriven', { redriven });
      const oldestPendingHours = await pushPendingWindows(run);
      const complete = !run.tally.abort && await pushNewWindows(run, reader());
      emitPendingAge(oldestPendingHours);
      if (run.tally.abort) throw run.tally.abort;
      const result = { outcome: complete ? 'DONE' : 'STOPPED_EARLY', ...run.tally.summary(), ...(redriven ? { redriven } : {}) } as PutUsageResult;
      logger.info('Usage push finished', { ...result });
      return result;
    } finally {
      run.tally.emit();
      publishMetrics();
      await release();
    }
  };
}

/**
 * The scheduled usage push (`putUsageFunction`): closed windows read through
 * the ingestor's usage read contract become Stripe meter events, each window
 * exactly once (see `shared.lambda/push.ts`). Throws when Stripe stays
 * unavailable or refuses the API key, so the errors alarm fires; the next run
 * continues where this one stopped.
 */
export const handler = pushHandler(() => UsageReader.fromEnvironment());
