import { Annotations, CfnOutput, Duration, Names, Resource, Token } from 'aws-cdk-lib';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { IASyncFunction, IBilling, IFunctionPath, IFunctionSchedule } from './billing';
import { ControlPlaneEvents, EventDefinition } from '../events/event-definition';
import { IDataIngestorAggregator } from '../ingestor/ingestor';
import { acknowledgeNag } from '../private/nag';

/**
 * Properties of a `BillingProvider`.
 */
export interface BillingProviderProps {
  /**
   * The billing integration to wire: its functions, ingestor, usage push and webhook.
   */
  readonly billing: IBilling;

  /**
   * The event bus the control plane puts its events on.
   * @default - the account's default event bus
   */
  readonly eventBus?: events.IEventBus;

  /**
   * The HTTP API on which the webhook is mounted as `POST /billing/<path>`.
   * Required when `billing.webhookFunction` is set.
   * @default - no HTTP API; a webhook function is refused
   */
  readonly httpApi?: apigwv2.IHttpApi;

  /**
   * The control plane's event names: the default triggers of the functions.
   * A function's own `trigger` takes precedence.
   * @default ControlPlaneEvents.SBT_AWS
   */
  readonly controlPlaneEvents?: ControlPlaneEvents;

  /**
   * How many times EventBridge retries delivering an event to a function
   * (throttling, service errors) before it sends the event to the dead-letter queue.
   * @default 185
   */
  readonly retryAttempts?: number;

  /**
   * How long EventBridge keeps retrying an undelivered event before it sends it
   * to the dead-letter queue. Between 1 minute and 24 hours.
   * @default Duration.hours(24)
   */
  readonly maxEventAge?: Duration;

  /**
   * Capture failures of the functions themselves: when a function defined in this
   * app has neither an asynchronous on-failure destination nor a dead-letter
   * queue, the provider sets its dead-letter queue as the function's on-failure
   * destination, so an event that still fails after Lambda's own retries is kept.
   * @default true
   */
  readonly captureFunctionFailures?: boolean;

  /**
   * Actions of the alarms that watch the dead-letter queues (for example an SNS topic action).
   * @default - the alarms have no action
   */
  readonly alarmActions?: cloudwatch.IAlarmAction[];
}

/**
 * What the provider wired for one function: its rule, its dead-letter queue and
 * the alarm that watches that queue.
 */
export interface BillingFunctionWiring {
  /** The function. */
  readonly handler: lambda.IFunction;
  /** The rule that invokes the function: an event pattern, or a schedule for the usage push. */
  readonly rule: events.Rule;
  /** The event the rule matches; undefined for the scheduled usage push. */
  readonly trigger?: EventDefinition;
  /**
   * Where EventBridge sends events it could not deliver, and where failures of the
   * function after Lambda's retries go when the provider configured its on-failure
   * destination. Encrypted, TLS enforced, kept 14 days.
   */
  readonly deadLetterQueue: sqs.Queue;
  /** Alarms when the dead-letter queue holds at least one message. */
  readonly deadLetterQueueAlarm: cloudwatch.Alarm;
}

const WEBHOOK_SEGMENT = /^[A-Za-z0-9\-._~]+$/;
const MIN_EVENT_AGE_SECONDS = 60;
const MAX_EVENT_AGE_SECONDS = 24 * 60 * 60;
const MAX_RETRY_ATTEMPTS = 185;

/** Webhook paths mounted per HTTP API, across every provider in the process. */
const MOUNTED_PATHS = new WeakMap<apigwv2.IHttpApi, Map<string, string>>();

/**
 * Wires a billing integration (`IBilling`) into a SaaS control plane.
 *
 * - Each lifecycle function gets an EventBridge rule on the bus for its trigger
 *   (onboarding, offboarding, tenant user created, tenant user deleted), with an
 *   explicit retry policy, an encrypted dead-letter queue and an alarm on it.
 * - The usage push runs on a schedule (every 24 hours unless given) with the same reliability.
 * - The webhook is mounted as `POST /billing/<path>` on the given HTTP API.
 * - The ingestor's data stream and aggregate table are exposed and named in outputs.
 */
export class BillingProvider extends Construct {
  /** The bus the rules listen on. */
  public readonly eventBus: events.IEventBus;
  /** The event names the provider used for default triggers. */
  public readonly controlPlaneEvents: ControlPlaneEvents;
  /** The wiring of the create customer function. */
  public readonly createCustomer: BillingFunctionWiring;
  /** The wiring of the delete customer function. */
  public readonly deleteCustomer: BillingFunctionWiring;
  /** The wiring of the create user function, when set. */
  public readonly createUser?: BillingFunctionWiring;
  /** The wiring of the delete user function, when set. */
  public readonly deleteUser?: BillingFunctionWiring;
  /** The wiring of the scheduled usage push, when set. */
  public readonly putUsage?: BillingFunctionWiring;
  /** The usage ingestor, when set: its data stream is where producers write usage. */
  public readonly ingestor?: IDataIngestorAggregator;
  /** The webhook route (`POST /billing/<path>`), when a webhook is set. */
  public readonly webhookRoute?: apigwv2.HttpRoute;
  /** The webhook's full path, for example `/billing/webhook`, when a webhook is set. */
  public readonly webhookPath?: string;
  /** Every dead-letter queue the provider created. */
  public readonly deadLetterQueues: sqs.IQueue[];
  /** Every alarm the provider created. */
  public readonly alarms: cloudwatch.IAlarm[];

  private readonly retryAttempts: number;
  private readonly maxEventAge: Duration;
  private readonly captureFunctionFailures: boolean;
  private readonly alarmActions: cloudwatch.IAlarmAction[];

  constructor(scope: Construct, id: string, props: BillingProviderProps) {
    super(scope, id);
    validateProps(props);

    const billing = props.billing;
    this.controlPlaneEvents = props.controlPlaneEvents ?? ControlPlaneEvents.SBT_AWS;
    this.eventBus = props.eventBus ?? events.EventBus.fromEventBusName(this, 'DefaultEventBus', 'default');
    this.retryAttempts = props.retryAttempts ?? MAX_RETRY_ATTEMPTS;
    this.maxEventAge = props.maxEventAge ?? Duration.hours(24);
    this.captureFunctionFailures = props.captureFunctionFailures ?? true;
    this.alarmActions = props.alarmActions ?? [];
    this.deadLetterQueues = [];
    this.alarms = [];

    const cpe = this.controlPlaneEvents;
    this.createCustomer = this.wireAsync('CreateCustomer', billing.createCustomerFunction, cpe.onboardingRequest, props.eventBus);
    this.deleteCustomer = this.wireAsync('DeleteCustomer', billing.deleteCustomerFunction, cpe.offboardingRequest, props.eventBus);
    if (billing.createUserFunction) {
      this.createUser = this.wireAsync('CreateUser', billing.createUserFunction, cpe.tenantUserCreated, props.eventBus);
    }
    if (billing.deleteUserFunction) {
      this.deleteUser = this.wireAsync('DeleteUser', billing.deleteUserFunction, cpe.tenantUserDeleted, props.eventBus);
    }

    if (billing.ingestor) {
      this.ingestor = billing.ingestor;
      new CfnOutput(this, 'UsageStreamName', {
        description: 'Kinesis data stream that usage producers write records to',
        value: billing.ingestor.dataStream.streamName,
      });
      new CfnOutput(this, 'UsageStreamArn', {
        description: 'ARN of the usage data stream',
        value: billing.ingestor.dataStream.streamArn,
      });
      new CfnOutput(this, 'AggregateTableName', {
        description: 'DynamoDB table holding the aggregated usage windows',
        value: billing.ingestor.aggregateTable.tableName,
      });
    }

    if (billing.putUsageFunction) {
      this.putUsage = this.wireSchedule(billing.putUsageFunction);
      billing.ingestor?.bindUsageReader(billing.putUsageFunction.handler);
    }

    if (billing.webhookFunction) {
      const { route, fullPath } = this.mountWebhook(billing.webhookFunction, props.httpApi!);
      this.webhookRoute = route;
      this.webhookPath = fullPath;
    }
  }

  private wireAsync(
    slot: string,
    fn: IASyncFunction,
    defaultTrigger: EventDefinition,
    eventBus: events.IEventBus | undefined,
  ): BillingFunctionWiring {
    const trigger = fn.trigger ?? defaultTrigger;
    const rule = new events.Rule(this, `${slot}Rule`, {
      description: `cdk-saas-billing: ${slot} on ${trigger.source} / ${trigger.detailType}`,
      eventBus,
      eventPattern: { source: [trigger.source], detailType: [trigger.detailType] },
    });
    return { trigger, ...this.target(slot, rule, fn.handler) };
  }

  private wireSchedule(fn: IFunctionSchedule): BillingFunctionWiring {
    const rule = new events.Rule(this, 'PutUsageRule', {
      description: 'cdk-saas-billing: scheduled usage push',
      schedule: fn.schedule ?? events.Schedule.rate(Duration.hours(24)),
    });
    return this.target('PutUsage', rule, fn.handler);
  }

  private target(slot: string, rule: events.Rule, handler: lambda.IFunction) {
    const deadLetterQueue = new sqs.Queue(this, `${slot}DeadLetterQueue`, {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledgeNag(deadLetterQueue, 'AwsSolutions-SQS3',
      'This queue is itself the dead-letter queue of an EventBridge target and of a Lambda on-failure destination.');
    rule.addTarget(new targets.LambdaFunction(handler, {
      deadLetterQueue,
      retryAttempts: this.retryAttempts,
      maxEventAge: this.maxEventAge,
    }));
    this.captureFailures(slot, handler, deadLetterQueue);

    const deadLetterQueueAlarm = deadLetterQueue.metricApproximateNumberOfMessagesVisible({
      period: Duration.minutes(1),
      statistic: cloudwatch.Stats.MAXIMUM,
    }).createAlarm(this, `${slot}DeadLetterQueueAlarm`, {
      alarmDescription: `cdk-saas-billing: ${slot} events could not be processed; inspect ${Names.uniqueId(deadLetterQueue)}`,
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    for (const action of this.alarmActions) deadLetterQueueAlarm.addAlarmAction(action);

    this.deadLetterQueues.push(deadLetterQueue);
    this.alarms.push(deadLetterQueueAlarm);
    return { handler, rule, deadLetterQueue, deadLetterQueueAlarm };
  }

  /**
   * EventBridge invokes functions asynchronously: its retry policy and
   * dead-letter queue cover delivery only. An event the function itself fails
   * on is retried twice by Lambda and then dropped unless the function has an
   * on-failure destination or a dead-letter queue.
   */
  private captureFailures(slot: string, handler: lambda.IFunction, queue: sqs.IQueue) {
    if (!this.captureFunctionFailures) return;
    if (!isDefinedInApp(handler)) {
      Annotations.of(this).addWarningV2(`cdk-saas-billing:${slot}FunctionFailuresNotCaptured`,
        `The ${slot} function (${handler.node.path}) is not defined in this app, so failures of the function itself ` +
        'after Lambda\'s retries cannot be routed here. Give it an on-failure destination or a dead-letter queue where you define it.');
      return;
    }
    if (hasFailureHandling(handler)) return;
    handler.configureAsyncInvoke({
      onFailure: new destinations.SqsDestination(queue),
      retryAttempts: 2,
    });
  }

  private mountWebhook(fn: IFunctionPath, httpApi: apigwv2.IHttpApi) {
    const fullPath = `/billing/${fn.path}`;
    if (!Token.isUnresolved(fn.path)) {
      let mounted = MOUNTED_PATHS.get(httpApi);
      if (!mounted) {
        mounted = new Map();
        MOUNTED_PATHS.set(httpApi, mounted);
      }
      const existing = mounted.get(fullPath) ?? findRouteOn(httpApi, `POST ${fullPath}`);
      if (existing) {
        throw new Error(
          `webhookFunction.path '${fn.path}' mounts POST ${fullPath} on HTTP API ${httpApi.node.path}, ` +
          `which already has that route (${existing}). Give this webhook another path.`);
      }
      mounted.set(fullPath, this.node.path);
    }
    const route = new apigwv2.HttpRoute(this, 'WebhookRoute', {
      httpApi,
      routeKey: apigwv2.HttpRouteKey.with(fullPath, apigwv2.HttpMethod.POST),
      integration: new HttpLambdaIntegration('WebhookIntegration', fn.handler),
    });
    acknowledgeNag(route, 'AwsSolutions-APIG4',
      'The billing system calls this webhook without AWS credentials; the handler verifies the request signature itself.');
    return { route, fullPath };
  }
}

/** True when the function is a resource of this app rather than an imported reference. */
function isDefinedInApp(handler: lambda.IFunction): boolean {
  return Resource.isOwnedResource(handler);
}

/** True when the user already gave the function an async on-failure destination or a dead-letter queue. */
function hasFailureHandling(handler: lambda.IFunction): boolean {
  if (handler.node.tryFindChild('EventInvokeConfig')) return true;
  const fn = handler as Partial<lambda.Function>;
  if (fn.deadLetterQueue || fn.deadLetterTopic) return true;
  const cfn = handler.node.tryFindChild('Resource') as lambda.CfnFunction | undefined;
  return cfn?.deadLetterConfig !== undefined;
}

/** The path of a route with this route key already on the API, if any. */
function findRouteOn(httpApi: apigwv2.IHttpApi, routeKey: string): string | undefined {
  for (const c of httpApi.node.findAll()) {
    if (c instanceof apigwv2.CfnRoute && c.routeKey === routeKey) return c.node.path;
  }
  return undefined;
}

/** Refuses bad input at synth time, reporting every problem at once. */
function validateProps(props: BillingProviderProps) {
  const errors: string[] = [];
  const billing = props?.billing as IBilling | undefined;
  if (!billing || typeof billing !== 'object') {
    throw new Error(`BillingProvider: props.billing must be an IBilling object (given ${describe(billing)}). ` +
      'Pass at least { createCustomerFunction: { handler }, deleteCustomerFunction: { handler } }.');
  }
  checkFunction(errors, 'createCustomerFunction', billing.createCustomerFunction, true);
  checkFunction(errors, 'deleteCustomerFunction', billing.deleteCustomerFunction, true);
  checkFunction(errors, 'createUserFunction', billing.createUserFunction, false);
  checkFunction(errors, 'deleteUserFunction', billing.deleteUserFunction, false);
  checkFunction(errors, 'putUsageFunction', billing.putUsageFunction, false);
  checkFunction(errors, 'webhookFunction', billing.webhookFunction, false);

  if (billing.putUsageFunction?.schedule) {
    const problem = scheduleProblem(billing.putUsageFunction.schedule);
    if (problem) errors.push(problem);
  }

  if (billing.webhookFunction) {
    if (!props.httpApi) {
      errors.push('billing.webhookFunction is set but props.httpApi is not: pass the HTTP API to mount ' +
        `POST /billing/${String(billing.webhookFunction.path)} on (httpApi: myHttpApi), or remove webhookFunction.`);
    }
    const pathProblem = webhookPathProblem(billing.webhookFunction.path);
    if (pathProblem) errors.push(pathProblem);
  }

  if (props.retryAttempts !== undefined && !Token.isUnresolved(props.retryAttempts)) {
    if (!Number.isInteger(props.retryAttempts) || props.retryAttempts < 0 || props.retryAttempts > MAX_RETRY_ATTEMPTS) {
      errors.push(`retryAttempts must be an integer between 0 and ${MAX_RETRY_ATTEMPTS} inclusive (given ${props.retryAttempts}).`);
    }
  }
  if (props.maxEventAge !== undefined && !props.maxEventAge.isUnresolved()) {
    const seconds = props.maxEventAge.toSeconds();
    if (seconds < MIN_EVENT_AGE_SECONDS || seconds > MAX_EVENT_AGE_SECONDS) {
      errors.push(`maxEventAge must be between 1 minute and 24 hours (given ${props.maxEventAge.toHumanString()}).`);
    }
  }

  if (errors.length > 0) {
    throw new Error(`BillingProvider: invalid props:\n- ${errors.join('\n- ')}`);
  }
}

function checkFunction(errors: string[], name: string, value: unknown, required: boolean) {
  if (value === undefined || value === null) {
    if (required) {
      errors.push(`billing.${name} is required (given ${describe(value)}): pass { handler: myFunction }.`);
    }
    return;
  }
  const handler = (value as { handler?: unknown }).handler;
  if (typeof value !== 'object' || !isFunction(handler)) {
    errors.push(`billing.${name}.handler must be a lambda.IFunction (given ${describe(handler)}): ` +
      `pass { handler: myFunction }${name === 'webhookFunction' ? ' with a path' : ''}.`);
  }
  const trigger = (value as IASyncFunction).trigger;
  if (trigger !== undefined) {
    for (const key of ['source', 'detailType'] as const) {
      const v = (trigger as unknown as Record<string, unknown>)?.[key];
      if (typeof v !== 'string' || (!Token.isUnresolved(v) && v.trim() === '')) {
        errors.push(`billing.${name}.trigger.${key} must be a non-empty string (given ${describe(v)}).`);
      }
    }
  }
}

function isFunction(x: unknown): x is lambda.IFunction {
  return typeof x === 'object' && x !== null && typeof (x as lambda.IFunction).functionArn === 'string'
    && typeof (x as lambda.IFunction).addPermission === 'function';
}

function webhookPathProblem(path: unknown): string | undefined {
  if (typeof path !== 'string') {
    return `billing.webhookFunction.path must be a string (given ${describe(path)}): for example 'webhook' mounts POST /billing/webhook.`;
  }
  if (Token.isUnresolved(path)) return undefined;
  if (path.length === 0) {
    return "billing.webhookFunction.path is empty: give a path segment such as 'webhook' (mounts POST /billing/webhook).";
  }
  if (path.startsWith('/') || path.endsWith('/') || path.includes('//')) {
    const fixed = path.split('/').filter((s) => s.length > 0).join('/');
    return `billing.webhookFunction.path '${path}' would mount POST /billing/${path}: ` +
      `remove leading, trailing and double slashes${fixed ? ` (for example '${fixed}')` : ''}.`;
  }
  const bad = path.split('/').find((s) => !WEBHOOK_SEGMENT.test(s));
  if (bad !== undefined) {
    const chars = [...new Set(bad.replace(/[A-Za-z0-9\-._~]/g, ''))].map((c) => JSON.stringify(c)).join(', ');
    return `billing.webhookFunction.path '${path}' has characters a URL path segment cannot hold (${chars}): ` +
      'use letters, digits and - . _ ~ only.';
  }
  return undefined;
}

function scheduleProblem(schedule: events.Schedule): string | undefined {
  const expression = schedule.expressionString;
  if (Token.isUnresolved(expression)) return undefined;
  const rate = /^rate\(\s*(\S+)\s+(\S+)\s*\)$/.exec(expression);
  if (!rate) return undefined; // cron() and at() expressions cannot fire more than once a minute
  const [, amount, unit] = rate;
  if (Token.isUnresolved(amount)) return undefined;
  const n = Number(amount);
  const units = ['minute', 'minutes', 'hour', 'hours', 'day', 'days'];
  if (!units.includes(unit) || !Number.isInteger(n) || n < 1) {
    return `billing.putUsageFunction.schedule '${expression}' is shorter than one minute or not a valid rate: ` +
      'EventBridge schedules run at most once a minute; use for example Schedule.rate(Duration.hours(24)).';
  }
  return undefined;
}

function describe(x: unknown): string {
  if (x === undefined) return 'undefined';
  if (x === null) return 'null';
  if (typeof x === 'string') return `'${x}'`;
  if (typeof x === 'object') {
    const ctor = (x as object).constructor?.name;
    return ctor && ctor !== 'Object' ? `a ${ctor}` : `an object with keys [${Object.keys(x as object).join(', ')}]`;
  }
  return `${typeof x} ${String(x)}`;
}
