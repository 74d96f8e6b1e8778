import { publishMetrics } from './shared.lambda/metrics';
import { changePlan, PlanChangeResult, PlanChangedInput } from './shared.lambda/plan-change';
import { lifecycleHandler } from '../../shared.lambda/control-plane-event';

/**
 * A plan change (`changePlanFunction`, on `BillingPlans`' `planChanged` event):
 * the tenant's subscription items swapped to the new plan's prices on the same
 * customer (see `shared.lambda/plan-change.ts`). Throws on any failure, so the
 * event is retried and kept in the provider's dead-letter queue in the end.
 */
export const handler = lifecycleHandler(async ({ event, tenantId }): Promise<PlanChangeResult> => {
  try {
    const detail = event.detail as unknown as PlanChangedInput;
    return await changePlan({ ...detail, tenantId, version: Number(detail.version) });
  } finally {
    publishMetrics();
  }
});
