import { Duration, Names, RemovalPolicy } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import { SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as pipes from 'aws-cdk-lib/aws-pipes';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct, IConstruct } from 'constructs';
import { ConsumeFunction } from './consume-function';
import {
  ENTITLEMENT_EVENT_SOURCE, ENTITLEMENT_EVENTS, ENTITLEMENT_READER_ENV, ENTITLEMENTS_ENV, ENTITLEMENTS_TABLE, METRIC_NAMESPACE, METRICS,
  THRESHOLD_ITEM_KINDS, thresholdEventTemplate,
} from './contract';
import { PlanSyncFunction } from './plan-sync-function';
import { EventDefinition } from '../events/event-definition';
import { LibraryFunctionOptions } from '../functions/library-functions';
import { IDataIngestorAggregator } from '../ingestor/ingestor';
import { ledgerChangeFilters, MAX_FILTER_PATTERN_LENGTH } from '../ingestor/ledger-changes';
import { IBillingPlans } from '../plans/billing-plans';
import { EntitlementPeriod } from '../plans/plan';
import { AlarmSet, functionErrorsMetric, handlerMetric, queueDepthMetric } from '../private/alarms';
import { createHandlerFunction } from '../private/handler-function';
import { acknowledgeNag } from '../private/nag';
import { validateRuntime } from '../private/node-runtime';
import { PropsValidator } from '../private/validation';

/**
 * What `bindEntitlementReader` did: the environment the consumer's `EntitlementReader` reads.
 */
export interface EntitlementReaderBinding {
  /** Environment variables for `EntitlementReader.fromEnvironment()`; already set on the consumer when it is a `lambda.Function` of this app. */
  readonly environment: { [name: string]: string };
}

/**
 * Entitlements as readers and enforcers see them: the table that answers "may
 * tenant T use metric M" in one GetItem, and the balances read contract.
 */
export interface IEntitlements extends IConstruct {
  /**
   * The entitlements table. Its tenant access item (`pk` = `A#<tenantId>`,
   * `sk` = `ACCESS`) answers "may tenant T use metric M" in one GetItem: see
   * `docs/plans-and-limits.md` ("Ask from any language").
   */
  readonly entitlementsTable: dynamodb.ITable;

  /** The plans the entitlements follow. */
  readonly plans: IBillingPlans;

  /**
   * Lets a function read entitlements: balances (used, limit, remaining, thresholds
   * crossed) and access, through the runtime's `EntitlementReader`. Grants read
   * access to the entitlements table and the plans, and sets the environment
   * when it is a `lambda.Function` of this app.
   *
   * @param consumer the function that reads entitlements
   */
  bindEntitlementReader(consumer: lambda.IFunction): EntitlementReaderBinding;

  /**
   * Grants read access to the entitlements table (the access items, for a check
   * of your own in any language: one GetItem).
   *
   * @param grantee who reads
   */
  grantReadAccess(grantee: iam.IGrantable): iam.Grant;
}

/**
 * Properties of `Entitlements`.
 */
export interface EntitlementsProps extends LibraryFunctionOptions {
  /**
   * The usage ingestor whose ledger the running totals follow (through its change feed, `ledgerChanges`).
   */
  readonly ingestor: IDataIngestorAggregator;

  /**
   * The plans whose entitlements (limits, thresholds) apply.
   */
  readonly plans: IBillingPlans;

  /**
   * The bus the threshold events (`usageThresholdCrossed`, `usageLimitReached`) are put on.
   * @default - the plans' bus (`plans.eventBus`)
   */
  readonly eventBus?: events.IEventBus;

  /**
   * Most ledger changes per invocation of the consumer.
   * @default 100
   */
  readonly batchSize?: number;

  /**
   * Longest time ledger changes are gathered before the consumer runs (adds to
   * the time from a record to its threshold event). Up to 30 seconds.
   * @default Duration.seconds(1)
   */
  readonly maxBatchingWindow?: Duration;

  /**
   * How long running totals and threshold events are kept after their period ends.
   * At least 1 day.
   * @default Duration.days(35)
   */
  readonly retention?: Duration;

  /**
   * What happens to the entitlements table and the functions' log groups when they leave the stack.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;

  /**
   * How long the functions' logs are kept.
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;

  /**
   * Actions of the construct's alarms (see `alarms`).
   * @default - the alarms have no action
   */
  readonly alarmActions?: cloudwatch.IAlarmAction[];
}

/**
 * Entitlements: running totals per tenant, metric and entitlement period, kept
 * from the usage ledger's changes exactly as the ledger counts (each record
 * once, resends never, voids taken out), within seconds of a record's arrival;
 * `usageThresholdCrossed` and `usageLimitReached` events on the bus, once per
 * tenant, metric, period and threshold; and each tenant's blocked state for
 * `BLOCK` limits, readable in one GetItem (`EntitlementAuthorizer` reads it).
 *
 * - Metrics without entitlements cost nothing: the ledger consumer never sees
 *   their records (Lambda event filtering on the ledger's change feed).
 * - A plan change switches the limits at the instant it takes effect; the
 *   tenant's access is settled again at once (unblocked under a larger limit).
 * - A blocked tenant is unblocked when the period rolls over (no write: the
 *   block ends at the period's end), when its plan changes to one whose limit it
 *   is under, or when a void brings its total back under the limit.
 */
export class Entitlements extends Construct implements IEntitlements {
  public readonly entitlementsTable: dynamodb.ITable;
  public readonly plans: IBillingPlans;
  /** The event put on the bus when a total reaches a soft threshold. */
  public readonly thresholdCrossedEvent: EventDefinition;
  /** The event put on the bus when a total reaches its limit. */
  public readonly limitReachedEvent: EventDefinition;
  /** The function that applies the ledger's changes to the running totals. */
  public readonly consumerFunction: lambda.IFunction;
  /** The function that records plan changes for the entitlements. */
  public readonly planSyncFunction: lambda.IFunction;
  /** Where failed ledger batches, undeliverable plan events and undeliverable threshold events go. */
  public readonly deadLetterQueue: sqs.IQueue;
  /** The construct's alarms. */
  public readonly alarms: cloudwatch.Alarm[];

  private readonly table: dynamodb.Table;
  private readonly consumer: lambda.Function;
  private readonly planSync: lambda.Function;
  private readonly serviceName: string;

  constructor(scope: Construct, id: string, props: EntitlementsProps) {
    super(scope, id);
    const metrics = entitledMetrics(props?.plans);
    validate(this, props, metrics);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const eventBus = props.eventBus ?? props.plans.eventBus;
    this.plans = props.plans;
    this.serviceName = Names.uniqueResourceName(this, { maxLength: 64 });
    this.thresholdCrossedEvent = { source: ENTITLEMENT_EVENT_SOURCE, detailType: ENTITLEMENT_EVENTS.THRESHOLD_CROSSED };
    this.limitReachedEvent = { source: ENTITLEMENT_EVENT_SOURCE, detailType: ENTITLEMENT_EVENTS.LIMIT_REACHED };

    this.table = new dynamodb.Table(this, 'EntitlementsTable', {
      partitionKey: { name: ENTITLEMENTS_TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: ENTITLEMENTS_TABLE.sortKey, type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: ENTITLEMENTS_TABLE.timeToLive,
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      // The threshold event items reach the bus through this stream and the pipes.
      stream: dynamodb.StreamViewType.NEW_IMAGE,
      removalPolicy,
    });
    this.entitlementsTable = this.table;

    const queue = new sqs.Queue(this, 'DeadLetterQueue', { encryption: sqs.QueueEncryption.SQS_MANAGED, enforceSSL: true, retentionPeriod: Duration.days(14) });
    acknowledgeNag(queue, 'AwsSolutions-SQS3', 'This queue is itself the dead-letter queue of the ledger consumer, the plan sync rule and the threshold event pipes.');
    this.deadLetterQueue = queue;

    const environment = {
      POWERTOOLS_SERVICE_NAME: this.serviceName,
      POWERTOOLS_METRICS_NAMESPACE: METRIC_NAMESPACE,
      [ENTITLEMENTS_ENV.TABLE_NAME]: this.table.tableName,
      [ENTITLEMENTS_ENV.RETENTION_SECONDS]: String((props.retention ?? Duration.days(35)).toSeconds()),
    };
    this.consumer = createHandlerFunction(this, 'Consumer', ConsumeFunction, {
      description: 'cdk-saas-billing Entitlements: applies the usage ledger\'s changes to running totals, threshold events and blocked states',
      timeout: Duration.minutes(1),
      memorySize: 512,
      logRetention: props.logRetention,
      removalPolicy,
      runtime: props.runtime,
      environment,
    });
    this.consumerFunction = this.consumer;
    this.table.grant(this.consumer, 'dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:UpdateItem',
      'dynamodb:ConditionCheckItem');
    props.plans.bindPlanReader(this.consumer);
    props.ingestor.ledgerChanges!.bindConsumer(this.consumer, {
      metrics,
      batchSize: props.batchSize,
      maxBatchingWindow: props.maxBatchingWindow,
      onFailure: new SqsDlq(queue),
    });

    this.planSync = createHandlerFunction(this, 'PlanSync', PlanSyncFunction, {
      description: 'cdk-saas-billing Entitlements: records tenants\' plans and settles their access when a plan changes',
      timeout: Duration.seconds(30),
      logRetention: props.logRetention,
      removalPolicy,
      runtime: props.runtime,
      environment,
    });
    this.planSyncFunction = this.planSync;
    this.table.grant(this.planSync, 'dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:UpdateItem',
      'dynamodb:ConditionCheckItem');
    props.plans.bindPlanReader(this.planSync);
    this.planSync.configureAsyncInvoke({ onFailure: new destinations.SqsDestination(queue), retryAttempts: 2 });
    new events.Rule(this, 'PlanChangedRule', {
      description: `cdk-saas-billing Entitlements: ${props.plans.planChangedEvent.source} / ${props.plans.planChangedEvent.detailType}`,
      eventBus: props.plans.eventBus,
      eventPattern: { source: [props.plans.planChangedEvent.source], detailType: [props.plans.planChangedEvent.detailType] },
      targets: [new targets.LambdaFunction(this.planSync, { deadLetterQueue: queue, retryAttempts: 185, maxEventAge: Duration.hours(24) })],
    });

    this.createPipes(eventBus, queue);

    const alarms = new AlarmSet(this, props.alarmActions);
    alarms.add('DeadLetterQueueAlarm', this.metricDeadLetterQueueDepth(), {
      description: 'ledger batches, plan events or threshold events failed for good: read the dead-letter queue (a ledger batch\'s changes are in the usage table\'s stream for 24 hours)',
    });
    alarms.add('ConsumerErrorsAlarm', this.metricConsumerErrors(), { description: 'the entitlements\' ledger consumer failed a batch (it is retried)' });
    alarms.add('IteratorAgeAlarm', this.metricIteratorAge(), {
      description: 'the running totals are more than 60 seconds behind the usage ledger',
      threshold: 60_000,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    });
    this.alarms = alarms.alarms;
  }

  public bindEntitlementReader(consumer: lambda.IFunction): EntitlementReaderBinding {
    const environment: { [name: string]: string } = { [ENTITLEMENT_READER_ENV.TABLE_NAME]: this.table.tableName };
    this.table.grant(consumer, 'dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:BatchGetItem');
    const plans = this.plans.bindPlanReader(consumer);
    if (consumer instanceof lambda.Function) {
      for (const [name, value] of Object.entries(environment)) consumer.addEnvironment(name, value);
    }
    return { environment: { ...environment, ...plans.environment } };
  }

  public grantReadAccess(grantee: iam.IGrantable): iam.Grant {
    return this.table.grant(grantee, 'dynamodb:GetItem', 'dynamodb:BatchGetItem');
  }

  /** Messages in the dead-letter queue (maximum over 1 minute). Alarmed (`DeadLetterQueueAlarm`). */
  public metricDeadLetterQueueDepth(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return queueDepthMetric(this.deadLetterQueue, props);
  }

  /** Errors of the ledger consumer (sum over 5 minutes). Alarmed (`ConsumerErrorsAlarm`). */
  public metricConsumerErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return functionErrorsMetric(this.consumer, props);
  }

  /** How far the ledger consumer is behind the usage ledger, in milliseconds (maximum over 1 minute). Alarmed above 60 s (`IteratorAgeAlarm`). */
  public metricIteratorAge(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.consumer.metric('IteratorAge', { statistic: cloudwatch.Stats.MAXIMUM, period: Duration.minutes(1), ...props });
  }

  /** Threshold events written, each put on the bus once (`ThresholdEvents`, sum over 5 minutes). */
  public metricThresholdEvents(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return handlerMetric(METRIC_NAMESPACE, this.serviceName, METRICS.THRESHOLD_EVENTS, props);
  }

  /** Tenants blocked or unblocked for a metric (`AccessChanges`, sum over 5 minutes). */
  public metricAccessChanges(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return handlerMetric(METRIC_NAMESPACE, this.serviceName, METRICS.ACCESS_CHANGES, props);
  }

  /**
   * One pipe per threshold event type, from the entitlements table's stream to
   * the bus: each threshold event item, written once, becomes one event, with
   * no code of ours between the item and the bus.
   */
  private createPipes(eventBus: events.IEventBus, queue: sqs.IQueue): void {
    const role = new iam.Role(this, 'PipeRole', {
      assumedBy: new iam.ServicePrincipal('pipes.amazonaws.com'),
      description: `cdk-saas-billing: threshold event pipes of ${this.node.path}`,
    });
    this.table.grantStreamRead(role);
    eventBus.grantPutEventsTo(role);
    queue.grantSendMessages(role);
    acknowledgeNag(role, 'AwsSolutions-IAM5[Resource::*]', 'dynamodb:ListStreams takes no resource (table.grantStreamRead grants it on *).');
    for (const [id, kind, detailType] of [
      ['ThresholdCrossedPipe', THRESHOLD_ITEM_KINDS.THRESHOLD_CROSSED, ENTITLEMENT_EVENTS.THRESHOLD_CROSSED],
      ['LimitReachedPipe', THRESHOLD_ITEM_KINDS.LIMIT_REACHED, ENTITLEMENT_EVENTS.LIMIT_REACHED],
    ] as const) {
      const pipe = new pipes.CfnPipe(this, id, {
        description: `cdk-saas-billing Entitlements: ${detailType} events from the threshold event items`,
        roleArn: role.roleArn,
        source: this.table.tableStreamArn!,
        sourceParameters: {
          dynamoDbStreamParameters: {
            startingPosition: 'TRIM_HORIZON',
            batchSize: 10,
            maximumRetryAttempts: 185,
            deadLetterConfig: { arn: queue.queueArn },
          },
          filterCriteria: { filters: [{ pattern: JSON.stringify({ eventName: ['INSERT'], dynamodb: { NewImage: { kind: { S: [kind] } } } }) }] },
        },
        target: eventBus.eventBusArn,
        targetParameters: {
          eventBridgeEventBusParameters: { source: ENTITLEMENT_EVENT_SOURCE, detailType },
          inputTemplate: thresholdEventTemplate(),
        },
      });
      pipe.node.addDependency(role);
    }
  }
}

/** Every metric some plan has an entitlement on. */
function entitledMetrics(plans: IBillingPlans | undefined): string[] {
  const set = new Set<string>();
  for (const plan of plans?.plans ?? []) {
    for (const m of plan.metrics ?? []) if ((m.entitlements ?? []).length > 0) set.add(m.metric);
  }
  return [...set].sort();
}

function validate(scope: Construct, props: EntitlementsProps, metrics: string[]): void {
  const v = new PropsValidator(scope, 'Entitlements');
  if (!props?.ingestor) {
    v.add('ingestor', props?.ingestor, 'is required', 'pass the UsageIngestor whose usage the limits count');
  } else if (!props.ingestor.ledgerChanges) {
    v.add('ingestor', props.ingestor, 'has no ledger change feed (ledgerChanges)', 'pass a UsageIngestor: it offers its ledger\'s changes');
  }
  if (!props?.plans) {
    v.add('plans', props?.plans, 'is required', 'pass the BillingPlans whose entitlements apply');
  } else if (metrics.length === 0) {
    v.add('plans', props.plans.node.path, 'define no entitlement on any metric', 'give a plan\'s metric entitlements: [{ limit, period }]');
  }
  const windowSeconds = props?.ingestor?.closingTimes?.windowSeconds;
  for (const [p, plan] of (props?.plans?.plans ?? []).entries()) {
    for (const [i, m] of (plan.metrics ?? []).entries()) {
      for (const [j, e] of (m.entitlements ?? []).entries()) {
        if (e.period === EntitlementPeriod.HOUR && windowSeconds !== undefined && windowSeconds > 3600) {
          v.add(`plans.plans[${p}].metrics[${i}].entitlements[${j}].period`, e.period,
            `needs hourly usage windows, and the ingestor's windows are ${windowSeconds / 3600} hours long`, 'use EntitlementPeriod.DAY or longer, or an ingestor with WindowGranularity.HOUR');
        }
      }
    }
  }
  const longest = Math.max(0, ...ledgerChangeFilters(metrics).map((f) => JSON.stringify(f).length));
  if (longest > MAX_FILTER_PATTERN_LENGTH) {
    v.add('plans', metrics.length, `hold ${metrics.length} metrics with entitlements, whose event filter takes ${longest} characters (Lambda's limit: ${MAX_FILTER_PATTERN_LENGTH})`,
      'put entitlements on fewer metrics, or shorten their names');
  }
  v.range('batchSize', props?.batchSize, 1, 10_000);
  v.durationRange('maxBatchingWindow', props?.maxBatchingWindow, Duration.seconds(0), Duration.seconds(30),
    'give at most 30 seconds: the running totals are meant to be at most 60 seconds behind the ledger');
  v.durationRange('retention', props?.retention, Duration.days(1), Duration.days(3650));
  validateRuntime(v, props?.runtime);
  v.throwIfInvalid();
}
