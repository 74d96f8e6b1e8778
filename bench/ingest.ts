/**
 * Ingest benchmark (not part of the test suite):
 *
 *   npx projen bench:ingest
 *
 * Feeds 100,000 synthetic usage records (1,000 tenants × 10 metrics, 5%
 * duplicates resent later with new sequence numbers) through the aggregator
 * handler (the bundle Lambda runs, the real AWS SDK) against moto, in batches
 * of 100 (the construct's default batch size), and reports records per second,
 * DynamoDB requests per 1,000 records next to the floor, and the aggregates'
 * drift from the truth.
 *
 * In the same run and against the same emulator, the same records in the same
 * batches go through sbt-aws's aggregator (the Python handler in the
 * @cdklabs/sbt-aws npm package, installed on demand into bench/sbt-aws/, which
 * is git-ignored), as sbt-aws deploys it: one S3 object of newline-delimited
 * records per batch (what its Firehose writes), one S3 event per object.
 *
 * The emulator is moto with the patch in test/ingestor/moto-serializable/
 * (requests served one at a time, as DynamoDB isolates transactions, and
 * transactions that copy only the items they touch): plain moto 5.2 deep-copies
 * the whole table on every TransactWriteItems, which makes a table of 100,000
 * dedup marks unusable. Both handlers run against the same patched server.
 *
 * The aggregator runs with a lateness of 6 hours, so that no window closes
 * during the run (a record of a closed window is rightly quarantined LATE).
 *
 * Environment: BENCH_RECORDS (default 100000), BENCH_BATCH (default 100).
 */
import { execFile, execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { promisify } from 'util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { KinesisStreamRecord } from 'aws-lambda';
import {
  createAggregateTable,
  driftOf,
  kinesisEvent,
  kinesisRecord,
  lambdaContext,
  loadAggregatorBundle,
  readTable,
  scanAll,
  startSerializableMoto,
  truthOf,
  Usage,
} from '../test/ingestor/support';

const SBT_VERSION = '0.5.25';
const POWERTOOLS_PYTHON = 'aws-lambda-powertools[tracer]==2.31.0'; // the layer sbt-aws 0.5.25 deploys
const RECORDS = Number(process.env.BENCH_RECORDS ?? 100_000);
const BATCH = Number(process.env.BENCH_BATCH ?? 100);
const TENANTS = 1_000;
const METRICS = 10;
const DUPLICATE_SHARE = 0.05;
const HOUR = 3_600_000;
const SBT_DIR = path.join(__dirname, 'sbt-aws');
const OUT = path.join(__dirname, 'out');

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

function syntheticRecords(): { sent: Usage[]; distinct: number } {
  const random = mulberry32(20261127);
  const duplicates = Math.round(RECORDS * DUPLICATE_SHARE);
  const distinct = RECORDS - duplicates;
  const from = Math.floor(Date.now() / HOUR) * HOUR - HOUR; // previous and current hour: both windows open
  const span = Date.now() - 1000 - from;
  const sent: Usage[] = [];
  for (let i = 0; i < distinct; i++) {
    sent.push({
      id: `evt-${i.toString(36)}-${Math.floor(random() * 1e9).toString(36)}`,
      tenantId: `tenant-${String(Math.floor(random() * TENANTS)).padStart(4, '0')}`,
      metric: `metric_${Math.floor(random() * METRICS)}`,
      value: 1 + Math.floor(random() * 100),
      timestamp: new Date(from + Math.floor(random() * span)).toISOString(),
    });
  }
  // Each duplicate is a resend of an earlier record, placed after it.
  for (let d = 0; d < duplicates; d++) {
    const source = Math.floor(random() * sent.length);
    const at = source + 1 + Math.floor(random() * (sent.length - source));
    sent.splice(at, 0, { ...sent[source] });
  }
  return { sent, distinct };
}

function batchesOf<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The fewest DynamoDB requests any design needs: one write per distinct aggregate key per batch. */
function floorOf(batches: readonly Usage[][], keyOf: (u: Usage) => string): number {
  let floor = 0;
  for (const batch of batches) floor += new Set(batch.map(keyOf)).size;
  return floor;
}

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
    execFileSync(path.join(venv, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', POWERTOOLS_PYTHON, 'boto3', 'jmespath'], {
      stdio: 'inherit',
    });
    fs.writeFileSync(path.join(venv, '.ready'), '');
  }
  return { pkg, python };
}

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

async function main(): Promise<void> {
  fs.mkdirSync(OUT, { recursive: true });
  const sbt = installSbtAws();
  const { sent, distinct } = syntheticRecords();
  const batches = batchesOf(sent, BATCH);
  const truth = truthOf(sent);
  console.log(
    `${fmt(sent.length)} records (${fmt(distinct)} distinct, ${fmt(sent.length - distinct)} duplicates), ` +
    `${TENANTS} tenants × ${METRICS} metrics, batches of ${BATCH}, hourly windows, values 1..100`,
  );

  const moto = await startSerializableMoto();
  process.env.POWERTOOLS_LOG_LEVEL = 'WARN';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  process.env.POWERTOOLS_SERVICE_NAME = 'bench';
  process.env.POWERTOOLS_METRICS_NAMESPACE = 'Bench';
  process.env.WINDOW_GRANULARITY = 'HOUR';
  // Lateness of 6 hours: no window of the run may close while the run (up to an hour on moto) feeds it,
  // or its records would rightly be quarantined LATE and the drift would measure the clock, not the handler.
  process.env.ALLOWED_LATENESS_SECONDS = String(6 * 3600);
  try {
    // ---- ours ----
    const client = new DynamoDBClient({});
    const table = await createAggregateTable(client, 'bench');
    const aggregator = loadAggregatorBundle();
    const requests: Record<string, number> = {};
    aggregator.dynamodb.middlewareStack.add(
      (next, context) => async (args) => {
        // below the retry middleware: every HTTP request counts, retries included
        requests[context.commandName!] = (requests[context.commandName!] ?? 0) + 1;
        return next(args);
      },
      { step: 'deserialize', name: 'bench-request-counter' },
    );
    const events: KinesisStreamRecord[][] = batches.map((b) => b.map((u) => kinesisRecord({ data: u })));
    let failures = 0;
    const start = performance.now();
    for (const [i, records] of events.entries()) {
      const res = await aggregator.handler(kinesisEvent(records), lambdaContext());
      failures += res.batchItemFailures.length;
      if ((i + 1) % 100 === 0) console.error(`  ours: ${fmt((i + 1) * BATCH)} records, ${fmt(((i + 1) * BATCH * 1000) / (performance.now() - start))} records/s`);
    }
    const oursSeconds = (performance.now() - start) / 1000;
    const oursRequests = Object.values(requests).reduce((a, b) => a + b, 0);
    const oursTable = await readTable(client, table);
    const oursDrift = driftOf(oursTable.aggregates, truth);
    const oursFloor = floorOf(batches, (u) => `${u.tenantId}|${u.metric}|${Math.floor(Date.parse(String(u.timestamp)) / HOUR)}`);

    const truthSum = [...truth.values()].reduce((n, t) => n + t.sum, 0);
    const per1000 = (n: number) => (n * 1000) / sent.length;
    console.log('');
    console.log('cdk-saas-billing UsageIngestor (Kinesis batch → TransactWriteItems per aggregate key)');
    console.log(`  records/s:                       ${fmt(sent.length / oursSeconds)} (${fmt(oursSeconds, 1)} s in the handler)`);
    console.log(`  DynamoDB requests / 1,000:       ${fmt(per1000(oursRequests), 1)} ${JSON.stringify(requests)}`);
    console.log(`  floor / 1,000:                   ${fmt(per1000(oursFloor), 1)} (distinct tenant/metric/window keys per batch; dedup rides in the same transaction: +0)`);
    console.log(`  drift from truth:                count ${oursDrift.countDrift}, sum ${oursDrift.sumDrift} (of ${fmt(truthSum)}), records lost ${oursDrift.lost}`);
    console.log(`  batch item failures:             ${failures}; dedup marks ${fmt(oursTable.dedupMarks.length)}; quarantined ${oursTable.quarantine.length}`);

    // ---- sbt-aws ----
    const batchesFile = path.join(OUT, 'ingest-batches.json');
    fs.writeFileSync(batchesFile, JSON.stringify(batches.map((b) => b.map((u) => JSON.stringify(u)))));
    const configFile = path.join(OUT, 'ingest-sbt-aws.json');
    const sbtTable = `sbt-aws-data-${process.pid}`;
    fs.writeFileSync(configFile, JSON.stringify({ endpoint: moto.endpoint, package: sbt.pkg, table: sbtTable, bucket: `sbt-aws-firehose-${process.pid}`, batches: batchesFile }));
    // Asynchronously: the event loop must keep draining moto's stderr pipe, or moto blocks on its request log.
    const { stdout: out } = await promisify(execFile)(sbt.python, [path.join(__dirname, 'sbt_aws_aggregator.py'), configFile], {
      encoding: 'utf8',
      maxBuffer: 1024 * 1024 * 1024,
    });
    const sbtRun = JSON.parse(out.trim().split('\n').pop()!) as { seconds: number; dynamodbRequests: number; s3Requests: number };
    const sbtItems = await scanAll(client, sbtTable);
    const perTenantMetric = new Map<string, number>();
    for (const [k, t] of truth) {
      const [tenant, metric] = k.split('|');
      perTenantMetric.set(`${tenant}|${metric}`, (perTenantMetric.get(`${tenant}|${metric}`) ?? 0) + t.sum);
    }
    let sbtSumDrift = 0;
    const seen = new Set<string>();
    for (const item of sbtItems) {
      for (const [attr, v] of Object.entries(item)) {
        if (attr === 'tenantId' || v.N === undefined) continue;
        const key = `${item.tenantId.S}|${attr}`;
        seen.add(key);
        sbtSumDrift += Math.abs(Number(v.N) - (perTenantMetric.get(key) ?? 0));
      }
    }
    for (const [k, s] of perTenantMetric) if (!seen.has(k)) sbtSumDrift += s;
    const sbtFloor = floorOf(batches, (u) => `${u.tenantId}|${u.metric}`);

    // ---- report ----
    console.log(`sbt-aws ${SBT_VERSION} FirehoseAggregator handler (S3 object of ${BATCH} lines → UpdateItem per line)`);
    console.log(`  records/s:                       ${fmt(sent.length / sbtRun.seconds)} (${fmt(sbtRun.seconds, 1)} s in the handler)`);
    console.log(`  DynamoDB requests / 1,000:       ${fmt(per1000(sbtRun.dynamodbRequests), 1)} (+ ${fmt(per1000(sbtRun.s3Requests), 1)} S3 GetObject)`);
    console.log(`  floor / 1,000:                   ${fmt(per1000(sbtFloor), 1)} (distinct tenant/metric keys per batch; it keeps no windows and no dedup)`);
    console.log(`  drift from truth:                sum ${fmt(sbtSumDrift)} (${fmt((100 * sbtSumDrift) / truthSum, 2)}% of ${fmt(truthSum)}); no counts, no windows`);
    client.destroy();
    aggregator.dynamodb.destroy();
  } finally {
    await moto.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
