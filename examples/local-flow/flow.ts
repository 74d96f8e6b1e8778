/**
 * The whole billing flow, driven through the AWS API emulator (moto) with the
 * bundled handlers: run by `npx projen demo:local` (examples/local-flow/demo.ts)
 * and by the end-to-end test (test/e2e/flow.test.ts).
 *
 * moto stores and routes (EventBridge rules to SQS, Kinesis, DynamoDB, Secrets
 * Manager) but cannot run a Lambda function without Docker, so wherever a
 * service would invoke a function, the flow invokes the bundled handler itself
 * with exactly what the service would deliver: the event EventBridge routed to
 * the rule's target, the Kinesis batch GetRecords returns, the scheduled event,
 * the HTTP API payload 2.0 request.
 */
import * as path from 'path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import {
  CreateStreamCommand, DescribeStreamCommand, GetRecordsCommand, GetShardIteratorCommand, KinesisClient, PutRecordsCommand,
} from '@aws-sdk/client-kinesis';
import { CreateSecretCommand, GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DynamoDBDocumentClient, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import type { APIGatewayProxyEventV2, KinesisStreamEvent } from 'aws-lambda';
import { BusCapture } from './bus';
import { startMoto } from './emulators';
import { chargeLine, count, quantity } from './format';
import { createTable, resolveEnvironment, tableSchema } from './tables';
import { BillingProvider, ControlPlaneEvents, UsageIngestor } from '../../src';
import { UsageReader } from '../../src/ingestor/shared.lambda/usage-reader';
import { DynamoDbBilling } from '../../src/providers';
import { WEBHOOK_ENV } from '../../src/providers/dynamodb-billing/contract';
import { signatureHeader } from '../../src/providers/dynamodb-billing/shared.lambda/signature';

const ROOT = path.resolve(__dirname, '..', '..');
const CPE = ControlPlaneEvents.SBT_AWS;

/** Who performed a step: the emulator itself, or the flow standing in for a service that would invoke a function. */
export type Actor = 'emulator' | 'flow';

/** One step of the flow, as printed by the local runner. */
export interface FlowStep {
  readonly name: string;
  readonly actor: Actor;
  readonly detail: string;
}

/** How to run the flow. */
export interface FlowOptions {
  /** Where the app is synthesized. */
  readonly outdir: string;
  /** Called after each step. */
  readonly report?: (step: FlowStep) => void;
}

/** What the flow observed. */
export interface FlowResult {
  readonly steps: FlowStep[];
  readonly customersForTenant: number;
  readonly onboardingDeliveries: number;
  readonly aggregates: Array<{ metric: string; sum: string; count: string }>;
  readonly duplicateRecordsCounted: number;
  readonly chargeLines: Array<{ metric: string; quantity: string; unitPrice: string; amount: string; currency: string }>;
  readonly webhookStatus: number;
  readonly billingEvents: Array<{ source: string; detailType: string; detail: Record<string, unknown> }>;
}

type AnyHandler = (event: unknown, context?: unknown) => Promise<unknown>;

function bundled(relative: string): AnyHandler {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path.join(ROOT, 'assets', relative, 'index.js')).handler;
}

const lambdaContext = {
  functionName: 'flow',
  awsRequestId: 'flow-request',
  getRemainingTimeInMillis: () => 600_000,
};

/** The app under test: BillingProvider wiring DynamoDbBilling and UsageIngestor, as the README's example does. */
export function synthesizeBillingStack(outdir: string): Stack {
  const app = new App({ outdir });
  const stack = new Stack(app, 'BillingFlow');
  const ingestor = new UsageIngestor(stack, 'Ingestor');
  const billing = new DynamoDbBilling(stack, 'Billing', {
    ingestor,
    unitPrices: [{ metric: 'apiCalls', unitPrice: '0.0025' }, { metric: 'storageGb', unitPrice: '0.1' }],
  });
  new BillingProvider(stack, 'Provider', { billing, httpApi: new apigwv2.HttpApi(stack, 'Api') });
  app.synth();
  return stack;
}

type Resources = Record<string, { Type: string; Properties: Record<string, any> }>;

/** The logical id of the function with construct path `<construct>/<name>` (`Billing/CreateCustomer`). */
function functionLogicalId(resources: Resources, constructPath: string): string {
  const prefix = constructPath.replace(/\//g, '');
  const ids = Object.keys(resources).filter((id) => resources[id].Type === 'AWS::Lambda::Function' && new RegExp(`^${prefix}[0-9A-F]{8}$`).test(id));
  if (ids.length !== 1) throw new Error(`Expected one function ${constructPath}, found ${ids.length}`);
  return ids[0];
}

/** The event pattern of the rule that targets a function, exactly as synthesized. */
function rulePatternFor(resources: Resources, fnId: string): Record<string, unknown> {
  const rules = Object.values(resources).filter((r) => r.Type === 'AWS::Events::Rule'
    && JSON.stringify(r.Properties.Targets ?? []).includes(`"${fnId}"`) && r.Properties.EventPattern);
  if (rules.length !== 1) throw new Error(`Expected one rule targeting ${fnId}, found ${rules.length}`);
  return rules[0].Properties.EventPattern;
}

/** A function's environment from the template, its references resolved to the emulator's resources. */
function environmentOf(resources: Resources, fnId: string, refs: Record<string, string>): Record<string, string> {
  return resolveEnvironment(resources[fnId].Properties.Environment?.Variables ?? {}, refs);
}

function logicalIdOf(resources: Resources, type: string, prefix: string): string {
  const ids = Object.keys(resources).filter((id) => resources[id].Type === type && id.startsWith(prefix));
  if (ids.length !== 1) throw new Error(`Expected one ${type} ${prefix}*, found ${ids.length}`);
  return ids[0];
}

/** Sets a function's environment for an in-process invocation; handler logs stay at WARN. */
function applyEnvironment(vars: Record<string, string>): void {
  Object.assign(process.env, vars, { POWERTOOLS_LOG_LEVEL: 'WARN', POWERTOOLS_METRICS_DISABLED: 'true' });
}

/**
 * Runs the flow: onboarding event -> rule -> create customer; usage records ->
 * stream -> aggregator -> ledger; closer -> closed windows; push -> charge lines; signed webhook ->
 * billingSuccess on the bus. `report` is called after each step.
 */
export async function runFlow(opts: FlowOptions): Promise<FlowResult> {
  const report = opts.report ?? (() => undefined);
  const steps: FlowStep[] = [];
  const step = (name: string, actor: Actor, detail: string) => {
    const s = { name, actor, detail };
    steps.push(s);
    report(s);
  };

  const moto = await startMoto();
  process.env.POWERTOOLS_LOG_LEVEL = 'WARN';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  try {
    // 1. Synthesize.
    const stack = synthesizeBillingStack(opts.outdir);
    const resources = Template.fromStack(stack).toJSON().Resources as Resources;
    step('synthesize', 'flow', `BillingProvider + DynamoDbBilling + UsageIngestor: ${Object.keys(resources).length} resources`);

    // 2. Create the stateful resources in the emulator, with the synthesized schemas.
    const names = { billing: 'flow-billing', webhookEvents: 'flow-webhook-events', aggregates: 'flow-aggregates', stream: 'flow-usage' };
    await createTable(tableSchema(stack, 'BillingBillingTable', names.billing));
    await createTable(tableSchema(stack, 'BillingWebhookEventsTable', names.webhookEvents));
    await createTable(tableSchema(stack, 'IngestorAggregateTable', names.aggregates));
    const kinesis = new KinesisClient({ requestHandler: new NodeHttpHandler() });
    await kinesis.send(new CreateStreamCommand({ StreamName: names.stream, ShardCount: 1 }));
    const sm = new SecretsManagerClient({});
    const signingSecret = 'whsec_flow_' + Math.random().toString(36).slice(2).padEnd(40, '0');
    const secretArn = (await sm.send(new CreateSecretCommand({ Name: 'flow/webhook-signing', SecretString: signingSecret }))).ARN!;
    const region = process.env.AWS_REGION ?? 'us-east-1';
    const refs: Record<string, string> = {
      [logicalIdOf(resources, 'AWS::DynamoDB::Table', 'BillingBillingTable')]: names.billing,
      [logicalIdOf(resources, 'AWS::DynamoDB::Table', 'BillingWebhookEventsTable')]: names.webhookEvents,
      [logicalIdOf(resources, 'AWS::DynamoDB::Table', 'IngestorAggregateTable')]: names.aggregates,
      [logicalIdOf(resources, 'AWS::SecretsManager::Secret', 'BillingWebhookSecret')]: secretArn,
      // The webhook's EVENT_BUS_ARN is the default bus's ARN, joined from AWS::AccountId and the region.
      'AWS::AccountId': `arn:aws:events:${region}:123456789012:event-bus/default`,
    };
    step('emulator resources', 'flow', `tables ${Object.values(names).slice(0, 3).join(', ')}, stream ${names.stream}, secret ${secretArn.split(':').pop()}`);

    // 3. Rules: the onboarding rule exactly as synthesized (its target: a queue standing in for the function),
    //    and an observer rule for billing events.
    const eb = new EventBridgeClient({});
    const createCustomerId = functionLogicalId(resources, 'Billing/CreateCustomer');
    const onboardingPattern = rulePatternFor(resources, createCustomerId);
    const onboardingQueue = await BusCapture.start('flow-onboarding', onboardingPattern);
    const billingQueue = await BusCapture.start('flow-billing-events',
      { 'source': [CPE.billingSuccess.source], 'detail-type': [CPE.billingSuccess.detailType, CPE.billingFailure.detailType] });
    step('rules', 'flow', `onboarding rule with the synthesized pattern ${JSON.stringify(onboardingPattern)}`);

    // 4. Onboarding: put on the bus, routed by the emulator, delivered to the create customer handler.
    const tenantId = 'tenant-flow-1';
    const unrelated = await eb.send(new PutEventsCommand({
      Entries: [
        { Source: CPE.onboardingRequest.source, DetailType: CPE.onboardingRequest.detailType, Detail: JSON.stringify({ tenantId, tenantName: 'Flow Inc', email: 'owner@flow.example', tier: 'basic' }) },
        { Source: 'someone.else', DetailType: CPE.onboardingRequest.detailType, Detail: JSON.stringify({ tenantId: 'not-routed' }) },
      ],
    }));
    if (unrelated.FailedEntryCount) throw new Error('PutEvents failed');
    const deliveries = await onboardingQueue.drain(2);
    step('onboarding event', 'emulator', `PutEvents of 2 events; the rule routed ${deliveries.length} (detail-type ${deliveries.map((d) => d['detail-type']).join(', ')})`);
    applyEnvironment(environmentOf(resources, createCustomerId, refs));
    const createCustomer = bundled('providers/dynamodb-billing/create-customer.lambda');
    const created = [];
    for (const d of [...deliveries, ...deliveries]) created.push(await createCustomer(d, lambdaContext)); // delivered twice: at-least-once
    const doc = DynamoDBDocumentClient.from(new DynamoDBClient({}), { unmarshallOptions: { wrapNumbers: true } });
    const customers = (await doc.send(new QueryCommand({
      TableName: names.billing,
      KeyConditionExpression: 'pk = :pk AND sk = :sk',
      ExpressionAttributeValues: { ':pk': `CUSTOMER#${tenantId}`, ':sk': 'CUSTOMER' },
    }))).Items ?? [];
    step('create customer', 'flow', `invoked the bundled handler with the routed event twice: ${created.map((c: any) => c.outcome).join(', ')}; customers for ${tenantId}: ${customers.length}`);

    // 5. Usage: records on the stream; GetRecords; the aggregator gets the Kinesis event (twice: a retried batch).
    const streamDesc = await kinesis.send(new DescribeStreamCommand({ StreamName: names.stream }));
    const shardId = streamDesc.StreamDescription!.Shards![0].ShardId!;
    const streamArn = streamDesc.StreamDescription!.StreamARN!;
    const nowMs = Date.now();
    const records = [
      { id: 'r-1', tenantId, metric: 'apiCalls', value: 1200, timestamp: new Date(nowMs - 1000).toISOString() },
      { id: 'r-2', tenantId, metric: 'apiCalls', value: 800, timestamp: new Date(nowMs - 500).toISOString() },
      { id: 'r-3', tenantId, metric: 'storageGb', value: 3.3, timestamp: nowMs },
      { id: 'r-1', tenantId, metric: 'apiCalls', value: 1200, timestamp: new Date(nowMs - 1000).toISOString() }, // a producer retry
    ];
    await kinesis.send(new PutRecordsCommand({
      StreamName: names.stream,
      Records: records.map((r) => ({ Data: Buffer.from(JSON.stringify(r)), PartitionKey: r.tenantId })),
    }));
    const iterator = (await kinesis.send(new GetShardIteratorCommand({ StreamName: names.stream, ShardId: shardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator!;
    const got = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterator }));
    const kinesisEvent: KinesisStreamEvent = {
      Records: (got.Records ?? []).map((r) => ({
        kinesis: {
          kinesisSchemaVersion: '1.0',
          partitionKey: r.PartitionKey!,
          sequenceNumber: r.SequenceNumber!,
          data: Buffer.from(r.Data!).toString('base64'),
          approximateArrivalTimestamp: (r.ApproximateArrivalTimestamp ?? new Date()).getTime() / 1000,
        },
        eventSource: 'aws:kinesis',
        eventVersion: '1.0',
        eventID: `${shardId}:${r.SequenceNumber}`,
        eventName: 'aws:kinesis:record',
        invokeIdentityArn: 'arn:aws:iam::123456789012:role/flow',
        awsRegion: region,
        eventSourceARN: streamArn,
      })),
    };
    step('usage records', 'emulator', `PutRecords of ${records.length} records (one a producer retry); GetRecords returned ${kinesisEvent.Records.length}`);
    const aggregatorId = functionLogicalId(resources, 'Ingestor/Aggregator');
    applyEnvironment(environmentOf(resources, aggregatorId, refs));
    const aggregate = bundled('ingestor/aggregator.lambda');
    const firstBatch = await aggregate(kinesisEvent, lambdaContext) as { batchItemFailures: unknown[] };
    const retriedBatch = await aggregate(kinesisEvent, lambdaContext) as { batchItemFailures: unknown[] };
    const ledgerItems = ((await doc.send(new ScanCommand({ TableName: names.aggregates, ConsistentRead: true }))).Items ?? [])
      .filter((i) => String(i.pk).startsWith('L#'));
    step('aggregate', 'flow', `invoked the bundled aggregator with the batch, then again (a retry): failures ${firstBatch.batchItemFailures.length}/${retriedBatch.batchItemFailures.length}; `
      + `ledger items ${ledgerItems.length}`);

    // 6. Close: the closer's schedule, with the clock moved past the windows' close (end of hour + lateness + closing margin).
    const closerId = functionLogicalId(resources, 'Ingestor/Closer');
    const closerEnvironment = environmentOf(resources, closerId, refs);
    applyEnvironment(closerEnvironment);
    const hourMs = 3_600_000;
    const closableMs = (Math.floor(nowMs / hourMs) + 1) * hourMs
      + (Number(closerEnvironment.ALLOWED_LATENESS_SECONDS) + Number(closerEnvironment.CLOSING_MARGIN_SECONDS)) * 1000;
    const realNow = Date.now;
    const offsetMs = closableMs + 60_000 - realNow();
    Date.now = () => realNow() + offsetMs;
    const scheduled = {
      'version': '0',
      'id': 'flow-schedule',
      'detail-type': 'Scheduled Event',
      'source': 'aws.events',
      'account': '123456789012',
      'time': new Date().toISOString(),
      'region': region,
      'resources': [],
      'detail': {},
    };
    let pushed: any;
    let rerun: any;
    let aggregates: Array<{ metric: string; sum: string; count: string }>;
    try {
      const closed = await bundled('ingestor/closer.lambda')(scheduled, lambdaContext) as { windowsClosed: number };
      applyEnvironment(environmentOf(resources, functionLogicalId(resources, 'Billing/PutUsage'), refs));
      aggregates = (await UsageReader.fromEnvironment().readClosedWindows({ since: '1970-01-01T00:00:00Z' })).windows
        .map((w) => ({ metric: w.metric, sum: w.sum, count: String(w.count) }));
      step('close windows', 'flow', `clock moved ${Math.round(offsetMs / 60000)} min ahead (end of hour + lateness + closing margin); `
        + `invoked the bundled closer: ${count(closed.windowsClosed, 'window')} closed; `
        + `${aggregates.map((a) => `${a.metric} ${quantity(a.metric, a.sum)} (${count(a.count, 'record')})`).join(', ')}`);

      // 7. Push: the schedule's event; the push reads the closed windows through the usage read contract.
      const push = bundled('providers/dynamodb-billing/put-usage.lambda');
      pushed = await push(scheduled, lambdaContext);
      rerun = await push(scheduled, lambdaContext);
    } finally {
      Date.now = realNow;
    }
    const lines = ((await doc.send(new QueryCommand({
      TableName: names.billing,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :c)',
      ExpressionAttributeValues: { ':pk': `CUSTOMER#${tenantId}`, ':c': 'CHARGE#' },
    }))).Items ?? []).map((l) => ({
      metric: String(l.metric), quantity: l.quantity.value, unitPrice: String(l.unitPrice), amount: l.amount.value, currency: String(l.currency),
    }));
    step('push usage', 'flow', `run 1 billed ${count(pushed.windowsBilled, 'window')}, run 2 billed ${count(rerun.windowsBilled, 'window')}; charge lines `
      + `(exact decimals, in major units): ${lines.map((l) => chargeLine(l)).join(', ')}`);

    // 8. Webhook: the billing system signs with the secret it shares; API Gateway delivers payload 2.0.
    const webhookId = functionLogicalId(resources, 'Billing/Webhook');
    applyEnvironment(environmentOf(resources, webhookId, refs));
    const route = Object.values(resources).find((r) => r.Type === 'AWS::ApiGatewayV2::Route')!.Properties.RouteKey as string;
    const shared = (await sm.send(new GetSecretValueCommand({ SecretId: secretArn }))).SecretString!;
    const payload = JSON.stringify({
      id: 'evt_flow_1',
      type: 'invoice.paid',
      created: Math.floor(Date.now() / 1000),
      data: { object: { id: 'in_flow_1', customer: created[0] && (created[0] as any).customerId, amount_paid: 500, currency: 'usd', metadata: { tenantId } } },
    });
    const [method, rawPath] = route.split(' ');
    const request: APIGatewayProxyEventV2 = {
      version: '2.0',
      routeKey: route,
      rawPath,
      rawQueryString: '',
      headers: { 'content-type': 'application/json', [process.env[WEBHOOK_ENV.SIGNATURE_HEADER_NAME]!]: signatureHeader([shared], payload) },
      requestContext: { requestId: 'flow-webhook', http: { method, path: rawPath } } as APIGatewayProxyEventV2['requestContext'],
      body: payload,
      isBase64Encoded: false,
    };
    const webhook = bundled('providers/dynamodb-billing/webhook.lambda');
    const response = await webhook(request, lambdaContext) as { statusCode: number };
    const events = await billingQueue.drain(2);
    step('webhook', 'flow', `invoked the bundled webhook as ${route} with a signed invoice.paid: HTTP ${response.statusCode}`);
    step('billing event', 'emulator', `routed to the observer: ${events.map((e) => `${e['detail-type']} for ${e.detail.tenantId}`).join(', ') || 'none'}`);

    return {
      steps,
      customersForTenant: customers.length,
      onboardingDeliveries: deliveries.length,
      aggregates,
      duplicateRecordsCounted: aggregates.reduce((n, a) => n + Number(a.count), 0) - 3,
      chargeLines: lines,
      webhookStatus: response.statusCode,
      billingEvents: events.map((e) => ({ source: e.source, detailType: e['detail-type'], detail: e.detail })),
    };
  } finally {
    await moto.stop();
  }
}
