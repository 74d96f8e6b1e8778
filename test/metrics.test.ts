/**
 * The typed metric methods of UsageIngestor, StripeBilling, DynamoDbBilling and
 * BillingProvider: one per metric their handlers publish (the names in each
 * contract module), defaults a caller can override, the alarms built on them,
 * and clear refusals where a construct has nothing to measure.
 */
import { App, Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { controlPlaneApi } from '../examples/control-plane-api';
import { BillingFunctionSlot, BillingProvider, DynamoDbBilling, StripeBilling, UsageIngestor } from '../src';
import { scratchDir } from './support/synth';
import { METRIC_NAMESPACE as INGESTOR_NAMESPACE, METRICS as INGESTOR_METRICS } from '../src/ingestor/ingestor-contract';
import { METRIC_NAMESPACE as DYNAMODB_NAMESPACE, METRICS as DYNAMODB_METRICS } from '../src/providers/dynamodb-billing/contract';
import { STRIPE_METRICS, STRIPE_METRICS_NAMESPACE } from '../src/providers/stripe-billing/contract';

function newStack(): Stack {
  return new Stack(new App({ outdir: scratchDir('metrics') }), 'Stack', { env: { account: '123456789012', region: 'eu-west-1' } });
}

function stripe(stack: Stack, opts: { ingestor?: UsageIngestor; manage?: boolean } = {}): StripeBilling {
  const manage = opts.manage ?? true;
  return new StripeBilling(stack, 'Stripe', {
    apiKey: secretsmanager.Secret.fromSecretNameV2(stack, 'ApiKey', 'stripe/api-key'),
    ingestor: opts.ingestor,
    manageStripeResources: manage,
    httpApi: manage ? controlPlaneApi(stack, 'Api') : undefined,
    webhookSigningSecret: manage ? undefined : secretsmanager.Secret.fromSecretNameV2(stack, 'Signing', 'stripe/signing'),
    meters: opts.ingestor ? [{ metric: 'apiCalls', eventName: 'api_calls' }] : undefined,
  });
}

/** The metric every zero-argument `metricXxx()` method of the object returns. */
function metricsOf(obj: object): Map<string, cloudwatch.Metric> {
  const found = new Map<string, cloudwatch.Metric>();
  for (const name of Object.getOwnPropertyNames(Object.getPrototypeOf(obj))) {
    if (!/^metric[A-Z]/.test(name)) continue;
    found.set(name, (obj as Record<string, () => cloudwatch.Metric>)[name]());
  }
  return found;
}

/** The handler metric names (in the construct's own namespace) the methods cover. */
function handlerMetricNames(metrics: Map<string, cloudwatch.Metric>, namespace: string): string[] {
  return [...metrics.values()].filter((m) => m.namespace === namespace).map((m) => m.metricName).sort();
}

function rendered(stack: Stack, metric: cloudwatch.IMetric) {
  return stack.resolve(metric.toMetricConfig().metricStat);
}

describe('typed metric methods', () => {
  test('UsageIngestor has one method per metric its handlers publish, each in its namespace with its service dimension', () => {
    const stack = newStack();
    const ingestor = new UsageIngestor(stack, 'Ingestor');
    const metrics = metricsOf(ingestor);
    expect(handlerMetricNames(metrics, INGESTOR_NAMESPACE)).toEqual(Object.values(INGESTOR_METRICS).sort());
    expect(metrics.get('metricVoidsApplied')!.dimensions).toEqual({ service: expect.stringMatching(/Ingestor/) });
    expect(metrics.get('metricIncomingRecords')).toMatchObject({ namespace: 'AWS/Kinesis', metricName: 'IncomingRecords', statistic: 'Sum' });
  });

  test('StripeBilling has one method per metric its handlers publish; the generic metric(name) is gone', () => {
    const stack = newStack();
    const billing = stripe(stack, { ingestor: new UsageIngestor(stack, 'Ingestor') });
    const metrics = metricsOf(billing);
    expect(handlerMetricNames(metrics, STRIPE_METRICS_NAMESPACE)).toEqual(Object.values(STRIPE_METRICS).sort());
    expect((billing as unknown as Record<string, unknown>).metric).toBeUndefined();
    // The reconciler's metrics and the pending window's age follow the reconciler's hourly runs.
    expect(metrics.get('metricWindowsNotCounted')!.period.toSeconds()).toBe(3600);
    expect(metrics.get('metricOldestPendingWindowHours')).toMatchObject({ statistic: 'Maximum' });
    expect(metrics.get('metricWindowsSent')).toMatchObject({ metricName: 'WindowsSent', statistic: 'Sum', dimensions: { service: billing.serviceName } });
    expect(metrics.get('metricWindowsSent')!.period.toSeconds()).toBe(300);
  });

  test('DynamoDbBilling has one method per metric its handlers publish', () => {
    const stack = newStack();
    const billing = new DynamoDbBilling(stack, 'Billing', { ingestor: new UsageIngestor(stack, 'Ingestor') });
    expect(handlerMetricNames(metricsOf(billing), DYNAMODB_NAMESPACE)).toEqual(Object.values(DYNAMODB_METRICS).sort());
  });

  test('a caller\'s options override the defaults', () => {
    const stack = newStack();
    const billing = stripe(stack, { ingestor: new UsageIngestor(stack, 'Ingestor') });
    const m = billing.metricWindowsSent({ period: Duration.hours(1), statistic: cloudwatch.Stats.MAXIMUM, label: 'sent' });
    expect(m).toMatchObject({ statistic: 'Maximum', label: 'sent' });
    expect(m.period.toSeconds()).toBe(3600);
  });

  test('each alarm watches the metric its typed method returns', () => {
    const stack = newStack();
    const ingestor = new UsageIngestor(stack, 'Ingestor');
    const billing = stripe(stack, { ingestor });
    const dynamo = new DynamoDbBilling(stack, 'Dynamo', { ingestor });
    const alarmMetric = (alarms: cloudwatch.Alarm[], id: string) => rendered(stack, alarms.find((a) => a.node.id === id)!.metric);
    expect(alarmMetric(billing.alarms, 'WindowsDroppedAlarm')).toEqual(rendered(stack, billing.metricWindowsDropped()));
    expect(alarmMetric(billing.alarms, 'PendingWindowsAlarm')).toEqual(rendered(stack, billing.metricOldestPendingWindowHours()));
    expect(alarmMetric(billing.alarms, 'ReconcileErrorsAlarm')).toEqual(rendered(stack, billing.metricReconcileErrors()));
    expect(alarmMetric(dynamo.alarms, 'UsageAfterCloseAlarm')).toEqual(rendered(stack, dynamo.metricWindowsNotBilledAfterClose()));
    expect(alarmMetric(ingestor.alarms, 'ClosingLagAlarm')).toEqual(rendered(stack, ingestor.metricClosingLag()));
    // And the comparison can fail: another statistic is another metric.
    expect(alarmMetric(billing.alarms, 'PendingWindowsAlarm')).not.toEqual(rendered(stack, billing.metricOldestPendingWindowHours({ statistic: 'Sum' })));
  });

  test('fails if a function metric is asked of a construct without that function, naming the method and the fix', () => {
    const stack = newStack();
    const billing = stripe(stack);
    expect(() => billing.metricPutUsageErrors()).toThrow(/StripeBilling at Stack\/Stripe has no usage push \(no ingestor was given\), so metricPutUsageErrors\(\) has no function to watch: pass an ingestor/);
    expect(() => billing.metricReconcileErrors()).toThrow(/no reconciler .* metricReconcileErrors\(\)/);
    const unmanaged = stripe(newStack(), { manage: false });
    expect(() => unmanaged.metricSetupErrors()).toThrow(/no Stripe setup \(manageStripeResources is false\), so metricSetupErrors\(\)/);
    const dynamo = new DynamoDbBilling(stack, 'Dynamo');
    expect(() => dynamo.metricPutUsageErrors()).toThrow(/DynamoDbBilling at Stack\/Dynamo has no usage push \(no ingestor was given\)/);
    expect(billing.metricWebhookErrors()).toMatchObject({ namespace: 'AWS/Lambda', metricName: 'Errors' });
  });
});

describe('BillingProvider metric methods', () => {
  function provider(stack: Stack, eventBus?: events.IEventBus) {
    const fn = (id: string) => new lambda.Function(stack, id, {
      runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler=()=>{}'),
    });
    return new BillingProvider(stack, 'Billing', {
      eventBus,
      billing: { createCustomerFunction: { handler: fn('Create') }, deleteCustomerFunction: { handler: fn('Delete') }, putUsageFunction: { handler: fn('Push') } },
    });
  }

  test('per slot: dead-letter queue depth (what its alarm watches), function errors, and its rule\'s invocations', () => {
    const stack = newStack();
    const p = provider(stack);
    const depth = p.metricDeadLetterQueueDepth(BillingFunctionSlot.CREATE_CUSTOMER);
    expect(rendered(stack, p.createCustomer.deadLetterQueueAlarm.metric)).toEqual(rendered(stack, depth));
    expect(p.metricErrors(BillingFunctionSlot.PUT_USAGE)).toMatchObject({ namespace: 'AWS/Lambda', metricName: 'Errors', statistic: 'Sum' });
    // A rule on the default bus: dimension RuleName only, the rule's Ref.
    expect(rendered(stack, p.metricInvocations(BillingFunctionSlot.DELETE_CUSTOMER))).toMatchObject({
      namespace: 'AWS/Events', metricName: 'Invocations', dimensions: [{ name: 'RuleName', value: { Ref: expect.stringMatching(/^BillingDeleteCustomerRule/) } }],
    });
    expect(p.metricFailedInvocations(BillingFunctionSlot.PUT_USAGE)).toMatchObject({ metricName: 'FailedInvocations' });
  });

  test('a rule on another bus: dimensions EventBusName and RuleName, the name taken from Ref `<bus>|<rule>`', () => {
    const stack = newStack();
    const bus = new events.EventBus(stack, 'Bus');
    const p = provider(stack, bus);
    const dims = rendered(stack, p.metricFailedInvocations(BillingFunctionSlot.CREATE_CUSTOMER)).dimensions;
    const ref = { Ref: expect.stringMatching(/^BillingCreateCustomerRule/) };
    expect(dims).toEqual([
      { name: 'EventBusName', value: { Ref: expect.stringMatching(/^Bus/) } },
      { name: 'RuleName', value: { 'Fn::Select': [1, { 'Fn::Split': ['|', { 'Fn::Join': ['', [ref, '|', ref]] }] }] } },
    ]);
    // The scheduled push's rule is on the default bus whatever the lifecycle bus.
    expect(rendered(stack, p.metricInvocations(BillingFunctionSlot.PUT_USAGE)).dimensions).toEqual([{ name: 'RuleName', value: { Ref: expect.stringMatching(/^BillingPutUsageRule/) } }]);
  });

  test('fails if the slot is not wired, listing the wired slots', () => {
    const p = provider(newStack());
    expect(() => p.metricErrors(BillingFunctionSlot.CREATE_USER)).toThrow(
      'BillingProvider at Stack/Billing: metricErrors("CreateUser"): CreateUser is not wired (its function is not set in billing). '
      + 'Wired slots: BillingFunctionSlot.CREATE_CUSTOMER, BillingFunctionSlot.DELETE_CUSTOMER, BillingFunctionSlot.PUT_USAGE.');
    expect(() => p.metricInvocations('CreateCustomers' as BillingFunctionSlot)).toThrow(/"CreateCustomers" is not a BillingFunctionSlot/);
  });
});
