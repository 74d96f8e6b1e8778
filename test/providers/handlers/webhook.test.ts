/**
 * The webhook, bundled as Lambda runs it, against moto (DynamoDB, Secrets
 * Manager, EventBridge routing to SQS) with the real AWS SDK v3. Every refusal
 * is checked for side effects: no processed-event item, no event on the bus.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateSecretCommand, PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DynamoDBDocumentClient, GetCommand, PutCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEvent, APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import Stripe from 'stripe';
import { bundledHandler, captureOutput, FaultProxy, synthesizedSchemas } from './harness';
import { BusCapture, BusEvent } from '../../../examples/local-flow/bus';
import { WEBHOOK_ENV } from '../../../src/providers/dynamodb-billing/contract';
import { computeSignature, signatureHeader } from '../../../src/providers/dynamodb-billing/shared.lambda/signature';
import { HttpCall, httpApiEvent, restApiEvent } from '../../support/api-gateway-events';
import { startMoto, Moto } from '../../support/emulators';
import { createTable } from '../support';

type Webhook = (event: APIGatewayProxyEventV2 | APIGatewayProxyEvent) => Promise<APIGatewayProxyStructuredResultV2>;

const TABLE = 'webhook-events';
const SECRET = 'whsec_current_0123456789abcdefghijklmnopqrstuvwxyz';
const OLD_SECRET = 'whsec_old_zyxwvutsrqponmlkjihgfedcba9876543210';
let moto: Moto;
let proxy: FaultProxy;
let doc: DynamoDBDocumentClient;
let billingEvents: BusCapture;
let sm: SecretsManagerClient;
let secretArn: string;
let webhook: Webhook;
let seq = 0;

function paymentEvent(type = 'invoice.paid', id = `evt_${++seq}_${Date.now()}`) {
  return {
    id,
    type,
    created: Math.floor(Date.now() / 1000),
    data: { object: { id: `in_${seq}`, customer: 'cus_123', amount_paid: 4200, currency: 'usd', metadata: { tenantId: 'tenant-1' } } },
  };
}

function withObject(fields: Record<string, unknown>) {
  const event = paymentEvent();
  return { ...event, data: { object: { ...event.data.object, ...fields } } };
}

function request(body: string, headers: Record<string, string | undefined>, isBase64Encoded = false): APIGatewayProxyEventV2 {
  return {
    version: '2.0',
    routeKey: 'POST /billing/webhook',
    rawPath: '/billing/webhook',
    rawQueryString: '',
    headers: Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== undefined)) as Record<string, string>,
    requestContext: { requestId: `req-${++seq}`, http: { method: 'POST', path: '/billing/webhook' } } as APIGatewayProxyEventV2['requestContext'],
    body,
    isBase64Encoded,
  };
}

function signed(payload: string, opts: { secrets?: string[]; timestamp?: number } = {}): APIGatewayProxyEventV2 {
  return request(payload, { 'x-billing-signature': signatureHeader(opts.secrets ?? [SECRET], payload, opts.timestamp) });
}

async function processedCount(): Promise<number> {
  return (await doc.send(new ScanCommand({ TableName: TABLE, Select: 'COUNT', ConsistentRead: true }))).Count ?? 0;
}

/** Receives (and deletes) every billing event that reached the queue through the bus. */
function drainBus(waitSeconds = 1): Promise<BusEvent[]> {
  return billingEvents.drain(waitSeconds);
}

/** Invokes the webhook and measures its side effects. */
async function call(event: APIGatewayProxyEventV2 | APIGatewayProxyEvent) {
  const before = await processedCount();
  const { result, error, output } = await captureOutput(() => webhook(event));
  if (error) throw error;
  const emitted = await drainBus();
  return { status: result!.statusCode, body: JSON.parse(String(result!.body)), itemsWritten: (await processedCount()) - before, emitted, output };
}

beforeAll(async () => {
  moto = await startMoto();
  // Everything reaches moto one request at a time, as DynamoDB makes each conditional write atomic (see FaultProxy).
  proxy = new FaultProxy(moto.endpoint, { serialize: true });
  process.env.AWS_ENDPOINT_URL = await proxy.start();
  await createTable(synthesizedSchemas().webhookEvents(TABLE));
  doc = DynamoDBDocumentClient.from(new DynamoDBClient({}));
  sm = new SecretsManagerClient({});
  secretArn = (await sm.send(new CreateSecretCommand({ Name: 'billing/webhook', SecretString: SECRET }))).ARN!;
  billingEvents = await BusCapture.start('billing-events', { 'source': ['sbt.control.plane'], 'detail-type': ['sbt_aws_billingSuccess', 'sbt_aws_billingFailure'] });
  Object.assign(process.env, {
    [WEBHOOK_ENV.WEBHOOK_EVENTS_TABLE_NAME]: TABLE,
    [WEBHOOK_ENV.WEBHOOK_SECRET_ARN]: secretArn,
    [WEBHOOK_ENV.SIGNATURE_HEADER_NAME]: 'x-billing-signature',
    [WEBHOOK_ENV.SIGNATURE_TOLERANCE_SECONDS]: '300',
    [WEBHOOK_ENV.MAX_WEBHOOK_BODY_BYTES]: '4096',
    [WEBHOOK_ENV.PROCESSED_EVENT_RETENTION_SECONDS]: String(30 * 86400),
    [WEBHOOK_ENV.CLAIM_LEASE_SECONDS]: '30',
    [WEBHOOK_ENV.EVENT_BUS_ARN]: `arn:aws:events:${process.env.AWS_REGION}:123456789012:event-bus/default`,
    [WEBHOOK_ENV.BILLING_SUCCESS_SOURCE]: 'sbt.control.plane',
    [WEBHOOK_ENV.BILLING_SUCCESS_DETAIL_TYPE]: 'sbt_aws_billingSuccess',
    [WEBHOOK_ENV.BILLING_FAILURE_SOURCE]: 'sbt.control.plane',
    [WEBHOOK_ENV.BILLING_FAILURE_DETAIL_TYPE]: 'sbt_aws_billingFailure',
    POWERTOOLS_LOG_LEVEL: 'INFO',
    // The function caches the secret 60 s by default; 1 s keeps the rotation test short.
    [WEBHOOK_ENV.SECRET_CACHE_SECONDS]: '1',
  });
  webhook = bundledHandler('webhook');
});

afterAll(async () => {
  await proxy?.stop();
  await moto?.stop();
});

describe('accepted', () => {
  test('valid: 200, one billingSuccess on the bus with the tenant and the event id, one processed item', async () => {
    const event = paymentEvent();
    const r = await call(signed(JSON.stringify(event)));
    expect(r.status).toBe(200);
    expect(r.itemsWritten).toBe(1);
    expect(r.emitted).toHaveLength(1);
    expect(r.emitted[0]).toMatchObject({
      'source': 'sbt.control.plane',
      'detail-type': 'sbt_aws_billingSuccess',
      'detail': { eventId: event.id, webhookType: 'invoice.paid', tenantId: 'tenant-1', customerId: 'cus_123', amount: 4200, currency: 'usd' },
    });
    const item = await doc.send(new GetCommand({ TableName: TABLE, Key: { pk: `EVENT#${event.id}` } }));
    expect(item.Item).toMatchObject({ status: 'DONE', outcome: 'sbt_aws_billingSuccess' });
    expect(item.Item?.expiresAt).toBeGreaterThan(Date.now() / 1000 + 29 * 86400);
  });

  test('a failed payment becomes billingFailure; another event type is acknowledged and not emitted', async () => {
    const failed = await call(signed(JSON.stringify(paymentEvent('invoice.payment_failed'))));
    expect(failed.status).toBe(200);
    expect(failed.emitted.map((e) => e['detail-type'])).toEqual(['sbt_aws_billingFailure']);
    const other = await call(signed(JSON.stringify(paymentEvent('customer.created'))));
    expect(other).toMatchObject({ status: 200, itemsWritten: 1, emitted: [] });
  });

  test('base64 body: decoded before verifying (200); a signature over the base64 text is refused (401)', async () => {
    const payload = JSON.stringify(paymentEvent());
    const b64 = Buffer.from(payload).toString('base64');
    const ok = await call(request(b64, { 'x-billing-signature': signatureHeader([SECRET], payload) }, true));
    expect(ok).toMatchObject({ status: 200, itemsWritten: 1 });
    expect(ok.emitted).toHaveLength(1);
    const overText = await call(request(b64, { 'x-billing-signature': signatureHeader([SECRET], b64) }, true));
    expect(overText).toMatchObject({ status: 401, itemsWritten: 0, emitted: [] });
  });

  test('two v1 values during a rotation (old and current secret): 200', async () => {
    const r = await call(signed(JSON.stringify(paymentEvent()), { secrets: [OLD_SECRET, SECRET] }));
    expect(r).toMatchObject({ status: 200, itemsWritten: 1 });
    expect(r.emitted).toHaveLength(1);
  });

  test('replayed event id (freshly signed): 200 duplicate, events emitted = 1 in all, processed items = 1', async () => {
    const payload = JSON.stringify(paymentEvent());
    const first = await call(signed(payload));
    const replay = await call(signed(payload));
    const replayLater = await call(signed(payload, { timestamp: Math.floor(Date.now() / 1000) - 10 }));
    expect([first.status, replay.status, replayLater.status]).toEqual([200, 200, 200]);
    expect(replay.body).toMatchObject({ duplicate: true });
    expect(first.emitted.length + replay.emitted.length + replayLater.emitted.length).toBe(1);
    expect(first.itemsWritten + replay.itemsWritten + replayLater.itemsWritten).toBe(1);
  });

  test('signatures agree with the Stripe SDK both ways', async () => {
    const stripe = new Stripe('sk_test_offline');
    const payload = JSON.stringify(paymentEvent());
    const header = stripe.webhooks.generateTestHeaderString({ payload, secret: SECRET });
    const r = await call(request(payload, { 'x-billing-signature': header }));
    expect(r.status).toBe(200);
    const ours = signatureHeader([SECRET], payload);
    expect(stripe.webhooks.constructEvent(payload, ours, SECRET).id).toBe(JSON.parse(payload).id);
  });
});

describe('refused, with side effects = 0', () => {
  const now = () => Math.floor(Date.now() / 1000);
  const cases: Array<[string, () => APIGatewayProxyEventV2, number]> = [
    ['tampered body', () => {
      const payload = JSON.stringify(paymentEvent());
      return request(payload.replace('4200', '1'), { 'x-billing-signature': signatureHeader([SECRET], payload) });
    }, 401],
    ['wrong secret', () => signed(JSON.stringify(paymentEvent()), { secrets: ['whsec_not_the_secret'] }), 401],
    ['timestamp too old (301 s)', () => signed(JSON.stringify(paymentEvent()), { timestamp: now() - 301 }), 401],
    ['timestamp too far ahead (330 s: beyond the 300 s tolerance however slow the call)', () => signed(JSON.stringify(paymentEvent()), { timestamp: now() + 330 }), 401],
    ['missing header', () => request(JSON.stringify(paymentEvent()), {}), 401],
    ['empty header', () => request(JSON.stringify(paymentEvent()), { 'x-billing-signature': '' }), 401],
    ['malformed header: no fields', () => request(JSON.stringify(paymentEvent()), { 'x-billing-signature': 'garbage' }), 400],
    ['malformed header: no v1', () => request('{}', { 'x-billing-signature': `t=${now()}` }), 400],
    ['malformed header: no t', () => {
      const payload = JSON.stringify(paymentEvent());
      return request(payload, { 'x-billing-signature': `v1=${computeSignature(SECRET, now(), payload)}` });
    }, 400],
    ['malformed header: t not a number', () => request('{}', { 'x-billing-signature': `t=abc,v1=${'0'.repeat(64)}` }), 400],
    ['malformed header: v1 not hex-64', () => request('{}', { 'x-billing-signature': `t=${now()},v1=xyz` }), 400],
    ['malformed header: two t', () => request('{}', { 'x-billing-signature': `t=${now()},t=${now()},v1=${'0'.repeat(64)}` }), 400],
    ['body over the size cap (413)', () => signed(JSON.stringify({ ...paymentEvent(), pad: 'x'.repeat(5000) })), 413],
    ['base64 body over the size cap (413)', () => {
      const payload = JSON.stringify({ ...paymentEvent(), pad: 'x'.repeat(5000) });
      return request(Buffer.from(payload).toString('base64'), { 'x-billing-signature': signatureHeader([SECRET], payload) }, true);
    }, 413],
    ['signed body that is not JSON', () => signed('not json'), 400],
    ['signed event without an id', () => signed(JSON.stringify({ type: 'invoice.paid' })), 400],
    ['created out of range (year 5138)', () => signed(JSON.stringify({ ...paymentEvent(), created: 99_999_999_999 })), 400],
    ['created far beyond what a Date holds', () => signed(JSON.stringify({ ...paymentEvent(), created: 1e20 })), 400],
    ['created not a whole number', () => signed(JSON.stringify({ ...paymentEvent(), created: '2026-11-27' })), 400],
    ['a negative amount', () => signed(JSON.stringify(withObject({ amount_paid: -5 }))), 400],
    ['an amount with a fraction', () => signed(JSON.stringify(withObject({ amount_paid: 4.2 }))), 400],
    ['a currency that is not ISO 4217', () => signed(JSON.stringify(withObject({ currency: 'dollars' }))), 400],
    ['a tenant id with spaces', () => signed(JSON.stringify(withObject({ metadata: { tenantId: 'tenant 1' } }))), 400],
    ['data.object that is not an object', () => signed(JSON.stringify({ ...paymentEvent(), data: { object: 'x' } })), 400],
  ];
  test.each(cases)('%s', async (_name, make, status) => {
    const r = await call(make());
    expect({ status: r.status, itemsWritten: r.itemsWritten, eventsEmitted: r.emitted.length })
      .toEqual({ status, itemsWritten: 0, eventsEmitted: 0 });
  });

  test('no log line carries the secret, the signature or the body', async () => {
    const payload = JSON.stringify({ ...paymentEvent(), data: { object: { metadata: { tenantId: 't' }, email: 'payer@example.com' } } });
    const header = signatureHeader([SECRET], payload);
    const ok = await call(request(payload, { 'x-billing-signature': header }));
    // flip the signature's first hex digit (a replacement by the same digit would leave it valid)
    const bad = await call(request(payload, { 'x-billing-signature': header.replace(/v1=(.)/, (_m, c: string) => `v1=${c === '0' ? '1' : '0'}`) }));
    for (const r of [ok, bad]) {
      expect(r.output).not.toContain(SECRET);
      expect(r.output).not.toContain(header.split('v1=')[1]);
      expect(r.output).not.toContain('payer@example.com');
    }
    expect(bad.output).toMatch(/Webhook refused/);
  });
});

describe('concurrent deliveries and claims', () => {
  test('10 concurrent deliveries of one event: 1 event on the bus, 1 processed item; the others answer 409 (retry later) or 200 duplicate', async () => {
    // GIVEN one signed event
    const event = paymentEvent();
    const payload = JSON.stringify(event);
    const before = await processedCount();
    // WHEN the sender delivers it 10 times at once
    const results = await Promise.all(Array.from({ length: 10 }, () => webhook(signed(payload))));
    // THEN exactly one delivery emitted
    const emitted = await drainBus(2);
    expect(emitted.filter((e) => e.detail.eventId === event.id)).toHaveLength(1);
    expect((await processedCount()) - before).toBe(1);
    expect(results.every((r) => r.statusCode === 200 || r.statusCode === 409)).toBe(true);
    const received = results.filter((r) => JSON.parse(String(r.body)).message === 'received');
    expect(received).toHaveLength(1);
    for (const busy of results.filter((r) => r.statusCode === 409)) expect(Number(busy.headers?.['retry-after'])).toBeGreaterThan(0);
    // and a later delivery is a duplicate
    expect((await call(signed(payload))).body).toMatchObject({ duplicate: true });
  });

  test('a claim held by a live delivery: 409 with Retry-After, nothing emitted', async () => {
    const event = paymentEvent();
    const now = Math.floor(Date.now() / 1000);
    await doc.send(new PutCommand({ TableName: TABLE, Item: { pk: `EVENT#${event.id}`, status: 'PENDING', claimToken: 'other', claimedUntil: now + 20 } }));
    const r = await call(signed(JSON.stringify(event)));
    expect(r).toMatchObject({ status: 409, itemsWritten: 0, emitted: [] });
  });

  test('a claim left by a delivery that died (its lease passed) is taken over: the event is emitted and recorded', async () => {
    const event = paymentEvent();
    const now = Math.floor(Date.now() / 1000);
    await doc.send(new PutCommand({ TableName: TABLE, Item: { pk: `EVENT#${event.id}`, status: 'PENDING', claimToken: 'dead', claimedUntil: now - 1 } }));
    const r = await call(signed(JSON.stringify(event)));
    expect(r.status).toBe(200);
    expect(r.emitted.map((e) => e.detail.eventId)).toEqual([event.id]);
    expect((await doc.send(new GetCommand({ TableName: TABLE, Key: { pk: `EVENT#${event.id}` } }))).Item).toMatchObject({ status: 'DONE' });
  });
});

describe('secret rotation and failures', () => {
  test('receiver-side rotation: a secret stored as {current, previous} accepts both, and the new value is read once the cache ages out (no restart)', async () => {
    const NEW = 'whsec_new_abcdefghijklmnopqrstuvwxyz0123456789';
    try {
      await sm.send(new PutSecretValueCommand({ SecretId: secretArn, SecretString: JSON.stringify({ current: NEW, previous: SECRET }) }));
      await new Promise((r) => setTimeout(r, 1100)); // the cache age
      const withNew = await call(signed(JSON.stringify(paymentEvent()), { secrets: [NEW] }));
      const withPrevious = await call(signed(JSON.stringify(paymentEvent()), { secrets: [SECRET] }));
      const withOld = await call(signed(JSON.stringify(paymentEvent()), { secrets: [OLD_SECRET] }));
      expect([withNew.status, withPrevious.status, withOld.status]).toEqual([200, 200, 401]);
      expect(withOld).toMatchObject({ itemsWritten: 0, emitted: [] });
    } finally {
      await sm.send(new PutSecretValueCommand({ SecretId: secretArn, SecretString: SECRET }));
      await new Promise((r) => setTimeout(r, 1100));
    }
  });

  test('the bus refuses the event: the handler throws (HTTP 5xx, the sender retries), and the retry emits and completes', async () => {
    const payload = JSON.stringify(paymentEvent('invoice.payment_failed'));
    const bus = process.env[WEBHOOK_ENV.EVENT_BUS_ARN];
    process.env[WEBHOOK_ENV.EVENT_BUS_ARN] = 'no-such-bus';
    try {
      await expect(webhook(signed(payload))).rejects.toThrow();
    } finally {
      process.env[WEBHOOK_ENV.EVENT_BUS_ARN] = bus;
    }
    const id = JSON.parse(payload).id;
    // nothing was emitted, so the claim was released at once: the sender's retry need not wait for the lease
    expect((await doc.send(new GetCommand({ TableName: TABLE, Key: { pk: `EVENT#${id}` } }))).Item).toMatchObject({ status: 'PENDING', claimedUntil: 0 });
    const retry = await call(signed(payload));
    expect(retry.status).toBe(200);
    expect(retry.emitted.map((e) => [e['detail-type'], e.detail.eventId])).toEqual([['sbt_aws_billingFailure', id]]);
    expect((await doc.send(new GetCommand({ TableName: TABLE, Key: { pk: `EVENT#${id}` } }))).Item?.status).toBe('DONE');
  });
});

describe('from a REST API (payload 1.0) as from an HTTP API (payload 2.0)', () => {
  const now = () => Math.floor(Date.now() / 1000);
  /** One call, as the sender makes it: headers in its own case, a name possibly repeated. */
  const webhookCall = (body: string | undefined, headers: Array<[string, string]>, binary = false): HttpCall =>
    ({ path: '/billing/webhook', headers: [['Content-Type', 'application/json'], ...headers], body, binary, requestId: `req-${++seq}` });

  test('a signed call through a REST API: 200, one billingSuccess on the bus, one processed item; the replay is a duplicate', async () => {
    // GIVEN a payment event signed by the sender, its header spelt as the sender spells it
    const event = paymentEvent();
    const payload = JSON.stringify(event);
    const header = signatureHeader([SECRET], payload);
    // WHEN a REST API delivers it (payload 1.0), then delivers it again
    const first = await call(restApiEvent(webhookCall(payload, [['X-Billing-Signature', header]])));
    const replay = await call(restApiEvent(webhookCall(payload, [['X-Billing-Signature', header]])));
    // THEN it is processed once
    expect(first).toMatchObject({ status: 200, itemsWritten: 1 });
    expect(first.emitted.map((e) => [e['detail-type'], e.detail.eventId, e.detail.tenantId])).toEqual([['sbt_aws_billingSuccess', event.id, 'tenant-1']]);
    expect(replay).toMatchObject({ status: 200, itemsWritten: 0, emitted: [], body: { duplicate: true } });
  });

  test('a binary body (the REST API\'s binaryMediaTypes): decoded from base64 before verifying', async () => {
    const payload = JSON.stringify(paymentEvent());
    const r = await call(restApiEvent(webhookCall(payload, [['x-billing-signature', signatureHeader([SECRET], payload)]], true)));
    expect(r).toMatchObject({ status: 200, itemsWritten: 1 });
    expect(r.emitted).toHaveLength(1);
  });

  // The same HTTP request gets the same answer and the same side effects through either API.
  const cases: Array<[string, () => HttpCall, number]> = [
    ['signed', () => {
      const payload = JSON.stringify(paymentEvent());
      return webhookCall(payload, [['X-Billing-Signature', signatureHeader([SECRET], payload)]]);
    }, 200],
    ['forged', () => {
      const payload = JSON.stringify(paymentEvent());
      return webhookCall(payload, [['X-Billing-Signature', signatureHeader(['whsec_not_the_secret'], payload)]]);
    }, 401],
    ['stale', () => {
      const payload = JSON.stringify(paymentEvent());
      return webhookCall(payload, [['X-Billing-Signature', signatureHeader([SECRET], payload, now() - 301)]]);
    }, 401],
    ['no signature header', () => webhookCall(JSON.stringify(paymentEvent()), []), 401],
    ['no body (null in payload 1.0)', () => webhookCall(undefined, [['X-Billing-Signature', signatureHeader([SECRET], '')]]), 400],
    // Sent twice, a header is joined with a comma on an HTTP API; on a REST API `headers` keeps only the
    // last value (here the valid one): read from multiValueHeaders, it is judged alike: two `t`, malformed.
    ['the signature header sent twice, the valid one last', () => {
      const payload = JSON.stringify(paymentEvent());
      return webhookCall(payload, [
        ['X-Billing-Signature', signatureHeader(['whsec_not_the_secret'], payload)],
        ['x-billing-signature', signatureHeader([SECRET], payload)],
      ]);
    }, 400],
  ];
  test.each(cases)('%s: the same answer through both APIs', async (_name, make, status) => {
    const outcomes = [];
    for (const toEvent of [httpApiEvent, restApiEvent]) {
      const r = await call(toEvent(make()));
      outcomes.push({ status: r.status, itemsWritten: r.itemsWritten, eventsEmitted: r.emitted.length });
    }
    const accepted = status === 200;
    const expected = { status, itemsWritten: accepted ? 1 : 0, eventsEmitted: accepted ? 1 : 0 };
    expect(outcomes).toEqual([expected, expected]);
  });
});
