/**
 * Harness of the StripeBilling handler tests: the bundled handlers (exactly
 * the code Lambda runs) against moto (DynamoDB, Secrets Manager, EventBridge
 * routed to SQS) and stripe-mock behind the recording, fault-injecting proxy,
 * both behind a shared crash plan. The tables are created from the synthesized
 * template and the environment is the one the construct gives each function
 * (`LocalStripeBilling`, shared with `npx projen demo:stripe`).
 */
import { PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { EventBridgeEvent } from 'aws-lambda';
import { LocalNames, LocalStripeBilling, LocalUsageIngestor, stripeHandlerModule } from '../../../examples/stripe-local';
import { BillingProvider, StripeBilling, StripeMeterRounding, UsageIngestor } from '../../../src';
import type { ClosedWindow, ClosedWindowPage } from '../../../src/ingestor/shared.lambda/usage-reader';
import { AwsFaultProxy } from '../../support/aws-fault-proxy';
import { startMoto, Moto } from '../../support/emulators';
import { CrashPlan, startStripeMock, StripeMock, StripeProxy } from '../../support/stripe-mock';
import { scratchDir } from '../../support/synth';
import { captureOutput } from '../handlers/harness';

/** The bundled handlers' modules (run `npx projen bundle` first). */
export const bundle = stripeHandlerModule;

/** The meters of the test installation. */
export const TEST_METERS = [
  { metric: 'apiCalls', eventName: 'api_calls' },
  { metric: 'storageGb', eventName: 'storage_mb', multiplier: '1000', rounding: StripeMeterRounding.UP },
];

/** Synthesizes StripeBilling as an app would (with a UsageIngestor and a BillingProvider). */
export function synthesizeStripeBilling(extra: Partial<ConstructorParameters<typeof StripeBilling>[2]> = {}) {
  const stack = new Stack(new App({ outdir: scratchDir('stripe') }), 'Stripe', { env: { account: '123456789012', region: 'us-east-1' } });
  const ingestor = new UsageIngestor(stack, 'Ingestor');
  const httpApi = new apigwv2.HttpApi(stack, 'Api');
  const billing = new StripeBilling(stack, 'Stripe', {
    apiKey: secretsmanager.Secret.fromSecretNameV2(stack, 'Key', 'stripe/api-key'),
    ingestor,
    httpApi,
    meters: TEST_METERS,
    prices: ['price_base', 'price_api_calls'],
    ...extra,
  });
  new BillingProvider(stack, 'Billing', { billing, httpApi });
  return { stack, billing, template: Template.fromStack(stack) };
}

let eventCounter = 0;

/** An EventBridge event as a rule's Lambda target receives it. */
export function lifecycleEvent(
  detailType: string, detail: Record<string, unknown>, time = new Date().toISOString(),
): EventBridgeEvent<string, Record<string, unknown>> {
  eventCounter++;
  return {
    'version': '0',
    'id': `00000000-0000-4000-8000-${String(eventCounter).padStart(12, '0')}`,
    'detail-type': detailType,
    'source': 'sbt.control.plane',
    'account': '123456789012',
    time,
    'region': 'us-east-1',
    'resources': [],
    detail,
  };
}

/** A Lambda context with time left. */
export function lambdaContext(id = `req-${++eventCounter}`, remainingMs = 600_000) {
  return { awsRequestId: id, getRemainingTimeInMillis: () => remainingMs };
}

/** A closed window as the usage read contract returns it. */
export function closedWindow(tenantId: string, metric: string, windowStart: string, sum: string, count = 1): ClosedWindow {
  const end = new Date(Date.parse(windowStart) + 3600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const windowId = `${tenantId}_${metric}_${windowStart.replace(/[^0-9]/g, '')}`.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 64);
  return { tenantId, metric, granularity: 'HOUR', windowStart, windowEnd: end, closedAt: end, sum, count, windowId };
}

/**
 * An in-memory usage reader with the contract's semantics (closed windows in
 * close order after an opaque cursor), for the push tests that must control
 * exactly which windows exist.
 */
export class MemoryUsageReader {
  public windows: ClosedWindow[] = [];
  public reads = 0;

  public async readClosedWindows(opts: { cursor?: string; since?: string; limit?: number }): Promise<ClosedWindowPage> {
    this.reads++;
    const sorted = [...this.windows].sort((a, b) => a.closedAt.localeCompare(b.closedAt) || a.windowId.localeCompare(b.windowId));
    const start = opts.cursor ? Number(opts.cursor) : sorted.findIndex((w) => !opts.since || w.closedAt >= opts.since);
    const from = start < 0 ? sorted.length : start;
    const page = sorted.slice(from, from + (opts.limit ?? 100));
    return { windows: page, cursor: String(from + page.length) };
  }

  public async readTenantClosedWindows(tenantId: string, opts: { since?: string; until?: string } = {}): Promise<ClosedWindow[]> {
    return this.windows.filter((w) => w.tenantId === tenantId
      && (!opts.since || w.windowStart >= opts.since) && (!opts.until || w.windowStart < opts.until));
  }
}

/** Everything a handler test needs, started once per test file. */
export interface StripeWorld {
  readonly moto: Moto;
  readonly stripeMock: StripeMock;
  readonly stripe: StripeProxy;
  readonly crash: CrashPlan;
  /** The AWS fault proxy in front of moto, sharing the crash plan with the Stripe proxy. */
  readonly awsProxy: AwsFaultProxy;
  readonly local: LocalStripeBilling;
  /** The UsageIngestor of the stack, on moto: its aggregator and closer bundles, its table. */
  readonly ingestor: LocalUsageIngestor;
  /** Table names and secret ARNs in moto. */
  readonly names: LocalNames;
  readonly template: Template;
  /** Sets the environment the construct gives function `fn`. */
  useFunction(fn: Parameters<LocalStripeBilling['use']>[0], overrides?: Record<string, string>): void;
  stop(): Promise<void>;
}

let worldSeq = 0;

/** Starts moto, stripe-mock, the proxies; creates the tables and secrets; points the SDKs at them. */
export async function startWorld(extraProps: Partial<ConstructorParameters<typeof StripeBilling>[2]> = {}): Promise<StripeWorld> {
  const moto = await startMoto();
  const stripeMock = await startStripeMock();
  const crash = new CrashPlan();
  const stripe = new StripeProxy(stripeMock.endpoint);
  stripe.crash = crash;
  const stripeEndpoint = await stripe.start();
  const awsProxy = new AwsFaultProxy(moto.endpoint, { plan: crash });
  process.env.AWS_ENDPOINT_URL = await awsProxy.start();

  const { stack, template } = synthesizeStripeBilling(extraProps);
  const local = new LocalStripeBilling(stack, stripeEndpoint, `${process.pid}-${++worldSeq}`);
  await local.create();
  const ingestor = new LocalUsageIngestor(stack, `${process.pid}-${worldSeq}`);
  await ingestor.create();
  local.addRef(ingestor.tableLogicalId, ingestor.tableName);
  return {
    moto,
    stripeMock,
    stripe,
    crash,
    awsProxy,
    local,
    ingestor,
    names: local.names,
    template,
    useFunction: (fn, overrides) => local.use(fn, overrides),
    stop: async () => {
      await stripe.stop();
      await awsProxy.stop();
      await stripeMock.stop();
      await moto.stop();
    },
  };
}

/** Replaces the webhook signing secret's value in moto. */
export async function putSigningSecret(arn: string, value: string): Promise<void> {
  await new SecretsManagerClient({}).send(new PutSecretValueCommand({ SecretId: arn, SecretString: value }));
}

/** Captures what a block writes to stdout and stderr (the handlers' logs and EMF metrics). */
export const captured = captureOutput;

/** Sums of EMF metrics in captured output, by metric name. */
export function emfMetrics(output: string): Record<string, number> {
  const sums: Record<string, number> = {};
  for (const line of output.split('\n')) {
    if (!line.includes('"_aws"')) continue;
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(line);
    } catch {
      continue;
    }
    const defs = ((parsed._aws as { CloudWatchMetrics?: { Metrics: { Name: string }[] }[] }).CloudWatchMetrics ?? []).flatMap((c) => c.Metrics);
    for (const { Name } of defs) {
      const v = parsed[Name];
      sums[Name] = (sums[Name] ?? 0) + (Array.isArray(v) ? v.reduce((a: number, b: number) => a + b, 0) : Number(v));
    }
  }
  return sums;
}
