/**
 * The Stripe webhook, bundled as Lambda runs it, against moto (DynamoDB,
 * Secrets Manager, EventBridge routing to SQS), with `Stripe-Signature`
 * headers made by the Stripe SDK's own test helper. Every refusal is checked
 * for side effects: no processed-event item, no event on the bus.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
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
let subscriptionEvents: BusCapture;
let webhook: Webhook;
let seq = 0;
const TENANT = 'tenant-webhook-1';
const CUSTOMER = 'cus_Webhook1';

beforeAll(async () => {
  world = await startWorld();
  world.useFunction('Webhook', { [STRIPE_ENV.SECRET_CACHE_SECONDS]: '0' });
  doc = DynamoDBDocumentClient.from(new DynamoDBClient({}));
  billingEvents = await BusCapture.start('billing-events', { 'source': ['sbt.control.plane'], 'detail-type': ['sbt_aws_billingSuccess', 'sbt_aws_billingFailure'] });
  subscriptionEvents = await BusCapture.start('subscription-events', { 'source': ['sbt.control.plane'], 'detail-type': ['cdk_saas_billing_subscriptionChanged'] });
  await doc.send(new PutCommand({ TableName: world.names.customers, Item: { pk: `CUSTOMER#${CUSTOMER}`, tenantId: TENANT, generation: 1 } }));
  webhook = bundle<{ handler: Webhook }>('webhook').handler;
});

afterAll(async () => {
  await world?.stop();
});

beforeEach(async () => {
  world.useFunction('Webhook', { [STRIPE_ENV.SECRET_CACHE_SECONDS]: '0' });
  await putSigningSecret(world.names.signingSecretArn, SECRET);
  await subscriptionEvents.drain(0);
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

/** The recorded state of an invoice or subscription (`INVOICE#<id>`, `SUBSCRIPTION#<id>`). */
async function stateOf(pk: string): Promise<Record<string, unknown> | undefined> {
  return (await doc.send(new GetCommand({ TableName: world.names.webhookEvents, Key: { pk }, ConsistentRead: true }))).Item;
}

/** The test tenant's mapping item. */
async function tenantItem(): Promise<Record<string, unknown> | undefined> {
  return (await doc.send(new GetCommand({ TableName: world.names.customers, Key: { pk: `TENANT#${TENANT}` }, ConsistentRead: true }))).Item;
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

  describe('order: an older event never overrides a newer state of its invoice', () => {
    const now = () => Math.floor(Date.now() / 1000);
    const invoice = () => `in_Order${++seq}x${Date.now()}`;

    test('a late invoice.payment_failed delivered after invoice.paid for the same invoice is acknowledged and emits nothing', async () => {
      const id = invoice();
      const paid = stripeEvent('invoice.paid', { id }, { created: now() });
      const failed = stripeEvent('invoice.payment_failed', { id }, { created: now() - 120 });
      expect((await webhook(signed(JSON.stringify(paid)))).statusCode).toBe(200);
      const { result, output } = await captured(() => webhook(signed(JSON.stringify(failed))));
      expect(result!.statusCode).toBe(200);
      expect(JSON.parse(result!.body!)).toMatchObject({ superseded: true });
      expect(emfMetrics(output)).toMatchObject({ WebhookSupersededEvents: 1 });
      const bus = await drainBus();
      expect(bus.map((e) => [e['detail-type'], e.detail.eventId])).toEqual([['sbt_aws_billingSuccess', paid.id]]);
      // The late event is recorded as done: a redelivery is a duplicate.
      expect(JSON.parse((await webhook(signed(JSON.stringify(failed)))).body!)).toMatchObject({ duplicate: true });
      expect(await stateOf(`INVOICE#${id}`)).toMatchObject({ state: 'paid', eventId: paid.id });
    });

    test('a newer invoice.paid after a failed attempt is the billing success event (both emitted)', async () => {
      const id = invoice();
      await webhook(signed(JSON.stringify(stripeEvent('invoice.payment_failed', { id }, { created: now() - 120 }))));
      await webhook(signed(JSON.stringify(stripeEvent('invoice.paid', { id }, { created: now() }))));
      expect((await drainBus()).map((e) => e['detail-type'])).toEqual(['sbt_aws_billingFailure', 'sbt_aws_billingSuccess']);
    });

    test('in the same second, paid wins over payment_failed in either arrival order', async () => {
      const t = now();
      const first = invoice();
      await webhook(signed(JSON.stringify(stripeEvent('invoice.paid', { id: first }, { created: t }))));
      const late = await webhook(signed(JSON.stringify(stripeEvent('invoice.payment_failed', { id: first }, { created: t }))));
      expect(JSON.parse(late.body!)).toMatchObject({ superseded: true });
      expect((await drainBus()).map((e) => e['detail-type'])).toEqual(['sbt_aws_billingSuccess']);

      const second = invoice();
      await webhook(signed(JSON.stringify(stripeEvent('invoice.payment_failed', { id: second }, { created: t }))));
      await webhook(signed(JSON.stringify(stripeEvent('invoice.paid', { id: second }, { created: t }))));
      expect((await drainBus()).map((e) => e['detail-type'])).toEqual(['sbt_aws_billingFailure', 'sbt_aws_billingSuccess']);
      expect(await stateOf(`INVOICE#${second}`)).toMatchObject({ state: 'paid', previousState: 'payment_failed' });
    });

    test('invoice.voided emits nothing, and a later-delivered older failure of the voided invoice emits nothing either', async () => {
      const id = invoice();
      expect((await webhook(signed(JSON.stringify(stripeEvent('invoice.voided', { id }, { created: now() })))))).toMatchObject({ statusCode: 200 });
      const late = await webhook(signed(JSON.stringify(stripeEvent('invoice.payment_failed', { id }, { created: now() - 60 }))));
      expect(JSON.parse(late.body!)).toMatchObject({ superseded: true });
      expect(await drainBus(0)).toHaveLength(0);
    });

    test('invoice.payment_action_required is a billing failure with its reason', async () => {
      const event = stripeEvent('invoice.payment_action_required', { id: invoice(), amount_due: 990, parent: { subscription_details: { subscription: 'sub_Parent' } } });
      expect((await webhook(signed(JSON.stringify(event)))).statusCode).toBe(200);
      expect(await drainBus()).toEqual([expect.objectContaining({
        'detail-type': 'sbt_aws_billingFailure',
        'detail': expect.objectContaining({ tenantId: TENANT, reason: 'payment_action_required', webhookType: 'invoice.payment_action_required', amount: 990, subscriptionId: 'sub_Parent', eventId: event.id }),
      })]);
    });

    test('a delivery retried after a crash between recording the state and emitting still emits', async () => {
      const id = invoice();
      const event = stripeEvent('invoice.paid', { id });
      // The crashed delivery recorded the invoice's state; its claim expired; no DONE.
      await doc.send(new PutCommand({ TableName: world.names.webhookEvents, Item: { pk: `INVOICE#${id}`, state: 'paid', stateAt: event.created, eventId: event.id } }));
      expect((await webhook(signed(JSON.stringify(event)))).statusCode).toBe(200);
      expect((await drainBus()).map((e) => e.detail.eventId)).toEqual([event.id]);
    });
  });

  describe('subscription states and customer.deleted', () => {
    const now = () => Math.floor(Date.now() / 1000);
    let sub: string;
    beforeEach(async () => {
      // A tenant whose current subscription is a fresh one.
      sub = `sub_Current${++seq}x${Date.now()}`;
      await doc.send(new PutCommand({
        TableName: world.names.customers,
        Item: { pk: `TENANT#${TENANT}`, tenantId: TENANT, status: 'ACTIVE', generation: 1, customerId: CUSTOMER, subscriptionId: sub },
      }));
    });
    const subscriptionEvent = (type: string, status: string, opts: { created?: number; previous?: string; reason?: string; id?: string } = {}) => {
      const e = stripeEvent(type, { id: opts.id ?? sub, object: 'subscription', status, cancellation_details: { reason: opts.reason ?? null }, latest_invoice: 'in_Latest' },
        { created: opts.created });
      return opts.previous === undefined ? e : { ...e, data: { ...e.data, previous_attributes: { status: opts.previous } } };
    };

    const cases: Array<[string, string, string, string | undefined, string]> = [
      ['customer.subscription.updated', 'incomplete_expired', 'incomplete', undefined, 'first_invoice_not_paid'],
      ['customer.subscription.updated', 'past_due', 'active', undefined, 'invoice_not_paid'],
      ['customer.subscription.updated', 'unpaid', 'past_due', undefined, 'payment_retries_exhausted'],
      ['customer.subscription.deleted', 'canceled', 'active', 'cancellation_requested', 'cancellation_requested'],
    ];
    test.each(cases)('%s to %s becomes the subscription changed event and the status of the tenant mapping', async (type, status, previous, cancellation, reason) => {
      const created = now() - 10;
      const event = subscriptionEvent(type, status, { created, previous: type.endsWith('updated') ? previous : undefined, reason: cancellation });
      if (type.endsWith('deleted')) {
        // The status before comes from the recorded state when the event does not say.
        await webhook(signed(JSON.stringify(subscriptionEvent('customer.subscription.created', previous, { created: created - 100 }))));
      }
      expect((await webhook(signed(JSON.stringify(event)))).statusCode).toBe(200);
      expect(await subscriptionEvents.drain()).toEqual([expect.objectContaining({
        'source': 'sbt.control.plane',
        'detail-type': 'cdk_saas_billing_subscriptionChanged',
        'detail': {
          tenantId: TENANT,
          provider: 'stripe',
          eventId: event.id,
          webhookType: type,
          customerId: CUSTOMER,
          subscriptionId: sub,
          status,
          previousStatus: previous,
          reason,
          occurredAt: new Date(created * 1000).toISOString(),
        },
      })]);
      expect(await tenantItem()).toMatchObject({ subscriptionStatus: status, subscriptionStatusAt: created, subscriptionStatusOf: sub });
      expect(await drainBus(0)).toHaveLength(0); // not a payment failure
    });

    test('an older status delivered late changes neither the mapping nor the control plane', async () => {
      const t = now();
      await webhook(signed(JSON.stringify(subscriptionEvent('customer.subscription.updated', 'unpaid', { created: t, previous: 'past_due' }))));
      const late = await webhook(signed(JSON.stringify(subscriptionEvent('customer.subscription.updated', 'past_due', { created: t - 300, previous: 'active' }))));
      expect(JSON.parse(late.body!)).toMatchObject({ superseded: true });
      expect((await subscriptionEvents.drain()).map((e) => e.detail.status)).toEqual(['unpaid']);
      expect(await tenantItem()).toMatchObject({ subscriptionStatus: 'unpaid', subscriptionStatusAt: t });
    });

    test('in the same second a terminal status wins: past_due after canceled is superseded', async () => {
      const t = now();
      await webhook(signed(JSON.stringify(subscriptionEvent('customer.subscription.deleted', 'canceled', { created: t, reason: 'payment_failed' }))));
      const tie = await webhook(signed(JSON.stringify(subscriptionEvent('customer.subscription.updated', 'past_due', { created: t, previous: 'active' }))));
      expect(JSON.parse(tie.body!)).toMatchObject({ superseded: true });
      expect(await tenantItem()).toMatchObject({ subscriptionStatus: 'canceled', subscriptionStatusAt: t });
      expect((await subscriptionEvents.drain()).map((e) => e.detail)).toEqual([expect.objectContaining({ status: 'canceled', reason: 'payment_failed' })]);
      // Cancelled for non-payment: still the billing failure event as before.
      expect((await drainBus()).map((e) => e.detail.reason)).toEqual(['subscription_canceled_for_non_payment']);
    });

    test('a status that does not endanger billing, or an update that does not change the status, is recorded without an event', async () => {
      const t = now();
      await webhook(signed(JSON.stringify(subscriptionEvent('customer.subscription.updated', 'active', { created: t - 20, previous: 'incomplete' }))));
      expect(await tenantItem()).toMatchObject({ subscriptionStatus: 'active', subscriptionStatusAt: t - 20 });
      await webhook(signed(JSON.stringify(subscriptionEvent('customer.subscription.updated', 'past_due', { created: t - 10, previous: 'active' }))));
      // A later update of something else (no status in previous_attributes) while past_due.
      const other = subscriptionEvent('customer.subscription.updated', 'past_due', { created: t });
      await webhook(signed(JSON.stringify({ ...other, data: { ...other.data, previous_attributes: { metadata: {} } } })));
      expect((await subscriptionEvents.drain()).map((e) => e.detail.status)).toEqual(['past_due']);
      expect(await tenantItem()).toMatchObject({ subscriptionStatus: 'past_due', subscriptionStatusAt: t });
    });

    test('a subscription that is not the tenant\'s current one is not written on the mapping', async () => {
      const t = now();
      await webhook(signed(JSON.stringify(subscriptionEvent('customer.subscription.updated', 'past_due', { created: t - 5, previous: 'active' }))));
      const old = `sub_Earlier${seq}`;
      await webhook(signed(JSON.stringify(subscriptionEvent('customer.subscription.deleted', 'canceled', { created: t, id: old, reason: 'cancellation_requested' }))));
      expect(await tenantItem()).toMatchObject({ subscriptionStatus: 'past_due', subscriptionStatusAt: t - 5, subscriptionStatusOf: sub });
      expect((await subscriptionEvents.drain()).map((e) => [e.detail.subscriptionId, e.detail.status])).toEqual([[sub, 'past_due'], [old, 'canceled']]);
    });

    test('the status of an earlier subscription on the mapping does not block the current one', async () => {
      await doc.send(new PutCommand({
        TableName: world.names.customers,
        Item: {
          pk: `TENANT#${TENANT}`,
          tenantId: TENANT,
          status: 'ACTIVE',
          generation: 2,
          customerId: CUSTOMER,
          subscriptionId: sub,
          subscriptionStatus: 'canceled',
          subscriptionStatusAt: now() + 100,
          subscriptionStatusOf: 'sub_Generation1',
        },
      }));
      await webhook(signed(JSON.stringify(subscriptionEvent('customer.subscription.created', 'active', { created: now() }))));
      expect(await tenantItem()).toMatchObject({ subscriptionStatus: 'active', subscriptionStatusOf: sub });
    });

    test('customer.deleted outside an offboarding: the subscription changed event and customerDeletedByStripe on the mapping', async () => {
      const t = now();
      await webhook(signed(JSON.stringify(subscriptionEvent('customer.subscription.updated', 'past_due', { created: t - 50, previous: 'active' }))));
      await subscriptionEvents.drain();
      const event = { ...stripeEvent('customer.deleted', { id: CUSTOMER, object: 'customer', customer: undefined }, { created: t }) };
      expect((await webhook(signed(JSON.stringify(event)))).statusCode).toBe(200);
      expect(await subscriptionEvents.drain()).toEqual([expect.objectContaining({
        detail: {
          tenantId: TENANT,
          provider: 'stripe',
          eventId: event.id,
          webhookType: 'customer.deleted',
          customerId: CUSTOMER,
          subscriptionId: sub,
          status: 'customer_deleted',
          previousStatus: 'past_due',
          reason: 'customer_deleted',
          occurredAt: new Date(t * 1000).toISOString(),
        },
      })]);
      expect(await tenantItem()).toMatchObject({ customerDeletedByStripe: true, customerDeletedByStripeAt: t });
      expect(await drainBus(0)).toHaveLength(0);
    });

    test('customer.deleted of an offboarded tenant (our own offboarding): reason offboarding, no customerDeletedByStripe', async () => {
      await doc.send(new PutCommand({
        TableName: world.names.customers,
        Item: { pk: `TENANT#${TENANT}`, tenantId: TENANT, status: 'OFFBOARDED', generation: 1, customerId: CUSTOMER, subscriptionId: sub },
      }));
      expect((await webhook(signed(JSON.stringify(stripeEvent('customer.deleted', { id: CUSTOMER, object: 'customer', customer: undefined }))))).statusCode).toBe(200);
      expect((await subscriptionEvents.drain()).map((e) => e.detail)).toEqual([expect.objectContaining({ status: 'customer_deleted', reason: 'offboarding', subscriptionId: sub })]);
      expect(await tenantItem()).not.toHaveProperty('customerDeletedByStripe');
    });
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
      ['signed an hour ahead', () => signed(JSON.stringify(stripeEvent('invoice.paid')), { timestamp: now() + 3600 }), 401],
      // The SDK verifies against the last t=, which is signed an hour ahead; the first would pass the check of the future.
      ['a header with two t= values (the last signed an hour ahead)', () => {
        const e = signed(JSON.stringify(stripeEvent('invoice.paid')), { timestamp: now() + 3600 });
        return { ...e, headers: { 'stripe-signature': `t=${now()},${e.headers['stripe-signature']}` } };
      }, 400],
      ['a header with two t= values, both now', () => {
        const e = signed(JSON.stringify(stripeEvent('invoice.paid')));
        return { ...e, headers: { 'stripe-signature': `${e.headers['stripe-signature']},t=${now()}` } };
      }, 400],
      ['a header whose timestamp is not digits', () => {
        const e = signed(JSON.stringify(stripeEvent('invoice.paid')));
        return { ...e, headers: { 'stripe-signature': e.headers['stripe-signature']!.replace(/^t=(\d+)/, 't=$1abc') } };
      }, 400],
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
