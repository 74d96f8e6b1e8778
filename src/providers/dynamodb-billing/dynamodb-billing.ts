import { Annotations, CfnOutput, Duration, Names, RemovalPolicy, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import {
  BILLING_TABLE, LIFECYCLE_ENV, MAX_PRICE_FRACTION_DIGITS, MAX_PRICE_INTEGER_DIGITS, METRIC_NAMESPACE, METRICS,
  POWERTOOLS_ENV, PUSH_ENV, UnitPrice, WEBHOOK_ENV, WEBHOOK_EVENTS_TABLE,
} from './contract';
import { CreateCustomerFunction } from './create-customer-function';
import { CreateUserFunction } from './create-user-function';
import { DeleteCustomerFunction } from './delete-customer-function';
import { DeleteUserFunction } from './delete-user-function';
import { PutUsageFunction } from './put-usage-function';
import { WebhookFunction } from './webhook-function';
import { IASyncFunction, IBilling, IFunctionPath, IFunctionSchedule } from '../../billing/billing';
import { ControlPlaneEvents } from '../../events/event-definition';
import { identifierRule, isMetricName } from '../../events/identifiers';
import { LibraryFunctionOptions } from '../../functions/library-functions';
import { IDataIngestorAggregator } from '../../ingestor/ingestor';
import { IBillingPlans } from '../../plans/billing-plans';
import { AlarmSet, functionErrorsMetric, handlerMetric } from '../../private/alarms';
import { BundledFunctionClass, createHandlerFunction } from '../../private/handler-function';
import { acknowledgeNag } from '../../private/nag';
import { validateRuntime } from '../../private/node-runtime';
import { PropsValidator } from '../../private/validation';
import { webhookPathProblem } from '../../private/webhook-path';

/**
 * The price of one unit of a usage metric.
 *
 * Prices are decimal strings (`'0.0025'`), not numbers, so that no binary
 * floating point drift enters a bill: the usage push multiplies the window's
 * quantity by the price exactly, and DynamoDB keeps the exact decimal amount.
 */
export interface MetricUnitPrice {
  /**
   * The metric name, exactly as producers write it in usage records (for example `apiCalls`).
   */
  readonly metric: string;

  /**
   * The price of one unit, a non-negative decimal string with at most 12 decimal
   * places (for example `'0.0025'` or `'3'`).
   */
  readonly unitPrice: string;

  /**
   * The ISO 4217 currency code of the price.
   * @default 'USD'
   */
  readonly currency?: string;
}

/**
 * Properties of a `DynamoDbBilling`.
 */
export interface DynamoDbBillingProps extends LibraryFunctionOptions {
  /**
   * The usage ingestor whose closed windows the usage push bills. The push only
   * reads usage, through the ingestor's read contract.
   * @default - no usage push (`putUsageFunction` is undefined)
   */
  readonly ingestor?: IDataIngestorAggregator;

  /**
   * The price of each metric. A window of a metric without a price gets a charge
   * line with disposition `UNPRICED` and amount 0 (kept, never dropped).
   * @default - no prices: every window is recorded as `UNPRICED`
   */
  readonly unitPrices?: MetricUnitPrice[];

  /**
   * The tenants' plans: a window is billed at the price of its metric in the plan
   * the tenant had at the window's end (free quantity, graduated tiers, and a
   * minimum charge per billing period), else at `unitPrices`. Free quantities and
   * tiers count the units of the billing period (calendar month) from its start,
   * across plan changes. See docs/plans-and-limits.md.
   * @default - no plans: every window is billed at `unitPrices`
   */
  readonly plans?: IBillingPlans;

  /**
   * When the usage push runs. A rate must be at least one minute.
   * @default - every 24 hours (the `BillingProvider` default)
   */
  readonly schedule?: events.Schedule;

  /**
   * How far back the first usage push looks for closed windows, before it has a cursor.
   * @default Duration.days(35)
   */
  readonly initialLookback?: Duration;

  /**
   * The webhook's path under `/billing/` (not the full route path): letters,
   * digits and `-._~`, segments joined by single slashes. `BillingProvider`
   * mounts the webhook as `POST /billing/<webhookPath>`.
   * @default 'webhook'
   */
  readonly webhookPath?: string;

  /**
   * The secret holding the webhook signing secret: its `SecretString` is either
   * the signing secret itself, or JSON `{"current": "...", "previous": "..."}`
   * while a rotation is in progress.
   * @default - a secret is created with a random 64-character value
   */
  readonly webhookSecret?: secretsmanager.ISecret;

  /**
   * The request header that carries the signature (`t=<unix seconds>,v1=<hex>`).
   * Use `stripe-signature` to receive Stripe's own webhook calls.
   * @default 'x-billing-signature'
   */
  readonly signatureHeaderName?: string;

  /**
   * How far a signature's timestamp may be from the time the webhook receives
   * it (either side). Between 1 second and 1 hour.
   * @default Duration.minutes(5)
   */
  readonly signatureTolerance?: Duration;

  /**
   * The largest webhook body accepted, in bytes after base64 decoding.
   *
   * Larger requests get 413. Between 1024 and 6291456.
   * @default 262144 (256 KiB)
   */
  readonly maxWebhookBodyBytes?: number;

  /**
   * How long a processed webhook event id is remembered, so that a replay is ignored.
   * At least one day.
   * @default Duration.days(30)
   */
  readonly processedEventRetention?: Duration;

  /**
   * The bus the webhook puts the billing success and failure events on.
   * Give `BillingProvider` the same bus: it refuses another.
   * @default - the account's default event bus
   */
  readonly eventBus?: events.IEventBus;

  /**
   * The names of the billing success and failure events the webhook emits.
   * Give `BillingProvider` the same value: it refuses others.
   * @default ControlPlaneEvents.SBT_AWS
   */
  readonly controlPlaneEvents?: ControlPlaneEvents;

  /**
   * What happens to the tables, a created secret and the functions' log groups
   * when they leave the stack.
   *
   * The tables: customers, users and charge lines, and processed webhook events.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;

  /**
   * How long the functions' logs are kept.
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;

  /**
   * Actions of the construct's alarms (see `alarms`), for example an SNS topic action.
   * @default - the alarms have no action
   */
  readonly alarmActions?: cloudwatch.IAlarmAction[];
}

const PRICE = new RegExp(`^\\d{1,${MAX_PRICE_INTEGER_DIGITS}}(\\.\\d{1,${MAX_PRICE_FRACTION_DIGITS}})?$`);
const CURRENCY = /^[A-Z]{3}$/;
const HEADER_NAME = /^[A-Za-z0-9-]{1,64}$/;
/** Lambda environment variables total 4 KB; keep the price list well below. */
const MAX_PRICES_JSON = 2500;
/** The webhook's timeout; its claims on event ids last longer (the lease), so a live claimant never loses one. */
const WEBHOOK_TIMEOUT = Duration.seconds(15);
const WEBHOOK_CLAIM_LEASE = WEBHOOK_TIMEOUT.plus(Duration.seconds(15));

/**
 * A complete billing integration that needs no outside account: customers,
 * users and priced usage kept in DynamoDB, and a signed webhook that turns
 * payment events into billing events on the bus.
 *
 * Pass it (or its `billing` property) as `BillingProvider`'s `billing`:
 *
 * - `createCustomerFunction` / `deleteCustomerFunction`: one customer per tenant
 *   (a conditional put), closed on offboarding with its users, reopened by a
 *   newer onboarding; nothing deleted.
 * - `createUserFunction` / `deleteUserFunction`: users under their customer, idempotent.
 * - `putUsageFunction` (with `ingestor`): prices the ingestor's closed windows
 *   into charge lines per customer and billing period, exactly once, and keeps
 *   a reconciliation record per tenant, metric and period.
 * - `webhookFunction`: `POST /billing/<webhookPath>`, HMAC-SHA256 signature
 *   (`t=...,v1=...`) with the secret in Secrets Manager, one event per event id.
 *
 * In TypeScript the construct itself satisfies `IBilling`; in other languages
 * pass `dynamoDbBilling.billing`.
 */
export class DynamoDbBilling extends Construct {
  /** The same functions as this construct's members, as an `IBilling` value for every jsii language. */
  public readonly billing: IBilling;

  /** Creates the customer of a tenant on onboarding (or reopens it). */
  public readonly createCustomerFunction: IASyncFunction;
  /** Closes the customer of a tenant and its users on offboarding. */
  public readonly deleteCustomerFunction: IASyncFunction;
  /** Keeps a user under its customer. */
  public readonly createUserFunction: IASyncFunction;
  /** Marks a user deleted. */
  public readonly deleteUserFunction: IASyncFunction;
  /** The usage ingestor the push reads, when given (a member of `IBilling`). */
  public readonly ingestor?: IDataIngestorAggregator;
  /** The scheduled usage push, when an ingestor is given. */
  public readonly putUsageFunction?: IFunctionSchedule;
  /** The signed webhook, mounted by `BillingProvider` as `POST /billing/<path>`. */
  public readonly webhookFunction: IFunctionPath;
  /** The bus the webhook emits on (`BillingProvider` refuses another one). */
  public readonly eventBus: events.IEventBus;
  /** The event names the webhook emits (`BillingProvider` refuses others). */
  public readonly controlPlaneEvents: ControlPlaneEvents;

  /** Customers, users, charge lines, period totals, reconciliation records and the push cursor (`pk`, `sk`). */
  public readonly billingTable: dynamodb.ITable;
  /** Processed webhook event ids (`pk`), expiring through TTL on `expiresAt`. */
  public readonly webhookEventsTable: dynamodb.ITable;
  /** The webhook signing secret. */
  public readonly webhookSecret: secretsmanager.ISecret;
  /**
   * The construct's alarms: webhook errors (HTTP 5xx), and with an ingestor,
   * usage push errors and usage of closed customers left unbilled.
   */
  public readonly alarms: cloudwatch.Alarm[];

  /** The functions' `service` metric dimension (and log key). */
  private readonly serviceName: string;
  private readonly webhookHandler: lambda.Function;
  private readonly putUsageHandler?: lambda.Function;

  constructor(scope: Construct, id: string, props: DynamoDbBillingProps = {}) {
    super(scope, id);
    validateProps(this, props);
    if (props.plans && !props.ingestor) {
      Annotations.of(this).addWarningV2('cdk-saas-billing:plansWithoutIngestor',
        'plans are given but ingestor is not, so there is no usage push to price: pass the ingestor (ingestor: myIngestor).');
    }
    if (props.unitPrices?.length && !props.ingestor) {
      Annotations.of(this).addWarningV2('cdk-saas-billing:unitPricesWithoutIngestor',
        'unitPrices are given but ingestor is not, so there is no usage push to price: pass the ingestor (ingestor: myIngestor).');
    }

    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const cpe = props.controlPlaneEvents ?? ControlPlaneEvents.SBT_AWS;
    const eventBus = props.eventBus ?? events.EventBus.fromEventBusName(this, 'DefaultEventBus', 'default');
    const alarms = new AlarmSet(this, props.alarmActions);
    this.serviceName = Names.uniqueResourceName(this, { maxLength: 64 });

    const billingTable = this.table('BillingTable', BILLING_TABLE.partitionKey, removalPolicy, { sortKey: BILLING_TABLE.sortKey });
    const webhookEventsTable = this.table('WebhookEventsTable', WEBHOOK_EVENTS_TABLE.partitionKey, removalPolicy,
      { ttlAttribute: WEBHOOK_EVENTS_TABLE.ttlAttribute });
    this.billingTable = billingTable;
    this.webhookEventsTable = webhookEventsTable;
    this.webhookSecret = props.webhookSecret ?? this.createSecret(removalPolicy);

    const fn = <T extends lambda.Function>(name: string, FunctionClass: BundledFunctionClass<T>, description: string,
      timeout: Duration, environment: Record<string, string>, memorySize?: number) =>
      createHandlerFunction(this, name, FunctionClass, {
        description: `cdk-saas-billing DynamoDbBilling: ${description}`,
        timeout,
        memorySize,
        logRetention: props.logRetention,
        removalPolicy,
        runtime: props.runtime,
        environment: { [POWERTOOLS_ENV.SERVICE_NAME]: this.serviceName, [POWERTOOLS_ENV.METRICS_NAMESPACE]: METRIC_NAMESPACE, ...environment },
      });
    const lifecycle = { [LIFECYCLE_ENV.BILLING_TABLE_NAME]: billingTable.tableName };

    const createCustomer = fn('CreateCustomer', CreateCustomerFunction,
      'creates (or reopens) the customer of a tenant on its onboarding', Duration.seconds(30), lifecycle);
    billingTable.grant(createCustomer, 'dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:UpdateItem');

    const deleteCustomer = fn('DeleteCustomer', DeleteCustomerFunction,
      'closes the customer of a tenant and its users on its offboarding', Duration.minutes(5), lifecycle);
    billingTable.grant(deleteCustomer, 'dynamodb:UpdateItem', 'dynamodb:Query');

    const createUser = fn('CreateUser', CreateUserFunction, 'keeps a tenant user under its customer', Duration.seconds(30), lifecycle);
    billingTable.grant(createUser, 'dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:UpdateItem');

    const deleteUser = fn('DeleteUser', DeleteUserFunction, 'marks a tenant user deleted', Duration.seconds(30), lifecycle);
    billingTable.grant(deleteUser, 'dynamodb:UpdateItem');

    const webhook = fn('Webhook', WebhookFunction,
      'verifies the billing system\'s signed webhook calls and emits billing success and failure events', WEBHOOK_TIMEOUT, {
        [WEBHOOK_ENV.WEBHOOK_EVENTS_TABLE_NAME]: webhookEventsTable.tableName,
        [WEBHOOK_ENV.WEBHOOK_SECRET_ARN]: this.webhookSecret.secretArn,
        [WEBHOOK_ENV.SIGNATURE_HEADER_NAME]: (props.signatureHeaderName ?? 'x-billing-signature').toLowerCase(),
        [WEBHOOK_ENV.SIGNATURE_TOLERANCE_SECONDS]: String((props.signatureTolerance ?? Duration.minutes(5)).toSeconds()),
        [WEBHOOK_ENV.MAX_WEBHOOK_BODY_BYTES]: String(props.maxWebhookBodyBytes ?? 262_144),
        [WEBHOOK_ENV.PROCESSED_EVENT_RETENTION_SECONDS]: String((props.processedEventRetention ?? Duration.days(30)).toSeconds()),
        [WEBHOOK_ENV.CLAIM_LEASE_SECONDS]: String(WEBHOOK_CLAIM_LEASE.toSeconds()),
        [WEBHOOK_ENV.SECRET_CACHE_SECONDS]: '60',
        [WEBHOOK_ENV.EVENT_BUS_ARN]: eventBus.eventBusArn,
        [WEBHOOK_ENV.BILLING_SUCCESS_SOURCE]: cpe.billingSuccess.source,
        [WEBHOOK_ENV.BILLING_SUCCESS_DETAIL_TYPE]: cpe.billingSuccess.detailType,
        [WEBHOOK_ENV.BILLING_FAILURE_SOURCE]: cpe.billingFailure.source,
        [WEBHOOK_ENV.BILLING_FAILURE_DETAIL_TYPE]: cpe.billingFailure.detailType,
      });
    webhookEventsTable.grant(webhook, 'dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:UpdateItem');
    this.webhookSecret.grantRead(webhook);
    eventBus.grantPutEventsTo(webhook);
    this.webhookHandler = webhook;
    alarms.add('WebhookErrorsAlarm', this.metricWebhookErrors(),
      { description: 'webhook calls failed (HTTP 5xx); the sender retries them. Read the Webhook function\'s error logs' });

    let putUsage: lambda.Function | undefined;
    if (props.ingestor) {
      putUsage = fn('PutUsage', PutUsageFunction, 'prices the usage windows closed since its last run into charge lines', Duration.minutes(15), {
        [PUSH_ENV.BILLING_TABLE_NAME]: billingTable.tableName,
        [PUSH_ENV.UNIT_PRICES]: JSON.stringify(pricesOf(props.unitPrices)),
        [PUSH_ENV.INITIAL_LOOKBACK_SECONDS]: String((props.initialLookback ?? Duration.days(35)).toSeconds()),
      }, 512);
      // Query: the reconciliation records of a period, to set them FINAL.
      billingTable.grant(putUsage, 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:ConditionCheckItem', 'dynamodb:Query');
      // The usage read contract: read access and the environment of UsageReader.fromEnvironment().
      props.ingestor.bindUsageReader(putUsage);
      // The plan read contract: each tenant's plan at each window's end.
      props.plans?.bindPlanReader(putUsage);
      this.putUsageHandler = putUsage;
      alarms.add('PutUsageErrorsAlarm', this.metricPutUsageErrors(),
        { description: 'the usage push failed (a refused unit price included); the next run resumes from its cursor. Read the PutUsage function\'s error logs' });
      alarms.add('UsageAfterCloseAlarm', this.metricWindowsNotBilledAfterClose(), {
        description: 'usage of a closed customer was recorded as NOT_BILLED_AFTER_CLOSE: the tenant still produces usage after its offboarding, '
          + 'or was onboarded again by an event older than its offboarding. Query its charge lines',
      });
    }

    new CfnOutput(this, 'BillingTableName', { description: 'DynamoDB table of customers, users, charge lines and period totals', value: billingTable.tableName });
    new CfnOutput(this, 'WebhookSecretArn', { description: 'Secrets Manager secret holding the webhook signing secret', value: this.webhookSecret.secretArn });

    this.alarms = alarms.alarms;
    this.createCustomerFunction = { handler: createCustomer };
    this.deleteCustomerFunction = { handler: deleteCustomer };
    this.createUserFunction = { handler: createUser };
    this.deleteUserFunction = { handler: deleteUser };
    this.ingestor = props.ingestor;
    this.putUsageFunction = putUsage ? { handler: putUsage, schedule: props.schedule } : undefined;
    this.webhookFunction = { path: props.webhookPath ?? 'webhook', handler: webhook };
    this.eventBus = eventBus;
    this.controlPlaneEvents = cpe;
    this.billing = {
      createCustomerFunction: this.createCustomerFunction,
      deleteCustomerFunction: this.deleteCustomerFunction,
      createUserFunction: this.createUserFunction,
      deleteUserFunction: this.deleteUserFunction,
      ingestor: this.ingestor,
      putUsageFunction: this.putUsageFunction,
      webhookFunction: this.webhookFunction,
      eventBus: this.eventBus,
      controlPlaneEvents: this.controlPlaneEvents,
    };
  }

  /**
   * Grants read access to customers, users, charge lines and period totals
   * (for example to an invoicing job or a billing dashboard).
   *
   * @param grantee the reader
   */
  public grantReadCharges(grantee: iam.IGrantable): iam.Grant {
    return this.billingTable.grantReadData(grantee);
  }

  /** Windows the push priced into a billed charge line (`WindowsBilled`, sum over 5 minutes). */
  public metricWindowsBilled(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(METRICS.WINDOWS_BILLED, props);
  }

  /** Windows of a metric without a price: charge lines with amount 0 (`WindowsUnpriced`, sum over 5 minutes). */
  public metricWindowsUnpriced(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(METRICS.WINDOWS_UNPRICED, props);
  }

  /**
   * Windows during the whole of which their customer was closed: charge lines with
   * amount 0 (`WindowsNotBilledAfterClose`, sum over 5 minutes). Alarmed (`UsageAfterCloseAlarm`).
   */
  public metricWindowsNotBilledAfterClose(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(METRICS.WINDOWS_NOT_BILLED_AFTER_CLOSE, props);
  }

  /** Closed customers reopened by an onboarding newer than their closing (`CustomersReopened`, sum over 5 minutes). */
  public metricCustomersReopened(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(METRICS.CUSTOMERS_REOPENED, props);
  }

  /**
   * Lifecycle events older than the customer's latest state change, ignored
   * (`StaleLifecycleEvents`, sum over 5 minutes).
   */
  public metricStaleLifecycleEvents(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric(METRICS.STALE_LIFECYCLE_EVENTS, props);
  }

  /** Errors of the webhook function: calls answered with HTTP 5xx (sum over 5 minutes). Alarmed (`WebhookErrorsAlarm`). */
  public metricWebhookErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return functionErrorsMetric(this.webhookHandler, props);
  }

  /**
   * Errors of the usage push function (sum over 5 minutes). Alarmed (`PutUsageErrorsAlarm`).
   * Only with an `ingestor`: without one there is no push, and this method throws.
   */
  public metricPutUsageErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    if (!this.putUsageHandler) {
      throw new Error(`DynamoDbBilling at ${this.node.path} has no usage push (no ingestor was given), so metricPutUsageErrors() has no function to watch: `
        + 'pass an ingestor, or leave this metric out.');
    }
    return functionErrorsMetric(this.putUsageHandler, props);
  }

  /** One of the functions' own metrics (`METRICS`), summed over 5 minutes unless `props` say otherwise. */
  private handlerMetric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return handlerMetric(METRIC_NAMESPACE, this.serviceName, metricName, props);
  }

  private table(id: string, partitionKey: string, removalPolicy: RemovalPolicy, opts: { sortKey?: string; ttlAttribute?: string }): dynamodb.Table {
    return new dynamodb.Table(this, id, {
      partitionKey: { name: partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: opts.sortKey ? { name: opts.sortKey, type: dynamodb.AttributeType.STRING } : undefined,
      timeToLiveAttribute: opts.ttlAttribute,
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: removalPolicy === RemovalPolicy.RETAIN,
      removalPolicy,
    });
  }

  private createSecret(removalPolicy: RemovalPolicy): secretsmanager.ISecret {
    const secret = new secretsmanager.Secret(this, 'WebhookSecret', {
      description: `cdk-saas-billing: webhook signing secret of ${this.node.path}`,
      generateSecretString: { passwordLength: 64, excludePunctuation: true, includeSpace: false },
      removalPolicy,
    });
    acknowledgeNag(secret, 'AwsSolutions-SMG4',
      'The signing secret is shared with the billing system that signs the webhook calls; it is rotated together with that system '
      + '(store {"current","previous"} while both are live), which a rotation Lambda alone cannot do.');
    return secret;
  }
}

function pricesOf(unitPrices: MetricUnitPrice[] | undefined): UnitPrice[] {
  return (unitPrices ?? []).map((p) => ({ metric: p.metric, unitPrice: p.unitPrice, currency: p.currency ?? 'USD' }));
}

function validateProps(scope: Construct, props: DynamoDbBillingProps): void {
  const v = new PropsValidator(scope, 'DynamoDbBilling');
  const seen = new Set<string>();
  for (const [i, p] of (props.unitPrices ?? []).entries()) {
    const at = `unitPrices[${i}]`;
    if (Token.isUnresolved(p.metric) || Token.isUnresolved(p.unitPrice)) continue;
    if (typeof p.metric !== 'string' || !isMetricName(p.metric)) {
      v.add(`${at}.metric`, p.metric, identifierRule('metric'), 'use the metric name exactly as producers write it, for example \'apiCalls\'');
    } else if (seen.has(p.metric)) {
      v.add(`${at}.metric`, p.metric, 'is priced twice', 'give each metric one price');
    }
    seen.add(p.metric);
    if (typeof p.unitPrice !== 'string' || !PRICE.test(p.unitPrice)) {
      v.add(`${at}.unitPrice`, p.unitPrice, `must be a non-negative decimal string with at most ${MAX_PRICE_FRACTION_DIGITS} decimal places`,
        'write the price as a string, for example \'0.0025\'');
    }
    if (p.currency !== undefined && !Token.isUnresolved(p.currency) && !CURRENCY.test(p.currency)) {
      v.add(`${at}.currency`, p.currency, 'must be an ISO 4217 code in capitals', 'for example \'USD\' or \'EUR\'');
    }
  }
  const pricesJson = JSON.stringify(pricesOf(props.unitPrices)).length;
  if (pricesJson > MAX_PRICES_JSON) {
    v.add('unitPrices', props.unitPrices, `take ${pricesJson} characters of the function environment (limit ${MAX_PRICES_JSON})`, 'price fewer metrics or shorten their names');
  }
  v.durationRange('initialLookback', props.initialLookback, Duration.hours(1), Duration.days(400));
  if (props.webhookPath !== undefined) {
    const problem = webhookPathProblem(props.webhookPath);
    if (problem) v.add('webhookPath', props.webhookPath, problem.problem, problem.fix);
  }
  if (props.signatureHeaderName !== undefined && !Token.isUnresolved(props.signatureHeaderName) && !HEADER_NAME.test(props.signatureHeaderName)) {
    v.add('signatureHeaderName', props.signatureHeaderName, 'must be 1 to 64 letters, digits or hyphens', 'for example \'x-billing-signature\' or \'stripe-signature\'');
  }
  v.durationRange('signatureTolerance', props.signatureTolerance, Duration.seconds(1), Duration.hours(1));
  v.range('maxWebhookBodyBytes', props.maxWebhookBodyBytes, 1024, 6_291_456, { unit: 'bytes' });
  const retention = props.processedEventRetention;
  if (retention && !retention.isUnresolved() && retention.toSeconds() < 86_400) {
    v.add('processedEventRetention', retention, 'must be at least 1 day', 'a sender may retry an event for days: give Duration.days(30) or more');
  }
  validateRuntime(v, props.runtime);
  v.throwIfInvalid();
}
