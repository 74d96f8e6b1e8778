import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as events from 'aws-cdk-lib/aws-events';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { BillingProvider, ControlPlaneEvents, IBilling, UsageIngestor } from '../../src';
import { DynamoDbBilling, DynamoDbBillingProps } from '../../src/providers';
import { cfnLintErrors, testApp } from '../support/synth';

function newStack(): Stack {
  return new Stack(testApp('dynamodb-billing'), 'TestStack', { env: { account: '111111111111', region: 'us-east-1' } });
}

function envOf(template: Template, description: string): Record<string, unknown> {
  const fns = template.findResources('AWS::Lambda::Function', { Properties: { Description: Match.stringLikeRegexp(description) } });
  const list = Object.values(fns);
  expect(list).toHaveLength(1);
  return list[0].Properties.Environment.Variables;
}

describe('DynamoDbBilling', () => {
  test('the construct itself is an IBilling in TypeScript, and billing holds the same functions', () => {
    // GIVEN
    const stack = newStack();
    // WHEN
    const billing = new DynamoDbBilling(stack, 'Billing', { ingestor: new UsageIngestor(stack, 'Ingestor') });
    const asInterface: IBilling = billing; // type-level check: compiles only if the construct satisfies IBilling
    // THEN
    expect(asInterface.createCustomerFunction.handler).toBe(billing.billing.createCustomerFunction.handler);
    expect(billing.billing.deleteCustomerFunction.handler).toBe(billing.deleteCustomerFunction.handler);
    expect(billing.billing.createUserFunction?.handler).toBe(billing.createUserFunction.handler);
    expect(billing.billing.deleteUserFunction?.handler).toBe(billing.deleteUserFunction.handler);
    expect(billing.billing.putUsageFunction?.handler).toBe(billing.putUsageFunction?.handler);
    expect(billing.billing.webhookFunction).toEqual({ path: 'webhook', handler: billing.webhookFunction.handler });
    expect(billing.billing.ingestor).toBe(billing.ingestor);
  });

  test('defaults: two retained, encrypted, PITR tables, a created secret, six nodejs24.x functions with log retention', () => {
    // GIVEN an ingestor in a stack of its own, so that the counts below are DynamoDbBilling's alone
    const stack = newStack();
    const ingestorStack = new Stack(stack.node.root, 'IngestorStack', { env: { account: '111111111111', region: 'us-east-1' } });
    // WHEN
    new DynamoDbBilling(stack, 'Billing', { ingestor: new UsageIngestor(ingestorStack, 'Ingestor') });
    // THEN
    const t = Template.fromStack(stack);
    t.resourcePropertiesCountIs('AWS::DynamoDB::Table', {
      SSESpecification: { SSEEnabled: true },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      DeletionProtectionEnabled: true,
    }, 2);
    t.hasResource('AWS::DynamoDB::Table', {
      Properties: { KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'sk', KeyType: 'RANGE' }], BillingMode: 'PAY_PER_REQUEST' },
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
    t.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
    });
    t.hasResource('AWS::SecretsManager::Secret', {
      Properties: { GenerateSecretString: { PasswordLength: 64, ExcludePunctuation: true } },
      DeletionPolicy: 'Retain',
    });
    t.resourcePropertiesCountIs('AWS::Lambda::Function', { Runtime: 'nodejs24.x', Description: Match.stringLikeRegexp('dynamodb-billing') }, 6);
    t.resourcePropertiesCountIs('AWS::Logs::LogGroup', { RetentionInDays: 365 }, 6);
    t.resourceCountIs('AWS::CloudWatch::Alarm', 2);
  });

  test('the webhook reads the secret at run time: the template holds its ARN, never a value', () => {
    // GIVEN
    const stack = newStack();
    // WHEN
    new DynamoDbBilling(stack, 'Billing');
    // THEN
    const t = Template.fromStack(stack);
    const env = envOf(t, 'webhook');
    expect(env.WEBHOOK_SECRET_ARN).toEqual({ Ref: expect.stringMatching(/WebhookSecret/) });
    expect(JSON.stringify(t.toJSON())).not.toMatch(/resolve:secretsmanager/);
    expect(env).toMatchObject({
      SIGNATURE_HEADER: 'x-billing-signature',
      SIGNATURE_TOLERANCE_SECONDS: '300',
      MAX_BODY_BYTES: '262144',
      PROCESSED_EVENT_RETENTION_SECONDS: String(30 * 86400),
      BILLING_EVENT_SOURCE: 'sbt.control.plane',
      BILLING_SUCCESS_DETAIL_TYPE: 'sbt_aws_billingSuccess',
      BILLING_FAILURE_DETAIL_TYPE: 'sbt_aws_billingFailure',
    });
    const webhookStatements = Object.values(t.findResources('AWS::IAM::Policy'))
      .filter((p) => JSON.stringify(p.Properties.Roles).includes('BillingWebhookRole'))
      .flatMap((p) => p.Properties.PolicyDocument.Statement);
    expect(webhookStatements).toEqual(expect.arrayContaining([
      expect.objectContaining({ Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'], Resource: { Ref: expect.stringMatching(/WebhookSecret/) } }),
      expect.objectContaining({ Action: 'events:PutEvents', Resource: { 'Fn::Join': ['', [expect.anything(), expect.anything(), ':events:us-east-1:111111111111:event-bus/default']] } }),
    ]));
  });

  test('without an ingestor there is no usage push', () => {
    // GIVEN
    const stack = newStack();
    // WHEN
    const billing = new DynamoDbBilling(stack, 'Billing');
    // THEN
    expect(billing.putUsageFunction).toBeUndefined();
    expect(billing.billing.putUsageFunction).toBeUndefined();
    Template.fromStack(stack).resourceCountIs('AWS::Lambda::Function', 5);
  });

  test('the usage push gets the prices, its schedule and only read access to the aggregates', () => {
    // GIVEN
    const stack = newStack();
    const ingestor = new UsageIngestor(stack, 'Ingestor');
    const schedule = events.Schedule.rate(Duration.hours(1));
    // WHEN
    const billing = new DynamoDbBilling(stack, 'Billing', {
      ingestor,
      schedule,
      unitPrices: [{ metric: 'apiCalls', unitPrice: '0.0025' }, { metric: 'storageGb', unitPrice: '0.10', currency: 'EUR' }],
    });
    // THEN
    expect(billing.putUsageFunction?.schedule).toBe(schedule);
    const t = Template.fromStack(stack);
    const env = envOf(t, 'put-usage');
    expect(JSON.parse(env.UNIT_PRICES as string)).toEqual([
      { metric: 'apiCalls', unitPrice: '0.0025', currency: 'USD' },
      { metric: 'storageGb', unitPrice: '0.10', currency: 'EUR' },
    ]);
    const policies = JSON.stringify(t.findResources('AWS::IAM::Policy'));
    // Nothing grants a write on the ingestor's table.
    // Nothing that DynamoDbBilling created (the aggregator writes its own table, of course).
    const writes = Object.entries(t.findResources('AWS::IAM::Policy')).filter(([id]) => id.startsWith('Billing'))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement)
      .filter((s: { Action: string | string[]; Resource: unknown }) => JSON.stringify(s.Resource).includes('IngestorAggregateTable')
        && [s.Action].flat().some((a) => /Put|Update|Delete|Write/.test(a)));
    expect(writes).toEqual([]);
    expect(policies).toMatch(/IngestorAggregateTable/);
  });

  test('least privilege: each lifecycle function gets only the DynamoDB actions it uses, and no managed policy', () => {
    // GIVEN
    const stack = newStack();
    // WHEN
    new DynamoDbBilling(stack, 'Billing');
    // THEN
    const t = Template.fromStack(stack);
    const actionsOf = (role: string) => Object.values(t.findResources('AWS::IAM::Policy'))
      .filter((p) => JSON.stringify(p.Properties.Roles).includes(role))
      .flatMap((p) => p.Properties.PolicyDocument.Statement)
      .flatMap((s: { Action: string | string[] }) => [s.Action].flat())
      .filter((a: string) => a.startsWith('dynamodb:'))
      .sort();
    expect(actionsOf('BillingCreateCustomerRole')).toEqual(['dynamodb:GetItem', 'dynamodb:PutItem']);
    expect(actionsOf('BillingDeleteCustomerRole')).toEqual(['dynamodb:Query', 'dynamodb:UpdateItem']);
    expect(actionsOf('BillingCreateUserRole')).toEqual(['dynamodb:PutItem']);
    expect(actionsOf('BillingDeleteUserRole')).toEqual(['dynamodb:UpdateItem']);
    expect(actionsOf('BillingWebhookRole')).toEqual(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem']);
    for (const role of Object.values(t.findResources('AWS::IAM::Role'))) {
      expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    }
  });

  test('a given secret, bus, path and event names are used; no secret is created', () => {
    // GIVEN
    const stack = newStack();
    const secret = secretsmanager.Secret.fromSecretNameV2(stack, 'Given', 'billing/webhook');
    const bus = new events.EventBus(stack, 'Bus');
    // WHEN
    const billing = new DynamoDbBilling(stack, 'Billing', {
      webhookSecret: secret,
      eventBus: bus,
      webhookPath: 'payments/events',
      signatureHeaderName: 'Stripe-Signature',
      signatureToleranceSeconds: 60,
      maxWebhookBodyBytes: 4096,
      controlPlaneEvents: new ControlPlaneEvents({ billingSource: 'my.billing', billingSuccess: 'paid', billingFailure: 'unpaid' }),
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // THEN
    expect(billing.webhookSecret).toBe(secret);
    expect(billing.webhookFunction.path).toBe('payments/events');
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::SecretsManager::Secret', 0);
    t.resourcePropertiesCountIs('AWS::DynamoDB::Table', { DeletionProtectionEnabled: false }, 2);
    t.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Delete' });
    expect(envOf(t, 'webhook')).toMatchObject({
      EVENT_BUS_NAME: { 'Fn::GetAtt': [expect.stringMatching(/^Bus/), 'Arn'] },
      SIGNATURE_HEADER: 'stripe-signature',
      SIGNATURE_TOLERANCE_SECONDS: '60',
      MAX_BODY_BYTES: '4096',
      BILLING_EVENT_SOURCE: 'my.billing',
      BILLING_SUCCESS_DETAIL_TYPE: 'paid',
      BILLING_FAILURE_DETAIL_TYPE: 'unpaid',
    });
  });

  test('BillingProvider wires it: four rules, a schedule and POST /billing/webhook', () => {
    // GIVEN
    const stack = newStack();
    const ingestor = new UsageIngestor(stack, 'Ingestor');
    const billing = new DynamoDbBilling(stack, 'Billing', { ingestor, unitPrices: [{ metric: 'apiCalls', unitPrice: '0.01' }] });
    // WHEN
    new BillingProvider(stack, 'Provider', { billing, httpApi: new apigwv2.HttpApi(stack, 'Api') });
    // THEN
    const t = Template.fromStack(stack);
    for (const detailType of ['sbt_aws_onboardingRequest', 'sbt_aws_offboardingRequest', 'sbt_aws_tenantUserCreated', 'sbt_aws_tenantUserDeleted']) {
      t.hasResourceProperties('AWS::Events::Rule', { EventPattern: { 'source': ['sbt.control.plane'], 'detail-type': [detailType] } });
    }
    t.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(1 day)' });
    t.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'POST /billing/webhook' });
  });

  test('the template of DynamoDbBilling with UsageIngestor and BillingProvider passes cfn-lint', () => {
    // GIVEN
    const stack = newStack();
    const ingestor = new UsageIngestor(stack, 'Ingestor');
    // WHEN
    const billing = new DynamoDbBilling(stack, 'Billing', { ingestor, unitPrices: [{ metric: 'apiCalls', unitPrice: '0.01' }] });
    new BillingProvider(stack, 'Provider', { billing, httpApi: new apigwv2.HttpApi(stack, 'Api') });
    // THEN
    expect(cfnLintErrors(stack)).toEqual([]);
  });

  test('a warning when prices are given without an ingestor', () => {
    // GIVEN
    const stack = newStack();
    // WHEN
    new DynamoDbBilling(stack, 'Billing', { unitPrices: [{ metric: 'apiCalls', unitPrice: '1' }] });
    // THEN
    Annotations.fromStack(stack).hasWarning('/TestStack/Billing', Match.stringLikeRegexp('no usage push to price'));
  });

  const bad: [string, DynamoDbBillingProps, RegExp][] = [
    ['a price is a float-looking number with an exponent', { unitPrices: [{ metric: 'm', unitPrice: '1e-3' }] }, /unitPrices\[0\]\.unitPrice '1e-3' for 'm' must be a non-negative decimal string/],
    ['a price is negative', { unitPrices: [{ metric: 'm', unitPrice: '-1' }] }, /unitPrice '-1'/],
    ['a price has more than 12 decimal places', { unitPrices: [{ metric: 'm', unitPrice: '0.0000000000001' }] }, /at most 12 decimal places/],
    ['a metric is priced twice', { unitPrices: [{ metric: 'm', unitPrice: '1' }, { metric: 'm', unitPrice: '2' }] }, /unitPrices\[1\]\.metric 'm' is priced twice/],
    ['a metric name has a space', { unitPrices: [{ metric: 'api calls', unitPrice: '1' }] }, /metric 'api calls' must be 1 to 128 characters/],
    ['a currency is not ISO 4217', { unitPrices: [{ metric: 'm', unitPrice: '1', currency: 'usd' }] }, /currency 'usd' for 'm' must be an ISO 4217 code/],
    ['the price list is too large for the environment', { unitPrices: Array.from({ length: 60 }, (_, i) => ({ metric: `metric-with-a-long-name-${i}`, unitPrice: '1' })) }, /limit 2500/],
    ['the webhook path has a leading slash', { webhookPath: '/webhook' }, /webhookPath '\/webhook' must be segments/],
    ['the webhook path has a double slash', { webhookPath: 'a//b' }, /webhookPath 'a\/\/b'/],
    ['the signature header name has a space', { signatureHeaderName: 'x sig' }, /signatureHeaderName 'x sig'/],
    ['the tolerance is 0', { signatureToleranceSeconds: 0 }, /signatureToleranceSeconds must be an integer between 1 and 3600 \(given 0\)/],
    ['the tolerance is over an hour', { signatureToleranceSeconds: 3601 }, /\(given 3601\)/],
    ['the body cap is below 1 KiB', { maxWebhookBodyBytes: 100 }, /maxWebhookBodyBytes must be an integer between 1024 and 6291456 \(given 100\)/],
    ['the body cap is over 6 MiB', { maxWebhookBodyBytes: 7_000_000 }, /\(given 7000000\)/],
    ['processed events are kept less than a day', { processedEventRetention: Duration.hours(1) }, /processedEventRetention must be at least 1 day \(given 3600 seconds\)/],
    ['the initial lookback is under an hour', { initialLookback: Duration.minutes(5) }, /initialLookback must be between 1 hour and 400 days \(given 300 seconds\)/],
  ];
  test.each(bad)('fails if %s', (_name, props, message) => {
    const stack = newStack();
    expect(() => new DynamoDbBilling(stack, 'Billing', props)).toThrow(message);
  });

  test('fails with every problem at once', () => {
    const stack = newStack();
    expect(() => new DynamoDbBilling(stack, 'Billing', { signatureToleranceSeconds: 0, maxWebhookBodyBytes: 1 }))
      .toThrow(/signatureToleranceSeconds[\s\S]*maxWebhookBodyBytes/);
  });
});
