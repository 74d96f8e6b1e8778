import { STRIPE_ENV } from './contract';
import { publishMetrics } from './shared.lambda/metrics';
import { onboardTenant, OnboardingResult } from './shared.lambda/onboarding';
import { planNamedIn } from '../../plans/contract';
import { lifecycleHandler, optionalField } from '../../shared.lambda/control-plane-event';

/** With plans: the plan the onboarding event names, read as `BillingPlans` reads it. */
function planOf(detail: unknown): string | undefined {
  const field = process.env[STRIPE_ENV.PLAN_FIELD];
  return field ? planNamedIn(detail, field) : undefined;
}

/**
 * Onboarding (`createCustomerFunction`): one Stripe customer per tenant and,
 * when price ids are configured, one subscription (see `shared.lambda/onboarding.ts`).
 * Throws on any failure, so EventBridge/Lambda retry it and the provider's
 * dead-letter queue keeps it in the end.
 */
export const handler = lifecycleHandler(async ({ event, tenantId }): Promise<OnboardingResult> => {
  try {
    return await onboardTenant(tenantId, event.time ?? new Date().toISOString(), {
      // Billing contact: sent to Stripe, never logged.
      name: optionalField(event, 'tenantName', 'name', 'companyName'),
      email: optionalField(event, 'email', 'tenantEmail', 'billingEmail'),
    }, planOf(event.detail));
  } finally {
    publishMetrics();
  }
});
