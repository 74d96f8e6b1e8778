import type { Context } from 'aws-lambda';
import { STRIPE_ENV } from './contract';
import { publishMetrics } from './shared.lambda/metrics';
import { deleteCustomerWhenSettled, finalizeOffboarding, OffboardingDeps, offboardTenant, OffboardingResult } from './shared.lambda/offboarding';
import { ClosedWindowSource } from './shared.lambda/push';
import { isScheduledWork, ScheduledWork } from './shared.lambda/schedule';
import { UsageReader } from '../../ingestor/shared.lambda/usage-reader';
import { ControlPlaneEvent, lifecycleHandler } from '../../shared.lambda/control-plane-event';

/**
 * Builds the offboarding handler on a usage reader factory (the bundled
 * handler reads through the ingestor's usage read contract; tests may pass another).
 */
export function offboardingHandler(reader: () => ClosedWindowSource | undefined) {
  const depsOf = (context: Context | undefined, id: string | undefined): OffboardingDeps => ({
    reader: reader(),
    // Stop starting sends a minute before the timeout; the retry finishes the job.
    hasTimeLeft: () => !context || context.getRemainingTimeInMillis() > 60_000,
    leaseMs: (context?.getRemainingTimeInMillis() ?? 900_000) + 60_000,
    owner: context?.awsRequestId ?? `offboarding-${id ?? Date.now()}`,
    functionArn: context?.invokedFunctionArn,
  });
  return async (event: ControlPlaneEvent | ScheduledWork, context?: Context): Promise<OffboardingResult> => {
    if (isScheduledWork(event)) return scheduledStep(event, depsOf(context, undefined));
    return lifecycleHandler(async ({ tenantId }) => {
      try {
        return await offboardTenant(tenantId, event.time ?? new Date().toISOString(), depsOf(context, event.id));
      } finally {
        publishMetrics();
      }
    })(event);
  };
}

/** A later step of an offboarding, invoked by its one-time EventBridge Scheduler schedule. */
async function scheduledStep(work: ScheduledWork, deps: OffboardingDeps): Promise<OffboardingResult> {
  try {
    if ('finalizeOffboarding' in work) return await finalizeOffboarding(work.finalizeOffboarding.tenantId, work.finalizeOffboarding.generation, deps);
    const { tenantId, generation, attempt } = work.deleteCustomerWhenSettled;
    return await deleteCustomerWhenSettled(tenantId, generation, attempt, deps);
  } finally {
    publishMetrics();
  }
}

/**
 * Offboarding (`deleteCustomerFunction`): the tenant's closed windows pushed,
 * its subscription cancelled by the configured policy, its customer kept unless
 * asked (see `shared.lambda/offboarding.ts`).
 */
// The construct gives the function the push table (and the usage read contract) only when it has an ingestor.
export const handler = offboardingHandler(() => (process.env[STRIPE_ENV.USAGE_PUSH_TABLE_NAME] ? UsageReader.fromEnvironment() : undefined));
