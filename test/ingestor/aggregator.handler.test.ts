/**
 * The aggregator handler, run for real: the bundled code Lambda runs, the real
 * AWS SDK, and moto's DynamoDB emulator started by the test. Each test states
 * its figure: aggregate drift (|counted − truth| over every key) and records
 * lost (distinct records the truth has and no aggregate counted).
 */
import { DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { KinesisStreamRecord } from 'aws-lambda';
import {
  AggregatorModule,
  createAggregateTable,
  driftOf,
  kinesisEvent,
  kinesisRecord,
  lambdaContext,
  loadAggregatorBundle,
  readTable,
  startSerializableMoto,
  truthOf,
  Usage,
} from './support';
import { Moto } from '../support/emulators';

const HOUR = 3_600_000;
let moto: Moto;
let aggregator: AggregatorModule;
let client: DynamoDBClient;
let table: string;

beforeAll(async () => {
  moto = await startSerializableMoto();
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  process.env.POWERTOOLS_SERVICE_NAME = 'aggregator-test';
  process.env.POWERTOOLS_METRICS_NAMESPACE = 'Test';
  aggregator = loadAggregatorBundle();
  client = new DynamoDBClient({});
});

afterAll(async () => {
  client?.destroy();
  aggregator?.dynamodb.destroy();
  await moto?.stop();
});

beforeEach(async () => {
  process.env.WINDOW_GRANULARITY = 'HOUR';
  process.env.ALLOWED_LATENESS_SECONDS = '3600';
  process.env.MAX_FUTURE_SKEW_SECONDS = '300';
  table = await createAggregateTable(client);
});

/** The start of the current UTC hour. */
function hourStart(ms = Date.now()): number {
  return Math.floor(ms / HOUR) * HOUR;
}

/** `n` distinct usage records of a few tenants and metrics in the current hour. */
function usage(n: number, prefix = 'r', base = hourStart()): Usage[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `${prefix}-${i}`,
    tenantId: `tenant-${i % 4}`,
    metric: i % 2 === 0 ? 'api_calls' : 'storage_gb',
    value: (i % 7) + 1,
    timestamp: new Date(base + (i % 50) * 1000).toISOString(),
  }));
}

async function run(records: readonly KinesisStreamRecord[]) {
  return aggregator.handler(kinesisEvent(records), lambdaContext());
}

const toRecords = (us: readonly Usage[]) => us.map((u) => kinesisRecord({ data: u }));

async function figures(truthRecords: readonly Usage[]) {
  const t = await readTable(client, table);
  return { ...driftOf(t.aggregates, truthOf(truthRecords)), ...t };
}

describe('exactly once', () => {
  test('duplicates within a batch are counted once (drift 0, lost 0)', async () => {
    // GIVEN 50 records, each sent twice in the same batch (new sequence numbers)
    const records = usage(50);
    const sent = [...records, ...records];

    // WHEN
    const res = await run(toRecords(sent));

    // THEN
    const f = await figures(records);
    expect(res.batchItemFailures).toEqual([]);
    expect({ drift: f.countDrift, sumDrift: f.sumDrift, lost: f.lost }).toEqual({ drift: 0, sumDrift: 0, lost: 0 });
    expect(f.aggregates.reduce((n, a) => n + a.count, 0)).toBe(50);
    expect(f.dedupMarks).toHaveLength(50);
  });

  test('duplicates across batches (producer resend) are counted once (drift 0, lost 0)', async () => {
    // GIVEN a batch, then a later batch resending half of it plus new records
    const first = usage(40, 'a');
    const second = [...first.slice(0, 20), ...usage(30, 'b')];

    // WHEN
    await run(toRecords(first));
    const res = await run(toRecords(second));

    // THEN
    const f = await figures([...first, ...second]);
    expect(res.batchItemFailures).toEqual([]);
    expect({ drift: f.countDrift, lost: f.lost }).toEqual({ drift: 0, lost: 0 });
    expect(f.aggregates.reduce((n, a) => n + a.count, 0)).toBe(70);
  });

  test('the same batch delivered again (function retry) changes nothing (drift 0)', async () => {
    // GIVEN
    const records = toRecords(usage(60));
    await run(records);
    const before = await readTable(client, table);

    // WHEN the event source mapping retries the identical batch
    await run(records);

    // THEN
    const after = await readTable(client, table);
    expect(after.aggregates).toEqual(before.aggregates);
    expect(driftOf(after.aggregates, truthOf(usage(60))).countDrift).toBe(0);
  });

  test('a crash after some transactions, then the replayed batch, counts every record once (drift 0, lost 0)', async () => {
    // GIVEN a batch of 12 aggregate keys, whose 4th transaction is committed but
    // its response lost, and whose 7th transaction fails before reaching DynamoDB
    const records = Array.from({ length: 120 }, (_, i) => ({
      id: `crash-${i}`,
      tenantId: `tenant-${i % 6}`,
      metric: i % 12 < 6 ? 'api_calls' : 'storage_gb',
      value: i + 0.25,
      timestamp: new Date(hourStart() + i * 10).toISOString(),
    }));
    let transactions = 0;
    const name = 'inject-crash';
    aggregator.dynamodb.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== 'TransactWriteItemsCommand') return next(args);
        const n = ++transactions;
        if (n === 7) throw Object.assign(new Error('socket hang up (injected before send)'), { $retryable: undefined });
        const out = await next(args);
        if (n === 4) throw new Error('connection reset (injected after commit)');
        return out;
      },
      { step: 'initialize', name },
    );
    const sent = toRecords(records);
    let first;
    try {
      // WHEN the first attempt fails part-way
      first = await run(sent);
    } finally {
      aggregator.dynamodb.middlewareStack.remove(name);
    }
    const partial = await figures(records);

    // ... and Lambda retries from the first failed record (as ReportBatchItemFailures does)
    const failed = new Set(first.batchItemFailures.map((f) => f.itemIdentifier));
    const firstFailed = sent.findIndex((r) => failed.has(r.kinesis.sequenceNumber));
    const second = await run(sent.slice(firstFailed));
    // ... and once more the whole batch, as a bisected batch replays records
    const third = await run(sent);

    // THEN the first attempt reported the two failed keys' records (20), of which
    // 10 were in fact committed (response lost) and 10 not written at all
    expect(first.batchItemFailures).toHaveLength(20);
    expect(partial.lost).toBe(10);
    expect(partial.countDrift).toBe(10);
    expect(second.batchItemFailures).toEqual([]);
    expect(third.batchItemFailures).toEqual([]);
    const f = await figures(records);
    expect({ drift: f.countDrift, sumDrift: f.sumDrift, lost: f.lost }).toEqual({ drift: 0, sumDrift: 0, lost: 0 });
    expect(f.dedupMarks).toHaveLength(120);
  });

  test('concurrent duplicates on two shards are counted once (drift 0, lost 0)', async () => {
    // GIVEN the same 30 records on two shards (producer resent to another partition key)
    const records = usage(30, 'conc');
    const shardA = records.map((u) => kinesisRecord({ data: u, shardId: 'shardId-000000000000' }));
    const shardB = records.map((u) => kinesisRecord({ data: u, shardId: 'shardId-000000000001', partitionKey: `retry-${u.id}` }));

    // WHEN both shards' batches are processed at the same moment, three times over
    const results = await Promise.all([run(shardA), run(shardB), run(shardA), run(shardB), run(shardB), run(shardA)]);

    // THEN
    for (const r of results) expect(r.batchItemFailures).toEqual([]);
    const f = await figures(records);
    expect({ drift: f.countDrift, lost: f.lost }).toEqual({ drift: 0, lost: 0 });
    expect(f.aggregates.reduce((n, a) => n + a.count, 0)).toBe(30);
  });

  test('sums are exact decimals: 0.1 counted 10 times is 1 (drift 0)', async () => {
    // GIVEN
    const records = Array.from({ length: 10 }, (_, i) => ({
      id: `dec-${i}`, tenantId: 't', metric: 'gb', value: 0.1, timestamp: new Date(hourStart()).toISOString(),
    }));

    // WHEN
    await run(toRecords(records));
    await run(toRecords([{ id: 'dec-x', tenantId: 't', metric: 'gb', value: 0.2, timestamp: new Date(hourStart()).toISOString() }]));

    // THEN
    const { aggregates } = await readTable(client, table);
    expect(aggregates.map((a) => [a.sum, a.count])).toEqual([['1.2', 11]]);
  });
});

describe('malformed records', () => {
  test('1 malformed record in 100: 99 counted once, 1 quarantined with reason and raw data (drift 0, lost 0)', async () => {
    // GIVEN 99 good records and 1 bad JSON record in the middle
    const good = usage(99, 'good');
    const records = toRecords(good);
    const bad = kinesisRecord({ data: '{"id":"bad-1","tenantId":"tenant-1",', partitionKey: 'tenant-1' });
    records.splice(50, 0, bad);

    // WHEN
    const res = await run(records);

    // THEN the batch does not fail, nothing is lost, the bad record is quarantined
    expect(res.batchItemFailures).toEqual([]);
    const f = await figures(good);
    expect({ drift: f.countDrift, lost: f.lost, quarantined: f.quarantine.length }).toEqual({ drift: 0, lost: 0, quarantined: 1 });
    const q = f.quarantine[0];
    expect(q.reason.S).toBe('INVALID_JSON');
    expect(q.raw.S).toBe('{"id":"bad-1","tenantId":"tenant-1",');
    expect(q.sequenceNumber.S).toBe(bad.kinesis.sequenceNumber);
    expect(q.shardId.S).toBe('shardId-000000000000');
    expect(q.pk.S).toBe(`QUARANTINE#${new Date(bad.kinesis.approximateArrivalTimestamp * 1000).toISOString().slice(0, 10)}`);
  });

  const ts = () => new Date(hourStart()).toISOString();
  test.each([
    ['bad JSON', 'INVALID_JSON', () => 'not json'],
    ['a JSON array', 'INVALID_JSON', () => '[1,2]'],
    ['not UTF-8', 'INVALID_JSON', () => Buffer.from([0xff, 0xfe, 0x00])],
    ['missing id', 'MISSING_FIELD', () => ({ tenantId: 't', metric: 'm', value: 1, timestamp: ts() })],
    ['missing tenantId', 'MISSING_FIELD', () => ({ id: 'x', metric: 'm', value: 1, timestamp: ts() })],
    ['missing metric', 'MISSING_FIELD', () => ({ id: 'x', tenantId: 't', value: 1, timestamp: ts() })],
    ['missing value', 'MISSING_FIELD', () => ({ id: 'x', tenantId: 't', metric: 'm', timestamp: ts() })],
    ['missing timestamp', 'MISSING_FIELD', () => ({ id: 'x', tenantId: 't', metric: 'm', value: 1 })],
    ['a string value', 'INVALID_FIELD', () => ({ id: 'x', tenantId: 't', metric: 'm', value: '3', timestamp: ts() })],
    ['a non-finite value (1e400)', 'INVALID_FIELD', () => `{"id":"x","tenantId":"t","metric":"m","value":1e400,"timestamp":"${ts()}"}`],
    ['a negative value', 'INVALID_FIELD', () => ({ id: 'x', tenantId: 't', metric: 'm', value: -1, timestamp: ts() })],
    ['a bad timestamp', 'INVALID_FIELD', () => ({ id: 'x', tenantId: 't', metric: 'm', value: 1, timestamp: '2026-13-45T99:00:00Z' })],
    ['a timestamp without time zone', 'INVALID_FIELD', () => ({ id: 'x', tenantId: 't', metric: 'm', value: 1, timestamp: '2026-11-27T02:00:00' })],
    ['a tenantId with #', 'INVALID_FIELD', () => ({ id: 'x', tenantId: 'a#b', metric: 'm', value: 1, timestamp: ts() })],
    ['a timestamp an hour in the future', 'FUTURE_TIMESTAMP', () => ({ id: 'x', tenantId: 't', metric: 'm', value: 1, timestamp: new Date(Date.now() + HOUR).toISOString() })],
  ])('%s is quarantined as %s and the good records beside it are counted (drift 0, lost 0)', async (_name, reason, data) => {
    // GIVEN
    const good = usage(9, 'g');
    const records = toRecords(good);
    records.splice(4, 0, kinesisRecord({ data: data(), partitionKey: 'p' }));

    // WHEN
    const res = await run(records);

    // THEN
    expect(res.batchItemFailures).toEqual([]);
    const f = await figures(good);
    expect({ drift: f.countDrift, lost: f.lost }).toEqual({ drift: 0, lost: 0 });
    expect(f.quarantine.map((q) => q.reason.S)).toEqual([reason]);
    expect(f.quarantine[0].detail.S).toBeTruthy();
  });
});

describe('windows and lateness', () => {
  test('a record is counted in the window of its timestamp, at the boundary (drift 0)', async () => {
    // GIVEN records 1 ms before, at and after the start of the current hour, arriving now
    const boundary = hourStart();
    const records: Usage[] = [
      { id: 'w1', tenantId: 't', metric: 'm', value: 1, timestamp: new Date(boundary - 1).toISOString() },
      { id: 'w2', tenantId: 't', metric: 'm', value: 2, timestamp: new Date(boundary).toISOString() },
      { id: 'w3', tenantId: 't', metric: 'm', value: 4, timestamp: boundary + 1 },
      { id: 'w4', tenantId: 't', metric: 'm', value: 8, timestamp: new Date(boundary - 1).toISOString().replace('Z', '+00:00') },
    ];

    // WHEN
    await run(toRecords(records));

    // THEN
    const { aggregates } = await readTable(client, table);
    const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
    expect(aggregates.map((a) => [a.windowStart, a.windowEnd, a.sum, a.count]).sort()).toEqual([
      [iso(boundary - HOUR), iso(boundary), '9', 2],
      [iso(boundary), iso(boundary + HOUR), '6', 2],
    ]);
    expect(driftOf(aggregates, truthOf(records)).countDrift).toBe(0);
    // and the layout the usage push reads
    const current = aggregates.find((a) => a.windowStart === iso(boundary))!;
    expect(current.sk).toBe(`HOUR#${iso(boundary)}#m`);
    expect(current.closesAt).toBe((boundary + HOUR) / 1000 + 3600);
    expect(current.closeBucket).toBe(`CLOSE#${new Date(current.closesAt * 1000).toISOString().slice(0, 13)}`);
    expect(current.closeSortKey).toBe(`${String(current.closesAt).padStart(12, '0')}#t#m#${iso(boundary)}`);
  });

  test('daily windows split at midnight UTC (drift 0)', async () => {
    // GIVEN daily windows, and records 1 ms before and at today's midnight UTC
    process.env.WINDOW_GRANULARITY = 'DAY';
    process.env.ALLOWED_LATENESS_SECONDS = String(2 * 86400);
    const midnight = Math.floor(Date.now() / 86_400_000) * 86_400_000;
    const records: Usage[] = [
      { id: 'd1', tenantId: 't', metric: 'm', value: 1, timestamp: new Date(midnight - 1).toISOString() },
      { id: 'd2', tenantId: 't', metric: 'm', value: 2, timestamp: new Date(midnight).toISOString() },
    ];

    // WHEN
    await run(toRecords(records));

    // THEN
    const { aggregates } = await readTable(client, table);
    expect(aggregates.map((a) => [a.granularity, a.windowStart, a.sum]).sort()).toEqual([
      ['DAY', new Date(midnight - 86_400_000).toISOString().replace('.000Z', 'Z'), '1'],
      ['DAY', new Date(midnight).toISOString().replace('.000Z', 'Z'), '2'],
    ]);
    expect(driftOf(aggregates, truthOf(records, 86_400_000)).countDrift).toBe(0);
  });

  test('a record later than the lateness bound is quarantined LATE, not counted into a closed window (lost 0: quarantined)', async () => {
    // GIVEN a lateness of 10 minutes, a record of two hours ago and one of this hour
    process.env.ALLOWED_LATENESS_SECONDS = '600';
    const lateRecord: Usage = { id: 'late-1', tenantId: 't', metric: 'm', value: 5, timestamp: new Date(hourStart() - 2 * HOUR).toISOString() };
    const onTime: Usage = { id: 'ok-1', tenantId: 't', metric: 'm', value: 3, timestamp: new Date(hourStart()).toISOString() };

    // WHEN
    const res = await run(toRecords([lateRecord, onTime]));

    // THEN
    expect(res.batchItemFailures).toEqual([]);
    const f = await readTable(client, table);
    expect(f.aggregates.map((a) => [a.sum, a.count])).toEqual([['3', 1]]);
    expect(f.quarantine.map((q) => [q.reason.S, q.tenantId.S, JSON.parse(q.raw.S!).id])).toEqual([['LATE', 't', 'late-1']]);
    expect(f.quarantine[0].detail.S).toMatch(/closed at/);
  });

  test('a record within the lateness bound is counted into its previous window (drift 0)', async () => {
    // GIVEN a record of the previous hour (its window closes an hour after it ended)
    const r: Usage = { id: 'prev-1', tenantId: 't', metric: 'm', value: 7, timestamp: new Date(hourStart() - 1000).toISOString() };

    // WHEN
    await run(toRecords([r]));

    // THEN
    const f = await readTable(client, table);
    expect(f.quarantine).toHaveLength(0);
    expect(driftOf(f.aggregates, truthOf([r])).countDrift).toBe(0);
  });

  test('a late duplicate of a record already counted is dropped, not quarantined (drift 0)', async () => {
    // GIVEN a record counted while its window was open
    const r: Usage = { id: 'dup-late', tenantId: 't', metric: 'm', value: 1, timestamp: new Date(hourStart() - 1000).toISOString() };
    await run(toRecords([r]));

    // WHEN it is resent after its window closed (lateness now 0)
    process.env.ALLOWED_LATENESS_SECONDS = '0';
    const res = await run(toRecords([r]));

    // THEN
    expect(res.batchItemFailures).toEqual([]);
    const f = await readTable(client, table);
    expect(f.quarantine).toHaveLength(0);
    expect(f.aggregates.map((a) => a.count)).toEqual([1]);
  });

  test('a window closed in the table (closesAt passed) refuses records even if the handler thinks it open (quarantined LATE)', async () => {
    // GIVEN the aggregate of the current hour already closed in the table
    const start = hourStart();
    const sk = `HOUR#${new Date(start).toISOString().replace('.000Z', 'Z')}#m`;
    await client.send(new PutItemCommand({
      TableName: table,
      Item: { pk: { S: 'AGG#t' }, sk: { S: sk }, closesAt: { N: String(Math.floor(Date.now() / 1000) - 1) }, sum: { N: '10' }, count: { N: '1' } },
    }));

    // WHEN a record of that window arrives
    const r: Usage = { id: 'closed-1', tenantId: 't', metric: 'm', value: 5, timestamp: new Date(start).toISOString() };
    const res = await run(toRecords([r]));

    // THEN the aggregate is untouched and the record is quarantined, not lost
    expect(res.batchItemFailures).toEqual([]);
    const item = await client.send(new GetItemCommand({ TableName: table, Key: { pk: { S: 'AGG#t' }, sk: { S: sk } } }));
    expect([item.Item?.sum.N, item.Item?.count.N]).toEqual(['10', '1']);
    const f = await readTable(client, table);
    expect(f.quarantine.map((q) => q.reason.S)).toEqual(['LATE']);
    expect(f.dedupMarks).toHaveLength(0);
  });
});
