import { baseConfig } from './shared.lambda/config';
import { publishMetrics } from './shared.lambda/metrics';
import { offboardTenant } from './shared.lambda/registrations';
import { lifecycleHandler } from '../../shared.lambda/control-plane-event';
import { logger } from '../../shared.lambda/logger';

/**
 * Offboarding (`deleteCustomerFunction`): marks the tenant offboarded at the event's time. Its
 * windows before that are still metered by the push (within Marketplace's acceptance window);
 * later ones get disposition `AFTER_OFFBOARDING`. The Marketplace agreement is the buyer's: only
 * the buyer (or AWS) ends it, and its events end the subscription.
 */
export const handler = lifecycleHandler(async ({ event, tenantId }) => {
  try {
    const at = event.time ?? new Date().toISOString();
    const done = await offboardTenant(baseConfig().registrationsTable, tenantId, at);
    logger.info(done ? 'Tenant offboarded' : 'No Marketplace tenant to offboard, or the offboarding is older than its onboarding');
    return { tenantId, outcome: done ? 'OFFBOARDED' : 'IGNORED' };
  } finally {
    publishMetrics();
  }
});
