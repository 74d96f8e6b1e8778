/**
 * The usage API's request handling: one request in (API Gateway HTTP API
 * payload 2.0, or REST API payload 1.0), one JSON response out. It reads usage
 * only through the usage read contract (`UsageReader`), and it decides, before
 * anything else, who may read what:
 *
 * 1. The caller: an IAM identity (SigV4) or a tenant's token (a JWT's claims,
 *    or a Lambda authorizer's context), as the mode (`USAGE_API_AUTH_MODE`) wants
 *    for the route; otherwise 403. The feed is never for tenant tokens.
 * 2. Tenant isolation (tenant tokens): the tenant in the path, and any query
 *    parameter that names a tenant, must be exactly the token's tenant, byte for
 *    byte (no case folding, no decoding beyond API Gateway's own): otherwise 403,
 *    whose message names neither tenant.
 * 3. The parameters: known, well-formed, in range; otherwise 400 naming the
 *    parameter, the value given and the fix.
 *
 * Sums are the reader's exact decimal strings, passed through as strings.
 */
import { createHash } from 'node:crypto';
import type { EntitlementReader } from '../../entitlements/shared.lambda/entitlement-reader';
import { identifierRule, isMetricName, isTenantId } from '../../events/identifiers';
import type {
  ClosedWindow, ClosedWindowPage, OpenWindowTotal, ReadClosedWindowsOptions, ReadTenantClosedWindowPageOptions, TenantClosedWindowPage,
} from '../../ingestor/shared.lambda/usage-reader';
import {
  AuthMode, ERROR_CODES, MAX_WINDOW_STARTS_PER_REQUEST, PAGE_LIMITS, ROUTE_PARAMETERS, ROUTES, routePath,
} from '../contract';

/** What the API needs of the usage read contract. */
export interface UsageSource {
  readTenantClosedWindowPage(tenantId: string, opts: ReadTenantClosedWindowPageOptions): Promise<TenantClosedWindowPage>;
  readOpenTotals(tenantId: string): Promise<OpenWindowTotal[]>;
  readClosedWindows(opts: ReadClosedWindowsOptions): Promise<ClosedWindowPage>;
}

/** How the API is set up (from its environment). */
export interface ApiSettings {
  readonly pathPrefix: string;
  readonly authMode: AuthMode;
  /** The claim (or authorizer context key) holding a tenant token's tenant id. */
  readonly tenantClaim: string;
}

/** The response API Gateway sends back (both payload formats take this shape). */
export interface ApiResponse {
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** Whatever API Gateway delivers, read loosely: HTTP API payload 2.0 or REST API payload 1.0. */
export type GatewayEvent = Record<string, any>;

type RouteName = keyof typeof ROUTE_PARAMETERS;

/** Who is calling, as API Gateway's authorizer established it. */
type Caller =
  | { readonly kind: 'IAM' }
  | { readonly kind: 'TOKEN'; readonly tenantClaim: unknown }
  | { readonly kind: 'NONE' };

/** A refusal: the status, the code and a message for the caller. */
export class ApiError extends Error {
  constructor(readonly statusCode: number, readonly code: string, message: string) {
    super(message);
    this.name = 'ApiError';
  }
}

const badRequest = (message: string) => new ApiError(400, ERROR_CODES.INVALID_REQUEST, message);
const forbidden = (message: string) => new ApiError(403, ERROR_CODES.FORBIDDEN, message);

/** Query parameter names that name a tenant, compared case-insensitively: a tenant token may only name its own. */
const TENANT_PARAMETERS = ['tenantid', 'tenant_id', 'tenant-id', 'tenant'];

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

/** A value as a message shows it: quoted, escaped, at most 40 characters. */
function shown(value: string): string {
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
}

function json(statusCode: number, body: unknown): ApiResponse {
  return {
    statusCode,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
    body: JSON.stringify(body),
  };
}

/** Which route the event is for, from API Gateway's route key (HTTP API) or resource (REST API). */
function routeOf(event: GatewayEvent, prefix: string): RouteName | undefined {
  const key = typeof event.routeKey === 'string' ? event.routeKey : `${event.httpMethod} ${event.resource}`;
  for (const name of Object.keys(ROUTE_PARAMETERS) as RouteName[]) {
    if (key === `GET ${routePath(prefix, ROUTES[name])}`) return name;
  }
  return undefined;
}

/** The caller, from the request context API Gateway filled in. */
function callerOf(event: GatewayEvent, claim: string): Caller {
  const ctx = event.requestContext ?? {};
  const authorizer = ctx.authorizer ?? {};
  if (authorizer.jwt?.claims && typeof authorizer.jwt.claims === 'object') return { kind: 'TOKEN', tenantClaim: authorizer.jwt.claims[claim] };
  if (authorizer.lambda && typeof authorizer.lambda === 'object') return { kind: 'TOKEN', tenantClaim: authorizer.lambda[claim] };
  if (authorizer.iam && typeof authorizer.iam === 'object') return { kind: 'IAM' };
  // REST API: a Cognito user pool authorizer's claims, or a Lambda authorizer's context; IAM fills in the identity.
  if (authorizer.claims && typeof authorizer.claims === 'object') return { kind: 'TOKEN', tenantClaim: authorizer.claims[claim] };
  if (typeof authorizer.principalId === 'string') return { kind: 'TOKEN', tenantClaim: authorizer[claim] };
  if (typeof ctx.identity?.userArn === 'string' && ctx.identity.userArn !== '') return { kind: 'IAM' };
  return { kind: 'NONE' };
}

/**
 * The query parameters, decoded by API Gateway. A parameter given more than
 * once has its values joined with commas, as HTTP APIs deliver it (REST APIs
 * list them): no valid value holds a comma, so it is refused later, and a
 * tenant token naming two tenants is refused first.
 */
function queryOf(event: GatewayEvent): Map<string, string> {
  const query = new Map<string, string>();
  const multi = event.multiValueQueryStringParameters as Record<string, string[] | undefined> | undefined | null;
  if (multi) {
    for (const [name, values] of Object.entries(multi)) query.set(name, (values ?? []).join(','));
    return query;
  }
  for (const [name, value] of Object.entries((event.queryStringParameters ?? {}) as Record<string, string>)) query.set(name, String(value ?? ''));
  return query;
}

/** Steps 1 and 2: who may read what; throws a 403 when the caller may not. */
function authorize(route: RouteName, caller: Caller, event: GatewayEvent, query: Map<string, string>, settings: ApiSettings): void {
  const tenantRoute = route !== 'FEED';
  if (!tenantRoute || settings.authMode === 'IAM') {
    if (caller.kind !== 'IAM') {
      throw forbidden(route === 'FEED'
        ? 'the closed-window feed is for AWS identities (SigV4-signed requests allowed execute-api:Invoke), not for tenant tokens'
        : 'this route needs a SigV4-signed request from an AWS identity allowed execute-api:Invoke');
    }
    return;
  }
  if (caller.kind !== 'TOKEN') throw forbidden('this route needs a tenant\'s token');
  const tenant = caller.tenantClaim;
  if (!isTenantId(tenant)) {
    throw forbidden(`the token carries no valid tenant id in its ${shown(settings.tenantClaim)} claim`);
  }
  const pathTenant = event.pathParameters?.tenantId;
  const named = [...query.entries()].filter(([name]) => TENANT_PARAMETERS.includes(name.toLowerCase())).map(([, value]) => value);
  if (pathTenant !== tenant || named.some((v) => v !== tenant)) {
    throw forbidden('a tenant\'s token reads only its own tenant\'s usage: put the token\'s tenant id in the path, exactly as the token has it');
  }
}

/** A time parameter: ISO-8601 with a time zone, a real date. */
function timeParameter(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  const m = ISO.exec(value);
  const [y, mo, d] = value.slice(0, 10).split('-').map(Number);
  const realDate = m !== null && Number.isFinite(ms) && new Date(Date.UTC(y, mo - 1, d)).getUTCDate() === d;
  if (!realDate) {
    throw badRequest(`${name} must be an ISO-8601 time with a time zone, such as 2026-11-01T00:00:00Z (given ${shown(value)}); `
      + 'URL-encode it (a + offset as %2B)');
  }
  return new Date(ms).toISOString();
}

function limitParameter(value: string | undefined): number {
  if (value === undefined) return PAGE_LIMITS.DEFAULT;
  const n = /^\d{1,7}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= PAGE_LIMITS.MAX)) {
    throw badRequest(`limit must be a whole number from 1 to ${PAGE_LIMITS.MAX} (given ${shown(value)}): `
      + 'read more windows page by page, passing each response\'s nextCursor as cursor');
  }
  return n;
}

function metricParameter(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!isMetricName(value)) throw badRequest(`metric ${identifierRule('metric')} (given ${shown(value)}); URL-encode it`);
  return value;
}

/** Step 3: only the route's parameters, each given once and not empty. */
function checkParameters(route: RouteName, query: Map<string, string>): void {
  const allowed = ROUTE_PARAMETERS[route];
  for (const [name, value] of query) {
    if (!allowed.includes(name)) {
      throw badRequest(`unknown query parameter ${shown(name)}: this route takes ${allowed.join(', ')}`);
    }
    // HTTP APIs join a repeated parameter's values with commas; no valid value holds one.
    if (value.includes(',')) throw badRequest(`query parameter ${name} is given more than once or holds a comma: give it once`);
    if (value === '') throw badRequest(`query parameter ${name} is empty: give a value or leave it out`);
  }
}

/** The cursor of a tenant-windows page: the reader's cursor, bound to the request that produced it. */
interface TenantCursor {
  readonly q: string;
  readonly c: string;
}

function queryBinding(tenantId: string, from?: string, to?: string, metric?: string): string {
  return createHash('sha256').update(JSON.stringify(['windows', tenantId, from ?? null, to ?? null, metric ?? null])).digest('base64url').slice(0, 22);
}

function encodeTenantCursor(c: TenantCursor): string {
  return Buffer.from(JSON.stringify(c), 'utf8').toString('base64url');
}

function decodeTenantCursor(cursor: string, binding: string): string {
  let c: TenantCursor | undefined;
  try {
    c = /^[A-Za-z0-9_-]{1,2048}$/.test(cursor) ? JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) : undefined;
  } catch {
    c = undefined;
  }
  if (typeof c !== 'object' || c === null || typeof c.q !== 'string' || typeof c.c !== 'string') {
    throw badRequest('cursor is not one this API returned: pass a response\'s nextCursor unchanged, or leave cursor out to start at the beginning');
  }
  if (c.q !== binding) {
    throw badRequest('cursor belongs to another request: pass it with the same tenant, from, to and metric as the request that returned it');
  }
  return c.c;
}

function windowOut(w: ClosedWindow) {
  return {
    tenantId: w.tenantId,
    metric: w.metric,
    granularity: w.granularity,
    windowStart: w.windowStart,
    windowEnd: w.windowEnd,
    closedAt: w.closedAt,
    sum: w.sum,
    count: w.count,
    windowId: w.windowId,
  };
}

/** A reader's refusal of its input (a tampered cursor) is the caller's mistake: 400. */
async function reading<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (e) {
    if ((e as Error)?.name === 'UsageReadInputError') {
      throw badRequest('cursor is not one this API returned: pass a response\'s nextCursor unchanged, or leave cursor out to start at the beginning');
    }
    throw e;
  }
}

async function tenantWindows(source: UsageSource, tenantId: string, query: Map<string, string>) {
  const from = timeParameter('from', query.get('from'));
  const to = timeParameter('to', query.get('to'));
  if (from !== undefined && to !== undefined && Date.parse(from) >= Date.parse(to)) {
    throw badRequest(`from must be before to (given from ${shown(query.get('from')!)}, to ${shown(query.get('to')!)}): the range is [from, to) on window start`);
  }
  const metric = metricParameter(query.get('metric'));
  const limit = limitParameter(query.get('limit'));
  const binding = queryBinding(tenantId, from, to, metric);
  const cursor = query.has('cursor') ? decodeTenantCursor(query.get('cursor')!, binding) : undefined;
  const page = await reading(() => source.readTenantClosedWindowPage(tenantId, {
    since: from, until: to, metric, cursor, limit, maxWindowStarts: MAX_WINDOW_STARTS_PER_REQUEST,
  }));
  return {
    tenantId,
    windows: page.windows.map(windowOut),
    nextCursor: page.cursor === undefined ? null : encodeTenantCursor({ q: binding, c: page.cursor }),
  };
}

async function openTotals(source: UsageSource, tenantId: string, query: Map<string, string>) {
  const metric = metricParameter(query.get('metric'));
  const asOf = new Date(Date.now()).toISOString();
  const key = (t: OpenWindowTotal) => `${t.windowStart}|${t.metric}`;
  const totals = (await source.readOpenTotals(tenantId))
    .filter((t) => metric === undefined || t.metric === metric)
    .sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  return {
    tenantId,
    asOf,
    windows: totals.map((t) => ({
      tenantId: t.tenantId,
      metric: t.metric,
      granularity: t.granularity,
      windowStart: t.windowStart,
      windowEnd: t.windowEnd,
      closesAt: t.closesAt,
      sum: t.sum,
      count: t.count,
    })),
  };
}

async function feed(source: UsageSource, query: Map<string, string>) {
  const since = timeParameter('since', query.get('since'));
  const limit = limitParameter(query.get('limit'));
  const cursor = query.get('cursor');
  if (cursor !== undefined && since !== undefined) throw badRequest('give since or cursor, not both: a cursor already holds its position');
  const page = await reading(() => source.readClosedWindows({ cursor, since, limit }));
  return { windows: page.windows.map(windowOut), nextCursor: page.cursor };
}

/** What the entitlements route reads: the entitlements read contract (`EntitlementReader`). */
export type EntitlementSource = Pick<EntitlementReader, 'tenantEntitlements'>;

async function balances(source: EntitlementSource, tenantId: string) {
  const asOf = new Date(Date.now()).toISOString();
  const e = await source.tenantEntitlements(tenantId);
  return { tenantId, asOf, access: e.access, plan: e.plan ?? null, entitlements: e.balances };
}

/**
 * Serves one request. Refusals are answered (4xx with `{ code, message }`);
 * anything else (the store failing) is thrown, so that Lambda counts an error,
 * the alarm sees it and API Gateway answers 500 without details.
 */
export async function serve(event: GatewayEvent, source: UsageSource, settings: ApiSettings, entitlements?: EntitlementSource): Promise<ApiResponse> {
  try {
    const route = routeOf(event, settings.pathPrefix);
    if (route === undefined || (route === 'ENTITLEMENTS' && !entitlements)) throw new ApiError(404, ERROR_CODES.NOT_FOUND, 'no such usage API route');
    const query = queryOf(event);
    authorize(route, callerOf(event, settings.tenantClaim), event, query, settings);
    checkParameters(route, query);
    if (route === 'FEED') return json(200, await feed(source, query));
    const tenantId = event.pathParameters?.tenantId;
    if (!isTenantId(tenantId)) throw badRequest(`the tenant id in the path ${identifierRule('tenantId')}: no tenant can have usage under it`);
    if (route === 'OPEN_TOTALS') return json(200, await openTotals(source, tenantId, query));
    if (route === 'ENTITLEMENTS') return json(200, await balances(entitlements!, tenantId));
    return json(200, await tenantWindows(source, tenantId, query));
  } catch (e) {
    if (e instanceof ApiError) return json(e.statusCode, { code: e.code, message: e.message });
    throw e;
  }
}
