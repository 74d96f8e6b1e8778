import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { MARKETPLACE_ENV, MARKETPLACE_METRICS } from './contract';
import { baseConfig, meteringConfig, meters } from './shared.lambda/config';
import {
  applyState, completeCancellation, getEventRecord, intentOf, markEmitted, MarketplaceEvent, putEventRecord, subscriberOfEvent,
} from './shared.lambda/lifecycle';
import { meterFinal, newRun, UsageSource } from './shared.lambda/metering';
import { metrics, publishMetrics } from './shared.lambda/metrics';
import { getItem, registrationKey, SubscriberRecord } from './shared.lambda/registrations';
import { emitSubscriptionChanges, SubscriptionChange } from './shared.lambda/subscription-events';
import { UsageReader } from '../../ingestor/shared.lambda/usage-reader';
import { numberEnv } from '../../shared.lambda/env';
import { logger } from '../../shared.lambda/logger';

/** What handling one Marketplace event did. */
export interface LifecycleResult {
  readonly outcome: 'APPLIED' | 'SUPERSEDED' | 'DUPLICATE' | 'IGNORED' | 'UNMATCHED';
  readonly emitted: string[];
  readonly finalRecordsSent?: number;
}

/** Builds the handler on a usage reader factory (tests may pass another reader). */
export function lifecycleHandler(reader: () => UsageSource) {
  return async (event: MarketplaceEvent, context?: Context): Promise<LifecycleResult> => {
    logger.resetKeys();
    logger.appendKeys({ eventId: event.id, detailType: event['detail-type'] });
    try {
      return await handle(event, reader, context);
    } finally {
      publishMetrics();
    }
  };
}

async function handle(event: MarketplaceEvent, reader: () => UsageSource, context?: Context): Promise<LifecycleResult> {
  const config = baseConfig();
  const table = config.registrationsTable;
  const retention = numberEnv(MARKETPLACE_ENV.PROCESSED_EVENT_RETENTION_SECONDS, { min: 86400, integer: true, fallback: 30 * 86400 });
  const seen = await getEventRecord(table, event.id);
  if (seen?.emitted) return { outcome: 'DUPLICATE', emitted: [] };
  if (seen) {
    // Recorded, not all emitted (a crash, or EventBridge refused): emit now.
    await emitSubscriptionChanges(seen.emissions);
    await markEmitted(table, event.id);
    return { outcome: seen.status === 'APPLIED' ? 'APPLIED' : 'SUPERSEDED', emitted: seen.emissions.map((e) => e.status) };
  }

  const productCode = event.detail?.product?.code;
  const intent = intentOf(event);
  if (!intent || (productCode && productCode !== config.productCode)) {
    logger.info('Marketplace event not for this product, or with no effect on a subscription', { productCode });
    await putEventRecord(table, event.id, { status: 'IGNORED', emissions: [] }, event['detail-type'], retention);
    await markEmitted(table, event.id);
    return { outcome: 'IGNORED', emitted: [] };
  }
  const subscriber = await subscriberOfEvent(table, event);
  if (!subscriber) {
    // An agreement event before any license event linked its agreement: Marketplace sends License Updated
    // for it; the redelivery (a throw makes Lambda retry) or the license event applies it.
    metrics.addMetric(MARKETPLACE_METRICS.LIFECYCLE_EVENTS_UNMATCHED, MetricUnit.Count, 1);
    throw new Error(`Marketplace event ${event.id} (${event['detail-type']}) names agreement ${event.detail?.agreement?.id} that no license event has linked to a license yet: retried`);
  }
  logger.appendKeys({ subscriber });

  const finalSeconds = Number(process.env[MARKETPLACE_ENV.FINAL_METERING_SECONDS] ?? 3600);
  const base = (sub: SubscriberRecord): Omit<SubscriptionChange, 'status' | 'reason'> => ({
    tenantId: sub.tenantId,
    registrationId: sub.registrationId,
    licenseArn: subscriber.startsWith('arn:') ? subscriber : undefined,
    customerAWSAccountId: event.detail?.acceptor?.accountId,
    agreementId: event.detail?.agreement?.id ?? sub.agreementId,
    occurredAt: event.time,
    eventId: event.id,
    marketplaceEvent: event['detail-type'],
  });

  const emissions: SubscriptionChange[] = [];
  let finalRecordsSent: number | undefined;
  let applied = false;
  if (intent.target) {
    const result = await applyState(table, subscriber, intent, event, finalSeconds);
    applied = result.applied;
    const sub = await withTenant(table, result.subscriber);
    if (result.applied && intent.target === 'ACTIVE') {
      emissions.push({ ...base(sub), status: 'CONFIRMED', previousStatus: result.previousState, reason: intent.reason });
    } else if (result.applied && intent.target === 'CANCELLATION_PENDING') {
      emissions.push({ ...base(sub), status: 'CANCELLATION_PENDING', previousStatus: result.previousState, reason: `${intent.reason}: its last usage is being metered` });
      await putEventRecord(table, event.id, { status: 'APPLIED', emissions }, event['detail-type'], retention);
      await emitSubscriptionChanges(emissions);
      finalRecordsSent = await finalMetering(sub, reader, context);
      await completeCancellation(table, subscriber, event.id, new Date().toISOString());
      emissions.push({ ...base(sub), status: 'CANCELLED', previousStatus: 'CANCELLATION_PENDING', reason: `${intent.reason}: final metering done (${finalRecordsSent ?? 0} records)` });
      await putEventRecord(table, event.id, { status: 'APPLIED', emissions }, event['detail-type'], retention);
      await emitSubscriptionChanges(emissions.slice(1));
      await markEmitted(table, event.id);
      return { outcome: 'APPLIED', emitted: emissions.map((e) => e.status), finalRecordsSent };
    } else if (!result.applied && intent.otherwise && result.subscriber.state === 'ACTIVE') {
      applied = true;
      emissions.push({ ...base(sub), status: intent.otherwise, reason: intent.reason });
    }
  } else if (intent.otherwise) {
    applied = true;
    const sub = await withTenant(table, (await getItem<SubscriberRecord>(table, { pk: `SUB#${subscriber}` })) ?? { subscriber, state: 'PENDING' });
    emissions.push({ ...base(sub), status: intent.otherwise, reason: intent.reason });
  }
  if (!applied) {
    metrics.addMetric(MARKETPLACE_METRICS.LIFECYCLE_EVENTS_SUPERSEDED, MetricUnit.Count, 1);
    logger.info('Marketplace event older than the recorded state: no effect');
  }
  await putEventRecord(table, event.id, { status: applied ? 'APPLIED' : 'SUPERSEDED', emissions }, event['detail-type'], retention);
  await emitSubscriptionChanges(emissions);
  await markEmitted(table, event.id);
  return { outcome: applied ? 'APPLIED' : 'SUPERSEDED', emitted: emissions.map((e) => e.status) };
}

/** The subscriber with its tenant (from its registration when the subscriber item does not name it yet). */
async function withTenant(table: string, sub: SubscriberRecord): Promise<SubscriberRecord> {
  if (sub.tenantId || !sub.registrationId) return sub;
  const reg = await getItem<{ tenantId?: string }>(table, registrationKey(sub.registrationId));
  return reg?.tenantId ? { ...sub, tenantId: reg.tenantId } : sub;
}

/** The cancelled tenant's usage so far, metered now (closed windows and the open hours' running totals). */
async function finalMetering(sub: SubscriberRecord, reader: () => UsageSource, context?: Context): Promise<number | undefined> {
  if (!sub.tenantId || !meters()) return undefined;
  const run = newRun(meteringConfig(), () => !context || context.getRemainingTimeInMillis() > 30_000);
  try {
    const sent = await meterFinal(run, sub.tenantId, reader());
    logger.info('Final metering of a cancelled subscription', { tenantId: sub.tenantId, ...run.tally.summary() });
    return sent;
  } finally {
    run.tally.emit();
  }
}

/**
 * AWS Marketplace's SaaS subscription events (the rule on the default bus): see
 * `shared.lambda/lifecycle.ts`. Throws when a step fails, so Lambda retries and the
 * dead-letter queue keeps the event in the end; every step is idempotent.
 */
export const handler = lifecycleHandler(() => UsageReader.fromEnvironment());
