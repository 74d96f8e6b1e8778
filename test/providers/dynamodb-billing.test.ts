import { CfnResource, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cw_actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import { BillingProvider, ControlPlaneEvents, IBilling, UsageIngestor } from '../../src';
import { DynamoDbBilling, DynamoDbBillingProps } from '../../src/providers';
import {
  BILLING_TABLE, METRIC_NAMESPACE, METRICS, PUSH_ENV, WEBHOOK_ENV, WEBHOOK_EVENTS_TABLE,
} from '../../src/providers/dynamodb-billing/contract';
import { cfnLintErrors, testApp } from '../support/synth';

function newStack(): Stack {
  return new Stack(testApp('dynamodb-billing'), 'TestStack', { env: { account: '111111111111', region: 'us-east-1' } });
}

/** The environment of DynamoDbBilling's function `name` (construct id `Billing`). */
function envOf(template: Template, name: string): Record<string, unknown> {
  const fns = Object.entries(template.findResources('AWS::Lambda::Function')).filter(([id]) => new RegExp(`^Billing${name}[0-9A-F]{8}$`).test(id));
  expect(fns).toHaveLength(1);
  return fns[0][1].Properties.Environment.Variables;
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
    t.resourcePropertiesCountIs('AWS::Lambda::Function', { Runtime: 'nodejs24.x', Description: Match.stringLikeRegexp('^cdk-saas-billing DynamoDbBilling: ') }, 6);
    // every function says what it does, never where its source is
    expect(JSON.stringify(t.findResources('AWS::Lambda::Function'))).not.toMatch(/\.lambda\.ts|src\//);
    t.resourcePropertiesCountIs('AWS::Logs::LogGroup', { RetentionInDays: 365 }, 6);
    t.resourceCountIs('AWS::CloudWatch::Alarm', 3);
  });

  test('the webhook reads the secret at run time: the template holds its ARN, never a value', () => {
    // GIVEN
    const stack = newStack();
    // WHEN
    new DynamoDbBilling(stack, 'Billing');
    // THEN
    const t = Template.fromStack(stack);
    const env = envOf(t, 'Webhook');
    expect(env[WEBHOOK_ENV.WEBHOOK_SECRET_ARN]).toEqual({ Ref: expect.stringMatching(/WebhookSecret/) });
    expect(JSON.stringify(t.toJSON())).not.toMatch(/resolve:secretsmanager/);
    expect(env).toMatchObject({
      [WEBHOOK_ENV.SIGNATURE_HEADER_NAME]: 'x-billing-signature',
      [WEBHOOK_ENV.SIGNATURE_TOLERANCE_SECONDS]: '300',
      [WEBHOOK_ENV.MAX_WEBHOOK_BODY_BYTES]: '262144',
      [WEBHOOK_ENV.PROCESSED_EVENT_RETENTION_SECONDS]: String(30 * 86400),
      [WEBHOOK_ENV.CLAIM_LEASE_SECONDS]: '30',
      [WEBHOOK_ENV.BILLING_SUCCESS_SOURCE]: 'sbt.control.plane',
      [WEBHOOK_ENV.BILLING_SUCCESS_DETAIL_TYPE]: 'sbt_aws_billingSuccess',
      [WEBHOOK_ENV.BILLING_FAILURE_SOURCE]: 'sbt.control.plane',
      [WEBHOOK_ENV.BILLING_FAILURE_DETAIL_TYPE]: 'sbt_aws_billingFailure',
    });
    // the bus's ARN, under a name that says so
    expect(JSON.stringify(env[WEBHOOK_ENV.EVENT_BUS_ARN])).toMatch(/:events:us-east-1:111111111111:event-bus\/default/);
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
    const env = envOf(t, 'PutUsage');
    expect(JSON.parse(env[PUSH_ENV.UNIT_PRICES] as string)).toEqual([
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
    expect(actionsOf('BillingCreateCustomerRole')).toEqual(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem']);
    expect(actionsOf('BillingDeleteCustomerRole')).toEqual(['dynamodb:Query', 'dynamodb:UpdateItem']);
    expect(actionsOf('BillingCreateUserRole')).toEqual(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem']);
    expect(actionsOf('BillingDeleteUserRole')).toEqual(['dynamodb:UpdateItem']);
    expect(actionsOf('BillingWebhookRole')).toEqual(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem']);
    for (const role of Object.values(t.findResources('AWS::IAM::Role'))) {
      expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    }
  });

  test('least privilege: the push gets only the billing table actions it uses, Query for the reconciliation records of a period', () => {
    // GIVEN
    const stack = newStack();
    // WHEN
    new DynamoDbBilling(stack, 'Billing', { ingestor: new UsageIngestor(stack, 'Ingestor') });
    // THEN
    const statements = Object.values(Template.fromStack(stack).findResources('AWS::IAM::Policy'))
      .filter((p) => JSON.stringify(p.Properties.Roles).includes('BillingPutUsageRole'))
      .flatMap((p) => p.Properties.PolicyDocument.Statement)
      .filter((st: { Resource: unknown }) => JSON.stringify(st.Resource).includes('BillingBillingTable'));
    const actions = statements.flatMap((st: { Action: string | string[] }) => [st.Action].flat()).sort();
    expect(actions).toEqual(['dynamodb:ConditionCheckItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem']);
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
      signatureTolerance: Duration.minutes(1),
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
    expect(envOf(t, 'Webhook')).toMatchObject({
      [WEBHOOK_ENV.EVENT_BUS_ARN]: { 'Fn::GetAtt': [expect.stringMatching(/^Bus/), 'Arn'] },
      [WEBHOOK_ENV.SIGNATURE_HEADER_NAME]: 'stripe-signature',
      [WEBHOOK_ENV.SIGNATURE_TOLERANCE_SECONDS]: '60',
      [WEBHOOK_ENV.MAX_WEBHOOK_BODY_BYTES]: '4096',
      [WEBHOOK_ENV.BILLING_SUCCESS_SOURCE]: 'my.billing',
      [WEBHOOK_ENV.BILLING_SUCCESS_DETAIL_TYPE]: 'paid',
      [WEBHOOK_ENV.BILLING_FAILURE_DETAIL_TYPE]: 'unpaid',
    });
    // the log groups follow the removal policy too
    t.resourcePropertiesCountIs('AWS::Logs::LogGroup', {}, 5);
    expect(Object.values(t.findResources('AWS::Logs::LogGroup')).every((g) => g.DeletionPolicy === 'Delete')).toBe(true);
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
    ['a price is a float-looking number with an exponent', { unitPrices: [{ metric: 'm', unitPrice: '1e-3' }] },
      /- unitPrices\[0\]\.unitPrice \(Python: unit_prices\[0\]\.unit_price\) must be a non-negative decimal string with at most 12 decimal places \(given '1e-3'\): write the price as a string, for example '0\.0025'/],
    ['a price is negative', { unitPrices: [{ metric: 'm', unitPrice: '-1' }] }, /unitPrice .* \(given '-1'\)/],
    ['a price has more than 12 decimal places', { unitPrices: [{ metric: 'm', unitPrice: '0.0000000000001' }] }, /at most 12 decimal places/],
    ['a metric is priced twice', { unitPrices: [{ metric: 'm', unitPrice: '1' }, { metric: 'm', unitPrice: '2' }] }, /unitPrices\[1\]\.metric .*is priced twice \(given 'm'\)/],
    ['a metric name has a space', { unitPrices: [{ metric: 'api calls', unitPrice: '1' }] }, /metric .*must be 1 to 128 characters of ASCII letters, digits and _ - \. : @ \+ = .* \(given 'api calls'\)/],
    ['a currency is not ISO 4217', { unitPrices: [{ metric: 'm', unitPrice: '1', currency: 'usd' }] }, /currency .*must be an ISO 4217 code in capitals \(given 'usd'\)/],
    ['the price list is too large for the environment', { unitPrices: Array.from({ length: 60 }, (_, i) => ({ metric: `metric-with-a-long-name-${i}`, unitPrice: '1' })) }, /limit 2500/],
    ['the webhook path has a leading slash', { webhookPath: '/webhook' },
      /- webhookPath \(Python: webhook_path\) would mount POST \/billing\/\/webhook \(given '\/webhook'\): remove leading, trailing and double slashes \(for example 'webhook'\)/],
    ['the webhook path has a double slash', { webhookPath: 'a//b' }, /webhookPath .*\(given 'a\/\/b'\)/],
    ['the signature header name has a space', { signatureHeaderName: 'x sig' }, /signatureHeaderName .*\(given 'x sig'\)/],
    ['the tolerance is 0', { signatureTolerance: Duration.seconds(0) }, /signatureTolerance \(Python: signature_tolerance\) must be between 1 second and 1 hour \(given 0 seconds\)/],
    ['the tolerance is over an hour', { signatureTolerance: Duration.seconds(3601) }, /\(given 1 hour 1 second\)/],
    ['the body cap is below 1 KiB', { maxWebhookBodyBytes: 100 }, /maxWebhookBodyBytes \(Python: max_webhook_body_bytes\) must be an integer between 1024 and 6291456 bytes \(given number 100\)/],
    ['the body cap is over 6 MiB', { maxWebhookBodyBytes: 7_000_000 }, /\(given number 7000000\)/],
    ['processed events are kept less than a day', { processedEventRetention: Duration.hours(1) }, /processedEventRetention .*must be at least 1 day \(given 1 hour\)/],
    ['the initial lookback is under an hour', { initialLookback: Duration.minutes(5) }, /initialLookback .*must be between 1 hour and 400 days \(given 5 minutes\)/],
  ];
  test.each(bad)('fails if %s', (_name, props, message) => {
    const stack = newStack();
    expect(() => new DynamoDbBilling(stack, 'Billing', props)).toThrow(message);
  });

  test('fails with every problem at once, in the one format', () => {
    const stack = newStack();
    expect(() => new DynamoDbBilling(stack, 'Billing', { signatureTolerance: Duration.seconds(0), maxWebhookBodyBytes: 1 })).toThrow(
      'DynamoDbBilling at TestStack/Billing: invalid props:\n'
      + '- signatureTolerance (Python: signature_tolerance) must be between 1 second and 1 hour (given 0 seconds): give a Duration from 1 second to 1 hour\n'
      + '- maxWebhookBodyBytes (Python: max_webhook_body_bytes) must be an integer between 1024 and 6291456 bytes (given number 1): give a value from 1024 to 6291456 bytes');
  });

  test('outputs the billing table and the secret\'s ARN', () => {
    // GIVEN
    const stack = newStack();
    // WHEN
    const billing = new DynamoDbBilling(stack, 'Billing');
    // THEN
    const outputs = Template.fromStack(stack).findOutputs('*');
    const byId = (part: string) => Object.entries(outputs).find(([id]) => id.startsWith(`Billing${part}`))?.[1];
    expect(byId('BillingTableName')?.Value).toEqual({ Ref: stack.getLogicalId(billing.billingTable.node.defaultChild as CfnResource) });
    expect(byId('WebhookSecretArn')?.Value).toEqual({ Ref: expect.stringMatching(/^BillingWebhookSecret/) });
  });

  test('alarms: concrete Alarms with the actions given, one on usage of closed customers', () => {
    // GIVEN
    const stack = newStack();
    const topic = new sns.Topic(stack, 'Ops');
    // WHEN
    const billing = new DynamoDbBilling(stack, 'Billing', { ingestor: new UsageIngestor(stack, 'Ingestor'), alarmActions: [new cw_actions.SnsAction(topic)] });
    // THEN
    expect(billing.alarms.map((a) => a.node.id)).toEqual(['WebhookErrorsAlarm', 'PutUsageErrorsAlarm', 'UsageAfterCloseAlarm']);
    expect(billing.alarms.every((a) => a instanceof cloudwatch.Alarm)).toBe(true);
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: METRIC_NAMESPACE,
      MetricName: METRICS.WINDOWS_NOT_BILLED_AFTER_CLOSE,
      Dimensions: [{ Name: 'service', Value: envOf(t, 'PutUsage').POWERTOOLS_SERVICE_NAME }],
      AlarmActions: [{ Ref: Match.stringLikeRegexp('^Ops') }],
      TreatMissingData: 'notBreaching',
    });
    for (const id of ['BillingWebhookErrorsAlarm', 'BillingPutUsageErrorsAlarm']) {
      expect(Object.keys(t.findResources('AWS::CloudWatch::Alarm', { Properties: { AlarmActions: [{ Ref: Match.stringLikeRegexp('^Ops') }] } })).some((k) => k.startsWith(id))).toBe(true);
    }
  });

  test('the tables are keyed as the contract with the handlers says', () => {
    const stack = newStack();
    new DynamoDbBilling(stack, 'Billing');
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [{ AttributeName: BILLING_TABLE.partitionKey, KeyType: 'HASH' }, { AttributeName: BILLING_TABLE.sortKey, KeyType: 'RANGE' }],
    });
    t.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [{ AttributeName: WEBHOOK_EVENTS_TABLE.partitionKey, KeyType: 'HASH' }],
      TimeToLiveSpecification: { AttributeName: WEBHOOK_EVENTS_TABLE.ttlAttribute, Enabled: true },
    });
  });
});
