/**
 * The aggregator and the closer, run for real: the bundled code Lambda runs,
 * the real AWS SDK, moto behind the recording proxy (which bills every
 * DynamoDB request as DynamoDB does). The totals are read back through the
 * usage read contract after the closer ran, and each test states its figures:
 * count drift (|counted - truth| over every window), sums wrong, records lost.
 */
import { Duration } from 'aws-cdk-lib';
import type { KinesisStreamRecord } from 'aws-lambda';
import {
  closedWindows, CLOSING_MARGIN_SECONDS, createUsageTable, DAY, driftOf, Emulator, HOUR, kinesisEvent, kinesisRecord, lambdaContext, readTable,
  scanAll, startEmulator, TestClock, toRecords, truthOf, Usage, usageJson,
} from './support';

/** The start of an hour, fixed so that every run sees the same windows. */
const T0 = Date.parse('2026-11-20T10:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

let emu: Emulator;
let clock: TestClock;
let table: string;

beforeAll(async () => {
  emu = await startEmulator();
  clock = new TestClock(T0);
});

afterAll(async () => {
  clock?.restore();
  await emu?.stop();
});

beforeEach(async () => {
  clock.set(T0 + 50 * 60_000);
  table = await createUsageTable(emu.client);
  emu.proxy.setHook(undefined);
  emu.proxy.clear();
});

/** `n` distinct usage records of a few tenants and metrics in the hour of T0. */
function usage(n: number, prefix = 'r', base = T0): Usage[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `${prefix}-${i}`,
    tenantId: `tenant-${i % 4}`,
    metric: i % 2 === 0 ? 'api_calls' : 'storage_gb',
    value: (i % 7) + 1,
    timestamp: new Date(base + (i % 50) * 1000).toISOString(),
  }));
}

async function ingest(records: readonly KinesisStreamRecord[]) {
  return emu.aggregate(kinesisEvent(records), lambdaContext());
}

/** Moves the clock past the close of every window up to `until` (plus lateness and margin) and runs the closer. */
async function closeUntil(until = T0 + HOUR, latenessMs = HOUR) {
  const saved = clock.now;
  clock.set(until + latenessMs + CLOSING_MARGIN_SECONDS * 1000 + 1000);
  try {
    return await emu.close({}, lambdaContext());
  } finally {
    clock.set(saved);
  }
}

async function figures(truthRecords: readonly Usage[], windowMs = HOUR) {
  const windows = await closedWindows();
  return { ...driftOf(windows, truthOf(truthRecords, windowMs)), windows };
}

/** Write request units per record of the ingest requests recorded so far. */
function wruPerRecord(records: number) {
  const t = emu.proxy.totals();
  return t.wru / records;
}

describe('exactly once', () => {
  test('duplicates within a batch are written once and counted once (drift 0, lost 0), at 1 WRU per distinct record', async () => {
    // GIVEN 50 records, each sent twice in the same batch
    const records = usage(50);

    // WHEN
    const res = await ingest(toRecords([...records, ...records]));

    // THEN the batch succeeds with one ledger item per record, each written once
    expect(res.batchItemFailures).toEqual([]);
    const { ledger } = await readTable(emu.client, table);
    expect(ledger).toHaveLength(50);
    // (and the window's marker, written once per window by an execution environment)
    expect(emu.proxy.totals().byOperation.BatchWriteItem).toEqual({ requests: 3, wru: 51, rru: 0 });
    await closeUntil();
    const f = await figures(records);
    expect({ drift: f.countDrift, sumsWrong: f.sumsWrong, lost: f.lost }).toEqual({ drift: 0, sumsWrong: 0, lost: 0 });
    expect(f.windows.reduce((n, w) => n + w.count, 0)).toBe(50);
  });

  test('duplicates across batches (producer resend) are counted once (drift 0, lost 0)', async () => {
    // GIVEN a batch, then a later batch resending half of it plus new records
    const first = usage(40, 'a');
    const second = [...first.slice(0, 20), ...usage(30, 'b')];

    // WHEN
    await ingest(toRecords(first));
    const res = await ingest(toRecords(second));

    // THEN
    expect(res.batchItemFailures).toEqual([]);
    await closeUntil();
    const f = await figures([...first, ...second]);
    expect({ drift: f.countDrift, sumsWrong: f.sumsWrong, lost: f.lost }).toEqual({ drift: 0, sumsWrong: 0, lost: 0 });
    expect(f.windows.reduce((n, w) => n + w.count, 0)).toBe(70);
  });

  test('the same batch delivered again (function retry) leaves the ledger as it was (drift 0)', async () => {
    // GIVEN
    const records = toRecords(usage(60));
    await ingest(records);
    const before = await readTable(emu.client, table);

    // WHEN the event source mapping retries the identical batch
    const res = await ingest(records);

    // THEN
    expect(res.batchItemFailures).toEqual([]);
    const after = await readTable(emu.client, table);
    expect(after.ledger).toEqual(before.ledger);
    await closeUntil();
    expect((await figures(usage(60))).countDrift).toBe(0);
  });

  test('a crash mid-batch (one write committed with its answer lost, one never sent), then the replay, counts every record once (drift 0, lost 0)', async () => {
    // GIVEN 120 records (5 write requests); the 2nd request is committed but its answer lost, the 4th never reaches DynamoDB, every attempt
    const records = Array.from({ length: 120 }, (_, i) => ({
      id: `crash-${i}`, tenantId: `tenant-${i % 6}`, metric: i % 12 < 6 ? 'api_calls' : 'storage_gb', value: `${i}.25`, timestamp: T0 + i * 10,
    }));
    const sent = toRecords(records);
    const idOf = (body: any) => String(Object.values(body.RequestItems)[0] && (Object.values(body.RequestItems)[0] as any[])[0].PutRequest.Item.sk.S);
    const firstKeys: string[] = [];
    emu.proxy.setHook((r) => {
      if (r.operation !== 'BatchWriteItem') return undefined;
      const key = idOf(r.body);
      if (!firstKeys.includes(key)) firstKeys.push(key);
      const n = firstKeys.indexOf(key) + 1;
      if (n === 2) return { kind: 'cutAfterForward' };
      if (n === 4) return { kind: 'cutBeforeForward' };
      return undefined;
    });

    // WHEN the first attempt fails part-way
    const first = await ingest(sent);
    emu.proxy.setHook(undefined);

    // THEN the records of the failed requests are reported, and the batch is replayed from the first of them
    expect(first.batchItemFailures.length).toBe(50);
    const lowest = first.batchItemFailures.map((f) => BigInt(f.itemIdentifier)).reduce((a, b) => (a < b ? a : b));
    const replay = await ingest(sent.filter((r) => BigInt(r.kinesis.sequenceNumber) >= lowest));
    expect(replay.batchItemFailures).toEqual([]);
    await closeUntil();
    const f = await figures(records);
    expect({ drift: f.countDrift, sumsWrong: f.sumsWrong, lost: f.lost }).toEqual({ drift: 0, sumsWrong: 0, lost: 0 });
  });

  test('concurrent duplicates: two shards carrying the same records, processed at the same moment three times over (drift 0, lost 0)', async () => {
    // GIVEN the same 30 records on two shards (a producer that resent to another partition key)
    const records = usage(30, 'c');
    const shardA = records.map((u) => kinesisRecord({ data: usageJson(u), shardId: 'shardId-000000000001' }));
    const shardB = records.map((u) => kinesisRecord({ data: usageJson(u), partitionKey: `other-${u.id}`, shardId: 'shardId-000000000002' }));

    // WHEN both shards' batches are processed at the same moment, three times over
    const results = await Promise.all([ingest(shardA), ingest(shardB), ingest(shardA), ingest(shardB), ingest(shardB), ingest(shardA)]);

    // THEN
    for (const r of results) expect(r.batchItemFailures).toEqual([]);
    await closeUntil();
    const f = await figures(records);
    expect({ drift: f.countDrift, sumsWrong: f.sumsWrong, lost: f.lost }).toEqual({ drift: 0, sumsWrong: 0, lost: 0 });
    expect(f.windows.reduce((n, w) => n + w.count, 0)).toBe(30);
  });

  test('items DynamoDB leaves unprocessed (throttling) are written again (drift 0, lost 0)', async () => {
    // GIVEN every first attempt of a write request is answered "unprocessed"
    const seen = new Set<string>();
    emu.proxy.setHook((r) => {
      if (r.operation !== 'BatchWriteItem') return undefined;
      const key = JSON.stringify(r.body.RequestItems);
      if (seen.has(key)) return undefined;
      seen.add(key);
      return { kind: 'unprocessed' };
    });
    const records = usage(60, 't');

    // WHEN
    const res = await ingest(toRecords(records));

    // THEN
    expect(res.batchItemFailures).toEqual([]);
    await closeUntil();
    const f = await figures(records);
    expect({ drift: f.countDrift, lost: f.lost }).toEqual({ drift: 0, lost: 0 });
  });

  test('a resend with a different value before close replaces the first (the last write counts once)', async () => {
    // GIVEN a record, then its resend with a corrected value in the same window
    const r: Usage = { id: 'fix-1', tenantId: 't', metric: 'm', value: 5, timestamp: T0 + 1000 };
    await ingest(toRecords([r]));

    // WHEN
    await ingest(toRecords([{ ...r, value: 7, timestamp: T0 + 2000 }]));

    // THEN
    await closeUntil();
    expect((await closedWindows()).map((w) => [w.sum, w.count])).toEqual([['7', 1]]);
  });
});

describe('exact numbers', () => {
  test('values are summed from their text, digit for digit: no binary float on the way (sums exact)', async () => {
    // GIVEN values that binary floats change (issue 9: 123456789012345.12, 1000000000000000, 12345678.12345679)
    const records: Usage[] = [
      { id: 'p1', tenantId: 't', metric: 'a', value: '123456789012345.123456789', timestamp: T0 },
      { id: 'p2', tenantId: 't', metric: 'a', value: '123456789012345.123456789', timestamp: T0 },
      { id: 'p3', tenantId: 't', metric: 'b', value: '999999999999999.999999999', timestamp: T0 },
      { id: 'p4', tenantId: 't', metric: 'c', value: '12345678.123456789', timestamp: T0 },
      ...Array.from({ length: 10 }, (_, i) => ({ id: `d${i}`, tenantId: 't', metric: 'd', value: '0.1', timestamp: T0 })),
      { id: 'd-x', tenantId: 't', metric: 'd', value: '2e-1', timestamp: T0 },
    ];

    // WHEN
    await ingest(toRecords(records));
    await closeUntil();

    // THEN
    const sums = Object.fromEntries((await closedWindows()).map((w) => [w.metric, w.sum]));
    expect(sums).toEqual({ a: '246913578024690.246913578', b: '999999999999999.999999999', c: '12345678.123456789', d: '1.2' });
  });

  test('a value beyond the documented digits is quarantined, not rounded (40 decimals, 16 integer digits, a negative)', async () => {
    // GIVEN
    const bad = ['0.1000000000000000000000000000000000000001', '1234567890123456', '-1', '1e400', '"3"'];
    const records = bad.map((v, i) => kinesisRecord({ data: `{"id":"v${i}","tenantId":"t","metric":"m","value":${v},"timestamp":${T0}}` }));

    // WHEN
    const res = await ingest(records);

    // THEN
    expect(res.batchItemFailures).toEqual([]);
    const { quarantine, ledger } = await readTable(emu.client, table);
    expect(ledger).toHaveLength(0);
    expect(quarantine.map((q) => q.reason.S)).toEqual(bad.map(() => 'INVALID_FIELD'));
    expect(quarantine.map((q) => q.detail.S).join('\n')).toMatch(/at most 15 digits before the decimal point and 9 after/);
  });
});

describe('no record fails its batch', () => {
  const ts = () => new Date(T0).toISOString();
  test.each([
    ['bad JSON', 'INVALID_JSON', () => 'not json'],
    ['a JSON array', 'INVALID_JSON', () => '[1,2]'],
    ['not UTF-8', 'INVALID_JSON', () => Buffer.from([0xff, 0xfe, 0x00])],
    ['JSON nested 100,000 deep', 'INVALID_JSON', () => '['.repeat(100_000)],
    ['a key given twice with different values', 'INVALID_JSON', () => `{"id":"x","tenantId":"t","metric":"m","value":1,"value":2,"timestamp":"${ts()}"}`],
    ['missing id', 'MISSING_FIELD', () => ({ tenantId: 't', metric: 'm', value: 1, timestamp: ts() })],
    ['missing tenantId', 'MISSING_FIELD', () => ({ id: 'x', metric: 'm', value: 1, timestamp: ts() })],
    ['missing metric', 'MISSING_FIELD', () => ({ id: 'x', tenantId: 't', value: 1, timestamp: ts() })],
    ['missing value', 'MISSING_FIELD', () => ({ id: 'x', tenantId: 't', metric: 'm', timestamp: ts() })],
    ['missing timestamp', 'MISSING_FIELD', () => ({ id: 'x', tenantId: 't', metric: 'm', value: 1 })],
    ['a string value', 'INVALID_FIELD', () => ({ id: 'x', tenantId: 't', metric: 'm', value: '3', timestamp: ts() })],
    ['a 700 KB string value', 'INVALID_FIELD', () => ({ id: 'x', tenantId: 't', metric: 'm', value: 'x'.repeat(700 * 1024), timestamp: ts() })],
    ['an epoch timestamp beyond what a Date holds (8640000000000001)', 'INVALID_FIELD', () => '{"id":"x","tenantId":"t","metric":"m","value":1,"timestamp":8640000000000001}'],
    ['a date that does not exist (2026-02-30)', 'INVALID_FIELD', () => ({ id: 'x', tenantId: 't', metric: 'm', value: 1, timestamp: '2026-02-30T00:00:00Z' })],
    ['a timestamp without time zone', 'INVALID_FIELD', () => ({ id: 'x', tenantId: 't', metric: 'm', value: 1, timestamp: '2026-11-20T10:00:00' })],
    ['a lone UTF-16 surrogate in the tenant id', 'INVALID_TENANT_ID', () => `{"id":"x","tenantId":"t\\ud800","metric":"m","value":1,"timestamp":"${ts()}"}`],
    ['a lone UTF-16 surrogate in the metric', 'INVALID_FIELD', () => `{"id":"x","tenantId":"t","metric":"\\udc00m","value":1,"timestamp":"${ts()}"}`],
    ['a control character in the tenant id', 'INVALID_TENANT_ID', () => ({ id: 'x', tenantId: 'a\u0000b', metric: 'm', value: 1, timestamp: ts() })],
    ['a control character in the id', 'INVALID_FIELD', () => ({ id: 'b\u0000c', tenantId: 'a', metric: 'm', value: 1, timestamp: ts() })],
    ['a tenantId with #', 'INVALID_TENANT_ID', () => ({ id: 'x', tenantId: 'a#b', metric: 'm', value: 1, timestamp: ts() })],
    ['an id over 256 characters', 'INVALID_FIELD', () => ({ id: 'i'.repeat(257), tenantId: 't', metric: 'm', value: 1, timestamp: ts() })],
    ['a timestamp an hour after arrival', 'FUTURE_TIMESTAMP', () => ({ id: 'x', tenantId: 't', metric: 'm', value: 1, timestamp: new Date(Date.now() + HOUR).toISOString() })],
  ])('%s is quarantined as %s; the good records beside it are counted (drift 0, lost 0)', async (_name, reason, data) => {
    // GIVEN
    const good = usage(9, 'g');
    const records = toRecords(good);
    records.splice(4, 0, kinesisRecord({ data: data(), partitionKey: 'p' }));

    // WHEN
    const res = await ingest(records);

    // THEN the batch succeeds, the record is quarantined with a reason, within DynamoDB's limits
    expect(res.batchItemFailures).toEqual([]);
    const { quarantine } = await readTable(emu.client, table);
    expect(quarantine.map((q) => q.reason.S)).toEqual([reason]);
    expect(quarantine[0].detail.S!.length).toBeGreaterThan(0);
    expect(quarantine[0].detail.S!.length).toBeLessThanOrEqual(503);
    const quarantineWrites = emu.proxy.requests.filter((r) => r.operation === 'BatchWriteItem' && JSON.stringify(r.body).includes('QUARANTINE#'));
    expect(quarantineWrites.every((r) => r.status === 200)).toBe(true);
    await closeUntil();
    const f = await figures(good);
    expect({ drift: f.countDrift, lost: f.lost }).toEqual({ drift: 0, lost: 0 });
  });

  test('1 malformed record in 100: 99 counted once, 1 quarantined with its reason and raw data (drift 0, lost 0)', async () => {
    // GIVEN 99 good records and 1 bad JSON record in the middle
    const good = usage(99, 'good');
    const records = toRecords(good);
    const bad = kinesisRecord({ data: '{"id":"bad-1","tenantId":"tenant-1",', partitionKey: 'tenant-1' });
    records.splice(50, 0, bad);

    // WHEN
    const res = await ingest(records);

    // THEN
    expect(res.batchItemFailures).toEqual([]);
    const { quarantine } = await readTable(emu.client, table);
    expect(quarantine).toHaveLength(1);
    const q = quarantine[0];
    expect(q.reason.S).toBe('INVALID_JSON');
    expect(q.raw.S).toBe('{"id":"bad-1","tenantId":"tenant-1",');
    expect(q.sequenceNumber.S).toBe(bad.kinesis.sequenceNumber);
    expect(q.shardId.S).toBe('shardId-000000000000');
    expect(q.pk.S).toMatch(/^QUARANTINE#2026-11-20#\d\d$/);
    await closeUntil();
    const f = await figures(good);
    expect({ drift: f.countDrift, lost: f.lost }).toEqual({ drift: 0, lost: 0 });
  });

  test('a 700 KB record keeps 31 KB in the quarantine, cut on a character boundary, and says so', async () => {
    // GIVEN a record of 700 KB of multi-byte characters
    const data = JSON.stringify({ id: 'big', tenantId: 't', metric: 'm', value: 1, timestamp: T0, note: 'é'.repeat(350 * 1024) });

    // WHEN
    const res = await ingest([kinesisRecord({ data })]);

    // THEN the quarantine item is far below DynamoDB's 400 KB and well-formed
    expect(res.batchItemFailures).toEqual([]);
    const { quarantine } = await readTable(emu.client, table);
    expect(quarantine).toHaveLength(0); // a valid record with an extra field is counted, not quarantined
    const big = kinesisRecord({ data: data.replace('"value":1', '"value":"1"') });
    await ingest([big]);
    const q = (await readTable(emu.client, table)).quarantine[0];
    expect(q.rawTruncated.BOOL).toBe(true);
    expect(Number(q.rawBytes.N)).toBe(Buffer.byteLength(data, 'utf8') + 2);
    expect(Buffer.byteLength(q.raw.S!, 'utf8')).toBeLessThanOrEqual(31 * 1024);
    expect(Buffer.byteLength(q.raw.S!, 'utf8')).toBeGreaterThan(31 * 1024 - 2);
    expect(q.raw.S!.endsWith('é')).toBe(true);
  });

  test('a record of 700 KB that is not UTF-8 keeps its first bytes as base64 within the same size: the item stays within 33 KB (33 write units)', async () => {
    // GIVEN 700 KB of bytes that are not UTF-8, with the longest partition key Kinesis takes
    const data = Buffer.alloc(700 * 1024, 0xff);
    emu.proxy.clear();

    // WHEN
    const res = await ingest([kinesisRecord({ data, partitionKey: 'p'.repeat(256) })]);

    // THEN
    expect(res.batchItemFailures).toEqual([]);
    const q = (await readTable(emu.client, table)).quarantine[0];
    expect(q.rawEncoding.S).toBe('base64');
    expect(q.rawTruncated.BOOL).toBe(true);
    expect(q.raw.S!.length).toBeLessThanOrEqual(31 * 1024);
    expect(Buffer.from(q.raw.S!, 'base64')).toEqual(data.subarray(0, (31 * 1024 * 3) / 4));
    const quarantineWrite = emu.proxy.requests.find((r) => r.operation === 'BatchWriteItem' && JSON.stringify(r.body).includes('QUARANTINE#'))!;
    expect(quarantineWrite.wru).toBeLessThanOrEqual(33);
  });

  test('ids an encoding could merge (a space, a percent sign) are refused by the identifier rule; ids that differ in one character stay distinct', async () => {
    // GIVEN records whose ids only differ in characters an encoding could merge, and two valid look-alikes
    const records: Usage[] = [
      { id: 'b c', tenantId: 'a', metric: 'm', value: 1, timestamp: T0 },
      { id: 'b%_c', tenantId: 'a', metric: 'm', value: 2, timestamp: T0 },
      { id: 'x V', tenantId: 'a', metric: 'm', value: 4, timestamp: T0 },
      { id: 'x', tenantId: 'a', metric: 'm', value: 8, timestamp: T0 },
      { id: 'x.V', tenantId: 'a', metric: 'm', value: 16, timestamp: T0 },
    ];

    // WHEN
    await ingest(toRecords(records));
    await closeUntil();

    // THEN the three ids outside the rule are quarantined, the two valid ones counted once each
    const { quarantine } = await readTable(emu.client, table);
    expect(quarantine.map((q) => q.reason.S)).toEqual(['INVALID_FIELD', 'INVALID_FIELD', 'INVALID_FIELD']);
    expect((await closedWindows()).map((w) => [w.sum, w.count])).toEqual([['24', 2]]);
  });
});

describe('tenants no provider can onboard are not metered', () => {
  test.each([
    ['a space', 'tenant 7'],
    ['non-ASCII', 'tenant-\u00e9'],
    ['a quote (it would break the Stripe customer search)', "acme's"],
    ['#, the DynamoDB key separator', 'acme#eu'],
    ['/, which the usage API path cannot carry', 'acme/eu'],
    ['129 characters', 't'.repeat(129)],
  ])('a record whose tenant id has %s is quarantined INVALID_TENANT_ID; nothing of it is metered (drift 0, lost 0)', async (_name, tenantId) => {
    // GIVEN good records and one record of a tenant id outside the identifier rule
    const good = usage(9, 'g');
    const records = toRecords(good);
    const bad = kinesisRecord({ data: { id: 'bad-1', tenantId, metric: 'api_calls', value: 5, timestamp: new Date(T0).toISOString() }, partitionKey: 'p' });
    records.splice(3, 0, bad);

    // WHEN
    const res = await ingest(records);
    await closeUntil();

    // THEN the record is in the quarantine with the rule, the batch succeeds, and no window names that tenant
    expect(res.batchItemFailures).toEqual([]);
    const { quarantine, ledger } = await readTable(emu.client, table);
    expect(quarantine).toHaveLength(1);
    expect(quarantine[0].reason.S).toBe('INVALID_TENANT_ID');
    expect(quarantine[0].detail.S).toMatch(/^tenantId must be .*ASCII letters, digits and _ - \. : @ \+ = .*no billing provider can onboard this tenant/);
    expect(quarantine[0].sequenceNumber.S).toBe(bad.kinesis.sequenceNumber);
    expect(quarantine[0].tenantId).toBeUndefined();
    expect(ledger.filter((i) => i.sk.S!.includes('bad-1'))).toEqual([]);
    const f = await figures(good);
    expect({ drift: f.countDrift, lost: f.lost }).toEqual({ drift: 0, lost: 0 });
    expect(f.windows.map((w) => w.tenantId)).not.toContain(tenantId);
  });
});

describe('windows and lateness', () => {
  test('a record is counted in the window of its timestamp, at the boundary (drift 0)', async () => {
    // GIVEN records 1 ms before, at and after the start of the hour T0 + 1h, arriving in that hour
    const boundary = T0 + HOUR;
    clock.set(boundary + 10_000);
    const records: Usage[] = [
      { id: 'w1', tenantId: 't', metric: 'm', value: 1, timestamp: new Date(boundary - 1).toISOString() },
      { id: 'w2', tenantId: 't', metric: 'm', value: 2, timestamp: new Date(boundary).toISOString() },
      { id: 'w3', tenantId: 't', metric: 'm', value: 4, timestamp: boundary + 1 },
      { id: 'w4', tenantId: 't', metric: 'm', value: 8, timestamp: new Date(boundary - 1).toISOString().replace('Z', '+00:00') },
      { id: 'w5', tenantId: 't', metric: 'm', value: 16, timestamp: '2026-11-20T11:30:00.000+01:00' },
    ];

    // WHEN
    await ingest(toRecords(records));
    await closeUntil(boundary + HOUR);

    // THEN
    const windows = await closedWindows();
    expect(windows.map((w) => [w.windowStart, w.windowEnd, w.sum, w.count])).toEqual([
      [iso(boundary - HOUR), iso(boundary), '25', 3],
      [iso(boundary), iso(boundary + HOUR), '6', 2],
    ]);
    expect(driftOf(windows, truthOf(records)).countDrift).toBe(0);
  });

  test('daily windows split at midnight UTC (drift 0)', async () => {
    // GIVEN daily windows and a lateness of 2 days, records 1 ms before and at midnight
    const midnight = Date.parse('2026-11-21T00:00:00Z');
    table = await createUsageTable(emu.client, { granularity: 'DAY', allowedLateness: Duration.days(2) });
    clock.set(midnight + 60_000);
    const records: Usage[] = [
      { id: 'd1', tenantId: 't', metric: 'm', value: 1, timestamp: new Date(midnight - 1).toISOString() },
      { id: 'd2', tenantId: 't', metric: 'm', value: 2, timestamp: new Date(midnight).toISOString() },
    ];

    // WHEN
    await ingest(toRecords(records));
    await closeUntil(midnight + DAY, 2 * DAY);

    // THEN
    const windows = await closedWindows();
    expect(windows.map((w) => [w.granularity, w.windowStart, w.windowEnd, w.sum])).toEqual([
      ['DAY', '2026-11-20T00:00:00Z', '2026-11-21T00:00:00Z', '1'],
      ['DAY', '2026-11-21T00:00:00Z', '2026-11-22T00:00:00Z', '2'],
    ]);
    expect(driftOf(windows, truthOf(records, DAY)).countDrift).toBe(0);
  });

  test('a record later than the lateness bound is quarantined LATE, not counted into a closed window', async () => {
    // GIVEN a record of two hours before T0 (closed an hour ago) and one of this hour
    const lateRecord: Usage = { id: 'late-1', tenantId: 't', metric: 'm', value: 5, timestamp: T0 - 2 * HOUR };
    const onTime: Usage = { id: 'ok-1', tenantId: 't', metric: 'm', value: 3, timestamp: T0 };

    // WHEN
    const res = await ingest(toRecords([lateRecord, onTime]));

    // THEN
    expect(res.batchItemFailures).toEqual([]);
    const { quarantine, ledger } = await readTable(emu.client, table);
    expect(ledger).toHaveLength(1);
    expect(quarantine.map((q) => [q.reason.S, q.tenantId.S, JSON.parse(q.raw.S!).id])).toEqual([['LATE', 't', 'late-1']]);
    expect(quarantine[0].detail.S).toMatch(/window 2026-11-20T08:00:00Z..2026-11-20T09:00:00Z closed at 2026-11-20T10:00:00Z/);
  });

  test('a record judged late writes no window marker: a record 200 days old (or of 1970) costs the closer nothing', async () => {
    // GIVEN a record of 200 days ago and one of 1970 (epoch seconds read as milliseconds), and one of this hour
    const old: Usage = { id: 'old', tenantId: 't', metric: 'm', value: 5, timestamp: T0 - 200 * DAY };
    const epochSeconds: Usage = { id: 'seconds', tenantId: 't', metric: 'm', value: 5, timestamp: Math.floor(T0 / 1000) };
    const onTime: Usage = { id: 'ok', tenantId: 't', metric: 'm', value: 3, timestamp: T0 };

    // WHEN
    await ingest(toRecords([old, epochSeconds, onTime]));

    // THEN both are quarantined LATE, and the only window marker is this hour's (with the count of ledger keys it was written with)
    const items = await scanAll(emu.client, table);
    expect(items.filter((i) => i.pk.S === 'WINDOWS').map((i) => i.sk.S)).toEqual(['2026-11-20T10:00:00Z#64']);
    expect(items.filter((i) => i.pk.S!.startsWith('QUARANTINE#')).map((i) => i.reason.S)).toEqual(['LATE', 'LATE']);
  });

  test('lateness is judged when the record is written, not when the batch starts: a batch that starts 2.2 s before closesAt and writes after it quarantines LATE', async () => {
    // GIVEN a window that closes at T0 + 2h (end + 1 h lateness), a batch starting 2.2 s before, whose first write is throttled for 3.7 s
    const closesAt = T0 + 2 * HOUR;
    const counted: Usage = { id: 'first', tenantId: 't', metric: 'm', value: 1, timestamp: T0 + 1000 };
    clock.set(T0 + 30 * 60_000);
    await ingest(toRecords([counted]));
    clock.set(closesAt - 2200);
    emu.proxy.setHook((r) => {
      if (r.operation !== 'BatchWriteItem' || !JSON.stringify(r.body).includes('L#')) return undefined;
      emu.proxy.setHook(undefined);
      clock.advance(3700);
      return { kind: 'unprocessed' };
    });

    // WHEN
    const res = await ingest(toRecords([{ id: 'second', tenantId: 't', metric: 'm', value: 10, timestamp: T0 + 2000 }], closesAt - 2300));

    // THEN the record is quarantined LATE and the closed window holds only the first
    expect(res.batchItemFailures).toEqual([]);
    const { quarantine } = await readTable(emu.client, table);
    expect(quarantine.map((q) => q.reason.S)).toEqual(['LATE']);
    await closeUntil();
    expect((await closedWindows()).map((w) => [w.sum, w.count])).toEqual([['1', 1]]);
  });

  test('a late resend of a record already counted is dropped as a duplicate; a late resend with another value is quarantined LATE', async () => {
    // GIVEN a record counted while its window was open
    const r: Usage = { id: 'dup-late', tenantId: 't', metric: 'm', value: 1, timestamp: T0 + 1000 };
    await ingest(toRecords([r]));

    // WHEN both resends arrive after the window closed
    clock.set(T0 + 2 * HOUR + 10_000);
    const res = await ingest(toRecords([r]));
    const changed = await ingest(toRecords([{ ...r, value: 2 }]));

    // THEN
    expect(res.batchItemFailures).toEqual([]);
    expect(changed.batchItemFailures).toEqual([]);
    const { quarantine } = await readTable(emu.client, table);
    expect(quarantine.map((q) => [q.reason.S, q.detail.S!.split(':')[0]])).toEqual([['LATE', 'changed resend of a record counted']]);
  });
});

describe('cost', () => {
  test('1 WRU per record written and 4 BatchWriteItem requests per 100 records; no transaction, no index write', async () => {
    // GIVEN 100 distinct records of 100 tenant/metric keys, and a second batch of 100 more
    const records = Array.from({ length: 200 }, (_, i) => ({ id: `k-${i}`, tenantId: `tenant-${i}`, metric: 'm', value: 1, timestamp: T0 }));

    // WHEN
    await ingest(toRecords(records.slice(0, 100)));
    const first = emu.proxy.totals();
    emu.proxy.clear();
    await ingest(toRecords(records.slice(100)));

    // THEN the first batch into a window also writes the window's marker (once per window and execution environment)
    expect(first.byOperation).toEqual({ BatchWriteItem: { requests: 5, wru: 101, rru: 0 } });
    expect(emu.proxy.totals().byOperation).toEqual({ BatchWriteItem: { requests: 4, wru: 100, rru: 0 } });
    expect(wruPerRecord(100)).toBe(1);
  });
});
