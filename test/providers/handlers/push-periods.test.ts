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
import { DynamoDBDocumentClient, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { bundledHandler, eventBridgeEvent, FaultProxy, lambdaContext, synthesizedSchemas, Schemas } from './harness';
import { METRIC_NAMESPACE, PUSH_ENV } from '../../../src/providers/dynamodb-billing/contract';
import { wasClosedThroughout } from '../../../src/providers/dynamodb-billing/shared.lambda/push';
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

/**
 * A fresh billing table, and a usage table seeded with `windows` (or the given
 * one, reused: the push only reads it), both used by the handlers from now on.
 */
async function freshTables(windows: readonly SeedWindow[], reuse?: { usage: string }): Promise<{ billing: string; usage: string }> {
  const n = ++tableSeq;
  const billing = `billing-periods-${n}`;
  await createTable(schemas.billing(billing));
  let usage = reuse?.usage;
  if (!usage) {
    usage = `usage-periods-${n}`;
    await createTable(schemas.aggregates(usage));
    await seedClosedWindows(new DynamoDBClient({ endpoint: moto.endpoint }), usage, windows);
  }
  Object.assign(process.env, {
    ...usageReaderEnvironment(usage, { allowedLatenessSeconds: 900 }),
    // (the lifecycle functions read the same variable: LIFECYCLE_ENV.BILLING_TABLE_NAME)
    [PUSH_ENV.BILLING_TABLE_NAME]: billing,
  });
  return { billing, usage };
}

const w = (tenantId: string, metric: string, windowStart: string, sum: string): SeedWindow => ({ tenantId, metric, windowStart, sum, count: 1 });

async function scan(table: string) {
  return (await doc.send(new ScanCommand({ TableName: table, ConsistentRead: true }))).Items ?? [];
}

type Items = Awaited<ReturnType<typeof scan>>;

/** `tenant metric windowStart` -> disposition, of every charge line (of a table, or of its items). */
async function dispositions(table: string | Items): Promise<Record<string, string>> {
  const lines = (typeof table === 'string' ? await scan(table) : table).filter((i) => String(i.sk).startsWith('CHARGE#'));
  return Object.fromEntries(lines.map((l) => [`${l.tenantId} ${l.metric} ${l.windowStart}`, l.disposition]));
}

/** `period tenant#metric` -> the record's status and amounts (as exact decimal strings), of every reconciliation record. */
async function records(table: string | Items): Promise<Record<string, Record<string, string>>> {
  const items = (typeof table === 'string' ? await scan(table) : table).filter((i) => String(i.pk).startsWith('RECON#'));
  return Object.fromEntries(items.map((r) => [`${r.period} ${r.sk}`, {
    status: r.status,
    ...Object.fromEntries(['metered', 'billed', 'carriedOver', 'rejected', 'countedByProvider'].map((a) => [a, addDecimals('0', r[a].value)])),
  }]));
}

// ------------------------------------------------------------------ fixture

/**
 * - `acme`: active throughout.
 * - `gone`: offboarded at 31 Oct 22:30, never back.
 * - `returning` (the example): offboarded at 1 Nov 0:20, onboarded again at 2:20, usage at 2:40.
 * - `blip`: offboarded at 1 Nov 3:10 and onboarded again at 3:40, inside one window.
 */
const OCTOBER: SeedWindow[] = [
  w('acme', 'apiCalls', '2026-10-31T22:00:00Z', '100'),
  w('gone', 'apiCalls', '2026-10-31T22:00:00Z', '7'),
  w('acme', 'apiCalls', '2026-10-31T23:00:00Z', '200'),
  w('acme', 'storageGb', '2026-10-31T23:00:00Z', '3.3'),
  w('acme', 'unpricedMetric', '2026-10-31T23:00:00Z', '5'),
  w('gone', 'apiCalls', '2026-10-31T23:00:00Z', '8'),
];
const NOVEMBER: SeedWindow[] = [
  w('acme', 'apiCalls', '2026-11-01T00:00:00Z', '300'),
  w('returning', 'apiCalls', '2026-11-01T00:00:00Z', '10'),
  w('gone', 'apiCalls', '2026-11-01T01:00:00Z', '9'),
  w('returning', 'apiCalls', '2026-11-01T01:00:00Z', '20'),
  w('returning', 'apiCalls', '2026-11-01T02:00:00Z', '30'),
  w('blip', 'apiCalls', '2026-11-01T03:00:00Z', '5'),
  w('returning', 'apiCalls', '2026-11-01T03:00:00Z', '40'),
  w('blip', 'apiCalls', '2026-11-01T04:00:00Z', '6'),
];

/** The lifecycle events of the fixture, through the bundled handlers, in the order they happened. */
async function lifecycle(): Promise<void> {
  for (const tenantId of ['acme', 'gone', 'returning', 'blip']) await createCustomer(onboarding(tenantId, '2026-10-01T00:00:00Z'));
  await deleteCustomer(offboarding('gone', '2026-10-31T22:30:00Z'));
  await deleteCustomer(offboarding('returning', '2026-11-01T00:20:00Z'));
  expect(await createCustomer(onboarding('returning', '2026-11-01T02:20:00Z'))).toMatchObject({ outcome: 'REOPENED' });
  await deleteCustomer(offboarding('blip', '2026-11-01T03:10:00Z'));
  expect(await createCustomer(onboarding('blip', '2026-11-01T03:40:00Z'))).toMatchObject({ outcome: 'REOPENED' });
}

const EXPECTED_DISPOSITIONS = {
  'acme apiCalls 2026-10-31T22:00:00Z': 'BILLED',
  'acme apiCalls 2026-10-31T23:00:00Z': 'BILLED',
  'acme storageGb 2026-10-31T23:00:00Z': 'BILLED',
  'acme unpricedMetric 2026-10-31T23:00:00Z': 'UNPRICED',
  'acme apiCalls 2026-11-01T00:00:00Z': 'BILLED',
  // holds the offboarding (22:30): open before it, billed whole
  'gone apiCalls 2026-10-31T22:00:00Z': 'BILLED',
  'gone apiCalls 2026-10-31T23:00:00Z': 'NOT_BILLED_AFTER_CLOSE',
  'gone apiCalls 2026-11-01T01:00:00Z': 'NOT_BILLED_AFTER_CLOSE',
  // holds the offboarding (0:20)
  'returning apiCalls 2026-11-01T00:00:00Z': 'BILLED',
  // entirely inside the closed span [0:20, 2:20)
  'returning apiCalls 2026-11-01T01:00:00Z': 'NOT_BILLED_AFTER_CLOSE',
  // holds the re-onboarding (2:20): the usage at 2:40 is billed (finding 11)
  'returning apiCalls 2026-11-01T02:00:00Z': 'BILLED',
  'returning apiCalls 2026-11-01T03:00:00Z': 'BILLED',
  // holds both the offboarding (3:10) and the re-onboarding (3:40): one line, billed once
  'blip apiCalls 2026-11-01T03:00:00Z': 'BILLED',
  'blip apiCalls 2026-11-01T04:00:00Z': 'BILLED',
};

const record = (status: string, metered: string, billed: string, rejected: string) =>
  ({ status, metered, billed, carriedOver: '0', rejected, countedByProvider: billed });

const EXPECTED_RECORDS = {
  '2026-10 acme#apiCalls': record('FINAL', '300', '300', '0'),
  '2026-10 acme#storageGb': record('FINAL', '3.3', '3.3', '0'),
  '2026-10 acme#unpricedMetric': record('FINAL', '5', '0', '5'),
  '2026-10 gone#apiCalls': record('FINAL', '15', '7', '8'),
  '2026-11 acme#apiCalls': record('OPEN', '300', '300', '0'),
  '2026-11 gone#apiCalls': record('OPEN', '9', '0', '9'),
  '2026-11 returning#apiCalls': record('OPEN', '100', '80', '20'),
  '2026-11 blip#apiCalls': record('OPEN', '11', '11', '0'),
};

// -------------------------------------------------------------------- tests

describe('re-onboarding (finding 11): a window is billed when it overlaps a time the customer was open', () => {
  test('offboarded at 0:20, onboarded again at 2:20, usage at 2:40: the 2:00 window is billed; only the window entirely inside the closed span is not', async () => {
    // GIVEN the fixture's lifecycle, through the bundled handlers
    const { billing } = await freshTables([...OCTOBER, ...NOVEMBER]);
    await lifecycle();
    proxy.arm();
    // WHEN the push runs once every window has closed
    const summary = await push({}, lambdaContext);
    // THEN
    expect(await dispositions(billing)).toEqual(EXPECTED_DISPOSITIONS);
    expect(summary).toMatchObject({ windowsBilled: 10, windowsUnpriced: 1, windowsAfterClose: 3, windowsAlreadyBilled: 0 });
    // no window billed twice: one line per window, and each USD period total counts its lines once (0.0025 per apiCall)
    const totals = (await scan(billing)).filter((i) => String(i.sk).startsWith('PERIOD#') && i.currency === 'USD');
    const total = (tenantId: string, period: string) => totals.find((t) => t.tenantId === tenantId && t.period === period);
    expect(total('blip', '2026-11')).toMatchObject({ lineCount: { value: '2' } });
    expect(addDecimals('0', total('blip', '2026-11')!.totalAmount.value)).toBe('0.0275');
    expect(addDecimals('0', total('returning', '2026-11')!.totalAmount.value)).toBe('0.2'); // (10 + 30 + 40) x 0.0025
    // a rerun changes nothing
    expect(await push({}, lambdaContext)).toMatchObject({ windowsBilled: 0, windowsAfterClose: 0 });
  });

  test.each([
    ['inside one closed span', true, '01:00', [{ from: '2026-11-01T00:20:00Z', until: '2026-11-01T02:20:00Z' }]],
    ['holding the offboarding', false, '00:00', [{ from: '2026-11-01T00:20:00Z', until: '2026-11-01T02:20:00Z' }]],
    ['holding the re-onboarding', false, '02:00', [{ from: '2026-11-01T00:20:00Z', until: '2026-11-01T02:20:00Z' }]],
    ['holding both', false, '03:00', [{ from: '2026-11-01T03:10:00Z', until: '2026-11-01T03:40:00Z' }]],
    ['covered by two closed spans that touch (reopened and closed again at the same instant)', true, '01:00',
      [{ from: '2026-11-01T00:20:00Z', until: '2026-11-01T01:30:00Z' }, { from: '2026-11-01T01:30:00Z', until: '2026-11-01T02:20:00Z' }]],
  ])('a window %s: closed throughout = %s', (_name, closed, hour, closedPeriods) => {
    const start = `2026-11-01T${hour}:00Z`;
    const end = new Date(Date.parse(start) + 3_600_000).toISOString();
    expect(wasClosedThroughout({ status: 'ACTIVE', closedPeriods }, start, end)).toBe(closed);
  });

  test('a customer closed now: windows from its closing on are not billed, the one holding the closing is', () => {
    const customer = { status: 'CLOSED', closedAt: '2026-11-01T00:20:00.000Z' };
    expect(wasClosedThroughout(customer, '2026-11-01T00:00:00Z', '2026-11-01T01:00:00Z')).toBe(false);
    expect(wasClosedThroughout(customer, '2026-11-01T01:00:00Z', '2026-11-01T02:00:00Z')).toBe(true);
    expect(wasClosedThroughout(customer, '2026-11-02T00:00:00Z', '2026-11-03T00:00:00Z')).toBe(true);
  });
});

describe('reconciliation records', () => {
  test('after a run with billed, unpriced and after-close windows, each record adds up: metered = billed + carriedOver + rejected', async () => {
    // GIVEN
    const { billing } = await freshTables([...OCTOBER, ...NOVEMBER]);
    await lifecycle();
    proxy.arm();
    // WHEN
    const summary = await push({}, lambdaContext);
    // THEN October's records are FINAL (the push handled November windows), November's OPEN
    expect(await records(billing)).toEqual(EXPECTED_RECORDS);
    expect(summary).toMatchObject({ recordsFinalized: 4 });
    for (const r of Object.values(await records(billing))) expect(addDecimals(r.billed, r.carriedOver, r.rejected)).toBe(r.metered);

    // and an operator reads a tenant's records of a period with one Query
    const acme = await doc.send(new QueryCommand({
      TableName: billing,
      KeyConditionExpression: 'pk = :period AND begins_with(sk, :tenant)',
      ExpressionAttributeValues: { ':period': 'RECON#2026-10', ':tenant': 'acme#' },
    }));
    expect(acme.Items?.map((i) => i.metric)).toEqual(['apiCalls', 'storageGb', 'unpricedMetric']);
    expect(acme.Items?.[0]).toMatchObject({
      tenantId: 'acme', metric: 'apiCalls', periodStart: '2026-10-01T00:00:00Z', periodEnd: '2026-11-01T00:00:00Z', status: 'FINAL',
    });
    expect(acme.Items?.[0].updatedAt).toEqual(expect.any(String));
  });

  test('a period stays OPEN until the push has handled a window that starts at or after its end', async () => {
    // GIVEN only October's windows have closed
    const { billing, usage } = await freshTables(OCTOBER);
    await lifecycle();
    proxy.arm();
    // WHEN the push runs
    expect(await push({}, lambdaContext)).toMatchObject({ recordsFinalized: 0 });
    // THEN October is still OPEN (a window of 31 October could still close)
    expect(Object.values(await records(billing)).map((r) => r.status)).toEqual(['OPEN', 'OPEN', 'OPEN', 'OPEN']);
    // WHEN November's first windows close and the push runs again
    await seedClosedWindows(new DynamoDBClient({ endpoint: moto.endpoint }), usage, NOVEMBER);
    expect(await push({}, lambdaContext)).toMatchObject({ recordsFinalized: 4 });
    // THEN
    expect(await records(billing)).toEqual(EXPECTED_RECORDS);
    // and a later run finalizes nothing again
    expect(await push({}, lambdaContext)).toMatchObject({ recordsFinalized: 0 });
  });

  test('killed at every write of the push in turn, then rerun: every record exact, every window counted once', async () => {
    // Measure a clean run's requests. (put-usage.test.ts kills a run at every request, reads included.)
    const { usage } = await freshTables([...OCTOBER, ...NOVEMBER]);
    await lifecycle();
    proxy.arm();
    await push({}, lambdaContext);
    const writes = proxy.operations.flatMap((o, i) => (['TransactWriteItems', 'UpdateItem', 'PutItem'].includes(o) ? [i + 1] : []));
    // 14 windows, 4 records set FINAL, 1 cursor
    expect(writes).toHaveLength(14 + 4 + 1);

    const figures = { crashPoints: 0, runsThatThrew: 0, recordsWrong: 0, dispositionsWrong: 0 };
    for (const k of writes) {
      const { billing } = await freshTables([...OCTOBER, ...NOVEMBER], { usage });
      await lifecycle();
      proxy.arm(k);
      await expect(push({}, lambdaContext)).rejects.toThrow();
      figures.runsThatThrew++;
      proxy.arm();
      await push({}, lambdaContext);
      figures.crashPoints++;
      const items = await scan(billing);
      if (!equal(await records(items), EXPECTED_RECORDS)) figures.recordsWrong++;
      if (!equal(await dispositions(items), EXPECTED_DISPOSITIONS)) figures.dispositionsWrong++;
    }
    // eslint-disable-next-line no-console
    console.log(`reconciliation crash matrix: ${JSON.stringify({ writesPerRun: writes.length, ...figures })}`);
    expect(figures).toEqual({ crashPoints: writes.length, runsThatThrew: writes.length, recordsWrong: 0, dispositionsWrong: 0 });
  });
});

function equal(a: unknown, b: unknown): boolean {
  try {
    expect(a).toEqual(b);
    return true;
  } catch {
    return false;
  }
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
    // the line and the record, 2 WRU each in a transaction; a billed window also adds to its period total
    expect(byDisposition).toEqual({ BILLED: [6, 6], UNPRICED: [4], NOT_BILLED_AFTER_CLOSE: [4] });
  });
});
