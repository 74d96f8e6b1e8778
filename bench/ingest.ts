/**
 * Ingest benchmark (not part of the test suite):
 *
 *   npx projen bench:ingest                      # cost: three distributions, ours beside sbt-aws's aggregator
 *   BENCH_MODE=capacity npx projen bench:ingest  # capacity model: writes per partition key per second
 *   BENCH_MODE=scale npx projen bench:ingest     # closing at scale: fold and merge rates, closing lag (bench/closing-scale.ts)
 *
 * Cost mode. For each of three distributions of 20,000 usage records (1,000
 * tenants x 10 metrics; 20 tenants x 5 metrics; one hot tenant-metric), 5% of
 * them resends of earlier records, arriving evenly over two simulated hours:
 * - ours: the bundled aggregator (batches of 100) and the bundled closer (run
 *   every 5 simulated minutes, as its schedule does, until every window closed);
 * - sbt-aws 0.5.25's aggregator (its Python handler from the @cdklabs/sbt-aws npm
 *   package, installed on demand into the git-ignored bench/sbt-aws/), fed the
 *   same batches as S3 objects, as its Firehose writes them.
 * Both talk to moto through the recording proxy (test/support/recording-proxy.ts),
 * which bills every DynamoDB request as DynamoDB does (1 WRU per started KB per
 * item written, the larger of before and after; 2 per transactional item; plus
 * each index write; read units per 4 KB). It prints, per distribution, WRU per
 * record (closing included), DynamoDB requests per 1,000 records, the read units
 * of closing, EventBridge requests, and the drift of the closed windows from the
 * truth (every distinct record counted once, exact decimal sums).
 *
 * Capacity mode. 10,000 tenants x 20 metrics at 50,000 records/s, one tenant of
 * them at 10,000 records/s, for BENCH_SECONDS simulated seconds (default 4):
 * the bundled aggregator writes through the proxy with no emulator behind it
 * (every write succeeds, nothing is stored), and the proxy counts the write
 * units per partition key per simulated second. It also places the records on
 * 64 Kinesis shards by their partition key (MD5, as Kinesis does), with the
 * tenant id and with the record id as the partition key, and measures how fast
 * the closer's fold reads ledger items.
 *
 * Environment: BENCH_RECORDS (20000), BENCH_BATCH (100), BENCH_DISTRIBUTIONS
 * (spread,few,hot), BENCH_SECONDS (capacity mode, 4), BENCH_SBT_AWS (`0` leaves
 * sbt-aws's aggregator out of the cost mode: it needs npm and PyPI, and its
 * figures do not depend on this library).
 */
import { execFile, execFileSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { promisify } from 'util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { KinesisStreamRecord } from 'aws-lambda';
import { scaleMode } from './closing-scale';
import { DEFAULT_LEDGER_KEYS as LEDGER_SHARDS } from '../src/ingestor/layout';
import { LedgerFold, paginate, PageEntry } from '../src/ingestor/shared.lambda/ledger';
import { addDecimals } from '../src/shared.lambda/decimal';
import {
  bundle, closedWindows, CLOSING_MARGIN_SECONDS, configure, createUsageTable, driftOf, HOUR, kinesisEvent, kinesisRecord, lambdaContext,
  scanAll, TestClock, truthOf, Usage, usageJson,
} from '../test/ingestor/support';
import { startMoto } from '../test/support/emulators';
import { RecordedRequest, startRecordingProxy, Totals } from '../test/support/recording-proxy';

const SBT_VERSION = '0.5.25';
const POWERTOOLS_PYTHON = 'aws-lambda-powertools[tracer]==2.31.0'; // the layer sbt-aws 0.5.25 deploys
const RECORDS = Number(process.env.BENCH_RECORDS ?? 20_000);
const BATCH = Number(process.env.BENCH_BATCH ?? 100);
const DUPLICATE_SHARE = 0.05;
const SBT_DIR = path.join(__dirname, 'sbt-aws');
const OUT = path.join(__dirname, 'out');
/** Simulated start: the records arrive over the two hours from it. */
const START = Date.parse('2026-11-20T10:00:00Z');
const SPAN_MS = 2 * HOUR - 60_000;
const CLOSER_EVERY_MS = 5 * 60_000;

interface Distribution {
  readonly name: string;
  readonly label: string;
  readonly tenants: number;
  readonly metrics: number;
}

const DISTRIBUTIONS: Distribution[] = [
  { name: 'spread', label: '1,000 tenants x 10 metrics', tenants: 1000, metrics: 10 },
  { name: 'few', label: '20 tenants x 5 metrics', tenants: 20, metrics: 5 },
  { name: 'hot', label: 'one hot tenant-metric', tenants: 1, metrics: 1 },
];

/** A seeded generator (mulberry32), so that every run feeds the same records. */
/* eslint-disable no-bitwise */
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
/* eslint-enable no-bitwise */

/** A record as sent: the usage and when it reaches the stream. */
interface Sent {
  readonly usage: Usage;
  readonly arrivalMs: number;
}

/** Distinct records and 5% resends of earlier ones (placed after them), arriving evenly over the span. */
function syntheticRecords(d: Distribution): { sent: Sent[]; distinct: number } {
  const random = mulberry32(20261127);
  const duplicates = Math.round(RECORDS * DUPLICATE_SHARE);
  const distinct = RECORDS - duplicates;
  const usages: Array<Omit<Usage, 'timestamp'> & { offset: number }> = [];
  for (let i = 0; i < distinct; i++) {
    usages.push({
      id: `evt-${i.toString(36)}-${Math.floor(random() * 1e9).toString(36)}`,
      tenantId: `tenant-${String(Math.floor(random() * d.tenants)).padStart(4, '0')}`,
      metric: `metric_${Math.floor(random() * d.metrics)}`,
      value: `${1 + Math.floor(random() * 100)}.${String(Math.floor(random() * 1000)).padStart(3, '0')}`,
      offset: Math.floor(random() * 20_000),
    });
  }
  for (let k = 0; k < duplicates; k++) {
    const source = Math.floor(random() * usages.length);
    const at = source + 1 + Math.floor(random() * (usages.length - source));
    usages.splice(at, 0, { ...usages[source] });
  }
  // Event time: up to 20 s before the first arrival of the record (a resend keeps it).
  const firstArrival = new Map<string, number>();
  const sent = usages.map((u, k) => {
    const arrivalMs = START + Math.floor((k * SPAN_MS) / usages.length);
    if (!firstArrival.has(u.id)) firstArrival.set(u.id, arrivalMs);
    const { offset, ...rest } = u;
    return { usage: { ...rest, timestamp: Math.max(START, firstArrival.get(u.id)! - offset) }, arrivalMs };
  });
  return { sent, distinct };
}

function batchesOf<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function installSbtAws(): { pkg: string; python: string } {
  const pkg = path.join(SBT_DIR, 'package');
  if (!fs.existsSync(path.join(pkg, 'resources', 'functions', 'data-aggregator', 'index.py'))) {
    fs.mkdirSync(SBT_DIR, { recursive: true });
    console.log(`fetching @cdklabs/sbt-aws@${SBT_VERSION} into ${path.relative(process.cwd(), SBT_DIR)} (npm pack) ...`);
    const tgz = execFileSync('npm', ['pack', `@cdklabs/sbt-aws@${SBT_VERSION}`, '--pack-destination', SBT_DIR, '--silent'], { encoding: 'utf8' })
      .trim().split('\n').pop()!;
    execFileSync('tar', ['xzf', path.join(SBT_DIR, tgz), '-C', SBT_DIR]);
  }
  const venv = path.join(SBT_DIR, '.venv');
  const python = path.join(venv, 'bin', 'python');
  if (!fs.existsSync(path.join(venv, '.ready'))) {
    console.log(`creating ${path.relative(process.cwd(), venv)} with ${POWERTOOLS_PYTHON} and boto3 ...`);
    execFileSync(process.env.PYTHON ?? 'python3', ['-m', 'venv', '--system-site-packages', venv], { stdio: 'inherit' });
    execFileSync(path.join(venv, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', POWERTOOLS_PYTHON, 'boto3', 'jmespath'], { stdio: 'inherit' });
    fs.writeFileSync(path.join(venv, '.ready'), '');
  }
  return { pkg, python };
}

/** What one side measured on one distribution. */
interface Figures {
  readonly records: number;
  readonly wru: number;
  readonly wruPerRecord: number;
  readonly dynamodbRequests: number;
  readonly requestsPer1000: number;
  readonly byOperation: Totals['byOperation'];
  readonly closingRru?: number;
  readonly closingRequests?: number;
  readonly eventRequestsPer1000?: number;
  readonly drift: string;
  readonly seconds: number;
}

type Proxy = Awaited<ReturnType<typeof startRecordingProxy>>;

async function runOurs(d: Distribution, sent: Sent[], proxy: Proxy, client: DynamoDBClient): Promise<Figures> {
  await createUsageTable(client, {}, `bench-${d.name}`);
  const aggregate = bundle<ReturnType<typeof kinesisEvent>, { batchItemFailures: unknown[] }>('aggregator');
  const close = bundle<unknown, { windowsClosed: number }>('closer');
  const clock = new TestClock(START);
  proxy.clear();
  const started = performance.now();
  let nextTick = START;
  let failures = 0;
  const closeDue = async (until: number) => {
    for (; nextTick <= until; nextTick += CLOSER_EVERY_MS) {
      clock.set(nextTick);
      proxy.label = 'close';
      await close({}, lambdaContext());
    }
  };
  try {
    for (const [i, batch] of batchesOf(sent, BATCH).entries()) {
      const at = batch[batch.length - 1].arrivalMs + 1000;
      await closeDue(at);
      clock.set(at);
      proxy.label = 'ingest';
      const records: KinesisStreamRecord[] = batch.map((s) => kinesisRecord({
        data: usageJson(s.usage), partitionKey: s.usage.tenantId, arrivalMs: s.arrivalMs,
      }));
      failures += (await aggregate(kinesisEvent(records), lambdaContext())).batchItemFailures.length;
      if ((i + 1) % 50 === 0) process.stderr.write(`  ours/${d.name}: ${fmt((i + 1) * BATCH)} records\n`);
    }
    // Keep the schedule running until the last window (start + 2 h) closed: its end + 1 h lateness + margin.
    await closeDue(START + 3 * HOUR + CLOSING_MARGIN_SECONDS * 1000 + CLOSER_EVERY_MS);
  } finally {
    clock.restore();
  }
  const seconds = (performance.now() - started) / 1000;
  const requests = [...proxy.requests];
  proxy.label = 'read';
  const windows = await closedWindows();
  const truth = truthOf(sent.map((s) => s.usage));
  const drift = driftOf(windows, truth);
  const quarantined = (await scanAll(client, process.env.USAGE_TABLE_NAME!)).filter((i) => i.pk.S!.startsWith('QUARANTINE#')).length;
  const dynamodb = requests.filter((r) => r.service === 'dynamodb');
  const closing = dynamodb.filter((r) => r.label === 'close');
  const sum = (rs: RecordedRequest[], f: (r: RecordedRequest) => number) => rs.reduce((n, r) => n + f(r), 0);
  const byOperation: Totals['byOperation'] = {};
  for (const r of dynamodb) {
    const key = `${r.label}:${r.operation}`;
    const o = (byOperation[key] ??= { requests: 0, wru: 0, rru: 0 });
    o.requests++;
    o.wru += r.wru;
    o.rru += r.rru;
  }
  const wru = sum(dynamodb, (r) => r.wru);
  return {
    records: sent.length,
    wru,
    wruPerRecord: wru / sent.length,
    dynamodbRequests: dynamodb.length,
    requestsPer1000: (dynamodb.length * 1000) / sent.length,
    byOperation,
    closingRru: sum(closing, (r) => r.rru),
    closingRequests: closing.length,
    eventRequestsPer1000: (requests.filter((r) => r.service === 'events').length * 1000) / sent.length,
    drift: `count drift ${drift.countDrift}, sums wrong ${drift.sumsWrong}, lost ${drift.lost} (${windows.length} windows; batch failures ${failures}; quarantined ${quarantined})`,
    seconds,
  };
}

async function runSbtAws(
  d: Distribution, sent: Sent[], sbt: { pkg: string; python: string }, motoEndpoint: string,
  proxy: Awaited<ReturnType<typeof startRecordingProxy>>, client: DynamoDBClient,
): Promise<Figures> {
  fs.mkdirSync(OUT, { recursive: true });
  const batchesFile = path.join(OUT, `ingest-batches-${d.name}.json`);
  fs.writeFileSync(batchesFile, JSON.stringify(batchesOf(sent, BATCH).map((b) => b.map((s) => usageJson(s.usage)))));
  const configFile = path.join(OUT, `ingest-sbt-aws-${d.name}.json`);
  const table = `sbt-aws-data-${d.name}-${process.pid}`;
  fs.writeFileSync(configFile, JSON.stringify({
    endpoint: motoEndpoint, dynamodbEndpoint: proxy.endpoint, package: sbt.pkg, table, bucket: `sbt-aws-firehose-${d.name}-${process.pid}`, batches: batchesFile,
  }));
  proxy.clear();
  proxy.label = 'sbt';
  // Asynchronously: the event loop must keep serving the proxy and draining moto's stderr pipe.
  const { stdout } = await promisify(execFile)(sbt.python, [path.join(__dirname, 'sbt_aws_aggregator.py'), configFile], { encoding: 'utf8', maxBuffer: 1024 * 1024 * 1024 });
  const run = JSON.parse(stdout.trim().split('\n').pop()!) as { seconds: number; dynamodbRequests: number; s3Requests: number };
  const updates = proxy.requests.filter((r) => r.service === 'dynamodb' && r.operation === 'UpdateItem');
  const wru = updates.reduce((n, r) => n + r.wru, 0);
  // sbt-aws keeps one running sum per tenant and metric: no windows, no dedup.
  const perTenantMetric = new Map<string, string>();
  for (const [k, t] of truthOf(sent.map((s) => s.usage))) {
    const [tenant, metric] = JSON.parse(k) as string[];
    const key = `${tenant}|${metric}`;
    perTenantMetric.set(key, addDecimals(perTenantMetric.get(key) ?? '0', t.sum));
  }
  let wrong = 0;
  let excess = 0;
  for (const item of await scanAll(client, table)) {
    for (const [attr, v] of Object.entries(item)) {
      if (attr === 'tenantId' || v.N === undefined) continue;
      const want = perTenantMetric.get(`${item.tenantId.S}|${attr}`) ?? '0';
      if (v.N !== want) wrong++;
      excess += Number(v.N) - Number(want);
    }
  }
  const total = [...perTenantMetric.values()].reduce((n, s) => n + Number(s), 0);
  return {
    records: sent.length,
    wru,
    wruPerRecord: wru / sent.length,
    dynamodbRequests: run.dynamodbRequests,
    requestsPer1000: (run.dynamodbRequests * 1000) / sent.length,
    byOperation: { UpdateItem: { requests: updates.length, wru, rru: 0 } },
    drift: `${wrong} of ${perTenantMetric.size} tenant/metric sums wrong, +${fmt((100 * excess) / total, 2)}% of the total (no windows, no dedup)`,
    seconds: run.seconds,
  };
}

async function costMode(): Promise<void> {
  const only = process.env.BENCH_DISTRIBUTIONS?.split(',');
  const distributions = DISTRIBUTIONS.filter((d) => !only || only.includes(d.name));
  const withSbtAws = process.env.BENCH_SBT_AWS !== '0';
  const sbt = withSbtAws ? installSbtAws() : undefined;
  const moto = await startMoto();
  const proxy = await startRecordingProxy(moto.endpoint);
  Object.assign(process.env, { POWERTOOLS_LOG_LEVEL: 'WARN', POWERTOOLS_METRICS_DISABLED: 'true', POWERTOOLS_SERVICE_NAME: 'bench', POWERTOOLS_METRICS_NAMESPACE: 'Bench' });
  const client = new DynamoDBClient({ endpoint: proxy.endpoint });
  const results: Record<string, { ours: Figures; sbtAws?: Figures }> = {};
  try {
    for (const d of distributions) {
      const { sent, distinct } = syntheticRecords(d);
      console.log(`\n== ${d.label}: ${fmt(sent.length)} records (${fmt(distinct)} distinct, ${fmt(sent.length - distinct)} resends), batches of ${BATCH}, `
        + 'arriving over 2 hours, hourly windows, lateness 1 h');
      const ours = await runOurs(d, sent, proxy, client);
      const sbtAws = sbt ? await runSbtAws(d, sent, sbt, moto.endpoint, proxy, client) : undefined;
      results[d.name] = { ours, sbtAws };
      console.log('  cdk-saas-billing UsageIngestor (ledger: one item per record; closer: one query per shard per window)');
      console.log(`    WRU per record (closing included): ${fmt(ours.wruPerRecord, 3)} (${fmt(ours.wru)} WRU)`);
      console.log(`    DynamoDB requests / 1,000 records: ${fmt(ours.requestsPer1000, 1)} (${fmt(ours.dynamodbRequests)}; closing ${fmt(ours.closingRequests!)})`);
      console.log(`    closing read units:                ${fmt(ours.closingRru!, 1)} RRU (${fmt(ours.closingRru! / sent.length, 4)} per record)`);
      console.log(`    EventBridge PutEvents / 1,000:      ${fmt(ours.eventRequestsPer1000!, 1)} (one usageWindowClosed event per window, 10 per request)`);
      console.log(`    drift:                             ${ours.drift}`);
      console.log(`    by request:                        ${JSON.stringify(ours.byOperation)}`);
      console.log(`    time on moto:                      ${fmt(ours.seconds, 1)} s`);
      if (!sbtAws) continue;
      console.log(`  sbt-aws ${SBT_VERSION} FirehoseAggregator (UpdateItem ADD per record)`);
      console.log(`    WRU per record:                    ${fmt(sbtAws.wruPerRecord, 3)} (${fmt(sbtAws.wru)} WRU)`);
      console.log(`    DynamoDB requests / 1,000 records: ${fmt(sbtAws.requestsPer1000, 1)}`);
      console.log(`    drift:                             ${sbtAws.drift}`);
      console.log(`    time on moto:                      ${fmt(sbtAws.seconds, 1)} s`);
    }
    console.log('\nsummary (target: at most 1.1 WRU per record closing included, at most 50 DynamoDB requests per 1,000 records, drift 0)');
    console.log('| distribution | ours WRU/record | ours requests/1,000 | closing RRU | ours drift | sbt-aws WRU/record | sbt-aws requests/1,000 |');
    console.log('|---|---|---|---|---|---|---|');
    for (const d of distributions) {
      const { ours, sbtAws } = results[d.name];
      console.log(`| ${d.label} | ${fmt(ours.wruPerRecord, 3)} | ${fmt(ours.requestsPer1000, 1)} | ${fmt(ours.closingRru!, 1)} | ${ours.drift.split(' (')[0]} | `
        + `${sbtAws ? fmt(sbtAws.wruPerRecord, 3) : '-'} | ${sbtAws ? fmt(sbtAws.requestsPer1000, 1) : '-'} |`);
    }
    fs.mkdirSync(OUT, { recursive: true });
    fs.writeFileSync(path.join(OUT, 'ingest-results.json'), JSON.stringify(results, null, 2));
  } finally {
    client.destroy();
    await proxy.stop();
    await moto.stop();
  }
}

/** The Kinesis shard of a partition key: MD5 as a 128-bit number, shards own equal hash ranges. */
function kinesisShard(partitionKey: string, shards: number): number {
  const hash = BigInt(`0x${createHash('md5').update(partitionKey, 'utf8').digest('hex')}`);
  return Number((hash * BigInt(shards)) / BigInt(2) ** BigInt(128));
}

async function capacityMode(): Promise<void> {
  const seconds = Number(process.env.BENCH_SECONDS ?? 4);
  const rate = 50_000;
  const hotRate = 10_000;
  const tenants = 10_000;
  const metrics = 20;
  const kinesisShards = 64;
  const proxy = await startRecordingProxy('http://127.0.0.1:9', { sink: true });
  Object.assign(process.env, { AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' });
  Object.assign(process.env, { POWERTOOLS_LOG_LEVEL: 'WARN', POWERTOOLS_METRICS_DISABLED: 'true', POWERTOOLS_SERVICE_NAME: 'bench', POWERTOOLS_METRICS_NAMESPACE: 'Bench' });
  configure('capacity');
  const aggregate = bundle<ReturnType<typeof kinesisEvent>, { batchItemFailures: unknown[] }>('aggregator');
  const clock = new TestClock(START);
  const random = mulberry32(50_000);
  const perShard = { tenant: new Map<string, number>(), record: new Map<string, number>() };
  let failures = 0;
  try {
    for (let s = 0; s < seconds; s++) {
      const records: KinesisStreamRecord[] = [];
      for (let i = 0; i < rate; i++) {
        const hot = i < hotRate;
        const tenantId = hot ? 'tenant-hot' : `tenant-${String(Math.floor(random() * tenants)).padStart(5, '0')}`;
        const id = `s${s}-r${i}-${Math.floor(random() * 1e9).toString(36)}`;
        const arrivalMs = START + s * 1000 + Math.floor((i * 1000) / rate);
        const usage: Usage = { id, tenantId, metric: `metric_${Math.floor(random() * metrics)}`, value: 1, timestamp: arrivalMs - 500 };
        records.push(kinesisRecord({ data: usageJson(usage), partitionKey: tenantId, arrivalMs }));
        for (const [choice, key] of [['tenant', tenantId], ['record', id]] as const) {
          const k = `${s}|${kinesisShard(key, kinesisShards)}`;
          perShard[choice].set(k, (perShard[choice].get(k) ?? 0) + 1);
        }
      }
      clock.set(START + s * 1000 + 999);
      proxy.label = String(s);
      for (const batch of batchesOf(records, BATCH)) failures += (await aggregate(kinesisEvent(batch), lambdaContext())).batchItemFailures.length;
      process.stderr.write(`  capacity: simulated second ${s + 1} of ${seconds}\n`);
    }
  } finally {
    clock.restore();
  }
  // Write units per partition key per simulated second.
  const perKey = new Map<string, number>();
  for (const r of proxy.requests) {
    for (const [pk, wru] of r.writesByPartitionKey) perKey.set(`${r.label}|${pk}`, (perKey.get(`${r.label}|${pk}`) ?? 0) + wru);
  }
  const ledger = [...perKey.entries()].filter(([k]) => k.includes('|L#'));
  const perSecond = (s: number) => ledger.filter(([k]) => k.startsWith(`${s}|`)).map(([, v]) => v);
  const max = Math.max(...ledger.map(([, v]) => v));
  const min = Math.min(...ledger.map(([, v]) => v));
  const others = [...perKey.entries()].filter(([k]) => !k.includes('|L#'));
  const indexWrites = proxy.requests.reduce((n, r) => n + r.indexWritesByPartitionKey.size, 0);
  const shardMax = (m: Map<string, number>) => Math.max(...m.values());
  console.log(`capacity model: ${fmt(rate)} records/s (one tenant at ${fmt(hotRate)}/s), ${fmt(tenants)} tenants x ${metrics} metrics, ${seconds} simulated seconds`);
  console.log(`  aggregator batch failures: ${failures}; DynamoDB requests ${fmt(proxy.requests.length)}`);
  console.log(`  usage table, ledger keys (L#00-L#${LEDGER_SHARDS - 1}): ${new Set(ledger.map(([k]) => k.split('|')[2])).size} keys; `
    + `WRU per key per second: min ${fmt(min)}, max ${fmt(max)}, mean ${fmt(perSecond(0).reduce((a, b) => a + b, 0) / LEDGER_SHARDS)} (limit 1,000)`);
  console.log(`  other keys written: ${others.map(([k, v]) => `${k.split('|').slice(2).join('|')} ${v} WRU in second ${k.split('|')[0]}`).join('; ') || 'none'}`);
  console.log(`  index writes: ${indexWrites} (the table has no index)`);
  console.log(`  Kinesis, ${kinesisShards} shards, partition key = tenant id: max ${fmt(shardMax(perShard.tenant))} records/s on one shard (limit 1,000)`);
  console.log(`  Kinesis, ${kinesisShards} shards, partition key = record id: max ${fmt(shardMax(perShard.record))} records/s on one shard (limit 1,000)`);

  // The closer's fold: ledger items per second one function folds (JSON of the Query pages parsed, items folded).
  const items = Array.from({ length: 200_000 }, (_, i) => ({
    pk: { S: `L#${String(i % LEDGER_SHARDS).padStart(2, '0')}` },
    sk: { S: `2026-11-20T10:00:00Z#tenant-${String(i % tenants).padStart(5, '0')}#s0-r${i}-abcdefg` },
    m: { S: `metric_${i % metrics}` },
    v: { N: '1.25' },
    expiresAt: { N: '1795960800' },
  }));
  const pageJson = batchesOf(items, 4000).map((page) => JSON.stringify({ Items: page }));
  const started = performance.now();
  const fold = new LedgerFold();
  for (const page of pageJson) for (const item of (JSON.parse(page) as { Items: typeof items }).Items) fold.add(item);
  const foldPerSecond = items.length / ((performance.now() - started) / 1000);
  const entries: PageEntry[] = [];
  for (const [, byKey] of fold.totals) {
    for (const [key, total] of byKey) entries.push([...(JSON.parse(key) as [string, string]), total.sum, total.count]);
  }
  const closed = paginate(Array.from({ length: tenants * metrics }, (_, i) => [`tenant-${String(i % tenants).padStart(5, '0')}`, `metric_${i % metrics}`, '1234.5', 1000] as PageEntry), 96 * 1024, 300 * 1024);
  const pageBytes = closed.pages.map((p) => Buffer.byteLength(JSON.stringify(p.entries)));
  console.log(`  closer fold (JSON parse + fold, one core): ${fmt(foldPerSecond)} ledger items/s; an hourly window at ${fmt(rate)}/s holds ${fmt(rate * 3600)} items`);
  console.log(`  closing ${fmt(tenants * metrics)} windows of a window start: ${closed.groups} tenant groups (page keys), largest page ${fmt(Math.max(...pageBytes) / 1024, 1)} KB, `
    + `${fmt(pageBytes.reduce((a, b) => a + b, 0) / 1024)} KB written in all`);
  fs.mkdirSync(OUT, { recursive: true });
  fs.writeFileSync(path.join(OUT, 'ingest-capacity.json'), JSON.stringify({
    rate,
    hotRate,
    tenants,
    metrics,
    seconds,
    ledgerMaxWruPerKeyPerSecond: max,
    ledgerMinWruPerKeyPerSecond: min,
    kinesisMaxPerShard: { tenant: shardMax(perShard.tenant), record: shardMax(perShard.record) },
    foldPerSecond,
    closeGroups: closed.groups,
    entries: entries.length,
  }, null, 2));
  await proxy.stop();
}

(process.env.BENCH_MODE === 'capacity' ? capacityMode() : process.env.BENCH_MODE === 'scale' ? scaleMode() : costMode()).catch((e) => {
  console.error(e);
  process.exit(1);
});
