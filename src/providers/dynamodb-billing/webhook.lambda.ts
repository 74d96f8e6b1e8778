import { getSecret } from '@aws-lambda-powertools/parameters/secrets';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { WEBHOOK_ENV } from './contract';
import { secretsFromSecretString, verifySignature, VerifyResult } from './shared.lambda/signature';
import { claimEvent, completeClaim, releaseClaim } from './shared.lambda/webhook-claim';
import { readWebhookEvent, WebhookEvent } from './shared.lambda/webhook-event';
import { sdkClient } from '../../shared.lambda/aws-clients';
import { numberEnv, requiredEnv } from '../../shared.lambda/env';
import { logger } from '../../shared.lambda/logger';
import { payloadFormat, webhookBody, webhookHeader, WebhookRequest, webhookRequestId, WebhookResponse } from '../../shared.lambda/webhook-request';

type Response = WebhookResponse;

let lastForcedRefresh = 0;

function respond(statusCode: number, message: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): Response {
  return { statusCode, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ message, ...extra }) };
}

function refuse(statusCode: number, reason: string, message: string): Response {
  logger.warn('Webhook refused', { reason });
  return respond(statusCode, message);
}

async function signingSecrets(forceFetch: boolean): Promise<string[]> {
  const value = await getSecret(requiredEnv(WEBHOOK_ENV.WEBHOOK_SECRET_ARN), {
    maxAge: numberEnv(WEBHOOK_ENV.SECRET_CACHE_SECONDS, { min: 0, fallback: 60 }),
    forceFetch,
  });
  if (typeof value !== 'string') throw new Error('The webhook signing secret has no SecretString');
  return secretsFromSecretString(value);
}

async function verify(event: WebhookRequest, payload: Buffer, nowSeconds: number): Promise<VerifyResult> {
  const signature = webhookHeader(event, requiredEnv(WEBHOOK_ENV.SIGNATURE_HEADER_NAME));
  const toleranceSeconds = numberEnv(WEBHOOK_ENV.SIGNATURE_TOLERANCE_SECONDS, { min: 1, integer: true });
  const check = async (force: boolean) =>
    verifySignature({ header: signature, payload, secrets: await signingSecrets(force), toleranceSeconds, nowSeconds });
  const verdict = await check(false);
  if (verdict.ok || verdict.reason !== 'mismatch' || Date.now() - lastForcedRefresh <= 30_000) return verdict;
  // The secret may have just been rotated: read it again, at most twice a minute.
  lastForcedRefresh = Date.now();
  return check(true);
}

/** Puts the billing event on the bus; throws when EventBridge refuses it. */
async function emit(event: WebhookEvent): Promise<string> {
  const success = event.kind === 'success';
  const detailType = requiredEnv(success ? WEBHOOK_ENV.BILLING_SUCCESS_DETAIL_TYPE : WEBHOOK_ENV.BILLING_FAILURE_DETAIL_TYPE);
  if (!event.detail?.tenantId) logger.warn('Payment event without a tenant id (data.object.metadata.tenantId): emitted without one');
  const result = await sdkClient(EventBridgeClient).send(new PutEventsCommand({
    Entries: [{
      EventBusName: requiredEnv(WEBHOOK_ENV.EVENT_BUS_ARN),
      Source: requiredEnv(success ? WEBHOOK_ENV.BILLING_SUCCESS_SOURCE : WEBHOOK_ENV.BILLING_FAILURE_SOURCE),
      DetailType: detailType,
      Detail: JSON.stringify(event.detail),
    }],
  }));
  if ((result.FailedEntryCount ?? 0) > 0) {
    const failed = result.Entries?.find((e) => e.ErrorCode);
    throw new Error(`EventBridge refused the ${detailType} event: ${failed?.ErrorCode ?? 'unknown'} ${failed?.ErrorMessage ?? ''}`);
  }
  return detailType;
}

/**
 * Receives the billing system's signed webhook calls (`POST /billing/<path>`,
 * from an HTTP API, payload 2.0, or a REST API, payload 1.0:
 * `shared.lambda/webhook-request.ts`):
 *
 * 1. refuses a body over the cap (413), a missing, malformed, wrong or stale
 *    signature (400/401), and a body whose fields do not hold (400), with no write;
 * 2. claims the event id: a delivery of an id another delivery is processing
 *    gets 409 with `Retry-After`; one already processed gets 200 `duplicate`;
 * 3. emits the billing success or failure event on the bus (other types are acknowledged);
 * 4. records the id as done.
 *
 * One event is emitted per event id, unless the function dies between 3 and 4:
 * then the claim's lease expires and the sender's retry emits it again, with the
 * same `detail.eventId`.
 */
export const handler = async (request: WebhookRequest): Promise<Response> => {
  logger.resetKeys();
  logger.appendKeys({ requestId: webhookRequestId(request), payloadFormat: payloadFormat(request) });
  const payload = webhookBody(request, numberEnv(WEBHOOK_ENV.MAX_WEBHOOK_BODY_BYTES, { min: 1, integer: true }));
  if (!payload) return refuse(413, 'too-large', 'payload too large');

  const nowSeconds = Math.floor(Date.now() / 1000);
  const verdict = await verify(request, payload, nowSeconds);
  if (!verdict.ok) {
    const message = { missing: 'missing signature', malformed: 'malformed signature', mismatch: 'invalid signature', stale: 'timestamp outside tolerance' }[verdict.reason];
    return refuse(verdict.reason === 'malformed' ? 400 : 401, verdict.reason, message);
  }

  const read = readWebhookEvent(payload, nowSeconds);
  if (!read.event) return refuse(400, 'invalid-event', read.problem);
  const event = read.event;
  logger.appendKeys({ webhookEventId: event.eventId, webhookType: event.type });

  const table = requiredEnv(WEBHOOK_ENV.WEBHOOK_EVENTS_TABLE_NAME);
  const claim = await claimEvent(event.eventId, event.type, {
    table,
    nowSeconds,
    leaseSeconds: numberEnv(WEBHOOK_ENV.CLAIM_LEASE_SECONDS, { min: 1, integer: true }),
    retentionSeconds: numberEnv(WEBHOOK_ENV.PROCESSED_EVENT_RETENTION_SECONDS, { min: 1, integer: true }),
  });
  if (claim.state === 'DONE') {
    logger.info('Webhook event already processed: ignored');
    return respond(200, 'duplicate', { duplicate: true });
  }
  if (claim.state === 'BUSY') {
    logger.info('Webhook event being processed by another delivery: the sender retries later');
    return respond(409, 'event being processed; retry later', {}, { 'retry-after': String(claim.retryAfterSeconds) });
  }

  let emitted: string | undefined;
  try {
    if (event.kind !== 'ignored') emitted = await emit(event);
  } catch (error) {
    await releaseClaim(table, event.eventId, claim.token).catch((e) => logger.warn('Could not release the claim; it expires with its lease', { error: String(e) }));
    throw error;
  }
  if (!await completeClaim(table, event.eventId, claim.token, emitted ?? 'IGNORED')) {
    logger.error('The claim on the event expired before it was recorded: another delivery may emit it again', { emitted });
  }
  logger.info('Webhook event processed', { emitted: emitted ?? 'none' });
  return respond(200, 'received', { emitted: emitted ?? null });
};
