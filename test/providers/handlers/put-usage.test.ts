/**
 * The usage push, bundled as Lambda runs it, against moto's DynamoDB with the
 * real AWS SDK v3, reading closed windows through the usage read contract from
 * a table with the UsageIngestor's synthesized schema (seeded as its closer writes them). A fault-injecting proxy between the handler and
 * the emulator kills the run at every single request in turn.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, PutCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { bundledHandler, captureOutput, FaultProxy, lambdaContext, synthesizedSchemas, Schemas } from './harness';
import { isoSeconds } from '../../../src/ingestor/layout';
import { METRIC_NAMESPACE, PUSH_ENV } from '../../../src/providers/dynamodb-billing/contract';
import { addDecimals } from '../../../src/shared.lambda/decimal';
import { seedClosedWindows, usageReaderEnvironment } from '../../ingestor/closed-windows';
import { startMoto, Moto } from '../../support/emulators';
import { createTable } from '../support';

type Summary = { pages: number; windowsBilled: number; windowsAlreadyBilled: number; windowsUnpriced: number; windowsAfterClose: number };
type PushHandler = (event: unknown, context?: unknown) => Promise<Summary>;

const AGGREGATES = 'aggregates';
const HOUR = 3_600_000;
const LATENESS_S = 600;
const PRICES = [
  { metric: 'apiCalls', unitPrice: '0.0025', currency: 'USD' },
  { metric: 'storageGb', unitPrice: '0.1', currency: 'EUR' },
];

let moto: Moto;
let proxy: FaultProxy;
let schemas: Schemas;
let doc: DynamoDBDocumentClient;
let push: PushHandler;
let tableSeq = 0;

/** A window as the ingestor writes it. */
interface Window {
  readonly tenantId: string;
  readonly metric: string;
  readonly startMs: number;
  readonly sum: string;
  readonly closesAt: number;
}

const hour0 = Math.floor(Date.now() / HOUR) * HOUR;
const closedAtGlobex = new Date(hour0 - 3 * HOUR + 30 * 60_000).toISOString();

function windowsFixture(): Window[] {
  const w: Window[] = [];
  for (const h of [5, 4, 3, 2]) {
    const startMs = hour0 - h * HOUR;
    const closesAt = (startMs + HOUR) / 1000 + LATENESS_S;
    w.push({ tenantId: 'acme', metric: 'apiCalls', startMs, sum: String(1000 * h), closesAt });
    w.push({ tenantId: 'acme', metric: 'storageGb', startMs, sum: '3.3', closesAt });
    w.push({ tenantId: 'globex', metric: 'apiCalls', startMs, sum: '7', closesAt });
  }
  w.push({ tenantId: 'acme', metric: 'unpricedMetric', startMs: hour0 - 2 * HOUR, sum: '5', closesAt: (hour0 - HOUR) / 1000 + LATENESS_S });
  return w;
}

/** Writes windows as the ingestor's closer writes them once they closed (the current hour's window is still open: never seeded). */
async function seedAggregates(windows: Window[]) {
  await seedClosedWindows(new DynamoDBClient({ endpoint: moto.endpoint }), AGGREGATES, windows.map((w) => ({
    tenantId: w.tenantId, metric: w.metric, windowStart: isoSeconds(w.startMs), sum: w.sum, count: 3,
  })));
}

/** A fresh billing table with acme (active, or as `acme` says) and globex (closed during the -3h window). */
async function freshBillingTable(acme: Record<string, unknown> = {}): Promise<string> {
  const name = `billing-push-${++tableSeq}`;
  await createTable(schemas.billing(name));
  await doc.send(new PutCommand({
    TableName: name,
    Item: { pk: 'CUSTOMER#acme', sk: 'CUSTOMER', tenantId: 'acme', customerId: 'cus_acme', status: 'ACTIVE', ...acme },
  }));
  await doc.send(new PutCommand({
    TableName: name,
    Item: { pk: 'CUSTOMER#globex', sk: 'CUSTOMER', tenantId: 'globex', customerId: 'cus_globex', status: 'CLOSED', closedAt: closedAtGlobex },
  }));
  process.env[PUSH_ENV.BILLING_TABLE_NAME] = name;
  return name;
}

/** What the billing table says, checked against the closed windows. */
interface Audit {
  readonly windowsExpected: number;
  readonly windowsWithALine: number;
  readonly windowsDropped: number;
  readonly windowsBilledTwice: number;
  readonly openWindowsBilled: number;
  readonly periodTotalsWrong: number;
  /** Reconciliation records that do not add up to their charge lines (or lines without a record). */
  readonly recordsWrong: number;
}

async function audit(table: string, closed: Window[]): Promise<Audit> {
  const items = (await doc.send(new ScanCommand({ TableName: table, ConsistentRead: true }))).Items ?? [];
  const lines = items.filter((i) => String(i.sk).startsWith('CHARGE#'));
  const key = (tenantId: string, metric: string, windowStart: string) => `${tenantId}|${metric}|${windowStart}`;
  const lineKeys = lines.map((l) => key(l.tenantId, l.metric, l.windowStart));
  const expected = new Set(closed.map((w) => key(w.tenantId, w.metric, isoSeconds(w.startMs))));
  const totals = items.filter((i) => String(i.sk).startsWith('PERIOD#'));
  let billedTwice = 0;
  let totalsWrong = 0;
  for (const t of totals) {
    const billed = lines.filter((l) => l.disposition === 'BILLED' && l.tenantId === t.tenantId && l.period === t.period && l.currency === t.currency);
    billedTwice += Math.max(0, Number(t.lineCount.value) - billed.length);
    const sum = billed.length ? addDecimals(...billed.map((l) => l.amount.value)) : '0';
    if (addDecimals(t.totalAmount.value) !== sum) totalsWrong++;
  }
  billedTwice += lineKeys.length - new Set(lineKeys).size;
  const records = items.filter((i) => String(i.pk).startsWith('RECON#'));
  const recordKeys = new Set(lines.map((l) => `RECON#${l.period}|${l.tenantId}#${l.metric}`));
  let recordsWrong = [...recordKeys].filter((k) => !records.some((r) => `${r.pk}|${r.sk}` === k)).length;
  for (const r of records) {
    const of = (dispositions: string[]) => {
      const ls = lines.filter((l) => `RECON#${l.period}` === r.pk && l.tenantId === r.tenantId && l.metric === r.metric && dispositions.includes(l.disposition));
      return addDecimals('0', ...ls.map((l) => l.quantity.value));
    };
    const billed = of(['BILLED']);
    const sums = { metered: of(['BILLED', 'UNPRICED', 'NOT_BILLED_AFTER_CLOSE']), billed, rejected: of(['UNPRICED', 'NOT_BILLED_AFTER_CLOSE']), carriedOver: '0', countedByProvider: billed };
    const actual = Object.fromEntries(Object.keys(sums).map((k) => [k, addDecimals('0', r[k].value)]));
    if (JSON.stringify(actual) !== JSON.stringify(sums)) recordsWrong++;
  }
  return {
    windowsExpected: expected.size,
    windowsWithALine: lineKeys.filter((k) => expected.has(k)).length,
    windowsDropped: [...expected].filter((k) => !lineKeys.includes(k)).length,
    windowsBilledTwice: billedTwice,
    openWindowsBilled: lineKeys.filter((k) => !expected.has(k)).length,
    periodTotalsWrong: totalsWrong,
    recordsWrong,
  };
}

const exactlyOnce = (windowsExpected: number): Audit => ({
  windowsExpected,
  windowsWithALine: windowsExpected,
  windowsDropped: 0,
  windowsBilledTwice: 0,
  openWindowsBilled: 0,
  periodTotalsWrong: 0,
  recordsWrong: 0,
});

beforeAll(async () => {
  moto = await startMoto();
  schemas = synthesizedSchemas();
  doc = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: moto.endpoint }), {
    marshallOptions: { removeUndefinedValues: true },
    unmarshallOptions: { wrapNumbers: true },
  });
  await createTable(schemas.aggregates(AGGREGATES));
  await seedAggregates(windowsFixture());
  proxy = new FaultProxy(moto.endpoint);
  // The handler talks to the emulator through the proxy.
  process.env.AWS_ENDPOINT_URL = await proxy.start();
  Object.assign(process.env, {
    ...usageReaderEnvironment(AGGREGATES, { allowedLatenessSeconds: LATENESS_S }),
    [PUSH_ENV.UNIT_PRICES]: JSON.stringify(PRICES),
    [PUSH_ENV.INITIAL_LOOKBACK_SECONDS]: String(8 * 3600),
    POWERTOOLS_LOG_LEVEL: 'ERROR',
    POWERTOOLS_METRICS_NAMESPACE: METRIC_NAMESPACE,
    POWERTOOLS_SERVICE_NAME: 'billing-test',
  });
  push = bundledHandler('put-usage');
});

afterAll(async () => {
  await proxy?.stop();
  await moto?.stop();
});

test('a run prices every closed window once, exactly; a rerun bills nothing new', async () => {
  const table = await freshBillingTable();
  proxy.arm();
  const first = await push({}, lambdaContext);
  // 4 hours x (acme apiCalls, acme storageGb, globex apiCalls) + 1 unpriced; globex's -2h window is after its closing.
  expect(first).toMatchObject({ windowsBilled: 11, windowsUnpriced: 1, windowsAfterClose: 1, windowsAlreadyBilled: 0 });
  const second = await push({}, lambdaContext);
  expect(second).toMatchObject({ windowsBilled: 0, windowsUnpriced: 0, windowsAfterClose: 0 });
  expect(await audit(table, windowsFixture())).toEqual(exactlyOnce(13));

  const items = (await doc.send(new ScanCommand({ TableName: table }))).Items ?? [];
  const storage = items.find((i) => i.metric === 'storageGb' && i.sk.startsWith('CHARGE#'));
  // 3.3 x 0.1 is exactly 0.33 (binary floating point would give 0.33000000000000007).
  expect(storage?.amount.value).toBe('0.33');
  expect(storage).toMatchObject({ currency: 'EUR', unitPrice: '0.1', disposition: 'BILLED', customerId: 'cus_acme' });
  const afterClose = items.find((i) => i.tenantId === 'globex' && i.disposition === 'NOT_BILLED_AFTER_CLOSE');
  expect(afterClose?.windowStart).toBe(isoSeconds(hour0 - 2 * HOUR));
  // The cursor is the usage reader's: the rerun read one page only.
  expect(items.find((i) => i.pk === 'PUSH')?.cursor).toEqual(expect.any(String));
  expect(second.pages).toBe(1);
});

test('killed at every request in turn, then rerun: windows billed twice = 0, windows dropped = 0, for every crash point', async () => {
  // Measure a clean run's requests.
  await freshBillingTable();
  proxy.arm();
  await push({}, lambdaContext);
  const requests = proxy.requests;
  const operations = [...proxy.operations];
  expect(operations.filter((o) => o === 'TransactWriteItems')).toHaveLength(13);

  const figures = {
    crashPoints: 0, runsThatThrew: 0, windowsBilledTwice: 0, windowsDropped: 0, periodTotalsWrong: 0, openWindowsBilled: 0, recordsWrong: 0,
  };
  for (let k = 1; k <= requests; k++) {
    const table = await freshBillingTable();
    proxy.arm(k);
    await expect(push({}, lambdaContext)).rejects.toThrow();
    figures.runsThatThrew++;
    proxy.arm();
    await push({}, lambdaContext);
    const a = await audit(table, windowsFixture());
    figures.crashPoints++;
    figures.windowsBilledTwice += a.windowsBilledTwice;
    figures.windowsDropped += a.windowsDropped;
    figures.periodTotalsWrong += a.periodTotalsWrong;
    figures.openWindowsBilled += a.openWindowsBilled;
    figures.recordsWrong += a.recordsWrong;
  }
  // eslint-disable-next-line no-console
  console.log(`push crash matrix: ${JSON.stringify({ requestsPerRun: requests, ...figures })}`);
  expect(figures).toEqual({
    crashPoints: requests,
    runsThatThrew: requests,
    windowsBilledTwice: 0,
    windowsDropped: 0,
    periodTotalsWrong: 0,
    openWindowsBilled: 0,
    recordsWrong: 0,
  });
});

test('a window that closes after a run is billed by the next run, once', async () => {
  const table = await freshBillingTable();
  proxy.arm();
  await push({}, lambdaContext);
  const before = await push({}, lambdaContext);
  expect(before.windowsBilled).toBe(0);
  // The closer closes the next hour's windows after the run.
  const late: Window = { tenantId: 'acme', metric: 'storageGb', startMs: hour0 - HOUR, sum: '1', closesAt: Math.floor(Date.now() / 1000) };
  await seedAggregates([late]);
  try {
    const after = await push({}, lambdaContext);
    expect(after.windowsBilled).toBe(1);
    expect(await audit(table, [...windowsFixture(), late])).toEqual(exactlyOnce(14));
  } finally {
    // The later tests read the shared usage table as the fixture left it: the window goes (its index item).
    await doc.send(new DeleteCommand({ TableName: AGGREGATES, Key: { pk: 'CLOSED', sk: isoSeconds(late.startMs) } }));
  }
});

test('a customer reopened after a closing: windows entirely inside the closed span are NOT_BILLED_AFTER_CLOSE, counted in the metric; the others are billed', async () => {
  // GIVEN acme was closed from -4h to -3h+30min (offboarded, then onboarded again)
  const closedPeriod = { from: new Date(hour0 - 4 * HOUR).toISOString(), until: new Date(hour0 - 3 * HOUR + 30 * 60_000).toISOString() };
  const table = await freshBillingTable({ closedPeriods: [closedPeriod], activeSince: closedPeriod.until });
  proxy.arm();
  // WHEN
  const { result, output } = await captureOutput(() => push({}, lambdaContext));
  // THEN the -4h windows of acme (apiCalls, storageGb) are not billed; -5h, -2h and -3h (which holds the re-onboarding) are
  const items = (await doc.send(new ScanCommand({ TableName: table }))).Items ?? [];
  const acmeLines = items.filter((i) => i.tenantId === 'acme' && String(i.sk).startsWith('CHARGE#') && i.metric !== 'unpricedMetric');
  const notBilled = acmeLines.filter((l) => l.disposition === 'NOT_BILLED_AFTER_CLOSE').map((l) => `${l.metric}@${l.windowStart}`).sort();
  expect(notBilled).toEqual([`apiCalls@${isoSeconds(hour0 - 4 * HOUR)}`, `storageGb@${isoSeconds(hour0 - 4 * HOUR)}`].sort());
  expect(acmeLines.filter((l) => l.disposition === 'BILLED')).toHaveLength(6);
  // globex: closed since -3h+30min, so its -2h window is not billed and the three before it (-3h holds the closing) are
  expect(result).toMatchObject({ windowsBilled: 6 + 3, windowsAfterClose: 2 + 1, windowsUnpriced: 1 });
  // the metric the UsageAfterCloseAlarm watches, in CloudWatch embedded metric format
  const emf = output.split('\n').filter((l) => l.includes('"_aws"')).map((l) => JSON.parse(l));
  expect(emf.find((m) => m.WindowsNotBilledAfterClose !== undefined)).toMatchObject({ WindowsNotBilledAfterClose: 3 });
  expect(emf[0]).toMatchObject({ _aws: { CloudWatchMetrics: [{ Namespace: 'CdkSaasBilling/DynamoDbBilling', Dimensions: [['service']] }] }, service: 'billing-test' });
});

describe('a unit price refused at run time', () => {
  test.each([
    ['negative', '-0.5', /"-0.5" is negative/],
    ['malformed', '1e-3', /not a decimal number: "1e-3"/],
    ['too precise', '0.0000000000001', /more than 12 digits after the decimal point/],
  ])('%s: the run fails before billing anything, with an error log naming the price', async (_name, unitPrice, message) => {
    // GIVEN a price the construct would have refused at synth time, set on the function after deployment
    const table = await freshBillingTable();
    process.env[PUSH_ENV.UNIT_PRICES] = JSON.stringify([...PRICES, { metric: 'unpricedMetric', unitPrice, currency: 'USD' }]);
    try {
      proxy.arm();
      // WHEN
      const { error, output } = await captureOutput(() => push({}, lambdaContext));
      // THEN the invocation fails (the errors alarm counts it), the log says why, and no line was written
      expect(String(error)).toMatch(/UNIT_PRICES refused: the price of "unpricedMetric"/);
      expect(String(error)).toMatch(message);
      expect(output).toMatch(/"level":"ERROR".*Unit prices refused/);
      expect(proxy.requests).toBe(0);
      expect((await audit(table, windowsFixture())).windowsWithALine).toBe(0);
    } finally {
      process.env[PUSH_ENV.UNIT_PRICES] = JSON.stringify(PRICES);
    }
  });
});
