/**
 * `BillingPlans`' handler of the control plane's onboarding, offboarding and
 * plan change request events: records each tenant's plan (see
 * `shared.lambda/plan-store.ts`) and emits `planChanged` or `planChangeFailure`.
 *
 * A plan change takes effect at the instant this handler records it
 * (`effectiveAt`, in the `planChanged` event). A request for an unknown plan,
 * or for a tenant that is unknown or offboarded, is refused with a
 * `planChangeFailure` event (never dropped). A tenant id that breaks the
 * identifier rule, or a failure to write, throws: the event is retried, then
 * kept in the dead-letter queue.
 */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { EventBridgeClient, PutEventsCommand, PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { METRICS, PlanDefinition, planNamedIn, PLANS_ENV, AnchorKind } from './contract';
import { Emitted, handlePlanEvent, HandledEvent, PlanEventKind } from './shared.lambda/plan-store';
import { sdkClient } from '../shared.lambda/aws-clients';
import { ControlPlaneEvent, lifecycleHandler } from '../shared.lambda/control-plane-event';
import { jsonEnv, numberEnv, requiredEnv } from '../shared.lambda/env';
import { logger } from '../shared.lambda/logger';
import { withRetry } from '../shared.lambda/retry';

const metrics = new Metrics();

/** What one invocation did. */
export interface PlanEventResult extends HandledEvent {
  readonly tenantId: string;
}

function kindOf(detailType: string): PlanEventKind {
  if (detailType === requiredEnv(PLANS_ENV.ONBOARDING_DETAIL_TYPE)) return 'ONBOARDING';
  if (detailType === requiredEnv(PLANS_ENV.OFFBOARDING_DETAIL_TYPE)) return 'OFFBOARDING';
  if (detailType === requiredEnv(PLANS_ENV.PLAN_CHANGE_REQUEST_DETAIL_TYPE)) return 'PLAN_CHANGE';
  throw new Error(`Event of detail-type ${JSON.stringify(detailType)}: not one BillingPlans handles (its rules send only onboarding, offboarding and plan change requests)`);
}

function eventTimeOf(event: ControlPlaneEvent): string {
  const t = Date.parse(event.time ?? '');
  return new Date(Number.isNaN(t) ? Date.now() : t).toISOString();
}

function entryOf(e: Emitted): PutEventsRequestEntry {
  const source = e.kind === 'PLAN_CHANGED' ? PLANS_ENV.PLAN_CHANGED_SOURCE : PLANS_ENV.PLAN_CHANGE_FAILURE_SOURCE;
  const detailType = e.kind === 'PLAN_CHANGED' ? PLANS_ENV.PLAN_CHANGED_DETAIL_TYPE : PLANS_ENV.PLAN_CHANGE_FAILURE_DETAIL_TYPE;
  return {
    EventBusName: requiredEnv(PLANS_ENV.EVENT_BUS_ARN),
    Source: requiredEnv(source),
    DetailType: requiredEnv(detailType),
    Detail: JSON.stringify(e.detail),
  };
}

async function emit(emitted: readonly Emitted[]): Promise<void> {
  if (emitted.length === 0) return;
  let pending = emitted.map(entryOf);
  await withRetry(async () => {
    const res = await sdkClient(EventBridgeClient).send(new PutEventsCommand({ Entries: pending }));
    if (!res.FailedEntryCount) return;
    pending = pending.filter((_, i) => res.Entries?.[i]?.ErrorCode);
    throw new Error(`PutEvents failed for ${pending.length} plan events: ${res.Entries?.find((x) => x.ErrorCode)?.ErrorCode}`);
  }, { attempts: 5, baseDelayMs: 100 });
}

/** The Lambda handler, invoked by the rules of the three events. */
export const handler = lifecycleHandler(async ({ event, tenantId }): Promise<PlanEventResult> => {
  const definitions = jsonEnv<PlanDefinition[]>(PLANS_ENV.PLAN_DEFINITIONS);
  const defaultPlan = process.env[PLANS_ENV.DEFAULT_PLAN] || undefined;
  const kind = kindOf(event['detail-type']);
  const result = await handlePlanEvent({
    tableName: requiredEnv(PLANS_ENV.TABLE_NAME),
    planNames: new Set(definitions.map((d) => d.name)),
    defaultPlan,
    anchor: (process.env[PLANS_ENV.BILLING_PERIOD_ANCHOR] ?? 'CALENDAR_MONTH') as AnchorKind,
    anchorAlignmentSeconds: numberEnv(PLANS_ENV.ANCHOR_ALIGNMENT_SECONDS, { min: 1, integer: true, fallback: 3600 }),
    now: () => Date.now(),
  }, {
    kind,
    tenantId,
    eventId: event.id,
    detailType: event['detail-type'],
    eventTime: eventTimeOf(event),
    requestedPlan: kind === 'OFFBOARDING' ? undefined : planNamedIn(event.detail, requiredEnv(PLANS_ENV.PLAN_FIELD)),
  });
  // Emitted after the transaction: a crash before this line re-emits the same events on the retry.
  await emit(result.emitted);
  const refused = result.emitted.filter((e) => e.kind === 'FAILURE');
  const changed = result.emitted.filter((e) => e.kind === 'PLAN_CHANGED');
  if (result.outcome !== 'REPEATED') {
    metrics.addMetric(METRICS.PLANS_CHANGED, MetricUnit.Count, changed.length);
    metrics.addMetric(METRICS.PLANS_REFUSED, MetricUnit.Count, refused.length);
    metrics.addMetric(METRICS.STALE_EVENTS, MetricUnit.Count, result.outcome === 'STALE' ? 1 : 0);
    metrics.publishStoredMetrics();
  }
  for (const r of refused) logger.warn('Plan refused', { ...(r.detail as unknown as Record<string, unknown>) });
  logger.info('Plan event handled', { kind, outcome: result.outcome, events: result.emitted.length });
  return { tenantId, ...result };
});
