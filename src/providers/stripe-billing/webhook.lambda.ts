import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { STRIPE_ENV, STRIPE_METRICS, WEBHOOK_EVENTS_TABLE_LAYOUT as L } from './contract';
import { metrics, publishMetrics } from './shared.lambda/metrics';
import { tenantOfCustomer } from './shared.lambda/tenants';
import { CLAIM_SECONDS, MAX_BODY_BYTES, Refusal, route, signingSecrets, verify } from './shared.lambda/webhook';
import { documentClient, sdkClient } from '../../shared.lambda/aws-clients';
import { isConditionalCheckFailed } from '../../shared.lambda/dynamodb';
import { numberEnv, requiredEnv } from '../../shared.lambda/env';
import { logger } from '../../shared.lambda/logger';

let lastForcedRefresh = 0;

function respond(statusCode: number, message: string, extra: Record<string, unknown> = {}): APIGatewayProxyStructuredResultV2 {
  return { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message, ...extra }) };
}

function refuse(reason: Refusal | string, status = 400): APIGatewayProxyStructuredResultV2 {
  logger.warn('Webhook refused', { reason });
  metrics.addMetric(STRIPE_METRICS.WEBHOOK_REFUSED, MetricUnit.Count, 1);
  return respond(status, `refused: ${reason}`);
}

function signatureHeader(event: APIGatewayProxyEventV2): string | undefined {
  const headers = event.headers ?? {};
  const key = Object.keys(headers).find((k) => k.toLowerCase() === 'stripe-signature');
  return key === undefined ? undefined : headers[key];
}

/**
 * Stripe's webhook (`POST /billing/<path>`, HTTP API payload 2.0): see
 * `shared.lambda/webhook.ts` for the steps. Answers 2xx when done or ignored,
 * 400/401 on a refusal (no side effect), 409 while another delivery of the same
 * event is being processed, 5xx on an infrastructure failure (Stripe retries).
 */
export const handler = async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
  logger.resetKeys();
  logger.appendKeys({ requestId: event.requestContext?.requestId });
  try {
    return await handle(event);
  } finally {
    publishMetrics();
  }
};

async function handle(event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> {
  const raw = event.body ?? '';
  const payload = event.isBase64Encoded ? Buffer.from(raw, 'base64') : Buffer.from(raw, 'utf8');
  if (payload.length > MAX_BODY_BYTES) return refuse('body too large', 413);

  const nowSeconds = Math.floor(Date.now() / 1000);
  const header = signatureHeader(event);
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
  const token = `${event.requestContext?.requestId ?? 'local'}-${Math.random().toString(36).slice(2)}`;
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

  // Emit (step 4).
  const success = decision.kind === 'success';
  const detailType = requiredEnv(success ? STRIPE_ENV.BILLING_SUCCESS_DETAIL_TYPE : STRIPE_ENV.BILLING_FAILURE_DETAIL_TYPE);
  const result = await sdkClient(EventBridgeClient).send(new PutEventsCommand({
    Entries: [{
      EventBusName: requiredEnv(STRIPE_ENV.EVENT_BUS_ARN),
      Source: requiredEnv(success ? STRIPE_ENV.BILLING_SUCCESS_SOURCE : STRIPE_ENV.BILLING_FAILURE_SOURCE),
      DetailType: detailType,
      Detail: JSON.stringify({ tenantId, ...decision.detail }),
    }],
  }));
  if ((result.FailedEntryCount ?? 0) > 0) {
    const failed = result.Entries?.find((e) => e.ErrorCode);
    throw new Error(`EventBridge refused the ${detailType} event: ${failed?.ErrorCode ?? 'unknown'}`);
  }
  try {
    await documentClient().send(new UpdateCommand({
      TableName: table,
      Key: key,
      UpdateExpression: 'SET #status = :done, emitted = :emitted, processedAt = :at REMOVE claimExpiresAt',
      ConditionExpression: 'claimToken = :token',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: { ':done': 'DONE', ':emitted': detailType, ':at': new Date().toISOString(), ':token': token },
    }));
  } catch (error) {
    if (!isConditionalCheckFailed(error)) throw error;
    logger.warn('The claim expired before the event was recorded: another delivery may emit it again');
  }
  logger.info('Webhook event processed', { emitted: detailType });
  return respond(200, 'received', { emitted: detailType });
}
