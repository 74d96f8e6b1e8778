/**
 * The usage API's handler, bundled as Lambda runs it, against moto behind the
 * recording proxy: every route on both payload formats, paging over more than
 * 10,000 windows, exact decimals from the record's text to the response, tenant
 * isolation for tenant tokens, and the 4xx answers to bad input.
 */
import { bodyOf, Caller, configureApi, httpEvent, IAM, Request, Response, restEvent, tokenOf, usageApiHandler } from './support';
import { USAGE_READER_ENV } from '../../src/ingestor/ingestor-contract';
import { seedClosedWindows, SeedWindow } from '../ingestor/closed-windows';
import {
  CLOSING_MARGIN_SECONDS, createUsageTable, Emulator, HOUR, kinesisEvent, lambdaContext, startEmulator, TestClock, toRecords,
} from '../ingestor/support';

const T0 = Date.parse('2026-11-01T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

let emu: Emulator;
let clock: TestClock;
let handler: (event: unknown) => Promise<Response>;
let table: string;

beforeAll(async () => {
  emu = await startEmulator();
  clock = new TestClock(T0);
  handler = usageApiHandler();
});

afterAll(async () => {
  clock?.restore();
  await emu?.stop();
});

beforeEach(async () => {
  clock.set(Date.parse('2026-11-20T12:00:00Z'));
  table = await createUsageTable(emu.client);
  configureApi();
  emu.proxy.clear();
});

const get = (r: Request) => handler(httpEvent(r));
const getRest = (r: Request) => handler(restEvent(r));

/** Every page of a paged route, following nextCursor. */
async function pages(r: Request, maxPages = 1000): Promise<{ windows: any[]; sizes: number[] }> {
  const windows: any[] = [];
  const sizes: number[] = [];
  let cursor: string | null = null;
  for (let n = 0; n < maxPages; n++) {
    const res = await get({ ...r, query: { ...r.query, ...(cursor ? { cursor } : {}) } });
    expect(res.statusCode).toBe(200);
    const body = bodyOf(res);
    windows.push(...body.windows);
    sizes.push(body.windows.length);
    if (body.nextCursor === null || (r.route === 'FEED' && body.windows.length === 0)) return { windows, sizes };
    cursor = body.nextCursor;
  }
  throw new Error('too many pages');
}

function seedsOf(tenantId: string, hours: number, metrics: string[], sum = (h: number, m: number) => `${h}.${m}`): SeedWindow[] {
  const seeds: SeedWindow[] = [];
  for (let h = 0; h < hours; h++) {
    metrics.forEach((metric, m) => seeds.push({ tenantId, metric, windowStart: iso(T0 + h * HOUR), sum: sum(h, m), count: h + m + 1 }));
  }
  return seeds;
}

describe('every route (IAM)', () => {
  test('GET /usage/tenants/{tenantId}/windows: the tenant\'s closed windows only, by range and metric, sums as exact strings', async () => {
    // GIVEN closed windows of two tenants over 6 hours
    await seedClosedWindows(emu.client, table, [
      ...seedsOf('tenant-a', 6, ['apiCalls', 'storageGb'], (h) => (h === 2 ? '123456789012345.123456789' : `${h}.5`)),
      ...seedsOf('tenant-b', 6, ['apiCalls'], () => '777.777'),
    ]);

    // WHEN the whole history, then hours 2 to 4 of one metric
    const all = await pages({ route: 'TENANT_WINDOWS', tenantId: 'tenant-a', caller: IAM });
    const some = await get({ route: 'TENANT_WINDOWS', tenantId: 'tenant-a', caller: IAM, query: { from: iso(T0 + 2 * HOUR), to: iso(T0 + 5 * HOUR), metric: 'apiCalls' } });

    // THEN
    expect(all.windows).toHaveLength(12);
    expect(all.windows.every((w) => w.tenantId === 'tenant-a')).toBe(true);
    const body = bodyOf(some);
    expect(body).toEqual({
      tenantId: 'tenant-a',
      nextCursor: null,
      windows: [2, 3, 4].map((h) => ({
        tenantId: 'tenant-a',
        metric: 'apiCalls',
        granularity: 'HOUR',
        windowStart: iso(T0 + h * HOUR),
        windowEnd: iso(T0 + (h + 1) * HOUR),
        closedAt: expect.any(String),
        sum: h === 2 ? '123456789012345.123456789' : `${h}.5`,
        count: h + 1,
        windowId: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      })),
    });
    // the digits travel as a JSON string, never as a number
    expect(some.body).toContain('"sum":"123456789012345.123456789"');
  });

  test('GET /usage/tenants/{tenantId}/open and then /windows: records in, running totals exact, the same sums once closed', async () => {
    // GIVEN records of the current hour, with values whose sum a binary float cannot hold
    const now = Date.parse('2026-11-20T12:10:00Z');
    clock.set(now);
    const ts = new Date(now - 5 * 60_000).toISOString();
    await emu.aggregate(kinesisEvent(toRecords([
      { id: 'r1', tenantId: 'tenant-a', metric: 'apiCalls', value: '123456789012345.123456789', timestamp: ts },
      { id: 'r2', tenantId: 'tenant-a', metric: 'apiCalls', value: '0.000000001', timestamp: ts },
      { id: 'r3', tenantId: 'tenant-a', metric: 'storageGb', value: '12.3456', timestamp: ts },
      { id: 'r4', tenantId: 'tenant-b', metric: 'apiCalls', value: '777.777', timestamp: ts },
    ])), lambdaContext());

    // WHEN the open totals are read, for every metric and for one
    const open = bodyOf(await get({ route: 'OPEN_TOTALS', tenantId: 'tenant-a', caller: IAM }));
    const one = bodyOf(await get({ route: 'OPEN_TOTALS', tenantId: 'tenant-a', caller: IAM, query: { metric: 'storageGb' } }));

    // THEN
    expect(open.tenantId).toBe('tenant-a');
    expect(open.asOf).toBe(new Date(now).toISOString());
    expect(open.windows.map((w: any) => [w.metric, w.sum, w.count, w.windowStart, w.closesAt])).toEqual([
      ['apiCalls', '123456789012345.12345679', 2, '2026-11-20T12:00:00Z', '2026-11-20T14:00:00Z'],
      ['storageGb', '12.3456', 1, '2026-11-20T12:00:00Z', '2026-11-20T14:00:00Z'],
    ]);
    expect(one.windows.map((w: any) => w.metric)).toEqual(['storageGb']);

    // WHEN the window closes
    clock.set(Date.parse('2026-11-20T14:00:00Z') + CLOSING_MARGIN_SECONDS * 1000 + 1000);
    await emu.close({}, lambdaContext());
    const closed = bodyOf(await get({ route: 'TENANT_WINDOWS', tenantId: 'tenant-a', caller: IAM }));
    const openAfter = bodyOf(await get({ route: 'OPEN_TOTALS', tenantId: 'tenant-a', caller: IAM }));

    // THEN the closed sums are the running ones, and nothing is open any more
    expect(closed.windows.map((w: any) => [w.metric, w.sum, w.count])).toEqual([['apiCalls', '123456789012345.12345679', 2], ['storageGb', '12.3456', 1]]);
    expect(openAfter.windows).toEqual([]);
  });

  test('GET /usage/windows: the closed-window feed, every tenant, page after page; an empty page keeps the cursor', async () => {
    await seedClosedWindows(emu.client, table, [...seedsOf('tenant-a', 3, ['m1', 'm2']), ...seedsOf('tenant-b', 3, ['m1'])]);
    const { windows, sizes } = await pages({ route: 'FEED', caller: IAM, query: { limit: '4' } });
    expect(windows).toHaveLength(9);
    expect(new Set(windows.map((w) => w.windowId)).size).toBe(9);
    expect(sizes).toEqual([4, 4, 1, 0]);
    const first = bodyOf(await get({ route: 'FEED', caller: IAM, query: { limit: '100' } }));
    const again = bodyOf(await get({ route: 'FEED', caller: IAM, query: { cursor: first.nextCursor } }));
    expect(again).toEqual({ windows: [], nextCursor: first.nextCursor });
    // since: windows closed at or after it
    const later = bodyOf(await get({ route: 'FEED', caller: IAM, query: { since: new Date(Date.now() + 60_000).toISOString() } }));
    expect(later.windows).toEqual([]);
  });

  test('the REST API payload (1.0) gets the same answers as the HTTP API payload (2.0)', async () => {
    await seedClosedWindows(emu.client, table, seedsOf('tenant-a', 3, ['m1']));
    for (const r of [
      { route: 'TENANT_WINDOWS', tenantId: 'tenant-a', caller: IAM, query: { limit: '2' } },
      { route: 'OPEN_TOTALS', tenantId: 'tenant-a', caller: IAM },
      { route: 'FEED', caller: IAM },
    ] as Request[]) {
      const http = await get(r);
      const rest = await getRest(r);
      expect(rest.statusCode).toBe(200);
      expect({ ...bodyOf(rest), asOf: undefined }).toEqual({ ...bodyOf(http), asOf: undefined });
    }
  });

  test('a configured prefix serves its own routes; another prefix\'s route key is a 404', async () => {
    configureApi({ prefix: '/billing/usage' });
    expect((await get({ route: 'FEED', caller: IAM, prefix: '/billing/usage' })).statusCode).toBe(200);
    const res = await get({ route: 'FEED', caller: IAM });
    expect(res.statusCode).toBe(404);
    expect(bodyOf(res)).toEqual({ code: 'NotFound', message: 'no such usage API route' });
  });

  test('the store failing is thrown (Lambda counts an error, API Gateway answers 500 without details)', async () => {
    process.env[USAGE_READER_ENV.TABLE_NAME] = 'no-such-table';
    await expect(get({ route: 'TENANT_WINDOWS', tenantId: 'tenant-a', caller: IAM })).rejects.toThrow(/not found|ResourceNotFound|non-existent/i);
  });
});

describe('paging', () => {
  test('10,050 windows of one tenant among another\'s, 1,000 a page: 11 pages, every window once, none of the other tenant, in order', async () => {
    // GIVEN 201 hours x 50 metrics of tenant big, and tenant small in the same window starts
    const metrics = Array.from({ length: 50 }, (_, i) => `metric-${String(i).padStart(2, '0')}`);
    const big = seedsOf('big', 201, metrics, (h, m) => `${h}.${String(m).padStart(2, '0')}1`);
    await seedClosedWindows(emu.client, table, [...big, ...seedsOf('small', 201, ['x'])]);
    emu.proxy.clear();

    // WHEN paged
    const started = performance.now();
    const { windows, sizes } = await pages({ route: 'TENANT_WINDOWS', tenantId: 'big', caller: IAM, query: { limit: '1000' } });
    const requests = emu.proxy.requests.filter((r) => r.operation === 'Query').length;

    // THEN no gap, no repeat, the right sums, in order
    expect(sizes).toEqual([...Array(10).fill(1000), 50]);
    expect(windows).toHaveLength(10_050);
    expect(new Set(windows.map((w) => w.windowId)).size).toBe(10_050);
    const expected = new Map(big.map((s) => [`${s.windowStart}|${s.metric}`, s.sum]));
    expect(windows.every((w) => expected.get(`${w.windowStart}|${w.metric}`) === w.sum)).toBe(true);
    expect(new Set(windows.map((w) => `${w.windowStart}|${w.metric}`))).toEqual(new Set(expected.keys()));
    const order = windows.map((w) => `${w.windowStart}|${w.metric}`);
    expect(order).toEqual([...order].sort());
    expect(windows.some((w) => w.tenantId !== 'big')).toBe(false);
    // a page reads what it returns: about one index item and one group query per window start
    expect(requests).toBeLessThan(11 * 30);
    console.log(`10,050 windows in 11 pages: ${requests} Query requests, ${Math.round(performance.now() - started)} ms against moto`);
  }, 120_000);

  test('paging a range and a metric with an odd page size: no gap, no repeat', async () => {
    await seedClosedWindows(emu.client, table, seedsOf('t', 40, ['a', 'b', 'c']));
    const { windows } = await pages({
      route: 'TENANT_WINDOWS', tenantId: 't', caller: IAM, query: { from: iso(T0 + 3 * HOUR), to: iso(T0 + 31 * HOUR), metric: 'b', limit: '3' },
    });
    expect(windows.map((w) => w.windowStart)).toEqual(Array.from({ length: 28 }, (_, i) => iso(T0 + (i + 3) * HOUR)));
  });
});

describe('tenant isolation (tenant tokens)', () => {
  const SECRET_SUM = '777.777';
  beforeEach(async () => {
    configureApi({ mode: 'TENANT_TOKEN', claim: 'custom:tenantId' });
    await seedClosedWindows(emu.client, table, [...seedsOf('tenant-a', 2, ['apiCalls'], () => '1.5'), ...seedsOf('tenant-b', 2, ['apiCalls'], () => SECRET_SUM)]);
  });

  /** A refusal that tells nothing of tenant B. */
  function expectRefused(res: Response, status = 403) {
    expect(res.statusCode).toBe(status);
    const body = bodyOf(res);
    expect(body.code).toBe(status === 403 ? 'Forbidden' : 'InvalidRequest');
    expect(res.body).not.toMatch(/tenant-b|777/i);
    expect(body.windows).toBeUndefined();
  }

  test('a token reads its own tenant\'s windows and open totals, and nothing of another tenant', async () => {
    const res = await get({ route: 'TENANT_WINDOWS', tenantId: 'tenant-a', caller: tokenOf('tenant-a') });
    expect(bodyOf(res).windows.map((w: any) => [w.tenantId, w.sum])).toEqual([['tenant-a', '1.5'], ['tenant-a', '1.5']]);
    expect((await get({ route: 'OPEN_TOTALS', tenantId: 'tenant-a', caller: tokenOf('tenant-a') })).statusCode).toBe(200);
  });

  const A = tokenOf('tenant-a');
  test.each([
    ['another tenant in the path', { tenantId: 'tenant-b' }],
    ['a decoded %2F path traversal (API Gateway decodes the path)', { tenantId: 'tenant-a/../tenant-b' }],
    ['an undecoded %2F path traversal', { tenantId: 'tenant-a%2F..%2Ftenant-b' }],
    ['a decoded %23 separator', { tenantId: 'tenant-a#tenant-b' }],
    ['an undecoded %23 separator', { tenantId: 'tenant-a%23tenant-b' }],
    ['an upper-case variant of its own tenant', { tenantId: 'TENANT-A' }],
    ['a mixed-case variant of its own tenant', { tenantId: 'Tenant-a' }],
    ['its tenant with a trailing space', { tenantId: 'tenant-a ' }],
    ['its tenant with a trailing encoded null', { tenantId: 'tenant-a%00' }],
    ['another tenant in the query (tenantId)', { tenantId: 'tenant-a', query: { tenantId: 'tenant-b' } }],
    ['another tenant in the query (TenantID)', { tenantId: 'tenant-a', query: { TenantID: 'tenant-b' } }],
    ['another tenant in the query (tenant_id)', { tenantId: 'tenant-a', query: { tenant_id: 'tenant-b' } }],
    ['another tenant in the query (tenant)', { tenantId: 'tenant-a', query: { tenant: 'tenant-b' } }],
    ['its tenant and another, the same query parameter twice', { tenantId: 'tenant-a', query: { tenantId: ['tenant-a', 'tenant-b'] } }],
    ['a case variant in the query', { tenantId: 'tenant-a', query: { tenantId: 'TENANT-A' } }],
  ] as Array<[string, Partial<Request>]>)('a token for tenant-a asking through %s gets 403, on both routes and both payloads', async (_name, ask) => {
    for (const route of ['TENANT_WINDOWS', 'OPEN_TOTALS'] as const) {
      expectRefused(await get({ route, caller: A, ...ask } as Request));
      expectRefused(await getRest({ route, caller: A, ...ask } as Request));
    }
  });

  test.each([
    ['no tenant claim', { jwt: { sub: 'user-1' } }],
    ['the claim under another case (custom:TenantId)', { jwt: { 'custom:TenantId': 'tenant-a' } }],
    ['a claim that is not a tenant id', { jwt: { 'custom:tenantId': 'tenant a' } }],
    ['an empty claim', { jwt: { 'custom:tenantId': '' } }],
    ['an AWS identity (SigV4) on a tenant route', IAM],
    ['no authorizer at all', { none: true }],
  ] as Array<[string, Caller]>)('a request with %s gets 403 on the tenant routes', async (_name, caller) => {
    expectRefused(await get({ route: 'TENANT_WINDOWS', tenantId: 'tenant-a', caller }));
    expectRefused(await get({ route: 'OPEN_TOTALS', tenantId: 'tenant-a', caller }));
  });

  test('the feed is not for tenant tokens: 403 with a token, 200 with SigV4', async () => {
    expectRefused(await get({ route: 'FEED', caller: A }));
    expectRefused(await getRest({ route: 'FEED', caller: A }));
    expect((await get({ route: 'FEED', caller: IAM })).statusCode).toBe(200);
  });

  test('a Lambda authorizer\'s context and a REST Cognito authorizer\'s claims isolate alike', async () => {
    const lambdaA: Caller = { lambda: { 'custom:tenantId': 'tenant-a' } };
    expect((await get({ route: 'TENANT_WINDOWS', tenantId: 'tenant-a', caller: lambdaA })).statusCode).toBe(200);
    expectRefused(await get({ route: 'TENANT_WINDOWS', tenantId: 'tenant-b', caller: lambdaA }));
    expect((await getRest({ route: 'TENANT_WINDOWS', tenantId: 'tenant-a', caller: lambdaA })).statusCode).toBe(200);
    expectRefused(await getRest({ route: 'TENANT_WINDOWS', tenantId: 'tenant-b', caller: lambdaA }));
    expect((await getRest({ route: 'TENANT_WINDOWS', tenantId: 'tenant-a', caller: A })).statusCode).toBe(200);
  });

  test('another tenant\'s cursor on one\'s own path is refused (400) and returns nothing of it', async () => {
    const bPage = bodyOf(await get({ route: 'TENANT_WINDOWS', tenantId: 'tenant-b', caller: tokenOf('tenant-b'), query: { limit: '1' } }));
    expect(bPage.nextCursor).toEqual(expect.any(String));
    const res = await get({ route: 'TENANT_WINDOWS', tenantId: 'tenant-a', caller: A, query: { limit: '1', cursor: bPage.nextCursor } });
    expectRefused(res, 400);
    expect(bodyOf(res).message).toMatch(/cursor belongs to another request/);
  });

  test('a configured claim name is the one read', async () => {
    configureApi({ mode: 'TENANT_TOKEN', claim: 'tenant_id' });
    expect((await get({ route: 'TENANT_WINDOWS', tenantId: 'tenant-a', caller: tokenOf('tenant-a', 'tenant_id') })).statusCode).toBe(200);
    expectRefused(await get({ route: 'TENANT_WINDOWS', tenantId: 'tenant-a', caller: tokenOf('tenant-a') }));
  });

  test('with IAM authorization, a token is refused on every route (the handler checks what the route should have had)', async () => {
    configureApi({ mode: 'IAM' });
    expectRefused(await get({ route: 'TENANT_WINDOWS', tenantId: 'tenant-a', caller: A }));
    expectRefused(await get({ route: 'FEED', caller: A }));
  });
});

describe('bad input gets a 4xx with a clear JSON message', () => {
  beforeEach(async () => {
    await seedClosedWindows(emu.client, table, seedsOf('tenant-a', 3, ['apiCalls']));
  });

  async function refusal(r: Request): Promise<string> {
    const res = await get(r);
    expect(res.statusCode).toBe(400);
    const body = bodyOf(res);
    expect(body.code).toBe('InvalidRequest');
    return body.message;
  }

  const windows = (query: Record<string, string | string[]>, tenantId = 'tenant-a'): Request => ({ route: 'TENANT_WINDOWS', tenantId, caller: IAM, query });

  test.each([
    ['a tenant id with a space', windows({}, 'tenant 1'), /tenant id in the path must be 1 to 128 characters of ASCII letters, digits and _ - \. : @ \+ = .*no tenant can have usage under it/],
    ['a tenant id of non-ASCII', windows({}, 'ténant'), /tenant id in the path must be/],
    ['a tenant id of ..', windows({}, '..'), /not '\.' or '\.\.'/],
    ['a from that is not a time', windows({ from: 'yesterday' }), /^from must be an ISO-8601 time with a time zone, such as 2026-11-01T00:00:00Z \(given "yesterday"\); URL-encode it \(a \+ offset as %2B\)$/],
    ['a from without a time zone', windows({ from: '2026-11-01T00:00:00' }), /^from must be an ISO-8601 time/],
    ['a date that does not exist', windows({ to: '2026-02-30T00:00:00Z' }), /^to must be an ISO-8601 time/],
    ['from after to', windows({ from: '2026-11-02T00:00:00Z', to: '2026-11-01T00:00:00Z' }), /^from must be before to \(given from "2026-11-02T00:00:00Z", to "2026-11-01T00:00:00Z"\): the range is \[from, to\) on window start$/],
    ['from equal to to', windows({ from: '2026-11-01T00:00:00Z', to: '2026-11-01T00:00:00Z' }), /^from must be before to/],
    ['an oversized page', windows({ limit: '1001' }), /^limit must be a whole number from 1 to 1000 \(given "1001"\): read more windows page by page, passing each response's nextCursor as cursor$/],
    ['a page of 0', windows({ limit: '0' }), /^limit must be a whole number from 1 to 1000/],
    ['a fractional page', windows({ limit: '1.5' }), /^limit must be a whole number/],
    ['a metric with a space', windows({ metric: 'api calls' }), /^metric must be 1 to 128 characters .*\(given "api calls"\); URL-encode it$/],
    ['a malformed cursor', windows({ cursor: 'not-a-cursor!' }), /^cursor is not one this API returned: pass a response's nextCursor unchanged, or leave cursor out to start at the beginning$/],
    ['a cursor of base64 JSON of another shape', windows({ cursor: Buffer.from('{"w":1}').toString('base64url') }), /^cursor is not one this API returned/],
    ['an unknown parameter', windows({ start: '2026-11-01T00:00:00Z' }), /^unknown query parameter "start": this route takes from, to, metric, limit, cursor$/],
    ['a parameter given twice', windows({ limit: ['10', '20'] }), /^query parameter limit is given more than once or holds a comma: give it once$/],
    ['an empty parameter', windows({ metric: '' }), /^query parameter metric is empty/],
    ['since and cursor together on the feed', { route: 'FEED', caller: IAM, query: { since: '2026-11-01T00:00:00Z', cursor: 'x' } }, /^give since or cursor, not both/],
    ['a malformed feed cursor', { route: 'FEED', caller: IAM, query: { cursor: Buffer.from('{"q":"x","c":"y"}').toString('base64url') } }, /^cursor is not one this API returned/],
    ['a range on the open route', { route: 'OPEN_TOTALS', tenantId: 'tenant-a', caller: IAM, query: { from: '2026-11-01T00:00:00Z' } }, /^unknown query parameter "from": this route takes metric$/],
  ] as Array<[string, Request, RegExp]>)('%s', async (_name, request, message) => {
    expect(await refusal(request)).toMatch(message);
  });

  test('a cursor tampered inside its envelope, or used with another metric or range, is refused', async () => {
    const first = bodyOf(await get(windows({ limit: '1', metric: 'apiCalls' })));
    const envelope = JSON.parse(Buffer.from(first.nextCursor, 'base64url').toString('utf8'));
    const tampered = Buffer.from(JSON.stringify({ ...envelope, c: Buffer.from('{"w":"soon"}').toString('base64url') })).toString('base64url');
    expect(await refusal(windows({ limit: '1', metric: 'apiCalls', cursor: tampered }))).toMatch(/^cursor is not one this API returned/);
    expect(await refusal(windows({ limit: '1', cursor: first.nextCursor }))).toMatch(/^cursor belongs to another request: pass it with the same tenant, from, to and metric/);
    expect(await refusal(windows({ limit: '1', metric: 'apiCalls', from: iso(T0), cursor: first.nextCursor }))).toMatch(/^cursor belongs to another request/);
    // the same request goes on
    expect((await get(windows({ limit: '1', metric: 'apiCalls', cursor: first.nextCursor }))).statusCode).toBe(200);
  });

  test('a well-formed tenant without usage is not an error: an empty list (the API cannot tell it from a tenant yet to use anything)', async () => {
    expect(bodyOf(await get(windows({}, 'tenant-never-seen')))).toEqual({ tenantId: 'tenant-never-seen', windows: [], nextCursor: null });
  });
});
