/**
 * The Stripe webhook, bundled as Lambda runs it, called through a REST API
 * (payload 1.0) and through an HTTP API (payload 2.0) against moto: the same
 * Stripe delivery gets the same answer and the same side effects either way.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEvent, APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import Stripe from 'stripe';
import { bundle, putSigningSecret, startWorld, StripeWorld } from './support';
import { BusCapture } from '../../../examples/local-flow/bus';
import { STRIPE_ENV } from '../../../src/providers/stripe-billing/contract';
import { HttpCall, httpApiEvent, restApiEvent } from '../../support/api-gateway-events';

type Webhook = (event: APIGatewayProxyEventV2 | APIGatewayProxyEvent) => Promise<APIGatewayProxyStructuredResultV2>;

const SECRET = 'whsec_rest0123456789abcdefghijklmnopqrstuvwxyz';
const TENANT = 'tenant-rest-1';
const CUSTOMER = 'cus_Rest1';
const stripe = new Stripe('sk_test_offline');
let world: StripeWorld;
let doc: DynamoDBDocumentClient;
let billingEvents: BusCapture;
let webhook: Webhook;
let seq = 0;

beforeAll(async () => {
  world = await startWorld();
  world.useFunction('Webhook', { [STRIPE_ENV.SECRET_CACHE_SECONDS]: '0' });
  doc = DynamoDBDocumentClient.from(new DynamoDBClient({}));
  billingEvents = await BusCapture.start('rest-billing-events', { 'source': ['sbt.control.plane'], 'detail-type': ['sbt_aws_billingSuccess', 'sbt_aws_billingFailure'] });
  await doc.send(new PutCommand({ TableName: world.names.customers, Item: { pk: `CUSTOMER#${CUSTOMER}`, tenantId: TENANT, generation: 1 } }));
  await putSigningSecret(world.names.signingSecretArn, SECRET);
  webhook = bundle<{ handler: Webhook }>('webhook').handler;
});

afterAll(async () => {
  await world?.stop();
});

function invoicePaid(): string {
  const n = ++seq;
  return JSON.stringify({
    id: `evt_Rest${n}x${Date.now()}`,
    object: 'event',
    api_version: '2025-09-30.clover',
    type: 'invoice.paid',
    created: Math.floor(Date.now() / 1000),
    data: { object: { id: `in_Rest${n}x${Date.now()}`, object: 'invoice', customer: CUSTOMER, amount_paid: 4200, currency: 'usd' } },
  });
}

/** A delivery as Stripe sends it (its header spelt `Stripe-Signature`). */
function delivery(payload: string | undefined, signatures: string[], binary = false): HttpCall {
  return {
    path: '/billing/stripe',
    headers: [['Content-Type', 'application/json; charset=utf-8'], ['User-Agent', 'Stripe/1.0 (+https://stripe.com/docs/webhooks)'],
      ...signatures.map((s): [string, string] => ['Stripe-Signature', s])],
    body: payload,
    binary,
    requestId: `rest-${++seq}`,
  };
}

function sign(payload: string, secret = SECRET, timestamp = Math.floor(Date.now() / 1000)): string {
  return stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp });
}

async function processedItems(): Promise<number> {
  return (await doc.send(new ScanCommand({ TableName: world.names.webhookEvents, Select: 'COUNT', ConsistentRead: true }))).Count ?? 0;
}

async function call(event: APIGatewayProxyEventV2 | APIGatewayProxyEvent) {
  const before = await processedItems();
  const res = await webhook(event);
  const emitted = await billingEvents.drain(1);
  return { status: res.statusCode, body: JSON.parse(String(res.body)), itemsWritten: (await processedItems()) - before, emitted };
}

test('invoice.paid through a REST API becomes the tenant\'s billing success event; the redelivery is a duplicate', async () => {
  // GIVEN an invoice.paid event signed as Stripe signs it
  const payload = invoicePaid();
  // WHEN a REST API delivers it (payload 1.0), twice
  const first = await call(restApiEvent(delivery(payload, [sign(payload)])));
  const again = await call(restApiEvent(delivery(payload, [sign(payload)])));
  // THEN one billing success event, then a duplicate
  expect(first.status).toBe(200);
  expect(first.emitted.map((e) => [e['detail-type'], e.detail.tenantId, e.detail.eventId])).toEqual([['sbt_aws_billingSuccess', TENANT, JSON.parse(payload).id]]);
  expect(again).toMatchObject({ status: 200, emitted: [], body: { duplicate: true } });
});

test('a binary body through a REST API (binaryMediaTypes) is verified on the decoded bytes', async () => {
  const payload = invoicePaid();
  const r = await call(restApiEvent(delivery(payload, [sign(payload)], true)));
  expect(r.status).toBe(200);
  expect(r.emitted).toHaveLength(1);
});

const now = () => Math.floor(Date.now() / 1000);
const cases: Array<[string, () => HttpCall, number]> = [
  ['signed', () => { const p = invoicePaid(); return delivery(p, [sign(p)]); }, 200],
  ['signed with another secret', () => { const p = invoicePaid(); return delivery(p, [sign(p, 'whsec_not_the_secret')]); }, 401],
  ['signed 10 minutes ago', () => { const p = invoicePaid(); return delivery(p, [sign(p, SECRET, now() - 600)]); }, 401],
  ['no Stripe-Signature', () => delivery(invoicePaid(), []), 400],
  ['no body (null in payload 1.0)', () => delivery(undefined, [sign('')]), 400],
  // A REST API keeps only the last of a repeated header in `headers` (here the valid one); joined as an HTTP API
  // joins them, the signature holds two timestamps: malformed through both APIs (the last value alone would pass).
  ['Stripe-Signature sent twice, the valid one last', () => { const p = invoicePaid(); return delivery(p, [sign(p, 'whsec_not_the_secret'), sign(p)]); }, 400],
];
test.each(cases)('%s: the same answer and side effects through an HTTP API and a REST API', async (_name, make, status) => {
  const outcomes = [];
  for (const toEvent of [httpApiEvent, restApiEvent]) {
    const r = await call(toEvent(make()));
    outcomes.push({ status: r.status, itemsWritten: r.itemsWritten, eventsEmitted: r.emitted.length });
  }
  const accepted = status === 200;
  // accepted: the event id's claim and the invoice's recorded state
  const expected = { status, itemsWritten: accepted ? 2 : 0, eventsEmitted: accepted ? 1 : 0 };
  expect(outcomes).toEqual([expected, expected]);
});
