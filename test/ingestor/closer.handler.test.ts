/**
 * The closer and the usage read contract, run for real: the bundled handlers,
 * the real AWS SDK, moto behind the recording proxy, and moto's EventBridge
 * routing `usageWindowClosed` events to a queue.
 */
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { KinesisStreamRecord } from 'aws-lambda';
import {
  closedWindows, CLOSING_MARGIN_SECONDS, createUsageTable, Emulator, HOUR, kinesisEvent, kinesisRecord, lambdaContext, readTable,
  startEmulator, TestClock, toRecords, Usage,
} from './support';
import { BusCapture } from '../../examples/local-flow/bus';
import { WINDOW_CLOSED_EVENT } from '../../src/ingestor/ingestor-contract';
import { UsageReader } from '../../src/ingestor/shared.lambda/usage-reader';

const T0 = Date.parse('2026-11-20T10:00:00Z');
const CLOSES_AT = T0 + 2 * HOUR; // window end + 1 hour of lateness
const CLOSABLE = CLOSES_AT + CLOSING_MARGIN_SECONDS * 1000;

let emu: Emulator;
let clock: TestClock;

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
  await createUsageTable(emu.client);
  emu.proxy.setHook(undefined);
  emu.proxy.clear();
});

async function ingest(records: Array<Usage | KinesisStreamRecord>) {
  const list = records.map((r) => ('kinesis' in r ? r : toRecords([r])[0]));
  const res = await emu.aggregate(kinesisEvent(list), lambdaContext());
  expect(res.batchItemFailures).toEqual([]);
}

async function closeAt(ms: number, remainingMs?: number | (() => number)) {
  const saved = clock.now;
  clock.set(ms);
  try {
    return await emu.close({}, lambdaContext(remainingMs));
  } finally {
    clock.set(saved);
  }
}

const rec = (id: string, value: number | string, extra: Partial<Usage> = {}): Usage => ({ id, tenantId: 't', metric: 'm', value, timestamp: T0 + 1000, ...extra });
const voidOf = (id: string, voids: string, tenantId = 't', timestamp = T0 + 1000) => kinesisRecord({ data: { id, tenantId, timestamp, voids } });

describe('closing', () => {
  test('a window closes once, after closesAt plus the margin, and never changes afterwards', async () => {
    // GIVEN ten records of one window
    await ingest(Array.from({ length: 10 }, (_, i) => rec(`r${i}`, i + 1)));

    // WHEN the closer runs a second before the window may close, then after
    const early = await closeAt(CLOSABLE - 1000);
    const windowsEarly = await closedWindows();
    const first = await closeAt(CLOSABLE + 1000);
    const closed = await closedWindows();
    emu.proxy.clear();
    const again = await closeAt(CLOSABLE + 10 * 60_000);

    // THEN nothing before, one closed window after, and nothing more on the rerun
    expect(early.windowsClosed).toBe(0);
    expect(windowsEarly).toEqual([]);
    expect(first).toMatchObject({ windowStartsClosed: 1, windowsClosed: 1, nextWindowStart: '2026-11-20T11:00:00Z' });
    expect(closed).toEqual([expect.objectContaining({
      tenantId: 't',
      metric: 'm',
      granularity: 'HOUR',
      windowStart: '2026-11-20T10:00:00Z',
      windowEnd: '2026-11-20T11:00:00Z',
      sum: '55',
      count: 10,
      windowId: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
    })]);
    expect(Date.parse(closed[0].closedAt)).toBeGreaterThanOrEqual(CLOSABLE);
    expect(again.windowsClosed).toBe(0);
    expect(emu.proxy.totals().byOperation.PutItem?.wru ?? 0).toBeLessThanOrEqual(1);

    // AND a record of that window arriving now is quarantined LATE; the closed window is unchanged
    clock.set(CLOSABLE + 20 * 60_000);
    await ingest([rec('after-close', 100)]);
    await closeAt(CLOSABLE + 30 * 60_000);
    expect(await closedWindows()).toEqual(closed);
    expect((await readTable(emu.client, process.env.USAGE_TABLE_NAME!)).quarantine.map((q) => q.reason.S)).toEqual(['LATE']);
  });

  test('on an empty ledger the closer takes its lease (reading its state), reads the window markers once and saves its state; a warm run with nothing due reads nothing', async () => {
    // GIVEN an empty ledger (no state, no window marker)
    const empty = await closeAt(CLOSABLE);
    const firstRun = emu.proxy.totals().byOperation;
    emu.proxy.clear();

    // WHEN the closer runs again before another window is due
    const idle = await closeAt(CLOSABLE + 5 * 60_000);

    // THEN
    expect(empty).toMatchObject({ windowsClosed: 0, nextWindowStart: '2026-11-20T11:00:00Z' });
    expect(Object.keys(firstRun).sort()).toEqual(['Query', 'UpdateItem']);
    expect(firstRun.Query.requests).toBe(1);
    expect(firstRun.UpdateItem.requests).toBe(2);
    expect(idle.windowsClosed).toBe(0);
    expect(emu.proxy.totals().requests).toBe(0);
  });

  test('records written before the closer ever ran are closed: the aggregator marks a window before writing into it', async () => {
    // GIVEN records of an hour long before the closer's first run
    await ingest([rec('early', 3)]);

    // WHEN the closer first runs a day later
    const summary = await closeAt(CLOSABLE + 24 * HOUR);

    // THEN
    expect(summary.windowsClosed).toBe(1);
    expect((await closedWindows()).map((w) => [w.windowStart, w.sum])).toEqual([['2026-11-20T10:00:00Z', '3']]);
  });

  test('windows without records cost no ledger read: the closer reads the shards only for windows with a marker', async () => {
    // GIVEN a closer that knows the ledger up to T0 - 1 h, and no records for ten hours
    await closeAt(T0 + 50 * 60_000);
    emu.proxy.clear();

    // WHEN twelve hourly windows become due
    const summary = await closeAt(CLOSABLE + 10 * HOUR);

    // THEN
    expect(summary).toMatchObject({ windowsClosed: 0, windowStartsClosed: 12 });
    expect(emu.proxy.totals().byOperation.Query.requests).toBe(1);
  });

  test('a run short of time stops between passes; the next run finishes (no window closed twice or skipped)', async () => {
    // GIVEN records in 30 consecutive hours (two passes of 24 window starts)
    const start = T0 - 40 * HOUR;
    clock.set(start);
    for (let h = 0; h < 30; h++) {
      clock.set(start + h * HOUR + 60_000);
      await ingest([{ id: `h${h}`, tenantId: 't', metric: 'm', value: h, timestamp: start + h * HOUR }]);
    }

    // WHEN the first run runs out of time after its first pass, the second has enough
    const now = start + 30 * HOUR + 2 * HOUR + 10 * 60_000;
    let calls = 0;
    const short = await closeAt(now, () => (calls++ === 0 ? 600_000 : 30_000));
    const windowsAfterShort = (await closedWindows()).length;
    const rest = await closeAt(now);

    // THEN
    expect(short).toMatchObject({ stoppedEarly: true, windowsClosed: 24 });
    expect(windowsAfterShort).toBe(24);
    expect(rest).toMatchObject({ stoppedEarly: false, windowsClosed: 6 });
    const windows = await closedWindows();
    expect(windows.map((w) => w.sum)).toEqual(Array.from({ length: 30 }, (_, h) => String(h)));
  });

  test('closing reads each shard once per run: its read units and requests', async () => {
    // GIVEN a closer that ran before (its first run looks for the first window: one more query per shard, once), and 200 records of 20 tenants x 2 metrics
    await closeAt(T0 + 50 * 60_000);
    await ingest(Array.from({ length: 100 }, (_, i) => ({ id: `c${i}`, tenantId: `t${i % 20}`, metric: `m${i % 2}`, value: 1, timestamp: T0 + i })));
    await ingest(Array.from({ length: 100 }, (_, i) => ({ id: `d${i}`, tenantId: `t${i % 20}`, metric: `m${i % 2}`, value: 1, timestamp: T0 + i })));
    emu.proxy.clear();

    // WHEN
    await closeAt(CLOSABLE);

    // THEN one query of the window markers, 64 strongly consistent queries of the ledger (each 1 RRU: 200 items of ~80 bytes), one page, the index,
    // and the state item twice: the lease taken (reading the state) and the state saved (the lease given back)
    const t = emu.proxy.totals();
    expect(t.byOperation.Query).toEqual({ requests: 65, wru: 0, rru: 65 });
    expect(t.byOperation.PutItem.requests).toBe(2);
    expect(t.byOperation.UpdateItem.requests).toBe(2);
    expect(t.byOperation.GetItem).toBeUndefined();
    expect(t.wru).toBeLessThanOrEqual(6);
  });
});

describe('no overlap, no walk-back', () => {
  /** The usageWindowClosed entries put so far (through the proxy). */
  const eventEntries = () => emu.proxy.requests.filter((r) => r.service === 'events').flatMap((r) => r.body.Entries as Array<{ Detail: string }>);

  test('two closer runs at once: the second finds the lease held and does nothing; each window is closed and announced once', async () => {
    // GIVEN records of three tenants in one window, and a ledger read slowed down so that the runs overlap
    await ingest([rec('a', 1), rec('b', 2, { tenantId: 'u' }), rec('c', 3, { tenantId: 'v' })]);
    emu.proxy.clear();
    let slowed = false;
    emu.proxy.setHook(async (r) => {
      if (!slowed && r.operation === 'Query' && String(r.body?.ExpressionAttributeValues?.[':pk']?.S).startsWith('L#')) {
        slowed = true;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      return undefined;
    });

    // WHEN two runs start together
    const [first, second] = await Promise.all([closeAt(CLOSABLE), closeAt(CLOSABLE)]);

    // THEN exactly one of them closed the window start, and each window's event was put once
    const runs = [first, second].sort((x, y) => Number(x.leaseHeld) - Number(y.leaseHeld));
    expect(runs.map((r) => [r.leaseHeld, r.windowsClosed])).toEqual([[false, 3], [true, 0]]);
    expect(eventEntries()).toHaveLength(3);
    expect(new Set(eventEntries().map((e) => JSON.parse(e.Detail).windowId)).size).toBe(3);
    expect((await closedWindows()).map((w) => w.sum).sort()).toEqual(['1', '2', '3']);
  });

  test('a lease left by a run that died lapses after the closer\'s timeout: runs before skip, the first run after closes', async () => {
    // GIVEN a record, and a lease taken by a run that never gave it back (taken 5 minutes before the window is closable)
    await ingest([rec('a', 1)]);
    await emu.client.send(new PutItemCommand({
      TableName: process.env.USAGE_TABLE_NAME!,
      Item: { pk: { S: 'STATE' }, sk: { S: 'CLOSER' }, leaseUntil: { N: String(CLOSABLE - 5 * 60_000 + 11 * 60_000) }, leaseId: { S: 'dead-run' } },
    }));

    // WHEN the closer runs while the lease holds, then after it lapsed
    const blocked = await closeAt(CLOSABLE + 60_000);
    const after = await closeAt(CLOSABLE + 7 * 60_000);

    // THEN
    expect(blocked).toMatchObject({ leaseHeld: true, windowsClosed: 0 });
    expect(after).toMatchObject({ leaseHeld: false, windowsClosed: 1 });
  });

  test('the first run starts at a bounded point: a window marker of 200 days ago (written before late records got none) is not walked back to', async () => {
    // GIVEN a marker of a window 200 days old in the old format, and a record of now
    await emu.client.send(new PutItemCommand({
      TableName: process.env.USAGE_TABLE_NAME!,
      Item: { pk: { S: 'WINDOWS' }, sk: { S: new Date(T0 - 200 * 86_400_000).toISOString().replace('.000Z', 'Z') } },
    }));
    await ingest([rec('a', 1)]);
    emu.proxy.clear();

    // WHEN the closer runs for the first time
    const summary = await closeAt(CLOSABLE);

    // THEN it starts at the first marker no older than the ledger's retention: one query of the markers, then the window's own close
    expect(summary).toMatchObject({ windowsClosed: 1, nextWindowStart: '2026-11-20T11:00:00Z' });
    const markerQueries = emu.proxy.requests.filter((r) => r.operation === 'Query' && r.body.ExpressionAttributeValues[':pk'].S === 'WINDOWS');
    expect(markerQueries).toHaveLength(2);
    expect(markerQueries[0].body.ExpressionAttributeValues[':from'].S).toBe('2026-11-13T11:00:00Z');
    expect(emu.proxy.totals().requests).toBeLessThan(75);
  });
});

describe('usageWindowClosed events', () => {
  test('one event per closed window on the bus, with tenant, metric, window, sum, count and windowId', async () => {
    // GIVEN a rule on the default bus that routes the ingestor's events to a queue
    const bus = await BusCapture.start(`closed-${Date.now()}`, { 'source': [WINDOW_CLOSED_EVENT.source], 'detail-type': [WINDOW_CLOSED_EVENT.detailType] }, emu.moto.endpoint);
    await ingest([rec('e1', 2), rec('e2', '0.5'), rec('e3', 4, { metric: 'other' }), rec('e4', 1, { tenantId: 'u' })]);

    // WHEN
    await closeAt(CLOSABLE);

    // THEN
    const details = (await bus.drain(2)).map((e) => e.detail);
    const windows = await closedWindows();
    expect(details.sort((a, b) => a.windowId.localeCompare(b.windowId))).toEqual(windows.map((w) => ({
      tenantId: w.tenantId,
      metric: w.metric,
      granularity: 'HOUR',
      windowStart: w.windowStart,
      windowEnd: w.windowEnd,
      sum: w.sum,
      count: w.count,
      closedAt: w.closedAt,
      windowId: w.windowId,
    })).sort((a, b) => a.windowId.localeCompare(b.windowId)));
    expect(details.map((d) => [d.tenantId, d.metric, d.sum, d.count]).sort()).toEqual([['t', 'm', '2.5', 2], ['t', 'other', '4', 1], ['u', 'm', '1', 1]]);
    // (the rule goes: moto routing thousands of events of later tests to a queue would slow them down)
    await bus.stop();
  });
});

describe('voids', () => {
  test('a void before close cancels its record, exactly once (sent twice, and by two void ids)', async () => {
    // GIVEN two records, then three voids of the first
    await ingest([rec('a', 5), rec('b', 7)]);
    await ingest([voidOf('v-1', 'a'), voidOf('v-1', 'a')]);
    await ingest([voidOf('v-2', 'a')]);

    // WHEN
    const summary = await closeAt(CLOSABLE);

    // THEN
    expect(summary.voidsApplied).toBe(1);
    expect((await closedWindows()).map((w) => [w.sum, w.count])).toEqual([['7', 1]]);
  });

  test('a void applies whatever the order (before its record, in the same batch) and whatever the id holds (dots, colons, a prefix of another id)', async () => {
    // GIVEN voids sent before and beside their records, ids that are prefixes of one another in key order
    await ingest([voidOf('v-x', 'x.y:z')]);
    await ingest([rec('x.y:z', 1), rec('x.y', 2), rec('x', 4), voidOf('v-x2', 'x'), rec('keep', 8)]);

    // WHEN
    await closeAt(CLOSABLE);

    // THEN x.y:z and x are voided
    expect((await closedWindows()).map((w) => [w.sum, w.count])).toEqual([['10', 2]]);
  });

  test('open totals show voids applied before the close', async () => {
    // GIVEN
    await ingest([rec('a', 5), rec('b', 7, { metric: 'n' }), voidOf('v-1', 'a'), rec('c', 1)]);

    // WHEN
    const totals = await UsageReader.fromEnvironment().readOpenTotals('t');

    // THEN
    expect(totals.map((t) => [t.metric, t.windowStart, t.closesAt, t.sum, t.count])).toEqual([
      ['m', '2026-11-20T10:00:00Z', '2026-11-20T12:00:00Z', '1', 1],
      ['n', '2026-11-20T10:00:00Z', '2026-11-20T12:00:00Z', '7', 1],
    ]);
  });

  test('a void after close is quarantined LATE; a void without its record in the window is quarantined VOID_UNMATCHED at close', async () => {
    // GIVEN a record, and a void of a record that is not there
    await ingest([rec('a', 5), voidOf('v-nothing', 'missing')]);
    await closeAt(CLOSABLE);

    // WHEN the void of the record arrives after close
    clock.set(CLOSABLE + 60_000);
    await ingest([voidOf('v-late', 'a')]);

    // THEN
    const { quarantine } = await readTable(emu.client, process.env.USAGE_TABLE_NAME!);
    expect(quarantine.map((q) => q.reason.S).sort()).toEqual(['LATE', 'VOID_UNMATCHED']);
    expect(quarantine.find((q) => q.reason.S === 'LATE')!.detail.S).toMatch(/^void of record "a"/);
    expect((await closedWindows()).map((w) => [w.sum, w.count])).toEqual([['5', 1]]);
  });
});

describe('usage read contract', () => {
  /** Records in three hours, 7 tenants x 2 metrics. */
  async function threeHours() {
    for (let h = 0; h < 3; h++) {
      clock.set(T0 + h * HOUR + 60_000);
      await ingest(Array.from({ length: 28 }, (_, i) => ({
        id: `h${h}-${i}`, tenantId: `tenant-${i % 7}`, metric: `m${i % 2}`, value: h + 1, timestamp: T0 + h * HOUR + i,
      })));
    }
  }

  test('readClosedWindows returns every closed window once, oldest first, whatever the page size; the cursor resumes after new closes', async () => {
    // GIVEN two hours closed, the third not yet
    await threeHours();
    await closeAt(T0 + 3 * HOUR + CLOSING_MARGIN_SECONDS * 1000);
    const reader = UsageReader.fromEnvironment();

    // WHEN read with pages of 1, 5 and 1000
    const pages = async (limit: number, cursor?: string) => {
      const out = [];
      for (;;) {
        const p = await reader.readClosedWindows({ cursor, limit });
        if (p.windows.length === 0) return { windows: out, cursor };
        out.push(...p.windows);
        cursor = p.cursor;
      }
    };
    const byOne = await pages(1);
    const byFive = await pages(5);
    const all = await pages(1000);

    // THEN
    expect(all.windows).toHaveLength(28);
    expect(byOne.windows).toEqual(all.windows);
    expect(byFive.windows).toEqual(all.windows);
    expect(new Set(all.windows.map((w) => w.windowId)).size).toBe(28);
    expect(all.windows.map((w) => w.windowStart)).toEqual([...all.windows.map((w) => w.windowStart)].sort());

    // AND after the third hour closes, the stored cursor gives exactly its windows
    await closeAt(T0 + 4 * HOUR + CLOSING_MARGIN_SECONDS * 1000);
    const next = await pages(3, all.cursor);
    expect(next.windows).toHaveLength(14);
    expect(new Set(next.windows.map((w) => w.windowStart))).toEqual(new Set(['2026-11-20T12:00:00Z']));
  });

  test('readClosedWindows without a cursor starts at `since` (close time); readTenantClosedWindows reads one tenant by window start', async () => {
    // GIVEN three hours, closed by two runs
    await threeHours();
    await closeAt(T0 + 3 * HOUR + CLOSING_MARGIN_SECONDS * 1000);
    const secondRun = T0 + 4 * HOUR + CLOSING_MARGIN_SECONDS * 1000;
    await closeAt(secondRun);
    const reader = UsageReader.fromEnvironment();

    // WHEN
    const since = await reader.readClosedWindows({ since: new Date(secondRun).toISOString() });
    // the same instant written without milliseconds (closedAt has them): compared as instants, not as strings
    const sinceSeconds = await reader.readClosedWindows({ since: new Date(secondRun).toISOString().replace(/\.\d{3}Z$/, 'Z') });
    const tenant = await reader.readTenantClosedWindows('tenant-3', { since: '2026-11-20T11:00:00Z', until: '2026-11-20T13:00:00Z' });
    const everything = await reader.readTenantClosedWindows('tenant-3');

    // THEN
    expect(new Set(since.windows.map((w) => w.windowStart))).toEqual(new Set(['2026-11-20T12:00:00Z']));
    expect(sinceSeconds.windows.map((w) => w.windowId)).toEqual(since.windows.map((w) => w.windowId));
    expect(tenant.map((w) => [w.windowStart, w.metric, w.sum, w.count])).toEqual([
      ['2026-11-20T11:00:00Z', 'm0', '4', 2], ['2026-11-20T11:00:00Z', 'm1', '4', 2],
      ['2026-11-20T12:00:00Z', 'm0', '6', 2], ['2026-11-20T12:00:00Z', 'm1', '6', 2],
    ]);
    expect(everything).toHaveLength(6);
  });

  test('a window start with thousands of windows is split into tenant groups; each tenant is found in its group', async () => {
    // GIVEN 3,000 tenants with one record each (about 130 KB of closed windows)
    const records = Array.from({ length: 3000 }, (_, i) => ({ id: `g${i}`, tenantId: `tenant-${String(i).padStart(5, '0')}`, metric: 'api_calls', value: i, timestamp: T0 + i }));
    for (let i = 0; i < records.length; i += 500) await ingest(records.slice(i, i + 500));

    // WHEN
    await closeAt(CLOSABLE);
    const reader = UsageReader.fromEnvironment();

    // THEN
    const { closedPages } = await readTable(emu.client, process.env.USAGE_TABLE_NAME!);
    expect(new Set(closedPages.map((p) => p.pk.S!)).size).toBeGreaterThan(1);
    expect((await closedWindows(700)).length).toBe(3000);
    for (const i of [0, 1234, 2999]) {
      expect((await reader.readTenantClosedWindows(`tenant-${String(i).padStart(5, '0')}`)).map((w) => w.sum)).toEqual([String(i)]);
    }
  }, 300_000);

  test('fromEnvironment names the variable and the fix when the function was not bound', () => {
    expect(() => UsageReader.fromEnvironment({})).toThrow(/USAGE_READER_.* is not set: bind this function to a usage ingestor with ingestor.bindUsageReader\(fn\)/);
  });
});
