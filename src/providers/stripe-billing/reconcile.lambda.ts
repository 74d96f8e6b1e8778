import type { Context } from 'aws-lambda';
import { USAGE_PUSH_TABLE_LAYOUT } from './contract';
import { publishMetrics } from './shared.lambda/metrics';
import { acquireLease, ClosedWindowSource, newRun, pushConfigFromEnv } from './shared.lambda/push';
import { reconcile, reconcileConfigFromEnv, ReconcileSummary } from './shared.lambda/reconcile';
import { UsageReader } from '../../ingestor/shared.lambda/usage-reader';
import { logger } from '../../shared.lambda/logger';

/** What a reconciler run did. */
export type ReconcileResult = (ReconcileSummary & { readonly outcome: 'DONE' }) | { readonly outcome: 'ANOTHER_RUN_HOLDS_THE_LEASE' };

/** Builds the reconciler handler on a usage reader factory (tests may pass another reader). */
export function reconcileHandler(reader: () => ClosedWindowSource) {
  return async (event: { id?: string } | undefined, context?: Context): Promise<ReconcileResult> => {
    logger.resetKeys();
    logger.appendKeys({ eventId: event?.id });
    const run = newRun(pushConfigFromEnv(), () => !context || context.getRemainingTimeInMillis() > 60_000);
    // Its own lease: one reconciler at a time. It runs beside the push: it changes only markers the push
    // has finished with (SENT, CARRIED_OVER), and both only add to the records.
    const release = await acquireLease(run, context?.awsRequestId ?? `reconcile-${event?.id ?? Date.now()}`,
      (context?.getRemainingTimeInMillis() ?? 900_000) + 60_000, USAGE_PUSH_TABLE_LAYOUT.reconcilerLeaseSortKey);
    if (!release) {
      logger.info('Another reconciler run holds the lease: the next run reconciles');
      return { outcome: 'ANOTHER_RUN_HOLDS_THE_LEASE' };
    }
    try {
      const summary = await reconcile(run, reconcileConfigFromEnv(), reader(), Date.now());
      logger.info('Reconciliation finished', { ...summary });
      return { outcome: 'DONE', ...summary };
    } finally {
      publishMetrics();
      await release();
    }
  };
}

/**
 * The scheduled reconciler: compares what the push sent with what Stripe counted, per tenant, meter
 * and billing period, repairs what it can, and writes each period's reconciliation record (see
 * `shared.lambda/reconcile.ts`).
 */
export const handler = reconcileHandler(() => UsageReader.fromEnvironment());
