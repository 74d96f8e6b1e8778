import { Annotations, CfnOutput, CfnResource, Duration, Fn, Names, Resource, Stack, Token } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
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
import { AlarmSet, functionErrorsMetric, queueDepthMetric } from '../private/alarms';
import { acknowledgeNag } from '../private/nag';
import { existingRestMethod, restRoot, restUrlForPath } from '../private/rest-api';
import { PropsValidator } from '../private/validation';
import { webhookPathProblem, webhookRoutePath } from '../private/webhook-path';

/**
 * Properties of a `BillingProvider`.
 */
export interface BillingProviderProps {
  /**
   * The billing integration to wire: its functions, ingestor, usage push and webhook.
   */
  readonly billing: IBilling;

  /**
   * The event bus the control plane puts its events on. When the billing
   * declares the bus its own functions emit on (`billing.eventBus`, as
   * `StripeBilling` and `DynamoDbBilling` do), it must be the same bus.
   * @default - the account's default event bus
   */
  readonly eventBus?: events.IEventBus;

  /**
   * The HTTP API on which the webhook is mounted as `POST /billing/<path>`.
   *
   * `path` is `billing.webhookFunction`'s. A Lambda proxy integration, payload
   * format 2.0. Give `httpApi` or `restApi` when `billing.webhookFunction` is set.
   * @default - none: `restApi` carries the webhook, or there is no webhook
   */
  readonly httpApi?: apigwv2.IHttpApi;

  /**
   * The API Gateway REST API on which the webhook is mounted as `POST /billing/<path>`.
   *
   * A Lambda proxy integration, payload format 1.0. A `RestApi` with its default
   * deployment redeploys with the new method. An imported one (from
   * `RestApi.fromRestApiAttributes`, which gives its root resource) needs a new
   * deployment of yours. Give `httpApi` or `restApi` when
   * `billing.webhookFunction` is set.
   * @default - none: `httpApi` carries the webhook, or there is no webhook
   */
  readonly restApi?: apigw.IRestApi;

  /**
   * The control plane's event names: the default triggers of the functions.
   * A function's own `trigger` takes precedence. When the billing declares the
   * names its own functions emit (`billing.controlPlaneEvents`, as
   * `StripeBilling` and `DynamoDbBilling` do), they must be the same.
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
   * Actions of the provider's alarms (see `alarms`), for example an SNS topic action.
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
  /** The event the rule matches, undefined for the scheduled usage push. */
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

/**
 * A function slot `BillingProvider` wires: the metric methods take one. The
 * values are the slots' names in construct ids (`CreateCustomerRule`,
 * `CreateCustomerDeadLetterQueue`, ...).
 */
export enum BillingFunctionSlot {
  /** The create customer function, on onboarding events. */
  CREATE_CUSTOMER = 'CreateCustomer',
  /** The delete customer function, on offboarding events. */
  DELETE_CUSTOMER = 'DeleteCustomer',
  /** The create user function, on tenant user created events. */
  CREATE_USER = 'CreateUser',
  /** The delete user function, on tenant user deleted events. */
  DELETE_USER = 'DeleteUser',
  /** The usage push, on its schedule. */
  PUT_USAGE = 'PutUsage',
  /** The plan change function, on plan changed events. */
  CHANGE_PLAN = 'ChangePlan',
}

const MAX_RETRY_ATTEMPTS = 185;
const REQUIRED_FUNCTIONS = ['createCustomerFunction', 'deleteCustomerFunction'] as const;
const OPTIONAL_FUNCTIONS = ['createUserFunction', 'deleteUserFunction', 'putUsageFunction', 'webhookFunction', 'changePlanFunction'] as const;

/** Marks BillingProvider instances, so that one finds the others in the construct tree. */
const BILLING_PROVIDER = Symbol.for('cdk-saas-billing.BillingProvider');

/** One function wired by a provider, as other providers look it up in the tree. */
interface WiredFunction {
  readonly slot: string;
  readonly handler: lambda.IFunction;
  /** The queue its own failures go to, when this provider set its on-failure destination. */
  readonly failureQueue?: sqs.IQueue;
}

/** What a slot's metrics are read from: its rule, the bus the rule is on (undefined: the default bus), its queue and function. */
interface SlotMetrics {
  readonly rule: events.Rule;
  readonly eventBus?: events.IEventBus;
  readonly queue: sqs.IQueue;
  readonly handler: lambda.IFunction;
}

/**
 * Wires a billing integration (`IBilling`) into a SaaS control plane.
 *
 * What it wires:
 *
 * - Each lifecycle function gets an EventBridge rule on the bus for its trigger
 *   (onboarding, offboarding, tenant user created, tenant user deleted), with an
 *   explicit retry policy, an encrypted dead-letter queue and an alarm on it.
 * - The usage push runs on a schedule (every 24 hours unless given) with the same reliability.
 * - The webhook is mounted as `POST /billing/<path>` on the given HTTP API or REST API; its URL is an output.
 * - The ingestor's data stream and aggregate table are named in outputs.
 */
export class BillingProvider extends Construct {
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
  /** The wiring of the plan change function, when set. */
  public readonly changePlan?: BillingFunctionWiring;
  /** The webhook route (`POST /billing/<path>`), when a webhook is set on an HTTP API. */
  public readonly webhookRoute?: apigwv2.HttpRoute;
  /**
   * The webhook method (`POST` on the `/billing/<path>` resource), when a webhook
   * is set on a REST API. It lives in the REST API's construct tree, as every method does.
   */
  public readonly webhookMethod?: apigw.Method;
  /** The webhook's route path, for example `/billing/webhook`, when a webhook is set. */
  public readonly webhookRoutePath?: string;
  /**
   * The webhook's URL, when a webhook is set and the API's endpoint is known.
   *
   * On an HTTP API's `$default` stage, `<api endpoint>/billing/<path>` (on a
   * named stage, the stage name comes after the host). On a REST API's
   * deployment stage, `<stage URL>/billing/<path>`.
   */
  public readonly webhookUrl?: string;
  /** Every dead-letter queue the provider created. */
  public readonly deadLetterQueues: sqs.Queue[];
  /** Every alarm the provider created: one per dead-letter queue. */
  public readonly alarms: cloudwatch.Alarm[];

  private readonly retryAttempts: number;
  private readonly maxEventAge: Duration;
  private readonly captureFunctionFailures: boolean;
  private readonly alarmSet: AlarmSet;
  private readonly wired: WiredFunction[] = [];
  /** What the metric methods read, per slot wired. */
  private readonly slots = new Map<BillingFunctionSlot, SlotMetrics>();

  constructor(scope: Construct, id: string, props: BillingProviderProps) {
    super(scope, id);
    Object.defineProperty(this, BILLING_PROVIDER, { value: true });
    validateProps(this, props);

    const billing = props.billing;
    const cpe = props.controlPlaneEvents ?? ControlPlaneEvents.SBT_AWS;
    this.retryAttempts = props.retryAttempts ?? MAX_RETRY_ATTEMPTS;
    this.maxEventAge = props.maxEventAge ?? Duration.hours(24);
    this.captureFunctionFailures = props.captureFunctionFailures ?? true;
    this.alarmSet = new AlarmSet(this, props.alarmActions);
    this.deadLetterQueues = [];
    this.alarms = this.alarmSet.alarms;

    this.createCustomer = this.wireAsync(BillingFunctionSlot.CREATE_CUSTOMER, billing.createCustomerFunction, cpe.onboardingRequest, props.eventBus);
    this.deleteCustomer = this.wireAsync(BillingFunctionSlot.DELETE_CUSTOMER, billing.deleteCustomerFunction, cpe.offboardingRequest, props.eventBus);
    if (billing.createUserFunction) {
      this.createUser = this.wireAsync(BillingFunctionSlot.CREATE_USER, billing.createUserFunction, cpe.tenantUserCreated, props.eventBus);
    }
    if (billing.deleteUserFunction) {
      this.deleteUser = this.wireAsync(BillingFunctionSlot.DELETE_USER, billing.deleteUserFunction, cpe.tenantUserDeleted, props.eventBus);
    }

    if (billing.changePlanFunction) {
      this.changePlan = this.wireAsync(BillingFunctionSlot.CHANGE_PLAN, billing.changePlanFunction, cpe.planChanged, props.eventBus);
    }

    if (billing.ingestor) this.outputIngestor(billing.ingestor);

    if (billing.putUsageFunction) {
      this.putUsage = this.wireSchedule(billing.putUsageFunction);
      billing.ingestor?.bindUsageReader(billing.putUsageFunction.handler);
    }

    if (billing.webhookFunction) {
      const routePath = webhookRoutePath(billing.webhookFunction.path);
      this.webhookRoutePath = routePath;
      if (props.httpApi) {
        this.webhookRoute = this.mountWebhook(billing.webhookFunction, props.httpApi, routePath);
        this.webhookUrl = this.outputWebhookUrl(() => `${props.httpApi!.apiEndpoint}${routePath}`, 'the HTTP API\'s $default stage');
      } else {
        this.webhookMethod = this.mountRestWebhook(billing.webhookFunction, props.restApi!, routePath);
        this.webhookUrl = this.outputWebhookUrl(() => restUrlForPath(props.restApi!, routePath), 'the REST API\'s deployment stage');
      }
    }
  }

  /**
   * Messages in a slot's dead-letter queue: events EventBridge could not deliver and
   * failures of the function after Lambda's retries (maximum over 1 minute). Alarmed
   * (`<Slot>DeadLetterQueueAlarm`).
   *
   * @param slot a slot this provider wired (the create and delete customer functions always are)
   */
  public metricDeadLetterQueueDepth(slot: BillingFunctionSlot, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return queueDepthMetric(this.slot(slot, 'metricDeadLetterQueueDepth').queue, props);
  }

  /**
   * Errors of a slot's function (AWS/Lambda `Errors`, sum over 5 minutes).
   *
   * @param slot a slot this provider wired (the create and delete customer functions always are)
   */
  public metricErrors(slot: BillingFunctionSlot, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return functionErrorsMetric(this.slot(slot, 'metricErrors').handler, props);
  }

  /**
   * Times the slot's rule invoked its function: one per lifecycle event delivered, one per
   * scheduled push (AWS/Events `Invocations`, sum over 5 minutes). EventBridge publishes it
   * only when it is not zero.
   *
   * @param slot a slot this provider wired (the create and delete customer functions always are)
   */
  public metricInvocations(slot: BillingFunctionSlot, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.ruleMetric(slot, 'Invocations', 'metricInvocations', props);
  }

  /**
   * Invocations of the slot's function that EventBridge gave up on after its retries.
   *
   * AWS/Events `FailedInvocations`, sum over 5 minutes. The events are in the slot's
   * dead-letter queue. EventBridge publishes it only when it is not zero.
   *
   * @param slot a slot this provider wired (the create and delete customer functions always are)
   */
  public metricFailedInvocations(slot: BillingFunctionSlot, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.ruleMetric(slot, 'FailedInvocations', 'metricFailedInvocations', props);
  }

  /**
   * A metric of a slot's rule. Rules on the default bus have the dimension `RuleName`; rules
   * on another bus have `EventBusName` and `RuleName`
   * (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html), and there
   * the rule's `Ref` is `<bus name>|<rule name>`, not its name
   * (https://github.com/aws-cloudformation/cloudformation-coverage-roadmap/issues/1131).
   */
  private ruleMetric(slot: BillingFunctionSlot, metricName: string, method: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    const { rule, eventBus } = this.slot(slot, method);
    const busName = eventBus ? Stack.of(this).resolve(eventBus.eventBusName) : 'default';
    // The last part of `Ref` whether it holds one part or two: `Ref|Ref` split on `|`, item 1.
    const ruleName = busName === 'default' ? rule.ruleName : Fn.select(1, Fn.split('|', `${rule.ruleName}|${rule.ruleName}`));
    const dimensionsMap: Record<string, string> = busName === 'default' ? { RuleName: ruleName } : { EventBusName: eventBus!.eventBusName, RuleName: ruleName };
    return new cloudwatch.Metric({ namespace: 'AWS/Events', metricName, dimensionsMap, statistic: cloudwatch.Stats.SUM, period: Duration.minutes(5), ...props });
  }

  private slot(slot: BillingFunctionSlot, method: string) {
    const wired = this.slots.get(slot);
    if (!wired) {
      const known = Object.values(BillingFunctionSlot) as string[];
      const problem = known.includes(slot) ? `${slot} is not wired (its function is not set in billing)` : `${JSON.stringify(slot)} is not a BillingFunctionSlot`;
      throw new Error(`BillingProvider at ${this.node.path}: ${method}(${JSON.stringify(slot)}): ${problem}. `
        + `Wired slots: ${[...this.slots.keys()].map((k) => `BillingFunctionSlot.${enumKey(k)}`).join(', ')}.`);
    }
    return wired;
  }

  private wireAsync(slot: BillingFunctionSlot, fn: IASyncFunction, defaultTrigger: EventDefinition,
    eventBus?: events.IEventBus): BillingFunctionWiring {
    const trigger = fn.trigger ?? defaultTrigger;
    const rule = new events.Rule(this, `${slot}Rule`, {
      description: `cdk-saas-billing: ${slot} on ${trigger.source} / ${trigger.detailType}`,
      eventBus,
      eventPattern: { source: [trigger.source], detailType: [trigger.detailType] },
    });
    return { trigger, ...this.target(slot, rule, fn.handler, eventBus) };
  }

  private wireSchedule(fn: IFunctionSchedule): BillingFunctionWiring {
    const rule = new events.Rule(this, 'PutUsageRule', {
      description: 'cdk-saas-billing: scheduled usage push',
      schedule: fn.schedule ?? events.Schedule.rate(Duration.hours(24)),
    });
    return this.target(BillingFunctionSlot.PUT_USAGE, rule, fn.handler);
  }

  private target(slot: BillingFunctionSlot, rule: events.Rule, handler: lambda.IFunction, eventBus?: events.IEventBus) {
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
    const failureQueue = this.captureFailures(slot, handler, deadLetterQueue);
    this.wired.push({ slot, handler, failureQueue });
    this.slots.set(slot, { rule, eventBus, queue: deadLetterQueue, handler });

    const deadLetterQueueAlarm = this.alarmSet.add(`${slot}DeadLetterQueueAlarm`, this.metricDeadLetterQueueDepth(slot), {
      description: `${slot} events could not be delivered, or the ${slot} function failed on them after Lambda's retries. `
        + `Read the messages in ${Names.uniqueId(deadLetterQueue)} and the function's logs, fix the cause, then send the events again`,
    });
    this.deadLetterQueues.push(deadLetterQueue);
    return { handler, rule, deadLetterQueue, deadLetterQueueAlarm };
  }

  /**
   * EventBridge invokes functions asynchronously: its retry policy and
   * dead-letter queue cover delivery only. An event the function itself fails
   * on is retried twice by Lambda and then dropped unless the function has an
   * on-failure destination or a dead-letter queue: the provider sets its queue
   * as the on-failure destination, unless the function already has one.
   *
   * @returns the queue the function's own failures now go to, when the provider set it
   */
  private captureFailures(slot: string, handler: lambda.IFunction, queue: sqs.IQueue): sqs.IQueue | undefined {
    const earlier = this.earlierWiring(handler);
    if (earlier) this.warnWiredTwice(slot, handler, earlier);
    if (!this.captureFunctionFailures) return undefined;
    if (!Resource.isOwnedResource(handler)) {
      Annotations.of(this).addWarningV2(`cdk-saas-billing:${slot}FunctionFailuresNotCaptured`,
        `The ${slot} function (${handler.node.path}) is not defined in this app, so failures of the function itself ` +
        'after Lambda\'s retries cannot be routed here. Give it an on-failure destination or a dead-letter queue where you define it.');
      return undefined;
    }
    const existing = failureHandlingOf(handler);
    if (existing === 'NONE') {
      handler.configureAsyncInvoke({ onFailure: new destinations.SqsDestination(queue), retryAttempts: 2 });
      return queue;
    }
    if (existing === 'ASYNC_CONFIG_WITHOUT_ON_FAILURE' && !earlier) {
      Annotations.of(this).addWarningV2(`cdk-saas-billing:${slot}FunctionFailuresNotCaptured`,
        `The ${slot} function (${handler.node.path}) already has an asynchronous invoke configuration without an on-failure destination, `
        + 'so the provider cannot add one: failures of the function itself are dropped after Lambda\'s retries. Give that configuration an onFailure.');
    }
    return undefined;
  }

  /** The first wiring of this function by this provider or another one in the app, if any. */
  private earlierWiring(handler: lambda.IFunction): { provider: BillingProvider; wiring: WiredFunction } | undefined {
    for (const c of this.node.root.node.findAll()) {
      if (!(c as unknown as Record<symbol, unknown>)[BILLING_PROVIDER]) continue;
      const provider = c as BillingProvider;
      const wiring = provider.wired.find((w) => w.handler === handler || w.handler.functionArn === handler.functionArn);
      if (wiring) return { provider, wiring };
    }
    return undefined;
  }

  private warnWiredTwice(slot: string, handler: lambda.IFunction, earlier: { provider: BillingProvider; wiring: WiredFunction }) {
    const where = earlier.provider === this ? `as ${earlier.wiring.slot} by this provider` : `as ${earlier.wiring.slot} by ${earlier.provider.node.path}`;
    const failures = earlier.wiring.failureQueue
      ? `Lambda keeps one on-failure destination per function, so failures of the function itself after Lambda's retries go to ${earlier.wiring.failureQueue.node.path} only; `
      : '';
    Annotations.of(this).addWarningV2('cdk-saas-billing:functionWiredTwice',
      `The ${slot} function (${handler.node.path}) is already wired ${where}. ${failures}`
      + 'events EventBridge cannot deliver still go to each rule\'s own dead-letter queue. Use one function per slot to keep them apart.');
  }

  private outputIngestor(ingestor: IDataIngestorAggregator) {
    new CfnOutput(this, 'UsageStreamName', {
      description: 'Kinesis data stream that usage producers write records to',
      value: ingestor.dataStream.streamName,
    });
    new CfnOutput(this, 'UsageStreamArn', {
      description: 'ARN of the usage data stream',
      value: ingestor.dataStream.streamArn,
    });
    new CfnOutput(this, 'AggregateTableName', {
      description: 'DynamoDB table holding the aggregated usage windows',
      value: ingestor.aggregateTable.tableName,
    });
  }

  private mountWebhook(fn: IFunctionPath, httpApi: apigwv2.IHttpApi, routePath: string): apigwv2.HttpRoute {
    const route = new apigwv2.HttpRoute(this, 'WebhookRoute', {
      httpApi,
      routeKey: apigwv2.HttpRouteKey.with(routePath, apigwv2.HttpMethod.POST),
      integration: new HttpLambdaIntegration('WebhookIntegration', fn.handler),
    });
    acknowledgeNag(route, 'AwsSolutions-APIG4',
      'The billing system calls this webhook without AWS credentials; the handler verifies the request signature itself.');
    return route;
  }

  /**
   * `POST` on the REST API's `/billing/<path>` resource (created, or reused when it
   * exists), Lambda proxy integration. No authorizer: the handler verifies the
   * signature of every call, which an authorizer of the user's could not (the billing
   * system sends no token). The method is the library's, so its findings are
   * acknowledged here; the API, its stage and their findings are the user's.
   */
  private mountRestWebhook(fn: IFunctionPath, restApi: apigw.IRestApi, routePath: string): apigw.Method {
    const method = restApi.root.resourceForPath(routePath).addMethod('POST', new apigw.LambdaIntegration(fn.handler), {
      authorizationType: apigw.AuthorizationType.NONE,
    });
    acknowledgeNag(method, 'AwsSolutions-APIG4',
      `The billing system calls the webhook of ${this.node.path} without AWS credentials or a token; the handler verifies the request signature itself.`);
    acknowledgeNag(method, 'AwsSolutions-COG4',
      `The billing system calls the webhook of ${this.node.path} as a service, not as a Cognito user; the handler verifies the request signature itself.`);
    return method;
  }

  private outputWebhookUrl(url: () => string | undefined, where: string): string | undefined {
    let value: string | undefined;
    try {
      value = url();
    } catch {
      value = undefined; // an imported HTTP API without its endpoint
    }
    if (value === undefined) return undefined; // ... or a REST API without a deployment stage
    new CfnOutput(this, 'WebhookUrl', {
      description: `URL the billing system calls (POST) with signed webhook events, on ${where}`,
      value,
    });
    return value;
  }
}

/** How a function's own asynchronous failures are already handled, read through public API only. */
function failureHandlingOf(handler: lambda.IFunction): 'HANDLED' | 'ASYNC_CONFIG_WITHOUT_ON_FAILURE' | 'NONE' {
  const fn = handler as Partial<lambda.Function>;
  if (fn.deadLetterQueue || fn.deadLetterTopic) return 'HANDLED';
  const cfn = handler.node.defaultChild;
  if (cfn instanceof lambda.CfnFunction && cfn.deadLetterConfig !== undefined) return 'HANDLED';
  const config = invokeConfigOf(handler);
  if (!config) return 'NONE';
  const destinationConfig = config.destinationConfig as lambda.CfnEventInvokeConfig.DestinationConfigProperty | undefined;
  return destinationConfig?.onFailure ? 'HANDLED' : 'ASYNC_CONFIG_WITHOUT_ON_FAILURE';
}

/** The asynchronous invoke configuration of the function's unqualified version, wherever in the app it was defined. */
function invokeConfigOf(handler: lambda.IFunction): lambda.CfnEventInvokeConfig | undefined {
  for (const c of handler.node.root.node.findAll()) {
    if (!CfnResource.isCfnResource(c) || c.cfnResourceType !== lambda.CfnEventInvokeConfig.CFN_RESOURCE_TYPE_NAME) continue;
    const config = c as lambda.CfnEventInvokeConfig;
    if (config.functionName === handler.functionName && config.qualifier === '$LATEST') return config;
  }
  return undefined;
}

/** The path of a route with this key already on the API (a route of the user's or of another provider), if any. */
function existingRoute(scope: Construct, httpApi: apigwv2.IHttpApi, routeKey: string): string | undefined {
  for (const c of scope.node.root.node.findAll()) {
    if (!CfnResource.isCfnResource(c) || c.cfnResourceType !== apigwv2.CfnRoute.CFN_RESOURCE_TYPE_NAME) continue;
    const route = c as apigwv2.CfnRoute;
    if (route.apiId === httpApi.apiId && route.routeKey === routeKey) return route.node.scope?.node.path ?? route.node.path;
  }
  return undefined;
}

/** Refuses bad input at synth time, reporting every problem at once. */
function validateProps(scope: Construct, props: BillingProviderProps) {
  const v = new PropsValidator(scope, 'BillingProvider');
  const billing = props?.billing as IBilling | undefined;
  if (!billing || typeof billing !== 'object') {
    v.add('billing', billing, 'must be an IBilling object', 'pass at least { createCustomerFunction: { handler }, deleteCustomerFunction: { handler } }');
    v.throwIfInvalid();
    return;
  }
  for (const name of REQUIRED_FUNCTIONS) checkFunction(v, name, billing[name], true);
  for (const name of OPTIONAL_FUNCTIONS) checkFunction(v, name, billing[name], false);

  const schedule = billing.putUsageFunction?.schedule;
  if (schedule && scheduleIsTooShort(schedule)) {
    v.add('billing.putUsageFunction.schedule', schedule.expressionString, 'is shorter than one minute or not a valid rate',
      'EventBridge schedules run at most once a minute; use for example Schedule.rate(Duration.hours(24))');
  }

  const webhook = billing.webhookFunction;
  const { httpApi, restApi } = props;
  const root = restApi === undefined ? undefined : restRoot(restApi);
  if (httpApi !== undefined && restApi !== undefined) {
    v.add('restApi', restApi.node.path, 'cannot be given with httpApi', 'mount the webhook on one API: give httpApi or restApi');
  } else if (restApi !== undefined && (typeof restApi.restApiId !== 'string' || !root)) {
    v.add('restApi', restApi.node?.path ?? restApi, 'must be a REST API with its root resource (apigateway.IRestApi)',
      'pass a RestApi, or import one with RestApi.fromRestApiAttributes({ restApiId, rootResourceId }) (RestApi.fromRestApiId gives no root resource)');
  }
  if (webhook) {
    const pathProblem = webhookPathProblem(webhook.path);
    if (pathProblem) v.add('billing.webhookFunction.path', webhook.path, pathProblem.problem, pathProblem.fix);
    const routeKey = `POST ${webhookRoutePath(String(webhook.path))}`;
    const judged = !pathProblem && !Token.isUnresolved(webhook.path);
    if (!httpApi && !restApi) {
      v.add('httpApi', httpApi, 'or restApi is required when billing.webhookFunction is set',
        `pass the HTTP API (apigwv2.IHttpApi) or the REST API (apigateway.IRestApi) to mount ${routeKey} on, or remove billing.webhookFunction`);
    } else if (httpApi && !restApi && judged) {
      const existing = existingRoute(scope, httpApi, routeKey);
      if (existing) {
        v.add('billing.webhookFunction.path', webhook.path, `mounts ${routeKey} on the HTTP API ${httpApi.node.path}, which already has that route (${existing})`,
          'give this webhook another path');
      }
    } else if (restApi && !httpApi && root && judged) {
      const existing = existingRestMethod(root, webhookRoutePath(webhook.path), 'POST');
      if (existing) {
        v.add('billing.webhookFunction.path', webhook.path, `mounts ${routeKey} on the REST API ${restApi.node.path}, which already has that method (${existing})`,
          'give this webhook another path');
      }
    }
  }

  checkEmitters(v, scope, props, billing);

  v.range('retryAttempts', props.retryAttempts, 0, MAX_RETRY_ATTEMPTS);
  v.durationRange('maxEventAge', props.maxEventAge, Duration.minutes(1), Duration.hours(24));
  v.throwIfInvalid();
}

const CONTROL_PLANE_EVENT_MEMBERS = [
  'onboardingRequest', 'offboardingRequest', 'tenantUserCreated', 'tenantUserDeleted',
  'billingSuccess', 'billingFailure', 'billingSubscriptionChanged',
] as const;
const SAME_BUS_AND_NAMES = 'pass the same eventBus and controlPlaneEvents to the billing (StripeBilling, DynamoDbBilling) and to BillingProvider';

/**
 * The billing's own functions emit on the bus and with the names the billing
 * declares: they must be the ones the provider's rules and the control plane use.
 */
function checkEmitters(v: PropsValidator, scope: Construct, props: BillingProviderProps, billing: IBilling) {
  if (billing.eventBus !== undefined) {
    const given = busIdentity(props.eventBus, scope);
    const own = busIdentity(billing.eventBus, scope);
    if (given.key !== own.key) {
      v.add('eventBus', given.label, `differs from billing.eventBus, the bus the billing's own functions emit on (${own.label}), `
        + 'so the control plane would not hear its billing events', SAME_BUS_AND_NAMES);
    }
  }
  const own = billing.controlPlaneEvents;
  if (own !== undefined) {
    const given = props.controlPlaneEvents ?? ControlPlaneEvents.SBT_AWS;
    for (const member of CONTROL_PLANE_EVENT_MEMBERS) {
      const a = given[member];
      const b = own[member] as EventDefinition | undefined;
      const same = (x: string, y: string) => resolvedKey(scope, x) === resolvedKey(scope, y);
      if (!b || (same(a.source, b.source) && same(a.detailType, b.detailType))) continue;
      v.add(`controlPlaneEvents.${member}`, eventLabel(a), `differs from billing.controlPlaneEvents.${member}, the names the billing was built with (${eventLabel(b)})`,
        SAME_BUS_AND_NAMES);
    }
  }
}

function resolvedKey(scope: Construct, value: string): string {
  return Token.isUnresolved(value) ? JSON.stringify(Stack.of(scope).resolve(value)) : value;
}

function eventLabel(e: EventDefinition): string {
  const show = (x: string) => (Token.isUnresolved(x) ? 'a token' : x);
  return `${show(e.source)} / ${show(e.detailType)}`;
}

/**
 * A bus as compared: the account's default bus (none given, or a bus named
 * `default`) by its stack's account and region; any other by its resolved ARN
 * (and its stack, when the ARN refers to a resource of that stack).
 */
function busIdentity(bus: events.IEventBus | undefined, providerScope: Construct): { key: string; label: string } {
  const stack = bus ? Stack.of(bus) : Stack.of(providerScope);
  const name = bus ? stack.resolve(bus.eventBusName) : 'default';
  if (name === 'default') {
    const env = JSON.stringify([stack.resolve(stack.account), stack.resolve(stack.region)]);
    const where = Token.isUnresolved(stack.account) || Token.isUnresolved(stack.region) ? '' : ` of ${stack.account} in ${stack.region}`;
    return { key: `default:${env}`, label: bus ? `the default bus${where} (${bus.node.path})` : `none: the default bus${where}` };
  }
  const arn = JSON.stringify(stack.resolve(bus!.eventBusArn));
  // A reference to a resource (not a pseudo parameter) is only unique within its stack.
  const key = /"(Ref|Fn::GetAtt)":\[?"(?!AWS::)/.test(arn) ? `${stack.node.path}:${arn}` : arn;
  return { key, label: typeof name === 'string' ? `${bus!.node.path} (${name})` : bus!.node.path };
}

function checkFunction(v: PropsValidator, name: string, value: unknown, required: boolean) {
  const prop = `billing.${name}`;
  if (value === undefined || value === null) {
    if (required) v.add(prop, value, 'is required', 'pass { handler: myFunction }');
    return;
  }
  const handler = (value as { handler?: unknown }).handler;
  if (typeof value !== 'object' || !isFunction(handler)) {
    v.add(`${prop}.handler`, handler, 'must be a lambda.IFunction', `pass { handler: myFunction }${name === 'webhookFunction' ? ' with a path' : ''}`);
  }
  const trigger = (value as IASyncFunction).trigger;
  if (trigger !== undefined) {
    for (const key of ['source', 'detailType'] as const) {
      const given = (trigger as unknown as Record<string, unknown>)?.[key];
      if (typeof given !== 'string' || (!Token.isUnresolved(given) && given.trim() === '')) {
        v.add(`${prop}.trigger.${key}`, given, 'must be a non-empty string', `give the event's ${key === 'source' ? 'source' : 'detail-type'}, or leave trigger out for the default`);
      }
    }
  }
}

function isFunction(x: unknown): x is lambda.IFunction {
  return typeof x === 'object' && x !== null && typeof (x as lambda.IFunction).functionArn === 'string'
    && typeof (x as lambda.IFunction).addPermission === 'function';
}

/** Whether a `rate()` schedule runs more often than once a minute (cron() and at() cannot). */
function scheduleIsTooShort(schedule: events.Schedule): boolean {
  const expression = schedule.expressionString;
  if (Token.isUnresolved(expression)) return false;
  const rate = /^rate\(\s*(\S+)\s+(\S+)\s*\)$/.exec(expression);
  if (!rate) return false;
  const [, amount, unit] = rate;
  if (Token.isUnresolved(amount)) return false;
  const n = Number(amount);
  return !['minute', 'minutes', 'hour', 'hours', 'day', 'days'].includes(unit) || !Number.isInteger(n) || n < 1;
}

/** The enum key of a slot's value (`CreateCustomer` -> `CREATE_CUSTOMER`). */
function enumKey(slot: BillingFunctionSlot): string {
  return Object.entries(BillingFunctionSlot).find(([, v]) => v === slot)?.[0] ?? slot;
}
