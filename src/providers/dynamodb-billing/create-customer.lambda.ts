import { createHash } from 'node:crypto';
import { customerKey, LIFECYCLE_ENV, METRICS, STATUS } from './contract';
import { eventTimeOf, putIfAbsent, reactivate } from './shared.lambda/lifecycle';
import { publishCounts } from './shared.lambda/metrics';
import { lifecycleHandler, optionalField } from '../../shared.lambda/control-plane-event';
import { requiredEnv } from '../../shared.lambda/env';
import { logger } from '../../shared.lambda/logger';

/** The customer id of a tenant: derived from the tenant id, so every attempt computes the same one. */
export function customerIdOf(tenantId: string): string {
  return `cus_${createHash('sha256').update(tenantId).digest('hex').slice(0, 24)}`;
}

/** The result of a create customer invocation. */
export interface CreateCustomerResult {
  readonly tenantId: string;
  readonly customerId: string;
  /**
   * `CREATED` by this invocation; `REOPENED`: the customer was closed by an
   * offboarding older than this onboarding; `EXISTS`: nothing to do (already
   * active, or closed by an offboarding newer than this onboarding).
   */
  readonly outcome: 'CREATED' | 'REOPENED' | 'EXISTS';
  readonly status: string;
}

/**
 * Creates the customer of a tenant on onboarding: one customer per tenant however
 * often and however concurrently the event is delivered (a conditional put).
 * A customer closed by an offboarding older than this onboarding is reopened
 * (same customer id; the closed span is kept in `closedPeriods`); one closed
 * by a newer offboarding stays closed (the onboarding is stale).
 */
export const handler = lifecycleHandler(async ({ event, tenantId }): Promise<CreateCustomerResult> => {
  const table = requiredEnv(LIFECYCLE_ENV.BILLING_TABLE_NAME);
  const customerId = customerIdOf(tenantId);
  const eventTime = eventTimeOf(event);
  const created = await putIfAbsent(table, {
    ...customerKey(tenantId),
    tenantId,
    customerId,
    status: STATUS.ACTIVE,
    activeSince: eventTime,
    createdAt: new Date().toISOString(),
    tenantName: optionalField(event, 'tenantName', 'name'),
    tier: optionalField(event, 'tier', 'tenantTier'),
    // Billing contact: stored (encrypted at rest), never logged.
    billingEmail: optionalField(event, 'email', 'tenantEmail', 'billingEmail'),
    sourceEventId: event.id,
  });
  if (created) {
    logger.info('Customer created', { customerId });
    return { tenantId, customerId, outcome: 'CREATED', status: STATUS.ACTIVE };
  }

  const { outcome, status, closedPeriod } = await reactivate(table, customerKey(tenantId), eventTime, { customerId });
  if (outcome === 'REACTIVATED') {
    logger.info('Customer reopened: onboarded again after its offboarding', { customerId, closedPeriod });
    publishCounts({ [METRICS.CUSTOMERS_REOPENED]: 1 });
    return { tenantId, customerId, outcome: 'REOPENED', status };
  }
  if (outcome === 'STALE') {
    logger.warn('Onboarding older than the customer\'s offboarding: the customer stays closed', { customerId, eventTime });
    publishCounts({ [METRICS.STALE_LIFECYCLE_EVENTS]: 1 });
  } else {
    logger.info('Customer already exists: nothing to do', { customerId });
  }
  return { tenantId, customerId, outcome: 'EXISTS', status };
});
