import { getSecret } from '@aws-lambda-powertools/parameters/secrets';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { webhookEventPk } from './shared.lambda/layout';
import { ddb, isConditionalCheckFailed, logger, requiredEnv } from './shared.lambda/runtime';
import { secretsFromSecretString, verifySignature } from './shared.lambda/signature';

/** Payment event types that become the billing success event. */
export const SUCCESS_TYPES = ['invoice.paid', 'invoice.payment_succeeded', 'payment_intent.succeeded', 'charge.succeeded', 'payment.succeeded'];
/** Payment event types that become the billing failure event. */
export const FAILURE_TYPES = ['invoice.payment_failed', 'payment_intent.payment_failed', 'charge.failed', 'payment.failed'];

const EVENT_ID = /^[\w.:@+=/-]{1,256}$/;

let eventBridge: EventBridgeClient | undefined;
let lastForcedRefresh = 0;

function respond(statusCode: number, message: string, extra: Record<string, unknown> = {}): APIGatewayProxyStructuredResultV2 {
  return { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message, ...extra }) };
}

function header(event: APIGatewayProxyEventV2, name: string): string | undefined {
  const headers = event.headers ?? {};
  if (headers[name] !== undefined) return headers[name];
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : headers[key];
}

async function signingSecrets(forceFetch: boolean): Promise<string[]> {
  const value = await getSecret(requiredEnv('WEBHOOK_SECRET_ARN'), {
    maxAge: Number(process.env.SECRET_CACHE_SECONDS ?? 60),
    forceFetch,
  });
  if (typeof value !== 'string') throw new Error('The webhook signing secret has no SecretString');
  return secretsFromSecretString(value);
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/**
 * Receives the billing system's signed webhook calls (`POST /billing/<path>`,
 * HTTP API payload 2.0). Verifies the signature on the raw (base64-decoded)
 * body within the tolerance, refuses without side effects, ignores event ids
 * already processed, and turns payment events into the billing success or
 * failure event on the bus. Emission is at least once: a call that failed after
 * emitting is re-emitted on the sender's retry, with the same `detail.eventId`.
 */
export const handler = async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
  const maxBytes = Number(process.env.MAX_BODY_BYTES ?? 262_144);
  const tolerance = Number(process.env.SIGNATURE_TOLERANCE_SECONDS ?? 300);
  const headerName = (process.env.SIGNATURE_HEADER ?? 'x-billing-signature').toLowerCase();
  logger.appendKeys({ requestId: event.requestContext?.requestId });

  const raw = event.body ?? '';
  if (event.isBase64Encoded ? Math.floor((raw.length * 3) / 4) - 2 > maxBytes : Buffer.byteLength(raw, 'utf8') > maxBytes) {
    logger.warn('Webhook refused', { reason: 'too-large' });
    return respond(413, 'payload too large');
  }
  const payload = event.isBase64Encoded ? Buffer.from(raw, 'base64') : Buffer.from(raw, 'utf8');
  if (payload.length > maxBytes) {
    logger.warn('Webhook refused', { reason: 'too-large' });
    return respond(413, 'payload too large');
  }

  const nowSeconds = Math.floor(Date.now() / 1000);
  const signature = header(event, headerName);
  let verdict = verifySignature({ header: signature, payload, secrets: await signingSecrets(false), toleranceSeconds: tolerance, nowSeconds });
  if (!verdict.ok && verdict.reason === 'mismatch' && Date.now() - lastForcedRefresh > 30_000) {
    // The secret may have just been rotated: read it again, at most twice a minute.
    lastForcedRefresh = Date.now();
    verdict = verifySignature({ header: signature, payload, secrets: await signingSecrets(true), toleranceSeconds: tolerance, nowSeconds });
  }
  if (!verdict.ok) {
    logger.warn('Webhook refused', { reason: verdict.reason });
    const status = verdict.reason === 'malformed' ? 400 : 401;
    return respond(status, { missing: 'missing signature', malformed: 'malformed signature', mismatch: 'invalid signature', stale: 'timestamp outside tolerance' }[verdict.reason]);
  }

  let body: Obj;
  try {
    body = obj(JSON.parse(payload.toString('utf8')));
  } catch {
    logger.warn('Webhook refused', { reason: 'not-json' });
    return respond(400, 'body is not JSON');
  }
  const eventId = str(body.id);
  const type = str(body.type);
  if (!eventId || !EVENT_ID.test(eventId) || !type) {
    logger.warn('Webhook refused', { reason: 'no-id-or-type' });
    return respond(400, 'event id and type are required');
  }
  logger.appendKeys({ webhookEventId: eventId, webhookType: type });

  const table = requiredEnv('WEBHOOK_EVENTS_TABLE_NAME');
  const key = { pk: webhookEventPk(eventId) };
  const retentionSeconds = Number(process.env.PROCESSED_EVENT_RETENTION_SECONDS ?? 30 * 24 * 3600);
  try {
    await ddb().send(new PutCommand({
      TableName: table,
      Item: { ...key, status: 'PENDING', type, receivedAt: new Date().toISOString(), expiresAt: nowSeconds + retentionSeconds },
      ConditionExpression: 'attribute_not_exists(pk)',
    }));
  } catch (error) {
    if (!isConditionalCheckFailed(error)) throw error;
    const seen = await ddb().send(new GetCommand({ TableName: table, Key: key, ConsistentRead: true }));
    if (seen.Item?.status === 'DONE') {
      logger.info('Webhook event already processed: ignored');
      return respond(200, 'duplicate', { duplicate: true });
    }
    logger.info('Webhook event seen before but not finished: processing it again');
  }

  const kind = SUCCESS_TYPES.includes(type) ? 'success' : FAILURE_TYPES.includes(type) ? 'failure' : 'ignored';
  let emitted: string | undefined;
  if (kind !== 'ignored') {
    const object = obj(obj(body.data).object);
    const metadata = obj(object.metadata);
    const tenantId = str(metadata.tenantId) ?? str(object.tenantId) ?? str(body.tenantId);
    const detailType = requiredEnv(kind === 'success' ? 'BILLING_SUCCESS_DETAIL_TYPE' : 'BILLING_FAILURE_DETAIL_TYPE');
    if (!tenantId) logger.warn('Payment event without a tenant id (data.object.metadata.tenantId): emitted without one');
    eventBridge ??= new EventBridgeClient({});
    const result = await eventBridge.send(new PutEventsCommand({
      Entries: [{
        EventBusName: requiredEnv('EVENT_BUS_NAME'),
        Source: (kind === 'failure' ? process.env.BILLING_FAILURE_EVENT_SOURCE : undefined) ?? requiredEnv('BILLING_EVENT_SOURCE'),
        DetailType: detailType,
        Detail: JSON.stringify({
          eventId,
          webhookType: type,
          tenantId,
          customerId: str(object.customer) ?? str(object.customerId),
          invoiceId: str(object.invoice) ?? (type.startsWith('invoice.') ? str(object.id) : undefined),
          amount: typeof object.amount_paid === 'number' ? object.amount_paid : typeof object.amount_due === 'number' ? object.amount_due : object.amount,
          currency: str(object.currency),
          occurredAt: typeof body.created === 'number' ? new Date(body.created * 1000).toISOString() : undefined,
        }),
      }],
    }));
    if ((result.FailedEntryCount ?? 0) > 0) {
      const failed = result.Entries?.find((e) => e.ErrorCode);
      throw new Error(`EventBridge refused the ${detailType} event: ${failed?.ErrorCode ?? 'unknown'} ${failed?.ErrorMessage ?? ''}`);
    }
    emitted = detailType;
  }

  await ddb().send(new UpdateCommand({
    TableName: table,
    Key: key,
    UpdateExpression: 'SET #status = :done, outcome = :outcome, processedAt = :now',
    ExpressionAttributeNames: { '#status': 'status' },
    ExpressionAttributeValues: { ':done': 'DONE', ':outcome': emitted ?? 'IGNORED', ':now': new Date().toISOString() },
  }));
  logger.info('Webhook event processed', { emitted: emitted ?? 'none' });
  return respond(200, 'received', { emitted: emitted ?? null });
};
