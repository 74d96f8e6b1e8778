import { STRIPE_ENV } from './contract';
import { publishMetrics } from './shared.lambda/metrics';
import { onboardTenant, OnboardingResult } from './shared.lambda/onboarding';
import { lifecycleHandler, optionalField } from '../../shared.lambda/control-plane-event';

/** With plans: the plan the onboarding event names (its plan field, also under `tenantData`), as `BillingPlans` reads it. */
function planOf(detail: Record<string, unknown> | undefined): string | undefined {
  const field = process.env[STRIPE_ENV.PLAN_FIELD];
  if (!field || !detail) return undefined;
  const nested = (typeof detail.tenantData === 'object' && detail.tenantData !== null ? detail.tenantData : {}) as Record<string, unknown>;
  const value = detail[field] ?? nested[field];
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
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
    }, planOf(event.detail as Record<string, unknown>));
  } finally {
    publishMetrics();
  }
});
