import { Duration, Names, RemovalPolicy, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { KinesisEventSource, SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { AggregatorFunction } from './aggregator-function';
import { IDataIngestorAggregator } from './ingestor';
import { AGGREGATE_LAYOUT } from './layout';
import { acknowledgeNag } from '../private/nag';

/**
 * The length of the event-time windows usage is aggregated in (UTC).
 */
export enum WindowGranularity {
  /** One aggregate per tenant, metric and UTC hour. */
  HOUR = 'HOUR',
  /** One aggregate per tenant, metric and UTC day. */
  DAY = 'DAY',
}

/**
 * Properties of a `UsageIngestor`.
 */
export interface UsageIngestorProps {
  /**
   * Capacity mode of the data stream.
   *
   * @default kinesis.StreamMode.ON_DEMAND
   */
  readonly streamMode?: kinesis.StreamMode;

  /**
   * Number of shards of the data stream; only with `StreamMode.PROVISIONED`.
   *
   * @default 1 when the stream mode is PROVISIONED
   */
  readonly shardCount?: number;

  /**
   * How long the data stream keeps records (24 hours to 365 days).
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
   * How long after a window ends records may still be counted into it. From
   * the window's end plus this bound (its `closesAt`), the window never changes
   * and later records are quarantined with reason `LATE`. Between 0 and 7 days.
   *
   * @default Duration.hours(1)
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
   * Most records the aggregator function receives in one batch (1 to 10000).
   *
   * @default 100
   */
  readonly batchSize?: number;

  /**
   * Longest time the event source mapping gathers records before invoking the
   * function (0 to 300 seconds).
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
   * dead-letter queue (0 to 10000). Malformed records never fail a batch.
   *
   * @default 500
   */
  readonly retryAttempts?: number;

  /**
   * Oldest record the function still retries; older ones go to the dead-letter
   * queue (60 seconds to 7 days).
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
   * Retention of the aggregator function's logs.
   *
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;

  /**
   * A customer-managed KMS key that encrypts the data stream, the aggregate
   * table and the dead-letter queue (producers and readers are granted its use).
   *
   * @default - AWS managed keys: `aws/kinesis` for the stream, `aws/dynamodb` for the table, SQS-managed encryption for the queue
   */
  readonly encryptionKey?: kms.IKey;

  /**
   * What happens to the data stream, the aggregate table and the function's
   * log group when they leave the stack.
   *
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

const MAX_LATENESS = Duration.days(7);
const DEDUP_RETENTION = Duration.days(7);
const QUARANTINE_RETENTION = Duration.days(90);

/**
 * A usage ingestor: a Kinesis data stream producers write usage records to, an
 * aggregating function that counts each record exactly once into per-tenant,
 * per-metric, per-window SUM and COUNT, and a DynamoDB table of the aggregates
 * (with a quarantine of malformed and late records) that the usage push reads.
 *
 * Usage record (JSON, one per Kinesis record; partition key: the tenant id):
 * `{"id": "<unique per tenant>", "tenantId": "t-1", "metric": "api_calls", "value": 3, "timestamp": "2026-11-27T02:15:00Z"}`
 */
export class UsageIngestor extends Construct implements IDataIngestorAggregator {
  /** The data stream producers write usage records to. */
  public readonly dataStream: kinesis.IStream;
  /** The table of aggregates, dedup marks and quarantined records. */
  public readonly aggregateTable: dynamodb.ITable;
  /** The function that reads the data stream and writes the aggregates. */
  public readonly aggregatorFunction: lambda.IFunction;
  /** The queue that receives the shard ranges of batches that finally failed. */
  public readonly deadLetterQueue: sqs.IQueue;
  /** The customer-managed key that encrypts the stream, the table and the dead-letter queue, if one was given. */
  public readonly encryptionKey?: kms.IKey;
  /** Fires when the function falls behind the stream by more than the threshold. */
  public readonly iteratorAgeAlarm: cloudwatch.IAlarm;
  /** Fires when the dead-letter queue holds a message. */
  public readonly deadLetterQueueAlarm: cloudwatch.IAlarm;
  /** Fires when the function reports an error. */
  public readonly errorsAlarm: cloudwatch.IAlarm;
  /** Fires when a record is quarantined. */
  public readonly quarantinedRecordsAlarm: cloudwatch.IAlarm;
  /** The window granularity of the aggregates. */
  public readonly windowGranularity: WindowGranularity;
  /** The CloudWatch namespace of the function's own metrics. */
  public readonly metricNamespace: string;

  private readonly serviceName: string;
  private readonly fn: lambda.Function;
  private readonly queue: sqs.Queue;

  constructor(scope: Construct, id: string, props: UsageIngestorProps = {}) {
    super(scope, id);
    validate(props);

    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const streamMode = props.streamMode ?? kinesis.StreamMode.ON_DEMAND;
    this.windowGranularity = props.windowGranularity ?? WindowGranularity.HOUR;
    const allowedLateness = props.allowedLateness ?? Duration.hours(1);

    const key = props.encryptionKey;
    this.encryptionKey = key;

    const stream = new kinesis.Stream(this, 'DataStream', {
      streamMode,
      shardCount: streamMode === kinesis.StreamMode.PROVISIONED ? props.shardCount ?? 1 : undefined,
      retentionPeriod: props.retentionPeriod ?? Duration.hours(24),
      encryption: key ? kinesis.StreamEncryption.KMS : kinesis.StreamEncryption.MANAGED,
      encryptionKey: key,
      removalPolicy,
    });
    this.dataStream = stream;
    if (key) {
      acknowledgeNag(stream, 'AwsSolutions-KDS3',
        'The user passed encryptionKey: a customer-managed key was asked for on purpose (without one the stream uses aws/kinesis).');
    }

    const table = new dynamodb.Table(this, 'AggregateTable', {
      partitionKey: { name: AGGREGATE_LAYOUT.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: AGGREGATE_LAYOUT.sortKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: key ? dynamodb.TableEncryption.CUSTOMER_MANAGED : dynamodb.TableEncryption.AWS_MANAGED,
      encryptionKey: key,
      timeToLiveAttribute: AGGREGATE_LAYOUT.ttlAttribute,
      removalPolicy,
    });
    table.addGlobalSecondaryIndex({
      indexName: AGGREGATE_LAYOUT.closeIndexName,
      partitionKey: { name: AGGREGATE_LAYOUT.closeIndexPartitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: AGGREGATE_LAYOUT.closeIndexSortKey, type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });
    this.aggregateTable = table;

    this.queue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: key ? sqs.QueueEncryption.KMS : sqs.QueueEncryption.SQS_MANAGED,
      encryptionMasterKey: key,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.deadLetterQueue = this.queue;

    this.serviceName = Names.uniqueResourceName(this, { maxLength: 64 });
    this.metricNamespace = 'CdkSaasBilling/UsageIngestor';

    const logGroup = new logs.LogGroup(this, 'AggregatorLogs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
      removalPolicy,
    });
    this.fn = new AggregatorFunction(this, 'Aggregator', {
      description: 'Aggregates usage records from the data stream exactly once into per-tenant windows',
      memorySize: 512,
      timeout: Duration.minutes(1),
      logGroup,
      environment: {
        AGGREGATE_TABLE_NAME: table.tableName,
        WINDOW_GRANULARITY: this.windowGranularity,
        ALLOWED_LATENESS_SECONDS: String(allowedLateness.toSeconds()),
        MAX_FUTURE_SKEW_SECONDS: String((props.maxClockSkew ?? Duration.minutes(5)).toSeconds()),
        DEDUP_RETENTION_SECONDS: String(DEDUP_RETENTION.toSeconds()),
        QUARANTINE_RETENTION_SECONDS: String(QUARANTINE_RETENTION.toSeconds()),
        POWERTOOLS_SERVICE_NAME: this.serviceName,
        POWERTOOLS_METRICS_NAMESPACE: this.metricNamespace,
      },
    });
    this.aggregatorFunction = this.fn;
    // Least privilege: the items of the table itself (no index), only the calls the handler makes.
    this.fn.addToRolePolicy(new iam.PolicyStatement({
      actions: ['dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem', 'dynamodb:ConditionCheckItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
      resources: [table.tableArn],
    }));
    key?.grantEncryptDecrypt(this.fn);

    this.fn.addEventSource(
      new KinesisEventSource(stream, {
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

    const alarmDefaults = { evaluationPeriods: 1, treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING };
    this.iteratorAgeAlarm = this.metricIteratorAge().createAlarm(this, 'IteratorAgeAlarm', {
      ...alarmDefaults,
      alarmDescription: `The usage aggregator of ${this.node.path} lags behind its data stream`,
      threshold: (props.iteratorAgeAlarmThreshold ?? Duration.minutes(5)).toMilliseconds(),
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    });
    this.deadLetterQueueAlarm = this.metricDeadLetterQueueDepth().createAlarm(this, 'DeadLetterQueueAlarm', {
      ...alarmDefaults,
      alarmDescription: `Batches of usage records of ${this.node.path} failed for good: see the dead-letter queue`,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    });
    this.errorsAlarm = this.metricErrors().createAlarm(this, 'ErrorsAlarm', {
      ...alarmDefaults,
      alarmDescription: `The usage aggregator of ${this.node.path} reports errors`,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    });
    this.quarantinedRecordsAlarm = this.metricQuarantinedRecords().createAlarm(this, 'QuarantinedRecordsAlarm', {
      ...alarmDefaults,
      alarmDescription: `Usage records of ${this.node.path} were quarantined (malformed or late): see the QUARANTINE# items of the aggregate table`,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    });

    this.acknowledgeNagFindings();
  }

  /**
   * Grants a producer the right to put usage records on the data stream
   * (including the key to encrypt them).
   */
  public grantPutUsage(grantee: iam.IGrantable): iam.Grant {
    return this.dataStream.grantWrite(grantee);
  }

  /**
   * Grants a consumer (the usage push) the right to read the aggregates,
   * including the `byCloseTime` index.
   */
  public grantReadAggregates(grantee: iam.IGrantable): iam.Grant {
    return this.aggregateTable.grantReadData(grantee);
  }

  /**
   * Age of the last record the function read, in milliseconds (maximum).
   */
  public metricIteratorAge(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.fn.metric('IteratorAge', { statistic: cloudwatch.Stats.MAXIMUM, period: Duration.minutes(1), ...props });
  }

  /**
   * Messages waiting in the dead-letter queue (maximum).
   */
  public metricDeadLetterQueueDepth(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.queue.metricApproximateNumberOfMessagesVisible({ statistic: cloudwatch.Stats.MAXIMUM, period: Duration.minutes(1), ...props });
  }

  /**
   * Errors of the aggregator function (sum).
   */
  public metricErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.fn.metricErrors({ statistic: cloudwatch.Stats.SUM, period: Duration.minutes(5), ...props });
  }

  /**
   * Records set aside in the quarantine, malformed or late (sum).
   */
  public metricQuarantinedRecords(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.functionMetric('QuarantinedRecords', props);
  }

  /**
   * Records counted into an aggregate (sum).
   */
  public metricRecordsCounted(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.functionMetric('RecordsCounted', props);
  }

  /**
   * Records dropped because they had been counted already (sum).
   */
  public metricDuplicateRecords(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.functionMetric('DuplicateRecords', props);
  }

  private functionMetric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: this.metricNamespace,
      metricName,
      dimensionsMap: { service: this.serviceName },
      statistic: cloudwatch.Stats.SUM,
      period: Duration.minutes(5),
      ...props,
    });
  }

  private acknowledgeNagFindings(): void {
    acknowledgeNag(this.fn, 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      'AWSLambdaBasicExecutionRole only lets the function write its own CloudWatch logs.');
    for (const action of ['kms:GenerateDataKey*', 'kms:ReEncrypt*']) {
      // Only present when the user passes an encryptionKey: CDK's grant on that one key.
      acknowledgeNag(this.fn, `AwsSolutions-IAM5[Action::${action}]`,
        `CDK's grantEncryptDecrypt on the single key given as encryptionKey; ${action} is scoped to that key's ARN.`);
    }
    acknowledgeNag(this.queue, 'AwsSolutions-SQS3',
      'This queue is itself the dead-letter queue (on-failure destination) of the event source mapping.');
  }
}

function checkRange(problems: string[], name: string, value: number | undefined, min: number, max: number, unit: string, fix: string) {
  if (value === undefined || Token.isUnresolved(value)) return;
  if (!Number.isInteger(value) || value < min || value > max) {
    problems.push(`${name} must be an integer between ${min} and ${max}${unit} (given ${value}): ${fix}`);
  }
}

function durationSeconds(d: Duration | undefined): number | undefined {
  if (d === undefined || d.isUnresolved()) return undefined;
  return d.toSeconds({ integral: false });
}

function validate(props: UsageIngestorProps): void {
  const problems: string[] = [];
  const mode = props.streamMode ?? kinesis.StreamMode.ON_DEMAND;
  if (props.shardCount !== undefined && mode !== kinesis.StreamMode.PROVISIONED) {
    problems.push(`shardCount (given ${props.shardCount}) only applies to provisioned streams: set streamMode to StreamMode.PROVISIONED or remove shardCount`);
  }
  checkRange(problems, 'shardCount', props.shardCount, 1, 100000, '', 'give at least one shard');
  checkRange(problems, 'batchSize', props.batchSize, 1, 10000, '', 'Kinesis event source mappings take 1 to 10000 records per batch');
  checkRange(problems, 'parallelizationFactor', props.parallelizationFactor, 1, 10, '', 'Kinesis allows 1 to 10 concurrent batches per shard');
  checkRange(problems, 'retryAttempts', props.retryAttempts, 0, 10000, '', 'retries must be bounded');
  checkRange(problems, 'retentionPeriod', durationSeconds(props.retentionPeriod) !== undefined ? props.retentionPeriod!.toHours({ integral: false }) : undefined,
    24, 8760, ' hours', 'Kinesis keeps records 24 hours to 365 days');
  checkRange(problems, 'maxBatchingWindow', durationSeconds(props.maxBatchingWindow), 0, 300, ' seconds', 'use whole seconds up to 5 minutes');
  checkRange(problems, 'maxRecordAge', durationSeconds(props.maxRecordAge), 60, 604800, ' seconds', 'use 1 minute to 7 days');
  checkRange(problems, 'allowedLateness', durationSeconds(props.allowedLateness), 0, MAX_LATENESS.toSeconds(), ' seconds',
    'use whole seconds up to 7 days (dedup marks are kept 7 days past a window\'s close)');
  checkRange(problems, 'maxClockSkew', durationSeconds(props.maxClockSkew), 0, 86400, ' seconds', 'use whole seconds up to 1 day');
  const threshold = durationSeconds(props.iteratorAgeAlarmThreshold);
  if (threshold !== undefined && threshold <= 0) {
    problems.push(`iteratorAgeAlarmThreshold must be positive (given ${threshold} seconds): use e.g. Duration.minutes(5)`);
  }
  if (problems.length > 0) {
    throw new Error(`Invalid UsageIngestor props:\n- ${problems.join('\n- ')}`);
  }
}

