/**
 * EntitlementAuthorizer's bundled handler against moto's DynamoDB and a local
 * OpenID issuer (its JSON Web Key Set served over loopback): allowed, blocked,
 * unknown and offboarded tenants, a token without the tenant claim or with a bad
 * signature, audience or expiry, and the cache's expiry.
 */
import { generateKeyPairSync, KeyObject, sign } from 'crypto';
import * as http from 'http';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayRequestAuthorizerEventV2 } from 'aws-lambda';
import { bundled, createWorld, synthesize, World } from './support';
import { BillingPlan, EntitlementPeriod, LimitAction } from '../../src';
import { accessKey, AUTHORIZER_ENV, blockedAttribute } from '../../src/entitlements/contract';
import { TestClock } from '../ingestor/support';
import { startMoto, Moto } from '../support/emulators';

const PLANS: BillingPlan[] = [{ name: 'basic', metrics: [{ metric: 'apiCalls', entitlements: [{ limit: '10', period: EntitlementPeriod.DAY, onLimit: LimitAction.BLOCK }] }] }];

let moto: Moto;
let doc: DynamoDBDocumentClient;
let world: World;
let issuerServer: http.Server;
let issuer: string;
let jwksFetches = 0;
let clock: TestClock;
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
const authorize = bundled<APIGatewayRequestAuthorizerEventV2, { isAuthorized: boolean; context?: Record<string, string> }>('entitlements/authorizer.lambda');

function token(claims: Record<string, unknown>, key: KeyObject = privateKey, kid = 'k1'): string {
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${part({ alg: 'RS256', kid, typ: 'JWT' })}.${part({ iss: issuer, aud: 'app-client', exp: Math.floor(Date.now() / 1000) + 3600, ...claims })}`;
  return `${body}.${sign('RSA-SHA256', Buffer.from(body), key).toString('base64url')}`;
}

function request(authorization: string | undefined, routeKey = 'GET /orders'): APIGatewayRequestAuthorizerEventV2 {
  return {
    version: '2.0',
    type: 'REQUEST',
    routeArn: 'arn:aws:execute-api:us-east-1:123456789012:api/$default/GET/orders',
    identitySource: authorization ? [authorization, routeKey] : [routeKey],
    routeKey,
    rawPath: '/orders',
    rawQueryString: '',
    cookies: [],
    headers: authorization ? { authorization } : {},
    queryStringParameters: {},
    requestContext: {} as any,
    pathParameters: {},
    stageVariables: {},
  };
}

async function setAccess(tenantId: string, item: Record<string, unknown> | undefined) {
  await doc.send(new PutCommand({ TableName: world.entitlementsTable, Item: { ...accessKey(tenantId), tenantId, ...item } }));
}

beforeAll(async () => {
  moto = await startMoto();
  const client = new DynamoDBClient({});
  doc = DynamoDBDocumentClient.from(client);
  issuerServer = http.createServer((req, res) => {
    if (req.url === '/.well-known/openid-configuration') {
      res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/keys` }));
    } else if (req.url === '/keys') {
      jwksFetches++;
      res.end(JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'k1', use: 'sig', alg: 'RS256' }] }));
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((r) => issuerServer.listen(0, '127.0.0.1', r));
  issuer = `http://127.0.0.1:${(issuerServer.address() as { port: number }).port}`;
  world = await createWorld(client, synthesize(PLANS));
  Object.assign(process.env, {
    [AUTHORIZER_ENV.ISSUER]: issuer,
    [AUTHORIZER_ENV.AUDIENCES]: JSON.stringify(['app-client']),
    [AUTHORIZER_ENV.TENANT_CLAIM]: 'custom:tenantId',
    [AUTHORIZER_ENV.ROUTE_METRICS]: JSON.stringify({ 'GET /orders': 'apiCalls', 'POST /exports': 'exports' }),
    [AUTHORIZER_ENV.DEFAULT_METRIC]: '',
    [AUTHORIZER_ENV.CACHE_SECONDS]: '30',
  });
  clock = new TestClock(Date.now());
  const now = Math.floor(Date.now() / 1000);
  await setAccess('acme', { status: 'ACTIVE', plan: 'basic' });
  await setAccess('blocked', { status: 'ACTIVE', plan: 'basic', [blockedAttribute('apiCalls')]: now + 3600 });
  await setAccess('gone', { status: 'OFFBOARDED', plan: 'basic' });
}, 60_000);

afterAll(async () => {
  clock?.restore();
  await new Promise<void>((r) => issuerServer?.close(() => r()));
  await moto?.stop();
});

test('allowed: a valid token of an active tenant not blocked for the route\'s metric; the context names the tenant and the metric', async () => {
  const r = await authorize(request(`Bearer ${token({ 'custom:tenantId': 'acme' })}`));
  expect(r).toEqual({ isAuthorized: true, context: { tenantId: 'acme', metric: 'apiCalls' } });
});

test('blocked for the route\'s metric: refused; the same tenant on a route of another metric: allowed', async () => {
  const t = token({ 'custom:tenantId': 'blocked' });
  expect((await authorize(request(`Bearer ${t}`, 'GET /orders'))).isAuthorized).toBe(false);
  expect((await authorize(request(`Bearer ${t}`, 'POST /exports'))).isAuthorized).toBe(true);
});

test('unknown tenant, offboarded tenant, missing claim, a route without a metric: refused', async () => {
  expect((await authorize(request(`Bearer ${token({ 'custom:tenantId': 'stranger' })}`))).isAuthorized).toBe(false);
  expect((await authorize(request(`Bearer ${token({ 'custom:tenantId': 'gone' })}`))).isAuthorized).toBe(false);
  expect((await authorize(request(`Bearer ${token({ sub: 'user-1' })}`))).isAuthorized).toBe(false);
  expect((await authorize(request(`Bearer ${token({ 'custom:tenantId': 'acme#1' })}`))).isAuthorized).toBe(false);
  expect((await authorize(request(`Bearer ${token({ 'custom:tenantId': 'acme' })}`, 'GET /health'))).isAuthorized).toBe(false);
});

test('no token, a bad signature, another audience, an expired token, an unknown key: refused', async () => {
  expect((await authorize(request(undefined))).isAuthorized).toBe(false);
  expect((await authorize(request(`Bearer ${token({ 'custom:tenantId': 'acme' }, other.privateKey)}`))).isAuthorized).toBe(false);
  expect((await authorize(request(`Bearer ${token({ 'custom:tenantId': 'acme', 'aud': 'someone-else' })}`))).isAuthorized).toBe(false);
  expect((await authorize(request(`Bearer ${token({ 'custom:tenantId': 'acme', 'exp': Math.floor(Date.now() / 1000) - 3600 })}`))).isAuthorized).toBe(false);
  expect((await authorize(request(`Bearer ${token({ 'custom:tenantId': 'acme' }, privateKey, 'k2')}`))).isAuthorized).toBe(false);
  expect((await authorize(request('Bearer not.a.token'))).isAuthorized).toBe(false);
});

test('cache expiry: a block is seen once the cached answer is older than the cache time; the issuer\'s keys are fetched once', async () => {
  await setAccess('later', { status: 'ACTIVE', plan: 'basic' });
  const t = `Bearer ${token({ 'custom:tenantId': 'later' })}`;
  expect((await authorize(request(t))).isAuthorized).toBe(true);
  await setAccess('later', { status: 'ACTIVE', plan: 'basic', [blockedAttribute('apiCalls')]: Math.floor(Date.now() / 1000) + 86_400 });
  clock.advance(29_000);
  expect((await authorize(request(t))).isAuthorized).toBe(true); // the cached access item
  clock.advance(2_000);
  expect((await authorize(request(t))).isAuthorized).toBe(false); // read again after 30 s
  expect(jwksFetches).toBe(1);
});

test('warm decision time (the access item cached, as between API Gateway cache misses of one tenant)', async () => {
  const t = `Bearer ${token({ 'custom:tenantId': 'acme' })}`;
  await authorize(request(t));
  const times: number[] = [];
  for (let i = 0; i < 200; i++) {
    const start = process.hrtime.bigint();
    await authorize(request(t));
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  times.sort((a, b) => a - b);
  const p50 = times[100];
  const p99 = times[197];
  console.log(`authorizer warm decision: p50 ${p50.toFixed(3)} ms, p99 ${p99.toFixed(3)} ms (token verified every call, access item cached)`);
  expect(p50).toBeLessThan(50);
});
