/**
 * MarketplaceBilling's whole flow on this machine, against moto (the AWS API emulator) behind the
 * local AWS Marketplace emulator (`marketplace-local.ts`), printing each step:
 *
 *   npx projen demo:marketplace
 *
 * register → onboard → usage → metering → cancellation. Steps marked [marketplace] and [emulator]
 * were done by those services; steps marked [flow] were done by this runner in place of a service
 * that would invoke a Lambda function (API Gateway, EventBridge, the scheduler): it invokes the
 * bundled handler with exactly the event the service would deliver.
 */
import * as path from 'path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { App } from 'aws-cdk-lib';
import { BusCapture } from './local-flow/bus';
import { startMoto } from './local-flow/emulators';
import { MarketplaceBillingStack } from './marketplace-billing-stack';
import { fulfillmentRequest, LocalMarketplaceBilling, marketplaceEvent, marketplaceHandlerModule, MarketplaceEmulator } from './marketplace-local';
import { useMarketplaceSdkStandIn } from './marketplace-sdk-standin';
import { LocalUsageIngestor } from './stripe-local';
import { MARKETPLACE_DETAIL_TYPES } from '../src/providers/marketplace-billing/contract';

/** One step of the flow, as printed. */
export interface FlowStep {
  readonly actor: 'flow' | 'marketplace' | 'emulator';
  readonly name: string;
  readonly detail: string;
}

/** What the flow ends with. */
export interface MarketplaceFlowResult {
  /** Usage records Marketplace accepted: dimension, hour, quantity. */
  readonly records: { dimension: string; hour: string; quantity: number }[];
  /** Records sent by the second push run (0: each hour once). */
  readonly secondRunSent: number;
  /** The subscription changed events, in order (status). */
  readonly events: string[];
  /** The state of the subscription at the end. */
  readonly finalState: string;
}

type Handler = (event: unknown, context?: unknown) => Promise<any>;
const TENANT = 'acme-corp';
const context = (id: string) => ({ awsRequestId: id, getRemainingTimeInMillis: () => 600_000 });

/** Runs the flow; `onStep` receives each step as it happens. */
export async function runMarketplaceFlow(onStep: (step: FlowStep) => void): Promise<MarketplaceFlowResult> {
  const step = (actor: FlowStep['actor'], name: string, detail: string) => onStep({ actor, name, detail });
  useMarketplaceSdkStandIn();
  const aws = await startMoto();
  // The example app's MarketplaceBilling stack, as `cdk synth` makes it.
  const app = new App({ outdir: path.join(__dirname, '..', 'test', '.out', `marketplace-demo-${process.pid}`) });
  const stack = new MarketplaceBillingStack(app, 'MarketplaceBillingExample');
  const productCode = 'prod-example7xyz1234';
  const emulator = new MarketplaceEmulator(aws.endpoint, productCode, { dimensions: ['api_calls_thousands', 'storage_gb_hours'] });
  process.env.AWS_ENDPOINT_URL = await emulator.start();
  let ingestor: LocalUsageIngestor | undefined;
  try {
    step('flow', 'start', `moto at ${aws.endpoint} behind the AWS Marketplace emulator at ${process.env.AWS_ENDPOINT_URL}`);
    const suffix = `demo-${Date.now()}`;
    const local = new LocalMarketplaceBilling(stack, suffix, 'MarketplaceBilling');
    await local.create();
    ingestor = new LocalUsageIngestor(stack, suffix);
    await ingestor.create();
    local.addRef(ingestor.tableLogicalId, ingestor.tableName);
    const bus = await BusCapture.start(`mp-demo-${Date.now()}`, { 'detail-type': ['cdk_saas_billing_subscriptionChanged'] }, aws.endpoint);
    step('emulator', 'deploy', `tables ${local.names.registrations}, ${local.names.metering} and ${ingestor.tableName} from the synthesized template`);
    const handler = (name: Parameters<typeof marketplaceHandlerModule>[0], fn: Parameters<LocalMarketplaceBilling['use']>[0]): Handler => async (event, ctx) => {
      local.use(fn);
      return marketplaceHandlerModule<{ handler: Handler }>(name).handler(event, ctx);
    };
    const events: string[] = [];
    const showEvents = async () => {
      for (const e of await bus.drain(1)) {
        events.push(e.detail.status);
        step('emulator', 'bus', `${e['detail-type']} ${e.detail.status} for tenant ${e.detail.tenantId ?? '(none yet)'}: ${e.detail.reason}`);
      }
    };

    // 1. Register: the buyer subscribes; Marketplace posts its browser to the fulfillment URL.
    const buyer = emulator.subscribe();
    step('marketplace', 'subscribe', `account ${buyer.customerAWSAccountId} subscribed: license ${buyer.licenseArn}`);
    const token = emulator.issueToken(buyer);
    const registration = handler('registration', 'Registration');
    const redirect = await registration(fulfillmentRequest(token));
    const registrationId = new URL(redirect.headers.location).searchParams.get('marketplaceRegistrationId')!;
    step('flow', 'register', `POST /billing/marketplace with x-amzn-marketplace-token: HTTP ${redirect.statusCode} to ${redirect.headers.location}`);
    const replay = await registration(fulfillmentRequest(token));
    step('flow', 'register', `the same token posted again: HTTP ${replay.statusCode} (${/<h1>(.*)<\/h1>/.exec(replay.body)?.[1]}), no record`);
    const expired = await registration(fulfillmentRequest(emulator.issueToken(buyer, -1)));
    step('flow', 'register', `an expired token: HTTP ${expired.statusCode} (${/<h1>(.*)<\/h1>/.exec(expired.body)?.[1]})`);

    // 2. Marketplace confirms the license (EventBridge, us-east-1's default bus).
    const lifecycle = handler('lifecycle', 'Lifecycle');
    const agreementId = 'agmt-demo1234567890';
    const detail = { agreementId, accountId: buyer.customerAWSAccountId, productCode, licenseArn: buyer.licenseArn };
    const confirmed = await lifecycle(marketplaceEvent(MARKETPLACE_DETAIL_TYPES.LICENSE_UPDATED, detail), context('demo-license'));
    step('flow', 'lifecycle', `${MARKETPLACE_DETAIL_TYPES.LICENSE_UPDATED}: ${confirmed.outcome}, emitted ${confirmed.emitted.join(', ')}`);

    // 3. Onboard: the registration page sends the onboarding request with the registration id.
    const createCustomer = handler('create-customer', 'CreateCustomer');
    const onboarding = {
      'version': '0',
      'id': 'demo-onboarding-1',
      'detail-type': 'sbt_aws_onboardingRequest',
      'source': 'sbt.control.plane',
      'account': '123456789012',
      'time': new Date(Date.now()).toISOString(),
      'region': 'us-east-1',
      'resources': [],
      'detail': { tenantId: TENANT, marketplaceRegistrationId: registrationId },
    };
    const linked = await createCustomer(onboarding);
    step('flow', 'onboard', `tenant ${TENANT}: ${linked.outcome} to license ${linked.licenseArn} (subscription ${linked.subscriptionState})`);
    const refused = await createCustomer({ ...onboarding, id: 'demo-onboarding-2', detail: { tenantId: 'no-registration-inc' } });
    step('flow', 'onboard', `tenant no-registration-inc without a registration id: ${refused.outcome} (${refused.reason})`);
    await showEvents();

    // 4. Usage: producers put records on the ingestor's stream; the aggregator counts each once.
    const hour = new Date(Math.floor(Date.now() / 3600_000) * 3600_000).toISOString();
    const records = [
      { id: 'req-0001', tenantId: TENANT, metric: 'apiCalls', value: 1250, timestamp: hour },
      { id: 'req-0002', tenantId: TENANT, metric: 'apiCalls', value: 380, timestamp: hour },
      { id: 'req-0002', tenantId: TENANT, metric: 'apiCalls', value: 380, timestamp: hour },
      { id: 'disk-0001', tenantId: TENANT, metric: 'storageGb', value: '12.3456', timestamp: hour },
    ];
    await ingestor.ingest(records);
    step('flow', 'usage', `${records.length} records through the aggregator (req-0002 sent twice): ${records.map((r) => `${r.metric}=${r.value}`).join(', ')}`);
    const closed = await ingestor.closeWindows();
    step('flow', 'close', `the clock moved past the hour's allowed lateness; the closer closed ${closed} windows`);

    // 5. Metering: the scheduler runs the push; it reads closed windows through the usage read contract.
    const push = handler('put-usage', 'PutUsage');
    const first = await push({ id: 'demo-schedule-1' }, context('demo-push-1'));
    for (const r of emulator.recordsOf(buyer.licenseArn!)) {
      step('marketplace', 'BatchMeterUsage', `${r.dimension} = ${r.quantity} for ${r.customerAWSAccountId} / ${r.licenseArn} at ${new Date(r.timestamp).toISOString()}`);
    }
    step('flow', 'push', `sent ${first.SENT} in ${first.requests} request(s), ${first.ZERO} rounded to 0 (carried within the month)`);
    const second = await push({ id: 'demo-schedule-2' }, context('demo-push-2'));
    step('flow', 'push again', `sent ${second.SENT}: each license, dimension and hour once`);

    // 6. Cancellation: more usage this hour, then the buyer cancels.
    await ingestor.ingest([{ id: 'req-0003', tenantId: TENANT, metric: 'apiCalls', value: 2100, timestamp: new Date(Date.now()).toISOString() }]);
    step('flow', 'usage', 'apiCalls=2100 in the current hour (its window is still open)');
    const ended = await lifecycle(marketplaceEvent(MARKETPLACE_DETAIL_TYPES.AGREEMENT_ENDED, { ...detail, licenseArn: undefined, status: 'CANCELLED' }), context('demo-end'));
    step('flow', 'lifecycle', `${MARKETPLACE_DETAIL_TYPES.AGREEMENT_ENDED} (CANCELLED): ${ended.outcome}, final metering sent ${ended.finalRecordsSent} record(s) `
      + `before Marketplace stops accepting the license's usage; emitted ${ended.emitted.join(', ')}`);
    const all = emulator.recordsOf(buyer.licenseArn!);
    step('marketplace', 'BatchMeterUsage', `${all[all.length - 1].dimension} = ${all[all.length - 1].quantity} at ${new Date(all[all.length - 1].timestamp).toISOString()} (the open hour's running total)`);
    await showEvents();
    const sub = await DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: aws.endpoint })).send(new GetCommand({
      TableName: local.names.registrations, Key: { pk: `SUB#${buyer.licenseArn}` }, ConsistentRead: true,
    }));
    return {
      records: all.map((r) => ({ dimension: r.dimension, hour: new Date(r.timestamp).toISOString(), quantity: r.quantity })),
      secondRunSent: second.SENT,
      events,
      finalState: String(sub.Item?.state),
    };
  } finally {
    ingestor?.restoreClock();
    await emulator.stop();
    await aws.stop();
  }
}

if (require.main === module) {
  // The handlers' own logs and metrics stay out of the printed steps.
  Object.assign(process.env, { POWERTOOLS_LOG_LEVEL: process.env.DEMO_LOG_LEVEL ?? 'ERROR', POWERTOOLS_METRICS_DISABLED: 'true', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' });
  let n = 0;
  runMarketplaceFlow((s) => console.log(`${String(++n).padStart(2)}. [${s.actor}] ${s.name}: ${s.detail}`))
    .then((r) => {
      console.log('');
      console.log(`usage records Marketplace accepted: ${r.records.map((x) => `${x.dimension}@${x.hour.slice(11, 16)}=${x.quantity}`).join(', ')}; sent by the second push: ${r.secondRunSent}`);
      console.log(`subscription changed events: ${r.events.join(', ')}; subscription ${r.finalState}`);
    })
    .catch((error) => {
      console.error(error);
      process.exit(1);
    });
}
