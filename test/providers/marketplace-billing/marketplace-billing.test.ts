/**
 * MarketplaceBilling's template: its functions, tables, rule on AWS Marketplace's events, IAM,
 * alarms, validation, cdk-nag (0 unacknowledged) and cfn-lint (0 errors).
 */
import { App, Duration, Stack, Validations } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import { BillingProvider, MarketplaceBilling, MarketplaceBillingProps, MarketplaceRounding, UsageIngestor, WindowGranularity } from '../../../src';
import { MARKETPLACE_DETAIL_TYPES, MARKETPLACE_ENV } from '../../../src/providers/marketplace-billing/contract';
import { cfnLintErrors, nagFindings, scratchDir } from '../../support/synth';

const BASE = { productCode: 'prod-abc123example', registrationPageUrl: 'https://app.example.com/register' };

function newStack(app = new App({ outdir: scratchDir('mp-template') }), region = 'us-east-1'): Stack {
  return new Stack(app, 'Stack', { env: { account: '123456789012', region } });
}

function build(stack: Stack, props: Partial<MarketplaceBillingProps> = {}): { billing: MarketplaceBilling; provider: BillingProvider } {
  const ingestor = new UsageIngestor(stack, 'Ingestor');
  const httpApi = new apigwv2.HttpApi(stack, 'Api');
  Validations.of(httpApi.defaultStage!).acknowledge({ id: 'AwsSolutions-APIG1', reason: 'The test stands in for the user\'s HTTP API.' });
  const billing = new MarketplaceBilling(stack, 'Marketplace', {
    ...BASE,
    ingestor,
    dimensions: [{ metric: 'apiCalls', dimension: 'api_calls', multiplier: '0.001' }, { metric: 'storageGb', dimension: 'storage', rounding: MarketplaceRounding.UP }],
    ...props,
  });
  const provider = new BillingProvider(stack, 'Billing', { billing, httpApi });
  return { billing, provider };
}

describe('template', () => {
  test('the fulfillment URL is POST /billing/marketplace on the HTTP API, answered by the registration function', () => {
    const stack = newStack();
    const { billing } = build(stack);
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'POST /billing/marketplace' });
    expect(billing.webhookFunction.path).toBe('marketplace');
    expect(billing.billing.webhookFunction).toBe(billing.webhookFunction);
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ [MARKETPLACE_ENV.REGISTRATION_PAGE_URL]: BASE.registrationPageUrl, [MARKETPLACE_ENV.REGISTRATION_ID_FIELD]: 'marketplaceRegistrationId' }) },
    });
  });

  test('a rule on the default bus sends Marketplace\'s SaaS events to the lifecycle function, with retries and a dead-letter queue', () => {
    const stack = newStack();
    build(stack);
    Template.fromStack(stack).hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { 'source': ['aws.agreement-marketplace'], 'detail-type': Object.values(MARKETPLACE_DETAIL_TYPES) },
      Targets: [Match.objectLike({
        RetryPolicy: { MaximumRetryAttempts: 185, MaximumEventAgeInSeconds: 86400 }, DeadLetterConfig: Match.anyValue(),
      })],
    });
    Template.fromStack(stack).hasResourceProperties('AWS::Lambda::EventInvokeConfig', { DestinationConfig: { OnFailure: Match.anyValue() } });
  });

  test('the Marketplace actions each function needs, and no other', () => {
    const stack = newStack();
    build(stack, { contractEntitlements: true });
    const actions = Object.values(Template.fromStack(stack).findResources('AWS::IAM::Policy'))
      .flatMap((p) => p.Properties.PolicyDocument.Statement).flatMap((s: { Action: string | string[] }) => [s.Action].flat())
      .filter((a: string) => a.startsWith('aws-marketplace:'));
    expect([...new Set(actions)].sort()).toEqual(['aws-marketplace:BatchMeterUsage', 'aws-marketplace:GetEntitlements', 'aws-marketplace:ResolveCustomer']);
  });

  test('two tables that keep their data by default (point-in-time recovery, deletion protection), TTL on processed events', () => {
    const stack = newStack();
    build(stack);
    const t = Template.fromStack(stack);
    const tables = t.findResources('AWS::DynamoDB::Table');
    const mine = Object.entries(tables).filter(([id]) => id.startsWith('Marketplace')).map(([, r]) => r);
    expect(mine).toHaveLength(2);
    for (const r of mine) {
      expect(r.DeletionPolicy).toBe('Retain');
      expect(r.Properties).toMatchObject({ DeletionProtectionEnabled: true, PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true } });
    }
    expect(mine.filter((r) => r.Properties.TimeToLiveSpecification?.AttributeName === 'expiresAt')).toHaveLength(1);
  });

  test('the push runs every 5 minutes by default; alarms watch records near and past the deadline, refusals and errors, with the actions given', () => {
    const stack = newStack();
    const topic = { bind: () => ({ alarmActionArn: 'arn:aws:sns:us-east-1:123456789012:ops' }) };
    const { billing, provider } = build(stack, { alarmActions: [topic] });
    expect(provider.putUsage!.rule).toBeDefined();
    Template.fromStack(stack).hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(5 minutes)' });
    expect(billing.alarms.map((a) => a.node.id).sort()).toEqual([
      'LifecycleDeadLetterAlarm', 'OnboardingsRefusedAlarm', 'PutUsageErrorsAlarm', 'RecordsDuplicateAlarm', 'RecordsNearDeadlineAlarm', 'RecordsNotSubscribedAlarm',
      'RecordsRejectedAlarm', 'RecordsTooLateAlarm', 'RecordsUncertainAlarm', 'RegistrationErrorsAlarm', 'RegistrationsRefusedAlarm',
    ]);
    Template.fromStack(stack).hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'RecordsNearDeadline', Namespace: 'CdkSaasBilling/MarketplaceBilling', AlarmActions: ['arn:aws:sns:us-east-1:123456789012:ops'],
    });
  });

  test('typed metric methods name the handlers\' metrics', () => {
    const { billing } = build(newStack());
    expect(billing.metricRecordsSent().metricName).toBe('RecordsSent');
    expect(billing.metricRecordsTooLate().metricName).toBe('RecordsTooLate');
    expect(billing.metricRecordsNearDeadline().statistic).toBe('Maximum');
    expect(billing.metricPutUsageErrors().metricName).toBe('Errors');
  });

  test('without an ingestor: no push, no metering grant, and metricPutUsageErrors says why', () => {
    const stack = newStack();
    const billing = new MarketplaceBilling(stack, 'Marketplace', BASE);
    expect(billing.putUsageFunction).toBeUndefined();
    expect(() => billing.metricPutUsageErrors()).toThrow(/has no metering push \(no ingestor was given\)/);
    expect(() => billing.grantReadEntitlements(new iam.AccountRootPrincipal())).toThrow(/set contractEntitlements: true/);
  });

  test('contract entitlements: a function a caller may be granted to invoke', () => {
    const stack = newStack();
    const { billing } = build(stack, { contractEntitlements: true });
    const role = new iam.Role(stack, 'Reader', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    billing.grantReadEntitlements(role);
    Template.fromStack(stack).hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: Match.stringLikeRegexp('Reader') }],
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: 'lambda:InvokeFunction' })]) },
    });
  });

  test('a stack outside us-east-1 gets a warning: Marketplace sends its SaaS events there only', () => {
    const stack = newStack(undefined, 'eu-west-1');
    build(stack);
    Annotations.fromStack(stack).hasWarning('/Stack/Marketplace', Match.stringLikeRegexp('default event bus of us-east-1 only'));
  });
});

describe('validation', () => {
  test('fails if props are wrong, naming every problem, the value and the fix', () => {
    expect(() => build(newStack(), {
      productCode: 'bad code!',
      registrationPageUrl: 'http://app.example.com/register',
      registrationIdField: '1bad',
      dimensions: [{ metric: 'apiCalls', dimension: 'api_calls' }, { metric: 'storage', dimension: 'api_calls' }, { metric: 'x y', dimension: 'd', multiplier: '0' }],
      acceptanceWindow: Duration.hours(30),
    })).toThrow(new RegExp([
      'productCode \\(Python: product_code\\) must be 1 to 255 letters, digits or - / = : _ \\. @ \\(given \'bad code!\'\\)',
      'registrationPageUrl \\(Python: registration_page_url\\) must be an https URL',
      'registrationIdField \\(Python: registration_id_field\\) must be a letter',
      'dimensions\\[1\\]\\.dimension.* is used by two metrics',
      'dimensions\\[2\\]\\.metric.* must be 1 to 128 characters',
      'dimensions\\[2\\]\\.multiplier.* must be a positive decimal',
      'acceptanceWindow \\(Python: acceptance_window\\) must be between 1 hour and 1 day \\(given 1 day 6 hours\\)',
    ].join('[\\s\\S]*')));
  });

  test('fails if the ingestor\'s windows are not hourly', () => {
    const stack = newStack();
    const ingestor = new UsageIngestor(stack, 'Ingestor', { windowGranularity: WindowGranularity.DAY });
    expect(() => new MarketplaceBilling(stack, 'Marketplace', { ...BASE, ingestor })).toThrow(/must close hourly windows/);
  });

  test('fails if the push cannot meter an hour within the acceptance window', () => {
    const stack = newStack();
    const ingestor = new UsageIngestor(stack, 'Ingestor');
    expect(() => new MarketplaceBilling(stack, 'Marketplace', { ...BASE, ingestor, acceptanceWindow: Duration.hours(1) }))
      .toThrow(/acceptanceWindow \(Python: acceptance_window\) is shorter than the worst-case delivery time of an hour's record/);
    expect(() => new MarketplaceBilling(stack, 'Marketplace2', { ...BASE, ingestor, schedule: events.Schedule.rate(Duration.minutes(10)) })).not.toThrow();
  });

  test('fails if deadlineWarning is not less than the acceptance window', () => {
    expect(() => build(newStack(), { deadlineWarning: Duration.hours(6) })).toThrow(/deadlineWarning .* must be at least 5 minutes and less than acceptanceWindow \(6 hours\)/);
  });
});

describe('checks', () => {
  test('no unacknowledged cdk-nag AwsSolutions finding', () => {
    expect(nagFindings((app) => build(newStack(app), { contractEntitlements: true }))).toEqual([]);
  });

  test('the nag check sees this construct: without its acknowledgement the Marketplace policy\'s wildcard is flagged', () => {
    const findings = nagFindings((app) => {
      const stack = newStack(app);
      build(stack);
      const policy = stack.node.findChild('Marketplace').node.findChild('PutUsageMarketplacePolicy');
      (policy.node as unknown as { _metadata: { type: string }[] })._metadata = policy.node.metadata.filter((m) => !m.type.includes('acknowledged'));
    });
    expect(findings.filter((f) => f.path.includes('PutUsageMarketplacePolicy')).map((f) => f.rule)).toContain('AwsSolutions-IAM5[Resource::*]');
  });

  test('cfn-lint finds no error', () => {
    const stack = newStack();
    build(stack, { contractEntitlements: true });
    expect(cfnLintErrors(stack)).toEqual([]);
  });
});
