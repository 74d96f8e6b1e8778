/**
 * Harness of the MarketplaceBilling handler tests: the bundled handlers (exactly the code Lambda
 * runs) against moto behind the Marketplace emulator, behind the one AWS fault proxy (crashes,
 * one request at a time). The tables are created from the synthesized template and the
 * environment is the one the construct gives each function.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { BusCapture, BusEvent } from '../../../examples/local-flow/bus';
import { LocalUsageIngestor } from '../../../examples/stripe-local';
import { BillingProvider, MarketplaceBilling, MarketplaceRounding, UsageIngestor } from '../../../src';
import type { ClosedWindow, ClosedWindowPage, OpenWindowTotal } from '../../../src/ingestor/shared.lambda/usage-reader';
import { AwsFaultProxy } from '../../support/aws-fault-proxy';
import { startMoto, Moto } from '../../support/emulators';
import { EmulatedCustomer, LocalMarketplaceBilling, marketplaceHandlerModule, MarketplaceEmulator, useMarketplaceSdk } from '../../support/marketplace-emulator';
import { scratchDir } from '../../support/synth';

export const PRODUCT_CODE = 'prod-test7example';
export const REGISTRATION_PAGE = 'https://app.example.com/marketplace/register';
export const DIMENSIONS = [
  { metric: 'apiCalls', dimension: 'api_calls', multiplier: '0.001' },
  { metric: 'storageGb', dimension: 'storage_gb_hours', rounding: MarketplaceRounding.UP },
];

/** Synthesizes MarketplaceBilling as an app would (with a UsageIngestor and a BillingProvider). */
export function synthesizeMarketplace(extra: Partial<ConstructorParameters<typeof MarketplaceBilling>[2]> = {}) {
  const stack = new Stack(new App({ outdir: scratchDir('marketplace') }), 'Marketplace', { env: { account: '123456789012', region: 'us-east-1' } });
  const ingestor = new UsageIngestor(stack, 'Ingestor');
  const httpApi = new apigwv2.HttpApi(stack, 'Api');
  const billing = new MarketplaceBilling(stack, 'Marketplace', {
    productCode: PRODUCT_CODE, registrationPageUrl: REGISTRATION_PAGE, ingestor, dimensions: DIMENSIONS, ...extra,
  });
  new BillingProvider(stack, 'Billing', { billing, httpApi });
  return { stack, billing, template: Template.fromStack(stack) };
}

/**
 * An in-memory usage reader with the contract's semantics (closed windows in close order after an
 * opaque cursor; one tenant's windows; open running totals), for the tests that must control
 * exactly which windows exist.
 */
export class MemoryUsageReader {
  public windows: ClosedWindow[] = [];
  public open: OpenWindowTotal[] = [];

  public async readClosedWindows(opts: { cursor?: string; since?: string; limit?: number }): Promise<ClosedWindowPage> {
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

  public async readOpenTotals(tenantId: string): Promise<OpenWindowTotal[]> {
    return this.open.filter((t) => t.tenantId === tenantId);
  }
}

const isoSeconds = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The start of the hour `h` hours before the current one (process clock). */
export function hourStart(hoursAgo: number): string {
  return isoSeconds(Math.floor(Date.now() / 3600_000) * 3600_000 - hoursAgo * 3600_000);
}

let windowSeq = 0;

/** A closed hourly window as the usage read contract returns it. */
export function closedWindow(tenantId: string, metric: string, windowStart: string, sum: string): ClosedWindow {
  const end = isoSeconds(Date.parse(windowStart) + 3600_000);
  return {
    tenantId,
    metric,
    granularity: 'HOUR',
    windowStart,
    windowEnd: end,
    closedAt: isoSeconds(Date.parse(end) + 20 * 60_000 + ++windowSeq),
    sum,
    count: 1,
    windowId: `${tenantId}_${metric}_${windowStart.replace(/[^0-9]/g, '')}`.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 64),
  };
}

export type Handler<E = unknown, R = any> = (event: E, context?: unknown) => Promise<R>;

/** A Lambda context with time left. */
export function lambdaContext(id = `req-${Date.now()}-${Math.random()}`) {
  return { awsRequestId: id, getRemainingTimeInMillis: () => 600_000 };
}

let controlSeq = 0;

/** A control plane event as EventBridge delivers it. */
export function controlPlaneEvent(detailType: string, detail: Record<string, unknown>, time = new Date(Date.now())) {
  return {
    'version': '0',
    'id': `cp-${++controlSeq}-${Date.now()}`,
    'detail-type': detailType,
    'source': 'sbt.control.plane',
    'account': '123456789012',
    'time': time.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    'region': 'us-east-1',
    'resources': [],
    detail,
  };
}

/** Everything a handler test needs, started once per test file. */
export interface MarketplaceWorld {
  readonly moto: Moto;
  readonly emulator: MarketplaceEmulator;
  readonly proxy: AwsFaultProxy;
  readonly local: LocalMarketplaceBilling;
  readonly ingestor: LocalUsageIngestor;
  readonly bus: BusCapture;
  readonly handlers: {
    registration: Handler;
    createCustomer: Handler;
    deleteCustomer: Handler;
    lifecycle: Handler;
    lifecycleWith: (reader: () => MemoryUsageReader) => Handler;
    pushWith: (reader: () => MemoryUsageReader) => Handler;
    entitlements: Handler;
  };
  /** Environment set on top of the construct's for every handler (for example another metering table). */
  overrides: Record<string, string>;
  drainEvents(): Promise<BusEvent[]>;
  /** A tenant linked to a new buyer's license (written directly, as registration and onboarding would). */
  seedTenant(opts?: { state?: string; legacy?: boolean; onboardedAt?: string }): Promise<SeededTenant>;
  stop(): Promise<void>;
}

/** A tenant `seedTenant` made. */
export interface SeededTenant {
  readonly tenantId: string;
  readonly registrationId: string;
  readonly customer: EmulatedCustomer;
  /** The license ARN, or `customer:<identifier>`. */
  readonly subscriber: string;
}

let worldSeq = 0;

/** Starts moto, the Marketplace emulator, the fault proxy; creates the tables; points the SDKs at them. */
export async function startWorld(
  extra: Partial<ConstructorParameters<typeof MarketplaceBilling>[2]> = {}, opts: { serialize?: boolean } = {},
): Promise<MarketplaceWorld> {
  useMarketplaceSdk();
  // Before any handler module loads (its logger reads the level once): no run summaries in the test output.
  process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
  const moto = await startMoto();
  const emulator = new MarketplaceEmulator(moto.endpoint, PRODUCT_CODE, { dimensions: DIMENSIONS.map((d) => d.dimension) });
  const proxy = new AwsFaultProxy(await emulator.start(), { serialize: opts.serialize ?? true });
  process.env.AWS_ENDPOINT_URL = await proxy.start();
  const { stack } = synthesizeMarketplace(extra);
  const suffix = `${process.pid}-${++worldSeq}`;
  const local = new LocalMarketplaceBilling(stack, suffix);
  await local.create();
  const ingestor = new LocalUsageIngestor(stack, suffix);
  await ingestor.create();
  local.addRef(ingestor.tableLogicalId, ingestor.tableName);
  const bus = await BusCapture.start(`mp-events-${suffix}`, { 'detail-type': ['cdk_saas_billing_subscriptionChanged'] }, moto.endpoint);
  const mod = (name: Parameters<typeof marketplaceHandlerModule>[0]) => marketplaceHandlerModule<Record<string, any>>(name);
  const overrides: Record<string, string> = {};
  const withEnv = (fn: Parameters<LocalMarketplaceBilling['use']>[0], h: Handler): Handler => async (event, context) => {
    local.use(fn, world.overrides);
    return h(event, context);
  };
  const doc = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: moto.endpoint }));
  let tenantSeq = 0;
  const world: MarketplaceWorld = {
    moto,
    emulator,
    proxy,
    local,
    ingestor,
    bus,
    overrides,
    seedTenant: async (seed = {}) => {
      const customer = emulator.subscribe({ legacy: seed.legacy });
      const subscriber = customer.licenseArn ?? `customer:${customer.customerIdentifier}`;
      const tenantId = `tenant-${process.pid}-${++tenantSeq}`;
      const registrationId = `reg${tenantSeq}x${Date.now()}`;
      const identity = {
        ...(customer.licenseArn ? { licenseArn: customer.licenseArn } : {}),
        customerAWSAccountId: customer.customerAWSAccountId,
        ...(customer.customerIdentifier ? { customerIdentifier: customer.customerIdentifier } : {}),
      };
      const table = local.names.registrations;
      const onboardedAt = seed.onboardedAt ?? hourStart(12);
      await doc.send(new PutCommand({ TableName: table, Item: { pk: `REG#${registrationId}`, registrationId, subscriber, productCode: PRODUCT_CODE, tenantId, ...identity } }));
      await doc.send(new PutCommand({ TableName: table, Item: { pk: `SUB#${subscriber}`, subscriber, registrationId, tenantId, state: seed.state ?? 'ACTIVE', stateAt: hourStart(12) } }));
      await doc.send(new PutCommand({ TableName: table, Item: { pk: `TENANT#${tenantId}`, tenantId, registrationId, subscriber, status: 'ACTIVE', onboardedAt, ...identity } }));
      return { tenantId, registrationId, customer, subscriber };
    },
    handlers: {
      registration: withEnv('Registration', mod('registration').handler),
      createCustomer: withEnv('CreateCustomer', mod('create-customer').handler),
      deleteCustomer: withEnv('DeleteCustomer', mod('delete-customer').handler),
      lifecycle: withEnv('Lifecycle', mod('lifecycle').handler),
      lifecycleWith: (reader) => withEnv('Lifecycle', mod('lifecycle').lifecycleHandler(reader)),
      pushWith: (reader) => withEnv('PutUsage', mod('put-usage').pushHandler(reader)),
      entitlements: withEnv('Entitlements', mod('entitlements').handler),
    },
    drainEvents: () => bus.drain(0),
    stop: async () => {
      ingestor.restoreClock();
      await proxy.stop();
      await emulator.stop();
      await moto.stop();
    },
  };
  return world;
}
