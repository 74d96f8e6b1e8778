/**
 * `UsageReader.readTenantClosedWindowPage` against moto: one tenant's closed
 * windows a page at a time, every window exactly once and in order, at a cost
 * bounded by the page (not by the range), and cursors it never returned refused
 * as the caller's mistake.
 */
import { seedClosedWindows, SeedWindow } from './closed-windows';
import { createUsageTable, Emulator, HOUR, startEmulator } from './support';
import { ClosedWindow, UsageReader, UsageReadInputError } from '../../src/ingestor/shared.lambda/usage-reader';

const T0 = Date.parse('2026-11-01T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

let emu: Emulator;
let table: string;

beforeAll(async () => {
  emu = await startEmulator();
});

afterAll(async () => {
  await emu?.stop();
});

beforeEach(async () => {
  table = await createUsageTable(emu.client);
  emu.proxy.clear();
});

function reader(): UsageReader {
  return new UsageReader({ tableName: table, granularity: 'HOUR', allowedLatenessSeconds: 3600, client: emu.client });
}

/** Every page of a tenant's windows, with the page sizes. */
async function allPages(tenantId: string, opts: Parameters<UsageReader['readTenantClosedWindowPage']>[1] = {}) {
  const windows: ClosedWindow[] = [];
  const sizes: number[] = [];
  let cursor: string | undefined;
  for (let n = 0; n < 10_000; n++) {
    const page = await reader().readTenantClosedWindowPage(tenantId, { ...opts, cursor });
    windows.push(...page.windows);
    sizes.push(page.windows.length);
    if (page.cursor === undefined) return { windows, sizes };
    cursor = page.cursor;
  }
  throw new Error('no end');
}

test('pages cover the tenant\'s windows exactly once, by window start then metric, and other tenants\' never', async () => {
  // GIVEN 30 hours of 3 metrics for tenant a, interleaved with tenants b and c in the same window starts
  const seeds: SeedWindow[] = [];
  for (let h = 0; h < 30; h++) {
    for (const tenantId of ['a', 'b', 'c']) {
      for (const metric of ['m3', 'm1', 'm2']) seeds.push({ tenantId, metric, windowStart: iso(T0 + h * HOUR), sum: `${h}.5`, count: h + 1 });
    }
  }
  await seedClosedWindows(emu.client, table, seeds);

  // WHEN read 7 at a time
  const { windows, sizes } = await allPages('a', { limit: 7 });

  // THEN 90 windows, none twice, in order, all of tenant a
  expect(windows).toHaveLength(90);
  expect(new Set(windows.map((w) => w.windowId)).size).toBe(90);
  expect(windows.every((w) => w.tenantId === 'a')).toBe(true);
  const keys = windows.map((w) => `${w.windowStart}|${w.metric}`);
  expect(keys).toEqual([...keys].sort());
  expect(sizes.slice(0, 12)).toEqual(Array(12).fill(7));
  expect(windows[0]).toMatchObject({ windowStart: iso(T0), metric: 'm1', sum: '0.5', count: 1 });
});

test('a range [since, until) on window start and a metric select exactly those windows; bounds off the hour round correctly', async () => {
  const seeds: SeedWindow[] = [];
  for (let h = 0; h < 10; h++) for (const metric of ['x', 'y']) seeds.push({ tenantId: 't', metric, windowStart: iso(T0 + h * HOUR), sum: '1', count: 1 });
  await seedClosedWindows(emu.client, table, seeds);

  const { windows } = await allPages('t', { since: iso(T0 + 2 * HOUR), until: iso(T0 + 5 * HOUR), metric: 'y', limit: 2 });
  expect(windows.map((w) => [w.windowStart, w.metric])).toEqual([2, 3, 4].map((h) => [iso(T0 + h * HOUR), 'y']));

  // since half a second after a window start excludes it; until half a second after one includes it
  const offHour = await allPages('t', { since: new Date(T0 + 2 * HOUR + 500).toISOString(), until: new Date(T0 + 4 * HOUR + 500).toISOString(), metric: 'x' });
  expect(offHour.windows.map((w) => w.windowStart)).toEqual([iso(T0 + 3 * HOUR), iso(T0 + 4 * HOUR)]);
});

test('a page stops at maxWindowStarts over a sparse range: fewer windows (even none) and a cursor, and the next pages go on', async () => {
  // GIVEN 40 window starts of other tenants, tenant s only in the last one
  const seeds: SeedWindow[] = [];
  for (let h = 0; h < 40; h++) seeds.push({ tenantId: 'other', metric: 'm', windowStart: iso(T0 + h * HOUR), sum: '1', count: 1 });
  seeds.push({ tenantId: 's', metric: 'm', windowStart: iso(T0 + 39 * HOUR), sum: '7', count: 1 });
  await seedClosedWindows(emu.client, table, seeds);
  emu.proxy.clear();

  // WHEN the first page may look at 16 window starts
  const first = await reader().readTenantClosedWindowPage('s', { maxWindowStarts: 16 });

  // THEN it is empty but has a cursor, and it read no more than its share of the index and the pages
  expect(first.windows).toEqual([]);
  expect(first.cursor).toBeDefined();
  const queries = emu.proxy.requests.filter((r) => r.operation === 'Query').length;
  expect(queries).toBeLessThanOrEqual(16 + 1);
  const { windows, sizes } = await allPages('s', { maxWindowStarts: 16 });
  expect(windows.map((w) => w.sum)).toEqual(['7']);
  expect(sizes).toEqual([0, 0, 1]);
});

test('cursors it never returned are refused as UsageReadInputError, and so is a time that is not one', async () => {
  const r = reader();
  const encode = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  for (const cursor of ['garbage!', encode({ w: 'yesterday' }), encode({ w: iso(T0), m: 3 }), encode({ w: iso(T0), extra: 1 }), encode([1])]) {
    await expect(r.readTenantClosedWindowPage('t', { cursor })).rejects.toBeInstanceOf(UsageReadInputError);
  }
  await expect(r.readTenantClosedWindowPage('t', { since: 'last week' })).rejects.toThrow(/since "last week" is not an ISO-8601 time/);
  // readClosedWindows refuses a cursor of another shape too, instead of starting over
  await expect(r.readClosedWindows({ cursor: encode({ q: 'x', c: 'y' }) })).rejects.toBeInstanceOf(UsageReadInputError);
  await expect(r.readClosedWindows({ cursor: encode({ w: iso(T0), g: -1 }) })).rejects.toBeInstanceOf(UsageReadInputError);
});
