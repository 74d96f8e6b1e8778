import { Duration, Names, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct, IConstruct } from 'constructs';
import { METRIC_NAMESPACE, METRICS, PLAN_READER_ENV, PLANS_ENV, PLANS_TABLE } from './contract';
import { BillingPlan } from './plan';
import { planDefinitionsOf, validatePlans } from './plan-definitions';
import { PlanEventsFunction } from './plan-events-function';
import { ControlPlaneEvents, EventDefinition } from '../events/event-definition';
import { LibraryFunctionOptions } from '../functions/library-functions';
import { AlarmSet, functionErrorsMetric, handlerMetric, queueDepthMetric } from '../private/alarms';
import { createHandlerFunction } from '../private/handler-function';
import { acknowledgeNag } from '../private/nag';
import { validateRuntime } from '../private/node-runtime';
import { PropsValidator } from '../private/validation';

/**
 * Where a tenant's billing periods start (`EntitlementPeriod.BILLING_PERIOD`).
 */
export enum BillingPeriodAnchor {
  /** Calendar months, UTC: `DynamoDbBilling`'s billing periods. */
  CALENDAR_MONTH = 'CALENDAR_MONTH',
  /**
   * Months from the tenant's billing anchor: the first multiple of
   * `anchorAlignment` at least 5 seconds after its onboarding event's time, as
   * `StripeBilling` anchors a subscription on the ingestor's window boundaries.
   */
  ONBOARDING = 'ONBOARDING',
}

/**
 * What `bindPlanReader` did: the environment the consumer's `PlanReader` reads.
 */
export interface PlanReaderBinding {
  /** Environment variables for `PlanReader.fromEnvironment()`; already set on the consumer when it is a `lambda.Function` of this app. */
  readonly environment: { [name: string]: string };
}

/**
 * The plans a provider or the entitlements read: the plan definitions, the
 * field of the control plane events that names a plan, the event `BillingPlans`
 * emits when a tenant's plan is recorded, and the plan read contract.
 */
export interface IBillingPlans extends IConstruct {
  /** The plans, as given. */
  readonly plans: BillingPlan[];
  /** The detail field of onboarding and plan change events that names the plan (SBT's `tier` by default). */
  readonly planField: string;
  /**
   * The plan of a tenant whose onboarding names no known plan.
   * @default - none: such a tenant has no plan
   */
  readonly defaultPlan?: string;
  /** Where `BILLING_PERIOD` limits start. */
  readonly billingPeriodAnchor: BillingPeriodAnchor;
  /** The event emitted once a tenant's plan is recorded (onboarding, change, offboarding). */
  readonly planChangedEvent: EventDefinition;
  /** The bus the plan events go to. */
  readonly eventBus: events.IEventBus;
  /** Every tenant's plan and its history (read it through `bindPlanReader`). */
  readonly plansTable: dynamodb.ITable;

  /**
   * Lets a function read tenants' plans through the plan read contract: read
   * access to the plans table and, when it is a `lambda.Function` of this app,
   * the environment `PlanReader.fromEnvironment()` reads.
   *
   * @param consumer the function that reads plans
   */
  bindPlanReader(consumer: lambda.IFunction): PlanReaderBinding;
}

/**
 * Properties of `BillingPlans`.
 */
export interface BillingPlansProps extends LibraryFunctionOptions {
  /**
   * The plans: each one's name (the SBT tier), and per metric its price for
   * `DynamoDbBilling`, its limits; its Stripe prices.
   */
  readonly plans: BillingPlan[];

  /**
   * The plan of a tenant whose onboarding event names no plan, or a plan not in `plans`.
   * @default - none: the tenant is recorded without a plan and a `planChangeFailure` event says why
   */
  readonly defaultPlan?: string;

  /**
   * The field of the onboarding and plan change events' `detail` that names the
   * tenant's plan (also read from `detail.tenantData`).
   * @default 'tier' (what the sbt-aws control plane's onboarding request carries)
   */
  readonly planField?: string;

  /**
   * Where tenants' billing periods start, for `BILLING_PERIOD` limits.
   * @default BillingPeriodAnchor.CALENDAR_MONTH
   */
  readonly billingPeriodAnchor?: BillingPeriodAnchor;

  /**
   * With `BillingPeriodAnchor.ONBOARDING`: the billing anchor is the first multiple
   * of this after the onboarding (give the ingestor's window length, as `StripeBilling` does).
   * Between 1 minute and 1 day.
   * @default Duration.hours(1)
   */
  readonly anchorAlignment?: Duration;

  /**
   * The bus the control plane events arrive on and the plan events go to.
   * @default - the account's default event bus
   */
  readonly eventBus?: events.IEventBus;

  /**
   * The names of the events listened to (onboarding, offboarding, plan change
   * request) and emitted (`planChanged`, `planChangeFailure`).
   * @default ControlPlaneEvents.SBT_AWS
   */
  readonly controlPlaneEvents?: ControlPlaneEvents;

  /**
   * What happens to the plans table and the function's log group when they leave the stack.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;

  /**
   * How long the function's logs are kept.
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
 * Tenants' plans: which plan each tenant is on, since when, and the plans
 * themselves, for the providers (prices, Stripe prices) and the entitlements (limits).
 *
 * How plans are kept:
 *
 * - A tenant's plan is taken from its onboarding event (`planField`, SBT's `tier`
 *   by default; `defaultPlan` when it names none or an unknown one).
 * - A plan change request (`controlPlaneEvents.planChangeRequest`) changes it: the
 *   change takes effect at the instant it is recorded (`effectiveAt`), and a
 *   `planChanged` event tells the providers and the entitlements.
 * - A request for an unknown plan, or for an unknown or offboarded tenant, is
 *   refused with a `planChangeFailure` event.
 * - Each control plane event counts once, however often it is delivered.
 */
export class BillingPlans extends Construct implements IBillingPlans {
  public readonly plans: BillingPlan[];
  public readonly planField: string;
  public readonly defaultPlan?: string;
  public readonly billingPeriodAnchor: BillingPeriodAnchor;
  public readonly planChangedEvent: EventDefinition;
  /** The event emitted when a plan is refused. */
  public readonly planChangeFailureEvent: EventDefinition;
  public readonly eventBus: events.IEventBus;
  public readonly plansTable: dynamodb.ITable;
  /** The function that handles onboarding, offboarding and plan change requests. */
  public readonly planEventsFunction: lambda.IFunction;
  /** Where events that could not be delivered to the function, or that it failed on after retries, are kept. */
  public readonly deadLetterQueue: sqs.IQueue;
  /** The construct's alarms: dead-letter queue and function errors. */
  public readonly alarms: cloudwatch.Alarm[];

  private readonly table: dynamodb.Table;
  private readonly definitionsJson: string;
  private readonly serviceName: string;
  private readonly fn: lambda.Function;

  constructor(scope: Construct, id: string, props: BillingPlansProps) {
    super(scope, id);
    validate(this, props);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const cpe = props.controlPlaneEvents ?? ControlPlaneEvents.SBT_AWS;
    this.plans = props.plans;
    this.planField = props.planField ?? 'tier';
    this.defaultPlan = props.defaultPlan;
    this.billingPeriodAnchor = props.billingPeriodAnchor ?? BillingPeriodAnchor.CALENDAR_MONTH;
    this.planChangedEvent = cpe.planChanged;
    this.planChangeFailureEvent = cpe.planChangeFailure;
    this.eventBus = props.eventBus ?? events.EventBus.fromEventBusArn(this, 'DefaultEventBus',
      Stack.of(this).formatArn({ service: 'events', resource: 'event-bus', resourceName: 'default' }));
    this.definitionsJson = JSON.stringify(planDefinitionsOf(props.plans));
    this.serviceName = Names.uniqueResourceName(this, { maxLength: 64 });

    this.table = new dynamodb.Table(this, 'PlansTable', {
      partitionKey: { name: PLANS_TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: PLANS_TABLE.sortKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: removalPolicy === RemovalPolicy.RETAIN,
      removalPolicy,
    });
    this.plansTable = this.table;

    this.fn = createHandlerFunction(this, 'PlanEvents', PlanEventsFunction, {
      description: 'cdk-saas-billing BillingPlans: records tenants\' plans from onboarding, offboarding and plan change requests',
      timeout: Duration.seconds(30),
      logRetention: props.logRetention,
      removalPolicy,
      runtime: props.runtime,
      environment: {
        POWERTOOLS_SERVICE_NAME: this.serviceName,
        POWERTOOLS_METRICS_NAMESPACE: METRIC_NAMESPACE,
        [PLANS_ENV.TABLE_NAME]: this.table.tableName,
        [PLANS_ENV.PLAN_DEFINITIONS]: this.definitionsJson,
        [PLANS_ENV.PLAN_FIELD]: this.planField,
        [PLANS_ENV.DEFAULT_PLAN]: this.defaultPlan ?? '',
        [PLANS_ENV.BILLING_PERIOD_ANCHOR]: this.billingPeriodAnchor,
        [PLANS_ENV.ANCHOR_ALIGNMENT_SECONDS]: String((props.anchorAlignment ?? Duration.hours(1)).toSeconds()),
        [PLANS_ENV.EVENT_BUS_ARN]: this.eventBus.eventBusArn,
        [PLANS_ENV.ONBOARDING_DETAIL_TYPE]: cpe.onboardingRequest.detailType,
        [PLANS_ENV.OFFBOARDING_DETAIL_TYPE]: cpe.offboardingRequest.detailType,
        [PLANS_ENV.PLAN_CHANGE_REQUEST_DETAIL_TYPE]: cpe.planChangeRequest.detailType,
        [PLANS_ENV.PLAN_CHANGED_SOURCE]: cpe.planChanged.source,
        [PLANS_ENV.PLAN_CHANGED_DETAIL_TYPE]: cpe.planChanged.detailType,
        [PLANS_ENV.PLAN_CHANGE_FAILURE_SOURCE]: cpe.planChangeFailure.source,
        [PLANS_ENV.PLAN_CHANGE_FAILURE_DETAIL_TYPE]: cpe.planChangeFailure.detailType,
      },
    });
    this.planEventsFunction = this.fn;
    this.table.grant(this.fn, 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:ConditionCheckItem');
    this.eventBus.grantPutEventsTo(this.fn);

    const queue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledgeNag(queue, 'AwsSolutions-SQS3', 'This queue is itself the dead-letter queue of the plan event rules and of the function\'s on-failure destination.');
    this.deadLetterQueue = queue;
    this.fn.configureAsyncInvoke({ onFailure: new destinations.SqsDestination(queue), retryAttempts: 2 });
    for (const [name, trigger] of [['Onboarding', cpe.onboardingRequest], ['Offboarding', cpe.offboardingRequest], ['PlanChangeRequest', cpe.planChangeRequest]] as const) {
      new events.Rule(this, `${name}Rule`, {
        description: `cdk-saas-billing BillingPlans: ${trigger.source} / ${trigger.detailType}`,
        eventBus: props.eventBus,
        eventPattern: { source: [trigger.source], detailType: [trigger.detailType] },
        targets: [new targets.LambdaFunction(this.fn, { deadLetterQueue: queue, retryAttempts: 185, maxEventAge: Duration.hours(24) })],
      });
    }

    const alarms = new AlarmSet(this, props.alarmActions);
    alarms.add('DeadLetterQueueAlarm', this.metricDeadLetterQueueDepth(), {
      description: 'plan events could not be handled (a malformed tenant id, or failures after retries): read the messages of the dead-letter queue and the function\'s logs',
    });
    alarms.add('ErrorsAlarm', this.metricErrors(), { description: 'the plan event handler failed (it is retried)' });
    this.alarms = alarms.alarms;
  }

  public bindPlanReader(consumer: lambda.IFunction): PlanReaderBinding {
    const environment: { [name: string]: string } = {
      [PLAN_READER_ENV.TABLE_NAME]: this.table.tableName,
      [PLAN_READER_ENV.PLAN_DEFINITIONS]: this.definitionsJson,
      [PLAN_READER_ENV.BILLING_PERIOD_ANCHOR]: this.billingPeriodAnchor,
    };
    this.table.grant(consumer, 'dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:ConditionCheckItem');
    if (consumer instanceof lambda.Function) {
      for (const [name, value] of Object.entries(environment)) consumer.addEnvironment(name, value);
    }
    return { environment };
  }

  /** Messages in the dead-letter queue (maximum over 1 minute). Alarmed (`DeadLetterQueueAlarm`). */
  public metricDeadLetterQueueDepth(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return queueDepthMetric(this.deadLetterQueue, props);
  }

  /** Errors of the plan event handler (sum over 5 minutes). Alarmed (`ErrorsAlarm`). */
  public metricErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return functionErrorsMetric(this.fn, props);
  }

  /** Plans recorded: onboardings with a plan and plan changes (`PlansChanged`, sum over 5 minutes). */
  public metricPlansChanged(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return handlerMetric(METRIC_NAMESPACE, this.serviceName, METRICS.PLANS_CHANGED, props);
  }

  /** Plans refused, each with a `planChangeFailure` event (`PlansRefused`, sum over 5 minutes). */
  public metricPlansRefused(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return handlerMetric(METRIC_NAMESPACE, this.serviceName, METRICS.PLANS_REFUSED, props);
  }
}

function validate(scope: Construct, props: BillingPlansProps): void {
  const v = new PropsValidator(scope, 'BillingPlans');
  validatePlans(v, 'plans', props?.plans);
  const names = new Set((props?.plans ?? []).map((p) => p?.name));
  if (props?.defaultPlan !== undefined && !names.has(props.defaultPlan)) {
    v.add('defaultPlan', props.defaultPlan, 'is not the name of one of the plans', `give one of ${[...names].map((n) => `'${n}'`).join(', ')}, or leave it out`);
  }
  if (props?.planField !== undefined && !/^[A-Za-z0-9_:.-]{1,64}$/.test(props.planField)) {
    v.add('planField', props.planField, 'must be 1 to 64 characters of letters, digits and _ : . -', 'for example \'tier\' or \'plan\'');
  }
  v.durationRange('anchorAlignment', props?.anchorAlignment, Duration.minutes(1), Duration.days(1));
  validateRuntime(v, props?.runtime);
  v.throwIfInvalid();
}
