/**
 * `EntitlementAuthorizer`'s handler: an API Gateway HTTP API Lambda authorizer
 * (payload format 2.0, simple responses) that lets a request through only when
 * its tenant may use the route's metric now.
 *
 * 1. The bearer token is verified (`shared.lambda/jwt.ts`): signature, issuer,
 *    audience, expiry. No token, or a bad one: refused.
 * 2. The tenant is the token's tenant claim (`custom:tenantId` by default); no
 *    claim, or one that breaks the identifier rule: refused.
 * 3. The route's metric (the route key's, else the default metric; none: refused).
 * 4. The tenant's access item, one GetItem, kept by this execution environment
 *    for the configured time: unknown or offboarded tenant, or blocked for the
 *    metric: refused; else allowed, with `tenantId` and `metric` in the context.
 *
 * API Gateway caches each answer by the token and the route key for the same time.
 */
import type { APIGatewayRequestAuthorizerEventV2 } from 'aws-lambda';
import { AUTHORIZER_ENV, accessOf } from './contract';
import { EntitlementReader } from './shared.lambda/entitlement-reader';
import { JwtError, JwtVerifier } from './shared.lambda/jwt';
import { isTenantId } from '../events/identifiers';
import { jsonEnv, numberEnv, requiredEnv } from '../shared.lambda/env';
import { logger } from '../shared.lambda/logger';

/** The simple response of an HTTP API Lambda authorizer. */
export interface AuthorizerResult {
  readonly isAuthorized: boolean;
  readonly context?: Record<string, string>;
}

let verifier: JwtVerifier | undefined;
let reader: EntitlementReader | undefined;
/** Access items this execution environment read, by tenant, with when. */
const cache = new Map<string, { item: Record<string, unknown> | undefined; at: number }>();

function deny(reason: string, keys: Record<string, string> = {}): AuthorizerResult {
  logger.info('Refused', { reason, ...keys });
  return { isAuthorized: false };
}

export async function handler(event: APIGatewayRequestAuthorizerEventV2): Promise<AuthorizerResult> {
  logger.resetKeys();
  verifier ??= new JwtVerifier(requiredEnv(AUTHORIZER_ENV.ISSUER), jsonEnv<string[]>(AUTHORIZER_ENV.AUDIENCES));
  reader ??= EntitlementReader.fromEnvironment();
  const header = Object.entries(event.headers ?? {}).find(([k]) => k.toLowerCase() === 'authorization')?.[1]
    ?? event.identitySource?.find((s) => /^bearer /i.test(s));
  const token = header?.replace(/^bearer\s+/i, '').trim();
  if (!token) return deny('NO_TOKEN');
  let claims: Record<string, unknown>;
  try {
    claims = await verifier.verify(token);
  } catch (error) {
    if (error instanceof JwtError) return deny('BAD_TOKEN', { detail: error.message });
    throw error;
  }
  const claim = requiredEnv(AUTHORIZER_ENV.TENANT_CLAIM);
  const tenantId = claims[claim];
  if (tenantId === undefined) return deny('NO_TENANT_CLAIM', { claim });
  if (!isTenantId(tenantId)) return deny('BAD_TENANT_CLAIM', { claim });
  const routes = jsonEnv<Record<string, string>>(AUTHORIZER_ENV.ROUTE_METRICS, {});
  const metric = routes[event.routeKey] ?? (process.env[AUTHORIZER_ENV.DEFAULT_METRIC] || undefined);
  if (!metric) return deny('NO_METRIC_FOR_ROUTE', { routeKey: event.routeKey });
  const now = Date.now();
  const ttlMs = numberEnv(AUTHORIZER_ENV.CACHE_SECONDS, { min: 0, fallback: 0 }) * 1000;
  let entry = cache.get(tenantId);
  if (!entry || now - entry.at >= ttlMs) {
    entry = { item: await reader.accessItem(tenantId), at: now };
    cache.set(tenantId, entry);
  }
  const access = accessOf(entry.item, metric, Math.floor(now / 1000));
  if (access !== 'ALLOWED') return deny(access, { tenantId, metric });
  return { isAuthorized: true, context: { tenantId, metric } };
}
