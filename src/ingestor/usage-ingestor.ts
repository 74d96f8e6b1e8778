import { Annotations, Duration, Names, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { KinesisEventSource, SqsDlq, SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { AggregatorFunction } from './aggregator-function';
import { capacityProblems, CapacityProps, closingRunSeconds, FAN_OUT_ITEMS, SEGMENT_ITEMS } from './capacity';
import { CloserFunction } from './closer-function';
import { ClosingWorkerFunction } from './closing-worker-function';
import { IDataIngestorAggregator, UsageClosingTimes, UsageReaderBinding } from './ingestor';
import {
  AGGREGATOR_ENV, CLOSER_ENV, CloserEvent, METRIC_NAMESPACE, METRICS, USAGE_READER_ENV, WINDOW_CLOSED_EVENT, WINDOW_LENGTH_MS,
} from './ingestor-contract';
import { DEFAULT_LEDGER_KEYS, LEDGER_KEYS_RANGE, TABLE_KEYS } from './layout';
import { ILedgerChangeFeed } from './ledger-change-feed';
import { LedgerChangeFeed } from './ledger-changes';
import { EventDefinition } from '../events/event-definition';
import { LibraryFunctionOptions } from '../functions/library-functions';
import { AlarmSet, functionErrorsMetric, handlerMetric, queueDepthMetric } from '../private/alarms';
import { createHandlerFunction } from '../private/handler-function';
import { acknowledgeNag } from '../private/nag';
import { validateRuntime } from '../private/node-runtime';
import { PropsValidator } from '../private/validation';

/**
 * The length of the event-time windows usage is aggregated in (UTC).
 */
export enum WindowGranularity {
  /** One total per tenant, metric and UTC hour. */
  HOUR = 'HOUR',
  /** One total per tenant, metric and UTC day. */
  DAY = 'DAY',
}

/**
 * Properties of a `UsageIngestor`.
 */
export interface UsageIngestorProps extends LibraryFunctionOptions {
  /**
   * Capacity mode of the data stream.
   *
   * @default kinesis.StreamMode.ON_DEMAND
   */
  readonly streamMode?: kinesis.StreamMode;

  /**
   * Number of shards of the data stream, only with `StreamMode.PROVISIONED`.
   *
   * @default 1 when the stream mode is PROVISIONED
   */
  readonly shardCount?: number;

  /**
   * How long the data stream keeps records (24 hours to 365 days, whole hours).
   *
   * @default Duration.hours(24)
   */
  readonly retentionPeriod?: Duration;

  /**
   * The length of the event-time windows usage is aggregated in.
   *
   * @default WindowGranularity.HOUR
   */
  readonly windowGranularity?: WindowGranularity;

  /**
   * How long after a window ends records may still be counted into it. At the
   * window's end plus this bound (its `closesAt`) the window stops taking
   * records (later ones are quarantined `LATE`); the closer computes its final
   * total shortly after. Between 0 and 7 days.
   *
   * The default keeps a window's worst-case closing delay (`closingTimes.maxClosingDelay`,
   * 32 minutes with the defaults) inside the 1-hour invoice finalization grace period
   * of billing systems such as Stripe, so that the last window of a billing period
   * reaches its invoice. A longer lateness needs a longer grace period there.
   *
   * @default Duration.minutes(15)
   */
  readonly allowedLateness?: Duration;

  /**
   * How far past its arrival on the stream a record's event time may be before
   * it is quarantined with reason `FUTURE_TIMESTAMP` (producers' clock skew).
   * Between 0 and 1 day.
   *
   * @default Duration.minutes(5)
   */
  readonly maxClockSkew?: Duration;

  /**
   * How often the closer looks for windows to close (1 minute to 1 hour, whole minutes).
   *
   * @default Duration.minutes(5)
   */
  readonly closingInterval?: Duration;

  /**
   * The bus `usageWindowClosed` events go to, one per closed window.
   *
   * @default - the account's default event bus
   */
  readonly eventBus?: events.IEventBus;

  /**
   * Most records the aggregator function receives in one batch (1 to 10000).
   *
   * @default 100
   */
  readonly batchSize?: number;

  /**
   * Longest time the event source mapping gathers records before invoking the
   * function (0 to 5 minutes, whole seconds).
   *
   * @default Duration.seconds(2)
   */
  readonly maxBatchingWindow?: Duration;

  /**
   * Number of batches each shard processes at once (1 to 10).
   *
   * @default 1
   */
  readonly parallelizationFactor?: number;

  /**
   * Most retries of a failing batch before its shard range goes to the
   * dead-letter queue: 0 to 10000, or -1 to retry until its records are older
   * than `maxRecordAge`. Malformed records never fail a batch.
   *
   * @default 500
   */
  readonly retryAttempts?: number;

  /**
   * Oldest record the function still retries, older ones go to the dead-letter
   * queue (1 minute to 7 days, whole seconds).
   *
   * @default Duration.hours(24)
   */
  readonly maxRecordAge?: Duration;

  /**
   * Iterator age (lag of the function behind the stream) from which the
   * iterator age alarm fires.
   *
   * @default Duration.minutes(5)
   */
  readonly iteratorAgeAlarmThreshold?: Duration;

  /**
   * Actions of every alarm the ingestor creates (for example an SNS topic action).
   *
   * @default - the alarms have no action
   */
  readonly alarmActions?: cloudwatch.IAlarmAction[];

  /**
   * Retention of the functions' logs.
   *
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;

  /**
   * A customer-managed KMS key that encrypts the data stream, the usage table
   * and the dead-letter queue (producers and readers are granted its use).
   *
   * @default - AWS managed keys: `aws/kinesis` for the stream, `aws/dynamodb` for the table, SQS-managed encryption for the queue
   */
  readonly encryptionKey?: kms.IKey;

  /**
   * What happens to the data stream, the usage table and the functions' log
   * groups when they leave the stack.
   *
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;

  /**
   * Number of ledger keys (DynamoDB partition keys `L#00`...) the records are
   * spread over, 64 to 1,024. Each key takes 1,000 write units a second, so
   * the ledger carries about 800 records/s per key (64 keys: about 51,000
   * records/s; 320: 250,000), and the closing fan-out splits a window start by
   * ledger keys. Closing reads every key once per window start: do not size
   * it far above your rate.
   *
   * **Fixed for the table's life**: set it before the first deploy. A record
   * is written to the key its hash names among this many keys; were it
   * changed, the closer would still find every record (window markers name the
   * count they were written with) but a void sent across the change could miss
   * its record (quarantined `VOID_UNMATCHED`), and open totals would miss the
   * records of the keys no longer counted.
   *
   * @default 64
   */
  readonly ledgerKeys?: number;

  /**
   * The usage records per second you expect at peak. Optional: when given,
   * synth warns where the other props (or a default quota of your account)
   * cannot carry it, by the capacity model in docs/usage-ingestor.md: ledger
   * keys, stream shards, the table's quota, Lambda concurrency, closing reads
   * and closing lag. It also sizes `closingTimes.maxClosingDelay` for the
   * fan-out's closing at that rate.
   *
   * @default - no check; `closingTimes` assumes a window start one closer run folds
   */
  readonly expectedRecordsPerSecond?: number;
}

/** How long ledger items are kept after their window's close (late duplicates are recognized meanwhile). */
const LEDGER_RETENTION = Duration.days(7);
const QUARANTINE_RETENTION = Duration.days(90);
const AGGREGATOR_TIMEOUT = Duration.minutes(1);
/** After `closesAt`, the closer waits the aggregator's longest run plus this allowance for clock skew and requests in flight. */
const CLOSING_SKEW_ALLOWANCE = Duration.minutes(1);
/** The closer's longest run. */
const CLOSER_TIMEOUT = Duration.minutes(10);
/** A closing worker's longest run (Lambda's most). */
const WORKER_TIMEOUT = Duration.minutes(15);
/** Deliveries of a closing message before it goes to the closing dead-letter queue. */
const CLOSING_RECEIVE_COUNT = 5;

/**
 * A usage ingestor: usage records in, each window's exact totals out.
 *
 * A Kinesis data stream producers write usage records to; an
 * aggregator function that writes each record once into a ledger; a closer
 * that computes each window's exact SUM and COUNT once the window has closed,
 * stores them for good and puts a `usageWindowClosed` event on the bus; and the
 * usage read contract (`bindUsageReader`) through which consumers read them.
 *
 * Usage record (JSON, one per Kinesis record):
 * `{"id": "<unique per tenant>", "tenantId": "t-1", "metric": "api_calls", "value": 3, "timestamp": "2026-11-27T02:15:00Z"}`;
 * a void cancels a record of its window: `{"id": "v-1", "tenantId": "t-1", "timestamp": "2026-11-27T02:15:00Z", "voids": "<id>"}`.
 */
export class UsageIngestor extends Construct implements IDataIngestorAggregator {
  /** The data stream producers write usage records to. */
  public readonly dataStream: kinesis.IStream;
  /** The usage table: ledger, closed windows and quarantine (read usage through `bindUsageReader`). */
  public readonly aggregateTable: dynamodb.ITable;
  /** The function that reads the data stream and writes the ledger. */
  public readonly aggregatorFunction: lambda.IFunction;
  /** The function that closes windows on a schedule. */
  public readonly closerFunction: lambda.IFunction;
  /** The queue that receives the shard ranges of batches that finally failed. */
  public readonly deadLetterQueue: sqs.IQueue;
  /** The customer-managed key that encrypts the stream, the table and the dead-letter queue, if one was given. */
  public readonly encryptionKey?: kms.IKey;
  /** Every alarm of the ingestor (iterator age, dead-letter queue, function errors, quarantined records, closing lag). */
  public readonly alarms: cloudwatch.Alarm[];
  /** The window granularity of the totals. */
  public readonly windowGranularity: WindowGranularity;
  /** The CloudWatch namespace of the functions' own metrics. */
  public readonly metricNamespace: string;
  /** When windows are final: their length and the longest delay from a window's end until it is readable closed (always set). */
  public readonly closingTimes?: UsageClosingTimes;
  /** The event put on the bus for each closed window (detail: tenantId, metric, granularity, windowStart, windowEnd, sum, count, closedAt, windowId). */
  public readonly windowClosedEvent: EventDefinition;

  private changeFeed?: LedgerChangeFeed;
  /** The queue of the closing fan-out's work (segments to fold, partitions to merge and announce). */
  public readonly closingQueue: sqs.IQueue;
  /** The function that does the closing fan-out's work. */
  public readonly closingWorkerFunction: lambda.IFunction;
  /** The number of ledger keys, fixed for the table's life. */
  public readonly ledgerKeys: number;

  private readonly serviceName: string;
  private readonly table: dynamodb.Table;
  private readonly fn: lambda.Function;
  private readonly closer: lambda.Function;
  private readonly queue: sqs.Queue;
  private readonly closingDlq: sqs.Queue;
  private readonly allowedLateness: Duration;
  private readonly maxClockSkew: Duration;

  constructor(scope: Construct, id: string, props: UsageIngestorProps = {}) {
    super(scope, id);
    validate(this, props);

    this.windowGranularity = props.windowGranularity ?? WindowGranularity.HOUR;
    this.allowedLateness = props.allowedLateness ?? Duration.minutes(15);
    this.maxClockSkew = props.maxClockSkew ?? Duration.minutes(5);
    this.ledgerKeys = props.ledgerKeys ?? DEFAULT_LEDGER_KEYS;
    this.windowClosedEvent = { source: WINDOW_CLOSED_EVENT.source, detailType: WINDOW_CLOSED_EVENT.detailType };
    this.metricNamespace = METRIC_NAMESPACE;
    this.serviceName = Names.uniqueResourceName(this, { maxLength: 64 });
    this.encryptionKey = props.encryptionKey;

    this.dataStream = this.createStream(props);
    this.table = this.createTable(props);
    this.aggregateTable = this.table;
    this.queue = this.createDeadLetterQueue('DeadLetterQueue',
      'This queue is itself the dead-letter queue (on-failure destination) of the event source mapping.');
    this.deadLetterQueue = this.queue;
    this.fn = this.createAggregator(props);
    this.aggregatorFunction = this.fn;
    this.closingDlq = this.createDeadLetterQueue('ClosingDeadLetterQueue',
      'This queue is itself the dead-letter queue of the closing queue.');
    const closing = this.createClosing(props);
    this.closer = closing.closer;
    this.closerFunction = closing.closer;
    this.closingQueue = closing.queue;
    this.closingWorkerFunction = closing.worker;
    this.closingTimes = closing.times;
    this.alarms = this.createAlarms(props);
    this.acknowledgeKeyFindings([this.fn, this.closer, closing.worker]);
    this.checkCapacity(props);
  }

  private get powertools(): Record<string, string> {
    return { POWERTOOLS_SERVICE_NAME: this.serviceName, POWERTOOLS_METRICS_NAMESPACE: this.metricNamespace };
  }

  /** What the aggregator, the closer and the workers all read. */
  private get windowSettings(): Record<string, string> {
    return {
      [AGGREGATOR_ENV.WINDOW_GRANULARITY]: this.windowGranularity,
      [AGGREGATOR_ENV.ALLOWED_LATENESS_SECONDS]: String(this.allowedLateness.toSeconds()),
      [AGGREGATOR_ENV.QUARANTINE_RETENTION_SECONDS]: String(QUARANTINE_RETENTION.toSeconds()),
      [AGGREGATOR_ENV.TABLE_NAME]: this.table.tableName,
    };
  }

  private createStream(props: UsageIngestorProps): kinesis.Stream {
    const streamMode = props.streamMode ?? kinesis.StreamMode.ON_DEMAND;
    const key = props.encryptionKey;
    const stream = new kinesis.Stream(this, 'DataStream', {
      streamMode,
      shardCount: streamMode === kinesis.StreamMode.PROVISIONED ? props.shardCount ?? 1 : undefined,
      retentionPeriod: props.retentionPeriod ?? Duration.hours(24),
      encryption: key ? kinesis.StreamEncryption.KMS : kinesis.StreamEncryption.MANAGED,
      encryptionKey: key,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
    if (key) {
      acknowledgeNag(stream, 'AwsSolutions-KDS3',
        'The user passed encryptionKey: a customer-managed key was asked for on purpose (without one the stream uses aws/kinesis).');
    }
    return stream;
  }

  private createTable(props: UsageIngestorProps): dynamodb.Table {
    const key = props.encryptionKey;
    // No index: the ledger, the closed windows and the quarantine are all read by key.
    return new dynamodb.Table(this, 'AggregateTable', {
      partitionKey: { name: TABLE_KEYS.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: TABLE_KEYS.sortKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: key ? dynamodb.TableEncryption.CUSTOMER_MANAGED : dynamodb.TableEncryption.AWS_MANAGED,
      encryptionKey: key,
      timeToLiveAttribute: TABLE_KEYS.timeToLive,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
  }

  private createDeadLetterQueue(id: string, reason: string): sqs.Queue {
    const key = this.encryptionKey;
    const queue = new sqs.Queue(this, id, {
      encryption: key ? sqs.QueueEncryption.KMS : sqs.QueueEncryption.SQS_MANAGED,
      encryptionMasterKey: key,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledgeNag(queue, 'AwsSolutions-SQS3', reason);
    return queue;
  }

  private createAggregator(props: UsageIngestorProps): lambda.Function {
    const fn = createHandlerFunction(this, 'Aggregator', AggregatorFunction, {
      description: 'cdk-saas-billing usage ingestor: writes each usage record of the data stream once into the usage ledger',
      timeout: AGGREGATOR_TIMEOUT,
      memorySize: 512,
      logRetention: props.logRetention,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      runtime: props.runtime,
      environment: {
        ...this.windowSettings,
        [AGGREGATOR_ENV.MAX_CLOCK_SKEW_SECONDS]: String(this.maxClockSkew.toSeconds()),
        [AGGREGATOR_ENV.LEDGER_RETENTION_SECONDS]: String(LEDGER_RETENTION.toSeconds()),
        [AGGREGATOR_ENV.LEDGER_KEYS]: String(this.ledgerKeys),
        ...this.powertools,
      },
    });
    this.table.grant(fn, 'dynamodb:BatchWriteItem', 'dynamodb:BatchGetItem');
    this.encryptionKey?.grantEncryptDecrypt(fn);
    fn.addEventSource(
      new KinesisEventSource(this.dataStream, {
        startingPosition: lambda.StartingPosition.TRIM_HORIZON,
        batchSize: props.batchSize ?? 100,
        maxBatchingWindow: props.maxBatchingWindow ?? Duration.seconds(2),
        parallelizationFactor: props.parallelizationFactor ?? 1,
        bisectBatchOnError: true,
        reportBatchItemFailures: true,
        retryAttempts: props.retryAttempts ?? 500,
        maxRecordAge: props.maxRecordAge ?? Duration.hours(24),
        onFailure: new SqsDlq(this.queue),
      }),
    );
    return fn;
  }

  /**
   * The closer (on a schedule: closes what one run can, hands larger window
   * starts to the fan-out), the closing queue and the closing workers.
   */
  private createClosing(props: UsageIngestorProps) {
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const closingInterval = props.closingInterval ?? Duration.minutes(5);
    const closingMargin = AGGREGATOR_TIMEOUT.plus(CLOSING_SKEW_ALLOWANCE);
    const eventBus = props.eventBus ?? events.EventBus.fromEventBusArn(this, 'DefaultEventBus',
      Stack.of(this).formatArn({ service: 'events', resource: 'event-bus', resourceName: 'default' }));

    // A message is delivered again once a worker's longest run has passed without its deletion.
    const queue = new sqs.Queue(this, 'ClosingQueue', {
      encryption: this.encryptionKey ? sqs.QueueEncryption.KMS : sqs.QueueEncryption.SQS_MANAGED,
      encryptionMasterKey: this.encryptionKey,
      enforceSSL: true,
      visibilityTimeout: WORKER_TIMEOUT.plus(Duration.minutes(1)),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.closingDlq, maxReceiveCount: CLOSING_RECEIVE_COUNT },
    });
    const closingEnv = {
      ...this.windowSettings,
      [CLOSER_ENV.EVENT_BUS_ARN]: eventBus.eventBusArn,
    };

    const closer = createHandlerFunction(this, 'Closer', CloserFunction, {
      description: 'cdk-saas-billing usage ingestor: closes usage windows for good and announces each on the event bus',
      timeout: CLOSER_TIMEOUT,
      memorySize: 1024,
      logRetention: props.logRetention,
      removalPolicy,
      runtime: props.runtime,
      environment: {
        ...closingEnv,
        [CLOSER_ENV.CLOSING_MARGIN_SECONDS]: String(closingMargin.toSeconds()),
        [CLOSER_ENV.LEDGER_KEYS]: String(this.ledgerKeys),
        [CLOSER_ENV.LEDGER_RETENTION_SECONDS]: String(LEDGER_RETENTION.toSeconds()),
        [CLOSER_ENV.FAN_OUT_ITEMS]: String(FAN_OUT_ITEMS),
        [CLOSER_ENV.SEGMENT_ITEMS]: String(SEGMENT_ITEMS),
        ...this.powertools,
      },
    });
    this.table.grant(closer, 'dynamodb:Query', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:BatchWriteItem');
    this.encryptionKey?.grantEncryptDecrypt(closer);
    eventBus.grantPutEventsTo(closer);
    queue.grantSendMessages(closer);
    new events.Rule(this, 'CloserSchedule', {
      description: `Runs the usage closer of ${this.node.path}`,
      schedule: events.Schedule.rate(closingInterval),
      // A failed run is not retried by Lambda's async queue: the next scheduled run redoes it (closing is idempotent).
      // The event carries the closing queue's URL (what the closer needs to fan a window start out).
      targets: [new targets.LambdaFunction(closer, {
        retryAttempts: 0,
        event: events.RuleTargetInput.fromObject({ closingQueueUrl: queue.queueUrl } satisfies CloserEvent),
      })],
    });

    const worker = createHandlerFunction(this, 'ClosingWorker', ClosingWorkerFunction, {
      description: 'cdk-saas-billing usage ingestor: folds, merges and announces the windows of a window start too large for one closer run',
      timeout: WORKER_TIMEOUT,
      // 1,769 MB: a whole vCPU (https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html)
      memorySize: 1769,
      logRetention: props.logRetention,
      removalPolicy,
      runtime: props.runtime,
      environment: { ...closingEnv, ...this.powertools },
    });
    this.table.grant(worker, 'dynamodb:Query', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:BatchWriteItem');
    this.encryptionKey?.grantEncryptDecrypt(worker);
    eventBus.grantPutEventsTo(worker);
    queue.grantSendMessages(worker);
    // No maximum concurrency: the work in flight is bounded by the job's messages (a segment per ledger key at
    // most, 256 partitions), and without it Lambda may poll an idle queue with 2 pollers instead of 5
    // (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html): the fan-out at rest costs only these polls.
    worker.addEventSource(new SqsEventSource(queue, { batchSize: 1 }));

    // The longest a closing run takes once the closer starts it: one closer run, or the
    // fan-out's modeled time at the declared rate when that is longer.
    const modeled = props.expectedRecordsPerSecond !== undefined && !Token.isUnresolved(props.expectedRecordsPerSecond)
      ? Duration.minutes(Math.ceil(closingRunSeconds(this.capacityProps(props)) / 60)) : Duration.minutes(0);
    const run = modeled.toMinutes() > CLOSER_TIMEOUT.toMinutes() ? modeled : CLOSER_TIMEOUT;
    const times: UsageClosingTimes = {
      windowSeconds: WINDOW_LENGTH_MS[this.windowGranularity] / 1000,
      maxClosingDelay: this.allowedLateness.plus(closingMargin).plus(closingInterval).plus(run),
    };
    return { closer, queue, worker, times };
  }

  private createAlarms(props: UsageIngestorProps): cloudwatch.Alarm[] {
    const alarms = new AlarmSet(this, props.alarmActions);
    alarms.add('IteratorAgeAlarm', this.metricIteratorAge(), {
      description: 'the usage aggregator lags behind its data stream',
      threshold: (props.iteratorAgeAlarmThreshold ?? Duration.minutes(5)).toMilliseconds(),
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    });
    alarms.add('DeadLetterQueueAlarm', this.metricDeadLetterQueueDepth(), {
      description: 'batches of usage records failed for good: see the dead-letter queue, their records are still on the stream for its retention',
    });
    alarms.add('ErrorsAlarm', this.metricErrors(), { description: 'the usage aggregator failed a whole batch (it will be retried)' });
    alarms.add('QuarantinedRecordsAlarm', this.metricQuarantinedRecords(), {
      description: 'usage records were quarantined (malformed, late or unmatched voids): see the QUARANTINE# items of the usage table',
    });
    alarms.add('CloserErrorsAlarm', this.metricCloserErrors(), { description: 'the usage closer failed (the next scheduled run retries)' });
    alarms.add('ClosingLagAlarm', this.metricClosingLag(), {
      description: 'usage windows are not closed 30 minutes after they could be: the usage push waits for them',
      threshold: Duration.minutes(30).toSeconds(),
    });
    alarms.add('ClosingDeadLetterQueueAlarm', this.metricClosingDeadLetterQueueDepth(), {
      description: 'closing work failed 5 times (see the closing worker\'s log); the closer sends missing work again after 20 minutes, '
        + 'or redrive the closing dead-letter queue',
    });
    return alarms.alarms;
  }

  private acknowledgeKeyFindings(functions: lambda.Function[]): void {
    if (!this.encryptionKey) return;
    for (const fn of functions) {
      for (const action of ['kms:GenerateDataKey*', 'kms:ReEncrypt*']) {
        acknowledgeNag(fn.role!, `AwsSolutions-IAM5[Action::${action}]`,
          `CDK's grantEncryptDecrypt on the single key given as encryptionKey; ${action} is scoped to that key's ARN.`);
      }
    }
  }

  private capacityProps(props: UsageIngestorProps): CapacityProps {
    const provisioned = (props.streamMode ?? kinesis.StreamMode.ON_DEMAND) === kinesis.StreamMode.PROVISIONED;
    return {
      recordsPerSecond: props.expectedRecordsPerSecond!,
      granularity: this.windowGranularity,
      ledgerKeys: this.ledgerKeys,
      shardCount: provisioned ? props.shardCount ?? 1 : undefined,
      parallelizationFactor: props.parallelizationFactor ?? 1,
      batchSize: props.batchSize ?? 100,
      closingIntervalSeconds: (props.closingInterval ?? Duration.minutes(5)).toSeconds(),
    };
  }

  /** Warns, at synth, where the props cannot carry `expectedRecordsPerSecond` (by the capacity model). */
  private checkCapacity(props: UsageIngestorProps): void {
    const rate = props.expectedRecordsPerSecond;
    const numbers = [rate, props.ledgerKeys, props.shardCount, props.parallelizationFactor, props.batchSize];
    if (rate === undefined || numbers.some((n) => Token.isUnresolved(n))) return;
    for (const problem of capacityProblems(this.capacityProps(props))) {
      Annotations.of(this).addWarningV2(`cdk-saas-billing:usageIngestorCapacity.${problem.id}`, `expectedRecordsPerSecond ${rate}: ${problem.message}`);
    }
  }

  /**
   * The ledger's change feed (`Entitlements` binds to it). The usage table's
   * DynamoDB stream (new and old images) is turned on when the first consumer binds.
   */
  public get ledgerChanges(): ILedgerChangeFeed | undefined {
    this.changeFeed ??= new LedgerChangeFeed(this.table, this.encryptionKey);
    return this.changeFeed;
  }

  /**
   * Grants a producer the right to put usage records on the data stream
   * (including the key to encrypt them).
   */
  public grantPutUsage(grantee: iam.IGrantable): iam.Grant {
    return this.dataStream.grantWrite(grantee);
  }

  /**
   * Lets a consumer read usage through the usage read contract (`UsageReader`):
   * read access to the usage table (and its key), and the environment
   * `UsageReader.fromEnvironment()` reads, set on the consumer when it is a
   * `lambda.Function`.
   */
  public bindUsageReader(consumer: lambda.IFunction): UsageReaderBinding {
    const environment: { [name: string]: string } = {
      [USAGE_READER_ENV.TABLE_NAME]: this.table.tableName,
      [USAGE_READER_ENV.WINDOW_GRANULARITY]: this.windowGranularity,
      [USAGE_READER_ENV.ALLOWED_LATENESS_SECONDS]: String(this.allowedLateness.toSeconds()),
      [USAGE_READER_ENV.MAX_CLOCK_SKEW_SECONDS]: String(this.maxClockSkew.toSeconds()),
      // Set only for a count other than the reader's default, 64: bindings of ingestors before the setting stay as they were.
      ...(this.ledgerKeys !== DEFAULT_LEDGER_KEYS ? { [USAGE_READER_ENV.LEDGER_KEYS]: String(this.ledgerKeys) } : {}),
    };
    this.table.grant(consumer, 'dynamodb:Query', 'dynamodb:GetItem');
    this.encryptionKey?.grantDecrypt(consumer);
    if (consumer instanceof lambda.Function) {
      for (const [name, value] of Object.entries(environment)) consumer.addEnvironment(name, value);
    }
    return { environment };
  }

  /**
   * Records put on the data stream (AWS/Kinesis `IncomingRecords`, sum over 5 minutes):
   * the ingest rate, before the aggregator reads them.
   */
  public metricIncomingRecords(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.dataStream.metricIncomingRecords({ statistic: cloudwatch.Stats.SUM, period: Duration.minutes(5), ...props });
  }

  /**
   * Age of the last record the aggregator read, in milliseconds (maximum over 1 minute).
   */
  public metricIteratorAge(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.fn.metric('IteratorAge', { statistic: cloudwatch.Stats.MAXIMUM, period: Duration.minutes(1), ...props });
  }

  /**
   * Messages waiting in the dead-letter queue (maximum over 1 minute).
   */
  public metricDeadLetterQueueDepth(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return queueDepthMetric(this.queue, props);
  }

  /**
   * Messages waiting in the closing dead-letter queue: closing work that failed 5 times (maximum over 1 minute).
   */
  public metricClosingDeadLetterQueueDepth(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return queueDepthMetric(this.closingDlq, props);
  }

  /**
   * Errors of the aggregator function (sum over 5 minutes).
   */
  public metricErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return functionErrorsMetric(this.fn, props);
  }

  /**
   * Errors of the closer function (sum over 5 minutes).
   */
  public metricCloserErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return functionErrorsMetric(this.closer, props);
  }

  /**
   * Records set aside in the quarantine: malformed, late, or voids without their record (`QuarantinedRecords`, sum over 5 minutes).
   */
  public metricQuarantinedRecords(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.functionMetric(METRICS.QUARANTINED_RECORDS, props);
  }

  /**
   * Records and voids written to the ledger (`RecordsCounted`, sum over 5 minutes).
   */
  public metricRecordsCounted(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.functionMetric(METRICS.RECORDS_COUNTED, props);
  }

  /**
   * Records dropped because the same record was written already, in the batch or
   * before its window closed (`DuplicateRecords`, sum over 5 minutes).
   */
  public metricDuplicateRecords(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.functionMetric(METRICS.DUPLICATE_RECORDS, props);
  }

  /**
   * Windows the closer closed for good (`WindowsClosed`, sum over 5 minutes).
   */
  public metricWindowsClosed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.functionMetric(METRICS.WINDOWS_CLOSED, props);
  }

  /**
   * Voids the closer applied to the windows it closed (`VoidsApplied`, sum over 5 minutes).
   */
  public metricVoidsApplied(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.functionMetric(METRICS.VOIDS_APPLIED, props);
  }

  /**
   * How long after it could be closed the oldest window still open is, in seconds
   * (`ClosingLagSeconds`, maximum over 5 minutes).
   */
  public metricClosingLag(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.functionMetric(METRICS.CLOSING_LAG_SECONDS, { statistic: cloudwatch.Stats.MAXIMUM, ...props });
  }

  private functionMetric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return handlerMetric(this.metricNamespace, this.serviceName, metricName, props);
  }
}

function validate(scope: Construct, props: UsageIngestorProps): void {
  const v = new PropsValidator(scope, 'UsageIngestor');
  const mode = props.streamMode ?? kinesis.StreamMode.ON_DEMAND;
  if (props.shardCount !== undefined && mode !== kinesis.StreamMode.PROVISIONED) {
    v.add('shardCount', props.shardCount, 'only applies to provisioned streams', 'set streamMode to StreamMode.PROVISIONED or remove shardCount');
  }
  v.range('shardCount', props.shardCount, 1, 100_000, { fix: 'give at least one shard' });
  // Kinesis keeps records 24 to 8760 hours, a whole number of hours (RetentionPeriodHours, an integer):
  // https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-kinesis-stream.html
  v.durationRange('retentionPeriod', props.retentionPeriod, Duration.hours(24), Duration.days(365), { whole: 'hours' });
  // The event source mapping's settings for Kinesis, integers in the ranges AWS documents:
  // https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-parameters.html (BatchSize up to 10,000,
  // ParallelizationFactor up to 10, MaximumRetryAttempts -1 to 10,000, MaximumRecordAgeInSeconds up to 604,800)
  // and https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html (MaximumBatchingWindowInSeconds
  // 0 to 300 in whole seconds; MaximumRecordAgeInSeconds at least 60 unless -1, which a Duration cannot express).
  v.range('batchSize', props.batchSize, 1, 10_000);
  v.durationRange('maxBatchingWindow', props.maxBatchingWindow, Duration.seconds(0), Duration.seconds(300), { whole: 'seconds' });
  v.range('parallelizationFactor', props.parallelizationFactor, 1, 10);
  v.range('retryAttempts', props.retryAttempts, -1, 10_000, { fix: 'give 0 to 10000 retries, or -1 to retry until the record is older than maxRecordAge' });
  v.durationRange('maxRecordAge', props.maxRecordAge, Duration.minutes(1), Duration.days(7), { whole: 'seconds' });
  // The handlers read these in whole seconds, the closer's schedule is a rate in whole minutes.
  v.durationRange('allowedLateness', props.allowedLateness, Duration.seconds(0), Duration.days(7),
    { whole: 'seconds', fix: 'give up to 7 days in whole seconds (ledger items are kept 7 days past a window\'s close)' });
  v.durationRange('maxClockSkew', props.maxClockSkew, Duration.seconds(0), Duration.days(1), { whole: 'seconds' });
  v.durationRange('closingInterval', props.closingInterval, Duration.minutes(1), Duration.hours(1), { whole: 'minutes' });
  v.durationRange('iteratorAgeAlarmThreshold', props.iteratorAgeAlarmThreshold, Duration.seconds(1), Duration.days(7),
    'use e.g. Duration.minutes(5)');
  v.range('ledgerKeys', props.ledgerKeys, LEDGER_KEYS_RANGE.min, LEDGER_KEYS_RANGE.max, {
    fix: 'give about expectedRecordsPerSecond / 800 keys, at least 64 (fixed for the table\'s life)',
  });
  v.range('expectedRecordsPerSecond', props.expectedRecordsPerSecond, 1, 10_000_000, { fix: 'give your peak rate of usage records per second' });
  validateRuntime(v, props.runtime);
  v.throwIfInvalid();
}
