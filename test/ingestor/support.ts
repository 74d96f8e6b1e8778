/**
 * Test support for the usage ingestor's handlers: moto behind the recording
 * proxy (every DynamoDB request billed as DynamoDB bills it), the usage table
 * created exactly as the construct declares it, the bundled handlers, Kinesis
 * events built the way Lambda delivers them, a clock the tests move, and the
 * truth the closed windows are checked against.
 *
 * Plain moto: the ingestor uses no transaction, so nothing needs requests
 * served one at a time.
 */
import * as path from 'path';
import { AttributeValue, CreateTableCommand, CreateTableCommandInput, DynamoDBClient, paginateScan } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, DeleteMessageCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { Context, KinesisStreamBatchResponse, KinesisStreamEvent, KinesisStreamRecord, SQSEvent } from 'aws-lambda';
import { UsageIngestor } from '../../src/ingestor';
import { FAN_OUT_ITEMS, SEGMENT_ITEMS } from '../../src/ingestor/capacity';
import type { CloseSummary } from '../../src/ingestor/closer.lambda';
import { AGGREGATOR_ENV, CLOSER_ENV, ClosingMessage, USAGE_READER_ENV } from '../../src/ingestor/ingestor-contract';
import type { ClosingWorkSummary } from '../../src/ingestor/shared.lambda/closing-job';
import { ClosedWindow, UsageReader } from '../../src/ingestor/shared.lambda/usage-reader';
import { addDecimals } from '../../src/shared.lambda/decimal';
import { Moto, startMoto } from '../support/emulators';
import { RecordingProxy, startRecordingProxy } from '../support/recording-proxy';

const ROOT = path.resolve(__dirname, '..', '..');
export const HOUR = 3_600_000;
export const DAY = 86_400_000;
/** The closing margin the construct sets (aggregator timeout 60 s + 60 s). */
export const CLOSING_MARGIN_SECONDS = 120;

/** A bundled handler, exactly the code Lambda runs (built by `npx projen bundle`). */
export type Handler<E, R> = (event: E, context?: Context) => Promise<R>;

/** Loads a bundle from assets/ (after the emulator's endpoint is set). */
export function bundle<E, R>(name: 'aggregator' | 'closer' | 'closing-worker'): Handler<E, R> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path.join(ROOT, 'assets', 'ingestor', `${name}.lambda`, 'index.js')).handler as Handler<E, R>;
}

/** The emulator, the proxy in front of it and the bundled handlers. */
export interface Emulator {
  readonly moto: Moto;
  readonly proxy: RecordingProxy;
  readonly client: DynamoDBClient;
  readonly aggregate: Handler<KinesisStreamEvent, KinesisStreamBatchResponse>;
  readonly close: Handler<unknown, CloseSummary>;
  /** The closing worker: handles one SQS event of closing messages. */
  readonly work: Handler<SQSEvent, ClosingWorkSummary[]>;
  readonly sqs: SQSClient;
  stop(): Promise<void>;
}

/** Starts moto and the recording proxy, points the AWS SDK at the proxy and loads the bundles. */
export async function startEmulator(): Promise<Emulator> {
  const moto = await startMoto();
  const proxy = await startRecordingProxy(moto.endpoint);
  Object.assign(process.env, {
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
    POWERTOOLS_SERVICE_NAME: 'ingestor-test',
    POWERTOOLS_METRICS_NAMESPACE: 'Test',
  });
  const client = new DynamoDBClient({ endpoint: proxy.endpoint });
  const sqs = new SQSClient({ endpoint: moto.endpoint });
  return {
    moto,
    proxy,
    client,
    aggregate: bundle('aggregator'),
    close: bundle('closer'),
    work: bundle('closing-worker'),
    sqs,
    stop: async () => {
      client.destroy();
      sqs.destroy();
      await proxy.stop();
      await moto.stop();
    },
  };
}

let tableSpec: Omit<CreateTableCommandInput, 'TableName'> | undefined;

/** The usage table's key schema, attributes and indexes, read from the construct's template. */
export function usageTableSpec(): Omit<CreateTableCommandInput, 'TableName'> {
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
    ...(p.GlobalSecondaryIndexes ? {
      GlobalSecondaryIndexes: p.GlobalSecondaryIndexes.map((g: any) => ({
        IndexName: g.IndexName, KeySchema: g.KeySchema, Projection: g.Projection,
      })),
    } : {}),
  };
  return tableSpec;
}

let tableCounter = 0;

/** The handlers' settings, as the construct sets them. */
export interface Settings {
  readonly granularity?: 'HOUR' | 'DAY';
  readonly allowedLateness?: Duration;
  readonly maxClockSkew?: Duration;
  /** @default 64 */
  readonly ledgerKeys?: number;
  /** Ledger items from which the closer fans a window start out (0: always). @default the construct's */
  readonly fanOutItems?: number;
  /** Ledger items per fan-out segment. @default the construct's */
  readonly segmentItems?: number;
}

let queueUrl: string | undefined;

/** The closing queue `createUsageTable` made last (what the closer's schedule passes it in its event). */
export function closingQueueUrl(): string {
  if (!queueUrl) throw new Error('no closing queue: createUsageTable(client, settings, prefix, sqs) makes one');
  return queueUrl;
}

/** Sets the handlers' environment (the names the construct sets) for a table. */
export function configure(tableName: string, settings: Settings = {}): void {
  const lateness = String((settings.allowedLateness ?? Duration.hours(1)).toSeconds());
  const skew = String((settings.maxClockSkew ?? Duration.minutes(5)).toSeconds());
  Object.assign(process.env, {
    [AGGREGATOR_ENV.TABLE_NAME]: tableName,
    [AGGREGATOR_ENV.WINDOW_GRANULARITY]: settings.granularity ?? 'HOUR',
    [AGGREGATOR_ENV.ALLOWED_LATENESS_SECONDS]: lateness,
    [AGGREGATOR_ENV.MAX_CLOCK_SKEW_SECONDS]: skew,
    [AGGREGATOR_ENV.LEDGER_RETENTION_SECONDS]: String(7 * 86400),
    [AGGREGATOR_ENV.QUARANTINE_RETENTION_SECONDS]: String(90 * 86400),
    [CLOSER_ENV.CLOSING_MARGIN_SECONDS]: String(CLOSING_MARGIN_SECONDS),
    [CLOSER_ENV.EVENT_BUS_ARN]: 'arn:aws:events:us-east-1:123456789012:event-bus/default',
    [AGGREGATOR_ENV.LEDGER_KEYS]: String(settings.ledgerKeys ?? 64),
    [CLOSER_ENV.FAN_OUT_ITEMS]: String(settings.fanOutItems ?? FAN_OUT_ITEMS),
    [CLOSER_ENV.SEGMENT_ITEMS]: String(settings.segmentItems ?? SEGMENT_ITEMS),
    [USAGE_READER_ENV.LEDGER_KEYS]: String(settings.ledgerKeys ?? 64),
    [USAGE_READER_ENV.TABLE_NAME]: tableName,
    [USAGE_READER_ENV.WINDOW_GRANULARITY]: settings.granularity ?? 'HOUR',
    [USAGE_READER_ENV.ALLOWED_LATENESS_SECONDS]: lateness,
    [USAGE_READER_ENV.MAX_CLOCK_SKEW_SECONDS]: skew,
  });
}

/** Creates a fresh usage table (through the proxy) and closing queue in the emulator, and points the handlers at them. */
export async function createUsageTable(client: DynamoDBClient, settings: Settings = {}, prefix = 'usage', sqs?: SQSClient): Promise<string> {
  const name = `${prefix}-${process.pid}-${++tableCounter}`;
  await client.send(new CreateTableCommand({ TableName: name, ...usageTableSpec() }));
  queueUrl = sqs ? (await sqs.send(new CreateQueueCommand({ QueueName: `${name}-closing` }))).QueueUrl! : undefined;
  configure(name, settings);
  return name;
}

/** A closing message taken from the closing queue, and the SQS event Lambda would deliver it in. */
export interface QueuedClosingMessage {
  readonly message: ClosingMessage;
  readonly event: SQSEvent;
  /** Deletes it from the queue (what Lambda does when the worker returns). */
  readonly done: () => Promise<void>;
}

/** Takes every message waiting in the closing queue (they stay invisible until `done` or their visibility timeout). */
export async function receiveClosingMessages(sqs: SQSClient, url = closingQueueUrl()): Promise<QueuedClosingMessage[]> {
  const out: QueuedClosingMessage[] = [];
  for (;;) {
    const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, VisibilityTimeout: 900 }));
    if (!r.Messages?.length) return out;
    for (const m of r.Messages) {
      out.push({
        message: JSON.parse(m.Body!) as ClosingMessage,
        event: {
          Records: [{
            messageId: m.MessageId!,
            receiptHandle: m.ReceiptHandle!,
            body: m.Body!,
            attributes: {
              ApproximateReceiveCount: '1', SentTimestamp: String(Date.now()), SenderId: 'closer', ApproximateFirstReceiveTimestamp: String(Date.now()),
            },
            messageAttributes: {},
            md5OfBody: m.MD5OfBody!,
            eventSource: 'aws:sqs',
            eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:closing',
            awsRegion: 'us-east-1',
          }],
        },
        done: async () => {
          await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle! }));
        },
      });
    }
  }
}

/** A clock the tests set: `Date.now()` of this process (the bundled handlers run in it). */
export class TestClock {
  private readonly realNow = Date.now;
  private current: number;

  constructor(start: number) {
    this.current = start;
    Date.now = () => this.current;
  }

  public get now(): number {
    return this.current;
  }

  public set(ms: number): void {
    this.current = ms;
  }

  public advance(ms: number): void {
    this.current += ms;
  }

  public restore(): void {
    Date.now = this.realNow;
  }
}

let sequence = BigInt('49650000000000000000000000000000000000000000000000000000');

/** One record as a producer writes it. */
export interface ProducedRecord {
  /** The data: an object is JSON-encoded, a string is sent as UTF-8, a Buffer as is. */
  readonly data: unknown;
  readonly partitionKey?: string;
  /** When the record reached the stream. @default Date.now() */
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

/** A Lambda context good enough for the handlers. */
export function lambdaContext(remainingMs: number | (() => number) = 600_000): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'ingestor-test',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:ingestor-test',
    memoryLimitInMB: '512',
    awsRequestId: `req-${Math.random()}`,
    logGroupName: '/aws/lambda/ingestor-test',
    logStreamName: 'stream',
    getRemainingTimeInMillis: typeof remainingMs === 'function' ? remainingMs : () => remainingMs,
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

/** The table's items by kind. */
export async function readTable(client: DynamoDBClient, tableName: string) {
  const items = await scanAll(client, tableName);
  const pk = (i: Record<string, AttributeValue>) => i.pk.S!;
  return {
    ledger: items.filter((i) => pk(i).startsWith('L#')),
    quarantine: items.filter((i) => pk(i).startsWith('QUARANTINE#')),
    closedPages: items.filter((i) => pk(i).startsWith('CLOSED#')),
  };
}

/** Every closed window, through the usage read contract, page after page. */
export async function closedWindows(limit = 1000): Promise<ClosedWindow[]> {
  const reader = UsageReader.fromEnvironment();
  const all: ClosedWindow[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await reader.readClosedWindows({ cursor, limit });
    all.push(...page.windows);
    if (page.windows.length === 0) return all;
    cursor = page.cursor;
  }
}

/** A usage record. */
export interface Usage {
  readonly id: string;
  readonly tenantId: string;
  readonly metric: string;
  readonly value: number | string;
  readonly timestamp: string | number;
}

/** A usage record's JSON text: a string value is written as a JSON number with exactly its digits. */
export function usageJson(u: Usage): string {
  return JSON.stringify({ ...u, value: '__VALUE__' }).replace('"__VALUE__"', String(u.value));
}

/** Kinesis records of usage records (values written with their exact digits). */
export function toRecords(us: readonly Usage[], arrivalMs?: number): KinesisStreamRecord[] {
  return us.map((u) => kinesisRecord({ data: usageJson(u), partitionKey: u.tenantId, arrivalMs }));
}

/** A window's truth key. */
export function windowKey(tenantId: string, metric: string, windowStart: string): string {
  return JSON.stringify([tenantId, metric, windowStart]);
}

/**
 * The truth: per tenant, metric and window, the exact sum and the count of the
 * distinct records (the last version of each tenant/window/id), computed without the handlers.
 */
export function truthOf(records: readonly Usage[], windowMs = HOUR): Map<string, { sum: string; count: number }> {
  const last = new Map<string, Usage>();
  for (const r of records) {
    const ts = typeof r.timestamp === 'number' ? r.timestamp : Date.parse(r.timestamp);
    last.set(JSON.stringify([r.tenantId, Math.floor(ts / windowMs), r.id]), r);
  }
  const truth = new Map<string, { sum: string; count: number }>();
  for (const r of last.values()) {
    const ts = typeof r.timestamp === 'number' ? r.timestamp : Date.parse(r.timestamp);
    const start = new Date(Math.floor(ts / windowMs) * windowMs).toISOString().replace('.000Z', 'Z');
    const k = windowKey(r.tenantId, r.metric, start);
    const t = truth.get(k) ?? { sum: '0', count: 0 };
    truth.set(k, { sum: addDecimals(t.sum, String(r.value)), count: t.count + 1 });
  }
  return truth;
}

/**
 * How far the closed windows are from the truth: count drift (the sum of
 * |counted - truth| over every window in either), windows whose sum differs,
 * and records lost (counted fewer than the truth).
 */
export function driftOf(windows: readonly ClosedWindow[], truth: Map<string, { sum: string; count: number }>) {
  const got = new Map(windows.map((w) => [windowKey(w.tenantId, w.metric, w.windowStart), w]));
  let countDrift = 0;
  let sumsWrong = 0;
  let lost = 0;
  for (const [k, t] of truth) {
    const w = got.get(k);
    const c = w?.count ?? 0;
    countDrift += Math.abs(c - t.count);
    if ((w?.sum ?? '0') !== t.sum) sumsWrong++;
    lost += Math.max(0, t.count - c);
  }
  for (const [k, w] of got) {
    if (!truth.has(k)) {
      countDrift += w.count;
      sumsWrong++;
    }
  }
  return { countDrift, sumsWrong, lost };
}
