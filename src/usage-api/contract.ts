/**
 * The contract between the `UsageApi` construct and its handler: the
 * environment one sets and the other reads, the routes, the page limits and
 * the error codes, defined once. No AWS SDK here: constructs import this module too.
 */

/** Environment of the usage API's handler (besides the usage reader's, set by `bindUsageReader`). */
export const USAGE_API_ENV = {
  /** The path prefix the routes are mounted under (`/usage`). */
  PATH_PREFIX: 'USAGE_API_PATH_PREFIX',
  /** How the tenant routes are authorized: one of `AUTH_MODES`. */
  AUTH_MODE: 'USAGE_API_AUTH_MODE',
  /** With `TENANT_TOKEN`: the claim (or Lambda authorizer context key) that holds the caller's tenant id. */
  TENANT_CLAIM: 'USAGE_API_TENANT_CLAIM',
} as const;

/**
 * How the tenant routes are authorized:
 * - `IAM`: every route needs SigV4 (an AWS identity the app granted `execute-api:Invoke`); the caller may read any tenant.
 * - `TENANT_TOKEN`: the tenant routes need a tenant's token (a JWT or another route authorizer), and the
 *   caller reads only the tenant its token names; the closed-window feed stays IAM.
 */
export const AUTH_MODES = ['IAM', 'TENANT_TOKEN'] as const;
/** How the tenant routes are authorized. */
export type AuthMode = (typeof AUTH_MODES)[number];

/** SBT's tenant claim in its Cognito tokens. */
export const DEFAULT_TENANT_CLAIM = 'custom:tenantId';

/** Where the routes are mounted unless `pathPrefix` says otherwise. */
export const DEFAULT_PATH_PREFIX = '/usage';

/**
 * The routes, below the prefix. All `GET`.
 *
 * `/tenants/{tenantId}/entitlements` (a tenant's entitlement balances) is
 * mounted when the usage API is given `entitlements`; else API Gateway answers 404.
 */
export const ROUTES = {
  /** A tenant's closed windows: `from`, `to`, `metric`, `limit`, `cursor`. */
  TENANT_WINDOWS: '/tenants/{tenantId}/windows',
  /** A tenant's running totals of the windows not closed yet: `metric`. */
  OPEN_TOTALS: '/tenants/{tenantId}/open',
  /** Every closed window, oldest close first, for other consumers: `since`, `limit`, `cursor`. IAM only. */
  FEED: '/windows',
  /** A tenant's entitlement balances (used, limit, remaining, thresholds crossed) and access; with `entitlements`. */
  ENTITLEMENTS: '/tenants/{tenantId}/entitlements',
} as const;

/** The query parameters each route takes; any other is refused (400). */
export const ROUTE_PARAMETERS: Record<'TENANT_WINDOWS' | 'OPEN_TOTALS' | 'FEED' | 'ENTITLEMENTS', readonly string[]> = {
  TENANT_WINDOWS: ['from', 'to', 'metric', 'limit', 'cursor'],
  OPEN_TOTALS: ['metric'],
  FEED: ['since', 'limit', 'cursor'],
  ENTITLEMENTS: [],
};

/** Page sizes (`limit`) of the paged routes. */
export const PAGE_LIMITS = {
  /** Windows per page when `limit` is not given. */
  DEFAULT: 100,
  /** Most windows per page; a larger `limit` is refused (400). */
  MAX: 1000,
} as const;

/** Most window starts one tenant-windows request looks at (a page over a long, sparse range ends there, with a cursor). */
export const MAX_WINDOW_STARTS_PER_REQUEST = 2000;

/** The `code` of an error response. */
export const ERROR_CODES = {
  /** 400: a parameter is malformed, out of range or unknown. */
  INVALID_REQUEST: 'InvalidRequest',
  /** 403: the caller may not read this (another tenant, the feed with a tenant token, no tenant in the token). */
  FORBIDDEN: 'Forbidden',
  /** 404: no such route (a request the handler does not serve). */
  NOT_FOUND: 'NotFound',
} as const;

/** The full path of a route under a prefix: `/usage` + `/windows`. */
export function routePath(prefix: string, route: string): string {
  return `${prefix}${route}`;
}
