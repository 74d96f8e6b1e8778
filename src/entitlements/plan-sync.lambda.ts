/**
 * The entitlements' plan sync: invoked by the rule on `BillingPlans`'
 * `planChanged` event. Records the tenant's status and plan on its access item
 * (so that "may tenant T use metric M" is one GetItem), then evaluates every
 * metric with entitlements at the current periods under the new plan: a plan
 * whose limit the tenant is under unblocks it, one whose limit or thresholds
 * it is already past blocks it and announces them (once each).
 *
 * Idempotent: the access item keeps the plan version it reflects and takes no
 * older one; evaluating again writes nothing new.
 */
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { accessKey } from './contract';
import { entitlementsConfig } from './shared.lambda/config';
import { currentPeriods, evaluate, PlanCache, settleAccess } from './shared.lambda/evaluate';
import { PlanChangedDetail } from '../plans/contract';
import { documentClient } from '../shared.lambda/aws-clients';
import { lifecycleHandler } from '../shared.lambda/control-plane-event';
import { isConditionalCheckFailed } from '../shared.lambda/dynamodb';
import { logger } from '../shared.lambda/logger';

/** What one invocation did. */
export interface PlanSyncResult {
  readonly tenantId: string;
  readonly status?: string;
  readonly plan?: string;
  readonly thresholdEvents: number;
  readonly accessChanges: number;
}

export const handler = lifecycleHandler(async ({ event, tenantId }): Promise<PlanSyncResult> => {
  const config = entitlementsConfig();
  logger.appendKeys({ reason: (event.detail as Partial<PlanChangedDetail>).reason });
  const tenant = await config.plans.tenant(tenantId);
  if (!tenant) {
    logger.warn('planChanged for a tenant the plans table does not know: nothing to record');
    return { tenantId, thresholdEvents: 0, accessChanges: 0 };
  }
  try {
    await documentClient().send(new UpdateCommand({
      TableName: config.tableName,
      Key: accessKey(tenantId),
      UpdateExpression: 'SET #status = :s, planVersion = :pv, tenantId = :t, updatedAt = :now, #plan = :p ADD ver :one',
      ConditionExpression: 'attribute_not_exists(planVersion) OR planVersion < :pv',
      ExpressionAttributeNames: { '#status': 'status', '#plan': 'plan' },
      ExpressionAttributeValues: {
        ':s': tenant.status, ':pv': tenant.version, ':t': tenantId, ':now': new Date(Date.now()).toISOString(), ':p': tenant.plan ?? '', ':one': 1,
      },
    }));
  } catch (error) {
    if (!isConditionalCheckFailed(error)) throw error; // a newer plan is recorded already
  }
  const cache: PlanCache = new Map([[tenantId, Promise.resolve(tenant)]]);
  const options = { tableName: config.tableName, plans: config.plans, retentionSeconds: config.retentionSeconds, now: () => Date.now() };
  let thresholdEvents = 0;
  let accessChanges = 0;
  const entitlementsOf = (metric: string) => config.plans.definition(tenant.plan)?.metrics[metric]?.entitlements ?? [];
  for (const metric of config.metrics) {
    const own = entitlementsOf(metric);
    if (own.length === 0) {
      accessChanges += await settleAccess(options, tenantId, metric, cache);
      continue;
    }
    const e = await evaluate(options, tenantId, metric, currentPeriods(own, Date.now(), tenant.billingAnchor), cache);
    thresholdEvents += e.thresholdEvents;
    accessChanges += e.accessChanges;
  }
  logger.info('Plan recorded for entitlements', { status: tenant.status, plan: tenant.plan, thresholdEvents, accessChanges });
  return { tenantId, status: tenant.status, plan: tenant.plan, thresholdEvents, accessChanges };
});
