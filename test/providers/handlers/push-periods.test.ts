/**
 * The usage push across an offboarding, a re-onboarding and a billing period
 * end, on the bundled handlers (lifecycle and push) against moto's DynamoDB:
 * which windows are billed, and the reconciliation record of each tenant,
 * metric and billing period. Windows are seeded at fixed times (31 October and
 * 1 November 2026, UTC) as the ingestor's closer writes them.
 *
 * The handlers talk to moto through two proxies: the fault proxy (kills a run
 * at a chosen request) in front of the recording proxy (computes the write
 * request units DynamoDB bills for each request).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { bundledHandler, eventBridgeEvent, FaultProxy, lambdaContext, synthesizedSchemas, Schemas } from './harness';
import { LIFECYCLE_ENV, METRIC_NAMESPACE, PUSH_ENV } from '../../../src/providers/dynamodb-billing/contract';
import { addDecimals } from '../../../src/shared.lambda/decimal';
import { seedClosedWindows, SeedWindow, usageReaderEnvironment } from '../../ingestor/closed-windows';
import { startMoto, Moto } from '../../support/emulators';
import { RecordingProxy, startRecordingProxy } from '../../support/recording-proxy';
import { createTable } from '../support';

type Summary = { pages: number; windowsBilled: number; windowsAlreadyBilled: number; windowsUnpriced: number; windowsAfterClose: number };
type Handler = (event: unknown, context?: unknown) => Promise<Record<string, unknown>>;

const PRICES = [
  { metric: 'apiCalls', unitPrice: '0.0025', currency: 'USD' },
  { metric: 'storageGb', unitPrice: '0.1', currency: 'EUR' },
];

let moto: Moto;
let recorder: RecordingProxy;
let proxy: FaultProxy;
let schemas: Schemas;
let doc: DynamoDBDocumentClient;
let push: (event: unknown, context?: unknown) => Promise<Summary>;
let createCustomer: Handler;
let deleteCustomer: Handler;
let tableSeq = 0;

const at = (iso: string) => new Date(iso);
const onboarding = (tenantId: string, time: string) => eventBridgeEvent('sbt_aws_onboardingRequest', { tenantId }, undefined, at(time));
const offboarding = (tenantId: string, time: string) => eventBridgeEvent('sbt_aws_offboardingRequest', { tenantId }, undefined, at(time));

beforeAll(async () => {
  moto = await startMoto();
  schemas = synthesizedSchemas();
  recorder = await startRecordingProxy(moto.endpoint, { setEnvironment: false });
  proxy = new FaultProxy(recorder.endpoint);
  process.env.AWS_ENDPOINT_URL = await proxy.start();
  doc = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: moto.endpoint }), {
    marshallOptions: { removeUndefinedValues: true },
    unmarshallOptions: { wrapNumbers: true },
  });
  Object.assign(process.env, {
    [PUSH_ENV.UNIT_PRICES]: JSON.stringify(PRICES),
    [PUSH_ENV.INITIAL_LOOKBACK_SECONDS]: String(8 * 3600),
    POWERTOOLS_LOG_LEVEL: 'ERROR',
    POWERTOOLS_METRICS_NAMESPACE: METRIC_NAMESPACE,
    POWERTOOLS_SERVICE_NAME: 'billing-test',
  });
  push = bundledHandler('put-usage');
  createCustomer = bundledHandler('create-customer');
  deleteCustomer = bundledHandler('delete-customer');
});

afterAll(async () => {
  await proxy?.stop();
  await recorder?.stop();
  await moto?.stop();
});

/** A fresh billing table and usage table (seeded with `windows`), both used by the handlers from now on. */
async function freshTables(windows: readonly SeedWindow[]): Promise<{ billing: string; usage: string }> {
  const n = ++tableSeq;
  const billing = `billing-periods-${n}`;
  const usage = `usage-periods-${n}`;
  await createTable(schemas.billing(billing));
  await createTable(schemas.aggregates(usage));
  await seedClosedWindows(new DynamoDBClient({ endpoint: moto.endpoint }), usage, windows);
  Object.assign(process.env, {
    ...usageReaderEnvironment(usage, { allowedLatenessSeconds: 900 }),
    [PUSH_ENV.BILLING_TABLE_NAME]: billing,
    [LIFECYCLE_ENV.BILLING_TABLE_NAME]: billing,
  });
  return { billing, usage };
}

const w = (tenantId: string, metric: string, windowStart: string, sum: string): SeedWindow => ({ tenantId, metric, windowStart, sum, count: 1 });

async function chargeLines(table: string) {
  const items = (await doc.send(new ScanCommand({ TableName: table, ConsistentRead: true }))).Items ?? [];
  return items.filter((i) => String(i.sk).startsWith('CHARGE#'));
}

describe('write request units', () => {
  test('per window, by disposition, measured with the recording proxy', async () => {
    // GIVEN billed, unpriced and after-close windows
    await freshTables([
      w('acme', 'apiCalls', '2026-11-01T00:00:00Z', '1000'),
      w('acme', 'storageGb', '2026-11-01T00:00:00Z', '3.3'),
      w('acme', 'unpricedMetric', '2026-11-01T00:00:00Z', '5'),
      w('gone', 'apiCalls', '2026-11-01T00:00:00Z', '7'),
    ]);
    await createCustomer(onboarding('acme', '2026-10-01T00:00:00Z'));
    await createCustomer(onboarding('gone', '2026-10-01T00:00:00Z'));
    await deleteCustomer(offboarding('gone', '2026-10-20T00:00:00Z'));
    recorder.clear();
    proxy.arm();
    // WHEN
    const summary = await push({}, lambdaContext);
    // THEN
    expect(summary).toMatchObject({ windowsBilled: 2, windowsUnpriced: 1, windowsAfterClose: 1 });
    const byDisposition: Record<string, number[]> = {};
    for (const r of recorder.requests.filter((q) => q.operation === 'TransactWriteItems' && q.status === 200)) {
      const disposition = r.body.TransactItems[0].Put.Item.disposition.S as string;
      (byDisposition[disposition] ??= []).push(r.wru);
    }
    const run = recorder.totals((r) => r.service === 'dynamodb');
    // eslint-disable-next-line no-console
    console.log(`push write units: ${JSON.stringify({ perWindowByDisposition: byDisposition, run: { requests: run.requests, wru: run.wru, rru: run.rru, windows: 4 } })}`);
    expect(byDisposition).toEqual({ BILLED: [4, 4], UNPRICED: [2], NOT_BILLED_AFTER_CLOSE: [2] });
  });
});
