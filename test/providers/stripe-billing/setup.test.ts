/**
 * The Stripe setup custom resource, bundled as Lambda runs it, with the
 * properties the construct synthesizes, against stripe-mock (behind the
 * state-keeping proxy) and moto (the signing secret). CloudFormation's
 * response URL is a local server.
 */
import * as http from 'http';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, CloudFormationCustomResourceEvent } from 'aws-lambda';
import Stripe from 'stripe';
import { bundle, captured, lambdaContext, putSigningSecret, startWorld, StripeWorld } from './support';
import {
  SIGNING_SECRET_OVERLAP_HOURS, STRIPE_API_VERSION, STRIPE_ENV, STRIPE_SETUP_SWEEP, STRIPE_SETUP_VERSION, STRIPE_WEBHOOK_EVENTS,
} from '../../../src/providers/stripe-billing/contract';

type Setup = (event: CloudFormationCustomResourceEvent | Record<string, string>, context?: unknown) => Promise<unknown>;
type Webhook = (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;
interface CfnResponse { Status: string; Reason: string; PhysicalResourceId: string; Data: Record<string, string> }

let world: StripeWorld;
let setup: Setup;
let webhook: Webhook;
let responseServer: http.Server;
let responseUrl: string;
const responses: CfnResponse[] = [];
let properties: Record<string, string>;
const URL_1 = 'https://abc123.execute-api.us-east-1.amazonaws.com/billing/stripe';

beforeAll(async () => {
  world = await startWorld();
  setup = bundle<{ handler: Setup }>('setup').handler;
  webhook = bundle<{ handler: Webhook }>('webhook').handler;
  responseServer = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      responses.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      res.end();
    });
  });
  await new Promise<void>((resolve) => responseServer.listen(0, '127.0.0.1', resolve));
  responseUrl = `http://127.0.0.1:${(responseServer.address() as { port: number }).port}/response`;
  const resources = world.template.findResources('Custom::StripeSetup');
  const props = Object.values(resources)[0].Properties as Record<string, unknown>;
  properties = Object.fromEntries(Object.entries(props).filter(([k]) => k !== 'ServiceToken').map(([k, v]) => [k, typeof v === 'string' ? v : URL_1]));
});

afterAll(async () => {
  await new Promise<void>((resolve) => responseServer.close(() => resolve()));
  await world?.stop();
});

beforeEach(() => {
  world.useFunction('Setup');
  world.stripe.reset();
  responses.length = 0;
});

let requestSeq = 0;
const STACK = 'arn:aws:cloudformation:us-east-1:123456789012:stack/Stripe/1';
function cfnEvent(type: 'Create' | 'Update' | 'Delete', props: Record<string, string>, old?: Record<string, string>, physicalId?: string,
  stackId = STACK): CloudFormationCustomResourceEvent {
  const base = {
    ServiceToken: 'arn:aws:lambda:us-east-1:123456789012:function:setup',
    ResponseURL: responseUrl,
    StackId: stackId,
    RequestId: `req-${++requestSeq}`,
    LogicalResourceId: 'StripeStripeSetup',
    ResourceType: 'Custom::StripeSetup',
    ResourceProperties: { ServiceToken: 'x', ...props },
  };
  if (type === 'Create') return { ...base, RequestType: 'Create' };
  if (type === 'Update') return { ...base, RequestType: 'Update', PhysicalResourceId: physicalId ?? props.SetupId, OldResourceProperties: { ServiceToken: 'x', ...(old ?? props) } };
  return { ...base, RequestType: 'Delete', PhysicalResourceId: physicalId ?? props.SetupId };
}

interface Stored { current?: string; endpointId?: string; previous?: string; previousEndpointId?: string; previousUntil?: string }
async function storedSecret(): Promise<Stored> {
  const v = await new SecretsManagerClient({}).send(new GetSecretValueCommand({ SecretId: world.names.signingSecretArn }));
  try {
    return JSON.parse(v.SecretString!);
  } catch {
    return {};
  }
}

const meters = () => [...world.stripe.state.meters.values()];
const endpoints = () => [...world.stripe.state.webhookEndpoints.values()];
const writes = () => world.stripe.requests.filter((r) => r.method !== 'GET');

async function created(): Promise<CfnResponse> {
  await setup(cfnEvent('Create', properties), lambdaContext());
  return responses[responses.length - 1];
}


const offline = new Stripe('sk_test_offline');
let deliverySeq = 0;

/** How the bundled webhook answers a delivery signed with `secret` (an event type it acknowledges and ignores: no side effect). */
async function webhookStatus(secret: string): Promise<number> {
  world.useFunction('Webhook', { [STRIPE_ENV.SECRET_CACHE_SECONDS]: '0' });
  try {
    const now = Math.floor(Date.now() / 1000);
    const payload = JSON.stringify({
      id: `evt_Rotation${++deliverySeq}`,
      object: 'event',
      api_version: STRIPE_API_VERSION,
      type: 'customer.created',
      created: now,
      data: { object: { id: 'cus_Rotation', object: 'customer' } },
    });
    const res = await webhook({
      version: '2.0',
      routeKey: 'POST /billing/stripe',
      rawPath: '/billing/stripe',
      rawQueryString: '',
      headers: { 'stripe-signature': offline.webhooks.generateTestHeaderString({ payload, secret, timestamp: now }) },
      requestContext: { requestId: `rot-${deliverySeq}`, http: { method: 'POST', path: '/billing/stripe' } } as APIGatewayProxyEventV2['requestContext'],
      body: payload,
      isBase64Encoded: false,
    });
    return res.statusCode!;
  } finally {
    world.useFunction('Setup');
  }
}

/** The event the setup's hourly rule sends, read from the synthesized rule. */
function sweepEvent(): Record<string, string> {
  const rules = world.template.findResources('AWS::Events::Rule', { Properties: { ScheduleExpression: 'rate(1 hour)' } });
  const inputs = Object.values(rules).flatMap((r) => (r.Properties.Targets as { Input?: string }[]).map((t) => t.Input ?? ''));
  const input = inputs.find((i) => i.includes(STRIPE_SETUP_SWEEP));
  if (!input) throw new Error('no hourly rule sends the setup its sweep');
  return JSON.parse(input);
}

/** Runs `fn` with this process's `Date.now()` (the bundled handlers' clock) at `ms`. */
async function atTime<T>(ms: number, fn: () => Promise<T>): Promise<T> {
  const realNow = Date.now;
  Date.now = () => ms;
  try {
    return await fn();
  } finally {
    Date.now = realNow;
  }
}

const sumMeter = (id: string, eventName: string, extra: Record<string, unknown> = {}) => ({
  id,
  object: 'billing.meter',
  event_name: eventName,
  display_name: 'x',
  status: 'active',
  default_aggregation: { formula: 'sum' },
  customer_mapping: { type: 'by_id', event_payload_key: 'stripe_customer_id' },
  value_settings: { event_payload_key: 'value' },
  event_time_window: null,
  ...extra,
});
const statuses = () => meters().map((m) => `${m.event_name}:${m.status}`);

describe('test mode', () => {
  // First in the file: the first Stripe client of a fresh copy of the bundle logs the key's mode.
  test('a test-mode key: the mode is logged once (never the key) and the requests keep to 20 per second, Stripe\'s sandbox allowing 25', async () => {
    let fresh!: Setup;
    process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
    try {
      jest.isolateModules(() => {
        fresh = bundle<{ handler: Setup }>('setup').handler;
      });
    } finally {
      delete process.env.POWERTOOLS_LOG_LEVEL;
    }
    world.useFunction('Setup');
    const many = { ...properties, Meters: JSON.stringify(Array.from({ length: 40 }, (_, i) => ({ eventName: `meter_${i}`, displayName: `m${i}` }))) };
    const started = performance.now();
    const { output } = await captured(() => fresh(cfnEvent('Create', many), lambdaContext()));
    const elapsedMs = performance.now() - started;
    expect(responses.at(-1)).toMatchObject({ Status: 'SUCCESS' });
    const n = world.stripe.requests.length;
    expect(n).toBeGreaterThanOrEqual(43); // lists, 40 meters, the endpoint
    // One token every 50 ms after the first: without the limiter this takes a fraction of it.
    expect(elapsedMs).toBeGreaterThanOrEqual(((n - 1) * 1000) / 20 - 5);
    expect(output.match(/Stripe API key mode: test/g)).toHaveLength(1);
    expect(output).not.toContain('sk_test_51LocalTestKey0123456789');
  }, 30_000);
});

describe('Stripe setup custom resource', () => {
  test('create: the declared meters (sum of value per stripe_customer_id) and one webhook endpoint, whose signing secret is stored', async () => {
    const res = await created();
    expect(res).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: properties.SetupId });
    expect(meters().map((m) => [m.event_name, m.display_name, m.status])).toEqual([['api_calls', 'apiCalls', 'active'], ['storage_mb', 'storageGb', 'active']]);
    expect(meters().every((m) => (m.default_aggregation as { formula: string }).formula === 'sum'
      && (m.customer_mapping as { event_payload_key: string }).event_payload_key === 'stripe_customer_id'
      && (m.value_settings as { event_payload_key: string }).event_payload_key === 'value')).toBe(true);
    const [endpoint] = endpoints();
    expect(endpoints()).toHaveLength(1);
    expect(endpoint).toMatchObject({
      url: URL_1,
      api_version: STRIPE_API_VERSION,
      enabled_events: Object.values(STRIPE_WEBHOOK_EVENTS),
      metadata: { cdkSaasBillingSetupId: properties.SetupId, managedBy: 'cdk-saas-billing' },
    });
    expect(await storedSecret()).toEqual({ current: endpoint.secret, endpointId: endpoint.id });
    // The endpoint records what this setup uses and owns (Stripe's meters have no metadata).
    expect(endpoint.metadata).toEqual({
      cdkSaasBillingSetupId: properties.SetupId,
      managedBy: 'cdk-saas-billing',
      cdkSaasBillingStackId: STACK,
      cdkSaasBillingMeters: meters().map((m) => m.id).sort().join(','),
      cdkSaasBillingOwnedMeters: meters().map((m) => m.id).sort().join(','),
    });
    expect(res.Data).toEqual({
      WebhookEndpointId: endpoint.id,
      MeterIds: JSON.stringify({ api_calls: meters()[0].id, storage_mb: meters()[1].id }),
      MeterId0: meters()[0].id,
      MeterId1: meters()[1].id,
    });
    // Every request validated against stripe-mock's spec of the pinned version.
    expect(world.stripe.requests.every((r) => r.status === 200)).toBe(true);
  });

  test('an update that changes nothing writes nothing in Stripe', async () => {
    await created();
    world.stripe.clearRecording();
    await setup(cfnEvent('Update', properties), lambdaContext());
    expect(responses.at(-1)).toMatchObject({ Status: 'SUCCESS' });
    expect(writes()).toEqual([]);
  });

  test('an update of the URL updates the endpoint in place and keeps its secret', async () => {
    await created();
    const before = await storedSecret();
    world.stripe.clearRecording();
    await setup(cfnEvent('Update', { ...properties, WebhookUrl: 'https://api.example.com/billing/stripe' }, properties), lambdaContext());
    expect(responses.at(-1)).toMatchObject({ Status: 'SUCCESS' });
    expect(writes().map((r) => `${r.method} ${r.path}`)).toEqual([`POST /v1/webhook_endpoints/${before.endpointId}`]);
    expect(endpoints()).toEqual([expect.objectContaining({ id: before.endpointId, url: 'https://api.example.com/billing/stripe' })]);
    expect(await storedSecret()).toEqual(before);
  });

  test('a meter removed from the props is deactivated; added back, it is reactivated (Stripe keeps meters)', async () => {
    await created();
    const one = { ...properties, Meters: JSON.stringify([{ eventName: 'api_calls', displayName: 'apiCalls' }]) };
    await setup(cfnEvent('Update', one, properties), lambdaContext());
    expect(meters().map((m) => m.status)).toEqual(['active', 'inactive']);
    await setup(cfnEvent('Update', properties, one), lambdaContext());
    expect(meters().map((m) => m.status)).toEqual(['active', 'active']);
    expect(meters()).toHaveLength(2);
  });

  test('a meter that exists with another aggregation fails the deployment with the fix', async () => {
    world.stripe.state.meters.set('mtr_Count', {
      id: 'mtr_Count',
      event_name: 'api_calls',
      display_name: 'x',
      status: 'active',
      default_aggregation: { formula: 'count' },
      customer_mapping: { event_payload_key: 'stripe_customer_id' },
      value_settings: { event_payload_key: 'value' },
    });
    const res = (await captured(created)).result!;
    expect(res.Status).toBe('FAILED');
    expect(res.Reason).toMatch(/mtr_Count.*aggregates by count, not sum.*Choose another event name/);
  });

  test('a stored secret that is not the endpoint\'s own: a new endpoint replaces it (Stripe shows a secret only at creation)', async () => {
    await created();
    const old = await storedSecret();
    await putSigningSecret(world.names.signingSecretArn, 'replaced-by-someone');
    await setup(cfnEvent('Update', properties), lambdaContext());
    const now = await storedSecret();
    expect(now.endpointId).not.toBe(old.endpointId);
    expect(endpoints().map((e) => e.id)).toEqual([now.endpointId]);
  });

  test('delete: meters deactivated, endpoint deleted', async () => {
    await created();
    await setup(cfnEvent('Delete', properties), lambdaContext());
    expect(responses.at(-1)).toMatchObject({ Status: 'SUCCESS' });
    expect(meters().map((m) => m.status)).toEqual(['inactive', 'inactive']);
    expect(endpoints()).toHaveLength(0);
  });

  test('delete of a create that failed touches nothing in Stripe', async () => {
    await created();
    world.stripe.clearRecording();
    await setup(cfnEvent('Delete', properties, undefined, 'failed-req-1'), lambdaContext());
    expect(responses.at(-1)).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: 'failed-req-1' });
    expect(writes()).toEqual([]);
  });

  test('Stripe unavailable: CloudFormation gets FAILED with the reason, never a hang', async () => {
    world.stripe.inject({ method: 'GET', path: /^\/v1\/billing\/meters$/ }, ...Array.from({ length: 6 }, () => ({ kind: 'server-error' as const })));
    const res = (await captured(created)).result!;
    expect(res.Status).toBe('FAILED');
    expect(res.Reason).toMatch(/Stripe setup failed/);
  }, 60_000);
});

describe('signing secret rotation (webhookSigningSecretRotation)', () => {
  const rotated = (label: string) => ({ ...properties, SigningSecretRotation: label });

  test('a new label: a new endpoint, both secrets verify during the overlap, the hourly run removes the old endpoint and secret once it is over', async () => {
    await created();
    const a = await storedSecret();
    const before = Date.now();
    await setup(cfnEvent('Update', rotated('2026-12-01'), properties), lambdaContext());
    const after = Date.now();
    expect(responses.at(-1)).toMatchObject({ Status: 'SUCCESS' });
    const b = await storedSecret();
    const newEndpoint = world.stripe.state.webhookEndpoints.get(b.endpointId!)!;
    expect(endpoints().map((e) => e.id).sort()).toEqual([a.endpointId, b.endpointId].sort());
    expect(newEndpoint).toMatchObject({ url: URL_1, metadata: expect.objectContaining({ cdkSaasBillingRotation: '2026-12-01' }) });
    expect(b).toMatchObject({ current: newEndpoint.secret, endpointId: newEndpoint.id, previous: a.current, previousEndpointId: a.endpointId });
    // The old endpoint lives 3 days (Stripe's retries) and an hour after the new one exists.
    const until = Date.parse(b.previousUntil!);
    expect(until).toBeGreaterThanOrEqual(before + SIGNING_SECRET_OVERLAP_HOURS * 3600_000);
    expect(until).toBeLessThanOrEqual(after + SIGNING_SECRET_OVERLAP_HOURS * 3600_000);
    expect(SIGNING_SECRET_OVERLAP_HOURS).toBeGreaterThanOrEqual(72);
    expect(await webhookStatus(a.current!)).toBe(200);
    expect(await webhookStatus(b.current!)).toBe(200);
    expect(await webhookStatus('whsec_notOneOfThem0123456789abcdef')).toBe(401);

    // Deployed again unchanged: nothing written.
    world.stripe.clearRecording();
    await setup(cfnEvent('Update', rotated('2026-12-01')), lambdaContext());
    expect(writes()).toEqual([]);

    // The hourly run before the overlap ends: nothing.
    expect(await atTime(until - 60_000, () => setup(sweepEvent()))).toEqual({ waitingUntil: b.previousUntil });
    expect(endpoints()).toHaveLength(2);
    expect(writes()).toEqual([]);
    // After it: the old endpoint deleted, its secret removed; the old secret no longer verifies.
    await atTime(until + 60_000, async () => {
      expect(await setup(sweepEvent())).toEqual({ retiredEndpointId: a.endpointId });
      expect(await webhookStatus(a.current!)).toBe(401);
      expect(await webhookStatus(b.current!)).toBe(200);
    });
    expect(writes().map((r) => `${r.method} ${r.path}`)).toEqual([`DELETE /v1/webhook_endpoints/${a.endpointId}`]);
    expect(endpoints().map((e) => e.id)).toEqual([b.endpointId]);
    expect(await storedSecret()).toEqual({ current: b.current, endpointId: b.endpointId });
    // Nothing left: the hourly run reads the secret only.
    world.stripe.clearRecording();
    expect(await setup(sweepEvent())).toEqual({});
    expect(world.stripe.requests).toEqual([]);
  });

  test('an hourly run that races a deploy never undoes what the deploy stored (the secret is written as the version after the one read)', async () => {
    await created();
    await setup(cfnEvent('Update', rotated('r1'), properties), lambdaContext());
    const b = await storedSecret();
    await atTime(Date.parse(b.previousUntil!) + 1000, async () => {
      // The hourly run reads the secret, then its delete of the old endpoint is slow; a deploy rotating again runs meanwhile.
      world.stripe.inject({ method: 'DELETE', path: /^\/v1\/webhook_endpoints\// }, { kind: 'slow', delayMs: 1500 });
      const sweeping = setup(sweepEvent());
      await new Promise((resolve) => setTimeout(resolve, 300));
      await setup(cfnEvent('Update', rotated('r2'), rotated('r1')), lambdaContext());
      expect(responses.at(-1)).toMatchObject({ Status: 'SUCCESS' });
      await sweeping;
    });
    const c = await storedSecret();
    expect(c).toMatchObject({ previous: b.current, previousEndpointId: b.endpointId });
    expect(c.endpointId).not.toBe(b.endpointId);
    expect(endpoints().map((e) => e.id).sort()).toEqual([b.endpointId, c.endpointId].sort());
    expect(await webhookStatus(c.current!)).toBe(200);
  });

  test('a deploy after the overlap ends does what the hourly run would', async () => {
    await created();
    const a = await storedSecret();
    await setup(cfnEvent('Update', rotated('r1'), properties), lambdaContext());
    const b = await storedSecret();
    await atTime(Date.parse(b.previousUntil!) + 1000, () => setup(cfnEvent('Update', { ...rotated('r1'), WebhookUrl: 'https://api.example.com/billing/stripe' }, rotated('r1')), lambdaContext()));
    expect(responses.at(-1)).toMatchObject({ Status: 'SUCCESS' });
    expect(endpoints().map((e) => [e.id, e.url])).toEqual([[b.endpointId, 'https://api.example.com/billing/stripe']]);
    expect(await storedSecret()).toEqual({ current: b.current, endpointId: b.endpointId });
    expect(a.endpointId).not.toBe(b.endpointId);
  });

  test('a second rotation during the overlap keeps the oldest endpoint (it got every event the one in between got) for a new overlap', async () => {
    await created();
    const a = await storedSecret();
    await setup(cfnEvent('Update', rotated('r1'), properties), lambdaContext());
    const b = await storedSecret();
    await atTime(Date.now() + 3600_000, () => setup(cfnEvent('Update', rotated('r2'), rotated('r1')), lambdaContext()));
    const c = await storedSecret();
    expect(endpoints().map((e) => e.id).sort()).toEqual([a.endpointId, c.endpointId].sort());
    expect(c).toMatchObject({ previous: a.current, previousEndpointId: a.endpointId });
    expect(Date.parse(c.previousUntil!)).toBeGreaterThan(Date.parse(b.previousUntil!));
    expect(await webhookStatus(b.current!)).toBe(401);
  });

  test('going back to the previous label during the overlap (a rollback) makes the old endpoint current again and deletes the new one', async () => {
    await created();
    const a = await storedSecret();
    await setup(cfnEvent('Update', rotated('r1'), properties), lambdaContext());
    await setup(cfnEvent('Update', properties, rotated('r1')), lambdaContext());
    expect(responses.at(-1)).toMatchObject({ Status: 'SUCCESS', Data: expect.objectContaining({ WebhookEndpointId: a.endpointId }) });
    expect(endpoints().map((e) => e.id)).toEqual([a.endpointId]);
    expect(await storedSecret()).toEqual(a);
  });

  test('delete during the overlap deletes both endpoints', async () => {
    await created();
    await setup(cfnEvent('Update', rotated('r1'), properties), lambdaContext());
    await setup(cfnEvent('Delete', rotated('r1')), lambdaContext());
    expect(endpoints()).toEqual([]);
  });
});

describe('meter ownership: Delete deactivates only what this setup made active and no other setup uses', () => {
  const OTHER_STACK = 'arn:aws:cloudformation:us-east-1:123456789012:stack/Other/2';

  test('replacement (CloudFormation creates the new setup, then deletes the old): the old one\'s Delete deactivates nothing the new one uses', async () => {
    const old = await created();
    const replacement = { ...properties, SetupId: 'csb0123456789-setup' };
    await setup(cfnEvent('Create', replacement), lambdaContext());
    expect(responses.at(-1)).toMatchObject({ Status: 'SUCCESS', Data: expect.objectContaining({ MeterIds: old.Data.MeterIds }) });
    await setup(cfnEvent('Delete', properties), lambdaContext());
    expect(responses.at(-1)).toMatchObject({ Status: 'SUCCESS' });
    expect(statuses()).toEqual(['api_calls:active', 'storage_mb:active']);
    expect(endpoints().map((e) => (e.metadata as Record<string, string>).cdkSaasBillingSetupId)).toEqual([replacement.SetupId]);
    // The replacement, of the same stack, took the meters over: its own Delete deactivates them.
    await setup(cfnEvent('Delete', replacement), lambdaContext());
    expect(statuses()).toEqual(['api_calls:inactive', 'storage_mb:inactive']);
  });

  test('a meter that existed before (adopted) stays active on Delete; the one the setup created is deactivated', async () => {
    world.stripe.state.meters.set('mtr_Adopted', sumMeter('mtr_Adopted', 'api_calls', { display_name: 'apiCalls' }));
    const res = await created();
    expect(res).toMatchObject({ Status: 'SUCCESS', Data: expect.objectContaining({ MeterId0: 'mtr_Adopted' }) });
    const createdId = res.Data.MeterId1;
    expect(endpoints()[0].metadata).toMatchObject({ cdkSaasBillingMeters: ['mtr_Adopted', createdId].sort().join(','), cdkSaasBillingOwnedMeters: createdId });
    await setup(cfnEvent('Delete', properties), lambdaContext());
    expect(statuses()).toEqual(['api_calls:active', 'storage_mb:inactive']);
  });

  test('an adopted meter removed from the props is left active', async () => {
    world.stripe.state.meters.set('mtr_Adopted', sumMeter('mtr_Adopted', 'api_calls', { display_name: 'apiCalls' }));
    await created();
    await setup(cfnEvent('Update', { ...properties, Meters: JSON.stringify([{ eventName: 'storage_mb', displayName: 'storageGb' }]) }, properties), lambdaContext());
    expect(statuses()).toEqual(['api_calls:active', 'storage_mb:active']);
  });

  test('another installation (another stack) on the account keeps a shared meter active, and never deactivates a meter it did not create', async () => {
    await created();
    const other = { ...properties, SetupId: 'csbfedcba9876-setup' };
    await setup(cfnEvent('Create', other, undefined, undefined, OTHER_STACK), lambdaContext());
    await setup(cfnEvent('Delete', properties), lambdaContext());
    expect(statuses()).toEqual(['api_calls:active', 'storage_mb:active']);
    await setup(cfnEvent('Delete', other, undefined, other.SetupId, OTHER_STACK), lambdaContext());
    expect(statuses()).toEqual(['api_calls:active', 'storage_mb:active']);
    expect(endpoints()).toEqual([]);
  });
});

describe('an existing meter that would miscount is refused, with the reason', () => {
  test.each(['hour', 'day'])('pre-aggregated per %s (event_time_window): Stripe keeps only the most recent event of each window', async (window) => {
    world.stripe.state.meters.set('mtr_PreAggregated', sumMeter('mtr_PreAggregated', 'api_calls', { event_time_window: window }));
    const res = (await captured(created)).result!;
    expect(res.Status).toBe('FAILED');
    expect(res.Reason).toMatch(new RegExp(`mtr_PreAggregated \\(event name 'api_calls'\\) exists but is pre-aggregated per ${window} .*only the most recent event of each ${window} `
      + '.*replace the first instead of adding to it.*Choose another event name'));
    expect(writes()).toEqual([]);
  });

  test('aggregated by last: it would keep the last value instead of adding them', async () => {
    world.stripe.state.meters.set('mtr_Last', sumMeter('mtr_Last', 'api_calls', { default_aggregation: { formula: 'last' } }));
    const res = (await captured(created)).result!;
    expect(res.Status).toBe('FAILED');
    expect(res.Reason).toMatch(/mtr_Last .*aggregates by last, not sum \(it would keep the last value, not add them\)/);
  });
});

describe('the synthesized setup', () => {
  test('every input is a property (CloudFormation runs a custom resource only when one changes); an hourly rule sends the sweep', () => {
    const [resource] = Object.values(world.template.findResources('Custom::StripeSetup'));
    expect(Object.keys(resource.Properties).sort()).toEqual(['ApiKeySecretArn', 'ApiVersion', 'Meters', 'ServiceToken', 'SetupId',
      'SetupVersion', 'SigningSecretRotation', 'WebhookEvents', 'WebhookSigningSecretArn', 'WebhookUrl']);
    expect(resource.Properties).toMatchObject({ SetupVersion: STRIPE_SETUP_VERSION, SigningSecretRotation: '' });
    expect(sweepEvent()).toEqual({ [STRIPE_SETUP_SWEEP]: properties.SetupId });
  });

  test('outputs: each meter\'s id named after its event name, all of them as JSON, the endpoint id', () => {
    const setupId = Object.keys(world.template.findResources('Custom::StripeSetup'))[0];
    const outputs = world.template.findOutputs('*');
    const got = Object.entries(outputs).filter(([, o]) => JSON.stringify(o.Value).includes(setupId))
      .map(([id, o]) => [id.replace(/[0-9A-F]{8}$/, ''), o.Value['Fn::GetAtt'][1], o.Description]);
    expect(got).toEqual([
      ['StripeWebhookEndpointId', 'WebhookEndpointId', 'Id of the Stripe webhook endpoint the setup manages'],
      ['StripeMeterIds', 'MeterIds', 'The Stripe meters of this installation: JSON object event name -> meter id'],
      ['StripeMeterIdapicalls', 'MeterId0', 'Id of the Stripe meter with event name api_calls: create its metered prices on it'],
      ['StripeMeterIdstoragemb', 'MeterId1', 'Id of the Stripe meter with event name storage_mb: create its metered prices on it'],
    ]);
  });
});
