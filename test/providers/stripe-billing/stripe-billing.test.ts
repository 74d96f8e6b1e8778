/**
 * StripeBilling's template: what a deployment holds, least privilege, secrets
 * only by ARN, alarms, outputs, the Stripe setup, and every refusal at synth.
 */
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import { controlPlaneApi } from '../../../examples/control-plane-api';
import {
  BillingProvider, BillingProviderProps, ControlPlaneEvents, StripeBilling, StripeBillingProps, StripeMeterRounding, StripeSubscriptionCancellation,
  UsageIngestor, WindowGranularity,
} from '../../../src';
import { STRIPE_ENV } from '../../../src/providers/stripe-billing/contract';
import { cfnLintErrors, nagFindings, scratchDir } from '../../support/synth';

function newStack(app = new App({ outdir: scratchDir('stripe-template') })): Stack {
  return new Stack(app, 'Stack', { env: { account: '123456789012', region: 'eu-west-1' } });
}

/** StripeBilling with an ingestor, passed to BillingProvider on the control plane's API. */
function build(stack: Stack, props: Partial<StripeBillingProps> = {}, providerProps: Partial<BillingProviderProps> = {}) {
  const ingestor = props.ingestor ?? new UsageIngestor(stack, 'Ingestor');
  const httpApi = controlPlaneApi(stack, 'Api');
  const billing = new StripeBilling(stack, 'Stripe', {
    apiKey: secretsmanager.Secret.fromSecretNameV2(stack, 'ApiKey', 'stripe/api-key'),
    ingestor,
    httpApi,
    meters: [{ metric: 'apiCalls', eventName: 'api_calls' }, { metric: 'storageGb', eventName: 'storage_mb', multiplier: '1000', rounding: StripeMeterRounding.UP }],
    prices: ['price_base'],
    ...props,
  });
  const provider = new BillingProvider(stack, 'Billing', { billing, httpApi, ...providerProps });
  return { billing, provider, template: () => Template.fromStack(stack) };
}

function functionsOf(template: Template) {
  return Object.values(template.findResources('AWS::Lambda::Function', { Properties: { Description: Match.stringLikeRegexp('Stripe') } }))
    .map((r) => r.Properties as { Description: string; Environment: { Variables: Record<string, unknown> }; Role: unknown });
}

function policyStatements(template: Template, roleLogicalIdPrefix: string): { Action: string | string[]; Resource: unknown }[] {
  const policies = template.findResources('AWS::IAM::Policy');
  return Object.entries(policies).filter(([id]) => id.startsWith(roleLogicalIdPrefix)).flatMap(([, p]) => p.Properties.PolicyDocument.Statement);
}

const actionsOf = (statements: { Action: string | string[] }[]) => statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]));

describe('StripeBilling', () => {
  test('creates the mapping, push and webhook event tables: encrypted, point-in-time recovery, kept on delete', () => {
    const stack = newStack();
    const t = build(stack).template();
    t.resourceCountIs('AWS::DynamoDB::Table', 4); // three of StripeBilling, one of the ingestor
    for (const prefix of ['StripeCustomersTable', 'StripeUsagePushTable', 'StripeWebhookEventsTable']) {
      const tables = t.findResources('AWS::DynamoDB::Table');
      const id = Object.keys(tables).find((k) => k.startsWith(prefix))!;
      expect(tables[id]).toMatchObject({
        DeletionPolicy: 'Retain',
        Properties: { BillingMode: 'PAY_PER_REQUEST', SSESpecification: { SSEEnabled: true }, PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true }, DeletionProtectionEnabled: true },
      });
    }
    t.hasResourceProperties('AWS::DynamoDB::Table', { TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true }, KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }] });
  });

  test('six bundled functions, each described by what it does, on nodejs24.x with their own log group', () => {
    const t = build(newStack()).template();
    const fns = functionsOf(t);
    expect(fns.map((f) => f.Description).sort()).toEqual([
      'cdk-saas-billing: compares what was sent to Stripe with what Stripe counted, per tenant, meter and billing period, and repairs it',
      'cdk-saas-billing: creates the Stripe customer and subscription of an onboarded tenant',
      'cdk-saas-billing: creates the Stripe meters and webhook endpoint of this stack (custom resource)',
      'cdk-saas-billing: pushes an offboarded tenant\'s last usage to Stripe and cancels its subscription',
      'cdk-saas-billing: pushes closed usage windows to Stripe as meter events, each window once',
      'cdk-saas-billing: verifies Stripe webhook calls and emits billing success, failure and subscription changed events',
    ]);
    t.allResourcesProperties('AWS::Lambda::Function', { Runtime: 'nodejs24.x' });
    expect(Object.keys(t.findResources('AWS::Logs::LogGroup')).filter((k) => k.startsWith('Stripe'))).toHaveLength(6);
  });

  test('no key or secret in the template: the API key and the signing secret are passed by ARN only', () => {
    const stack = newStack();
    const t = build(stack).template();
    const json = JSON.stringify(t.toJSON());
    expect(json).not.toMatch(/sk_(test|live)_|rk_(test|live)_|whsec_/);
    for (const fn of functionsOf(t)) {
      for (const [name, value] of Object.entries(fn.Environment.Variables)) {
        expect(name).not.toMatch(/^(STRIPE_API_KEY|API_KEY|SECRET|SIGNING_SECRET)$/);
        if (name.endsWith('_ARN') && typeof value === 'string') expect(value).toMatch(/^arn:/);
      }
      expect(fn.Environment.Variables[STRIPE_ENV.TEST_ENDPOINT]).toBeUndefined();
    }
  });

  test('least privilege: only the functions that call Stripe read the API key; only the webhook reads the signing secret and puts events', () => {
    const t = build(newStack()).template();
    const webhook = policyStatements(t, 'StripeWebhookRole');
    const create = policyStatements(t, 'StripeCreateCustomerRole');
    const setup = policyStatements(t, 'StripeSetupRole');
    expect(actionsOf(webhook)).toEqual(expect.arrayContaining(['events:PutEvents', 'secretsmanager:GetSecretValue']));
    expect(JSON.stringify(webhook)).not.toContain('stripe/api-key');
    expect(actionsOf(create)).not.toContain('events:PutEvents');
    expect(JSON.stringify(create)).toContain('stripe/api-key');
    expect(JSON.stringify(create)).not.toMatch(/UsagePushTable|WebhookEventsTable|Ingestor/);
    expect(actionsOf(create).filter((a) => a.startsWith('dynamodb:')).sort()).toEqual(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem']);
    expect(actionsOf(setup)).toEqual(expect.arrayContaining(['secretsmanager:PutSecretValue']));
    expect(actionsOf(setup).some((a) => a.startsWith('dynamodb:'))).toBe(false);
    // No managed policy anywhere in StripeBilling.
    for (const [id, role] of Object.entries(t.findResources('AWS::IAM::Role'))) if (id.startsWith('Stripe')) expect(role.Properties.ManagedPolicyArns).toBeUndefined();
  });

  test('the webhook writes only its own table and the tenant mapping (GetItem and UpdateItem), nothing else', () => {
    const t = build(newStack()).template();
    const webhook = policyStatements(t, 'StripeWebhookRole').filter((st) => actionsOf([st]).some((a) => a.startsWith('dynamodb:')));
    const byTable = (prefix: string) => webhook.filter((st) => JSON.stringify(st.Resource).includes(prefix));
    expect(actionsOf(byTable('StripeCustomersTable')).sort()).toEqual(['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    expect(actionsOf(byTable('StripeWebhookEventsTable')).sort()).toEqual(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem']);
    expect(webhook.every((st) => /StripeCustomersTable|StripeWebhookEventsTable/.test(JSON.stringify(st.Resource)))).toBe(true);
    expect(byTable('StripeUsagePushTable')).toEqual([]);
  });

  test('the Stripe setup: a custom resource with the meters, the webhook URL of the route BillingProvider mounts, the event types and the pinned API version', () => {
    const t = build(newStack()).template();
    t.hasResourceProperties('Custom::StripeSetup', {
      Meters: JSON.stringify([{ eventName: 'api_calls', displayName: 'apiCalls' }, { eventName: 'storage_mb', displayName: 'storageGb' }]),
      WebhookUrl: { 'Fn::Join': ['', [Match.objectLike({ 'Fn::GetAtt': [Match.stringLikeRegexp('^Api'), 'ApiEndpoint'] }), '/billing/stripe']] },
      WebhookEvents: JSON.stringify([
        'invoice.paid', 'invoice.payment_failed', 'invoice.payment_action_required', 'invoice.voided', 'invoice.marked_uncollectible',
        'customer.subscription.created', 'customer.subscription.updated', 'customer.subscription.deleted', 'customer.deleted',
      ]),
      ApiVersion: '2025-09-30.clover',
      SetupId: Match.stringLikeRegexp('^csb[0-9a-f]{10}-setup$'),
    });
    t.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'POST /billing/stripe' });
  });

  test('webhookBaseUrl (a custom domain) sets the URL Stripe calls', () => {
    const stack = newStack();
    const api = controlPlaneApi(stack, 'Api');
    const billing = new StripeBilling(stack, 'Stripe', {
      apiKey: secretsmanager.Secret.fromSecretNameV2(stack, 'ApiKey', 'stripe/api-key'), webhookBaseUrl: 'https://api.example.com/', webhookPath: 'payments/stripe',
    });
    new BillingProvider(stack, 'Billing', { billing, httpApi: api });
    Template.fromStack(stack).hasResourceProperties('Custom::StripeSetup', { WebhookUrl: 'https://api.example.com/billing/payments/stripe' });
    expect(billing.webhookUrl).toBe('https://api.example.com/billing/payments/stripe');
  });

  test('manageStripeResources false: no setup, and the given signing secret is the one the webhook reads', () => {
    const stack = newStack();
    const secret = secretsmanager.Secret.fromSecretNameV2(stack, 'Signing', 'stripe/webhook-signing');
    const { billing, template } = build(stack, { manageStripeResources: false, webhookSigningSecret: secret, httpApi: undefined });
    const t = template();
    t.resourceCountIs('Custom::StripeSetup', 0);
    expect(functionsOf(t)).toHaveLength(5);
    expect(billing.webhookSigningSecret).toBe(secret);
    expect(JSON.stringify(policyStatements(t, 'StripeWebhookRole'))).toContain('stripe/webhook-signing');
    t.resourceCountIs('AWS::SecretsManager::Secret', 0);
  });

  test('alarms: errors, refused webhook calls and windows not billed or waiting, all with the given actions', () => {
    const stack = newStack();
    const topic = new sns.Topic(stack, 'Ops');
    const { billing, template } = build(stack, { alarmActions: [new cloudwatchActions.SnsAction(topic)] });
    expect(billing.alarms.map((a) => a.node.id).sort()).toEqual([
      'OffboardingScheduleDeadLetterAlarm', 'PendingWindowsAlarm', 'PutUsageErrorsAlarm', 'ReconcileErrorsAlarm', 'StripeSetupErrorsAlarm',
      'UnitsNotInvoicedAlarm', 'UnitsOverCountedAlarm', 'WebhookErrorsAlarm', 'WebhookRefusedAlarm', 'WindowsCarriedOverAlarm', 'WindowsDroppedAlarm',
      'WindowsNoSubscriptionAlarm', 'WindowsNotCountedAlarm', 'WindowsRejectedAlarm', 'WindowsTooOldAlarm', 'WindowsUncertainAlarm',
    ]);
    const alarms = Object.entries(template().findResources('AWS::CloudWatch::Alarm')).filter(([id]) => id.startsWith('Stripe'));
    expect(alarms).toHaveLength(16);
    for (const [, a] of alarms) {
      expect(a.Properties.AlarmActions).toEqual([{ Ref: expect.stringMatching(/^Ops/) }]);
      expect(a.Properties.TreatMissingData).toBe('notBreaching');
    }
    template().hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'WindowsTooOld', Namespace: 'CdkSaasBilling/StripeBilling', Dimensions: [{ Name: 'service', Value: billing.serviceName }],
    });
  });

  test('outputs: the webhook URL, the tables, the secret ARNs and the meter ids', () => {
    const outputs = build(newStack()).template().findOutputs('*');
    const names = Object.keys(outputs).filter((k) => k.startsWith('Stripe')).map((k) => k.replace(/^Stripe/, '').replace(/[0-9A-F]{8}$/, ''));
    expect(names.sort()).toEqual(['ApiKeySecretArn', 'CustomersTableName', 'MeterIdapicalls', 'MeterIds', 'MeterIdstoragemb', 'UsagePushTableName',
      'WebhookEndpointId', 'WebhookSigningSecretArn', 'WebhookUrl']);
  });

  test('webhookSigningSecretRotation reaches the setup\'s properties; the setup runs hourly to end a rotation', () => {
    const t = build(newStack(), { webhookSigningSecretRotation: '2026-12-01' }).template();
    t.hasResourceProperties('Custom::StripeSetup', { SigningSecretRotation: '2026-12-01' });
    t.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 hour)',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^StripeSetup'), 'Arn'] }, Input: Match.stringLikeRegexp('cdkSaasBillingSetupSweep') })],
    });
  });

  test('the IBilling slots: no user functions (Stripe has no users), a push every 5 minutes by default', () => {
    const { billing, provider } = build(newStack());
    expect(billing.billing.createUserFunction).toBeUndefined();
    expect(billing.billing.deleteUserFunction).toBeUndefined();
    expect(billing.putUsageFunction?.schedule?.expressionString).toBe('rate(5 minutes)');
    expect(provider.createUser).toBeUndefined();
    expect(provider.putUsage).toBeDefined();
  });

  test('other languages pass `billing`: the same template as the construct itself', () => {
    const a = newStack();
    build(a);
    const b = newStack();
    const ingestor = new UsageIngestor(b, 'Ingestor');
    const httpApi = controlPlaneApi(b, 'Api');
    const billing = new StripeBilling(b, 'Stripe', {
      apiKey: secretsmanager.Secret.fromSecretNameV2(b, 'ApiKey', 'stripe/api-key'),
      ingestor,
      httpApi,
      meters: [{ metric: 'apiCalls', eventName: 'api_calls' }, { metric: 'storageGb', eventName: 'storage_mb', multiplier: '1000', rounding: StripeMeterRounding.UP }],
      prices: ['price_base'],
    });
    new BillingProvider(b, 'Billing', { billing: billing.billing, httpApi });
    expect(Template.fromStack(b).toJSON()).toEqual(Template.fromStack(a).toJSON());
  });

  test('cdk-nag: no unacknowledged finding', () => {
    const findings = nagFindings((app) => build(newStack(app)));
    expect(findings).toEqual([]);
  });

  test('cfn-lint: no error', () => {
    const stack = newStack();
    build(stack);
    expect(cfnLintErrors(stack)).toEqual([]);
  });

  describe('refuses bad props, all problems at once, each with the value and the fix', () => {
    test('fails if the webhook has no URL to be set up on, and if settings contradict each other', () => {
      const stack = newStack();
      expect(() => new StripeBilling(stack, 'Stripe', {
        apiKey: secretsmanager.Secret.fromSecretNameV2(stack, 'ApiKey', 'stripe/api-key'),
        webhookSigningSecret: secretsmanager.Secret.fromSecretNameV2(stack, 'S', 'x'),
        deleteCustomerOnOffboarding: true,
        subscriptionCancellation: StripeSubscriptionCancellation.AT_PERIOD_END,
        initialLookback: Duration.days(40),
        pushConcurrency: 0,
      })).toThrow(new RegExp([
        'StripeBilling at Stack/Stripe: invalid props:',
        '- webhookSigningSecret \\(Python: webhook_signing_secret\\) is only used when manageStripeResources is false .*',
        '- httpApi \\(Python: http_api\\) or restApi or webhookBaseUrl is required to create the Stripe webhook endpoint \\(given undefined\\): pass the HTTP API or REST API .*',
        '- deleteCustomerOnOffboarding \\(Python: delete_customer_on_offboarding\\) cannot be combined with subscriptionCancellation AT_PERIOD_END.*',
        '- initialLookback .* must be between 1 hour and 34 days .*',
        '- pushConcurrency .* must be an integer between 1 and 64 \\(given number 0\\).*',
      ].join('\n')));
    });

    test('fails on a malformed rotation label, and on one without the setup', () => {
      const stack = newStack();
      expect(() => build(stack, { webhookSigningSecretRotation: 'with space' })).toThrow(
        /- webhookSigningSecretRotation \(Python: webhook_signing_secret_rotation\) must be 1 to 100 visible ASCII characters \(no spaces\) \(given 'with space'\): use a label such as '2026-12-01'/);
      const other = newStack();
      expect(() => build(other, {
        manageStripeResources: false,
        httpApi: undefined,
        webhookSigningSecretRotation: 'r1',
        webhookSigningSecret: secretsmanager.Secret.fromSecretNameV2(other, 'S', 'x'),
      })).toThrow(/- webhookSigningSecretRotation .* is only used when manageStripeResources is true/);
    });

    test('fails on malformed meters and prices', () => {
      const stack = newStack();
      let error = '';
      try {
        new StripeBilling(stack, 'Stripe', {
          apiKey: secretsmanager.Secret.fromSecretNameV2(stack, 'ApiKey', 'stripe/api-key'),
          webhookBaseUrl: 'http://insecure.example.com',
          meters: [
            { metric: 'api calls', eventName: 'api calls' },
            { metric: 'x', eventName: 'x', multiplier: '0' },
            { metric: 'x', eventName: 'y', multiplier: '-2' },
          ],
          prices: ['prod_123', 'price_a', 'price_a'],
          webhookPath: '/stripe/',
        });
      } catch (e) {
        error = (e as Error).message;
      }
      for (const expected of [
        "meters[0].metric must be 1 to 128 characters of ASCII letters, digits and _ - . : @ + = (not '.' or '..') (given 'api calls')",
        "meters[0].eventName (Python: meters[0].event_name) must be 1 to 100 letters, digits or _ - . : (given 'api calls')",
        "meters[1].multiplier must be a positive decimal string with at most 12 decimal places (given '0')", "meters[2].metric is mapped twice (given 'x')",
        "meters[2].multiplier must be a positive decimal string with at most 12 decimal places (given '-2')",
        "prices[0] must be a Stripe price id (given 'prod_123')", "prices[2] is listed twice (given 'price_a')",
        "webhookPath (Python: webhook_path) would mount POST /billing//stripe/ (given '/stripe/')",
        "webhookBaseUrl (Python: webhook_base_url) must be an https URL without query, fragment or credentials (given 'http://insecure.example.com')",
      ]) expect(error).toContain(expected);
    });

    test('fails if manageStripeResources is false and no signing secret is given', () => {
      const stack = newStack();
      expect(() => new StripeBilling(stack, 'Stripe', {
        apiKey: secretsmanager.Secret.fromSecretNameV2(stack, 'ApiKey', 'stripe/api-key'), manageStripeResources: false,
      })).toThrow(/webhookSigningSecret \(Python: webhook_signing_secret\) is required when manageStripeResources is false \(given undefined\): pass the secret/);
    });

    test('fails at synth if Stripe is told to call a route the HTTP API does not have', () => {
      const stack = newStack();
      const httpApi = new apigwv2.HttpApi(stack, 'Api');
      new StripeBilling(stack, 'Stripe', { apiKey: secretsmanager.Secret.fromSecretNameV2(stack, 'ApiKey', 'stripe/api-key'), httpApi });
      expect(() => Template.fromStack(stack)).toThrow(/Stripe is told to call POST \/billing\/stripe on HTTP API Stack\/Api, but that API has no such route: pass this StripeBilling .* to a BillingProvider with that httpApi/);
    });

    test('warns when meters are given without an ingestor', () => {
      const stack = newStack();
      new StripeBilling(stack, 'Stripe', {
        apiKey: secretsmanager.Secret.fromSecretNameV2(stack, 'ApiKey', 'stripe/api-key'), webhookBaseUrl: 'https://api.example.com', meters: [{ metric: 'a', eventName: 'a' }],
      });
      Annotations.fromStack(stack).hasWarning('/Stack/Stripe', Match.stringLikeRegexp('meters are given but ingestor is not'));
    });
  });

  test('a custom schedule and the event names of another control plane reach the rule and the webhook', () => {
    const stack = newStack();
    const controlPlaneEvents = new ControlPlaneEvents({ billingSource: 'my.billing', billingSuccess: 'paid', billingFailure: 'unpaid', billingSubscriptionChanged: 'subChanged' });
    const { billing, template } = build(stack,
      { schedule: events.Schedule.rate(Duration.minutes(15)), invoiceGracePeriod: Duration.hours(2), controlPlaneEvents },
      { controlPlaneEvents });
    const t = template();
    t.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(15 minutes)' });
    t.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('verifies Stripe webhook'),
      Environment: {
        Variables: Match.objectLike({
          BILLING_SUCCESS_SOURCE: 'my.billing',
          BILLING_SUCCESS_DETAIL_TYPE: 'paid',
          BILLING_FAILURE_DETAIL_TYPE: 'unpaid',
          BILLING_SUBSCRIPTION_CHANGED_SOURCE: 'my.billing',
          BILLING_SUBSCRIPTION_CHANGED_DETAIL_TYPE: 'subChanged',
        }),
      },
    });
    expect(billing.billing.controlPlaneEvents).toBe(controlPlaneEvents);
  });

  test('by default the webhook emits the subscription changed event under this library\'s own name, on the default bus', () => {
    const { billing, template } = build(newStack());
    template().hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('verifies Stripe webhook'),
      Environment: {
        Variables: Match.objectLike({
          BILLING_SUBSCRIPTION_CHANGED_SOURCE: 'sbt.control.plane',
          BILLING_SUBSCRIPTION_CHANGED_DETAIL_TYPE: 'cdk_saas_billing_subscriptionChanged',
          BILLING_EVENT_BUS_ARN: Match.objectLike({ 'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp(':event-bus/default$')])] }),
        }),
      },
    });
    expect(billing.billing.eventBus).toBe(billing.eventBus);
  });
});

describe('billing periods: usage reaches each invoice before Stripe finalizes it', () => {
  test('the defaults fit Stripe\'s default 1-hour grace period: 32 min closing delay + 5 min schedule + 5 min run, with 10 min for Stripe', () => {
    const stack = newStack();
    const ingestor = new UsageIngestor(stack, 'Ingestor');
    expect(ingestor.closingTimes?.maxClosingDelay.toMinutes()).toBe(32);
    expect(ingestor.closingTimes?.windowSeconds).toBe(3600);
    const t = build(stack, { ingestor }).template();
    t.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('pushes closed usage windows'),
      Timeout: 300,
      Environment: { Variables: Match.objectLike({ INVOICE_GRACE_SECONDS: '3600' }) },
    });
    t.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('creates the Stripe customer'), Environment: { Variables: Match.objectLike({ BILLING_ANCHOR_SECONDS: '3600' }) },
    });
    t.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('cancels its subscription'), Environment: { Variables: Match.objectLike({ OFFBOARDING_WAIT_SECONDS: '1920' }) },
    });
  });

  test('daily windows anchor subscriptions on UTC midnights', () => {
    const stack = newStack();
    const ingestor = new UsageIngestor(stack, 'Ingestor', { windowGranularity: WindowGranularity.DAY });
    build(stack, { ingestor }).template().hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('creates the Stripe customer'), Environment: { Variables: Match.objectLike({ BILLING_ANCHOR_SECONDS: '86400' }) },
    });
  });

  test('fails if the worst-case delivery time exceeds invoiceGracePeriod, naming every part and the fix', () => {
    const stack = newStack();
    const ingestor = new UsageIngestor(stack, 'Ingestor', { allowedLateness: Duration.hours(1) });
    expect(() => build(stack, { ingestor })).toThrow(new RegExp('invoiceGracePeriod \\(Python: invoice_grace_period\\) is shorter than the worst-case delivery time '
      + 'of the last window of a billing period, 87 minutes \\(the ingestor\'s closing delay 77 min, the push schedule 5 min and the push\'s longest run 5 min\\) '
      + 'plus 10 minutes for Stripe to process it.*\\(given \'1 hour\'\\).*invoiceGracePeriod: Duration.hours\\(2\\)'));
  });

  test('a declared longer grace period (set in Stripe) makes room for a longer lateness', () => {
    const stack = newStack();
    const ingestor = new UsageIngestor(stack, 'Ingestor', { allowedLateness: Duration.hours(1) });
    expect(() => build(stack, { ingestor, invoiceGracePeriod: Duration.hours(2) })).not.toThrow();
  });

  test('fails if invoiceGracePeriod is beyond the 72 hours Stripe allows', () => {
    expect(() => build(newStack(), { invoiceGracePeriod: Duration.hours(73) }))
      .toThrow(/invoiceGracePeriod \(Python: invoice_grace_period\) must be between 0 seconds and 3 days \(given 3 days 1 hour\): .*at most 72 hours/);
  });

  test('a cron schedule cannot be checked: a warning says so', () => {
    const stack = newStack();
    build(stack, { schedule: events.Schedule.cron({ minute: '0/10' }) });
    Annotations.fromStack(stack).hasWarning('/Stack/Stripe', Match.stringLikeRegexp('the push schedule is not a rate'));
  });

  test('offboarding schedules: their own group; the role may invoke only the offboarding function; the function may create schedules only in that group', () => {
    const t = build(newStack()).template();
    t.resourceCountIs('AWS::Scheduler::ScheduleGroup', 1);
    const role = policyStatements(t, 'StripeOffboardingSchedulerRole');
    expect(role).toEqual(expect.arrayContaining([expect.objectContaining({
      Action: 'lambda:InvokeFunction', Resource: { 'Fn::GetAtt': [expect.stringMatching(/^StripeDeleteCustomer/), 'Arn'] },
    })]));
    expect(JSON.stringify(policyStatements(t, 'StripeDeleteCustomerRole'))).toMatch(/scheduler:CreateSchedule.*StripeOffboardingScheduleGroup/);
  });
});
