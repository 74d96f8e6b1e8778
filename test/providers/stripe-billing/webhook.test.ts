/**
 * The Stripe webhook, bundled as Lambda runs it, against moto (DynamoDB,
 * Secrets Manager, EventBridge routing to SQS), with `Stripe-Signature`
 * headers made by the Stripe SDK's own test helper. Every refusal is checked
 * for side effects: no processed-event item, no event on the bus.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import Stripe from 'stripe';
import { bundle, captured, emfMetrics, putSigningSecret, startWorld, StripeWorld } from './support';
import { BusCapture, BusEvent } from '../../../examples/local-flow/bus';
import { STRIPE_ENV } from '../../../src/providers/stripe-billing/contract';

type Webhook = (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;

const SECRET = 'whsec_current0123456789abcdefghijklmnopqrstuv';
const OLD_SECRET = 'whsec_previous9876543210zyxwvutsrqponmlkjihgf';
const stripe = new Stripe('sk_test_offline');
let world: StripeWorld;
let doc: DynamoDBDocumentClient;
let billingEvents: BusCapture;
let webhook: Webhook;
let seq = 0;
const TENANT = 'tenant-webhook-1';
const CUSTOMER = 'cus_Webhook1';

beforeAll(async () => {
  world = await startWorld();
  world.useFunction('Webhook', { [STRIPE_ENV.SECRET_CACHE_SECONDS]: '0' });
  doc = DynamoDBDocumentClient.from(new DynamoDBClient({}));
  billingEvents = await BusCapture.start('billing-events', { 'source': ['sbt.control.plane'], 'detail-type': ['sbt_aws_billingSuccess', 'sbt_aws_billingFailure'] });
  await doc.send(new PutCommand({ TableName: world.names.customers, Item: { pk: `CUSTOMER#${CUSTOMER}`, tenantId: TENANT, generation: 1 } }));
  webhook = bundle<{ handler: Webhook }>('webhook').handler;
});

afterAll(async () => {
  await world?.stop();
});

beforeEach(async () => {
  world.useFunction('Webhook', { [STRIPE_ENV.SECRET_CACHE_SECONDS]: '0' });
  await putSigningSecret(world.names.signingSecretArn, SECRET);
});

function stripeEvent(type: string, object: Record<string, unknown> = {}, opts: { id?: string; created?: number } = {}) {
  return {
    id: opts.id ?? `evt_Test${++seq}x${Date.now()}`,
    object: 'event',
    api_version: '2025-09-30.clover',
    type,
    created: opts.created ?? Math.floor(Date.now() / 1000),
    data: { object: { id: `in_Test${seq}`, object: 'invoice', customer: CUSTOMER, amount_paid: 4200, amount_due: 4200, currency: 'usd', ...object } },
  };
}

function request(body: string, signature: string | undefined, isBase64Encoded = false): APIGatewayProxyEventV2 {
  return {
    version: '2.0',
    routeKey: 'POST /billing/stripe',
    rawPath: '/billing/stripe',
    rawQueryString: '',
    headers: signature === undefined ? {} : { 'stripe-signature': signature },
    requestContext: { requestId: `req-${++seq}`, http: { method: 'POST', path: '/billing/stripe' } } as APIGatewayProxyEventV2['requestContext'],
    body,
    isBase64Encoded,
  };
}

/** A delivery signed by the Stripe SDK's test helper. */
function signed(payload: string, opts: { secrets?: string[]; timestamp?: number } = {}): APIGatewayProxyEventV2 {
  const timestamp = opts.timestamp ?? Math.floor(Date.now() / 1000);
  // Stripe sends one v1 per live secret while an endpoint's secret is being rolled.
  const v1s = (opts.secrets ?? [SECRET]).map((secret) => stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp }).split(',').find((p) => p.startsWith('v1='))!);
  return request(payload, [`t=${timestamp}`, ...v1s].join(','));
}

async function processedItems(): Promise<number> {
  return (await doc.send(new ScanCommand({ TableName: world.names.webhookEvents, Select: 'COUNT', ConsistentRead: true }))).Count ?? 0;
}

/** Receives (and deletes) every billing event that reached the queue through the bus. */
function drainBus(waitSeconds = 1): Promise<BusEvent[]> {
  return billingEvents.drain(waitSeconds);
}

describe('webhook', () => {
  test('invoice.paid becomes the billing success event of the tenant the customer maps to', async () => {
    const event = stripeEvent('invoice.paid');
    const res = await webhook(signed(JSON.stringify(event)));
    expect(res.statusCode).toBe(200);
    const bus = await drainBus();
    expect(bus).toEqual([expect.objectContaining({
      'source': 'sbt.control.plane',
      'detail-type': 'sbt_aws_billingSuccess',
      'detail': expect.objectContaining({ tenantId: TENANT, customerId: CUSTOMER, eventId: event.id, invoiceId: event.data.object.id, amount: 4200, currency: 'usd', provider: 'stripe' }),
    })]);
  });

  test('invoice.payment_failed becomes the billing failure event', async () => {
    expect((await webhook(signed(JSON.stringify(stripeEvent('invoice.payment_failed', { amount_paid: 0 }))))).statusCode).toBe(200);
    expect(await drainBus()).toEqual([expect.objectContaining({ 'detail-type': 'sbt_aws_billingFailure', 'detail': expect.objectContaining({ tenantId: TENANT, amount: 4200 }) })]);
  });

  test('a subscription Stripe ended for non-payment is a billing failure; ended for another reason it is acknowledged', async () => {
    const sub = (reason: string) => stripeEvent('customer.subscription.deleted', { id: `sub_T${seq}`, object: 'subscription', cancellation_details: { reason }, latest_invoice: 'in_Last' });
    expect((await webhook(signed(JSON.stringify(sub('payment_failed'))))).statusCode).toBe(200);
    expect((await webhook(signed(JSON.stringify(sub('cancellation_requested'))))).statusCode).toBe(200);
    const bus = await drainBus();
    expect(bus).toHaveLength(1);
    expect(bus[0]).toMatchObject({ 'detail-type': 'sbt_aws_billingFailure', 'detail': { webhookType: 'customer.subscription.deleted', subscriptionId: expect.stringMatching(/^sub_T/) } });
  });

  test('an event type the handler does not map is acknowledged and ignored, with no write', async () => {
    const before = await processedItems();
    const res = await webhook(signed(JSON.stringify(stripeEvent('customer.updated'))));
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(res.body!).message).toBe('ignored');
    expect(await processedItems()).toBe(before);
    expect(await drainBus(0)).toHaveLength(0);
  });

  test('a replayed event id is ignored', async () => {
    const payload = JSON.stringify(stripeEvent('invoice.paid'));
    expect((await webhook(signed(payload))).statusCode).toBe(200);
    const again = await webhook(signed(payload));
    expect(again.statusCode).toBe(200);
    expect(JSON.parse(again.body!)).toMatchObject({ duplicate: true });
    expect(await drainBus()).toHaveLength(1);
  });

  test('10 concurrent deliveries of one event emit exactly one event; the others are told to retry, and then find it done', async () => {
    const payload = JSON.stringify(stripeEvent('invoice.paid'));
    const results = await Promise.all(Array.from({ length: 10 }, () => webhook(signed(payload))));
    const statuses = results.map((r) => r.statusCode);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(1);
    expect(statuses.every((s) => s === 200 || s === 409)).toBe(true);
    expect(results.filter((r) => JSON.parse(r.body!).emitted).length).toBe(1);
    // Stripe retries the 409s later.
    for (const r of results.filter((x) => x.statusCode === 409)) {
      void r;
      const retried = await webhook(signed(payload));
      expect(JSON.parse(retried.body!)).toMatchObject({ duplicate: true });
    }
    expect(await drainBus()).toHaveLength(1);
  });

  test('a claim left by a crash is taken over once it expires; a live claim makes the delivery retry later', async () => {
    const crashed = stripeEvent('invoice.paid');
    const live = stripeEvent('invoice.paid');
    const now = Math.floor(Date.now() / 1000);
    await doc.send(new PutCommand({ TableName: world.names.webhookEvents, Item: { pk: `EVENT#${crashed.id}`, status: 'CLAIMED', claimToken: 'dead', claimExpiresAt: now - 1, expiresAt: now + 86400 } }));
    await doc.send(new PutCommand({ TableName: world.names.webhookEvents, Item: { pk: `EVENT#${live.id}`, status: 'CLAIMED', claimToken: 'busy', claimExpiresAt: now + 60, expiresAt: now + 86400 } }));
    expect((await webhook(signed(JSON.stringify(crashed)))).statusCode).toBe(200);
    expect((await webhook(signed(JSON.stringify(live)))).statusCode).toBe(409);
    const bus = await drainBus();
    expect(bus.map((e) => e.detail.eventId)).toEqual([crashed.id]);
  });

  describe('secret rotation', () => {
    test('several v1 signatures (Stripe rolling the endpoint secret): one matching the stored secret is enough', async () => {
      const res = await webhook(signed(JSON.stringify(stripeEvent('invoice.paid')), { secrets: [OLD_SECRET, SECRET] }));
      expect(res.statusCode).toBe(200);
      await drainBus();
    });

    test('stored {"current","previous"}: a call signed with the previous secret only is accepted', async () => {
      await putSigningSecret(world.names.signingSecretArn, JSON.stringify({ current: SECRET, previous: OLD_SECRET }));
      expect((await webhook(signed(JSON.stringify(stripeEvent('invoice.paid')), { secrets: [OLD_SECRET] }))).statusCode).toBe(200);
      await drainBus();
    });

    test('the secret as the Stripe setup stores it ({"current","endpointId"})', async () => {
      await putSigningSecret(world.names.signingSecretArn, JSON.stringify({ current: SECRET, endpointId: 'we_123' }));
      expect((await webhook(signed(JSON.stringify(stripeEvent('invoice.paid'))))).statusCode).toBe(200);
      await drainBus();
    });
  });

  test('a base64-encoded body (API Gateway for non-text content) is verified on the raw bytes', async () => {
    const payload = JSON.stringify(stripeEvent('invoice.paid'));
    const event = signed(payload);
    const res = await webhook({ ...event, body: Buffer.from(payload).toString('base64'), isBase64Encoded: true });
    expect(res.statusCode).toBe(200);
    await drainBus();
  });

  test('an event about a customer no tenant maps to is acknowledged, with no event and no write', async () => {
    const before = await processedItems();
    const { result, output } = await captured(() => webhook(signed(JSON.stringify(stripeEvent('invoice.paid', { customer: 'cus_Stranger' })))));
    expect(result!.statusCode).toBe(200);
    expect(await processedItems()).toBe(before);
    expect(await drainBus(0)).toHaveLength(0);
    expect(emfMetrics(output)).toMatchObject({ WebhookUnknownCustomer: 1 });
  });

  describe('refusals have no side effect', () => {
    const now = () => Math.floor(Date.now() / 1000);
    const cases: Array<[string, () => APIGatewayProxyEventV2, number]> = [
      ['no signature header', () => request(JSON.stringify(stripeEvent('invoice.paid')), undefined), 400],
      ['a malformed header', () => request(JSON.stringify(stripeEvent('invoice.paid')), 'garbage'), 400],
      ['a header without v1', () => request(JSON.stringify(stripeEvent('invoice.paid')), `t=${now()},v0=abc`), 400],
      ['signed with another secret', () => signed(JSON.stringify(stripeEvent('invoice.paid')), { secrets: [OLD_SECRET] }), 401],
      ['signed 301 s ago', () => signed(JSON.stringify(stripeEvent('invoice.paid')), { timestamp: now() - 301 }), 401],
      ['signed 400 s ahead', () => signed(JSON.stringify(stripeEvent('invoice.paid')), { timestamp: now() + 400 }), 401],
      ['a body changed after signing', () => {
        const e = signed(JSON.stringify(stripeEvent('invoice.paid')));
        return { ...e, body: e.body!.replace('4200', '9999') };
      }, 401],
      ['a signed body that is not JSON', () => signed('not json'), 400],
      ['an event created 40 days ago (older than the ids remembered)', () => signed(JSON.stringify(stripeEvent('invoice.paid', {}, { created: now() - 40 * 86400 }))), 400],
      ['an event created 10 minutes ahead', () => signed(JSON.stringify(stripeEvent('invoice.paid', {}, { created: now() + 600 }))), 400],
      ['a malformed event id', () => signed(JSON.stringify(stripeEvent('invoice.paid', {}, { id: 'evt_ bad' }))), 400],
      ['an invoice without a customer', () => signed(JSON.stringify(stripeEvent('invoice.paid', { customer: null }))), 400],
      ['a body over 512 KiB', () => signed(JSON.stringify({ ...stripeEvent('invoice.paid'), pad: 'x'.repeat(600 * 1024) })), 413],
    ];
    test.each(cases)('%s', async (_name, make, status) => {
      const before = await processedItems();
      const { result, output } = await captured(() => webhook(make()));
      expect(result!.statusCode).toBe(status);
      expect(await processedItems()).toBe(before);
      expect(await drainBus(0)).toHaveLength(0);
      expect(emfMetrics(output)).toMatchObject({ WebhookRefused: 1 });
      // Logs never hold the secret or the body.
      expect(output).not.toContain(SECRET);
      expect(output).not.toContain('4200');
    });
  });
});
