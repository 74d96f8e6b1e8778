import { Annotations, Duration, RemovalPolicy, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { CreateCustomerFunction } from './dynamodb-billing/create-customer-function';
import { CreateUserFunction } from './dynamodb-billing/create-user-function';
import { DeleteCustomerFunction } from './dynamodb-billing/delete-customer-function';
import { DeleteUserFunction } from './dynamodb-billing/delete-user-function';
import { PutUsageFunction } from './dynamodb-billing/put-usage-function';
import { WebhookFunction } from './dynamodb-billing/webhook-function';
import { IASyncFunction, IBilling, IFunctionPath, IFunctionSchedule } from '../billing/billing';
import { ControlPlaneEvents } from '../events/event-definition';
import { IDataIngestorAggregator } from '../ingestor/ingestor';
import { acknowledgeNag } from '../private/nag';

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
export interface DynamoDbBillingProps {
  /**
   * The usage ingestor whose closed windows the usage push bills. The push only
   * reads its aggregate table (`grantReadAggregates`).
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
   * When the usage push runs. A rate must be at least one minute.
   * @default - every 24 hours (the `BillingProvider` default)
   */
  readonly schedule?: events.Schedule;

  /**
   * How far back the first usage push looks for closed windows, before it has a watermark.
   * @default Duration.days(35)
   */
  readonly initialLookback?: Duration;

  /**
   * The webhook's path under `/billing/`: letters, digits and `-._~`, segments
   * joined by single slashes.
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
   * How far, in seconds, a signature's timestamp may be from the time the webhook
   * receives it (either side). Between 1 and 3600.
   * @default 300
   */
  readonly signatureToleranceSeconds?: number;

  /**
   * The largest webhook body accepted, in bytes after base64 decoding; larger
   * requests get 413. Between 1024 and 6291456.
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
   * @default - the account's default event bus
   */
  readonly eventBus?: events.IEventBus;

  /**
   * The names of the billing success and failure events the webhook emits.
   * (The triggers of the lifecycle functions come from `BillingProvider`.)
   * @default ControlPlaneEvents.SBT_AWS
   */
  readonly controlPlaneEvents?: ControlPlaneEvents;

  /**
   * What happens to the tables (customers, users, charge lines; processed
   * webhook events) and to a created secret when they leave the stack.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;

  /**
   * How long the functions' logs are kept.
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;

  /**
   * Actions of the alarms on webhook and usage push errors.
   * @default - the alarms have no action
   */
  readonly alarmActions?: cloudwatch.IAlarmAction[];
}

const WEBHOOK_PATH = /^[A-Za-z0-9\-._~]+(\/[A-Za-z0-9\-._~]+)*$/;
const PRICE = /^\d{1,24}(\.\d{1,12})?$/;
const CURRENCY = /^[A-Z]{3}$/;
const HEADER_NAME = /^[A-Za-z0-9-]{1,64}$/;
const METRIC = /^[^\s"\\]{1,128}$/;
/** Lambda environment variables total 4 KB; keep the price list well below. */
const MAX_PRICES_JSON = 2500;

/**
 * A complete billing integration that needs no outside account: customers,
 * users and priced usage kept in DynamoDB, and a signed webhook that turns
 * payment events into billing events on the bus.
 *
 * Pass it (or its `billing` property) as `BillingProvider`'s `billing`:
 *
 * - `createCustomerFunction` / `deleteCustomerFunction`: one customer per tenant
 *   (a conditional put), closed on offboarding with its users; nothing deleted.
 * - `createUserFunction` / `deleteUserFunction`: users under their customer, idempotent.
 * - `putUsageFunction` (with `ingestor`): prices the ingestor's closed windows
 *   into charge lines per customer and billing period, exactly once.
 * - `webhookFunction`: `POST /billing/<webhookPath>`, HMAC-SHA256 signature
 *   (`t=...,v1=...`) with the secret in Secrets Manager, replay protection.
 *
 * In TypeScript the construct itself satisfies `IBilling`; in other languages
 * pass `dynamoDbBilling.billing`.
 */
export class DynamoDbBilling extends Construct {
  /** The same functions as this construct's members, as an `IBilling` value for every jsii language. */
  public readonly billing: IBilling;

  /** Creates the customer of a tenant on onboarding. */
  public readonly createCustomerFunction: IASyncFunction;
  /** Closes the customer of a tenant and its users on offboarding. */
  public readonly deleteCustomerFunction: IASyncFunction;
  /** Keeps a user under its customer. */
  public readonly createUserFunction: IASyncFunction;
  /** Marks a user deleted. */
  public readonly deleteUserFunction: IASyncFunction;
  /** The usage ingestor the push reads, when given. */
  public readonly ingestor?: IDataIngestorAggregator;
  /** The scheduled usage push, when an ingestor is given. */
  public readonly putUsageFunction?: IFunctionSchedule;
  /** The signed webhook, mounted by `BillingProvider` as `POST /billing/<path>`. */
  public readonly webhookFunction: IFunctionPath;

  /** Customers, users, charge lines, period totals and the push watermark (`pk`, `sk`). */
  public readonly billingTable: dynamodb.ITable;
  /** Processed webhook event ids (`pk`), expiring through TTL on `expiresAt`. */
  public readonly webhookEventsTable: dynamodb.ITable;
  /** The webhook signing secret. */
  public readonly webhookSecret: secretsmanager.ISecret;
  /** The bus the webhook emits billing events on. */
  public readonly eventBus: events.IEventBus;
  /** The alarms on webhook and usage push errors. */
  public readonly alarms: cloudwatch.IAlarm[];

  constructor(scope: Construct, id: string, props: DynamoDbBillingProps = {}) {
    super(scope, id);
    validateProps(props);
    if (props.unitPrices?.length && !props.ingestor) {
      Annotations.of(this).addWarningV2('cdk-saas-billing:unitPricesWithoutIngestor',
        'unitPrices are given but ingestor is not, so there is no usage push to price: pass the ingestor (ingestor: myIngestor).');
    }

    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const retain = removalPolicy === RemovalPolicy.RETAIN;
    const cpe = props.controlPlaneEvents ?? ControlPlaneEvents.SBT_AWS;
    this.eventBus = props.eventBus ?? events.EventBus.fromEventBusName(this, 'DefaultEventBus', 'default');
    this.alarms = [];

    const billingTable = new dynamodb.Table(this, 'BillingTable', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: retain,
      removalPolicy,
    });
    this.billingTable = billingTable;

    const webhookEventsTable = new dynamodb.Table(this, 'WebhookEventsTable', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: 'expiresAt',
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: retain,
      removalPolicy,
    });
    this.webhookEventsTable = webhookEventsTable;

    if (props.webhookSecret) {
      this.webhookSecret = props.webhookSecret;
    } else {
      const secret = new secretsmanager.Secret(this, 'WebhookSecret', {
        description: `cdk-saas-billing: webhook signing secret of ${this.node.path}`,
        generateSecretString: { passwordLength: 64, excludePunctuation: true, includeSpace: false },
        removalPolicy,
      });
      acknowledgeNag(secret, 'AwsSolutions-SMG4',
        'The signing secret is shared with the billing system that signs the webhook calls; it is rotated together with that system '
        + '(store {"current","previous"} while both are live), which a rotation Lambda alone cannot do.');
      this.webhookSecret = secret;
    }

    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_YEAR;
    const common = { BILLING_TABLE_NAME: billingTable.tableName };
    const fn = <T extends lambda.Function>(
      name: string,
      ctor: new (s: Construct, i: string, p: lambda.FunctionOptions) => T,
      options: { timeout: Duration; environment: Record<string, string>; memorySize?: number },
    ): T => {
      const logGroup = new logs.LogGroup(this, `${name}Logs`, { retention: logRetention });
      // An explicit role: logs to its own log group only, no managed policy.
      const role = new iam.Role(this, `${name}Role`, {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
        description: `cdk-saas-billing: ${name} function of ${this.node.path}`,
      });
      logGroup.grantWrite(role);
      return new ctor(this, name, {
        role,
        logGroup,
        timeout: options.timeout,
        memorySize: options.memorySize ?? 256,
        environment: {
          POWERTOOLS_SERVICE_NAME: 'cdk-saas-billing-dynamodb',
          POWERTOOLS_LOG_LEVEL: 'INFO',
          ...options.environment,
        },
      });
    };

    const createCustomer = fn('CreateCustomer', CreateCustomerFunction, { timeout: Duration.seconds(30), environment: common });
    billingTable.grant(createCustomer, 'dynamodb:PutItem', 'dynamodb:GetItem');

    const deleteCustomer = fn('DeleteCustomer', DeleteCustomerFunction, { timeout: Duration.minutes(5), environment: common });
    billingTable.grant(deleteCustomer, 'dynamodb:UpdateItem', 'dynamodb:Query');

    const createUser = fn('CreateUser', CreateUserFunction, { timeout: Duration.seconds(30), environment: common });
    billingTable.grant(createUser, 'dynamodb:PutItem');

    const deleteUser = fn('DeleteUser', DeleteUserFunction, { timeout: Duration.seconds(30), environment: common });
    billingTable.grant(deleteUser, 'dynamodb:UpdateItem');

    const webhook = fn('Webhook', WebhookFunction, {
      timeout: Duration.seconds(15),
      environment: {
        WEBHOOK_EVENTS_TABLE_NAME: webhookEventsTable.tableName,
        // The secret's ARN, not its value: the handler reads the value at run time.
        WEBHOOK_SECRET_ARN: this.webhookSecret.secretArn,
        SIGNATURE_HEADER: (props.signatureHeaderName ?? 'x-billing-signature').toLowerCase(),
        SIGNATURE_TOLERANCE_SECONDS: String(props.signatureToleranceSeconds ?? 300),
        MAX_BODY_BYTES: String(props.maxWebhookBodyBytes ?? 262_144),
        PROCESSED_EVENT_RETENTION_SECONDS: String((props.processedEventRetention ?? Duration.days(30)).toSeconds()),
        SECRET_CACHE_SECONDS: '60',
        EVENT_BUS_NAME: this.eventBus.eventBusArn,
        BILLING_EVENT_SOURCE: cpe.billingSuccess.source,
        BILLING_SUCCESS_DETAIL_TYPE: cpe.billingSuccess.detailType,
        BILLING_FAILURE_DETAIL_TYPE: cpe.billingFailure.detailType,
      },
    });
    if (cpe.billingFailure.source !== cpe.billingSuccess.source) {
      webhook.addEnvironment('BILLING_FAILURE_EVENT_SOURCE', cpe.billingFailure.source);
    }
    webhookEventsTable.grant(webhook, 'dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:UpdateItem');
    this.webhookSecret.grantRead(webhook);
    this.eventBus.grantPutEventsTo(webhook);
    this.alarms.push(this.errorAlarm('Webhook', webhook, 'webhook calls failed (HTTP 5xx); the sender retries them', props.alarmActions));

    let putUsage: lambda.Function | undefined;
    if (props.ingestor) {
      putUsage = fn('PutUsage', PutUsageFunction, {
        timeout: Duration.minutes(15),
        memorySize: 512,
        environment: {
          ...common,
          UNIT_PRICES: JSON.stringify(pricesOf(props.unitPrices)),
          INITIAL_LOOKBACK_SECONDS: String((props.initialLookback ?? Duration.days(35)).toSeconds()),
        },
      });
      billingTable.grant(putUsage, 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:ConditionCheckItem');
      // The usage read contract: read access and the UsageReader's environment.
      props.ingestor.bindUsageReader(putUsage);
      this.alarms.push(this.errorAlarm('PutUsage', putUsage, 'the usage push failed; the next run resumes from its watermark', props.alarmActions));
    }

    this.createCustomerFunction = { handler: createCustomer };
    this.deleteCustomerFunction = { handler: deleteCustomer };
    this.createUserFunction = { handler: createUser };
    this.deleteUserFunction = { handler: deleteUser };
    this.ingestor = props.ingestor;
    this.putUsageFunction = putUsage ? { handler: putUsage, schedule: props.schedule } : undefined;
    this.webhookFunction = { path: props.webhookPath ?? 'webhook', handler: webhook };
    this.billing = {
      createCustomerFunction: this.createCustomerFunction,
      deleteCustomerFunction: this.deleteCustomerFunction,
      createUserFunction: this.createUserFunction,
      deleteUserFunction: this.deleteUserFunction,
      ingestor: this.ingestor,
      putUsageFunction: this.putUsageFunction,
      webhookFunction: this.webhookFunction,
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

  private errorAlarm(name: string, handler: lambda.Function, what: string, actions?: cloudwatch.IAlarmAction[]): cloudwatch.Alarm {
    const alarm = handler.metricErrors({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }).createAlarm(this, `${name}ErrorsAlarm`, {
      alarmDescription: `cdk-saas-billing: ${what} (${this.node.path})`,
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    for (const action of actions ?? []) alarm.addAlarmAction(action);
    return alarm;
  }
}

function pricesOf(unitPrices: MetricUnitPrice[] | undefined) {
  return (unitPrices ?? []).map((p) => ({ metric: p.metric, unitPrice: p.unitPrice, currency: p.currency ?? 'USD' }));
}

function validateProps(props: DynamoDbBillingProps): void {
  const errors: string[] = [];
  const seen = new Set<string>();
  for (const [i, p] of (props.unitPrices ?? []).entries()) {
    if (Token.isUnresolved(p.metric) || Token.isUnresolved(p.unitPrice)) continue;
    if (!METRIC.test(p.metric)) {
      errors.push(`unitPrices[${i}].metric '${p.metric}' must be 1 to 128 characters without spaces, quotes or backslashes`);
    }
    if (seen.has(p.metric)) errors.push(`unitPrices[${i}].metric '${p.metric}' is priced twice: give each metric one price`);
    seen.add(p.metric);
    if (typeof p.unitPrice !== 'string' || !PRICE.test(p.unitPrice)) {
      errors.push(`unitPrices[${i}].unitPrice '${String(p.unitPrice)}' for '${p.metric}' must be a non-negative decimal string `
        + 'with at most 12 decimal places, for example \'0.0025\'');
    }
    if (p.currency !== undefined && !Token.isUnresolved(p.currency) && !CURRENCY.test(p.currency)) {
      errors.push(`unitPrices[${i}].currency '${p.currency}' for '${p.metric}' must be an ISO 4217 code such as 'USD'`);
    }
  }
  if (JSON.stringify(pricesOf(props.unitPrices)).length > MAX_PRICES_JSON) {
    errors.push(`unitPrices take ${JSON.stringify(pricesOf(props.unitPrices)).length} characters of the function environment `
      + `(limit ${MAX_PRICES_JSON}): price fewer metrics or shorten their names`);
  }
  if (props.initialLookback && !props.initialLookback.isUnresolved()) {
    const s = props.initialLookback.toSeconds();
    if (s < 3600 || s > 400 * 86400) errors.push(`initialLookback must be between 1 hour and 400 days (given ${s} seconds)`);
  }
  if (props.webhookPath !== undefined && !Token.isUnresolved(props.webhookPath) && !WEBHOOK_PATH.test(props.webhookPath)) {
    errors.push(`webhookPath '${props.webhookPath}' must be segments of letters, digits and -._~ joined by single slashes, `
      + 'without a leading or trailing slash (for example \'webhook\' or \'payments/events\')');
  }
  if (props.signatureHeaderName !== undefined && !Token.isUnresolved(props.signatureHeaderName) && !HEADER_NAME.test(props.signatureHeaderName)) {
    errors.push(`signatureHeaderName '${props.signatureHeaderName}' must be 1 to 64 letters, digits or hyphens (for example 'x-billing-signature')`);
  }
  const tol = props.signatureToleranceSeconds;
  if (tol !== undefined && !Token.isUnresolved(tol) && (!Number.isInteger(tol) || tol < 1 || tol > 3600)) {
    errors.push(`signatureToleranceSeconds must be an integer between 1 and 3600 (given ${tol})`);
  }
  const max = props.maxWebhookBodyBytes;
  if (max !== undefined && !Token.isUnresolved(max) && (!Number.isInteger(max) || max < 1024 || max > 6_291_456)) {
    errors.push(`maxWebhookBodyBytes must be an integer between 1024 and 6291456 (given ${max})`);
  }
  if (props.processedEventRetention && !props.processedEventRetention.isUnresolved() && props.processedEventRetention.toSeconds() < 86400) {
    errors.push(`processedEventRetention must be at least 1 day (given ${props.processedEventRetention.toSeconds()} seconds): `
      + 'a sender may retry an event for days');
  }
  if (errors.length) {
    throw new Error(`Invalid DynamoDbBilling props:\n- ${errors.join('\n- ')}`);
  }
}
