import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { MARKETPLACE_METRICS } from './contract';
import { baseConfig } from './shared.lambda/config';
import { metrics, publishMetrics } from './shared.lambda/metrics';
import { claimRegistration } from './shared.lambda/registrations';
import { emitSubscriptionChanges } from './shared.lambda/subscription-events';
import { lifecycleHandler, optionalField } from '../../shared.lambda/control-plane-event';
import { logger } from '../../shared.lambda/logger';

/** What an onboarding did. */
export interface MarketplaceOnboardingResult {
  readonly tenantId: string;
  readonly outcome: 'LINKED' | 'ALREADY_LINKED' | 'REFUSED';
  readonly reason?: string;
  readonly registrationId?: string;
  readonly licenseArn?: string;
  /** The subscription's state as Marketplace's events have set it so far. */
  readonly subscriptionState?: string;
}

const REFUSALS: Record<string, string> = {
  NO_REGISTRATION_ID: 'the onboarding request carries no registration id',
  NO_REGISTRATION: 'no registration has this id (it comes from the fulfillment URL\'s redirect)',
  CLAIMED_BY_ANOTHER_TENANT: 'another tenant claimed this registration',
  TENANT_HAS_ANOTHER_REGISTRATION: 'the tenant is linked to another registration (offboard it first)',
};

/**
 * Onboarding (`createCustomerFunction`): links the tenant to the registration whose id the
 * onboarding request carries in `detail.<registrationIdField>` (the registration page got it from
 * the fulfillment URL's redirect). A tenant without a registration, or with one another tenant
 * claimed, is refused: a `FAILED` subscription changed event says so and nothing is written
 * (the event is not retried: no retry would find a registration). A tenant linked to a license
 * that Marketplace has confirmed already gets a `CONFIRMED` event.
 */
export const handler = lifecycleHandler(async ({ event, tenantId }): Promise<MarketplaceOnboardingResult> => {
  try {
    const config = baseConfig();
    const registrationId = optionalField(event, config.registrationIdField);
    const occurredAt = event.time ?? new Date().toISOString();
    const claim = registrationId && /^[A-Za-z0-9_-]{1,64}$/.test(registrationId)
      // The onboarding's own time: an offboarding older than it is stale.
      ? await claimRegistration(config.registrationsTable, registrationId, tenantId, Date.parse(occurredAt) || Date.now())
      : { outcome: 'NO_REGISTRATION_ID' as const };
    if (!('registration' in claim)) {
      const reason = claim.outcome;
      logger.warn('Onboarding refused: no Marketplace registration for this tenant', { reason, field: config.registrationIdField });
      metrics.addMetric(MARKETPLACE_METRICS.ONBOARDINGS_REFUSED, MetricUnit.Count, 1);
      await emitSubscriptionChanges([{
        status: 'FAILED',
        tenantId,
        reason: `${reason}: ${REFUSALS[reason]}`,
        occurredAt,
        eventId: event.id,
        ...(registrationId ? { registrationId } : {}),
      }]);
      return { tenantId, outcome: 'REFUSED', reason };
    }
    const { registration, subscriber } = claim;
    logger.info('Tenant linked to its Marketplace registration', { outcome: claim.outcome, registrationId, licenseArn: registration.licenseArn });
    if (claim.outcome === 'CLAIMED' && subscriber?.state === 'ACTIVE') {
      // Marketplace confirmed the subscription before the tenant existed: tell the control plane now.
      await emitSubscriptionChanges([{
        status: 'CONFIRMED',
        tenantId,
        registrationId,
        licenseArn: registration.licenseArn,
        customerAWSAccountId: registration.customerAWSAccountId,
        agreementId: subscriber.agreementId,
        reason: 'the tenant was linked to a license Marketplace had confirmed',
        occurredAt,
        eventId: event.id,
      }]);
    }
    return {
      tenantId,
      outcome: claim.outcome === 'CLAIMED' ? 'LINKED' : 'ALREADY_LINKED',
      registrationId,
      licenseArn: registration.licenseArn,
      subscriptionState: subscriber?.state,
    };
  } finally {
    publishMetrics();
  }
});
