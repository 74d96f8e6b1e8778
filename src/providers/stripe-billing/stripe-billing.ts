import { createHash } from 'node:crypto';
import { Annotations, CfnOutput, CustomResource, Duration, Names, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ChangePlanFunction } from './change-plan-function';
import {
  MeterMapping, SIGNING_SECRET_OVERLAP_HOURS, STRIPE_API_VERSION, STRIPE_ENV, STRIPE_METRICS, STRIPE_METRICS_NAMESPACE,
  STRIPE_SETUP_ATTRIBUTES, STRIPE_SETUP_PROPERTIES, STRIPE_SETUP_SWEEP, STRIPE_SETUP_VERSION, STRIPE_WEBHOOK_EVENTS,
  USAGE_PUSH_TABLE_LAYOUT, WEBHOOK_EVENTS_TABLE_LAYOUT,
} from './contract';
import { CreateCustomerFunction } from './create-customer-function';
import { DeleteCustomerFunction } from './delete-customer-function';
import { PutUsageFunction } from './put-usage-function';
import { ReconcileFunction } from './reconcile-function';
import { SetupFunction } from './setup-function';
import { WebhookFunction } from './webhook-function';
import { IASyncFunction, IBilling, IFunctionPath, IFunctionSchedule } from '../../billing/billing';
import { ControlPlaneEvents } from '../../events/event-definition';
import { identifierRule, isMetricName } from '../../events/identifiers';
import { LibraryFunctionOptions } from '../../functions/library-functions';
import { IDataIngestorAggregator } from '../../ingestor/ingestor';
import { IBillingPlans } from '../../plans/billing-plans';
import { AlarmSet, functionErrorsMetric, handlerMetric, queueDepthMetric } from '../../private/alarms';
import { createHandlerFunction } from '../../private/handler-function';
import { acknowledgeNag } from '../../private/nag';
import { validateRuntime } from '../../private/node-runtime';
import { existingRestMethod, restRoot, restUrlForPath } from '../../private/rest-api';
import { PropsValidator } from '../../private/validation';
import { webhookPathProblem, webhookRoutePath } from '../../private/webhook-path';

/**
 * How a meter value is rounded to the whole number Stripe accepts (Stripe's
 * meter events take whole-number values only).
 */
export enum StripeMeterRounding {
  /** Half away from zero: 2.5 becomes 3, 2.4 becomes 2. */
  HALF_UP = 'HALF_UP',
  /** Half to the even neighbour: 2.5 becomes 2, 3.5 becomes 4 (no bias over many windows). */
  HALF_EVEN = 'HALF_EVEN',
  /** Up whenever there is a fraction: 2.1 becomes 3 (every started unit is billed). */
  UP = 'UP',
  /** Down: the fraction is dropped (2.9 becomes 2). */
  DOWN = 'DOWN',
}

/**
 * What offboarding a tenant does to its Stripe subscription.
 */
export enum StripeSubscriptionCancellation {
  /** Cancel now. Metered usage not yet invoiced is not billed. */
  IMMEDIATELY = 'IMMEDIATELY',
  /** Cancel now and have Stripe invoice the metered usage so far (and prorations) at once. */
  IMMEDIATELY_INVOICE_USAGE = 'IMMEDIATELY_INVOICE_USAGE',
  /** Cancel when the current billing period ends. Usage until then is still pushed and billed. */
  AT_PERIOD_END = 'AT_PERIOD_END',
}

/**
 * A usage metric billed through a Stripe meter.
 *
 * Each closed window of the metric becomes one meter event whose value is the
 * window's sum times `multiplier`, rounded to a whole number by `rounding`.
 *
 * @struct
 */
export interface StripeMeter {
  /**
   * The metric name, exactly as producers write it in usage records (for example `apiCalls`).
   */
  readonly metric: string;

  /**
   * The meter's event name in Stripe (`event_name`), for example `api_calls`.
   *
   * 1 to 100 letters, digits, `_`, `-`, `.` and `:`. The prices of your
   * subscription must be metered prices on this meter.
   */
  readonly eventName: string;

  /**
   * The meter's name in the Stripe dashboard (not shown to customers).
   * @default - the metric name
   */
  readonly displayName?: string;

  /**
   * The window's sum is multiplied by this exact, positive decimal before
   * rounding, for example `'1000'` to bill GB as MB, or `'0.001'` to bill per
   * thousand calls.
   * @default '1'
   */
  readonly multiplier?: string;

  /**
   * How the multiplied value is rounded to the whole number Stripe accepts.
   * @default StripeMeterRounding.HALF_UP
   */
  readonly rounding?: StripeMeterRounding;
}

/**
 * Properties of a `StripeBilling`.
 */
export interface StripeBillingProps extends LibraryFunctionOptions {
  /**
   * The secret holding the Stripe secret key (`sk_...`) or a restricted key
   * (`rk_...`): its `SecretString` is the key itself, or JSON `{"apiKey": "..."}`.
   * The functions read it at run time (cached for 5 minutes, re-read at once
   * when Stripe answers 401); it never appears in a template, an environment
   * variable or a log.
   */
  readonly apiKey: secretsmanager.ISecret;

  /**
   * The usage ingestor whose closed windows are pushed to Stripe as meter
   * events, read through its usage read contract.
   * @default - no usage push (`putUsageFunction` is undefined) and no final push on offboarding
   */
  readonly ingestor?: IDataIngestorAggregator;

  /**
   * The metrics billed through Stripe meters. With `manageStripeResources`,
   * the meters are created in Stripe. A window of a metric without a meter is
   * recorded with disposition `NO_METER` and not sent.
   * @default - no meters
   */
  readonly meters?: StripeMeter[];

  /**
   * The ids of the Stripe prices (`price_...`) each tenant is subscribed to on
   * onboarding, at most 20. Metered prices must belong to the meters above.
   * @default - tenants get a customer but no subscription
   */
  readonly prices?: string[];

  /**
   * The tenants' plans, each with its Stripe prices.
   *
   * A tenant is subscribed to its plan's `stripePriceIds` (the plan its onboarding
   * event names, or `prices` for a plan without any), and a plan change swaps its subscription's items to the new plan's prices on the
   * same customer and subscription (`changePlanFunction`, on the plans'
   * `planChanged` event). See docs/plans-and-limits.md.
   * @default - no plans: every tenant is subscribed to `prices`
   */
  readonly plans?: IBillingPlans;

  /**
   * How Stripe prorates a plan change's item swap (`proration_behavior`), as of
   * the instant the change took effect (`proration_date`).
   * @default StripeProrationBehavior.CREATE_PRORATIONS
   */
  readonly planChangeProration?: StripeProrationBehavior;

  /**
   * The HTTP API that `BillingProvider` mounts the webhook on: Stripe is told
   * to call `<apiEndpoint>/billing/<webhookPath>` (the API's `$default`
   * stage). Give one of `httpApi`, `restApi` and `webhookBaseUrl` while
   * `manageStripeResources` is true.
   * @default - none
   */
  readonly httpApi?: apigwv2.IHttpApi;

  /**
   * The REST API that `BillingProvider` mounts the webhook on: Stripe is told
   * to call `<stage URL>/billing/<webhookPath>` on the API's deployment stage
   * (for example `https://abc123.execute-api.us-east-1.amazonaws.com/prod/billing/stripe`).
   * A REST API imported without its deployment stage has no known URL: give
   * `webhookBaseUrl` instead. Give one of `httpApi`, `restApi` and
   * `webhookBaseUrl` while `manageStripeResources` is true.
   * @default - none
   */
  readonly restApi?: apigw.IRestApi;

  /**
   * The https URL at which the API's routes are served, when it is not the
   * `httpApi`'s default endpoint or the `restApi`'s deployment stage: a custom
   * domain (`https://api.example.com`), another HTTP API stage, or a REST API
   * stage (`https://abc123.execute-api.us-east-1.amazonaws.com/prod`). Stripe is
   * told to call `<webhookBaseUrl>/billing/<webhookPath>`.
   * @default - the URL of `httpApi` or `restApi`
   */
  readonly webhookBaseUrl?: string;

  /**
   * The webhook's path under `/billing/`: letters, digits and `-._~`,
   * segments joined by single slashes.
   * @default 'stripe'
   */
  readonly webhookPath?: string;

  /**
   * Set Stripe up as code: a custom resource creates the `meters` in Stripe
   * and a webhook endpoint for the webhook's URL and the event types the
   * handler understands, and stores the endpoint's signing secret in a secret
   * it creates. It runs when one of its inputs changes (meters, URL, API key
   * secret, `webhookSigningSecretRotation`, the library's setup version). On
   * deletion the meters it created and no other installation uses are
   * deactivated and the endpoint is deleted. Turn it off to manage Stripe by
   * hand and pass `webhookSigningSecret`.
   * @default true
   */
  readonly manageStripeResources?: boolean;

  /**
   * The secret holding the signing secret (`whsec_...`) of a webhook endpoint
   * you manage yourself: the secret itself, or JSON `{"current": "...",
   * "previous": "..."}` while you roll it. Required when
   * `manageStripeResources` is false; refused otherwise.
   * @default - a secret is created and filled by the Stripe setup
   */
  readonly webhookSigningSecret?: secretsmanager.ISecret;

  /**
   * A label of the webhook signing secret, with `manageStripeResources`:
   * change it (for example to a date, `'2026-12-01'`) to rotate the secret.
   * The next deploy creates a new webhook endpoint and stores its secret as
   * the current one; the old endpoint and its secret stay valid for 73 hours
   * (Stripe retries a failed delivery for up to 3 days), then an hourly run of
   * the setup deletes them. 1 to 100 visible ASCII characters.
   * @default - no label: the endpoint created on the first deploy is kept
   */
  readonly webhookSigningSecretRotation?: string;

  /**
   * What offboarding does to the tenant's subscription, after a final push of its closed windows.
   * @default StripeSubscriptionCancellation.IMMEDIATELY_INVOICE_USAGE
   */
  readonly subscriptionCancellation?: StripeSubscriptionCancellation;

  /**
   * Delete the tenant's Stripe customer on offboarding (Stripe keeps its
   * invoices). Not with `AT_PERIOD_END`: deleting a customer ends its
   * subscriptions at once.
   * @default false - the customer is kept
   */
  readonly deleteCustomerOnOffboarding?: boolean;

  /**
   * When the usage push runs. A rate must be at least one minute. Each window of a billing
   * period must reach Stripe before that period's invoice is finalized: synth refuses a
   * schedule whose worst-case delivery time exceeds `invoiceGracePeriod` (see `invoiceGracePeriod`).
   * @default - every 5 minutes
   */
  readonly schedule?: events.Schedule;

  /**
   * The invoice finalization grace period of your Stripe account: how long after a billing
   * period ends Stripe still takes usage for it before it finalizes the period's invoice
   * (1 hour unless you set up to 72 hours in the Dashboard's invoice settings:
   * https://docs.stripe.com/billing/subscriptions/usage-based/configure-grace-period).
   *
   * Declare what your account uses. Synth refuses settings whose worst-case delivery time (the
   * ingestor's `closingTimes.maxClosingDelay`, plus the push schedule's interval and the push's
   * longest run, 5 minutes) is more than this minus 10 minutes (Stripe's processing). Usage that
   * still reaches Stripe after its period's invoice is finalized (an outage) is billed on the
   * next invoice, with disposition `CARRIED_OVER` and an invoice item saying so.
   * Between 0 and 72 hours.
   * @default Duration.hours(1)
   */
  readonly invoiceGracePeriod?: Duration;

  /**
   * How far back the first usage push reads closed windows. At most 34 days:
   * Stripe accepts meter events of the past 35 days.
   * @default Duration.days(34)
   */
  readonly initialLookback?: Duration;

  /**
   * How many customer and meter pairs the push sends to at once (one call at
   * a time per pair, as Stripe requires). Between 1 and 64.
   * @default 8
   */
  readonly pushConcurrency?: number;

  /**
   * How long a processed webhook event id is remembered, so that a replay is ignored.
   *
   * Older events are refused. Between 4 days (Stripe retries for 3) and 365 days.
   * @default Duration.days(30)
   */
  readonly processedEventRetention?: Duration;

  /**
   * The bus the webhook puts the billing success, failure and subscription
   * changed events on. Give `BillingProvider` the same bus: it refuses another.
   * @default - the account's default event bus
   */
  readonly eventBus?: events.IEventBus;

  /**
   * The names of the billing success, failure and subscription changed events
   * the webhook emits. Give `BillingProvider` the same value: it refuses others.
   * @default ControlPlaneEvents.SBT_AWS
   */
  readonly controlPlaneEvents?: ControlPlaneEvents;

  /**
   * What happens to the tables (tenant to customer mapping, pushed markers,
   * webhook event ids), the created signing secret and the log groups when they leave the stack.
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

/**
 * How Stripe prorates a plan change (Stripe's `proration_behavior`:
 * https://docs.stripe.com/billing/subscriptions/prorations).
 */
export enum StripeProrationBehavior {
  /** Prorations become invoice items on the next invoice (Stripe's default). */
  CREATE_PRORATIONS = 'create_prorations',
  /** No prorations: the new prices apply from the next period's charges. */
  NONE = 'none',
  /** Prorations invoiced at once. */
  ALWAYS_INVOICE = 'always_invoice',
}

const CONSTRUCT = 'StripeBilling';
const EVENT_NAME = /^[A-Za-z0-9_\-.:]{1,100}$/;
const PRICE = /^(price|plan)_[A-Za-z0-9_]{1,250}$/;
const MULTIPLIER = /^\d{1,15}(\.\d{1,12})?$/;
/** The push function's longest run (it stops starting work a minute before). */
const PUSH_TIMEOUT = Duration.minutes(5);
/** Before its invoice finalizes, a meter event must also be processed by Stripe (billing-period.ts FINALIZATION_SAFETY_SECONDS). */
const STRIPE_PROCESSING_ALLOWANCE = Duration.minutes(10);
/** After the worst-case closing delay, the margin an offboarding waits before its final push (offboarding.ts). */
const DEFAULT_PUSH_SCHEDULE = Duration.minutes(5);
const ROTATION_LABEL = /^[\x21-\x7e]{1,100}$/;
/** Lambda environment variables total 4 KB; keep the meters well below. */
const MAX_METERS_JSON = 2500;

/**
 * Bills tenants through Stripe: a second ready `IBilling` beside `DynamoDbBilling`.
 *
 * Its functions:
 *
 * - `createCustomerFunction`: one Stripe customer per tenant (idempotent,
 *   recorded in a tenant to customer mapping), subscribed to `prices`.
 * - `deleteCustomerFunction`: a final push of the tenant's closed windows, then
 *   its subscription cancelled by `subscriptionCancellation`; the customer is kept unless asked.
 * - `putUsageFunction` (with `ingestor`): closed windows become Stripe meter
 *   events, each window exactly once, every 5 minutes unless `schedule` says otherwise.
 * - `webhookFunction`: Stripe's signed webhook on `POST /billing/<webhookPath>`:
 *   `invoice.paid` becomes the billing success event, `invoice.payment_failed`,
 *   `invoice.payment_action_required` (and a subscription Stripe cancelled for
 *   non-payment) the billing failure event, a subscription that becomes
 *   `incomplete_expired`, `past_due`, `unpaid` or `canceled` (or a deleted
 *   customer) the subscription changed event. An event older than the recorded
 *   state of its invoice or subscription emits nothing.
 * - With `manageStripeResources` (the default), `cdk deploy` creates the meters
 *   and the webhook endpoint in Stripe and stores the endpoint's signing secret.
 *
 * Stripe has no users: `createUserFunction` and `deleteUserFunction` are not set.
 *
 * In TypeScript the construct itself satisfies `IBilling`; in other languages
 * pass `stripeBilling.billing` to `BillingProvider`.
 */
export class StripeBilling extends Construct {
  /** The same functions as this construct's members, as an `IBilling` value for every jsii language. */
  public readonly billing: IBilling;

  /** Creates the tenant's customer and subscription on onboarding. */
  public readonly createCustomerFunction: IASyncFunction;
  /** Pushes the tenant's last usage and cancels its subscription on offboarding. */
  public readonly deleteCustomerFunction: IASyncFunction;
  /** The usage ingestor the push reads, when given. */
  public readonly ingestor?: IDataIngestorAggregator;
  /** Swaps a tenant's subscription items on a plan change, when plans are given. */
  public readonly changePlanFunction?: IASyncFunction;
  /** The scheduled usage push, when an ingestor is given. */
  public readonly putUsageFunction?: IFunctionSchedule;
  /** Stripe's webhook, mounted by `BillingProvider` as `POST /billing/<path>`. */
  public readonly webhookFunction: IFunctionPath;
  /** The bus the webhook emits on (`BillingProvider` refuses another one). */
  public readonly eventBus: events.IEventBus;
  /** The event names the webhook emits (`BillingProvider` refuses others). */
  public readonly controlPlaneEvents: ControlPlaneEvents;

  /** The tenant to customer mapping (partition key `pk`). */
  public readonly customersTable: dynamodb.ITable;
  /** Pushed markers, windows waiting for a retry, the read cursor (`pk`, `sk`). */
  public readonly usagePushTable: dynamodb.ITable;
  /** Processed webhook event ids (`pk`), expiring through TTL. */
  public readonly webhookEventsTable: dynamodb.ITable;
  /** The secret holding the Stripe API key. */
  public readonly apiKey: secretsmanager.ISecret;
  /** The secret holding the webhook signing secret. */
  public readonly webhookSigningSecret: secretsmanager.ISecret;
  /** The URL Stripe calls, when it is known (always with `manageStripeResources`). */
  public readonly webhookUrl?: string;
  /** The Stripe setup custom resource, with `manageStripeResources`. */
  public readonly stripeSetup?: CustomResource;
  /** The alarms: webhook and push errors, refused webhook calls, windows not billed or waiting. */
  public readonly alarms: cloudwatch.Alarm[];
  /** The CloudWatch namespace of the handlers' metrics (dimension `service`: `serviceName`). */
  public readonly metricNamespace: string;
  /** The `service` dimension of this installation's metrics. */
  public readonly serviceName: string;

  private readonly webhookHandler: lambda.Function;
  private putUsageHandler?: lambda.Function;
  private reconcileHandler?: lambda.Function;
  private setupHandler?: lambda.Function;
  private offboardingScheduleDeadLetterQueue?: sqs.IQueue;

  constructor(scope: Construct, id: string, props: StripeBillingProps) {
    super(scope, id);
    const manage = props?.manageStripeResources ?? true;
    const webhookPath = props?.webhookPath ?? 'stripe';
    validate(this, props, manage, webhookPath);

    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const retain = removalPolicy === RemovalPolicy.RETAIN;
    const cpe = props.controlPlaneEvents ?? ControlPlaneEvents.SBT_AWS;
    const eventBus = props.eventBus ?? events.EventBus.fromEventBusName(this, 'DefaultEventBus', 'default');
    const alarmSet = new AlarmSet(this, props.alarmActions);
    this.alarms = alarmSet.alarms;
    this.apiKey = props.apiKey;
    this.metricNamespace = STRIPE_METRICS_NAMESPACE;
    this.serviceName = Names.uniqueResourceName(this, { maxLength: 64 });
    const prefix = `csb${createHash('sha256').update(Names.uniqueId(this)).digest('hex').slice(0, 10)}`;

    const table = (name: string, sortKey?: string, ttl?: string) => new dynamodb.Table(this, name, {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: sortKey ? { name: sortKey, type: dynamodb.AttributeType.STRING } : undefined,
      timeToLiveAttribute: ttl,
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: retain,
      removalPolicy,
    });
    const customersTable = table('CustomersTable');
    const usagePushTable = table('UsagePushTable', USAGE_PUSH_TABLE_LAYOUT.sortKey);
    const webhookEventsTable = table('WebhookEventsTable', undefined, WEBHOOK_EVENTS_TABLE_LAYOUT.ttlAttribute);
    this.customersTable = customersTable;
    this.usagePushTable = usagePushTable;
    this.webhookEventsTable = webhookEventsTable;

    if (props.webhookSigningSecret) {
      this.webhookSigningSecret = props.webhookSigningSecret;
    } else {
      const secret = new secretsmanager.Secret(this, 'WebhookSigningSecret', {
        description: `cdk-saas-billing: signing secret of the Stripe webhook endpoint of ${this.node.path}, written by its Stripe setup`,
        // A placeholder until the setup stores the endpoint's secret: it matches no signature.
        generateSecretString: { passwordLength: 64, excludePunctuation: true, includeSpace: false },
        removalPolicy,
      });
      acknowledgeNag(secret, 'AwsSolutions-SMG4',
        'The value is the signing secret Stripe generates for the webhook endpoint; it is rotated by the Stripe setup, which creates '
        + 'a new endpoint when webhookSigningSecretRotation changes and keeps the old secret as "previous" until Stripe\'s retries to it are over.');
      this.webhookSigningSecret = secret;
    }

    const common = {
      // The service dimension tells installations apart in the shared metric namespace.
      [STRIPE_ENV.SERVICE_NAME]: this.serviceName,
      [STRIPE_ENV.METRICS_NAMESPACE]: this.metricNamespace,
      [STRIPE_ENV.SECRET_CACHE_SECONDS]: '300',
      [STRIPE_ENV.REQUEST_TIMEOUT_MS]: '20000',
    };
    const stripeEnv = {
      ...common,
      [STRIPE_ENV.API_KEY_SECRET_ARN]: this.apiKey.secretArn,
      [STRIPE_ENV.IDENTIFIER_PREFIX]: prefix,
      [STRIPE_ENV.CUSTOMERS_TABLE_NAME]: customersTable.tableName,
    };
    const fnOptions = { logRetention: props.logRetention, removalPolicy, runtime: props.runtime };
    const closing = props.ingestor?.closingTimes;
    const grace = props.invoiceGracePeriod ?? Duration.hours(1);
    const pushEnv: Record<string, string> = props.ingestor ? {
      [STRIPE_ENV.USAGE_PUSH_TABLE_NAME]: usagePushTable.tableName,
      [STRIPE_ENV.METERS]: JSON.stringify(metersOf(props.meters)),
      [STRIPE_ENV.PUSH_CONCURRENCY]: String(props.pushConcurrency ?? 8),
      [STRIPE_ENV.INITIAL_LOOKBACK_SECONDS]: String((props.initialLookback ?? Duration.days(34)).toSeconds()),
      [STRIPE_ENV.INVOICE_GRACE_SECONDS]: String(grace.toSeconds()),
    } : {};
    const grantPush = (fn: lambda.Function) => {
      usagePushTable.grant(fn, 'dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem');
      props.ingestor!.bindUsageReader(fn);
    };

    // With plans: each plan's prices, how the onboarding names the plan, and the proration of a change.
    const planEnv: Record<string, string> = props.plans ? {
      [STRIPE_ENV.PLAN_PRICE_IDS]: JSON.stringify(Object.fromEntries(props.plans.plans.map((p) => [p.name, p.stripePriceIds ?? []]))),
      [STRIPE_ENV.PLAN_FIELD]: props.plans.planField,
      [STRIPE_ENV.DEFAULT_PLAN]: props.plans.defaultPlan ?? '',
    } : {};

    const createCustomer = createHandlerFunction(this, 'CreateCustomer', CreateCustomerFunction, {
      ...fnOptions,
      description: 'cdk-saas-billing: creates the Stripe customer and subscription of an onboarded tenant',
      timeout: Duration.minutes(2),
      environment: {
        ...stripeEnv,
        [STRIPE_ENV.PRICE_IDS]: JSON.stringify(props.prices ?? []),
        ...planEnv,
        // Subscriptions anchored on the ingestor's window boundaries: no window straddles two billing periods.
        [STRIPE_ENV.BILLING_ANCHOR_SECONDS]: String(props.ingestor ? closing?.windowSeconds ?? 3600 : 0),
      },
    });
    customersTable.grant(createCustomer, 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem');
    this.apiKey.grantRead(createCustomer);

    const deleteCustomer = createHandlerFunction(this, 'DeleteCustomer', DeleteCustomerFunction, {
      ...fnOptions,
      description: 'cdk-saas-billing: pushes an offboarded tenant\'s last usage to Stripe and cancels its subscription',
      timeout: Duration.minutes(15),
      memorySize: 512,
      environment: {
        ...stripeEnv,
        ...pushEnv,
        [STRIPE_ENV.CANCELLATION]: props.subscriptionCancellation ?? StripeSubscriptionCancellation.IMMEDIATELY_INVOICE_USAGE,
        [STRIPE_ENV.DELETE_CUSTOMER]: String(props.deleteCustomerOnOffboarding ?? false),
        // The final push waits until the window holding the offboarding time is closed and readable.
        [STRIPE_ENV.OFFBOARDING_WAIT_SECONDS]: String(closing ? closing.maxClosingDelay.toSeconds() : 0),
        [STRIPE_ENV.WINDOW_SECONDS]: String(closing?.windowSeconds ?? 3600),
      },
    });
    customersTable.grant(deleteCustomer, 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem');
    this.apiKey.grantRead(deleteCustomer);
    if (props.ingestor) grantPush(deleteCustomer);
    this.offboardingSchedules(deleteCustomer, alarmSet, removalPolicy);

    let putUsage: lambda.Function | undefined;
    if (props.ingestor) {
      putUsage = createHandlerFunction(this, 'PutUsage', PutUsageFunction, {
        ...fnOptions,
        description: 'cdk-saas-billing: pushes closed usage windows to Stripe as meter events, each window once',
        timeout: PUSH_TIMEOUT,
        memorySize: 512,
        environment: { ...stripeEnv, ...pushEnv },
      });
      customersTable.grant(putUsage, 'dynamodb:GetItem', 'dynamodb:UpdateItem');
      this.apiKey.grantRead(putUsage);
      grantPush(putUsage);
      this.putUsageHandler = putUsage;
      alarmSet.add('PutUsageErrorsAlarm', this.metricPutUsageErrors(), {
        description: 'the Stripe usage push failed (Stripe unavailable or the API key refused); the next run resumes where it stopped. See the PutUsage log',
      });
      alarmSet.add('WindowsTooOldAlarm', this.metricWindowsTooOld(), {
        description: 'usage windows older than the 35 days Stripe accepts were not billed (disposition TOO_OLD in the usage push table); bill them by hand',
      });
      alarmSet.add('WindowsRejectedAlarm', this.metricWindowsRejected(), {
        description: 'Stripe refused meter events (disposition REJECTED, with Stripe\'s error, in the usage push table); fix the cause and redrive them',
      });
      alarmSet.add('WindowsUncertainAlarm', this.metricWindowsUncertain(), {
        description: 'usage windows whose send was interrupted more than 23 hours ago (disposition UNCERTAIN); compare with the meter\'s event summaries in Stripe',
      });
      alarmSet.add('PendingWindowsAlarm', this.metricOldestPendingWindowHours(), {
        description: 'usage windows have waited over 24 hours to be sent (tenant without a Stripe customer, or Stripe unavailable); see the PENDING items of the usage push table',
        threshold: 24,
      });
      alarmSet.add('WindowsCarriedOverAlarm', this.metricWindowsCarriedOver(), {
        description: 'usage reached Stripe after its billing period\'s invoice was finalized and is billed on the next invoice (disposition CARRIED_OVER, '
          + 'with an invoice item); check the push schedule, Stripe\'s availability and invoiceGracePeriod',
      });
      alarmSet.add('WindowsNoSubscriptionAlarm', this.metricWindowsNoSubscription(), {
        description: 'usage of tenants whose subscription never started or ended outside an offboarding (incomplete_expired, canceled, customer deleted in Stripe) '
          + 'was not billed (disposition NO_SUBSCRIPTION); fix the subscription, then redrive the windows',
      });
      this.reconciler(stripeEnv, pushEnv, grace, customersTable, usagePushTable, props.ingestor, alarmSet, fnOptions);
      this.checkDeliveryTime(props, grace);
    }

    let changePlan: lambda.Function | undefined;
    if (props.plans) {
      changePlan = createHandlerFunction(this, 'ChangePlan', ChangePlanFunction, {
        ...fnOptions,
        description: 'cdk-saas-billing: swaps a tenant\'s Stripe subscription items to its new plan\'s prices',
        timeout: Duration.minutes(1),
        environment: {
          ...stripeEnv,
          [STRIPE_ENV.PRICE_IDS]: JSON.stringify(props.prices ?? []),
          ...planEnv,
          [STRIPE_ENV.PLAN_CHANGE_PRORATION]: props.planChangeProration ?? StripeProrationBehavior.CREATE_PRORATIONS,
        },
      });
      customersTable.grant(changePlan, 'dynamodb:GetItem', 'dynamodb:UpdateItem');
      this.apiKey.grantRead(changePlan);
    }

    const baseUrl = props.webhookBaseUrl ?? props.httpApi?.apiEndpoint;
    this.webhookUrl = baseUrl !== undefined ? `${trimSlash(baseUrl)}${webhookRoutePath(webhookPath)}`
      : props.restApi ? restUrlForPath(props.restApi, webhookRoutePath(webhookPath)) : undefined;

    const webhook = createHandlerFunction(this, 'Webhook', WebhookFunction, {
      ...fnOptions,
      description: 'cdk-saas-billing: verifies Stripe webhook calls and emits billing success, failure and subscription changed events',
      timeout: Duration.seconds(15),
      environment: {
        ...common,
        [STRIPE_ENV.CUSTOMERS_TABLE_NAME]: customersTable.tableName,
        [STRIPE_ENV.WEBHOOK_EVENTS_TABLE_NAME]: webhookEventsTable.tableName,
        [STRIPE_ENV.WEBHOOK_SECRET_ARN]: this.webhookSigningSecret.secretArn,
        [STRIPE_ENV.PROCESSED_EVENT_RETENTION_SECONDS]: String((props.processedEventRetention ?? Duration.days(30)).toSeconds()),
        [STRIPE_ENV.EVENT_BUS_ARN]: eventBus.eventBusArn,
        [STRIPE_ENV.BILLING_SUCCESS_SOURCE]: cpe.billingSuccess.source,
        [STRIPE_ENV.BILLING_SUCCESS_DETAIL_TYPE]: cpe.billingSuccess.detailType,
        [STRIPE_ENV.BILLING_FAILURE_SOURCE]: cpe.billingFailure.source,
        [STRIPE_ENV.BILLING_FAILURE_DETAIL_TYPE]: cpe.billingFailure.detailType,
        [STRIPE_ENV.BILLING_SUBSCRIPTION_CHANGED_SOURCE]: cpe.billingSubscriptionChanged.source,
        [STRIPE_ENV.BILLING_SUBSCRIPTION_CHANGED_DETAIL_TYPE]: cpe.billingSubscriptionChanged.detailType,
      },
    });
    webhookEventsTable.grant(webhook, 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem');
    // GetItem: the reverse mapping and the tenant; UpdateItem: the subscription status and a deleted customer on the tenant item.
    customersTable.grant(webhook, 'dynamodb:GetItem', 'dynamodb:UpdateItem');
    this.webhookSigningSecret.grantRead(webhook);
    eventBus.grantPutEventsTo(webhook);
    this.webhookHandler = webhook;
    alarmSet.add('WebhookErrorsAlarm', this.metricWebhookErrors(), {
      description: 'Stripe webhook calls failed (HTTP 5xx); Stripe retries them for 3 days. See the Webhook log',
    });
    alarmSet.add('WebhookRefusedAlarm', this.metricWebhookRefused(), {
      description: 'webhook calls were refused (signature, tolerance or malformed); if they are Stripe\'s, the stored signing secret '
        + 'does not match the endpoint\'s (check a rotation) or the clock drifts',
      threshold: 5,
    });

    if (manage) {
      const setup = createHandlerFunction(this, 'Setup', SetupFunction, {
        ...fnOptions,
        description: 'cdk-saas-billing: creates the Stripe meters and webhook endpoint of this stack (custom resource)',
        timeout: Duration.minutes(5),
        environment: {
          ...common,
          [STRIPE_ENV.API_KEY_SECRET_ARN]: this.apiKey.secretArn,
          [STRIPE_ENV.WEBHOOK_SECRET_ARN]: this.webhookSigningSecret.secretArn,
        },
      });
      this.apiKey.grantRead(setup);
      this.webhookSigningSecret.grantRead(setup);
      this.webhookSigningSecret.grantWrite(setup);
      const setupId = `${prefix}-setup`;
      // CloudFormation calls a custom resource only when its properties change: every input is one (contract.ts).
      this.stripeSetup = new CustomResource(this, 'StripeSetup', {
        serviceToken: setup.functionArn,
        resourceType: 'Custom::StripeSetup',
        properties: {
          [STRIPE_SETUP_PROPERTIES.SETUP_ID]: setupId,
          [STRIPE_SETUP_PROPERTIES.METERS]: JSON.stringify((props.meters ?? [])
            .map((m) => ({ eventName: m.eventName, displayName: m.displayName ?? m.metric }))),
          [STRIPE_SETUP_PROPERTIES.WEBHOOK_URL]: this.webhookUrl ?? '',
          [STRIPE_SETUP_PROPERTIES.WEBHOOK_EVENTS]: JSON.stringify(Object.values(STRIPE_WEBHOOK_EVENTS)),
          [STRIPE_SETUP_PROPERTIES.API_VERSION]: STRIPE_API_VERSION,
          [STRIPE_SETUP_PROPERTIES.API_KEY_SECRET_ARN]: this.apiKey.secretArn,
          [STRIPE_SETUP_PROPERTIES.WEBHOOK_SIGNING_SECRET_ARN]: this.webhookSigningSecret.secretArn,
          [STRIPE_SETUP_PROPERTIES.SIGNING_SECRET_ROTATION]: props.webhookSigningSecretRotation ?? '',
          [STRIPE_SETUP_PROPERTIES.SETUP_VERSION]: STRIPE_SETUP_VERSION,
        },
      });
      this.stripeSetup.node.addDependency(this.webhookSigningSecret);
      this.addSetupSweep(setup, setupId, alarmSet);
      this.addSetupOutputs(this.stripeSetup, props.meters ?? []);
      if (props.httpApi) this.node.addValidation({ validate: () => routeProblems(this, props.httpApi!, webhookPath) });
      if (props.restApi) this.node.addValidation({ validate: () => restMethodProblems(this, props.restApi!, webhookPath) });
    }

    if (this.webhookUrl) new CfnOutput(this, 'WebhookUrl', { description: 'The URL Stripe calls (POST)', value: this.webhookUrl });
    new CfnOutput(this, 'CustomersTableName', { description: 'DynamoDB table mapping tenants to Stripe customers and subscriptions', value: customersTable.tableName });
    new CfnOutput(this, 'UsagePushTableName', { description: 'DynamoDB table of pushed usage windows and their dispositions', value: usagePushTable.tableName });
    new CfnOutput(this, 'ApiKeySecretArn', { description: 'Secret holding the Stripe API key', value: this.apiKey.secretArn });
    new CfnOutput(this, 'WebhookSigningSecretArn', { description: 'Secret holding the Stripe webhook signing secret', value: this.webhookSigningSecret.secretArn });

    this.createCustomerFunction = { handler: createCustomer };
    this.deleteCustomerFunction = { handler: deleteCustomer };
    this.ingestor = props.ingestor;
    this.changePlanFunction = changePlan && props.plans ? { handler: changePlan, trigger: props.plans.planChangedEvent } : undefined;
    this.putUsageFunction = putUsage ? { handler: putUsage, schedule: props.schedule ?? events.Schedule.rate(DEFAULT_PUSH_SCHEDULE) } : undefined;
    this.webhookFunction = { path: webhookPath, handler: webhook };
    this.eventBus = eventBus;
    this.controlPlaneEvents = cpe;
    this.billing = {
      createCustomerFunction: this.createCustomerFunction,
      deleteCustomerFunction: this.deleteCustomerFunction,
      changePlanFunction: this.changePlanFunction,
      ingestor: this.ingestor,
      putUsageFunction: this.putUsageFunction,
      webhookFunction: this.webhookFunction,
      eventBus: this.eventBus,
      controlPlaneEvents: this.controlPlaneEvents,
    };
  }

  /**
   * One-time EventBridge Scheduler schedules invoke the offboarding function again: for the final
   * push and the cancellation once the tenant's last windows are closed, and to retry a customer
   * deletion that waits for its invoices. Their own group, a role that may invoke only that
   * function, and a dead-letter queue with an alarm.
   */
  private offboardingSchedules(fn: lambda.Function, alarmSet: AlarmSet, removalPolicy: RemovalPolicy): void {
    const group = new scheduler.CfnScheduleGroup(this, 'OffboardingScheduleGroup', {
      name: Names.uniqueResourceName(this, { maxLength: 64, separator: '-' }),
    });
    group.applyRemovalPolicy(removalPolicy === RemovalPolicy.RETAIN ? RemovalPolicy.DESTROY : removalPolicy);
    const dlq = new sqs.Queue(this, 'OffboardingScheduleDeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledgeNag(dlq, 'AwsSolutions-SQS3', 'This queue is itself the dead-letter queue of the offboarding\'s one-time schedules.');
    const role = new iam.Role(this, 'OffboardingSchedulerRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
      description: `cdk-saas-billing: lets EventBridge Scheduler invoke the offboarding function of ${this.node.path}`,
    });
    // This function only (grantInvoke would add its versions and aliases, `<arn>:*`).
    role.addToPolicy(new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [fn.functionArn] }));
    dlq.grantSendMessages(role);
    fn.addToRolePolicy(new iam.PolicyStatement({
      actions: ['scheduler:CreateSchedule'],
      resources: [Stack.of(this).formatArn({ service: 'scheduler', resource: 'schedule', resourceName: `${group.ref}/*` })],
    }));
    role.grantPassRole(fn.grantPrincipal);
    // cdk-nag names the finding by the resource as it renders it: tokens as <LogicalId> or <AWS::Region>.
    const stack = Stack.of(this);
    const rendered = (v: string, pseudo: string) => (Token.isUnresolved(v) ? `<${pseudo}>` : v);
    acknowledgeNag(fn.role!, `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:scheduler:${rendered(stack.region, 'AWS::Region')}:`
      + `${rendered(stack.account, 'AWS::AccountId')}:schedule/<${stack.getLogicalId(group)}>/*]`,
    'One-time schedules are created per tenant and step, with names derived from them: the grant covers only this installation\'s own schedule group.');
    fn.addEnvironment(STRIPE_ENV.SCHEDULE_GROUP, group.ref);
    fn.addEnvironment(STRIPE_ENV.SCHEDULER_ROLE_ARN, role.roleArn);
    fn.addEnvironment(STRIPE_ENV.SCHEDULER_DLQ_ARN, dlq.queueArn);
    this.offboardingScheduleDeadLetterQueue = dlq;
    alarmSet.add('OffboardingScheduleDeadLetterAlarm', this.metricOffboardingScheduleDeadLetterQueueDepth(), {
      description: 'a one-time schedule of an offboarding could not invoke the offboarding function (final push, cancellation or customer deletion did not run); '
        + 'see the dead-letter queue and invoke the function with the message\'s input',
    });
  }

  /** The scheduled reconciler (hourly), its grants and alarms. */
  private reconciler(
    stripeEnv: Record<string, string>, pushEnv: Record<string, string>, grace: Duration,
    customersTable: dynamodb.Table, usagePushTable: dynamodb.Table, ingestor: IDataIngestorAggregator, alarmSet: AlarmSet,
    fnOptions: { logRetention?: logs.RetentionDays; removalPolicy: RemovalPolicy; runtime: lambda.Runtime | undefined },
  ): void {
    const fn = createHandlerFunction(this, 'Reconcile', ReconcileFunction, {
      ...fnOptions,
      description: 'cdk-saas-billing: compares what was sent to Stripe with what Stripe counted, per tenant, meter and billing period, and repairs it',
      timeout: Duration.minutes(10),
      memorySize: 512,
      environment: { ...stripeEnv, ...pushEnv, [STRIPE_ENV.INVOICE_GRACE_SECONDS]: String(grace.toSeconds()), [STRIPE_ENV.RECONCILE_LAG_SECONDS]: '1800' },
    });
    customersTable.grant(fn, 'dynamodb:Scan', 'dynamodb:GetItem');
    usagePushTable.grant(fn, 'dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem');
    this.apiKey.grantRead(fn);
    ingestor.bindUsageReader(fn);
    new events.Rule(this, 'ReconcileSchedule', {
      description: `Runs the Stripe reconciler of ${this.node.path}`,
      // At minute 55: the hour's windows (closed at about minute 17, pushed within 5 minutes) were sent more than the 30-minute lag ago.
      schedule: events.Schedule.cron({ minute: '55' }),
      // A failed run is not retried by Lambda's async queue: the next hourly run redoes it.
      targets: [new targets.LambdaFunction(fn, { retryAttempts: 0 })],
    });
    this.reconcileHandler = fn;
    alarmSet.add('ReconcileErrorsAlarm', this.metricReconcileErrors(), {
      description: 'the Stripe reconciler failed (the next hourly run retries); see the Reconcile log',
    });
    alarmSet.add('WindowsNotCountedAlarm', this.metricWindowsNotCounted(), {
      description: 'Stripe did not count meter events it had accepted (a deleted customer, an inactive meter); the reconciler sent them again or dropped them',
    });
    alarmSet.add('WindowsDroppedAlarm', this.metricWindowsDropped(), {
      description: 'usage Stripe did not count could not be sent again (disposition DROPPED in the usage push table); fix the meter or customer, then redrive the windows',
    });
    alarmSet.add('UnitsNotInvoicedAlarm', this.metricUnitsNotInvoiced(), {
      description: 'Stripe ended a subscription outside an offboarding (customer deleted or subscription cancelled in Stripe): the usage counted in its last '
        + 'period is on no invoice; see the RECON# record (reason, notInvoiced) and bill it by hand',
    });
    alarmSet.add('UnitsOverCountedAlarm', this.metricUnitsOverCounted(), {
      description: 'Stripe counted more units than were sent on a meter (events from elsewhere on the meter?); see the RECON# records of the usage push table',
    });
  }

  /** At synth: every window of a billing period can reach Stripe before the period's invoice is finalized. */
  private checkDeliveryTime(props: StripeBillingProps, grace: Duration): void {
    const closing = props.ingestor?.closingTimes;
    if (!closing) {
      Annotations.of(this).addWarningV2('cdk-saas-billing:stripeDeliveryTimeUnknown',
        'the ingestor does not say when its windows close (closingTimes), so StripeBilling cannot check that usage reaches each invoice before Stripe '
        + 'finalizes it: make sure its worst-case closing delay plus the push schedule is well within invoiceGracePeriod.');
      return;
    }
    const interval = scheduleInterval(props.schedule);
    if (interval === undefined) {
      Annotations.of(this).addWarningV2('cdk-saas-billing:stripeScheduleNotARate',
        'the push schedule is not a rate, so its worst-case delivery time cannot be checked against invoiceGracePeriod: use events.Schedule.rate(...).');
      return;
    }
    const worst = closing.maxClosingDelay.plus(interval).plus(PUSH_TIMEOUT);
    const allowed = grace.minus(STRIPE_PROCESSING_ALLOWANCE);
    if (Token.isUnresolved(grace.toSeconds()) || worst.toSeconds() <= allowed.toSeconds()) return;
    const v = new PropsValidator(this, CONSTRUCT);
    v.add('invoiceGracePeriod', grace.toHumanString(),
      `is shorter than the worst-case delivery time of the last window of a billing period, ${worst.toMinutes()} minutes (the ingestor's closing delay `
      + `${closing.maxClosingDelay.toMinutes()} min, the push schedule ${interval.toMinutes()} min and the push's longest run ${PUSH_TIMEOUT.toMinutes()} min) `
      + `plus ${STRIPE_PROCESSING_ALLOWANCE.toMinutes()} minutes for Stripe to process it: every period's last windows would miss its invoice`,
      'lower the ingestor\'s allowedLateness or closingInterval, or the push schedule; or set a longer invoice finalization grace period in Stripe '
      + `(up to 72 hours) and declare it here, for example invoiceGracePeriod: Duration.hours(${Math.ceil((worst.toMinutes() + STRIPE_PROCESSING_ALLOWANCE.toMinutes()) / 60)})`);
    v.throwIfInvalid();
  }

  /**
   * The setup's hourly run outside CloudFormation: it ends a signing secret
   * rotation's overlap (deletes the previous endpoint, removes its secret) and
   * otherwise only reads the secret. Errors alarm.
   */
  private addSetupSweep(setup: lambda.Function, setupId: string, alarmSet: AlarmSet): void {
    new events.Rule(this, 'StripeSetupSweep', {
      description: `cdk-saas-billing: removes the previous Stripe webhook endpoint ${SIGNING_SECRET_OVERLAP_HOURS} hours after a signing secret rotation (${this.node.path})`,
      schedule: events.Schedule.rate(Duration.hours(1)),
      targets: [new targets.LambdaFunction(setup, { event: events.RuleTargetInput.fromObject({ [STRIPE_SETUP_SWEEP]: setupId }), retryAttempts: 2 })],
    });
    this.setupHandler = setup;
    alarmSet.add('StripeSetupErrorsAlarm', this.metricSetupErrors(), {
      description: 'the Stripe setup failed outside a deploy (its hourly run ending a signing secret rotation); see the Setup log',
    });
  }

  /** Outputs of the setup: the endpoint id, and each meter's id (named after its event name) for creating prices on it. */
  private addSetupOutputs(stripeSetup: CustomResource, meters: StripeMeter[]): void {
    new CfnOutput(this, 'WebhookEndpointId', {
      description: 'Id of the Stripe webhook endpoint the setup manages',
      value: stripeSetup.getAttString(STRIPE_SETUP_ATTRIBUTES.WEBHOOK_ENDPOINT_ID),
    });
    if (meters.length === 0) return;
    new CfnOutput(this, 'MeterIds', {
      description: 'The Stripe meters of this installation: JSON object event name -> meter id',
      value: stripeSetup.getAttString(STRIPE_SETUP_ATTRIBUTES.METER_IDS),
    });
    meters.forEach((m, i) => {
      const named = !Token.isUnresolved(m.eventName);
      new CfnOutput(this, named ? `MeterId-${m.eventName}` : `MeterId${i}`, {
        description: named ? `Id of the Stripe meter with event name ${m.eventName}: create its metered prices on it` : `Id of the Stripe meter of meters[${i}]`,
        value: stripeSetup.getAttString(`${STRIPE_SETUP_ATTRIBUTES.METER_ID_PREFIX}${i}`),
      });
    });
  }

  /** Windows the push sent to Stripe as meter events (`WindowsSent`, sum over 5 minutes). */
  public metricWindowsSent(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(STRIPE_METRICS.WINDOWS_SENT, props);
  }

  /** Windows older than the 35 days Stripe accepts: never sent (disposition `TOO_OLD`). Alarmed (`WindowsTooOldAlarm`) (`WindowsTooOld`, sum over 5 minutes). */
  public metricWindowsTooOld(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(STRIPE_METRICS.WINDOWS_TOO_OLD, props);
  }

  /** Windows Stripe refused with a 4xx, or whose value cannot be sent (disposition `REJECTED`). Alarmed (`WindowsRejectedAlarm`) (`WindowsRejected`, sum over 5 minutes). */
  public metricWindowsRejected(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(STRIPE_METRICS.WINDOWS_REJECTED, props);
  }

  /** Windows whose send was interrupted longer ago than Stripe's idempotency window, with no answer recorded (disposition `UNCERTAIN`). Alarmed (`WindowsUncertainAlarm`) (`WindowsUncertain`, sum over 5 minutes). */
  public metricWindowsUncertain(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(STRIPE_METRICS.WINDOWS_UNCERTAIN, props);
  }

  /** Windows of metrics without a meter: recorded, not sent (disposition `NO_METER`) (`WindowsWithoutMeter`, sum over 5 minutes). */
  public metricWindowsWithoutMeter(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(STRIPE_METRICS.WINDOWS_WITHOUT_METER, props);
  }

  /** Windows that round to 0: recorded, not sent (disposition `ZERO`) (`WindowsZero`, sum over 5 minutes). */
  public metricWindowsZero(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(STRIPE_METRICS.WINDOWS_ZERO, props);
  }

  /** Windows of offboarded tenants: recorded, not sent (disposition `AFTER_OFFBOARDING`) (`WindowsAfterOffboarding`, sum over 5 minutes). */
  public metricWindowsAfterOffboarding(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(STRIPE_METRICS.WINDOWS_AFTER_OFFBOARDING, props);
  }

  /** Windows that reached Stripe after their period's invoice was finalized, billed on the next invoice (disposition `CARRIED_OVER`). Alarmed (`WindowsCarriedOverAlarm`) (`WindowsCarriedOver`, sum over 5 minutes). */
  public metricWindowsCarriedOver(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(STRIPE_METRICS.WINDOWS_CARRIED_OVER, props);
  }

  /** Windows of tenants whose subscription never started or ended outside an offboarding: not sent (disposition `NO_SUBSCRIPTION`). Alarmed (`WindowsNoSubscriptionAlarm`) (`WindowsNoSubscription`, sum over 5 minutes). */
  public metricWindowsNoSubscription(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(STRIPE_METRICS.WINDOWS_NO_SUBSCRIPTION, props);
  }

  /** Windows put aside to retry on the next run (no customer yet, Stripe unavailable) (`WindowsDeferred`, sum over 5 minutes). */
  public metricWindowsDeferred(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(STRIPE_METRICS.WINDOWS_DEFERRED, props);
  }

  /** Age of the oldest window waiting for a retry, in hours. Alarmed at 24 (`PendingWindowsAlarm`) (`OldestPendingWindowHours`, maximum over 1 hour). */
  public metricOldestPendingWindowHours(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    const hourlyMaximum = { statistic: cloudwatch.Stats.MAXIMUM, period: Duration.hours(1) };
    return this.handlerMetric(STRIPE_METRICS.OLDEST_PENDING_WINDOW_HOURS, { ...hourlyMaximum, ...props });
  }

  /** Sent windows that Stripe's meter event summaries show it did not count (the hourly reconciler). Alarmed (`WindowsNotCountedAlarm`) (`WindowsNotCounted`, sum over 1 hour, the reconciler's schedule). */
  public metricWindowsNotCounted(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(STRIPE_METRICS.WINDOWS_NOT_COUNTED, { period: Duration.hours(1), ...props });
  }

  /** Windows not counted that the reconciler sent again, in their period or carried to the next invoice (`WindowsResent`, sum over 1 hour, the reconciler's schedule). */
  public metricWindowsResent(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(STRIPE_METRICS.WINDOWS_RESENT, { period: Duration.hours(1), ...props });
  }

  /** Windows Stripe did not count after a resend either: not billed (disposition `DROPPED`). Alarmed (`WindowsDroppedAlarm`) (`WindowsDropped`, sum over 1 hour, the reconciler's schedule). */
  public metricWindowsDropped(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(STRIPE_METRICS.WINDOWS_DROPPED, { period: Duration.hours(1), ...props });
  }

  /** Units Stripe counted beyond what was sent, per reconciled period (meter events from elsewhere on the meter). Alarmed (`UnitsOverCountedAlarm`) (`UnitsOverCounted`, sum over 1 hour, the reconciler's schedule). */
  public metricUnitsOverCounted(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(STRIPE_METRICS.UNITS_OVER_COUNTED, { period: Duration.hours(1), ...props });
  }

  /**
   * Units counted in a period whose subscription Stripe ended outside an offboarding (a customer deleted in Stripe): on no invoice.
   * Alarmed (`UnitsNotInvoicedAlarm`) (`UnitsNotInvoiced`, sum over 1 hour, the reconciler's schedule).
   */
  public metricUnitsNotInvoiced(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(STRIPE_METRICS.UNITS_NOT_INVOICED, { period: Duration.hours(1), ...props });
  }

  /** Offboardings waiting for the tenant's last windows to close before the final push and the cancellation (`OffboardingsWaiting`, sum over 5 minutes). */
  public metricOffboardingsWaiting(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(STRIPE_METRICS.OFFBOARDINGS_WAITING, props);
  }

  /** Customers kept although deletion was asked, because an invoice was still open or unpaid (retried daily) (`CustomerDeletionsDeferred`, sum over 5 minutes). */
  public metricCustomerDeletionsDeferred(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(STRIPE_METRICS.CUSTOMER_DELETIONS_DEFERRED, props);
  }

  /** Lifecycle events older than the tenant's latest opposite event (an onboarding older than its offboarding): ignored (`StaleLifecycleEvents`, sum over 5 minutes). */
  public metricStaleLifecycleEvents(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(STRIPE_METRICS.STALE_EVENTS, props);
  }

  /** Webhook calls refused: signature, timestamp tolerance or malformed. Alarmed at 5 (`WebhookRefusedAlarm`) (`WebhookRefused`, sum over 5 minutes). */
  public metricWebhookRefused(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(STRIPE_METRICS.WEBHOOK_REFUSED, props);
  }

  /** Signed webhook events about a customer no tenant maps to: acknowledged, no event emitted (`WebhookUnknownCustomer`, sum over 5 minutes). */
  public metricWebhookUnknownCustomer(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(STRIPE_METRICS.WEBHOOK_UNKNOWN_CUSTOMER, props);
  }

  /** Signed webhook events older than the state already recorded for their invoice or subscription: acknowledged, no event emitted (`WebhookSupersededEvents`, sum over 5 minutes). */
  public metricWebhookSupersededEvents(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(STRIPE_METRICS.WEBHOOK_SUPERSEDED, props);
  }

  /** Errors of the webhook function: calls answered with HTTP 5xx, which Stripe retries (sum over 5 minutes). Alarmed (`WebhookErrorsAlarm`). */
  public metricWebhookErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return functionErrorsMetric(this.webhookHandler, props);
  }

  /**
   * Errors of the usage push function (sum over 5 minutes). Alarmed (`PutUsageErrorsAlarm`).
   * Only with an `ingestor`: without one there is no push, and this method throws.
   */
  public metricPutUsageErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return functionErrorsMetric(this.present(this.putUsageHandler, 'metricPutUsageErrors', 'no usage push (no ingestor was given)', 'pass an ingestor'), props);
  }

  /**
   * Errors of the hourly reconciler (sum over 1 hour). Alarmed (`ReconcileErrorsAlarm`).
   * Only with an `ingestor`: without one there is no reconciler, and this method throws.
   */
  public metricReconcileErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    const fn = this.present(this.reconcileHandler, 'metricReconcileErrors', 'no reconciler (no ingestor was given)', 'pass an ingestor');
    return functionErrorsMetric(fn, { period: Duration.hours(1), ...props });
  }

  /**
   * Errors of the Stripe setup function, at deploy time or in its hourly run (sum over 1 hour).
   * Alarmed (`StripeSetupErrorsAlarm`). Only with `manageStripeResources` (the default): without
   * it there is no setup, and this method throws.
   */
  public metricSetupErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    const fn = this.present(this.setupHandler, 'metricSetupErrors', 'no Stripe setup (manageStripeResources is false)', 'set manageStripeResources: true');
    return functionErrorsMetric(fn, { period: Duration.hours(1), ...props });
  }

  /**
   * Messages in the dead-letter queue of the offboarding's one-time schedules: a final push,
   * cancellation or customer deletion that never ran (maximum over 5 minutes). Alarmed
   * (`OffboardingScheduleDeadLetterAlarm`).
   */
  public metricOffboardingScheduleDeadLetterQueueDepth(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return queueDepthMetric(this.offboardingScheduleDeadLetterQueue!, { period: Duration.minutes(5), ...props });
  }

  /** One of the handlers' own metrics (`STRIPE_METRICS`), summed over 5 minutes unless `props` say otherwise. */
  private handlerMetric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return handlerMetric(this.metricNamespace, this.serviceName, metricName, props);
  }

  private present(fn: lambda.Function | undefined, method: string, missing: string, fix: string): lambda.Function {
    if (!fn) throw new Error(`${CONSTRUCT} at ${this.node.path} has ${missing}, so ${method}() has no function to watch: ${fix}, or leave this metric out.`);
    return fn;
  }
}

/** The interval of a rate schedule (`rate(5 minutes)`), or undefined for a cron expression. */
function scheduleInterval(schedule: events.Schedule | undefined): Duration | undefined {
  if (!schedule) return DEFAULT_PUSH_SCHEDULE;
  const m = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(schedule.expressionString);
  if (!m) return undefined;
  const n = Number(m[1]);
  return m[2].startsWith('minute') ? Duration.minutes(n) : m[2].startsWith('hour') ? Duration.hours(n) : Duration.days(n);
}

function trimSlash(url: string): string {
  return Token.isUnresolved(url) ? url : url.replace(/\/+$/, '');
}

function metersOf(meters: StripeMeter[] | undefined): MeterMapping[] {
  return (meters ?? []).map((m) => ({
    metric: m.metric,
    eventName: m.eventName,
    multiplier: m.multiplier ?? '1',
    rounding: m.rounding ?? StripeMeterRounding.HALF_UP,
  }));
}

/** At synth: the HTTP API must hold the route Stripe is told to call (BillingProvider mounts it). */
function routeProblems(billing: StripeBilling, httpApi: apigwv2.IHttpApi, webhookPath: string): string[] {
  if (Token.isUnresolved(webhookPath)) return [];
  const routeKey = `POST ${webhookRoutePath(webhookPath)}`;
  const apiId = JSON.stringify(Stack.of(billing).resolve(httpApi.apiId));
  const mounted = billing.node.root.node.findAll().some((c) => c instanceof apigwv2.CfnRoute && c.routeKey === routeKey
    && JSON.stringify(Stack.of(c).resolve(c.apiId)) === apiId);
  return mounted ? [] : [`${CONSTRUCT} at ${billing.node.path}: Stripe is told to call ${routeKey} on HTTP API ${httpApi.node.path}, `
    + 'but that API has no such route: pass this StripeBilling (its `billing` in other languages) to a BillingProvider with that httpApi.'];
}

/** At synth: the REST API must hold the method Stripe is told to call (BillingProvider mounts it). */
function restMethodProblems(billing: StripeBilling, restApi: apigw.IRestApi, webhookPath: string): string[] {
  const root = restRoot(restApi);
  if (Token.isUnresolved(webhookPath) || !root) return [];
  if (existingRestMethod(root, webhookRoutePath(webhookPath), 'POST')) return [];
  return [`${CONSTRUCT} at ${billing.node.path}: Stripe is told to call POST ${webhookRoutePath(webhookPath)} on REST API ${restApi.node.path}, `
    + 'but that API has no such method: pass this StripeBilling (its `billing` in other languages) to a BillingProvider with that restApi.'];
}

function validate(scope: Construct, props: StripeBillingProps, manage: boolean, webhookPath: string): void {
  const v = new PropsValidator(scope, CONSTRUCT);
  if (!props || typeof props !== 'object') {
    v.add('props', props, 'are required', 'pass at least { apiKey: secretsmanager.Secret.fromSecretNameV2(this, \'StripeKey\', \'stripe/api-key\') }');
    v.throwIfInvalid();
  }
  const apiKey = props.apiKey as secretsmanager.ISecret | undefined;
  if (!apiKey || typeof apiKey.secretArn !== 'string') {
    v.add('apiKey', apiKey, 'must be a Secrets Manager secret holding the Stripe API key',
      'pass secretsmanager.Secret.fromSecretNameV2(this, \'StripeKey\', \'stripe/api-key\') (never the key itself)');
  }

  const meters = props.meters ?? [];
  const metrics = new Set<string>();
  const eventNames = new Set<string>();
  for (const [i, m] of meters.entries()) {
    const at = `meters[${i}]`;
    if (!Token.isUnresolved(m.metric)) {
      if (typeof m.metric !== 'string' || !isMetricName(m.metric)) v.add(`${at}.metric`, m.metric, identifierRule('metric'), 'give the metric name producers write, for example \'apiCalls\'');
      else if (metrics.has(m.metric)) v.add(`${at}.metric`, m.metric, 'is mapped twice', 'map each metric to one meter');
      metrics.add(m.metric);
    }
    if (!Token.isUnresolved(m.eventName)) {
      if (typeof m.eventName !== 'string' || !EVENT_NAME.test(m.eventName)) v.add(`${at}.eventName`, m.eventName, 'must be 1 to 100 letters, digits or _ - . :', 'give the Stripe meter event name, for example \'api_calls\'');
      else if (eventNames.has(m.eventName)) v.add(`${at}.eventName`, m.eventName, 'is used by two metrics', 'give each metric its own meter: sum them in the producer instead');
      eventNames.add(m.eventName);
    }
    if (m.displayName !== undefined && !Token.isUnresolved(m.displayName) && (m.displayName.length < 1 || m.displayName.length > 250)) {
      v.add(`${at}.displayName`, m.displayName, 'must be 1 to 250 characters', 'shorten it');
    }
    if (m.multiplier !== undefined && !Token.isUnresolved(m.multiplier)
      && (typeof m.multiplier !== 'string' || !MULTIPLIER.test(m.multiplier) || /^0+(\.0+)?$/.test(m.multiplier))) {
      v.add(`${at}.multiplier`, m.multiplier, 'must be a positive decimal string with at most 12 decimal places', 'for example \'1000\' or \'0.001\'');
    }
    if (m.rounding !== undefined && !Object.values(StripeMeterRounding).includes(m.rounding)) {
      v.add(`${at}.rounding`, m.rounding, 'is not a StripeMeterRounding', 'use StripeMeterRounding.HALF_UP, HALF_EVEN, UP or DOWN');
    }
  }
  const metersJson = JSON.stringify(metersOf(meters)).length;
  if (metersJson > MAX_METERS_JSON) v.add('meters', meters, `take ${metersJson} characters of the function environment (limit ${MAX_METERS_JSON})`, 'map fewer metrics or shorten their names');

  const prices = props.prices ?? [];
  if (prices.length > 20) v.add('prices', prices, 'has more than 20 prices, the most a Stripe subscription holds', 'subscribe tenants to at most 20 prices');
  const seenPrices = new Set<string>();
  for (const [i, p] of prices.entries()) {
    if (Token.isUnresolved(p)) continue;
    if (typeof p !== 'string' || !PRICE.test(p)) v.add(`prices[${i}]`, p, 'must be a Stripe price id', 'give the id of a price, for example \'price_1PQ2abc\' (not its amount or lookup key)');
    else if (seenPrices.has(p)) v.add(`prices[${i}]`, p, 'is listed twice', 'list each price once');
    seenPrices.add(p);
  }

  const pathProblem = webhookPathProblem(webhookPath);
  if (pathProblem) v.add('webhookPath', webhookPath, pathProblem.problem, pathProblem.fix);

  if (manage) {
    if (props.webhookSigningSecret) {
      v.add('webhookSigningSecret', props.webhookSigningSecret.node.path, 'is only used when manageStripeResources is false (the setup creates the endpoint and its secret)',
        'remove it, or set manageStripeResources: false to manage the webhook endpoint yourself');
    }
    const given = (['httpApi', 'restApi', 'webhookBaseUrl'] as const).filter((k) => props[k] !== undefined);
    if (given.length === 0) {
      v.add('httpApi', props.httpApi, 'or restApi or webhookBaseUrl is required to create the Stripe webhook endpoint',
        'pass the HTTP API or REST API you give BillingProvider (httpApi: myHttpApi, restApi: myRestApi), or set manageStripeResources: false');
    }
    if (given.length > 1) {
      v.add(given[1], given[1] === 'webhookBaseUrl' ? props.webhookBaseUrl : props[given[1]]!.node.path, `and ${given[0]} are both given`,
        'give httpApi or restApi for the API\'s own URL, or webhookBaseUrl for a custom domain or stage, not two of them');
    }
    const restApi = props.restApi;
    if (restApi !== undefined && given.length === 1) {
      if (!restRoot(restApi)) {
        v.add('restApi', restApi.node?.path ?? restApi, 'must be a REST API with its root resource (apigateway.IRestApi)',
          'pass a RestApi, or import one with RestApi.fromRestApiAttributes({ restApiId, rootResourceId }) (RestApi.fromRestApiId gives no root resource)');
      } else if (!Token.isUnresolved(webhookPath) && restUrlForPath(restApi, webhookRoutePath(webhookPath)) === undefined) {
        v.add('restApi', restApi.node.path, 'has no deployment stage, so the URL Stripe is to call is unknown',
          'give webhookBaseUrl (the stage\'s URL, for example \'https://abc123.execute-api.us-east-1.amazonaws.com/prod\') instead of restApi');
      }
    }
    const rotation = props.webhookSigningSecretRotation;
    if (rotation !== undefined && !Token.isUnresolved(rotation) && (typeof rotation !== 'string' || !ROTATION_LABEL.test(rotation))) {
      v.add('webhookSigningSecretRotation', rotation, 'must be 1 to 100 visible ASCII characters (no spaces)', 'use a label such as \'2026-12-01\', and change it to rotate');
    }
  } else if (!props.webhookSigningSecret) {
    v.add('webhookSigningSecret', props.webhookSigningSecret, 'is required when manageStripeResources is false',
      'pass the secret holding your webhook endpoint\'s signing secret (whsec_...)');
  }
  if (!manage && props.webhookSigningSecretRotation !== undefined) {
    v.add('webhookSigningSecretRotation', props.webhookSigningSecretRotation, 'is only used when manageStripeResources is true (the setup rotates the endpoint it manages)',
      'remove it, and roll the secret of your endpoint in the Stripe dashboard (store {"current","previous"} in webhookSigningSecret meanwhile)');
  }
  const base = props.webhookBaseUrl;
  if (base !== undefined && !Token.isUnresolved(base)) {
    let url: URL | undefined;
    try {
      url = new URL(base);
    } catch {
      url = undefined;
    }
    if (!url || url.protocol !== 'https:' || url.search || url.hash || url.username) {
      v.add('webhookBaseUrl', base, 'must be an https URL without query, fragment or credentials', 'for example \'https://api.example.com\' or \'https://api.example.com/prod\'');
    }
  }

  const policy = props.subscriptionCancellation;
  if (policy !== undefined && !Object.values(StripeSubscriptionCancellation).includes(policy)) {
    v.add('subscriptionCancellation', policy, 'is not a StripeSubscriptionCancellation', 'use IMMEDIATELY, IMMEDIATELY_INVOICE_USAGE or AT_PERIOD_END');
  }
  if (props.deleteCustomerOnOffboarding && policy === StripeSubscriptionCancellation.AT_PERIOD_END) {
    v.add('deleteCustomerOnOffboarding', true, 'cannot be combined with subscriptionCancellation AT_PERIOD_END: deleting a customer ends its subscriptions at once',
      'keep the customer, or cancel IMMEDIATELY or IMMEDIATELY_INVOICE_USAGE');
  }
  v.durationRange('initialLookback', props.initialLookback, Duration.hours(1), Duration.days(34), 'Stripe accepts meter events of the past 35 days: give at most Duration.days(34)');
  v.range('pushConcurrency', props.pushConcurrency, 1, 64);
  v.durationRange('processedEventRetention', props.processedEventRetention, Duration.days(4), Duration.days(365));
  v.durationRange('invoiceGracePeriod', props.invoiceGracePeriod, Duration.seconds(0), Duration.hours(72),
    'Stripe\'s invoice finalization grace period is at most 72 hours: give what your account uses (1 hour unless you changed it)');
  validateRuntime(v, props.runtime);
  v.throwIfInvalid();

  if (meters.length > 0 && !props.ingestor) {
    Annotations.of(scope).addWarningV2('cdk-saas-billing:stripeMetersWithoutIngestor',
      'meters are given but ingestor is not, so no usage is pushed: pass the ingestor (ingestor: myIngestor).');
  }
  if (props.ingestor && meters.length === 0) {
    Annotations.of(scope).addWarningV2('cdk-saas-billing:stripeIngestorWithoutMeters',
      'an ingestor is given but no meters: every window is recorded as NO_METER and nothing is billed. Map metrics to meters (meters: [...]).');
  }
}
