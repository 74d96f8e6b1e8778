/**
 * The closing fan-out, run for real at small scale through the code path the
 * large scale uses: the fan-out is forced on (the closer hands every window
 * start to it), the bundled closer and closing workers run against moto behind
 * the recording proxy, and the closing messages go through moto's SQS queue.
 * moto cannot invoke a function, so the test takes each message from the queue
 * and hands it to the worker exactly as Lambda's event source mapping would
 * (an SQS event of one record; the message deleted when the worker returns,
 * delivered again when it throws).
 *
 * The closed windows are checked against an independent count of the records
 * (drift 0), each window must be closed and announced exactly once, and a
 * worker that dies mid-fold is resumed, by a different split of the ledger
 * keys, with no double count: a merge that summed every partial page it found
 * would count the dead worker's pages twice, and these tests would fail.
 */
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import {
  closedWindows, CLOSING_MARGIN_SECONDS, closingQueueUrl, createUsageTable, driftOf, Emulator, HOUR, kinesisEvent, kinesisRecord, lambdaContext,
  QueuedClosingMessage, receiveClosingMessages, scanAll, Settings, startEmulator, TestClock, toRecords, truthOf, Usage, windowKey,
} from './support';
import { FAN_OUT_ITEMS } from '../../src/ingestor/capacity';
import { CLOSER_ENV } from '../../src/ingestor/ingestor-contract';
import { UsageReader } from '../../src/ingestor/shared.lambda/usage-reader';

const T0 = Date.parse('2026-11-20T10:00:00Z');
const CLOSABLE = T0 + 2 * HOUR + CLOSING_MARGIN_SECONDS * 1000;
/** The fan-out forced on; segments sized by `ledgerItems` of the state (seeded below). */
const FORCED: Settings = { fanOutItems: 0, segmentItems: 100 };

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
  table = await createUsageTable(emu.client, FORCED, 'fanout', emu.sqs);
  emu.proxy.setHook(undefined);
  emu.proxy.clear();
});

/** 600 records of 40 tenants x 3 metrics in the hour of T0 (values with fractions), 60 resends of them, and 10 voids. */
function records(): { sent: Usage[]; voids: Array<{ id: string; tenantId: string; voids: string; timestamp: number }> } {
  const sent: Usage[] = Array.from({ length: 600 }, (_, i) => ({
    id: `r-${i}`, tenantId: `tenant-${String(i % 40).padStart(2, '0')}`, metric: `m${i % 3}`, value: `${(i * 7) % 101}.${String(i % 1000).padStart(3, '0')}`, timestamp: T0 + i * 1000,
  }));
  const resends = sent.filter((_, i) => i % 10 === 3);
  const voids = sent.filter((_, i) => i % 60 === 7).map((r) => ({ id: `void-${r.id}`, tenantId: r.tenantId, voids: r.id, timestamp: r.timestamp as number }));
  return { sent: [...sent, ...resends], voids };
}

/**
 * The independent count: every distinct record once, less the voided ones (a
 * window whose every record was voided is closed with sum 0 and count 0, as
 * the closer has always closed it).
 */
function truth(r: ReturnType<typeof records>) {
  const voided = new Set(r.voids.map((v) => `${v.tenantId}|${v.voids}`));
  const t = truthOf(r.sent.filter((u) => !voided.has(`${u.tenantId}|${u.id}`)));
  for (const u of r.sent.filter((x) => voided.has(`${x.tenantId}|${x.id}`))) {
    const key = windowKey(u.tenantId, u.metric, new Date(Math.floor(Number(u.timestamp) / HOUR) * HOUR).toISOString().replace('.000Z', 'Z'));
    if (!t.has(key)) t.set(key, { sum: '0', count: 0 });
  }
  return t;
}

async function ingestAll(r: ReturnType<typeof records>): Promise<void> {
  const list = [...toRecords(r.sent), ...r.voids.map((v) => kinesisRecord({ data: v }))];
  for (let i = 0; i < list.length; i += 100) {
    const res = await emu.aggregate(kinesisEvent(list.slice(i, i + 100)), lambdaContext());
    expect(res.batchItemFailures).toEqual([]);
  }
}

/** Seeds the closer state as a closer that closed the window start before would have left it: its size decides the segments. */
async function seedState(ledgerItems: number): Promise<void> {
  await emu.client.send(new PutItemCommand({
    TableName: table,
    Item: { pk: { S: 'STATE' }, sk: { S: 'CLOSER' }, nextWindowStart: { N: String(T0) }, ledgerItems: { N: String(ledgerItems) } },
  }));
}

/** Sets the closer's fan-out threshold (undefined: the construct's). */
function configureThreshold(fanOutItems: number | undefined): void {
  process.env[CLOSER_ENV.FAN_OUT_ITEMS] = String(fanOutItems ?? FAN_OUT_ITEMS);
}

/** Runs the closer as its schedule does: the event carries the closing queue's URL. */
async function closeAt(ms: number) {
  clock.set(ms);
  return emu.close({ closingQueueUrl: closingQueueUrl() }, lambdaContext());
}

/**
 * Runs the closing workers until the queue is empty, as Lambda's event source
 * mapping does: one message per invocation, deleted when the worker returns.
 * `each` may handle a message itself (a crash, a second delivery) and return
 * true to have it left in the queue's hands.
 */
async function runWorkers(each?: (m: QueuedClosingMessage) => Promise<boolean>): Promise<Record<string, number>> {
  const handled: Record<string, number> = {};
  for (let round = 0; round < 50; round++) {
    const messages = await receiveClosingMessages(emu.sqs);
    if (messages.length === 0) return handled;
    for (const m of messages) {
      handled[m.message.kind] = (handled[m.message.kind] ?? 0) + 1;
      if (each && (await each(m))) continue;
      await emu.work(m.event, lambdaContext());
      await m.done();
    }
  }
  throw new Error('the closing queue never emptied');
}

/** The `usageWindowClosed` entries put (through the proxy). */
function eventDetails(): Array<Record<string, any>> {
  return emu.proxy.requests.filter((r) => r.service === 'events').flatMap((r) => (r.body.Entries as Array<{ Detail: string }>).map((e) => JSON.parse(e.Detail)));
}

describe('closing fanned out over the closing workers', () => {
  test('every window is closed once, exactly (drift 0 against an independent count), and announced once, even with every message delivered twice', async () => {
    // GIVEN 660 records and 10 voids of 120 windows, and a closer state that makes 8 segments of 8 ledger keys
    const r = records();
    await ingestAll(r);
    await seedState(800);

    // WHEN the closer runs once the window start is closable, and the workers handle every message twice (SQS delivers at least once)
    const summary = await closeAt(CLOSABLE);
    const handled = await runWorkers(async (m) => {
      await emu.work(m.event, lambdaContext());
      await emu.work(m.event, lambdaContext());
      await m.done();
      return true;
    });

    // THEN the closer handed the window start to the fan-out: 8 segments folded, 8 partitions merged and announced
    expect(summary).toMatchObject({ fanOut: '2026-11-20T10:00:00Z', windowsClosed: 0, leaseHeld: false });
    expect(handled).toEqual({ FOLD: 8, MERGE: 8, ANNOUNCE: 8 });
    // AND the closed windows are the truth, each once
    const windows = await closedWindows();
    expect(driftOf(windows, truth(r))).toEqual({ countDrift: 0, sumsWrong: 0, lost: 0 });
    expect(windows).toHaveLength(120);
    expect(new Set(windows.map((w) => w.windowId)).size).toBe(120);
    // AND one event per window, with the closed window's sum and count
    const events = eventDetails();
    expect(events).toHaveLength(120);
    const byId = new Map(windows.map((w) => [w.windowId, w]));
    for (const e of events) expect([e.sum, e.count]).toEqual([byId.get(e.windowId)!.sum, byId.get(e.windowId)!.count]);
    // AND one index item, and the closer's state past the window start with the job gone
    const items = await scanAll(emu.client, table);
    expect(items.filter((i) => i.pk.S === 'CLOSED').map((i) => [i.sk.S, i.windowCount.N])).toEqual([['2026-11-20T10:00:00Z', '120']]);
    const state = items.find((i) => i.pk.S === 'STATE')!;
    expect(state.job).toBeUndefined();
    expect(state.nextWindowStart.N).toBe(String(T0 + HOUR));
    expect(Number(state.ledgerItems.N)).toBe(610);
    // AND each tenant is found in its tenant group by the reader
    const reader = UsageReader.fromEnvironment();
    for (const tenant of ['tenant-00', 'tenant-17', 'tenant-39']) {
      expect((await reader.readTenantClosedWindows(tenant)).map((w) => w.metric)).toEqual(['m0', 'm1', 'm2']);
    }
  }, 300_000);

  test('a worker that dies mid-fold, its partial half written, is resumed by another split of its ledger keys with no double count', async () => {
    // GIVEN the same records, 8 segments of 8 ledger keys
    const r = records();
    await ingestAll(r);
    await seedState(800);
    await closeAt(CLOSABLE);

    // WHEN the worker of ledger keys [0, 8) writes its partial pages, then dies before its done marker (every attempt at it fails)
    let dying = true;
    emu.proxy.setHook((req) => (dying && req.operation === 'PutItem' && req.body?.Item?.sk?.S === 'S#0000-0008'
      ? { kind: 'error', status: 500, type: 'InternalServerError' } : undefined));
    let died = false;
    const handled = await runWorkers(async (m) => {
      if (m.message.kind !== 'FOLD' || m.message.from !== 0 || died) return false;
      await expect(emu.work(m.event, lambdaContext())).rejects.toThrow(/InternalServerError|injected/);
      died = true;
      dying = false;
      // AND the message comes again; this time the worker is short of time after 3 keys: it writes [0, 3) and queues [3, 8)
      let calls = 0;
      const summaries = await emu.work(m.event, lambdaContext(() => (++calls <= 3 ? 600_000 : 0)));
      expect(summaries[0]).toMatchObject({ kind: 'FOLD', continued: { from: 3, to: 8 } });
      await m.done();
      return true;
    });

    // THEN the dead worker's pages are still there, and the merge counted each ledger key once
    expect(died).toBe(true);
    expect(handled.FOLD).toBe(9);
    const items = await scanAll(emu.client, table);
    expect(items.some((i) => i.pk.S!.startsWith('PART#2026-11-20T10:00:00Z#') && i.sk.S!.startsWith('0000-0008#'))).toBe(true);
    expect(items.filter((i) => i.pk.S === 'PART#2026-11-20T10:00:00Z' && i.sk.S!.startsWith('S#')).map((i) => i.sk.S).sort())
      .toEqual(['S#0000-0003', 'S#0003-0008', 'S#0008-0016', 'S#0016-0024', 'S#0024-0032', 'S#0032-0040', 'S#0040-0048', 'S#0048-0056', 'S#0056-0064']);
    const windows = await closedWindows();
    expect(driftOf(windows, truth(r))).toEqual({ countDrift: 0, sumsWrong: 0, lost: 0 });
    expect(eventDetails()).toHaveLength(120);
  }, 300_000);

  test('a job whose messages were lost is tended by the closer 20 minutes on: it sends the missing work again and the window start closes once', async () => {
    // GIVEN a fan-out whose FOLD messages of 3 segments were lost (taken from the queue, never handled)
    const r = records();
    await ingestAll(r);
    await seedState(800);
    await closeAt(CLOSABLE);
    let lost = 0;
    await runWorkers(async (m) => {
      if (m.message.kind === 'FOLD' && lost < 3) {
        lost++;
        await m.done();
        return true;
      }
      return false;
    });
    const stalled = await closeAt(CLOSABLE + 10 * 60_000);

    // WHEN the closer runs 20 minutes after the job started, and the workers handle what it sent
    const tended = await closeAt(CLOSABLE + 21 * 60_000);
    const handled = await runWorkers();
    const after = await closeAt(CLOSABLE + 26 * 60_000);

    // THEN
    expect(stalled).toMatchObject({ fanOut: '2026-11-20T10:00:00Z', windowsClosed: 0 });
    expect(tended).toMatchObject({ fanOut: '2026-11-20T10:00:00Z' });
    expect(handled).toEqual({ FOLD: 3, MERGE: 8, ANNOUNCE: 8 });
    expect(after.fanOut).toBeUndefined();
    expect(after.nextWindowStart).toBe('2026-11-20T11:00:00Z');
    expect(driftOf(await closedWindows(), truth(r))).toEqual({ countDrift: 0, sumsWrong: 0, lost: 0 });
    expect(eventDetails()).toHaveLength(120);
  }, 300_000);

  test('the fan-out starts only for a window start too large for one run: the last window start\'s size decides, with no ledger read wasted', async () => {
    // GIVEN the threshold lowered to 500 ledger items, and the records of one window start (610 ledger items)
    const r = records();
    configureThreshold(500);
    await ingestAll(r);

    // WHEN the last window start closed had 100 items
    await seedState(100);
    const small = await closeAt(CLOSABLE);

    // THEN the closer closes this one in its own run, as before the fan-out: no message, no partial
    expect(small).toMatchObject({ windowsClosed: 120, fanOut: undefined });
    expect(await receiveClosingMessages(emu.sqs)).toEqual([]);
    expect((await scanAll(emu.client, table)).filter((i) => i.pk.S!.startsWith('PART#'))).toEqual([]);
    expect(driftOf(await closedWindows(), truth(r))).toEqual({ countDrift: 0, sumsWrong: 0, lost: 0 });

    // AND WHEN the same records are in a table whose last window start had 800 items
    table = await createUsageTable(emu.client, { ...FORCED, fanOutItems: 500 }, 'fanout', emu.sqs);
    clock.set(T0 + 50 * 60_000);
    await ingestAll(r);
    await seedState(800);
    emu.proxy.clear();
    const large = await closeAt(CLOSABLE);
    const ledgerReads = emu.proxy.requests.filter((q) => q.operation === 'Query' && String(q.body.ExpressionAttributeValues[':pk'].S).startsWith('L#'));
    await runWorkers();

    // THEN the closer hands it to the fan-out without reading the ledger itself
    expect(large).toMatchObject({ windowsClosed: 0, fanOut: '2026-11-20T10:00:00Z' });
    expect(ledgerReads).toEqual([]);
    expect(driftOf(await closedWindows(), truth(r))).toEqual({ countDrift: 0, sumsWrong: 0, lost: 0 });
  }, 300_000);

  test('a window start the closer cannot fold within its 3-minute budget is handed to the fan-out, sized from what it read', async () => {
    // GIVEN the construct's threshold, a closer that knows nothing of the window start's size, and a ledger that reads slowly (20 s a query)
    const r = records();
    await ingestAll(r);
    configureThreshold(undefined);
    await seedState(100);
    emu.proxy.setHook((req) => {
      if (req.operation === 'Query' && String(req.body?.ExpressionAttributeValues?.[':pk']?.S).startsWith('L#')) clock.advance(20_000);
      return undefined;
    });

    // WHEN the closer runs, then the workers
    const summary = await closeAt(CLOSABLE);
    emu.proxy.setHook(undefined);
    const job = (await scanAll(emu.client, table)).find((i) => i.pk.S === 'STATE')!.job.M!;
    const handled = await runWorkers();

    // THEN the closer stopped after its budget and fanned the window start out; the workers closed it exactly
    expect(summary).toMatchObject({ fanOut: '2026-11-20T10:00:00Z', windowsClosed: 0 });
    expect(Number(job.ledgerKeys.N)).toBe(64);
    expect(handled.FOLD).toBeGreaterThan(1);
    expect(driftOf(await closedWindows(), truth(r))).toEqual({ countDrift: 0, sumsWrong: 0, lost: 0 });
    expect(eventDetails()).toHaveLength(120);
  }, 300_000);

  test('later window starts wait for the one being fanned out: window starts close in order', async () => {
    // GIVEN records in two consecutive hours, both closable
    clock.set(T0 + 30 * 60_000);
    await ingestAll({ sent: [{ id: 'a', tenantId: 't', metric: 'm', value: 1, timestamp: T0 }], voids: [] });
    clock.set(T0 + 90 * 60_000);
    await ingestAll({ sent: [{ id: 'b', tenantId: 't', metric: 'm', value: 2, timestamp: T0 + HOUR }], voids: [] });
    await seedState(800);

    // WHEN the closer runs once both are closable, before and after the workers
    const first = await closeAt(CLOSABLE + HOUR);
    const waiting = await closeAt(CLOSABLE + HOUR + 5 * 60_000);
    const windowsBefore = await closedWindows();
    await runWorkers();
    const second = await closeAt(CLOSABLE + HOUR + 10 * 60_000);
    await runWorkers();
    const third = await closeAt(CLOSABLE + HOUR + 15 * 60_000);

    // THEN
    expect([first.fanOut, waiting.fanOut, second.fanOut, third.fanOut]).toEqual(['2026-11-20T10:00:00Z', '2026-11-20T10:00:00Z', '2026-11-20T11:00:00Z', undefined]);
    expect(windowsBefore).toEqual([]);
    expect((await closedWindows()).map((w) => [w.windowStart, w.sum])).toEqual([['2026-11-20T10:00:00Z', '1'], ['2026-11-20T11:00:00Z', '2']]);
    expect(third.nextWindowStart).toBe('2026-11-20T12:00:00Z');
  }, 300_000);
});
