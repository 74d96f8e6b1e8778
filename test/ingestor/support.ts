/**
 * Test support for the usage ingestor's handler: the aggregate table created
 * in the emulator exactly as the construct declares it, Kinesis events built
 * the way Lambda delivers them, and readers of the table's items.
 */
import * as path from 'path';
import {
  AttributeValue,
  CreateTableCommand,
  CreateTableCommandInput,
  DynamoDBClient,
  paginateScan,
} from '@aws-sdk/client-dynamodb';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { Context, KinesisStreamBatchResponse, KinesisStreamEvent, KinesisStreamRecord } from 'aws-lambda';
import { UsageIngestor } from '../../src/ingestor';
import { Moto, startMoto } from '../support/emulators';

const ROOT = path.resolve(__dirname, '..', '..');

/** The bundled handler, exactly the code Lambda runs (built by `npx projen bundle`). */
export interface AggregatorModule {
  readonly dynamodb: DynamoDBClient;
  handler(event: KinesisStreamEvent, context: Context): Promise<KinesisStreamBatchResponse>;
}

/** Loads the bundle from assets/ (after the emulator's endpoint is set). */
export function loadAggregatorBundle(): AggregatorModule {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path.join(ROOT, 'assets', 'ingestor', 'aggregator.lambda', 'index.js')) as AggregatorModule;
}

let tableSpec: Omit<CreateTableCommandInput, 'TableName'> | undefined;

/** The aggregate table's key schema, attributes and indexes, read from the construct's template. */
export function aggregateTableSpec(): Omit<CreateTableCommandInput, 'TableName'> {
  if (tableSpec) return tableSpec;
  const app = new App({ outdir: path.join(ROOT, 'test', '.out', `spec-${process.pid}`) });
  const stack = new Stack(app, 'Spec');
  new UsageIngestor(stack, 'Ingestor');
  const tables = Template.fromStack(stack).findResources('AWS::DynamoDB::Table');
  const [table] = Object.values(tables) as Array<{ Properties: any }>;
  const p = table.Properties;
  tableSpec = {
    KeySchema: p.KeySchema,
    AttributeDefinitions: p.AttributeDefinitions,
    BillingMode: 'PAY_PER_REQUEST',
    GlobalSecondaryIndexes: (p.GlobalSecondaryIndexes ?? []).map((g: any) => ({
      IndexName: g.IndexName,
      KeySchema: g.KeySchema,
      Projection: g.Projection,
    })),
  };
  return tableSpec;
}

let tableCounter = 0;

/** Creates a fresh aggregate table in the emulator and points the handler at it. */
export async function createAggregateTable(client: DynamoDBClient, prefix = 'aggregates'): Promise<string> {
  const name = `${prefix}-${process.pid}-${++tableCounter}`;
  await client.send(new CreateTableCommand({ TableName: name, ...aggregateTableSpec() }));
  process.env.AGGREGATE_TABLE_NAME = name;
  return name;
}

let sequence = BigInt('49650000000000000000000000000000000000000000000000000000');

/** One record as a producer writes it. */
export interface ProducedRecord {
  /** The data: an object is JSON-encoded, a string is sent as UTF-8, a Buffer as is. */
  readonly data: unknown;
  readonly partitionKey?: string;
  /** When the record reached the stream. @default now */
  readonly arrivalMs?: number;
  readonly shardId?: string;
}

/** A Kinesis record exactly as Lambda delivers it (new, increasing sequence numbers). */
export function kinesisRecord(r: ProducedRecord): KinesisStreamRecord {
  const data = Buffer.isBuffer(r.data) ? r.data : Buffer.from(typeof r.data === 'string' ? r.data : JSON.stringify(r.data), 'utf8');
  const seq = (sequence += BigInt(1)).toString();
  const shardId = r.shardId ?? 'shardId-000000000000';
  const partitionKey = r.partitionKey ?? (typeof r.data === 'object' && r.data && 'tenantId' in r.data ? String((r.data as any).tenantId) : 'pk');
  return {
    kinesis: {
      kinesisSchemaVersion: '1.0',
      partitionKey,
      sequenceNumber: seq,
      data: data.toString('base64'),
      approximateArrivalTimestamp: (r.arrivalMs ?? Date.now()) / 1000,
    },
    eventSource: 'aws:kinesis',
    eventVersion: '1.0',
    eventID: `${shardId}:${seq}`,
    eventName: 'aws:kinesis:record',
    invokeIdentityArn: 'arn:aws:iam::123456789012:role/aggregator',
    awsRegion: 'us-east-1',
    eventSourceARN: 'arn:aws:kinesis:us-east-1:123456789012:stream/usage',
  };
}

/** A Kinesis event of these records. */
export function kinesisEvent(records: readonly KinesisStreamRecord[]): KinesisStreamEvent {
  return { Records: [...records] };
}

/** A Lambda context good enough for Powertools. */
export function lambdaContext(): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'aggregator',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:aggregator',
    memoryLimitInMB: '512',
    awsRequestId: `req-${Date.now()}-${Math.random()}`,
    logGroupName: '/aws/lambda/aggregator',
    logStreamName: 'stream',
    getRemainingTimeInMillis: () => 60_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** Every item of a table. */
export async function scanAll(client: DynamoDBClient, tableName: string): Promise<Record<string, AttributeValue>[]> {
  const items: Record<string, AttributeValue>[] = [];
  for await (const page of paginateScan({ client }, { TableName: tableName, ConsistentRead: true })) items.push(...(page.Items ?? []));
  return items;
}

/** An aggregate as read from the table. */
export interface Aggregate {
  readonly tenantId: string;
  readonly metric: string;
  readonly windowStart: string;
  readonly windowEnd: string;
  readonly granularity: string;
  readonly sum: string;
  readonly count: number;
  readonly closesAt: number;
  readonly closeBucket: string;
  readonly closeSortKey: string;
  readonly sk: string;
}

/** The table's items sorted by kind. */
export async function readTable(client: DynamoDBClient, tableName: string) {
  const items = await scanAll(client, tableName);
  const aggregates: Aggregate[] = items
    .filter((i) => i.pk.S!.startsWith('AGG#'))
    .map((i) => ({
      tenantId: i.tenantId?.S ?? '',
      metric: i.metric?.S ?? '',
      windowStart: i.windowStart?.S ?? '',
      windowEnd: i.windowEnd?.S ?? '',
      granularity: i.granularity?.S ?? '',
      sum: i.sum.N!,
      count: Number(i.count.N),
      closesAt: Number(i.closesAt?.N),
      closeBucket: i.closeBucket?.S ?? '',
      closeSortKey: i.closeSortKey?.S ?? '',
      sk: i.sk.S!,
    }));
  const dedupMarks = items.filter((i) => i.pk.S!.startsWith('DEDUP#'));
  const quarantine = items.filter((i) => i.pk.S!.startsWith('QUARANTINE#'));
  return { aggregates, dedupMarks, quarantine };
}

/** A usage record. */
export interface Usage {
  readonly id: string;
  readonly tenantId: string;
  readonly metric: string;
  readonly value: number;
  readonly timestamp: string | number;
}

/**
 * The truth: per tenant/metric/window, the sum and count of distinct records
 * (first occurrence of each tenant/id), computed without the handler.
 */
export function truthOf(records: readonly Usage[], windowMs = 3_600_000): Map<string, { sum: number; count: number }> {
  const seen = new Set<string>();
  const truth = new Map<string, { sum: number; count: number }>();
  for (const r of records) {
    const key = `${r.tenantId}\u0000${r.id}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const ts = typeof r.timestamp === 'number' ? r.timestamp : Date.parse(r.timestamp);
    const start = new Date(Math.floor(ts / windowMs) * windowMs).toISOString().replace('.000Z', 'Z');
    const k = `${r.tenantId}|${r.metric}|${start}`;
    const t = truth.get(k) ?? { sum: 0, count: 0 };
    t.sum += r.value;
    t.count += 1;
    truth.set(k, t);
  }
  return truth;
}

/**
 * Drift of the aggregates from the truth: the sum of |aggregate − truth| over
 * every key in either (counts), and the records the truth has that no aggregate
 * counted (lost).
 */
export function driftOf(aggregates: readonly Aggregate[], truth: Map<string, { sum: number; count: number }>) {
  const got = new Map(aggregates.map((a) => [`${a.tenantId}|${a.metric}|${a.windowStart}`, a]));
  let countDrift = 0;
  let sumDrift = 0;
  let lost = 0;
  for (const [k, t] of truth) {
    const a = got.get(k);
    const c = a?.count ?? 0;
    countDrift += Math.abs(c - t.count);
    sumDrift += Math.abs(Number(a?.sum ?? 0) - t.sum);
    lost += Math.max(0, t.count - c);
  }
  for (const [k, a] of got) if (!truth.has(k)) countDrift += a.count;
  return { countDrift, sumDrift: Math.round(sumDrift * 1e9) / 1e9, lost };
}

/**
 * Starts moto's server (through `startMoto()`) with the patch in
 * `moto-serializable/sitecustomize.py`: requests served one at a time, as
 * DynamoDB isolates transactions, and transactions that snapshot only the
 * items they touch. Read that file for why plain moto 5.2 cannot be used for
 * concurrent transactions or large tables.
 */
export async function startSerializableMoto(): Promise<Moto> {
  const patch = path.join(__dirname, 'moto-serializable');
  const previous = process.env.PYTHONPATH;
  process.env.PYTHONPATH = previous ? `${patch}${path.delimiter}${previous}` : patch;
  try {
    return await startMoto();
  } finally {
    if (previous === undefined) delete process.env.PYTHONPATH;
    else process.env.PYTHONPATH = previous;
  }
}
