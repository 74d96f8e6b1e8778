/**
 * Scale model of closing (not part of the test suite):
 *
 *   BENCH_MODE=scale npx projen bench:ingest
 *
 * Measures on this machine, with no emulator in the way:
 * - one closing worker's fold rate: ledger items per second through the real
 *   AWS SDK DynamoDB client (its HTTP response parsing and deserialization of
 *   every item included) and the worker's own fold (`foldLedgerKey` over 8 ledger
 *   keys at once, as a worker reads them), from generated Query pages of 1 MB
 *   that a stub request handler returns instead of the network;
 * - the merge: partial entries per second (the partial pages parsed, the exact
 *   sums added, the closed pages built);
 * then prints the closing model of `src/ingestor/capacity.ts` for 10,000,
 * 50,000, 100,000 and 250,000 records/s with hourly and daily windows, with
 * the measured rates in place of the model's defaults, and writes
 * bench/out/closing-scale.json.
 *
 * Environment: BENCH_FOLD_ITEMS (items folded per measurement, 400,000),
 * BENCH_MERGE_SEGMENTS (64), BENCH_WINDOWS (200,000 windows per window start).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { Readable } from 'stream';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { closingModel, ClosingModel, ledgerKeysFor } from '../src/ingestor/capacity';
import { foldLedgerKey } from '../src/ingestor/shared.lambda/closing';
import { groupPages } from '../src/ingestor/shared.lambda/closing-job';
import { forEachConcurrently, LedgerFold } from '../src/ingestor/shared.lambda/ledger';
import { PartialEntry, partialPages, PartialTotals } from '../src/ingestor/shared.lambda/partials';

const OUT = path.join(__dirname, 'out');
/** The closer's interval the table assumes (the longest wait before a closable window start is looked at). */
const CLOSING_INTERVAL_SECONDS = 60;
const WINDOW_START = '2026-11-20T10:00:00Z';
const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** A ledger item as DynamoDB's JSON protocol returns it (about 100 bytes, like the aggregator's). */
function ledgerItemJson(key: number, i: number, tenants: number): unknown {
  const tenant = `tenant-${String(i % tenants).padStart(5, '0')}`;
  return {
    pk: { S: `L#${String(key).padStart(2, '0')}` },
    sk: { S: `${WINDOW_START}#${tenant}#evt-${i.toString(36)}-9f1c2e6a-0d7b-4f57` },
    m: { S: `metric_${i % 20}` },
    v: { N: `${1 + (i % 100)}.${String(i % 1000).padStart(3, '0')}` },
    expiresAt: { N: '1795960800' },
  };
}

/**
 * A DynamoDB client whose requests never leave the process: each Query of
 * ledger key k returns the next pre-serialized page of that key (1 MB, as
 * DynamoDB pages), through the SDK's own response handling.
 */
function stubClient(pagesByKey: Map<string, Buffer[]>): DynamoDBClient {
  return new DynamoDBClient({
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    requestHandler: {
      handle: async (request: { body?: string }) => {
        const body = JSON.parse(String(request.body ?? '{}'));
        const pk: string = body.ExpressionAttributeValues[':pk'].S;
        const start = body.ExclusiveStartKey ? Number(body.ExclusiveStartKey.page.N) : 0;
        const page = pagesByKey.get(pk)![start];
        return {
          response: {
            statusCode: 200,
            headers: { 'content-type': 'application/x-amz-json-1.0', 'content-length': String(page.length) },
            body: Readable.from([page]),
          },
        };
      },
    } as never,
  });
}

/** A fold rate measured. */
interface FoldRate {
  readonly itemsPerSecond: number;
  readonly itemsPerCpuSecond: number;
  readonly pageBytes: number;
}

/**
 * One worker's fold rate over `keys` ledger keys, 8 at a time, SDK deserialization included: items per
 * second of wall time, and per second of this process's CPU time (what a worker with a whole vCPU of its
 * own gets; the bench machine is shared, so wall time understates it).
 */
async function measureFold(totalItems: number, keys: number, tenants: number): Promise<FoldRate> {
  const perKey = Math.ceil(totalItems / keys);
  const pagesByKey = new Map<string, Buffer[]>();
  let pageBytes = 0;
  for (let k = 0; k < keys; k++) {
    const items = Array.from({ length: perKey }, (_, i) => ledgerItemJson(k, k * perKey + i, tenants));
    // About 1 MB per page, as DynamoDB returns a Query (~10,000 items of ~100 bytes).
    const perPage = Math.max(1, Math.floor((1024 * 1024) / Buffer.byteLength(JSON.stringify(items[0]))));
    const pages: Buffer[] = [];
    for (let p = 0; p * perPage < items.length; p++) {
      const slice = items.slice(p * perPage, (p + 1) * perPage);
      const last = (p + 1) * perPage >= items.length;
      const page = Buffer.from(JSON.stringify({
        Count: slice.length,
        ScannedCount: slice.length,
        Items: slice,
        ...(last ? {} : { LastEvaluatedKey: { pk: { S: `L#${k}` }, sk: { S: 'x' }, page: { N: String(p + 1) } } }),
      }));
      pageBytes = Math.max(pageBytes, page.length);
      pages.push(page);
    }
    pagesByKey.set(`L#${String(k).padStart(2, '0')}`, pages);
  }
  const client = stubClient(pagesByKey);
  const startMs = Date.parse(WINDOW_START);
  // Warm up the SDK (first-request setup) on one key.
  await foldLedgerKey(client, 'bench', 0, startMs, startMs + 3_600_000, new LedgerFold());
  const started = performance.now();
  const cpu = process.cpuUsage();
  const folds: LedgerFold[] = [];
  await forEachConcurrently([...Array(keys).keys()], 8, async (key) => {
    const fold = new LedgerFold();
    await foldLedgerKey(client, 'bench', key, startMs, startMs + 3_600_000, fold);
    folds.push(fold);
  });
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const cpuSeconds = (used.user + used.system) / 1e6;
  const totals = new PartialTotals();
  for (const f of folds) totals.addFold(f.totals.get(WINDOW_START) ?? new Map());
  const read = folds.reduce((n, f) => n + f.itemsRead, 0);
  client.destroy();
  return { itemsPerSecond: read / seconds, itemsPerCpuSecond: read / cpuSeconds, pageBytes };
}

/** The merge rate: partial entries per second of wall and of CPU time (partial pages parsed and added, closed pages built). */
function measureMerge(segments: number, windows: number): { entriesPerSecond: number; entriesPerCpuSecond: number; entries: number } {
  const partitions = 1;
  const pageJson: string[] = [];
  for (let s = 0; s < segments; s++) {
    const totals = new PartialTotals();
    for (let w = 0; w < windows; w++) {
      totals.add(`tenant-${String(w % 10_000).padStart(5, '0')}`, `metric_${Math.floor(w / 10_000)}`, BigInt(1_234_500_000_000 + s), 100 + s);
    }
    for (const page of partialPages(totals, partitions)[0]) pageJson.push(JSON.stringify(page));
  }
  const started = performance.now();
  const cpu = process.cpuUsage();
  const merged = new PartialTotals();
  for (const page of pageJson) merged.addEntries(JSON.parse(page) as PartialEntry[]);
  const pages = groupPages(merged.closedEntries(), 1, 0, 1);
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  if (pages.length === 0) throw new Error('no closed pages');
  const entries = segments * windows;
  return { entriesPerSecond: entries / seconds, entriesPerCpuSecond: entries / ((used.user + used.system) / 1e6), entries };
}

export async function scaleMode(): Promise<void> {
  const foldItems = Number(process.env.BENCH_FOLD_ITEMS ?? 400_000);
  const mergeSegments = Number(process.env.BENCH_MERGE_SEGMENTS ?? 64);
  const windows = Number(process.env.BENCH_WINDOWS ?? 200_000);
  console.log(`closing scale model (${new Date().toISOString()}, node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'}, ${os.cpus().length} cores)`);
  const runs = [];
  for (let r = 0; r < 3; r++) runs.push(await measureFold(foldItems, 64, 10_000));
  const fold = runs.map((x) => x.itemsPerCpuSecond).sort((a, b) => a - b)[1];
  console.log(`  one worker's fold, SDK deserialization included (3 runs of ${fmt(foldItems)} items over 64 keys, 8 at a time, pages of `
    + `${fmt(runs[0].pageBytes / 1024)} KB): ${runs.map((x) => fmt(x.itemsPerSecond)).join(', ')} items per wall second; `
    + `${runs.map((x) => fmt(x.itemsPerCpuSecond)).join(', ')} items per CPU second -> ${fmt(fold)} items/s (median, per CPU second)`);
  const mergeRuns = [0, 1, 2].map(() => measureMerge(mergeSegments, Math.floor(windows / 8)));
  const merge = mergeRuns.map((x) => x.entriesPerCpuSecond).sort((a, b) => a - b)[1];
  console.log(`  merge (partial pages parsed, exact sums added, closed pages built; ${fmt(mergeRuns[0].entries)} entries): `
    + `${mergeRuns.map((x) => fmt(x.entriesPerSecond)).join(', ')} per wall second; ${mergeRuns.map((x) => fmt(x.entriesPerCpuSecond)).join(', ')} `
    + `per CPU second -> ${fmt(merge)} entries/s (median, per CPU second)`);
  console.log(`  (load average while measuring: ${os.loadavg().map((x) => x.toFixed(1)).join(', ')} on ${os.cpus().length} cores)`);
  const rows: Array<{ rate: number; granularity: string; model: ClosingModel }> = [];
  for (const granularity of ['HOUR', 'DAY'] as const) {
    for (const rate of [10_000, 50_000, 100_000, 250_000]) {
      // The fewest ledger keys (a power of two, 64 to 1,024) that carry the writes and close within 10 minutes.
      const model = (ledgerKeys: number) => closingModel({
        recordsPerSecond: rate,
        granularity,
        ledgerKeys,
        windows,
        closingIntervalSeconds: CLOSING_INTERVAL_SECONDS,
        foldItemsPerSecond: fold,
        mergeEntriesPerSecond: merge,
      });
      let keys = Math.min(1024, Math.max(64, 2 ** Math.ceil(Math.log2(ledgerKeysFor(rate)))));
      while (keys < 1024 && model(keys).lagSeconds > 600) keys *= 2;
      rows.push({ rate, granularity, model: model(keys) });
    }
  }
  console.log('\n| records/s | windows | ledger keys | ledger items per window start | how it closes | workers | fold | merge | events | closing lag | reads while closing |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const { rate, granularity, model: m } of rows) {
    console.log(`| ${fmt(rate)} | ${granularity === 'HOUR' ? 'hourly' : 'daily'} | ${m.ledgerKeys} | ${fmt(m.items)} | ${m.fannedOut ? 'fan-out' : 'one closer run'} | `
      + `${m.workers} | ${fmt(m.foldSeconds)} s | ${fmt(m.mergeSeconds)} s | ${fmt(m.eventsSeconds)} s | **${fmt(m.lagSeconds / 60, 1)} min** | ${fmt(m.readUnitsPerSecond)} RRU/s |`);
  }
  fs.mkdirSync(OUT, { recursive: true });
  fs.writeFileSync(path.join(OUT, 'closing-scale.json'), JSON.stringify({ fold, merge, foldRuns: runs, mergeRuns, rows }, null, 2));
}
