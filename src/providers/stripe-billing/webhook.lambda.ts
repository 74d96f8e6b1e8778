import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { STRIPE_ENV, STRIPE_METRICS, WEBHOOK_EVENTS_TABLE_LAYOUT as L } from './contract';
import { metrics, publishMetrics } from './shared.lambda/metrics';
import { getTenant, tenantOfCustomer } from './shared.lambda/tenants';
import { Applied, CLAIM_SECONDS, Emission, emissions, MAX_BODY_BYTES, Processed, Refusal, route, signingSecrets, verify } from './shared.lambda/webhook';
import { recordCustomerDeleted, recordObjectState, recordSubscriptionStatus } from './shared.lambda/webhook-state';
import { documentClient, sdkClient } from '../../shared.lambda/aws-clients';
import { isConditionalCheckFailed } from '../../shared.lambda/dynamodb';
import { numberEnv, requiredEnv } from '../../shared.lambda/env';
import { logger } from '../../shared.lambda/logger';
import { payloadFormat, webhookBody, webhookHeader, WebhookRequest, webhookRequestId, WebhookResponse } from '../../shared.lambda/webhook-request';

let lastForcedRefresh = 0;

function respond(statusCode: number, message: string, extra: Record<string, unknown> = {}): WebhookResponse {
  return { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message, ...extra }) };
}

function refuse(reason: Refusal | string, status = 400): WebhookResponse {
  logger.warn('Webhook refused', { reason });
  metrics.addMetric(STRIPE_METRICS.WEBHOOK_REFUSED, MetricUnit.Count, 1);
  return respond(status, `refused: ${reason}`);
}

/**
 * Stripe's webhook (`POST /billing/<path>`, from an HTTP API, payload 2.0, or a
 * REST API, payload 1.0: `shared.lambda/webhook-request.ts`): see
 * `shared.lambda/webhook.ts` for the steps. Answers 2xx when done or ignored,
 * 400/401 on a refusal (no side effect), 409 while another delivery of the same
 * event is being processed, 5xx on an infrastructure failure (Stripe retries).
 */
export const handler = async (event: WebhookRequest): Promise<WebhookResponse> => {
  logger.resetKeys();
  logger.appendKeys({ requestId: webhookRequestId(event), payloadFormat: payloadFormat(event) });
  try {
    return await handle(event);
  } finally {
    publishMetrics();
  }
};

async function handle(event: WebhookRequest): Promise<WebhookResponse> {
  const payload = webhookBody(event, MAX_BODY_BYTES);
  if (!payload) return refuse('body too large', 413);

  const nowSeconds = Math.floor(Date.now() / 1000);
  const header = webhookHeader(event, 'stripe-signature');
  let verdict = verify(payload, header, await signingSecrets(false), nowSeconds);
  if (!verdict.ok && verdict.reason === 'bad-signature' && Date.now() - lastForcedRefresh > 30_000) {
    // The secret may just have been rotated: read it again, at most twice a minute.
    lastForcedRefresh = Date.now();
    verdict = verify(payload, header, await signingSecrets(true), nowSeconds);
  }
  if (!verdict.ok) return refuse(verdict.reason, verdict.reason === 'bad-signature' || verdict.reason === 'stale' ? 401 : 400);

  const retention = numberEnv(STRIPE_ENV.PROCESSED_EVENT_RETENTION_SECONDS, { min: 86400 * 2, integer: true });
  const decision = route(verdict.event, nowSeconds, retention);
  logger.appendKeys({ stripeEventId: verdict.event.id, stripeEventType: verdict.event.type });
  if (decision.action === 'refuse') return refuse(decision.why);
  if (decision.action === 'ignore') {
    logger.info('Webhook event acknowledged and ignored', { why: decision.why });
    return respond(200, 'ignored');
  }
  const tenantId = await tenantOfCustomer(decision.customerId);
  if (!tenantId) {
    logger.warn('Webhook event about a customer no tenant maps to: acknowledged, no event', { customerId: decision.customerId });
    metrics.addMetric(STRIPE_METRICS.WEBHOOK_UNKNOWN_CUSTOMER, MetricUnit.Count, 1);
    return respond(200, 'unknown customer');
  }
  logger.appendKeys({ tenantId });

  // Claim the event id (step 3).
  const table = requiredEnv(STRIPE_ENV.WEBHOOK_EVENTS_TABLE_NAME);
  const key = { [L.partitionKey]: `${L.eventPrefix}${verdict.event.id}` };
  const token = `${webhookRequestId(event) ?? 'local'}-${Math.random().toString(36).slice(2)}`;
  try {
    await documentClient().send(new PutCommand({
      TableName: table,
      Item: {
        ...key,
        status: 'CLAIMED',
        claimToken: token,
        claimExpiresAt: nowSeconds + CLAIM_SECONDS,
        type: verdict.event.type,
        receivedAt: new Date(nowSeconds * 1000).toISOString(),
        [L.ttlAttribute]: nowSeconds + retention,
      },
      ConditionExpression: 'attribute_not_exists(#pk) OR (#status = :claimed AND claimExpiresAt < :now)',
      ExpressionAttributeNames: { '#pk': L.partitionKey, '#status': 'status' },
      ExpressionAttributeValues: { ':claimed': 'CLAIMED', ':now': nowSeconds },
    }));
  } catch (error) {
    if (!isConditionalCheckFailed(error)) throw error;
    const seen = await documentClient().send(new GetCommand({ TableName: table, Key: key, ConsistentRead: true }));
    if (seen.Item?.status === 'DONE') {
      logger.info('Webhook event already processed: ignored');
      return respond(200, 'duplicate', { duplicate: true });
    }
    logger.info('Webhook event being processed by another delivery: asking Stripe to retry later');
    return respond(409, 'in progress; retry later');
  }

  // Order (step 4): an event older than the recorded state of its invoice or subscription emits nothing.
  const recorded = await recordObjectState(decision.change, nowSeconds, retention);
  if (!recorded.applied) {
    logger.info('Webhook event older than the recorded state of its object: acknowledged, no event',
      { object: decision.change.id, eventState: decision.change.state, recordedState: recorded.current });
    metrics.addMetric(STRIPE_METRICS.WEBHOOK_SUPERSEDED, MetricUnit.Count, 1);
    await markDone(table, key, token, [], true);
    return respond(200, 'superseded', { superseded: true });
  }
  const applied = await recordOnTenant(decision, tenantId, recorded.previousState);

  // Emit (step 5).
  const planned = emissions(decision, applied, tenantId);
  const emitted = await emit(planned);
  await markDone(table, key, token, emitted, false);
  logger.info('Webhook event processed', { emitted });
  return respond(200, 'received', emitted.length ? { emitted } : {});
}

/** Writes what the tenant mapping keeps of the event (subscription status, deleted customer); returns what the emissions need. */
async function recordOnTenant(decision: Processed, tenantId: string, previousState: string | undefined): Promise<Applied> {
  if (decision.change.kind === 'subscription') {
    const written = await recordSubscriptionStatus(tenantId, decision.change);
    if (!written) logger.info('Subscription status not written on the tenant mapping: not its current subscription, or a newer status is recorded');
    return { previousState };
  }
  if (decision.change.kind === 'customer') {
    const tenant = await getTenant(tenantId);
    const current = tenant?.customerId === decision.customerId;
    const offboarding = tenant?.status === 'OFFBOARDING' || tenant?.status === 'OFFBOARDED';
    if (current && !offboarding) await recordCustomerDeleted(tenantId, decision.customerId, decision.change.at);
    // The recorded status, when it is of the tenant's current subscription.
    const recorded = tenant as { subscriptionStatus?: unknown; subscriptionStatusOf?: unknown } | undefined;
    const statusOfCurrent = typeof recorded?.subscriptionStatus === 'string'
      && (recorded.subscriptionStatusOf === undefined || recorded.subscriptionStatusOf === tenant?.subscriptionId);
    return {
      tenantSubscriptionId: current ? tenant?.subscriptionId : undefined,
      tenantSubscriptionStatus: current && statusOfCurrent ? recorded!.subscriptionStatus as string : undefined,
      offboarding: current && offboarding,
    };
  }
  return { previousState };
}

/** Puts the events on the bus in one call; returns their detail types. */
async function emit(planned: Emission[]): Promise<string[]> {
  if (planned.length === 0) return [];
  const names = {
    success: [STRIPE_ENV.BILLING_SUCCESS_SOURCE, STRIPE_ENV.BILLING_SUCCESS_DETAIL_TYPE],
    failure: [STRIPE_ENV.BILLING_FAILURE_SOURCE, STRIPE_ENV.BILLING_FAILURE_DETAIL_TYPE],
    subscriptionChanged: [STRIPE_ENV.BILLING_SUBSCRIPTION_CHANGED_SOURCE, STRIPE_ENV.BILLING_SUBSCRIPTION_CHANGED_DETAIL_TYPE],
  } as const;
  const entries = planned.map((p) => ({
    EventBusName: requiredEnv(STRIPE_ENV.EVENT_BUS_ARN),
    Source: requiredEnv(names[p.kind][0]),
    DetailType: requiredEnv(names[p.kind][1]),
    Detail: JSON.stringify(p.detail),
  }));
  const result = await sdkClient(EventBridgeClient).send(new PutEventsCommand({ Entries: entries }));
  if ((result.FailedEntryCount ?? 0) > 0) {
    // Stripe retries the whole event: an entry that was put may be put again (consumers deduplicate on detail.eventId).
    const failed = result.Entries?.find((e) => e.ErrorCode);
    throw new Error(`EventBridge refused the ${entries.map((e) => e.DetailType).join(', ')} events: ${failed?.ErrorCode ?? 'unknown'}`);
  }
  return entries.map((e) => e.DetailType);
}

/** Records the event id as done, if this delivery still holds its claim. */
async function markDone(table: string, key: Record<string, string>, token: string, emitted: string[], superseded: boolean): Promise<void> {
  try {
    await documentClient().send(new UpdateCommand({
      TableName: table,
      Key: key,
      UpdateExpression: 'SET #status = :done, emitted = :emitted, superseded = :superseded, processedAt = :at REMOVE claimExpiresAt',
      ConditionExpression: 'claimToken = :token',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: { ':done': 'DONE', ':emitted': emitted, ':superseded': superseded, ':at': new Date().toISOString(), ':token': token },
    }));
  } catch (error) {
    if (!isConditionalCheckFailed(error)) throw error;
    logger.warn('The claim expired before the event was recorded: another delivery may emit it again');
  }
}
