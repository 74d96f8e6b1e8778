/**
 * The metering push, bundled as Lambda runs it, against the Marketplace emulator in front of moto.
 * The emulator's ledger of accepted usage records is what Marketplace would bill: every assertion
 * about "metered once" is made on it.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { closedWindow, hourStart, lambdaContext, MarketplaceWorld, MemoryUsageReader, SeededTenant, startWorld } from './support';
import type { ClosedWindow } from '../../../src/ingestor/shared.lambda/usage-reader';
import { MARKETPLACE_ENV } from '../../../src/providers/marketplace-billing/contract';

let world: MarketplaceWorld;
let doc: DynamoDBDocumentClient;
let seq = 0;
let reader: MemoryUsageReader;

beforeAll(async () => {
  world = await startWorld();
  doc = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: world.moto.endpoint }));
});

afterAll(async () => {
  await world?.stop();
});

/** A fresh metering table (no markers, carries or cursor) and reader for each test. */
beforeEach(async () => {
  world.proxy.arm(undefined);
  world.emulator.clearFaults();
  const table = `mp-metering-t${++seq}`;
  await world.local.createMeteringTable(table);
  for (const k of Object.keys(world.overrides)) delete world.overrides[k];
  world.overrides[MARKETPLACE_ENV.METERING_TABLE_NAME] = table;
  reader = new MemoryUsageReader();
});

const push = () => world.handlers.pushWith(() => reader)({ id: `schedule-${Date.now()}` }, lambdaContext());

async function markers(): Promise<Record<string, any>[]> {
  const table = world.overrides[MARKETPLACE_ENV.METERING_TABLE_NAME];
  const items = (await doc.send(new ScanCommand({ TableName: table, ConsistentRead: true }))).Items ?? [];
  return items.filter((i) => String(i.pk).startsWith('RECORD#'));
}

async function pending(): Promise<Record<string, any>[]> {
  const q = await doc.send(new QueryCommand({
    TableName: world.overrides[MARKETPLACE_ENV.METERING_TABLE_NAME], KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': 'PENDING' }, ConsistentRead: true,
  }));
  return q.Items ?? [];
}

/**
 * Windows of a tenant: `hours` hours back (0: the current hour; at most 4, so that no record nears its
 * 6-hour deadline while a long test runs), both metrics.
 */
function windowsOf(t: SeededTenant, hours: number[], api = '1234', storage = '2.5'): ClosedWindow[] {
  return hours.flatMap((h) => [closedWindow(t.tenantId, 'apiCalls', hourStart(h), api), closedWindow(t.tenantId, 'storageGb', hourStart(h), storage)]);
}

describe('records', () => {
  test('each closed hourly window becomes one usage record with CustomerAWSAccountId and LicenseArn, a dimension per metric', async () => {
    const t = await world.seedTenant();
    reader.windows = windowsOf(t, [3]);
    const result = await push();
    expect(result).toMatchObject({ outcome: 'DONE', SENT: 2, requests: 1 });
    const records = world.emulator.recordsOf(t.subscriber);
    expect(records.map((r) => [r.dimension, r.quantity, r.customerAWSAccountId, r.licenseArn, r.customerIdentifier])).toEqual([
      ['api_calls', 1, t.customer.customerAWSAccountId, t.customer.licenseArn, undefined],
      ['storage_gb_hours', 3, t.customer.customerAWSAccountId, t.customer.licenseArn, undefined],
    ]);
    expect(records.every((r) => r.timestamp === Date.parse(hourStart(3)))).toBe(true);
  });

  test('a registration without a license is metered by CustomerIdentifier, with the product code', async () => {
    const t = await world.seedTenant({ legacy: true });
    reader.windows = [closedWindow(t.tenantId, 'apiCalls', hourStart(2), '5000')];
    expect(await push()).toMatchObject({ SENT: 1 });
    expect(world.emulator.recordsOf(t.customer.customerIdentifier!)).toEqual([
      expect.objectContaining({
        customerIdentifier: t.customer.customerIdentifier, customerAWSAccountId: undefined, licenseArn: undefined, quantity: 5,
      }),
    ]);
  });

  test('whole quantities: the remainders are carried within the month, so the month bills the rounding of its total', async () => {
    const t = await world.seedTenant();
    // 0.4 units an hour (multiplier 0.001): 0, 1, 0, 1, 0 -> 2 = round(2.0)
    reader.windows = [4, 3, 2, 1, 0].map((h) => closedWindow(t.tenantId, 'apiCalls', hourStart(h), '400'));
    const result = await push();
    const sent = world.emulator.recordsOf(t.subscriber);
    const sameMonth = new Date(hourStart(4)).getUTCMonth() === new Date(hourStart(0)).getUTCMonth();
    if (sameMonth) {
      expect(sent.reduce((n, r) => n + r.quantity, 0)).toBe(2);
      expect(result).toMatchObject({ SENT: 2, ZERO: 3 });
    } else {
      expect(result.SENT + result.ZERO).toBe(5);
    }
  });

  test('at most 25 records per request', async () => {
    const tenants = [await world.seedTenant(), await world.seedTenant(), await world.seedTenant()];
    reader.windows = tenants.flatMap((t) => windowsOf(t, [4, 3, 2, 1, 0]));
    const calls = world.emulator.calls.length;
    expect(await push()).toMatchObject({ SENT: 30, requests: 2 });
    expect(world.emulator.calls.slice(calls).filter((c) => c.operation === 'BatchMeterUsage').map((c) => c.records)).toEqual([25, 5]);
  });
});

describe('dispositions', () => {
  test('DuplicateRecord: another quantity already metered for that license, dimension and hour', async () => {
    const t = await world.seedTenant();
    const hour = hourStart(2);
    world.emulator.metered.set(JSON.stringify([t.subscriber, 'api_calls', Date.parse(hour)]), {
      key: 'x', licenseArn: t.subscriber, dimension: 'api_calls', timestamp: Date.parse(hour), quantity: 99, meteringRecordId: 'earlier', at: Date.now(),
    });
    reader.windows = [closedWindow(t.tenantId, 'apiCalls', hour, '1000')];
    expect(await push()).toMatchObject({ DUPLICATE_RECORD: 1, SENT: 0 });
    expect((await markers())[0]).toMatchObject({ status: 'DUPLICATE_RECORD' });
  });

  test('CustomerNotSubscribed: NOT_SUBSCRIBED for a confirmed subscription; the next run while it is not confirmed yet', async () => {
    const confirmed = await world.seedTenant();
    const unconfirmed = await world.seedTenant({ state: 'PENDING' });
    world.emulator.unsubscribe(confirmed.customer);
    world.emulator.unsubscribe(unconfirmed.customer);
    reader.windows = [closedWindow(confirmed.tenantId, 'apiCalls', hourStart(2), '1000'), closedWindow(unconfirmed.tenantId, 'apiCalls', hourStart(2), '1000')];
    expect(await push()).toMatchObject({ NOT_SUBSCRIBED: 1, deferred: 1 });
    // Marketplace activates the agreement: the next run meters the deferred record.
    unconfirmed.customer.active = true;
    expect(await push()).toMatchObject({ SENT: 1 });
    expect(world.emulator.recordsOf(unconfirmed.subscriber)).toHaveLength(1);
    expect(await pending()).toEqual([]);
  });

  test('UnprocessedRecords are sent again within the run', async () => {
    const t = await world.seedTenant();
    reader.windows = windowsOf(t, [2, 1]);
    world.emulator.inject('BatchMeterUsage', { kind: 'unprocessed', count: 3 });
    expect(await push()).toMatchObject({ SENT: 4, unprocessedRetries: 3, requests: 2 });
    expect(world.emulator.recordsOf(t.subscriber)).toHaveLength(4);
  });

  test('records left unprocessed after every retry wait for the next run, then are sent once', async () => {
    const t = await world.seedTenant();
    reader.windows = windowsOf(t, [2]);
    world.emulator.inject('BatchMeterUsage', { kind: 'unprocessed' }, { kind: 'unprocessed' }, { kind: 'unprocessed' });
    expect(await push()).toMatchObject({ SENT: 0, deferred: 2 });
    expect(await pending()).toHaveLength(2);
    expect(await push()).toMatchObject({ SENT: 2 });
    expect(world.emulator.recordsOf(t.subscriber)).toHaveLength(2);
    expect(await pending()).toEqual([]);
  });

  test('past the 6-hour limit: TOO_LATE, never sent; close to it: counted near the deadline (the alarm\'s metric)', async () => {
    const t = await world.seedTenant();
    reader.windows = [closedWindow(t.tenantId, 'apiCalls', hourStart(6), '1000')];
    expect(await push()).toMatchObject({ TOO_LATE: 1, SENT: 0 });
    expect(world.emulator.recordsOf(t.subscriber)).toEqual([]);
    // Marketplace throttles: the 4-hour-old record waits for the next run, less than 2 hours before its deadline.
    const late = await world.seedTenant();
    reader.windows.push(closedWindow(late.tenantId, 'apiCalls', hourStart(4), '1000'));
    // (more throttles than the SDK's attempts at one call)
    world.emulator.inject('BatchMeterUsage', ...Array.from({ length: 8 }, () => ({ kind: 'throttle' as const })));
    expect(await push()).toMatchObject({ SENT: 0, deferred: 1, nearDeadline: 1 });
    expect(await pending()).toHaveLength(1);
    world.emulator.clearFaults();
    expect(await push()).toMatchObject({ SENT: 1, nearDeadline: 0 });
  });

  test('a request-level refusal is isolated: the other records of the request are metered', async () => {
    const good = await world.seedTenant();
    const bad = await world.seedTenant();
    world.emulator.customers.delete(bad.subscriber); // a license Marketplace does not know: InvalidLicenseException
    reader.windows = [...windowsOf(good, [2]), closedWindow(bad.tenantId, 'apiCalls', hourStart(2), '1000')];
    expect(await push()).toMatchObject({ SENT: 2, REJECTED: 1 });
    const rejected = (await markers()).find((m) => m.status === 'REJECTED');
    expect(rejected?.reason).toContain('InvalidLicenseException');
  });

  test('windows without a dimension, without a registration, or after the offboarding are recorded, not sent', async () => {
    const t = await world.seedTenant();
    await doc.send(new UpdateCommand({
      TableName: world.local.names.registrations,
      Key: { pk: `TENANT#${t.tenantId}` },
      UpdateExpression: 'SET #s = :o, offboardedAt = :at',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: { ':o': 'OFFBOARDED', ':at': hourStart(2) },
    }));
    reader.windows = [
      closedWindow(t.tenantId, 'unpricedMetric', hourStart(3), '7'),
      closedWindow('never-registered', 'apiCalls', hourStart(3), '7'),
      closedWindow(t.tenantId, 'apiCalls', hourStart(3), '1000'),
      closedWindow(t.tenantId, 'apiCalls', hourStart(1), '1000'),
    ];
    expect(await push()).toMatchObject({ NO_DIMENSION: 1, NO_REGISTRATION: 1, SENT: 1, AFTER_OFFBOARDING: 1 });
  });
});

describe('zero-usage hours (reportZeroUsageHours)', () => {
  test('hours without usage of a confirmed license are metered as 0 once, never in place of a real record', async () => {
    world.overrides[MARKETPLACE_ENV.REPORT_ZERO_HOURS] = 'true';
    world.overrides[MARKETPLACE_ENV.ZERO_HOUR_DELAY_SECONDS] = '0';
    const t = await world.seedTenant({ onboardedAt: hourStart(4) });
    reader.windows = [closedWindow(t.tenantId, 'apiCalls', hourStart(2), '3000')];
    const first = await push();
    const records = world.emulator.recordsOf(t.subscriber);
    // Hours 4..1 ago (the hours whose windows are closed), both dimensions: 8 records, one of them real.
    expect(records).toHaveLength(8);
    expect(records.filter((r) => r.quantity > 0)).toEqual([expect.objectContaining({ dimension: 'api_calls', quantity: 3, timestamp: Date.parse(hourStart(2)) })]);
    // (every active tenant of the shared registrations table gets its zero hours: this one has 7)
    expect(first.zeroHoursSent).toBeGreaterThanOrEqual(7);
    expect(await push()).toMatchObject({ zeroHoursSent: 0 });
    expect(world.emulator.recordsOf(t.subscriber)).toHaveLength(8);
  }, 300_000); // (zero hours go to every active tenant of the file's shared registrations table)
});

describe('exactly once across crashes and reruns', () => {
  test('a crash at each request of the push, then a rerun: 0 hours metered twice, 0 dropped', async () => {
    // GIVEN 3 tenants with 5 hours of 2 metrics each: 30 records, 2 requests; count the push's requests
    // (reported: the number of crash points)
    const seed = async () => {
      const tenants = [await world.seedTenant(), await world.seedTenant(), await world.seedTenant()];
      const r = new MemoryUsageReader();
      r.windows = tenants.flatMap((t) => windowsOf(t, [4, 3, 2, 1, 0], String(1000 + seq * 7), '1.25'));
      return { tenants, r };
    };
    const fresh = async () => {
      const table = `mp-metering-t${++seq}`;
      await world.local.createMeteringTable(table);
      world.overrides[MARKETPLACE_ENV.METERING_TABLE_NAME] = table;
    };
    const run = (r: MemoryUsageReader) => world.handlers.pushWith(() => r)({ id: `s-${Date.now()}` }, lambdaContext());
    const callsBefore = world.emulator.calls.length; // (earlier tests of this file throttled on purpose)
    const dry = await seed();
    world.proxy.arm(undefined);
    await run(dry.r);
    const requests = world.proxy.requests;
    expect(requests).toBeGreaterThan(30);
    process.stdout.write(`crash matrix: ${requests} requests in a run of the push, each a crash point\n`);

    const failures: string[] = [];
    let crashes = 0;
    for (let crashAt = 1; crashAt <= requests; crashAt++) {
      await fresh();
      const { tenants, r } = await seed();
      // WHEN the process dies at request `crashAt` (that request applied, its answer lost) ...
      world.proxy.arm(crashAt);
      const first = await run(r).then(() => 'completed', () => 'crashed');
      if (first === 'crashed') crashes++;
      world.proxy.arm(undefined);
      // ... and the push runs again (twice: a lease left by the dead run expires first)
      await doc.send(new UpdateCommand({
        TableName: world.overrides[MARKETPLACE_ENV.METERING_TABLE_NAME], Key: { pk: 'STATE', sk: 'LEASE' }, UpdateExpression: 'SET expiresAt = :z', ExpressionAttributeValues: { ':z': 0 },
      }));
      await run(r);
      await run(r);
      // THEN every hour of every license and dimension is metered exactly once, with the expected quantity
      for (const t of tenants) {
        const records = world.emulator.recordsOf(t.subscriber);
        const keys = records.map((x) => `${x.dimension}@${x.timestamp}`);
        if (new Set(keys).size !== keys.length) failures.push(`crash at ${crashAt}: ${t.tenantId} metered an hour twice`);
        if (records.length !== 10) failures.push(`crash at ${crashAt}: ${t.tenantId} has ${records.length} of 10 records`);
        // 1.25 GB-hours an hour rounded UP with the month's carry: 2, 1, 1, 1, 2 = 7 = ceil(6.25) (within one month)
        const storage = records.filter((x) => x.dimension === 'storage_gb_hours').map((x) => x.quantity);
        const oneMonth = hourStart(4).slice(0, 7) === hourStart(0).slice(0, 7);
        if (oneMonth && storage.reduce((a, b) => a + b, 0) !== 7) failures.push(`crash at ${crashAt}: storage quantities ${storage}`);
      }
      const notSent = (await markers()).filter((m) => m.status !== 'SENT');
      if (notSent.length) failures.push(`crash at ${crashAt}: ${notSent.length} markers not SENT (${notSent.map((m) => m.status)})`);
    }
    expect(crashes).toBeGreaterThan(requests / 2);
    expect(failures).toEqual([]);
    expect(world.emulator.calls.slice(callsBefore).filter((c) => c.outcome !== 'ok')).toEqual([]);
  }, 900_000);
});
