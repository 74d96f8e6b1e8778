/**
 * Test support for the usage API's handler: the bundled handler (exactly the
 * code Lambda runs), its environment as the construct sets it, and requests
 * exactly as API Gateway delivers them: HTTP API payload 2.0 and REST API
 * proxy payload 1.0, with the authorizer context each kind of caller gets.
 */
import * as path from 'path';
import { ROUTES, USAGE_API_ENV } from '../../src/usage-api/contract';

const ROOT = path.resolve(__dirname, '..', '..');

/** The API Gateway response. */
export interface Response {
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** The bundled handler (run `npx projen bundle` first). */
export function usageApiHandler(): (event: unknown) => Promise<Response> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path.join(ROOT, 'assets', 'usage-api', 'usage-api.lambda', 'index.js')).handler;
}

/** Sets the handler's own environment (the reader's is set by the ingestor test support). */
export function configureApi(opts: { prefix?: string; mode?: 'IAM' | 'TENANT_TOKEN'; claim?: string } = {}): void {
  process.env[USAGE_API_ENV.PATH_PREFIX] = opts.prefix ?? '/usage';
  process.env[USAGE_API_ENV.AUTH_MODE] = opts.mode ?? 'IAM';
  if (opts.claim === undefined) delete process.env[USAGE_API_ENV.TENANT_CLAIM];
  else process.env[USAGE_API_ENV.TENANT_CLAIM] = opts.claim;
}

/** Who calls, as API Gateway's authorizer leaves it in the request context. */
export type Caller =
  | { readonly iam: true }
  | { readonly jwt: Record<string, string> }
  | { readonly lambda: Record<string, unknown> }
  | { readonly none: true };

export const IAM: Caller = { iam: true };
/** A JWT with SBT's tenant claim. */
export const tokenOf = (tenantId: string, claim = 'custom:tenantId'): Caller => ({ jwt: { sub: 'user-1', [claim]: tenantId } });

/** What a request asks for. */
export interface Request {
  readonly route: keyof typeof ROUTES;
  /** The path parameter as API Gateway decoded it. */
  readonly tenantId?: string;
  /** Query parameters; an array is a parameter given more than once. */
  readonly query?: Record<string, string | string[]>;
  readonly caller: Caller;
  readonly prefix?: string;
}

/** An HTTP API request (payload format 2.0): repeated query parameters joined by commas, as HTTP APIs do. */
export function httpEvent(r: Request): Record<string, unknown> {
  const prefix = r.prefix ?? '/usage';
  const template = `${prefix}${ROUTES[r.route]}`;
  const rawPath = r.tenantId !== undefined ? template.replace('{tenantId}', r.tenantId) : template;
  const query = Object.entries(r.query ?? {});
  const authorizer = 'iam' in r.caller
    ? { iam: { accessKey: 'AKIA...', accountId: '123456789012', callerId: 'AROA:ops', userArn: 'arn:aws:sts::123456789012:assumed-role/ops/x', userId: 'AROA:x' } }
    : 'jwt' in r.caller ? { jwt: { claims: r.caller.jwt, scopes: null } }
      : 'lambda' in r.caller ? { lambda: r.caller.lambda } : undefined;
  return {
    version: '2.0',
    routeKey: `GET ${template}`,
    rawPath,
    rawQueryString: query.map(([k, v]) => ([] as string[]).concat(v).map((x) => `${encodeURIComponent(k)}=${encodeURIComponent(x)}`).join('&')).join('&'),
    headers: { host: 'api.example.com' },
    queryStringParameters: query.length ? Object.fromEntries(query.map(([k, v]) => [k, ([] as string[]).concat(v).join(',')])) : undefined,
    pathParameters: r.tenantId !== undefined ? { tenantId: r.tenantId } : undefined,
    requestContext: {
      accountId: '123456789012',
      apiId: 'api1',
      domainName: 'api.example.com',
      stage: '$default',
      requestId: 'req-1',
      routeKey: `GET ${template}`,
      http: { method: 'GET', path: rawPath, protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'test' },
      ...(authorizer ? { authorizer } : {}),
    },
    isBase64Encoded: false,
  };
}

/** A REST API proxy request (payload format 1.0): repeated parameters listed. */
export function restEvent(r: Request): Record<string, unknown> {
  const prefix = r.prefix ?? '/usage';
  const resource = `${prefix}${ROUTES[r.route]}`;
  const query = Object.entries(r.query ?? {});
  const authorizer = 'jwt' in r.caller ? { claims: r.caller.jwt }
    : 'lambda' in r.caller ? { principalId: 'user-1', ...r.caller.lambda } : undefined;
  return {
    resource,
    path: r.tenantId !== undefined ? resource.replace('{tenantId}', r.tenantId) : resource,
    httpMethod: 'GET',
    headers: {},
    queryStringParameters: query.length ? Object.fromEntries(query.map(([k, v]) => [k, ([] as string[]).concat(v).slice(-1)[0]])) : null,
    multiValueQueryStringParameters: query.length ? Object.fromEntries(query.map(([k, v]) => [k, ([] as string[]).concat(v)])) : null,
    pathParameters: r.tenantId !== undefined ? { tenantId: r.tenantId } : null,
    requestContext: {
      resourcePath: resource,
      httpMethod: 'GET',
      stage: 'prod',
      requestId: 'req-1',
      identity: 'iam' in r.caller ? { userArn: 'arn:aws:sts::123456789012:assumed-role/ops/x', accessKey: 'AKIA...' } : { userArn: null },
      ...(authorizer ? { authorizer } : {}),
    },
    body: null,
    isBase64Encoded: false,
  };
}

/** The JSON body of a response. */
export function bodyOf(res: Response): any {
  expect(res.headers['content-type']).toBe('application/json');
  return JSON.parse(res.body);
}
