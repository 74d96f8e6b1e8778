/**
 * Entitlements benchmark (not part of the test suite): `npx projen bench:entitlements`.
 *
 * 1. Write units per record. BENCH_RECORDS (5,000) usage records in bench:ingest's
 *    spread distribution (1,000 tenants x 10 metrics, 5% resends), through the bundled
 *    aggregator, then the ledger's changes through the bundled ledger consumer, with
 *    entitlements on 1 metric and on 10 metrics; every DynamoDB request billed by the
 *    recording proxy as DynamoDB bills it. The ledger's changes are handed to the
 *    consumer as the event source mapping would at two rates: one change per batch (a
 *    tenant-metric's records arrive far apart: nothing to share) and 100 per batch.
 *    Printed: write and read units per record ingested (the ingest's own excluded), and
 *    per record of a metric with entitlements.
 * 2. Latency from a record to its threshold event, on moto: a record that reaches a
 *    limit, through the aggregator, the ledger's stream (read from moto), the consumer
 *    and the pipe's stand-in to moto's bus; p50 and p99 of each step, the consumer's
 *    DynamoDB requests and moto's time per request.
 * 3. The authorizer's decision time: warm (access item cached) and with its GetItem.
 */
import { generateKeyPairSync, sign } from 'crypto';
import * as http from 'http';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { KinesisStreamEvent } from 'aws-lambda';
import { BillingPlan, EntitlementPeriod, LimitAction } from '../src';
import { accessKey, AUTHORIZER_ENV } from '../src/entitlements/contract';
import { tenantPlanKey } from '../src/plans/contract';
import { bundled, createWorld, LedgerFeed, PipesStandIn, synthesize } from '../test/entitlements/support';
import { kinesisEvent, kinesisRecord, lambdaContext, TestClock, toRecords, Usage, usageJson } from '../test/ingestor/support';
import { startMoto } from '../test/support/emulators';
import { startRecordingProxy } from '../test/support/recording-proxy';

const RECORDS = Number(process.env.BENCH_RECORDS ?? 5000);
const TENANTS = 1000;
const METRICS = 10;
const START = Date.parse('2026-11-20T10:00:00Z');
const fmt = (n: number, digits = 2) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

/** A seeded generator (a linear congruential one): every run feeds the same records. */
function rng(seed: number): () => number {
  let state = BigInt(seed);
  return () => {
    state = (state * 6364136223846793005n + 1442695040888963407n) % (2n ** 64n);
    return Number(state / 2n ** 11n) / 2 ** 53;
  };
}

function plansWith(entitled: number): BillingPlan[] {
  return [{
    name: 'bench',
    metrics: Array.from({ length: entitled }, (_, i) => ({
      metric: `metric_${i}`,
      entitlements: [{ limit: '400', period: EntitlementPeriod.DAY, thresholds: [80], onLimit: LimitAction.BLOCK }],
    })),
  }];
}

function records(): Usage[] {
  const random = rng(20261127);
  const out: Usage[] = [];
  for (let i = 0; out.length < RECORDS; i++) {
    const u: Usage = {
      id: `evt-${i.toString(36)}`,
      tenantId: `tenant-${String(Math.floor(random() * TENANTS)).padStart(4, '0')}`,
      metric: `metric_${Math.floor(random() * METRICS)}`,
      value: `${1 + Math.floor(random() * 100)}.${String(Math.floor(random() * 1000)).padStart(3, '0')}`,
      timestamp: START + Math.floor(random() * 50 * 60_000),
    };
    out.push(u);
    if (random() < 0.05) out.push(u); // a resend
  }
  return out.slice(0, RECORDS);
}

/**
 * Each part starts its own moto (and sets AWS_ENDPOINT_URL to it); the bundled handlers a part
 * before loaded keep their SDK clients, pointed at the moto it stopped. Forget them: the next
 * `bundled(...)` call loads them again, with clients for this part's moto.
 */
function forgetBundledHandlers(): void {
  const assets = `${path.sep}assets${path.sep}`;
  for (const id of Object.keys(require.cache)) if (id.includes(assets)) delete require.cache[id];
}

async function writeUnits(): Promise<void> {
  forgetBundledHandlers();
  const moto = await startMoto();
  const proxy = await startRecordingProxy(moto.endpoint);
  const direct = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: moto.endpoint }));
  const clock = new TestClock(START + 55 * 60_000);
  const aggregate = bundled<KinesisStreamEvent>('ingestor/aggregator.lambda');
  const consume = bundled('entitlements/consume.lambda');
  const usage = records();
  console.log(`write units: ${fmt(usage.length, 0)} records, ${TENANTS} tenants x ${METRICS} metrics (5% resends)`);
  console.log('| metrics with entitlements | changes per batch | WRU per record ingested | RRU per record ingested | WRU per record of an entitled metric | requests per 1,000 records |');
  console.log('|---|---|---|---|---|---|');
  try {
    for (const entitled of [1, 10]) {
      for (const perBatch of [1, 100]) {
        const s = synthesize(plansWith(entitled));
        const world = await createWorld(new DynamoDBClient({ endpoint: moto.endpoint }), s);
        for (let t = 0; t < TENANTS; t++) {
          const tenantId = `tenant-${String(t).padStart(4, '0')}`;
          await direct.send(new PutCommand({ TableName: world.plansTable, Item: { ...tenantPlanKey(tenantId), tenantId, plan: 'bench', status: 'ACTIVE', version: 1, onboardedAt: new Date(START - 86_400_000).toISOString() } }));
          await direct.send(new PutCommand({ TableName: world.entitlementsTable, Item: { ...accessKey(tenantId), tenantId, status: 'ACTIVE', plan: 'bench', planVersion: 1, ver: 1 } }));
        }
        const feed = await LedgerFeed.open(moto.endpoint, new DynamoDBClient({ endpoint: moto.endpoint }), world, s);
        for (let i = 0; i < usage.length; i += 100) {
          const batch = usage.slice(i, i + 100).map((u) => kinesisRecord({ data: usageJson(u), partitionKey: u.tenantId }));
          await aggregate(kinesisEvent(batch), lambdaContext());
        }
        proxy.clear();
        for (const batch of await feed.batches({ batchSize: perBatch })) await consume(batch);
        const totals = proxy.totals((r) => r.service === 'dynamodb');
        const entitledRecords = usage.filter((u) => Number(u.metric.split('_')[1]) < entitled).length;
        console.log(`| ${entitled} | ${perBatch} | ${fmt(totals.wru / usage.length, 3)} | ${fmt(totals.rru / usage.length, 3)} | ${fmt(totals.wru / entitledRecords, 3)} | ${fmt((totals.requests * 1000) / usage.length, 0)} |`);
        if (process.env.BENCH_DETAIL) console.log(JSON.stringify(totals.byOperation));
      }
    }
  } finally {
    clock.restore();
    await proxy.stop();
    await moto.stop();
  }
}

async function latency(): Promise<void> {
  forgetBundledHandlers();
  const moto = await startMoto();
  const proxy = await startRecordingProxy(moto.endpoint);
  const client = new DynamoDBClient({ endpoint: moto.endpoint });
  const direct = DynamoDBDocumentClient.from(client);
  const s = synthesize([{ name: 'small', metrics: [{ metric: 'apiCalls', entitlements: [{ limit: '100', period: EntitlementPeriod.DAY, onLimit: LimitAction.BLOCK }] }] }]);
  const world = await createWorld(client, s);
  const feed = await LedgerFeed.open(moto.endpoint, client, world, s);
  const pipes = await PipesStandIn.open(moto.endpoint, client, world, s);
  const aggregate = bundled<KinesisStreamEvent>('ingestor/aggregator.lambda');
  const consume = bundled('entitlements/consume.lambda');
  const steps: Record<string, number[]> = { aggregator: [], stream: [], consumer: [], pipe: [], total: [] };
  const requests: number[] = [];
  const runs = Number(process.env.BENCH_LATENCY_RUNS ?? 60);
  for (let i = 0; i < runs; i++) {
    const tenantId = `lat-${i}`;
    await direct.send(new PutCommand({ TableName: world.plansTable, Item: { ...tenantPlanKey(tenantId), tenantId, plan: 'small', status: 'ACTIVE', version: 1, onboardedAt: new Date().toISOString() } }));
    const t0 = performance.now();
    await aggregate(kinesisEvent(toRecords([{ id: `r-${i}`, tenantId, metric: 'apiCalls', value: 150, timestamp: new Date().toISOString() }])), lambdaContext());
    const t1 = performance.now();
    const batches = await feed.batches();
    const t2 = performance.now();
    proxy.clear();
    for (const b of batches) await consume(b);
    requests.push(proxy.totals((r) => r.service === 'dynamodb').requests);
    const t3 = performance.now();
    const events = await pipes.run();
    const t4 = performance.now();
    if (!events.some((e) => e.detail.tenantId === tenantId)) throw new Error(`no event for ${tenantId}`);
    steps.aggregator.push(t1 - t0);
    steps.stream.push(t2 - t1);
    steps.consumer.push(t3 - t2);
    steps.pipe.push(t4 - t3);
    steps.total.push(t4 - t0);
  }
  // moto's own time per DynamoDB request: a GetItem of a small item, timed alone.
  const gets: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t = performance.now();
    await client.send(new GetItemCommand({ TableName: world.plansTable, Key: { pk: { S: 'TENANT#lat-0' }, sk: { S: 'PLAN' } } }));
    gets.push(performance.now() - t);
  }
  console.log(`\nlatency from a record to its threshold event on moto (${runs} records, each reaching its limit)`);
  console.log('| step | p50 ms | p99 ms |');
  console.log('|---|---|---|');
  for (const [k, xs] of Object.entries(steps)) console.log(`| ${k} | ${fmt(pct(xs, 50), 1)} | ${fmt(pct(xs, 99), 1)} |`);
  console.log(`consumer DynamoDB requests per crossing batch: ${fmt(pct(requests, 50), 0)} (p50), ${fmt(Math.max(...requests), 0)} (max); `
    + `moto GetItem p50 ${fmt(pct(gets, 50), 2)} ms, p99 ${fmt(pct(gets, 99), 2)} ms`);
  await proxy.stop();
  await moto.stop();
}

async function authorizer(): Promise<void> {
  forgetBundledHandlers();
  const moto = await startMoto();
  const client = new DynamoDBClient({});
  const s = synthesize([{ name: 'small', metrics: [{ metric: 'apiCalls', entitlements: [{ limit: '100', period: EntitlementPeriod.DAY, onLimit: LimitAction.BLOCK }] }] }]);
  const world = await createWorld(client, s);
  await DynamoDBDocumentClient.from(client).send(new PutCommand({ TableName: world.entitlementsTable, Item: { ...accessKey('acme'), tenantId: 'acme', status: 'ACTIVE' } }));
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const server = http.createServer((req, res) => {
    if (req.url === '/.well-known/jwks.json') {res.end(JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'k', use: 'sig' }] }));} else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const issuer = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  Object.assign(process.env, {
    [AUTHORIZER_ENV.ISSUER]: issuer,
    [AUTHORIZER_ENV.AUDIENCES]: '["app"]',
    [AUTHORIZER_ENV.TENANT_CLAIM]: 'custom:tenantId',
    [AUTHORIZER_ENV.ROUTE_METRICS]: '{}',
    [AUTHORIZER_ENV.DEFAULT_METRIC]: 'apiCalls',
  });
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${part({ alg: 'RS256', kid: 'k' })}.${part({ 'iss': issuer, 'aud': 'app', 'exp': Math.floor(Date.now() / 1000) + 3600, 'custom:tenantId': 'acme' })}`;
  const token = `${body}.${sign('RSA-SHA256', Buffer.from(body), privateKey).toString('base64url')}`;
  const authorize = bundled('entitlements/authorizer.lambda');
  const event = { routeKey: 'GET /orders', headers: { authorization: `Bearer ${token}` } };
  const time = async (cacheSeconds: string, n: number) => {
    process.env[AUTHORIZER_ENV.CACHE_SECONDS] = cacheSeconds;
    await authorize(event);
    const xs: number[] = [];
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      const r = await authorize(event);
      xs.push(performance.now() - t);
      if (!r.isAuthorized) throw new Error('refused');
    }
    return xs;
  };
  const warm = await time('300', 1000);
  const read = await time('0', 300);
  console.log(`\nauthorizer decision (warm execution environment, token verified every call): access item cached p50 ${fmt(pct(warm, 50), 3)} ms, p99 ${fmt(pct(warm, 99), 3)} ms; `
    + `with its GetItem on moto p50 ${fmt(pct(read, 50), 2)} ms, p99 ${fmt(pct(read, 99), 2)} ms`);
  await new Promise<void>((r) => server.close(() => r()));
  await moto.stop();
}

async function main(): Promise<void> {
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  const only = process.env.BENCH_PART;
  if (!only || only === 'writes') await writeUnits();
  if (!only || only === 'latency') await latency();
  if (!only || only === 'authorizer') await authorizer();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
