/**
 * Test support for the entitlements' handlers, on moto: the usage table, the plans
 * table and the entitlements table created as the constructs synthesize them
 * (streams included), the bundled handlers, and stand-ins for the two AWS services
 * moto cannot run here:
 *
 * - the **event source mapping** on the usage ledger's change feed: `ledgerBatches`
 *   reads the usage table's stream from moto (the DynamoDB Streams API), keeps the
 *   records the mapping's synthesized filter patterns match, and hands them over as
 *   Lambda delivers them. moto writes a stream record for every put, even one that
 *   changes nothing; DynamoDB does not ("If you perform a PutItem or UpdateItem
 *   operation that does not change any data in an item, DynamoDB Streams does not
 *   write a stream record for that operation",
 *   https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html),
 *   so the stand-in drops those unless asked to keep them (`keepUnchanged`);
 * - the **EventBridge pipes** from the entitlements table's stream to the bus:
 *   `runPipes` applies each synthesized pipe's filter and input template to the
 *   stream's records and puts the events on moto's bus.
 */
import * as path from 'path';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { BillingPlan, BillingPlans, Entitlements, UsageIngestor } from '../../src';
import { ENTITLEMENT_READER_ENV, ENTITLEMENTS_ENV } from '../../src/entitlements/contract';
import { FAN_OUT_ITEMS, SEGMENT_ITEMS } from '../../src/ingestor/capacity';
import { AGGREGATOR_ENV, CLOSER_ENV, USAGE_READER_ENV } from '../../src/ingestor/ingestor-contract';
import { DEFAULT_LEDGER_KEYS } from '../../src/ingestor/layout';
import { PLAN_READER_ENV, PLANS_ENV } from '../../src/plans/contract';
import { scratchDir } from '../support/synth';

const ROOT = path.resolve(__dirname, '..', '..');

/** A bundled handler, exactly the code Lambda runs (built by `npx projen bundle`). */
export function bundled<E = any, R = any>(file: string): (event: E, context?: unknown) => Promise<R> {
  // Loaded at the first call, once the environment is set (Powertools reads its log level when loaded).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (event, context) => require(path.join(ROOT, 'assets', file, 'index.js')).handler(event, context);
}

/** What the synthesized stack says the emulator's stand-ins must do. */
export interface Synthesized {
  readonly tables: { usage: any; plans: any; entitlements: any };
  /** The ledger consumer's event source mapping filter patterns. */
  readonly ledgerFilters: any[];
  /** The pipes: filter pattern, input template, source and detail type. */
  readonly pipes: Array<{ pattern: any; template: string; source: string; detailType: string }>;
  readonly environment: Record<string, string>;
}

/** Synthesizes a UsageIngestor, BillingPlans and Entitlements and reads what the tests need. */
export function synthesize(plans: BillingPlan[]): Synthesized {
  const stack = new Stack(new App({ outdir: scratchDir('entitlements') }), 'E');
  const ingestor = new UsageIngestor(stack, 'Ingestor');
  const billingPlans = new BillingPlans(stack, 'Plans', { plans });
  new Entitlements(stack, 'Entitlements', { ingestor, plans: billingPlans });
  const t = Template.fromStack(stack);
  const tables = t.findResources('AWS::DynamoDB::Table');
  const table = (prefix: string) => Object.entries(tables).find(([id]) => id.startsWith(prefix))![1].Properties;
  const esm = Object.values(t.findResources('AWS::Lambda::EventSourceMapping'))
    .find((m: any) => JSON.stringify(m.Properties.EventSourceArn).includes('IngestorAggregateTable')) as any;
  const pipes = Object.values(t.findResources('AWS::Pipes::Pipe')).map((p: any) => ({
    pattern: JSON.parse(p.Properties.SourceParameters.FilterCriteria.Filters[0].Pattern),
    template: p.Properties.TargetParameters.InputTemplate,
    source: p.Properties.TargetParameters.EventBridgeEventBusParameters.Source,
    detailType: p.Properties.TargetParameters.EventBridgeEventBusParameters.DetailType,
  }));
  const consumer = Object.values(t.findResources('AWS::Lambda::Function'))
    .find((f: any) => String(f.Properties.Description).includes('applies the usage ledger')) as any;
  const environment: Record<string, string> = {};
  for (const [k, v] of Object.entries(consumer.Properties.Environment.Variables)) if (typeof v === 'string') environment[k] = v;
  return {
    tables: { usage: table('IngestorAggregateTable'), plans: table('PlansPlansTable'), entitlements: table('EntitlementsEntitlementsTable') },
    ledgerFilters: esm.Properties.FilterCriteria.Filters.map((f: any) => JSON.parse(f.Pattern)),
    pipes,
    environment,
  };
}

let counter = 0;

/** The tables of one test world, created in the emulator with the synthesized schemas (streams included). */
export interface World {
  readonly usageTable: string;
  readonly plansTable: string;
  readonly entitlementsTable: string;
}

/** Creates the three tables and sets every handler's environment as the constructs set it. */
export async function createWorld(client: DynamoDBClient, s: Synthesized, settings: { allowedLateness?: Duration } = {}): Promise<World> {
  const n = `${process.pid}-${++counter}`;
  const world = { usageTable: `usage-${n}`, plansTable: `plans-${n}`, entitlementsTable: `entitlements-${n}` };
  const specs = [[world.usageTable, s.tables.usage], [world.plansTable, s.tables.plans], [world.entitlementsTable, s.tables.entitlements]] as const;
  for (const [name, p] of specs) {
    await client.send(new CreateTableCommand({
      TableName: name,
      KeySchema: p.KeySchema,
      AttributeDefinitions: p.AttributeDefinitions,
      BillingMode: 'PAY_PER_REQUEST',
      ...(p.StreamSpecification ? { StreamSpecification: { StreamEnabled: true, StreamViewType: p.StreamSpecification.StreamViewType } } : {}),
    }));
  }
  const lateness = String((settings.allowedLateness ?? Duration.hours(1)).toSeconds());
  Object.assign(process.env, s.environment, {
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
    [AGGREGATOR_ENV.TABLE_NAME]: world.usageTable,
    [AGGREGATOR_ENV.WINDOW_GRANULARITY]: 'HOUR',
    [AGGREGATOR_ENV.ALLOWED_LATENESS_SECONDS]: lateness,
    [AGGREGATOR_ENV.MAX_CLOCK_SKEW_SECONDS]: '300',
    [AGGREGATOR_ENV.LEDGER_RETENTION_SECONDS]: String(7 * 86400),
    [AGGREGATOR_ENV.QUARANTINE_RETENTION_SECONDS]: String(90 * 86400),
    [CLOSER_ENV.CLOSING_MARGIN_SECONDS]: '120',
    [CLOSER_ENV.EVENT_BUS_ARN]: 'default',
    [AGGREGATOR_ENV.LEDGER_KEYS]: String(DEFAULT_LEDGER_KEYS),
    [CLOSER_ENV.FAN_OUT_ITEMS]: String(FAN_OUT_ITEMS),
    [CLOSER_ENV.SEGMENT_ITEMS]: String(SEGMENT_ITEMS),
    [USAGE_READER_ENV.TABLE_NAME]: world.usageTable,
    [USAGE_READER_ENV.WINDOW_GRANULARITY]: 'HOUR',
    [USAGE_READER_ENV.ALLOWED_LATENESS_SECONDS]: lateness,
    [PLANS_ENV.TABLE_NAME]: world.plansTable,
    [PLAN_READER_ENV.TABLE_NAME]: world.plansTable,
    [ENTITLEMENTS_ENV.TABLE_NAME]: world.entitlementsTable,
    [ENTITLEMENT_READER_ENV.TABLE_NAME]: world.entitlementsTable,
  });
  // The plan event handler's own environment (its plan definitions, field, event names) as BillingPlans sets it.
  for (const [k, v] of Object.entries(planHandlerEnvironment(s))) process.env[k] = v;
  return world;
}

function planHandlerEnvironment(s: Synthesized): Record<string, string> {
  const defs = s.environment[PLAN_READER_ENV.PLAN_DEFINITIONS];
  return {
    [PLANS_ENV.PLAN_DEFINITIONS]: defs,
    [PLANS_ENV.PLAN_FIELD]: 'tier',
    [PLANS_ENV.DEFAULT_PLAN]: '',
    [PLANS_ENV.BILLING_PERIOD_ANCHOR]: 'CALENDAR_MONTH',
    [PLANS_ENV.ONBOARDING_DETAIL_TYPE]: 'sbt_aws_onboardingRequest',
    [PLANS_ENV.OFFBOARDING_DETAIL_TYPE]: 'sbt_aws_offboardingRequest',
    [PLANS_ENV.PLAN_CHANGE_REQUEST_DETAIL_TYPE]: 'cdk_saas_billing_planChangeRequest',
    [PLANS_ENV.PLAN_CHANGED_SOURCE]: 'sbt.control.plane',
    [PLANS_ENV.PLAN_CHANGED_DETAIL_TYPE]: 'cdk_saas_billing_planChanged',
    [PLANS_ENV.PLAN_CHANGE_FAILURE_SOURCE]: 'sbt.control.plane',
    [PLANS_ENV.PLAN_CHANGE_FAILURE_DETAIL_TYPE]: 'cdk_saas_billing_planChangeFailure',
  };
}

/** A DynamoDB Streams API call to moto (unsigned: moto routes it by its target header). */
async function streams(endpoint: string, action: string, body: Record<string, unknown>): Promise<any> {
  const res = await fetch(endpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-amz-json-1.0',
      'x-amz-target': `DynamoDBStreams_20120810.${action}`,
      'authorization': 'AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0',
    },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`DynamoDB Streams ${action}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** Reads a table's stream from where it last stopped (moto: one shard). */
export class StreamReader {
  public static async open(endpoint: string, client: DynamoDBClient, tableName: string): Promise<StreamReader> {
    const arn = (await client.send(new DescribeTableCommand({ TableName: tableName }))).Table!.LatestStreamArn!;
    const stream = await streams(endpoint, 'DescribeStream', { StreamArn: arn });
    const shard = stream.StreamDescription.Shards[0].ShardId;
    const it = await streams(endpoint, 'GetShardIterator', { StreamArn: arn, ShardId: shard, ShardIteratorType: 'TRIM_HORIZON' });
    return new StreamReader(endpoint, arn, it.ShardIterator);
  }

  private constructor(private readonly endpoint: string, public readonly arn: string, private iterator: string) {}

  /** The stream records written since the last call. */
  public async read(): Promise<DynamoDBRecord[]> {
    const out: DynamoDBRecord[] = [];
    for (;;) {
      const r = await streams(this.endpoint, 'GetRecords', { ShardIterator: this.iterator, Limit: 1000 });
      this.iterator = r.NextShardIterator;
      out.push(...(r.Records ?? []).map((rec: any) => ({
        ...rec,
        eventSourceARN: this.arn,
        dynamodb: { ...rec.dynamodb, ApproximateCreationDateTime: Date.now() / 1000 },
      })));
      if (!r.Records?.length) return out;
    }
  }
}

/** Whether a value matches an event filter pattern (the subset the constructs use: values, prefix, exists). */
export function matches(pattern: any, value: any): boolean {
  for (const [k, p] of Object.entries(pattern)) {
    const v = value?.[k];
    if (Array.isArray(p)) {
      const ok = p.some((rule: any) => {
        if (typeof rule !== 'object') return v === rule;
        if ('prefix' in rule) return typeof v === 'string' && v.startsWith(rule.prefix);
        if ('exists' in rule) return rule.exists ? v !== undefined : v === undefined;
        throw new Error(`filter rule not modelled: ${JSON.stringify(rule)}`);
      });
      if (!ok) return false;
    } else if (!matches(p, v)) {
      return false;
    }
  }
  return true;
}

/** The ledger change feed's stand-in (see the module comment). */
export class LedgerFeed {
  public static async open(endpoint: string, client: DynamoDBClient, world: World, s: Synthesized): Promise<LedgerFeed> {
    return new LedgerFeed(await StreamReader.open(endpoint, client, world.usageTable), s.ledgerFilters);
  }

  /** Stream records moto wrote for puts that changed nothing (dropped, as DynamoDB writes none). */
  public unchangedDropped = 0;

  private constructor(private readonly reader: StreamReader, private readonly filters: any[]) {}

  /** The records written since the last call that the mapping delivers, as one event per `batchSize`. */
  public async batches(opts: { batchSize?: number; keepUnchanged?: boolean } = {}): Promise<DynamoDBStreamEvent[]> {
    const records = (await this.reader.read()).filter((r) => {
      const unchanged = r.eventName === 'MODIFY' && JSON.stringify(r.dynamodb?.OldImage) === JSON.stringify(r.dynamodb?.NewImage);
      if (unchanged && !opts.keepUnchanged) {
        this.unchangedDropped++;
        return false;
      }
      return this.filters.some((f) => matches(f, r));
    });
    const size = opts.batchSize ?? 100;
    const events: DynamoDBStreamEvent[] = [];
    for (let i = 0; i < records.length; i += size) events.push({ Records: records.slice(i, i + size) });
    return events;
  }
}

/** The pipes' stand-in: threshold event items become events on the bus. */
export class PipesStandIn {
  public static async open(endpoint: string, client: DynamoDBClient, world: World, s: Synthesized): Promise<PipesStandIn> {
    return new PipesStandIn(await StreamReader.open(endpoint, client, world.entitlementsTable), s, new EventBridgeClient({ endpoint }));
  }

  private constructor(private readonly reader: StreamReader, private readonly s: Synthesized, private readonly eb: EventBridgeClient) {}

  /** Puts the events of the threshold event items written since the last call; returns them. */
  public async run(): Promise<Array<{ source: string; detailType: string; detail: any }>> {
    const out: Array<{ source: string; detailType: string; detail: any }> = [];
    for (const r of await this.reader.read()) {
      for (const pipe of this.s.pipes) {
        if (!matches(pipe.pattern, r)) continue;
        const detail = pipe.template.replace(/<\$\.([^>]+)>/g, (_, p: string) => String(p.split('.').reduce((o: any, k) => o?.[k], r)));
        out.push({ source: pipe.source, detailType: pipe.detailType, detail: JSON.parse(detail) });
        await this.eb.send(new PutEventsCommand({ Entries: [{ Source: pipe.source, DetailType: pipe.detailType, Detail: detail, EventBusName: 'default' }] }));
      }
    }
    return out;
  }
}
