/**
 * The usage push, bundled as Lambda runs it, against moto and stripe-mock
 * behind the fault-injecting proxy. The proxy's ledger of counted meter events
 * is what Stripe would bill: every assertion about "sent once" is made on it.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand, QueryCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { bundle, captured, closedWindow, emfMetrics, lambdaContext, MemoryUsageReader, startWorld, StripeWorld } from './support';
import type { ClosedWindow } from '../../../src/ingestor/shared.lambda/usage-reader';
import { STRIPE_ENV } from '../../../src/providers/stripe-billing/contract';

type Push = (event: unknown, context?: unknown) => Promise<Record<string, unknown>>;

let world: StripeWorld;
let doc: DynamoDBDocumentClient;
let pushWith: (reader: () => MemoryUsageReader) => Push;
let seq = 0;
let table: string;
let prefix: string;

beforeAll(async () => {
  world = await startWorld();
  doc = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: world.moto.endpoint }));
  pushWith = bundle<{ pushHandler: (r: () => MemoryUsageReader) => Push }>('put-usage').pushHandler;
  // The meters the Stripe setup would have created.
  for (const [id, eventName] of [['mtr_Api', 'api_calls'], ['mtr_Storage', 'storage_mb']]) {
    world.stripe.state.meters.set(id, { id, object: 'billing.meter', event_name: eventName, status: 'active', default_aggregation: { formula: 'sum' } });
  }
});

afterAll(async () => {
  await world?.stop();
});

/** A fresh push table (no markers, no cursor) for each test. */
beforeEach(async () => {
  world.crash.arm(undefined);
  world.stripe.clearRecording();
  table = `push-${++seq}`;
  await world.local.createPushTable(table);
  // The sandbox rate limit of test keys has its own tests (rate-limit.test.ts): here it would only slow the runs.
  world.useFunction('PutUsage', { [STRIPE_ENV.USAGE_PUSH_TABLE_NAME]: table, [STRIPE_ENV.SANDBOX_REQUESTS_PER_SECOND]: '100000' });
  prefix = process.env[STRIPE_ENV.IDENTIFIER_PREFIX]!;
});

/** A tenant with a Stripe customer in the mapping. */
async function seedTenant(status = 'ACTIVE', extra: Record<string, unknown> = {}): Promise<{ tenantId: string; customerId: string }> {
  const tenantId = `t${++seq}x${Date.now() % 100000}`;
  const customerId = `cus_Seed${seq}`;
  await doc.send(new PutCommand({ TableName: world.names.customers, Item: { pk: `TENANT#${tenantId}`, tenantId, status, generation: 1, customerId, ...extra } }));
  return { tenantId, customerId };
}

function hoursAgo(h: number): string {
  return new Date(Math.floor(Date.now() / 3600_000) * 3600_000 - h * 3600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const counted = (w: ClosedWindow) => world.stripe.state.meterEvents.filter((e) => e.identifier === `${prefix}-${w.windowId}`);

async function markers(): Promise<Record<string, Record<string, unknown>>> {
  const items = (await doc.send(new ScanCommand({ TableName: table, ConsistentRead: true }))).Items ?? [];
  return Object.fromEntries(items.filter((i) => String(i.pk).startsWith('WINDOW#')).map((i) => [String(i.pk).slice('WINDOW#'.length), i]));
}

async function pendingItems() {
  return (await doc.send(new QueryCommand({ TableName: table, KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': 'PENDING' }, ConsistentRead: true }))).Items ?? [];
}

function run(reader: MemoryUsageReader, id?: string) {
  return pushWith(() => reader)({ id: 'scheduled' }, lambdaContext(id));
}

describe('push', () => {
  test('each closed window becomes one meter event: deterministic identifier, window start, value by the meter\'s multiplier and rounding', async () => {
    // GIVEN two tenants with windows of two metrics
    const a = await seedTenant();
    const b = await seedTenant();
    const reader = new MemoryUsageReader();
    reader.windows.push(
      closedWindow(a.tenantId, 'apiCalls', hoursAgo(3), '120'),
      closedWindow(a.tenantId, 'storageGb', hoursAgo(3), '1.0004'), // x1000 = 1000.4, rounded UP = 1001
      closedWindow(b.tenantId, 'apiCalls', hoursAgo(2), '7.5'), // HALF_UP = 8
      closedWindow(b.tenantId, 'apiCalls', hoursAgo(3), '0.2'), // rounds to 0: recorded, not sent
    );
    // WHEN the push runs
    const result = await run(reader);
    // THEN Stripe counted one event per non-zero window, with the mapped customer, event name, value and time
    expect(result).toMatchObject({ outcome: 'DONE', SENT: 3, ZERO: 1, windowsRead: 4 });
    const [w1, w2, w3, w4] = reader.windows;
    expect(counted(w1)).toEqual([expect.objectContaining({ eventName: 'api_calls', customer: a.customerId, value: '120', timestamp: Date.parse(w1.windowStart) / 1000 })]);
    expect(counted(w2)).toEqual([expect.objectContaining({ eventName: 'storage_mb', value: '1001' })]);
    expect(counted(w3)).toEqual([expect.objectContaining({ customer: b.customerId, value: '8' })]);
    expect(counted(w4)).toHaveLength(0);
    const m = await markers();
    expect(m[w1.windowId]).toMatchObject({ status: 'SENT', value: '120', identifier: `${prefix}-${w1.windowId}` });
    expect(m[w2.windowId]).toMatchObject({ status: 'SENT', exactValue: '1000.4', value: '1001' });
    expect(m[w4.windowId]).toMatchObject({ status: 'ZERO' });
  });

  test('records through the stack\'s own UsageIngestor (aggregator, closer) reach Stripe through the usage read contract, each window once', async () => {
    // GIVEN a tenant whose records (one resent, one in another window's metric) went through the bundled aggregator
    const a = await seedTenant();
    const at = new Date(Math.floor(Date.now() / 3600_000) * 3600_000).toISOString();
    const failed = await world.ingestor.ingest([
      { id: `${a.tenantId}-r1`, tenantId: a.tenantId, metric: 'apiCalls', value: '40', timestamp: at },
      { id: `${a.tenantId}-r2`, tenantId: a.tenantId, metric: 'apiCalls', value: 2.5, timestamp: at },
      { id: `${a.tenantId}-r2`, tenantId: a.tenantId, metric: 'apiCalls', value: 2.5, timestamp: at },
      { id: `${a.tenantId}-r3`, tenantId: a.tenantId, metric: 'storageGb', value: '0.0004', timestamp: at },
    ]);
    expect(failed).toBe(0);
    try {
      // WHEN the closer closes the hour and the bundled push runs with its real reader
      expect(await world.ingestor.closeWindows()).toBeGreaterThanOrEqual(2);
      world.useFunction('PutUsage', { [STRIPE_ENV.USAGE_PUSH_TABLE_NAME]: table, [STRIPE_ENV.SANDBOX_REQUESTS_PER_SECOND]: '100000' });
      const push = bundle<{ handler: Push }>('put-usage').handler;
      const first = await push({ id: 'e2e-1' }, lambdaContext());
      const second = await push({ id: 'e2e-2' }, lambdaContext());
      // THEN Stripe counted the ledger's sums (the resend once): 42.5 -> 43 (HALF_UP), 0.0004 GB x 1000 -> 1 MB (UP)
      const events = world.stripe.state.meterEvents.filter((e) => e.customer === a.customerId);
      expect(events.map((e) => [e.eventName, e.value, e.timestamp]).sort()).toEqual([
        ['api_calls', '43', Date.parse(at) / 1000],
        ['storage_mb', '1', Date.parse(at) / 1000],
      ]);
      expect(first).toMatchObject({ SENT: 2 });
      expect(second).toMatchObject({ SENT: 0 });
    } finally {
      world.ingestor.restoreClock();
    }
  });

  test('a rerun sends nothing again, within 24 hours and 48 hours later (the pushed markers, not Stripe\'s dedup)', async () => {
    const a = await seedTenant();
    const reader = new MemoryUsageReader();
    reader.windows.push(closedWindow(a.tenantId, 'apiCalls', hoursAgo(5), '3'), closedWindow(a.tenantId, 'apiCalls', hoursAgo(4), '4'));
    await run(reader);
    // The reader forgets its cursor (a new ingestor read from the start): the markers must hold.
    await doc.send(new UpdateCommand({ TableName: table, Key: { pk: 'STATE', sk: 'CURSOR' }, UpdateExpression: 'REMOVE #c', ExpressionAttributeNames: { '#c': 'cursor' } }));
    world.stripe.clearRecording();
    world.stripe.clockOffsetMs += 48 * 3600_000; // Stripe no longer remembers the identifiers
    const again = await run(reader);
    world.stripe.clockOffsetMs -= 48 * 3600_000;
    expect(again).toMatchObject({ SENT: 0, alreadyPushed: 2 });
    expect(world.stripe.recorded('POST', /meter_events/)).toHaveLength(0);
    expect(reader.windows.map((w) => counted(w).length)).toEqual([1, 1]);
  });

  test('429: waits as Retry-After says, and every retry carries the same identifier and Idempotency-Key', async () => {
    const a = await seedTenant();
    const reader = new MemoryUsageReader();
    const w = closedWindow(a.tenantId, 'apiCalls', hoursAgo(2), '5');
    reader.windows.push(w);
    world.stripe.inject({ path: /meter_events/ }, { kind: 'rate-limit', retryAfterSeconds: 1 }, { kind: 'rate-limit', retryAfterSeconds: 1 });
    const started = Date.now();
    await run(reader);
    const attempts = world.stripe.recorded('POST', /meter_events/);
    expect(attempts.map((r) => r.outcome)).toEqual(['rate-limit', 'rate-limit', 'forwarded']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
    expect(new Set(attempts.map((r) => r.form.identifier))).toEqual(new Set([`${prefix}-${w.windowId}`]));
    expect(new Set(attempts.map((r) => r.idempotencyKey)).size).toBe(1);
    expect(counted(w)).toHaveLength(1);
  });

  test('5xx, resets and slow answers: retried with the same identifier; Stripe counts each window once', async () => {
    const a = await seedTenant();
    const reader = new MemoryUsageReader();
    const ws = [1, 2, 3, 4].map((h) => closedWindow(a.tenantId, 'apiCalls', hoursAgo(h + 1), String(h)));
    reader.windows.push(...ws);
    process.env[STRIPE_ENV.REQUEST_TIMEOUT_MS] = '400';
    // One fault per window, in the order the push sends them (one customer and meter: one at a time).
    world.stripe.inject({ path: /meter_events/, when: (f) => f.identifier === `${prefix}-${ws[0].windowId}` }, { kind: 'server-error' }, { kind: 'server-error' });
    world.stripe.inject({ path: /meter_events/, when: (f) => f.identifier === `${prefix}-${ws[1].windowId}` }, { kind: 'reset-after' });
    world.stripe.inject({ path: /meter_events/, when: (f) => f.identifier === `${prefix}-${ws[2].windowId}` }, { kind: 'reset-before' });
    world.stripe.inject({ path: /meter_events/, when: (f) => f.identifier === `${prefix}-${ws[3].windowId}` }, { kind: 'slow', delayMs: 1500 });
    const result = await run(reader);
    expect(result).toMatchObject({ SENT: 4, deferred: 0 });
    for (const w of ws) {
      const attempts = world.stripe.recorded('POST', /meter_events/).filter((r) => r.form.identifier === `${prefix}-${w.windowId}`);
      expect(attempts.length).toBeGreaterThan(1);
      expect(counted(w)).toHaveLength(1);
    }
    // A 5xx is kept by Stripe for its key: the retry after it moves the key on, never the identifier.
    const after500 = world.stripe.recorded('POST', /meter_events/).filter((r) => r.form.identifier === `${prefix}-${ws[0].windowId}`);
    expect(after500.map((r) => r.outcome)).toEqual(['server-error', 'server-error', 'forwarded']);
    expect(new Set(after500.map((r) => r.idempotencyKey)).size).toBe(3);
    // A lost answer is retried with the same key: Stripe's first answer is replayed.
    const lost = world.stripe.recorded('POST', /meter_events/).filter((r) => r.form.identifier === `${prefix}-${ws[1].windowId}`);
    expect(lost.map((r) => r.outcome)).toEqual(['reset-after', 'replayed']);
    expect(new Set(lost.map((r) => r.idempotencyKey)).size).toBe(1);
  });

  test('Stripe holding the identifier already (a lost answer beyond the idempotency window) counts as sent', async () => {
    const a = await seedTenant();
    const reader = new MemoryUsageReader();
    const w = closedWindow(a.tenantId, 'apiCalls', hoursAgo(2), '9');
    reader.windows.push(w);
    // The event was counted by an attempt whose key Stripe has forgotten (different key, same identifier).
    world.stripe.state.meterEvents.push({ identifier: `${prefix}-${w.windowId}`, eventName: 'api_calls', customer: a.customerId, value: '9', timestamp: 0, at: Date.now() });
    const result = await run(reader);
    expect(result).toMatchObject({ SENT: 1 });
    expect(counted(w)).toHaveLength(1);
    expect((await markers())[w.windowId]).toMatchObject({ status: 'SENT', reason: expect.stringMatching(/already held this identifier/) });
  });

  test('a 4xx for one tenant gives that tenant REJECTED and an alarm metric; the others are sent', async () => {
    const bad = await seedTenant();
    const good = await seedTenant();
    const reader = new MemoryUsageReader();
    reader.windows.push(closedWindow(bad.tenantId, 'apiCalls', hoursAgo(2), '1'), closedWindow(good.tenantId, 'apiCalls', hoursAgo(2), '2'));
    world.stripe.inject({ path: /meter_events/, when: (f) => f['payload[stripe_customer_id]'] === bad.customerId },
      { kind: 'refuse', message: `No such customer: '${bad.customerId}'` });
    const { result, output, error } = await captured(() => run(reader));
    expect(error).toBeUndefined();
    expect(result).toMatchObject({ SENT: 1, REJECTED: 1 });
    expect(counted(reader.windows[1])).toHaveLength(1);
    expect((await markers())[reader.windows[0].windowId]).toMatchObject({ status: 'REJECTED', reason: expect.stringMatching(/No such customer/) });
    expect(emfMetrics(output)).toMatchObject({ WindowsRejected: 1, WindowsSent: 1 });
  });

  test('an operator redrives a REJECTED window once the cause is fixed: it is sent, once', async () => {
    const a = await seedTenant();
    const reader = new MemoryUsageReader();
    const w = closedWindow(a.tenantId, 'apiCalls', hoursAgo(2), '3');
    reader.windows.push(w);
    world.stripe.inject({ path: /meter_events/ }, { kind: 'refuse', message: 'This customer has no active subscription to a price on this meter' });
    expect(await run(reader)).toMatchObject({ REJECTED: 1 });
    const redriven = await pushWith(() => reader)({ redriveWindowIds: [w.windowId, 'no-such-window'] }, lambdaContext());
    expect(redriven).toMatchObject({ SENT: 1, redriven: { [w.windowId]: 'redriven from REJECTED', 'no-such-window': expect.stringMatching(/^not redriven/) } });
    expect(counted(w)).toHaveLength(1);
    expect(await pendingItems()).toHaveLength(0);
    expect(await run(reader)).toMatchObject({ SENT: 0 });
  });

  test('a window older than Stripe accepts (35 days) gets TOO_OLD and an alarm metric, never a request', async () => {
    const a = await seedTenant();
    const reader = new MemoryUsageReader();
    reader.windows.push(closedWindow(a.tenantId, 'apiCalls', hoursAgo(36 * 24), '1'));
    // The push has not run for 36 days: its stored cursor still points before that window.
    await doc.send(new PutCommand({ TableName: table, Item: { pk: 'STATE', sk: 'CURSOR', cursor: '0' } }));
    const { result, output } = await captured(() => run(reader));
    expect(result).toMatchObject({ TOO_OLD: 1, SENT: 0 });
    expect(world.stripe.recorded('POST', /meter_events/)).toHaveLength(0);
    expect((await markers())[reader.windows[0].windowId]).toMatchObject({ status: 'TOO_OLD', exactValue: '1' });
    expect(emfMetrics(output)).toMatchObject({ WindowsTooOld: 1 });
  });

  test('dispositions without a request: metric without meter, value beyond 15 digits, tenant offboarded', async () => {
    const a = await seedTenant();
    const gone = await seedTenant('OFFBOARDED', { cancellation: 'IMMEDIATELY', offboardedAt: hoursAgo(10) });
    const reader = new MemoryUsageReader();
    reader.windows.push(
      closedWindow(a.tenantId, 'cpuSeconds', hoursAgo(2), '10'),
      closedWindow(a.tenantId, 'storageGb', hoursAgo(2), '9999999999999'), // x1000: 16 digits
      closedWindow(gone.tenantId, 'apiCalls', hoursAgo(2), '3'),
    );
    const result = await run(reader);
    expect(result).toMatchObject({ NO_METER: 1, REJECTED: 1, AFTER_OFFBOARDING: 1, SENT: 0 });
    expect(world.stripe.recorded('POST', /meter_events/)).toHaveLength(0);
    const m = await markers();
    expect(m[reader.windows[1].windowId].reason).toMatch(/more than 15 digits/);
  });

  test('rounding without loss: 720 hourly windows of 0.4 in one billing period bill 288 (the rounding of the total), not 720 roundings of 0.4 to 0', async () => {
    // GIVEN a tenant whose subscription period holds the last 30 days, and 0.4 api calls an hour (HALF_UP)
    const periodStart = new Date(Math.floor(Date.now() / 3600_000) * 3600_000 - 31 * 24 * 3600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const periodEnd = new Date(Date.parse(periodStart) + 40 * 24 * 3600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const a = await seedTenant('ACTIVE', { subscriptionId: 'sub_Rounding', subscriptionStartedAt: periodStart, periodStart, periodEnd, currency: 'usd' });
    const reader = new MemoryUsageReader();
    for (let h = 720; h >= 1; h--) reader.windows.push(closedWindow(a.tenantId, 'apiCalls', hoursAgo(h), '0.4'));
    // WHEN the push sends them (in two runs, as the windows close)
    const firstHours = new MemoryUsageReader();
    firstHours.windows = reader.windows.slice(0, 400);
    const first = await run(firstHours);
    const second = await run(reader);
    // THEN Stripe counted 288 in all: each window sent its share of the period's rounded total, the rest were ZERO
    const events = world.stripe.state.meterEvents.filter((e) => e.customer === a.customerId);
    expect(events.reduce((sum, e) => sum + Number(e.value), 0)).toBe(288);
    expect(events.every((e) => e.value === '1')).toBe(true);
    expect(Number(first.SENT) + Number(second.SENT)).toBe(288);
    expect(Number(first.ZERO) + Number(second.ZERO)).toBe(720 - 288);
    // AND the carry and the period's reconciliation record hold the exact total
    const carry = (await doc.send(new QueryCommand({ TableName: table, KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': `CARRY#${a.tenantId}` } }))).Items;
    expect(carry).toEqual([expect.objectContaining({ sk: `api_calls#${periodStart}`, exact: '288', units: '288' })]);
    const record = (await doc.send(new QueryCommand({ TableName: table, KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': `RECON#${a.tenantId}` } }))).Items;
    expect(record).toEqual([expect.objectContaining({ sk: `apiCalls#${periodStart}`, status: 'OPEN' })]);
    expect(String(record![0].metered)).toBe('288');
    expect(String(record![0].sent)).toBe('288');
  }, 600_000);

  test('a tenant without a customer yet: the window waits in PENDING and is sent by a later run', async () => {
    const tenantId = `t-late-${Date.now()}`;
    const reader = new MemoryUsageReader();
    const w = closedWindow(tenantId, 'apiCalls', hoursAgo(2), '6');
    reader.windows.push(w);
    expect(await run(reader)).toMatchObject({ deferred: 1, SENT: 0 });
    expect(await pendingItems()).toHaveLength(1);
    await doc.send(new PutCommand({ TableName: world.names.customers, Item: { pk: `TENANT#${tenantId}`, tenantId, status: 'ACTIVE', generation: 1, customerId: 'cus_Late1' } }));
    expect(await run(reader)).toMatchObject({ SENT: 1, deferred: 0 });
    expect(await pendingItems()).toHaveLength(0);
    expect(counted(w)).toHaveLength(1);
  });

  test('one call at a time per customer and meter, several pairs in parallel', async () => {
    const tenants = await Promise.all([1, 2, 3, 4].map(() => seedTenant()));
    const reader = new MemoryUsageReader();
    for (const t of tenants) for (let h = 2; h < 8; h++) reader.windows.push(closedWindow(t.tenantId, 'apiCalls', hoursAgo(h), '1'), closedWindow(t.tenantId, 'storageGb', hoursAgo(h), '1'));
    world.stripe.inject({ path: /meter_events/ }, ...Array.from({ length: 48 }, () => ({ kind: 'slow' as const, delayMs: 20 })));
    expect(await run(reader)).toMatchObject({ SENT: 48 });
    expect(world.stripe.maxConcurrentPerCustomerMeter).toBe(1);
    expect(world.stripe.maxConcurrentMeterEvents).toBeGreaterThan(1);
  });

  test('a run that finds another holding the lease does nothing', async () => {
    const a = await seedTenant();
    const reader = new MemoryUsageReader();
    reader.windows.push(closedWindow(a.tenantId, 'apiCalls', hoursAgo(2), '1'));
    await doc.send(new PutCommand({ TableName: table, Item: { pk: 'STATE', sk: 'LEASE', owner: 'other', expiresAt: Math.floor(Date.now() / 1000) + 600 } }));
    expect(await run(reader)).toMatchObject({ outcome: 'ANOTHER_RUN_HOLDS_THE_LEASE' });
    expect(world.stripe.recorded('POST', /meter_events/)).toHaveLength(0);
  });
});

describe('killed at every request in turn, then rerun', () => {
  /** Windows of two tenants, two metrics, two hours. */
  async function scenario() {
    const tenants = [await seedTenant(), await seedTenant()];
    const reader = new MemoryUsageReader();
    for (const t of tenants) for (const h of [2, 3]) reader.windows.push(closedWindow(t.tenantId, 'apiCalls', hoursAgo(h), String(h)), closedWindow(t.tenantId, 'storageGb', hoursAgo(h), `0.00${h}`));
    return reader;
  }

  async function requestsOfACleanRun(): Promise<number> {
    const reader = await scenario();
    world.crash.arm(undefined);
    await run(reader);
    return world.crash.requests;
  }

  /** Ages everything a crashed run left: its attempts 48 hours older, its lease expired, Stripe 48 hours on. */
  async function twoDaysLater() {
    const items = (await doc.send(new ScanCommand({ TableName: table, ConsistentRead: true }))).Items ?? [];
    for (const item of items) {
      if (item.firstAttemptAt) {
        await doc.send(new UpdateCommand({
          TableName: table,
          Key: { pk: item.pk, sk: item.sk },
          UpdateExpression: 'SET firstAttemptAt = :t',
          ExpressionAttributeValues: { ':t': new Date(Date.parse(String(item.firstAttemptAt)) - 48 * 3600_000).toISOString() },
        }));
      }
      if (item.sk === 'LEASE') await doc.send(new UpdateCommand({ TableName: table, Key: { pk: item.pk, sk: item.sk }, UpdateExpression: 'SET expiresAt = :t', ExpressionAttributeValues: { ':t': 0 } }));
    }
    world.stripe.clockOffsetMs += 48 * 3600_000;
  }

  async function matrix(later: boolean) {
    const n = await requestsOfACleanRun();
    const figures = { requestsPerRun: n, crashPoints: 0, sentTwice: 0, dropped: 0, uncertain: 0, wrongValue: 0 };
    for (let k = 1; k <= n; k++) {
      table = `push-m${later ? 'l' : 's'}-${k}-${++seq}`;
      await world.local.createPushTable(table);
      process.env[STRIPE_ENV.USAGE_PUSH_TABLE_NAME] = table;
      const reader = await scenario();
      world.crash.arm(k);
      await captured(() => run(reader, `crashed-${k}`));
      world.crash.arm(undefined);
      if (later) await twoDaysLater();
      await captured(() => run(reader, later ? `next-day-${k}` : `crashed-${k}`)); // a Lambda retry keeps its request id
      world.stripe.clockOffsetMs = 0;
      figures.crashPoints++;
      const m = await markers();
      for (const w of reader.windows) {
        const events = counted(w);
        const status = m[w.windowId]?.status;
        if (events.length > 1) figures.sentTwice++;
        if (status === 'UNCERTAIN') figures.uncertain++;
        else if (events.length !== 1 || status !== 'SENT') figures.dropped++;
        if (events.length === 1 && events[0].value !== m[w.windowId]?.value) figures.wrongValue++;
      }
    }
    return figures;
  }

  test('rerun within 24 hours (a Lambda retry): every window counted exactly once', async () => {
    const figures = await matrix(false);
    console.log(`push crash matrix, rerun within 24 h: ${JSON.stringify(figures)}`);
    expect(figures).toMatchObject({ sentTwice: 0, dropped: 0, uncertain: 0, wrongValue: 0 });
    expect(figures.crashPoints).toBeGreaterThan(20);
  });

  test('rerun 48 hours later (Stripe has forgotten keys and identifiers): every window counted exactly once, interrupted sends settled from the meter\'s event summaries', async () => {
    const figures = await matrix(true);
    console.log(`push crash matrix, rerun after 48 h: ${JSON.stringify(figures)}`);
    expect(figures).toMatchObject({ sentTwice: 0, dropped: 0, uncertain: 0, wrongValue: 0 });
  });

  test('an interrupted send that Stripe\'s summary cannot settle (other events on the meter) becomes UNCERTAIN with an alarm metric, never a resend', async () => {
    const a = await seedTenant();
    const reader = new MemoryUsageReader();
    const w = closedWindow(a.tenantId, 'apiCalls', hoursAgo(30), '4');
    reader.windows.push(w);
    // An attempt 2 days ago left the window SENDING; someone else sent 10 for this customer and hour.
    await doc.send(new PutCommand({ TableName: table, Item: { pk: `WINDOW#${w.windowId}`, sk: 'MARKER', status: 'SENDING', firstAttemptAt: new Date(Date.now() - 48 * 3600_000).toISOString() } }));
    world.stripe.state.meterEvents.push({ identifier: 'elsewhere-1', eventName: 'api_calls', customer: a.customerId, value: '10', timestamp: Date.parse(w.windowStart) / 1000, at: 0 });
    const { result, output } = await captured(() => run(reader));
    expect(result).toMatchObject({ UNCERTAIN: 1, SENT: 0 });
    expect(world.stripe.recorded('POST', /meter_events/)).toHaveLength(0);
    expect(emfMetrics(output)).toMatchObject({ WindowsUncertain: 1 });
  });
});
