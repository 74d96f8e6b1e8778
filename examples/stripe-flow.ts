/**
 * StripeBilling's whole flow on this machine, against moto (the AWS API
 * emulator) and stripe-mock (Stripe's API mock, behind the state-keeping proxy
 * of `stripe-local.ts`), printing each step:
 *
 *   npx projen demo:stripe
 *
 * Steps marked [stripe-mock] and [emulator] were done by those services; steps
 * marked [flow] were done by this runner in place of a service that would invoke
 * a Lambda function (CloudFormation, EventBridge, the scheduler, API Gateway):
 * it invokes the bundled handler with exactly the event the service would deliver.
 * The tests import `runStripeFlow` and check what it returns.
 */
import * as path from 'path';
import { DeleteItemCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import Stripe from 'stripe';
import { BusCapture } from './local-flow/bus';
import { startMoto } from './local-flow/emulators';
import { count, minorUnitAmount, quantity } from './local-flow/format';
import { StripeBillingStack } from './stripe-billing-stack';
import { LocalStripeBilling, LocalUsageIngestor, startStripeMock, stripeHandlerModule, StripeProxy } from './stripe-local';
import { STRIPE_ENV } from '../src/providers/stripe-billing/contract';
import { addDecimals, multiplyDecimals } from '../src/shared.lambda/decimal';

/** One step of the flow, as printed. */
export interface FlowStep {
  readonly actor: 'flow' | 'stripe-mock' | 'emulator';
  readonly name: string;
  readonly detail: string;
}

/** What the flow ends with. */
export interface StripeFlowResult {
  readonly customers: number;
  readonly subscriptions: { id: string; status: string; prices: string[] }[];
  readonly meters: string[];
  /** Meter events Stripe counted: identifier, event name, value. */
  readonly meterEvents: { identifier: string; eventName: string; value: string }[];
  /** Meter events sent by the second push run (0: each window once). */
  readonly secondRunSent: number;
  readonly billingEvents: { detailType: string; detail: Record<string, unknown> }[];
}

type Handler = (event: unknown, context?: unknown) => Promise<any>;
const TENANT = 'acme-corp';

/** A control plane event as EventBridge delivers it to a rule's function, at this process's clock. */
function controlPlaneEvent(id: string, detailType: string, detail: Record<string, unknown>) {
  return {
    'version': '0',
    id,
    'detail-type': detailType,
    'source': 'sbt.control.plane',
    'account': '123456789012',
    'time': new Date(Date.now()).toISOString(),
    'region': 'us-east-1',
    'resources': [],
    detail,
  };
}

/** Runs the flow; `onStep` receives each step as it happens. */
export async function runStripeFlow(onStep: (step: FlowStep) => void): Promise<StripeFlowResult> {
  const step = (actor: FlowStep['actor'], name: string, detail: string) => onStep({ actor, name, detail });
  const aws = await startMoto();
  const stripeMock = await startStripeMock((line) => step('flow', 'stripe-mock', line));
  const stripe = new StripeProxy(stripeMock.endpoint);
  const stripeEndpoint = await stripe.start();
  let ingestor: LocalUsageIngestor | undefined;
  try {
    step('flow', 'start', `moto at ${aws.endpoint}; stripe-mock at ${stripeMock.endpoint} behind the proxy at ${stripeEndpoint}`);

    // The example app's StripeBilling stack, as `cdk synth` makes it.
    const app = new App({ outdir: path.join(__dirname, '..', 'test', '.out', `stripe-demo-${process.pid}`) });
    const stack = new StripeBillingStack(app, 'StripeBillingExample');
    const template = Template.fromStack(stack).toJSON() as { Resources: Record<string, { Type: string; Properties?: Record<string, any> }> };
    const local = new LocalStripeBilling(stack, stripeEndpoint, `demo-${Date.now()}`, 'StripeBilling');
    await local.create();
    ingestor = new LocalUsageIngestor(stack, `demo-${Date.now()}`);
    await ingestor.create();
    local.addRef(ingestor.tableLogicalId, ingestor.tableName);
    step('emulator', 'deploy', `tables ${ingestor.tableName}, ${local.names.customers}, ${local.names.push}, ${local.names.webhookEvents} from the synthesized template; the API key secret`);

    // CloudFormation runs the Stripe setup custom resource.
    const setupProps = Object.values(template.Resources).find((r) => r.Type === 'Custom::StripeSetup')!.Properties!;
    const responses: { Status: string; Data?: Record<string, string>; Reason?: string }[] = [];
    const origFetch = globalThis.fetch;
    globalThis.fetch = (async (url: string | URL | Request, init?: RequestInit) => {
      if (String(url).startsWith('https://cloudformation-response.local/')) {
        responses.push(JSON.parse(String(init?.body)));
        return new Response('', { status: 200 });
      }
      return origFetch(url, init);
    }) as typeof fetch;
    local.use('Setup');
    try {
      await stripeHandlerModule<{ handler: Handler }>('setup').handler({
        RequestType: 'Create',
        ResponseURL: 'https://cloudformation-response.local/setup',
        StackId: 'arn:aws:cloudformation:us-east-1:123456789012:stack/StripeBillingExample/1',
        RequestId: 'demo-create',
        LogicalResourceId: 'StripeSetup',
        ResourceType: 'Custom::StripeSetup',
        ResourceProperties: { ...setupProps, ServiceToken: 'demo', WebhookUrl: 'https://abc123.execute-api.us-east-1.amazonaws.com/billing/stripe' },
      });
    } finally {
      globalThis.fetch = origFetch;
    }
    if (responses[0]?.Status !== 'SUCCESS') throw new Error(`Stripe setup failed: ${responses[0]?.Reason}`);
    const meters = [...stripe.state.meters.values()];
    const endpoint = [...stripe.state.webhookEndpoints.values()][0];
    step('stripe-mock', 'setup', `meters ${meters.map((m) => `${m.event_name} (${m.id})`).join(', ')}; webhook endpoint ${endpoint.id} for ${endpoint.url}, events ${(endpoint.enabled_events as string[]).join(', ')}`);
    const signing = await new SecretsManagerClient({}).send(new GetSecretValueCommand({ SecretId: local.names.signingSecretArn }));
    const stored = JSON.parse(signing.SecretString!);
    step('emulator', 'setup', `the endpoint's signing secret stored in Secrets Manager (${String(stored.current).slice(0, 9)}..., for ${stored.endpointId})`);

    // EventBridge delivers the control plane's onboarding request.
    local.use('CreateCustomer');
    const onboarded = await stripeHandlerModule<{ handler: Handler }>('create-customer').handler(
      controlPlaneEvent('demo-onboarding-1', 'sbt_aws_onboardingRequest', { tenantId: TENANT, tenantName: 'Acme Corp', email: 'billing@acme.example' }));
    step('flow', 'onboarding', `tenant ${TENANT}: ${onboarded.outcome}, customer ${onboarded.customerId}, subscription ${onboarded.subscriptionId}`);
    const again = await stripeHandlerModule<{ handler: Handler }>('create-customer').handler(
      controlPlaneEvent('demo-onboarding-1', 'sbt_aws_onboardingRequest', { tenantId: TENANT }));
    step('flow', 'onboarding', `delivered again: ${again.outcome}; Stripe holds ${stripe.state.customers.size} customer`);

    // Usage: producers put records on the ingestor's stream; the aggregator counts each once.
    const hour = new Date(Math.floor(Date.now() / 3600_000) * 3600_000).toISOString();
    const records = [
      { id: 'req-0001', tenantId: TENANT, metric: 'apiCalls', value: 1000, timestamp: hour },
      { id: 'req-0002', tenantId: TENANT, metric: 'apiCalls', value: 250, timestamp: hour },
      { id: 'req-0002', tenantId: TENANT, metric: 'apiCalls', value: 250, timestamp: hour },
      { id: 'disk-0001', tenantId: TENANT, metric: 'storageGb', value: '12.3456', timestamp: hour },
    ];
    await ingestor.ingest(records);
    step('flow', 'usage', `${records.length} records through the aggregator (req-0002 sent twice): `
      + `${records.map((r) => `${r.id} ${quantity(r.metric, r.value)} (${r.metric})`).join(', ')}`);
    const closed = await ingestor.closeWindows();
    // Each record counted once: the window sums the push reads.
    const sums = new Map<string, string>();
    for (const r of new Map(records.map((x) => [x.id, x])).values()) sums.set(r.metric, addDecimals(sums.get(r.metric) ?? '0', String(r.value)));
    step('flow', 'close', `the clock moved past the hour's allowed lateness; the closer closed ${count(closed, 'window')}: `
      + `${[...sums].map(([metric, sum]) => `${metric} ${quantity(metric, sum)}`).join(', ')}`);

    // The scheduler runs the usage push; it reads closed windows through the ingestor's usage read contract.
    local.use('PutUsage');
    const push = stripeHandlerModule<{ handler: Handler }>('put-usage').handler;
    const first = await push({ id: 'demo-schedule-1' }, { awsRequestId: 'demo-push-1', getRemainingTimeInMillis: () => 600_000 });
    // How each window became a whole number: the meters as the construct passes them to the push.
    const pushFn = Object.values(template.Resources).find((r) => r.Type === 'AWS::Lambda::Function' && r.Properties?.Environment?.Variables?.[STRIPE_ENV.METERS]);
    type MeterMapping = { metric: string; eventName: string; multiplier: string; rounding: string };
    const meterMappings = JSON.parse(pushFn!.Properties!.Environment.Variables[STRIPE_ENV.METERS]) as MeterMapping[];
    for (const e of stripe.state.meterEvents) {
      const m = meterMappings.find((x) => x.eventName === e.eventName)!;
      const exact = multiplyDecimals(sums.get(m.metric)!, m.multiplier);
      const product = `${m.metric} ${quantity(m.metric, sums.get(m.metric)!)} × multiplier ${m.multiplier}`;
      const how = exact === String(e.value) ? `${product}, a whole number already`
        : `${product} = ${quantity(e.eventName, exact)}, rounded ${m.rounding} to a whole number (Stripe counts whole units; `
          + 'a billing period bills the rounding of its total, the difference is carried)';
      step('stripe-mock', 'meter event', `${e.eventName} = ${quantity(e.eventName, e.value)} for ${e.customer} at ${new Date(e.timestamp * 1000).toISOString()}: ${how} `
        + `(identifier ${e.identifier})`);
    }
    step('flow', 'push', `sent ${first.SENT}, already pushed ${first.alreadyPushed}`);
    // A run that reads the same windows again (its cursor lost): the pushed markers hold.
    await new DynamoDBClient({}).send(new DeleteItemCommand({ TableName: local.names.push, Key: { pk: { S: 'STATE' }, sk: { S: 'CURSOR' } } }));
    const second = await push({ id: 'demo-schedule-2' }, { awsRequestId: 'demo-push-2', getRemainingTimeInMillis: () => 600_000 });
    step('flow', 'push again', `the same windows read again: sent ${second.SENT}, already pushed ${second.alreadyPushed}: each window once`);

    // Stripe calls the webhook: invoice.paid, signed with the endpoint's secret.
    const billingBus = await BusCapture.start(`demo-billing-events-${Date.now()}`, { 'source': ['sbt.control.plane'], 'detail-type': ['sbt_aws_billingSuccess', 'sbt_aws_billingFailure'] });
    const invoice = {
      id: 'evt_DemoInvoicePaid1',
      object: 'event',
      api_version: setupProps.ApiVersion,
      type: 'invoice.paid',
      created: Math.floor(Date.now() / 1000),
      data: { object: { id: 'in_Demo1', object: 'invoice', customer: onboarded.customerId, amount_paid: 1999, currency: 'usd' } },
    };
    const payload = JSON.stringify(invoice);
    const signature = new Stripe('sk_test_offline').webhooks.generateTestHeaderString({ payload, secret: stored.current });
    local.use('Webhook');
    const webhook = stripeHandlerModule<{ handler: (e: APIGatewayProxyEventV2) => Promise<{ statusCode?: number; body?: string }> }>('webhook').handler;
    const request = (sig: string): APIGatewayProxyEventV2 => ({
      version: '2.0',
      routeKey: 'POST /billing/stripe',
      rawPath: '/billing/stripe',
      rawQueryString: '',
      headers: { 'stripe-signature': sig },
      requestContext: { requestId: 'demo-webhook', http: { method: 'POST', path: '/billing/stripe' } } as APIGatewayProxyEventV2['requestContext'],
      body: payload,
      isBase64Encoded: false,
    });
    const answer = await webhook(request(signature));
    step('flow', 'webhook', `POST /billing/stripe invoice.paid (Stripe-Signature from the SDK's test helper): HTTP ${answer.statusCode} ${answer.body}`);
    const forged = await webhook(request(signature.replace(/v1=[0-9a-f]{4}/, 'v1=0000')));
    step('flow', 'webhook', `the same call with a forged signature: HTTP ${forged.statusCode} ${forged.body}`);
    const replay = await webhook(request(signature));
    step('flow', 'webhook', `the same event delivered again: HTTP ${replay.statusCode} ${replay.body}`);
    const billingEvents = (await billingBus.drain()).map((e) => ({ detailType: e['detail-type'], detail: e.detail }));
    for (const e of billingEvents) {
      step('emulator', 'bus', `${e.detailType} for tenant ${e.detail.tenantId}: amount ${minorUnitAmount(e.detail.amount, e.detail.currency)} `
        + `(Stripe's amount_paid, in the currency's smallest unit; invoice ${e.detail.invoiceId})`);
    }

    // EventBridge delivers the offboarding request, after one more hour of usage.
    await ingestor.ingest([{ id: 'req-0003', tenantId: TENANT, metric: 'apiCalls', value: 42, timestamp: new Date(Date.now()).toISOString() }]);
    const closedLater = await ingestor.closeWindows();
    step('flow', 'usage', `req-0003 ${quantity('apiCalls', 42)} (apiCalls) an hour later; the closer closed ${count(closedLater, 'window')}`);
    local.use('DeleteCustomer');
    const context = {
      awsRequestId: 'demo-offboarding',
      getRemainingTimeInMillis: () => 600_000,
      invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:demo-delete-customer',
    };
    const waiting = await stripeHandlerModule<{ handler: Handler }>('delete-customer').handler(
      controlPlaneEvent('demo-offboarding-1', 'sbt_aws_offboardingRequest', { tenantId: TENANT }), context);
    step('flow', 'offboarding', `${waiting.outcome}: the final push and the cancellation wait until ${waiting.finalizeAt}, when the window holding `
      + 'the offboarding time is closed (records within the allowed lateness included); a one-time EventBridge Scheduler schedule runs them');
    ingestor.advanceClock(Date.parse(waiting.finalizeAt) + 1000 - Date.now());
    await ingestor.closeWindows();
    const [scheduled] = await local.runDueSchedules(context);
    const sub = [...stripe.state.subscriptions.values()][0];
    step('flow', 'offboarding', `at ${new Date(Date.now()).toISOString()} the schedule ran ${JSON.stringify(scheduled)}: the final push sent the `
      + `tenant's last windows; subscription ${sub.id} ${sub.status} (invoice_now ${sub.invoiceNow}); the customer is kept`);

    return {
      customers: stripe.state.customers.size,
      subscriptions: [...stripe.state.subscriptions.values()]
        .map((s) => ({ id: String(s.id), status: String(s.status), prices: s.prices as string[] })),
      meters: meters.map((m) => String(m.event_name)),
      meterEvents: stripe.state.meterEvents.map((e) => ({ identifier: e.identifier, eventName: e.eventName, value: e.value })),
      secondRunSent: second.SENT,
      billingEvents,
    };
  } finally {
    ingestor?.restoreClock();
    await stripe.stop();
    await stripeMock.stop();
    await aws.stop();
  }
}

if (require.main === module) {
  // The handlers' own logs and metrics stay out of the printed steps.
  Object.assign(process.env, { POWERTOOLS_LOG_LEVEL: process.env.DEMO_LOG_LEVEL ?? 'ERROR', POWERTOOLS_METRICS_DISABLED: 'true', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' });
  let n = 0;
  runStripeFlow((s) => console.log(`${String(++n).padStart(2)}. [${s.actor}] ${s.name}: ${s.detail}`))
    .then((r) => {
      console.log('');
      console.log(`Stripe holds ${r.customers} customer, ${r.subscriptions.length} subscription (${r.subscriptions.map((s) => s.status).join(', ')}), meters ${r.meters.join(', ')}`);
      console.log(`meter events counted: ${r.meterEvents.map((e) => `${e.eventName} ${quantity(e.eventName, e.value)}`).join(', ')}; sent by the second push: ${r.secondRunSent}`);
      console.log(`billing events on the bus: ${r.billingEvents.map((e) => `${e.detailType}, amount ${minorUnitAmount(e.detail.amount, e.detail.currency)}`).join('; ')}`);
    })
    .catch((error) => {
      console.error(error);
      process.exit(1);
    });
}
