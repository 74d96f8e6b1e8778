import type { Context } from 'aws-lambda';
import { STRIPE_ENV } from './contract';
import { publishMetrics } from './shared.lambda/metrics';
import { offboardTenant, OffboardingResult } from './shared.lambda/offboarding';
import { ClosedWindowSource } from './shared.lambda/push';
import { UsageReader } from '../../ingestor/shared.lambda/usage-reader';
import { ControlPlaneEvent, lifecycleHandler } from '../../shared.lambda/control-plane-event';

/**
 * Builds the offboarding handler on a usage reader factory (the bundled
 * handler reads through the ingestor's usage read contract; tests may pass another).
 */
export function offboardingHandler(reader: () => ClosedWindowSource | undefined) {
  return (event: ControlPlaneEvent, context?: Context): Promise<OffboardingResult> => lifecycleHandler(async ({ tenantId }) => {
    try {
      return await offboardTenant(tenantId, event.time ?? new Date().toISOString(), {
        reader: reader(),
        // Stop starting sends a minute before the timeout; the retry finishes the job.
        hasTimeLeft: () => !context || context.getRemainingTimeInMillis() > 60_000,
        leaseMs: (context?.getRemainingTimeInMillis() ?? 900_000) + 60_000,
        owner: context?.awsRequestId ?? `offboarding-${event.id}`,
      });
    } finally {
      publishMetrics();
    }
  })(event);
}

/**
 * Offboarding (`deleteCustomerFunction`): the tenant's closed windows pushed,
 * its subscription cancelled by the configured policy, its customer kept unless
 * asked (see `shared.lambda/offboarding.ts`).
 */
// The construct gives the function the push table (and the usage read contract) only when it has an ingestor.
export const handler = offboardingHandler(() => (process.env[STRIPE_ENV.USAGE_PUSH_TABLE_NAME] ? UsageReader.fromEnvironment() : undefined));
