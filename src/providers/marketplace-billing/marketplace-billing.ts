import { Annotations, CfnOutput, Duration, Names, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  DimensionMapping, MARKETPLACE_DETAIL_TYPES, MARKETPLACE_ENV, MARKETPLACE_EVENT_SOURCE, MARKETPLACE_EVENTS_REGION, MARKETPLACE_METRICS,
  MARKETPLACE_METRICS_NAMESPACE, METERING_TABLE_LAYOUT, REGISTRATIONS_TABLE_LAYOUT,
} from './contract';
import { CreateCustomerFunction } from './create-customer-function';
import { DeleteCustomerFunction } from './delete-customer-function';
import { EntitlementsFunction } from './entitlements-function';
import { LifecycleFunction } from './lifecycle-function';
import { PutUsageFunction } from './put-usage-function';
import { RegistrationFunction } from './registration-function';
import { IASyncFunction, IBilling, IFunctionPath, IFunctionSchedule } from '../../billing/billing';
import { ControlPlaneEvents } from '../../events/event-definition';
import { identifierRule, isMetricName } from '../../events/identifiers';
import { LibraryFunctionOptions } from '../../functions/library-functions';
import { IDataIngestorAggregator } from '../../ingestor/ingestor';
import { AlarmSet, functionErrorsMetric, handlerMetric, queueDepthMetric } from '../../private/alarms';
import { BundledFunctionClass, createHandlerFunction } from '../../private/handler-function';
import { acknowledgeNag } from '../../private/nag';
import { validateRuntime } from '../../private/node-runtime';
import { PropsValidator } from '../../private/validation';
import { webhookPathProblem } from '../../private/webhook-path';

/**
 * How a dimension's value is rounded to the whole quantity AWS Marketplace accepts
 * (`UsageRecord.Quantity` is an integer).
 */
export enum MarketplaceRounding {
  /** Half away from zero: 2.5 becomes 3, 2.4 becomes 2. */
  HALF_UP = 'HALF_UP',
  /** Half to the even neighbour: 2.5 becomes 2, 3.5 becomes 4. */
  HALF_EVEN = 'HALF_EVEN',
  /** Up whenever there is a fraction: 2.1 becomes 3. */
  UP = 'UP',
  /** Down: the fraction is dropped. */
  DOWN = 'DOWN',
}

/**
 * A usage metric metered as a pricing dimension of the AWS Marketplace product.
 *
 * Each closed hourly window of the metric becomes one usage record of the dimension, whose
 * quantity is the window's sum times `multiplier`, rounded to a whole number; the remainders
 * are carried within the calendar month (Marketplace bills by month), so a month bills the
 * rounding of its total.
 *
 * @struct
 */
export interface MarketplaceDimension {
  /** The metric name, exactly as producers write it in usage records (for example `apiCalls`). */
  readonly metric: string;

  /**
   * The dimension's API name in the product's pricing (for example `api_calls`): 1 to 255
   * visible ASCII characters.
   */
  readonly dimension: string;

  /**
   * The window's sum is multiplied by this exact, positive decimal before rounding, for
   * example `'0.001'` to bill per thousand calls.
   * @default '1'
   */
  readonly multiplier?: string;

  /**
   * How the multiplied value is rounded to a whole quantity.
   * @default MarketplaceRounding.HALF_UP
   */
  readonly rounding?: MarketplaceRounding;
}

/**
 * Properties of a `MarketplaceBilling`.
 */
export interface MarketplaceBillingProps extends LibraryFunctionOptions {
  /**
   * The product code of your SaaS product in AWS Marketplace. A registration token of
   * another product is refused.
   */
  readonly productCode: string;

  /**
   * Your registration page (an https URL): the fulfillment URL redirects the buyer there
   * with the opaque registration id in the query parameter `registrationIdField`. The page
   * collects what your control plane needs and sends the onboarding request with the same
   * field in its detail.
   */
  readonly registrationPageUrl: string;

  /**
   * The usage ingestor whose closed hourly windows are metered, read through its usage
   * read contract. Its windows must be hourly.
   * @default - no metering (`putUsageFunction` is undefined) and no final metering on cancellation
   */
  readonly ingestor?: IDataIngestorAggregator;

  /**
   * The metrics metered as the product's dimensions. A window of a metric without a
   * dimension is recorded with disposition `NO_DIMENSION` and not sent.
   * @default - no dimensions
   */
  readonly dimensions?: MarketplaceDimension[];

  /**
   * The fulfillment URL's path under `/billing/`: `BillingProvider` mounts it as
   * `POST /billing/<registrationPath>` on its HTTP API; give that URL to AWS Marketplace as
   * the product's fulfillment URL.
   * @default 'marketplace'
   */
  readonly registrationPath?: string;

  /**
   * The name of the query parameter that carries the registration id to your registration
   * page, and of the field of the onboarding request's detail that carries it back:
   * a letter, then letters, digits or underscores, at most 64.
   * @default 'marketplaceRegistrationId'
   */
  readonly registrationIdField?: string;

  /**
   * Meter the hours in which an active license had no usage as quantity 0, for every
   * dimension (AWS Marketplace advises hourly records, zeros included, so that it can tell
   * a quiet customer from a broken integration). Off by default: it sends a record per
   * tenant, dimension and hour (10,000 tenants and 2 dimensions: 800 requests an hour),
   * and bills nothing.
   * @default false
   */
  readonly reportZeroUsageHours?: boolean;

  /**
   * How long after the start of its hour AWS Marketplace accepts a usage record. The
   * BatchMeterUsage reference says 6 hours; the current AWS SDK service model says 24 hours
   * with the month's records due by 06:00 UTC on the 1st of the next month. Raise it only
   * when your product's metering accepts longer. Between 1 and 24 hours.
   * @default Duration.hours(6)
   */
  readonly acceptanceWindow?: Duration;

  /**
   * A record still unsent (Marketplace unavailable, throttling, the tenant not ready) this
   * long before its deadline raises the near-deadline alarm. Less than `acceptanceWindow`.
   * @default Duration.hours(2)
   */
  readonly deadlineWarning?: Duration;

  /**
   * When the metering push runs. A rate must be at least one minute.
   * @default - every 5 minutes
   */
  readonly schedule?: events.Schedule;

  /**
   * Create a function that reads a tenant's contract entitlements (GetEntitlements), for
   * contract pricing: invoke it with `{"tenantId": "..."}` (see `grantReadEntitlements`).
   * @default false
   */
  readonly contractEntitlements?: boolean;

  /**
   * How long a processed Marketplace event id is remembered, so that a redelivery has no
   * second effect. Between 1 and 365 days.
   * @default Duration.days(30)
   */
  readonly processedEventRetention?: Duration;

  /**
   * The bus the subscription changed events go to. Give `BillingProvider` the same bus.
   * (Marketplace's own events are read from the account's default bus, where AWS sends them.)
   * @default - the account's default event bus
   */
  readonly eventBus?: events.IEventBus;

  /**
   * The name of the subscription changed event (`billingSubscriptionChanged`) the functions
   * emit. Give `BillingProvider` the same value.
   * @default ControlPlaneEvents.SBT_AWS
   */
  readonly controlPlaneEvents?: ControlPlaneEvents;

  /**
   * What happens to the tables and the log groups when they leave the stack.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;

  /**
   * How long the functions' logs are kept.
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;

  /**
   * Actions of every alarm (for example an SNS topic action).
   * @default - the alarms have no action
   */
  readonly alarmActions?: cloudwatch.IAlarmAction[];
}

const CONSTRUCT = 'MarketplaceBilling';
/** ProductCode in the AWS Marketplace Metering service model: 1 to 255 of these characters. */
const PRODUCT_CODE = /^[-a-zA-Z0-9/=:_.@]{1,255}$/;
const DIMENSION = /^[!-~]{1,255}$/;
const FIELD = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
const MULTIPLIER = /^\d{1,15}(\.\d{1,12})?$/;
const MAX_DIMENSIONS_JSON = 2500;
const PUSH_TIMEOUT = Duration.minutes(5);
const DEFAULT_SCHEDULE = Duration.minutes(5);
/** Kept between the worst-case delivery time and the acceptance window (clock skew, retries). */
const DELIVERY_MARGIN = Duration.minutes(30);

/**
 * Sells through AWS Marketplace: a third ready `IBilling` beside `DynamoDbBilling` and
 * `StripeBilling`, for SaaS products whose buyers pay on their AWS bill.
 *
 * What each function does:
 *
 * - `webhookFunction` is the product's fulfillment URL, `POST /billing/<registrationPath>`:
 *   the buyer's browser posts `x-amzn-marketplace-token`; the token is resolved
 *   (ResolveCustomer), redeemed once and stored with its customer as a registration, and
 *   the buyer is redirected to `registrationPageUrl` with an opaque registration id.
 * - `createCustomerFunction`: the onboarding request carries the registration id
 *   (`registrationIdField`); the tenant is linked to that registration's license. A tenant
 *   without a (free) registration is refused with a `FAILED` subscription changed event.
 * - Marketplace's SaaS subscription events (EventBridge, default bus of us-east-1) become
 *   subscription changed events (`CONFIRMED`, `CANCELLATION_PENDING`, `CANCELLED`,
 *   `ENTITLEMENT_CHANGED`), once each, in order; a cancellation meters the tenant's usage so
 *   far before Marketplace stops accepting it.
 * - `putUsageFunction` (with `ingestor`): each closed hourly window becomes one usage record
 *   of BatchMeterUsage (`CustomerAWSAccountId` and `LicenseArn`), exactly once per license,
 *   dimension and hour.
 *
 * In TypeScript the construct itself satisfies `IBilling`; in other languages pass
 * `marketplaceBilling.billing` to `BillingProvider`.
 */
export class MarketplaceBilling extends Construct {
  /** The same functions as this construct's members, as an `IBilling` value for every jsii language. */
  public readonly billing: IBilling;

  /** Links the onboarded tenant to its Marketplace registration. */
  public readonly createCustomerFunction: IASyncFunction;
  /** Marks the tenant offboarded: its later usage is not metered. */
  public readonly deleteCustomerFunction: IASyncFunction;
  /** The usage ingestor the push reads, when given. */
  public readonly ingestor?: IDataIngestorAggregator;
  /** The scheduled metering push, when an ingestor is given. */
  public readonly putUsageFunction?: IFunctionSchedule;
  /** The fulfillment URL, mounted by `BillingProvider` as `POST /billing/<path>`. */
  public readonly webhookFunction: IFunctionPath;
  /** The bus the subscription changed events go to (`BillingProvider` refuses another one). */
  public readonly eventBus: events.IEventBus;
  /** The event names the functions emit (`BillingProvider` refuses others). */
  public readonly controlPlaneEvents: ControlPlaneEvents;

  /** Registrations, redeemed tokens, tenants, licenses and processed Marketplace events (`pk`). */
  public readonly registrationsTable: dynamodb.ITable;
  /** Usage record markers, monthly remainders, pending records, cursor (`pk`, `sk`). */
  public readonly meteringTable: dynamodb.ITable;
  /** The function that turns Marketplace's SaaS events into subscription changed events. */
  public readonly lifecycleFunction: lambda.IFunction;
  /** The rule on the default bus that sends Marketplace's SaaS events to `lifecycleFunction`. */
  public readonly lifecycleRule: events.Rule;
  /** Where Marketplace events go that could not be delivered or handled. */
  public readonly lifecycleDeadLetterQueue: sqs.IQueue;
  /** The function that reads a tenant's contract entitlements, with `contractEntitlements`. */
  public readonly entitlementsFunction?: lambda.IFunction;
  /** The query parameter and onboarding field that carry the registration id. */
  public readonly registrationIdField: string;
  /** The alarms: fulfillment, lifecycle and push errors, records not billed or near their deadline. */
  public readonly alarms: cloudwatch.Alarm[];
  /** The CloudWatch namespace of the handlers' metrics (dimension `service`: `serviceName`). */
  public readonly metricNamespace: string;
  /** The `service` dimension of this installation's metrics. */
  public readonly serviceName: string;

  private readonly registrationHandler: lambda.Function;
  private readonly lifecycleHandler: lambda.Function;
  private putUsageHandler?: lambda.Function;

  constructor(scope: Construct, id: string, props: MarketplaceBillingProps) {
    super(scope, id);
    const registrationPath = props?.registrationPath ?? 'marketplace';
    validate(this, props, registrationPath);

    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const cpe = props.controlPlaneEvents ?? ControlPlaneEvents.SBT_AWS;
    const eventBus = props.eventBus ?? events.EventBus.fromEventBusName(this, 'DefaultEventBus', 'default');
    const alarmSet = new AlarmSet(this, props.alarmActions);
    this.alarms = alarmSet.alarms;
    this.metricNamespace = MARKETPLACE_METRICS_NAMESPACE;
    this.serviceName = Names.uniqueResourceName(this, { maxLength: 64 });
    this.registrationIdField = props.registrationIdField ?? 'marketplaceRegistrationId';
    this.eventBus = eventBus;
    this.controlPlaneEvents = cpe;
    this.ingestor = props.ingestor;

    const registrationsTable = this.table('RegistrationsTable', removalPolicy, undefined, REGISTRATIONS_TABLE_LAYOUT.ttlAttribute);
    const meteringTable = this.table('MeteringTable', removalPolicy, METERING_TABLE_LAYOUT.sortKey);
    this.registrationsTable = registrationsTable;
    this.meteringTable = meteringTable;

    const acceptance = props.acceptanceWindow ?? Duration.hours(6);
    const env: Record<string, string> = {
      [MARKETPLACE_ENV.SERVICE_NAME]: this.serviceName,
      [MARKETPLACE_ENV.METRICS_NAMESPACE]: this.metricNamespace,
      [MARKETPLACE_ENV.PRODUCT_CODE]: props.productCode,
      [MARKETPLACE_ENV.REGISTRATIONS_TABLE_NAME]: registrationsTable.tableName,
      [MARKETPLACE_ENV.REGISTRATION_ID_FIELD]: this.registrationIdField,
      [MARKETPLACE_ENV.EVENT_BUS_ARN]: eventBus.eventBusArn,
      [MARKETPLACE_ENV.SUBSCRIPTION_CHANGED_SOURCE]: cpe.billingSubscriptionChanged.source,
      [MARKETPLACE_ENV.SUBSCRIPTION_CHANGED_DETAIL_TYPE]: cpe.billingSubscriptionChanged.detailType,
    };
    const meteringEnv: Record<string, string> = {
      [MARKETPLACE_ENV.METERING_TABLE_NAME]: meteringTable.tableName,
      [MARKETPLACE_ENV.DIMENSIONS]: JSON.stringify(dimensionsOf(props.dimensions)),
      [MARKETPLACE_ENV.ACCEPTANCE_WINDOW_SECONDS]: String(acceptance.toSeconds()),
      [MARKETPLACE_ENV.DEADLINE_WARNING_SECONDS]: String((props.deadlineWarning ?? Duration.hours(2)).toSeconds()),
      [MARKETPLACE_ENV.REPORT_ZERO_HOURS]: String(props.reportZeroUsageHours ?? false),
      [MARKETPLACE_ENV.INITIAL_LOOKBACK_SECONDS]: String(acceptance.toSeconds()),
      [MARKETPLACE_ENV.FINAL_METERING_SECONDS]: '3600',
      // Zero hours wait until the hour's windows are closed (plus a push interval), so a zero never takes a real record's place.
      [MARKETPLACE_ENV.ZERO_HOUR_DELAY_SECONDS]: String((props.ingestor?.closingTimes?.maxClosingDelay ?? Duration.hours(1))
        .plus(DEFAULT_SCHEDULE).toSeconds()),
    };
    const fn = <T extends lambda.Function>(name: string, FunctionClass: BundledFunctionClass<T>, description: string, timeout: Duration,
      environment: Record<string, string>, memorySize?: number) => createHandlerFunction(this, name, FunctionClass, {
      description: `cdk-saas-billing MarketplaceBilling: ${description}`,
      timeout,
      memorySize,
      environment,
      logRetention: props.logRetention,
      removalPolicy,
      runtime: props.runtime,
    });
    const allowMarketplace = (f: lambda.Function, ...actions: string[]) => {
      // AWS Marketplace Metering and Entitlement actions have no resource type: they are granted on `*`
      // (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsmarketplacemeteringservice.html).
      const policy = new iam.Policy(this, `${f.node.id}MarketplacePolicy`, {
        statements: [new iam.PolicyStatement({ actions: actions.map((a) => `aws-marketplace:${a}`), resources: ['*'] })],
      });
      policy.attachToRole(f.role!);
      acknowledgeNag(policy, 'AwsSolutions-IAM5[Resource::*]',
        `AWS Marketplace ${actions.join(' and ')} support no resource-level permissions: the service authorization reference lists no resource type for them.`);
    };

    // The fulfillment URL.
    const registration = fn('Registration', RegistrationFunction,
      'the fulfillment URL: resolves the buyer\'s registration token once and redirects to the registration page', Duration.seconds(15),
      { ...env, [MARKETPLACE_ENV.REGISTRATION_PAGE_URL]: props.registrationPageUrl });
    registrationsTable.grant(registration, 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:ConditionCheckItem');
    allowMarketplace(registration, 'ResolveCustomer');
    this.registrationHandler = registration;

    const createCustomer = fn('CreateCustomer', CreateCustomerFunction,
      'links an onboarded tenant to its Marketplace registration', Duration.seconds(30), env);
    registrationsTable.grant(createCustomer, 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:ConditionCheckItem');
    eventBus.grantPutEventsTo(createCustomer);

    const deleteCustomer = fn('DeleteCustomer', DeleteCustomerFunction,
      'marks an offboarded tenant so that its later usage is not metered', Duration.seconds(30), env);
    registrationsTable.grant(deleteCustomer, 'dynamodb:GetItem', 'dynamodb:UpdateItem');

    const usageEnv = props.ingestor ? meteringEnv : {};
    const lifecycle = fn('Lifecycle', LifecycleFunction,
      'turns AWS Marketplace SaaS subscription events into subscription changed events and meters a cancelled tenant\'s last usage',
      Duration.minutes(5), {
        ...env,
        ...usageEnv,
        [MARKETPLACE_ENV.PROCESSED_EVENT_RETENTION_SECONDS]: String((props.processedEventRetention ?? Duration.days(30)).toSeconds()),
      }, 512);
    registrationsTable.grant(lifecycle, 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:ConditionCheckItem');
    eventBus.grantPutEventsTo(lifecycle);
    if (props.ingestor) this.grantMetering(lifecycle, meteringTable, props.ingestor, allowMarketplace);
    this.lifecycleHandler = lifecycle;
    this.lifecycleFunction = lifecycle;
    const { rule, queue } = this.subscribeToMarketplaceEvents(lifecycle);
    this.lifecycleRule = rule;
    this.lifecycleDeadLetterQueue = queue;
    this.warnAboutRegion();

    let putUsage: lambda.Function | undefined;
    if (props.ingestor) {
      putUsage = fn('PutUsage', PutUsageFunction,
        'meters closed hourly usage windows with BatchMeterUsage, each license, dimension and hour once', PUSH_TIMEOUT, { ...env, ...meteringEnv }, 512);
      registrationsTable.grant(putUsage, 'dynamodb:GetItem', 'dynamodb:Scan', 'dynamodb:UpdateItem');
      this.grantMetering(putUsage, meteringTable, props.ingestor, allowMarketplace);
      this.putUsageHandler = putUsage;
      this.checkDeliveryTime(props, acceptance);
    }

    if (props.contractEntitlements) {
      const entitlements = fn('Entitlements', EntitlementsFunction,
        'reads a tenant\'s contract entitlements from the AWS Marketplace Entitlement Service', Duration.seconds(30), env);
      registrationsTable.grant(entitlements, 'dynamodb:GetItem');
      allowMarketplace(entitlements, 'GetEntitlements');
      this.entitlementsFunction = entitlements;
    }

    this.addAlarms(alarmSet, !!props.ingestor);

    new CfnOutput(this, 'RegistrationsTableName', { description: 'DynamoDB table of Marketplace registrations, tenants and licenses', value: registrationsTable.tableName });
    new CfnOutput(this, 'MeteringTableName', { description: 'DynamoDB table of the usage records sent to AWS Marketplace and their dispositions', value: meteringTable.tableName });

    this.createCustomerFunction = { handler: createCustomer };
    this.deleteCustomerFunction = { handler: deleteCustomer };
    this.putUsageFunction = putUsage ? { handler: putUsage, schedule: props.schedule ?? events.Schedule.rate(DEFAULT_SCHEDULE) } : undefined;
    this.webhookFunction = { path: registrationPath, handler: registration };
    this.billing = {
      createCustomerFunction: this.createCustomerFunction,
      deleteCustomerFunction: this.deleteCustomerFunction,
      ingestor: this.ingestor,
      putUsageFunction: this.putUsageFunction,
      webhookFunction: this.webhookFunction,
      eventBus: this.eventBus,
      controlPlaneEvents: this.controlPlaneEvents,
    };
  }

  /**
   * Lets a function of yours read tenants' contract entitlements: invoke `entitlementsFunction`
   * with `{"tenantId": "..."}`; it answers `{"tenantId", "entitlements": [{"dimension", "value",
   * "expirationDate"}]}`. Only with `contractEntitlements`.
   *
   * @param grantee the reader
   */
  public grantReadEntitlements(grantee: iam.IGrantable): iam.Grant {
    if (!this.entitlementsFunction) {
      throw new Error(`${CONSTRUCT} at ${this.node.path} has no entitlements function, so grantReadEntitlements() has nothing to grant: set contractEntitlements: true.`);
    }
    return this.entitlementsFunction.grantInvoke(grantee);
  }

  /** Usage records AWS Marketplace accepted (`RecordsSent`, sum over 5 minutes). */
  public metricRecordsSent(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(MARKETPLACE_METRICS.RECORDS_SENT, props);
  }

  /** BatchMeterUsage requests made, at most 25 records each (`MeteringRequests`, sum over 5 minutes). */
  public metricMeteringRequests(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(MARKETPLACE_METRICS.METERING_REQUESTS, props);
  }

  /** Records Marketplace answered `CustomerNotSubscribed`: not billed (disposition `NOT_SUBSCRIBED`). Alarmed (`RecordsNotSubscribedAlarm`) (`RecordsNotSubscribed`, sum over 5 minutes). */
  public metricRecordsNotSubscribed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(MARKETPLACE_METRICS.RECORDS_NOT_SUBSCRIBED, props);
  }

  /** Records Marketplace answered `DuplicateRecord`: another quantity was metered for that license, dimension and hour (disposition `DUPLICATE_RECORD`). Alarmed (`RecordsDuplicateAlarm`) (`RecordsDuplicate`, sum over 5 minutes). */
  public metricRecordsDuplicate(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(MARKETPLACE_METRICS.RECORDS_DUPLICATE, props);
  }

  /** Records past Marketplace's acceptance window before they could be sent (disposition `TOO_LATE`). Alarmed (`RecordsTooLateAlarm`) (`RecordsTooLate`, sum over 5 minutes). */
  public metricRecordsTooLate(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(MARKETPLACE_METRICS.RECORDS_TOO_LATE, props);
  }

  /** Records still unsent with less than `deadlineWarning` before their deadline. Alarmed (`RecordsNearDeadlineAlarm`) (`RecordsNearDeadline`, maximum over 5 minutes). */
  public metricRecordsNearDeadline(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(MARKETPLACE_METRICS.RECORDS_NEAR_DEADLINE, { statistic: cloudwatch.Stats.MAXIMUM, ...props });
  }

  /** Records Marketplace refused with a client error (disposition `REJECTED`). Alarmed (`RecordsRejectedAlarm`) (`RecordsRejected`, sum over 5 minutes). */
  public metricRecordsRejected(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(MARKETPLACE_METRICS.RECORDS_REJECTED, props);
  }

  /** Records sent without an answer whose acceptance window is over (disposition `UNCERTAIN`). Alarmed (`RecordsUncertainAlarm`) (`RecordsUncertain`, sum over 5 minutes). */
  public metricRecordsUncertain(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(MARKETPLACE_METRICS.RECORDS_UNCERTAIN, props);
  }

  /** Records put aside for the next run (Marketplace unavailable, left unprocessed) (`RecordsDeferred`, sum over 5 minutes). */
  public metricRecordsDeferred(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(MARKETPLACE_METRICS.RECORDS_DEFERRED, props);
  }

  /** Windows of tenants without a Marketplace registration: not sent (disposition `NO_REGISTRATION`) (`WindowsWithoutRegistration`, sum over 5 minutes). */
  public metricWindowsWithoutRegistration(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(MARKETPLACE_METRICS.WINDOWS_WITHOUT_REGISTRATION, props);
  }

  /** Fulfillment calls refused: invalid, expired or replayed token, or another product's. Alarmed at 5 (`RegistrationsRefusedAlarm`) (`RegistrationsRefused`, sum over 5 minutes). */
  public metricRegistrationsRefused(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(MARKETPLACE_METRICS.REGISTRATIONS_REFUSED, props);
  }

  /** Registrations the fulfillment URL created (`RegistrationsCreated`, sum over 5 minutes). */
  public metricRegistrationsCreated(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(MARKETPLACE_METRICS.REGISTRATIONS_CREATED, props);
  }

  /** Onboardings refused: no, unknown or already claimed registration. Alarmed (`OnboardingsRefusedAlarm`) (`OnboardingsRefused`, sum over 5 minutes). */
  public metricOnboardingsRefused(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(MARKETPLACE_METRICS.ONBOARDINGS_REFUSED, props);
  }

  /** Marketplace events older than the state already recorded for their license: no effect (`LifecycleEventsSuperseded`, sum over 5 minutes). */
  public metricLifecycleEventsSuperseded(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(MARKETPLACE_METRICS.LIFECYCLE_EVENTS_SUPERSEDED, props);
  }

  /** Errors of the fulfillment URL's function: buyers answered with HTTP 5xx (sum over 5 minutes). Alarmed (`RegistrationErrorsAlarm`). */
  public metricRegistrationErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return functionErrorsMetric(this.registrationHandler, props);
  }

  /** Errors of the lifecycle function (sum over 5 minutes); after Lambda's retries the event is in the dead-letter queue. */
  public metricLifecycleErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return functionErrorsMetric(this.lifecycleHandler, props);
  }

  /** Marketplace events that could not be delivered or handled (maximum over 1 minute). Alarmed (`LifecycleDeadLetterAlarm`). */
  public metricLifecycleDeadLetterQueueDepth(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return queueDepthMetric(this.lifecycleDeadLetterQueue, props);
  }

  /**
   * Errors of the metering push (sum over 5 minutes). Alarmed (`PutUsageErrorsAlarm`).
   * Only with an `ingestor`: without one there is no push, and this method throws.
   */
  public metricPutUsageErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    if (!this.putUsageHandler) {
      throw new Error(`${CONSTRUCT} at ${this.node.path} has no metering push (no ingestor was given), so metricPutUsageErrors() has no function to watch: `
        + 'pass an ingestor, or leave this metric out.');
    }
    return functionErrorsMetric(this.putUsageHandler, props);
  }

  private handlerMetric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return handlerMetric(this.metricNamespace, this.serviceName, metricName, props);
  }

  private table(id: string, removalPolicy: RemovalPolicy, sortKey?: string, ttl?: string): dynamodb.Table {
    return new dynamodb.Table(this, id, {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: sortKey ? { name: sortKey, type: dynamodb.AttributeType.STRING } : undefined,
      timeToLiveAttribute: ttl,
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: removalPolicy === RemovalPolicy.RETAIN,
      removalPolicy,
    });
  }

  private grantMetering(fn: lambda.Function, meteringTable: dynamodb.Table, ingestor: IDataIngestorAggregator,
    allowMarketplace: (f: lambda.Function, ...actions: string[]) => void): void {
    meteringTable.grant(fn, 'dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:UpdateItem',
      'dynamodb:DeleteItem', 'dynamodb:ConditionCheckItem');
    ingestor.bindUsageReader(fn);
    allowMarketplace(fn, 'BatchMeterUsage');
  }

  /**
   * The rule on the account's default bus (AWS Marketplace sends its SaaS events there) with a
   * retry policy and a dead-letter queue, which is also the function's on-failure destination.
   */
  private subscribeToMarketplaceEvents(fn: lambda.Function): { rule: events.Rule; queue: sqs.Queue } {
    const queue = new sqs.Queue(this, 'LifecycleDeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledgeNag(queue, 'AwsSolutions-SQS3', 'This queue is itself the dead-letter queue of the Marketplace events rule and of the lifecycle function.');
    const rule = new events.Rule(this, 'LifecycleRule', {
      description: `cdk-saas-billing: AWS Marketplace SaaS subscription events to the lifecycle function of ${this.node.path}`,
      eventPattern: { source: [MARKETPLACE_EVENT_SOURCE], detailType: Object.values(MARKETPLACE_DETAIL_TYPES) },
    });
    rule.addTarget(new targets.LambdaFunction(fn, { deadLetterQueue: queue, retryAttempts: 185, maxEventAge: Duration.hours(24) }));
    fn.configureAsyncInvoke({ onFailure: new destinations.SqsDestination(queue), retryAttempts: 2 });
    return { rule, queue };
  }

  private warnAboutRegion(): void {
    const region = Stack.of(this).region;
    if (Token.isUnresolved(region) || region === MARKETPLACE_EVENTS_REGION) return;
    Annotations.of(this).addWarningV2('cdk-saas-billing:marketplaceEventsRegion',
      `AWS Marketplace sends SaaS subscription events to the default event bus of ${MARKETPLACE_EVENTS_REGION} only, and this stack is in ${region}: `
      + `deploy MarketplaceBilling in ${MARKETPLACE_EVENTS_REGION}, or forward the events from ${MARKETPLACE_EVENTS_REGION}'s default bus to this region's default bus.`);
  }

  private addAlarms(alarmSet: AlarmSet, metering: boolean): void {
    alarmSet.add('RegistrationErrorsAlarm', this.metricRegistrationErrors(), {
      description: 'the fulfillment URL failed (HTTP 5xx): buyers could not register; see the Registration log',
    });
    alarmSet.add('RegistrationsRefusedAlarm', this.metricRegistrationsRefused(), {
      description: 'fulfillment calls were refused (invalid, expired or replayed tokens, or another product\'s): check the product code and the fulfillment URL',
      threshold: 5,
    });
    alarmSet.add('OnboardingsRefusedAlarm', this.metricOnboardingsRefused(), {
      description: 'onboarding requests were refused: no registration id, an unknown one, or one another tenant claimed (a FAILED subscription changed event was emitted)',
    });
    alarmSet.add('LifecycleDeadLetterAlarm', this.metricLifecycleDeadLetterQueueDepth(), {
      description: 'AWS Marketplace subscription events could not be delivered or handled; read the dead-letter queue and the Lifecycle log, then send them again',
    });
    if (!metering) return;
    alarmSet.add('PutUsageErrorsAlarm', this.metricPutUsageErrors(), {
      description: 'the Marketplace metering push failed; the next run resumes where it stopped. See the PutUsage log',
    });
    alarmSet.add('RecordsNearDeadlineAlarm', this.metricRecordsNearDeadline(), {
      description: 'usage records are still unsent close to the end of AWS Marketplace\'s acceptance window (Marketplace unavailable or throttling); see the PENDING items',
    });
    alarmSet.add('RecordsTooLateAlarm', this.metricRecordsTooLate(), {
      description: 'usage records passed AWS Marketplace\'s acceptance window before they were sent (disposition TOO_LATE): that usage is not billed',
    });
    alarmSet.add('RecordsNotSubscribedAlarm', this.metricRecordsNotSubscribed(), {
      description: 'AWS Marketplace answered CustomerNotSubscribed (disposition NOT_SUBSCRIBED): the buyer\'s agreement ended or its account is suspended',
    });
    alarmSet.add('RecordsDuplicateAlarm', this.metricRecordsDuplicate(), {
      description: 'AWS Marketplace answered DuplicateRecord (disposition DUPLICATE_RECORD): another quantity was metered for that license, dimension and hour',
    });
    alarmSet.add('RecordsRejectedAlarm', this.metricRecordsRejected(), {
      description: 'AWS Marketplace refused usage records (disposition REJECTED, with its error): check the dimensions and the licenses',
    });
    alarmSet.add('RecordsUncertainAlarm', this.metricRecordsUncertain(), {
      description: 'usage records were sent without an answer and their acceptance window is over (disposition UNCERTAIN): check the seller reports',
    });
  }

  /** At synth: every hour's record can reach Marketplace before its acceptance window ends. */
  private checkDeliveryTime(props: MarketplaceBillingProps, acceptance: Duration): void {
    const closing = props.ingestor?.closingTimes;
    if (!closing) {
      Annotations.of(this).addWarningV2('cdk-saas-billing:marketplaceDeliveryTimeUnknown',
        'the ingestor does not say when its windows close (closingTimes), so MarketplaceBilling cannot check that each hour is metered within AWS Marketplace\'s acceptance window.');
      return;
    }
    const v = new PropsValidator(this, CONSTRUCT);
    if (closing.windowSeconds !== 3600 && !Token.isUnresolved(closing.windowSeconds)) {
      v.add('ingestor', `windows of ${closing.windowSeconds} seconds`, 'must close hourly windows: AWS Marketplace meters usage by the hour',
        'use a UsageIngestor with hourly windows (its default)');
      v.throwIfInvalid();
    }
    const interval = scheduleInterval(props.schedule);
    if (interval === undefined) {
      Annotations.of(this).addWarningV2('cdk-saas-billing:marketplaceScheduleNotARate',
        'the push schedule is not a rate, so its worst-case delivery time cannot be checked against the acceptance window: use events.Schedule.rate(...).');
      return;
    }
    // A record's timestamp is its hour's start: the hour, the closing delay, the schedule, the push's run and a margin.
    const worst = Duration.hours(1).plus(closing.maxClosingDelay).plus(interval).plus(PUSH_TIMEOUT).plus(DELIVERY_MARGIN);
    if (Token.isUnresolved(acceptance.toSeconds()) || worst.toSeconds() <= acceptance.toSeconds()) return;
    v.add('acceptanceWindow', acceptance.toHumanString(),
      `is shorter than the worst-case delivery time of an hour's record, ${worst.toMinutes()} minutes (the hour, the ingestor's closing delay `
      + `${closing.maxClosingDelay.toMinutes()} min, the push schedule ${interval.toMinutes()} min, the push's longest run ${PUSH_TIMEOUT.toMinutes()} min `
      + `and a margin of ${DELIVERY_MARGIN.toMinutes()} min)`,
      'lower the ingestor\'s allowedLateness or closingInterval, or the push schedule');
    v.throwIfInvalid();
  }
}

/** The interval of a rate schedule, or undefined for a cron expression. */
function scheduleInterval(schedule: events.Schedule | undefined): Duration | undefined {
  if (!schedule) return DEFAULT_SCHEDULE;
  const m = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(schedule.expressionString);
  if (!m) return undefined;
  const n = Number(m[1]);
  return m[2].startsWith('minute') ? Duration.minutes(n) : m[2].startsWith('hour') ? Duration.hours(n) : Duration.days(n);
}

function dimensionsOf(dimensions: MarketplaceDimension[] | undefined): DimensionMapping[] {
  return (dimensions ?? []).map((d) => ({
    metric: d.metric,
    dimension: d.dimension,
    multiplier: d.multiplier ?? '1',
    rounding: d.rounding ?? MarketplaceRounding.HALF_UP,
  }));
}

function validate(scope: Construct, props: MarketplaceBillingProps, registrationPath: string): void {
  const v = new PropsValidator(scope, CONSTRUCT);
  if (!props || typeof props !== 'object') {
    v.add('props', props, 'are required', 'pass at least { productCode: \'prod-abc123\', registrationPageUrl: \'https://app.example.com/register\' }');
    v.throwIfInvalid();
  }
  if (!Token.isUnresolved(props.productCode) && (typeof props.productCode !== 'string' || !PRODUCT_CODE.test(props.productCode))) {
    v.add('productCode', props.productCode, 'must be 1 to 255 letters, digits or - / = : _ . @',
      'give the product code AWS Marketplace shows for your SaaS product (for example \'prod-abc123xyz\')');
  }
  const page = props.registrationPageUrl;
  if (!Token.isUnresolved(page)) {
    let url: URL | undefined;
    try {
      url = typeof page === 'string' ? new URL(page) : undefined;
    } catch {
      url = undefined;
    }
    if (!url || url.protocol !== 'https:' || url.hash || url.username || url.password) {
      v.add('registrationPageUrl', page, 'must be an https URL without fragment or credentials', 'for example \'https://app.example.com/marketplace/register\'');
    }
  }
  const field = props.registrationIdField;
  if (field !== undefined && !Token.isUnresolved(field) && (typeof field !== 'string' || !FIELD.test(field))) {
    v.add('registrationIdField', field, 'must be a letter, then letters, digits or underscores (at most 64)', 'for example \'marketplaceRegistrationId\'');
  }
  const pathProblem = webhookPathProblem(registrationPath);
  if (pathProblem) v.add('registrationPath', registrationPath, pathProblem.problem, pathProblem.fix);

  const metrics = new Set<string>();
  const names = new Set<string>();
  for (const [i, d] of (props.dimensions ?? []).entries()) {
    const at = `dimensions[${i}]`;
    if (!Token.isUnresolved(d.metric)) {
      if (typeof d.metric !== 'string' || !isMetricName(d.metric)) v.add(`${at}.metric`, d.metric, identifierRule('metric'), 'give the metric name producers write, for example \'apiCalls\'');
      else if (metrics.has(d.metric)) v.add(`${at}.metric`, d.metric, 'is mapped twice', 'map each metric to one dimension');
      metrics.add(d.metric);
    }
    if (!Token.isUnresolved(d.dimension)) {
      if (typeof d.dimension !== 'string' || !DIMENSION.test(d.dimension)) {
        v.add(`${at}.dimension`, d.dimension, 'must be 1 to 255 visible ASCII characters', 'give the dimension\'s API name from the product\'s pricing, for example \'api_calls\'');
      } else if (names.has(d.dimension)) {
        // One record per license, dimension and hour: two metrics on one dimension would collide (DuplicateRecord).
        v.add(`${at}.dimension`, d.dimension, 'is used by two metrics: AWS Marketplace takes one record per license, dimension and hour', 'sum them in the producer instead');
      }
      names.add(d.dimension);
    }
    if (d.multiplier !== undefined && !Token.isUnresolved(d.multiplier)
      && (typeof d.multiplier !== 'string' || !MULTIPLIER.test(d.multiplier) || /^0+(\.0+)?$/.test(d.multiplier))) {
      v.add(`${at}.multiplier`, d.multiplier, 'must be a positive decimal string with at most 12 decimal places', 'for example \'1000\' or \'0.001\'');
    }
    if (d.rounding !== undefined && !Object.values(MarketplaceRounding).includes(d.rounding)) {
      v.add(`${at}.rounding`, d.rounding, 'is not a MarketplaceRounding', 'use MarketplaceRounding.HALF_UP, HALF_EVEN, UP or DOWN');
    }
  }
  const json = JSON.stringify(dimensionsOf(props.dimensions)).length;
  if (json > MAX_DIMENSIONS_JSON) v.add('dimensions', props.dimensions, `take ${json} characters of the function environment (limit ${MAX_DIMENSIONS_JSON})`, 'map fewer metrics or shorten their names');

  v.durationRange('acceptanceWindow', props.acceptanceWindow, Duration.hours(1), Duration.hours(24),
    'AWS Marketplace refuses usage records 6 hours (the BatchMeterUsage reference) or 24 hours (the current service model) after their hour');
  const acceptance = props.acceptanceWindow ?? Duration.hours(6);
  const warning = props.deadlineWarning;
  if (warning && !warning.isUnresolved() && !acceptance.isUnresolved()
    && (warning.toSeconds() < 300 || warning.toSeconds() >= acceptance.toSeconds())) {
    v.add('deadlineWarning', warning, `must be at least 5 minutes and less than acceptanceWindow (${acceptance.toHumanString()})`, 'for example Duration.hours(2)');
  }
  v.durationRange('processedEventRetention', props.processedEventRetention, Duration.days(1), Duration.days(365));
  validateRuntime(v, props.runtime);
  v.throwIfInvalid();

  if ((props.dimensions ?? []).length > 0 && !props.ingestor) {
    Annotations.of(scope).addWarningV2('cdk-saas-billing:marketplaceDimensionsWithoutIngestor',
      'dimensions are given but ingestor is not, so no usage is metered: pass the ingestor (ingestor: myIngestor).');
  }
  if (props.ingestor && (props.dimensions ?? []).length === 0) {
    Annotations.of(scope).addWarningV2('cdk-saas-billing:marketplaceIngestorWithoutDimensions',
      'an ingestor is given but no dimensions: every window is recorded as NO_DIMENSION and nothing is metered. Map metrics to dimensions (dimensions: [...]).');
  }
}
