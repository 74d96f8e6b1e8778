import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { MARKETPLACE_ENV, MARKETPLACE_METRICS } from './contract';
import { baseConfig, meteringConfig, meters } from './shared.lambda/config';
import {
  applyState, completeCancellation, EventRecord, getEventRecord, intentOf, markEmitted, MarketplaceEvent, putEventRecord, subscriberOfEvent,
} from './shared.lambda/lifecycle';
import { meterFinal, newRun, UsageSource } from './shared.lambda/metering';
import { metrics, publishMetrics } from './shared.lambda/metrics';
import { getItem, registrationKey, SubscriberRecord, subscriberKey } from './shared.lambda/registrations';
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
  const record = (r: Omit<EventRecord, 'emitted'>) => putEventRecord(table, event.id, r, event['detail-type'], retention);
  const seen = await getEventRecord(table, event.id);
  if (seen?.emitted) return { outcome: 'DUPLICATE', emitted: [] };
  if (seen?.cancelling && seen.subscriber) {
    // A cancellation interrupted before its final metering was done: resume it.
    return finishCancellation(table, event, seen.subscriber, [...seen.emissions], seen.emittedCount ?? 0, record, reader, context);
  }
  if (seen) {
    // Recorded, not all emitted (a crash, or EventBridge refused): emit the rest.
    await emitSubscriptionChanges(seen.emissions.slice(seen.emittedCount ?? 0));
    await markEmitted(table, event.id, seen.emissions.length, true);
    return { outcome: seen.status === 'APPLIED' ? 'APPLIED' : 'SUPERSEDED', emitted: seen.emissions.map((e) => e.status) };
  }

  const productCode = event.detail?.product?.code;
  const intent = intentOf(event);
  if (!intent || (productCode && productCode !== config.productCode)) {
    logger.info('Marketplace event not for this product, or with no effect on a subscription', { productCode });
    await record({ status: 'IGNORED', emissions: [] });
    await markEmitted(table, event.id, 0, true);
    return { outcome: 'IGNORED', emitted: [] };
  }
  const subscriber = await subscriberOfEvent(table, event);
  if (!subscriber) {
    // An agreement event before any license event linked its agreement: Marketplace sends License Updated
    // for it; the redelivery (a throw makes Lambda retry) or the license event applies it.
    metrics.addMetric(MARKETPLACE_METRICS.LIFECYCLE_EVENTS_UNMATCHED, MetricUnit.Count, 1);
    throw new Error(`Marketplace event ${event.id} (${event['detail-type']}) names agreement ${event.detail?.agreement?.id} `
      + 'that no license event has linked to a license yet: retried');
  }
  logger.appendKeys({ subscriber });

  const finalSeconds = Number(process.env[MARKETPLACE_ENV.FINAL_METERING_SECONDS] ?? 3600);
  const emissions: SubscriptionChange[] = [];
  let applied = false;
  if (intent.target) {
    const result = await applyState(table, subscriber, intent, event, finalSeconds);
    applied = result.applied;
    const sub = await withTenant(table, result.subscriber);
    if (result.applied && intent.target === 'ACTIVE') {
      emissions.push({ ...changeBase(event, subscriber, sub), status: 'CONFIRMED', previousStatus: result.previousState, reason: intent.reason });
    } else if (result.applied && intent.target === 'CANCELLATION_PENDING') {
      emissions.push({
        ...changeBase(event, subscriber, sub),
        status: 'CANCELLATION_PENDING',
        previousStatus: result.previousState,
        reason: `${intent.reason}: its last usage is being metered`,
      });
      await record({ status: 'APPLIED', emissions, emittedCount: 0, subscriber, cancelling: true });
      return finishCancellation(table, event, subscriber, emissions, 0, record, reader, context);
    } else if (!result.applied && intent.otherwise && result.subscriber.state === 'ACTIVE') {
      applied = true;
      emissions.push({ ...changeBase(event, subscriber, sub), status: intent.otherwise, reason: intent.reason });
    }
  } else if (intent.otherwise) {
    applied = true;
    const sub = await withTenant(table, (await getItem<SubscriberRecord>(table, subscriberKey(subscriber))) ?? { subscriber, state: 'PENDING' });
    emissions.push({ ...changeBase(event, subscriber, sub), status: intent.otherwise, reason: intent.reason });
  }
  if (!applied) {
    metrics.addMetric(MARKETPLACE_METRICS.LIFECYCLE_EVENTS_SUPERSEDED, MetricUnit.Count, 1);
    logger.info('Marketplace event older than the recorded state: no effect');
  }
  await record({ status: applied ? 'APPLIED' : 'SUPERSEDED', emissions, subscriber });
  await emitSubscriptionChanges(emissions);
  await markEmitted(table, event.id, emissions.length, true);
  return { outcome: applied ? 'APPLIED' : 'SUPERSEDED', emitted: emissions.map((e) => e.status) };
}

/** The fields of a subscription changed event that a Marketplace event and its subscriber give. */
function changeBase(event: MarketplaceEvent, subscriber: string, sub: SubscriberRecord): Omit<SubscriptionChange, 'status' | 'reason'> {
  return {
    tenantId: sub.tenantId,
    registrationId: sub.registrationId,
    licenseArn: subscriber.startsWith('arn:') ? subscriber : undefined,
    customerAWSAccountId: event.detail?.acceptor?.accountId,
    agreementId: event.detail?.agreement?.id ?? sub.agreementId,
    occurredAt: event.time,
    eventId: event.id,
    marketplaceEvent: event['detail-type'],
  };
}

/**
 * The rest of a cancellation, resumable at every step: CANCELLATION_PENDING on the bus, the tenant's
 * usage so far metered, the subscriber CANCELLED (only while this event's ending is its state), then
 * CANCELLED on the bus.
 */
async function finishCancellation(
  table: string, event: MarketplaceEvent, subscriber: string, emissions: SubscriptionChange[], emittedCount: number,
  record: (r: Omit<EventRecord, 'emitted'>) => Promise<void>, reader: () => UsageSource, context?: Context,
): Promise<LifecycleResult> {
  if (emittedCount < 1) {
    await emitSubscriptionChanges(emissions.slice(0, 1));
    await markEmitted(table, event.id, 1, false);
  }
  const sub = await withTenant(table, (await getItem<SubscriberRecord>(table, subscriberKey(subscriber))) ?? { subscriber, state: 'PENDING' });
  const finalRecordsSent = await finalMetering(sub, reader, context);
  const completed = await completeCancellation(table, subscriber, event.id, new Date().toISOString());
  const reason = emissions[0].reason.replace(/: its last usage is being metered$/, '');
  if (completed || sub.state === 'CANCELLED') {
    emissions.push({
      ...changeBase(event, subscriber, sub),
      status: 'CANCELLED',
      previousStatus: 'CANCELLATION_PENDING',
      reason: `${reason}: final metering done (${finalRecordsSent ?? 0} records)`,
    });
  }
  await record({ status: 'APPLIED', emissions, emittedCount: 1, subscriber, cancelling: false });
  await emitSubscriptionChanges(emissions.slice(1));
  await markEmitted(table, event.id, emissions.length, true);
  return { outcome: 'APPLIED', emitted: emissions.map((e) => e.status), finalRecordsSent };
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
