/**
 * The Stripe setup custom resource, bundled as Lambda runs it, with the
 * properties the construct synthesizes, against stripe-mock (behind the
 * state-keeping proxy) and moto (the signing secret). CloudFormation's
 * response URL is a local server.
 */
import * as http from 'http';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { bundle, captured, lambdaContext, putSigningSecret, startWorld, StripeWorld } from './support';
import { STRIPE_API_VERSION, STRIPE_WEBHOOK_EVENTS } from '../../../src/providers/stripe-billing/contract';

type Setup = (event: CloudFormationCustomResourceEvent, context?: unknown) => Promise<void>;
interface CfnResponse { Status: string; Reason: string; PhysicalResourceId: string; Data: Record<string, string> }

let world: StripeWorld;
let setup: Setup;
let responseServer: http.Server;
let responseUrl: string;
const responses: CfnResponse[] = [];
let properties: Record<string, string>;
const URL_1 = 'https://abc123.execute-api.us-east-1.amazonaws.com/billing/stripe';

beforeAll(async () => {
  world = await startWorld();
  setup = bundle<{ handler: Setup }>('setup').handler;
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
function cfnEvent(type: 'Create' | 'Update' | 'Delete', props: Record<string, string>, old?: Record<string, string>, physicalId?: string): CloudFormationCustomResourceEvent {
  const base = {
    ServiceToken: 'arn:aws:lambda:us-east-1:123456789012:function:setup',
    ResponseURL: responseUrl,
    StackId: 'arn:aws:cloudformation:us-east-1:123456789012:stack/Stripe/1',
    RequestId: `req-${++requestSeq}`,
    LogicalResourceId: 'StripeStripeSetup',
    ResourceType: 'Custom::StripeSetup',
    ResourceProperties: { ServiceToken: 'x', ...props },
  };
  if (type === 'Create') return { ...base, RequestType: 'Create' };
  if (type === 'Update') return { ...base, RequestType: 'Update', PhysicalResourceId: physicalId ?? props.SetupId, OldResourceProperties: { ServiceToken: 'x', ...(old ?? props) } };
  return { ...base, RequestType: 'Delete', PhysicalResourceId: physicalId ?? props.SetupId };
}

async function storedSecret(): Promise<{ current?: string; endpointId?: string }> {
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
    expect(res.Data).toEqual({ WebhookEndpointId: endpoint.id, MeterIds: JSON.stringify({ api_calls: meters()[0].id, storage_mb: meters()[1].id }) });
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
