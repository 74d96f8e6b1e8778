import { Duration, Lazy, Stack, Token } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cw_actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  BillingProvider, BillingProviderProps, ControlPlaneEvents, DynamoDbBilling, IBilling, IDataIngestorAggregator, StripeBilling, UsageReaderBinding,
} from '../../src';
import { testApp } from '../support/synth';

function newStack(): Stack {
  return new Stack(testApp('provider'), 'TestStack', { env: { account: '111111111111', region: 'us-east-1' } });
}

function fn(scope: Construct, id: string): lambda.Function {
  return new lambda.Function(scope, id, {
    runtime: lambda.Runtime.NODEJS_24_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async () => {};'),
  });
}

function requiredBilling(stack: Stack): IBilling {
  return {
    createCustomerFunction: { handler: fn(stack, 'CreateCustomer') },
    deleteCustomerFunction: { handler: fn(stack, 'DeleteCustomer') },
  };
}

/** A minimal IDataIngestorAggregator, standing in for any implementation. */
class FakeIngestor extends Construct implements IDataIngestorAggregator {
  public readonly dataStream: kinesis.IStream;
  public readonly aggregateTable: dynamodb.ITable;
  public readonly aggregatorFunction: lambda.IFunction;
  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.dataStream = new kinesis.Stream(this, 'Stream', { encryption: kinesis.StreamEncryption.MANAGED });
    this.aggregateTable = new dynamodb.Table(this, 'Table', { partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING } });
    this.aggregatorFunction = fn(this, 'Aggregator');
  }
  grantPutUsage(grantee: iam.IGrantable): iam.Grant {
    return this.dataStream.grantWrite(grantee);
  }
  bindUsageReader(consumer: lambda.IFunction): UsageReaderBinding {
    this.aggregateTable.grantReadData(consumer);
    return { environment: {} };
  }
}

function rulePattern(source: string, detailType: string) {
  return { EventPattern: { 'source': [source], 'detail-type': [detailType] } };
}

describe('BillingProvider lifecycle rules', () => {
  test('on the default bus, each required function gets a rule for its sbt-aws default event', () => {
    // GIVEN
    const stack = newStack();
    // WHEN
    const provider = new BillingProvider(stack, 'Billing', { billing: requiredBilling(stack) });
    // THEN
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::Events::Rule', 2);
    template.hasResourceProperties('AWS::Events::Rule', {
      ...rulePattern('sbt.control.plane', 'sbt_aws_onboardingRequest'),
      EventBusName: Match.absent(),
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^CreateCustomer'), 'Arn'] } })],
    });
    template.hasResourceProperties('AWS::Events::Rule', {
      ...rulePattern('sbt.control.plane', 'sbt_aws_offboardingRequest'),
      EventBusName: Match.absent(),
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^DeleteCustomer'), 'Arn'] } })],
    });
    expect(provider.createUser).toBeUndefined();
    expect(provider.putUsage).toBeUndefined();
    expect(provider.webhookRoute).toBeUndefined();
  });

  test('on a given bus, every rule is on that bus', () => {
    const stack = newStack();
    const bus = new events.EventBus(stack, 'ControlPlaneBus');
    const billing: IBilling = {
      ...requiredBilling(stack),
      createUserFunction: { handler: fn(stack, 'CreateUser') },
      deleteUserFunction: { handler: fn(stack, 'DeleteUser') },
    };
    new BillingProvider(stack, 'Billing', { billing, eventBus: bus });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::Events::Rule', 4);
    const rules = template.findResources('AWS::Events::Rule');
    for (const rule of Object.values(rules)) {
      expect(rule.Properties.EventBusName).toEqual({ Ref: stack.getLogicalId(bus.node.defaultChild as events.CfnEventBus) });
    }
    template.hasResourceProperties('AWS::Events::Rule', rulePattern('sbt.control.plane', 'sbt_aws_tenantUserCreated'));
    template.hasResourceProperties('AWS::Events::Rule', rulePattern('sbt.control.plane', 'sbt_aws_tenantUserDeleted'));
  });

  test('a function trigger overrides its default event', () => {
    const stack = newStack();
    const billing: IBilling = {
      createCustomerFunction: { handler: fn(stack, 'CreateCustomer'), trigger: { source: 'my.control.plane', detailType: 'TenantCreated' } },
      deleteCustomerFunction: { handler: fn(stack, 'DeleteCustomer') },
    };
    const provider = new BillingProvider(stack, 'Billing', { billing });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::Events::Rule', rulePattern('my.control.plane', 'TenantCreated'));
    template.hasResourceProperties('AWS::Events::Rule', rulePattern('sbt.control.plane', 'sbt_aws_offboardingRequest'));
    expect(Object.keys(template.findResources('AWS::Events::Rule', { Properties: rulePattern('sbt.control.plane', 'sbt_aws_onboardingRequest') }))).toHaveLength(0);
    expect(provider.createCustomer.trigger).toEqual({ source: 'my.control.plane', detailType: 'TenantCreated' });
  });

  test('provider-wide event names change every default trigger; a function trigger still wins', () => {
    const stack = newStack();
    const billing: IBilling = {
      createCustomerFunction: { handler: fn(stack, 'CreateCustomer') },
      deleteCustomerFunction: { handler: fn(stack, 'DeleteCustomer'), trigger: { source: 'x', detailType: 'y' } },
      createUserFunction: { handler: fn(stack, 'CreateUser') },
    };
    new BillingProvider(stack, 'Billing', { billing, controlPlaneEvents: ControlPlaneEvents.SBT_AWS_LEGACY });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::Events::Rule', rulePattern('sbt.control.plane', 'onboardingRequest'));
    template.hasResourceProperties('AWS::Events::Rule', rulePattern('sbt.control.plane', 'tenantUserCreated'));
    template.hasResourceProperties('AWS::Events::Rule', rulePattern('x', 'y'));
  });

  test('custom control plane events keep the defaults they do not name', () => {
    const cpe = new ControlPlaneEvents({ source: 'acme.control', onboardingRequest: 'TenantOnboarded' });
    expect(cpe.onboardingRequest).toEqual({ source: 'acme.control', detailType: 'TenantOnboarded' });
    expect(cpe.offboardingRequest).toEqual({ source: 'acme.control', detailType: 'sbt_aws_offboardingRequest' });
    expect(cpe.billingSuccess).toEqual({ source: 'acme.control', detailType: 'sbt_aws_billingSuccess' });
    expect(ControlPlaneEvents.SBT_AWS.tenantUserDeleted).toEqual({ source: 'sbt.control.plane', detailType: 'sbt_aws_tenantUserDeleted' });
  });

  test('two functions on one trigger each get a rule matching that event', () => {
    const stack = newStack();
    const onboarding = { source: 'sbt.control.plane', detailType: 'sbt_aws_onboardingRequest' };
    const billing: IBilling = {
      ...requiredBilling(stack),
      createUserFunction: { handler: fn(stack, 'CreateAdminUser'), trigger: onboarding },
    };
    new BillingProvider(stack, 'Billing', { billing });
    const template = Template.fromStack(stack);
    const onboardingRules = template.findResources('AWS::Events::Rule', { Properties: rulePattern(onboarding.source, onboarding.detailType) });
    const targetArns = Object.values(onboardingRules).map((r) => r.Properties.Targets[0].Arn['Fn::GetAtt'][0]);
    expect(targetArns).toHaveLength(2);
    expect(targetArns.some((a: string) => a.startsWith('CreateCustomer'))).toBe(true);
    expect(targetArns.some((a: string) => a.startsWith('CreateAdminUser'))).toBe(true);
  });
});

describe('BillingProvider reliability', () => {
  test('every target has an explicit retry policy and its own encrypted, TLS-only dead-letter queue with an alarm', () => {
    const stack = newStack();
    const billing: IBilling = {
      ...requiredBilling(stack),
      createUserFunction: { handler: fn(stack, 'CreateUser') },
      deleteUserFunction: { handler: fn(stack, 'DeleteUser') },
      putUsageFunction: { handler: fn(stack, 'PutUsage') },
    };
    const provider = new BillingProvider(stack, 'Billing', { billing });
    const template = Template.fromStack(stack);

    const rules = Object.values(template.findResources('AWS::Events::Rule'));
    expect(rules).toHaveLength(5);
    const dlqIds = new Set<string>();
    for (const rule of rules) {
      const [target] = rule.Properties.Targets;
      expect(target.RetryPolicy).toEqual({ MaximumRetryAttempts: 185, MaximumEventAgeInSeconds: 86400 });
      dlqIds.add(target.DeadLetterConfig.Arn['Fn::GetAtt'][0]);
    }
    expect(dlqIds.size).toBe(5);

    template.resourceCountIs('AWS::SQS::Queue', 5);
    template.allResourcesProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true, MessageRetentionPeriod: 1209600 });
    for (const id of dlqIds) {
      template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: id }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
            Match.objectLike({ Effect: 'Allow', Action: 'sqs:SendMessage', Principal: { Service: 'events.amazonaws.com' } }),
          ]),
        },
      });
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [id, 'QueueName'] } }],
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
      });
    }
    expect(provider.deadLetterQueues).toHaveLength(5);
    expect(provider.alarms).toHaveLength(5);
    // concrete alarms: addAlarmAction type-checks in every jsii language
    expect(provider.alarms.every((a) => a instanceof cloudwatch.Alarm)).toBe(true);
    expect(provider.alarms).toContain(provider.putUsage?.deadLetterQueueAlarm);
  });

  test('failures of the function after Lambda retries go to the dead-letter queue', () => {
    const stack = newStack();
    const provider = new BillingProvider(stack, 'Billing', { billing: requiredBilling(stack) });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::Lambda::EventInvokeConfig', 2);
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: Match.stringLikeRegexp('^CreateCustomer') },
      MaximumRetryAttempts: 2,
      DestinationConfig: {
        OnFailure: { Destination: { 'Fn::GetAtt': [stack.getLogicalId(provider.createCustomer.deadLetterQueue.node.defaultChild as sqs.CfnQueue), 'Arn'] } },
      },
    });
    // the function may write to its dead-letter queue
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: Match.arrayWith(['sqs:SendMessage']) })]) },
      Roles: [{ Ref: Match.stringLikeRegexp('^CreateCustomerServiceRole') }],
    });
  });

  test('a function whose failures the user already routes keeps its own configuration', () => {
    const stack = newStack();
    const withDestination = fn(stack, 'CreateCustomer');
    withDestination.configureAsyncInvoke({ onFailure: new destinations.SqsDestination(new sqs.Queue(stack, 'Mine')) });
    const withDlq = new lambda.Function(stack, 'DeleteCustomer', {
      runtime: lambda.Runtime.NODEJS_24_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline('exports.handler = async () => {};'),
      deadLetterQueueEnabled: true,
    });
    new BillingProvider(stack, 'Billing', {
      billing: { createCustomerFunction: { handler: withDestination }, deleteCustomerFunction: { handler: withDlq } },
    });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::Lambda::EventInvokeConfig', 1);
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Mine'), 'Arn'] } } },
    });
  });

  test('an imported function is targeted, and the user is warned that its own failures are not captured', () => {
    const stack = newStack();
    const imported = lambda.Function.fromFunctionArn(stack, 'Imported', 'arn:aws:lambda:us-east-1:111111111111:function:create-customer');
    new BillingProvider(stack, 'Billing', {
      billing: { createCustomerFunction: { handler: imported }, deleteCustomerFunction: { handler: fn(stack, 'DeleteCustomer') } },
    });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::Lambda::EventInvokeConfig', 1);
    template.hasResourceProperties('AWS::Events::Rule', {
      Targets: [Match.objectLike({ Arn: 'arn:aws:lambda:us-east-1:111111111111:function:create-customer' })],
    });
    Annotations.fromStack(stack).hasWarning('/TestStack/Billing', Match.stringLikeRegexp('CreateCustomer function .* is not defined in this app'));
  });

  test('one function in two slots is targeted by both rules; its failures go to the first slot\'s queue', () => {
    const stack = newStack();
    const both = fn(stack, 'Lifecycle');
    const provider = new BillingProvider(stack, 'Billing', {
      billing: { createCustomerFunction: { handler: both }, deleteCustomerFunction: { handler: both } },
    });
    const template = Template.fromStack(stack);
    const rules = Object.values(template.findResources('AWS::Events::Rule'));
    expect(rules.map((r) => r.Properties.Targets[0].Arn['Fn::GetAtt'][0])).toEqual([stack.getLogicalId(both.node.defaultChild as lambda.CfnFunction), stack.getLogicalId(both.node.defaultChild as lambda.CfnFunction)]);
    template.resourceCountIs('AWS::Lambda::EventInvokeConfig', 1);
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [stack.getLogicalId(provider.createCustomer.deadLetterQueue.node.defaultChild as sqs.CfnQueue), 'Arn'] } } },
    });
    template.resourceCountIs('AWS::Lambda::Permission', 2);
  });

  test('one function in two slots: the provider warns that its own failures go to the first slot\'s queue only', () => {
    const stack = newStack();
    const both = fn(stack, 'Lifecycle');
    new BillingProvider(stack, 'Billing', { billing: { createCustomerFunction: { handler: both }, deleteCustomerFunction: { handler: both } } });
    Annotations.fromStack(stack).hasWarning('/TestStack/Billing', Match.stringLikeRegexp(
      'The DeleteCustomer function \\(TestStack/Lifecycle\\) is already wired as CreateCustomer by this provider\\. .*go to TestStack/Billing/CreateCustomerDeadLetterQueue only'));
  });

  test('a function already wired by another provider: the second provider warns where its failures go, and adds no second destination', () => {
    // GIVEN a provider wiring a function
    const stack = newStack();
    const shared = fn(stack, 'Shared');
    new BillingProvider(stack, 'First', { billing: { createCustomerFunction: { handler: shared }, deleteCustomerFunction: { handler: fn(stack, 'D1') } } });
    // WHEN another provider wires the same function
    new BillingProvider(stack, 'Second', { billing: { createCustomerFunction: { handler: fn(stack, 'C2') }, deleteCustomerFunction: { handler: shared } } });
    // THEN
    Annotations.fromStack(stack).hasWarning('/TestStack/Second', Match.stringLikeRegexp(
      'The DeleteCustomer function \\(TestStack/Shared\\) is already wired as CreateCustomer by TestStack/First\\. Lambda keeps one on-failure destination per function, '
      + 'so failures of the function itself after Lambda\'s retries go to TestStack/First/CreateCustomerDeadLetterQueue only'));
    Annotations.fromStack(stack).hasNoWarning('/TestStack/First', Match.stringLikeRegexp('already wired'));
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::Lambda::EventInvokeConfig', 3);
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: Match.stringLikeRegexp('^Shared') },
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [Match.stringLikeRegexp('^FirstCreateCustomerDeadLetterQueue'), 'Arn'] } } },
    });
  });

  test('an on-failure destination the user configured anywhere in the app (lambda.EventInvokeConfig) is kept', () => {
    const stack = newStack();
    const handler = fn(stack, 'CreateCustomer');
    new lambda.EventInvokeConfig(stack, 'UsersConfig', { function: handler, onFailure: new destinations.SqsDestination(new sqs.Queue(stack, 'Mine')) });
    new BillingProvider(stack, 'Billing', { billing: { createCustomerFunction: { handler }, deleteCustomerFunction: { handler: fn(stack, 'DeleteCustomer') } } });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::Lambda::EventInvokeConfig', 2);
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: Match.stringLikeRegexp('^CreateCustomer') },
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Mine'), 'Arn'] } } },
    });
    Annotations.fromStack(stack).hasNoWarning('*', Match.anyValue());
  });

  test('an asynchronous configuration without on-failure destination: the provider cannot add one and says so', () => {
    const stack = newStack();
    const handler = fn(stack, 'CreateCustomer');
    handler.configureAsyncInvoke({ retryAttempts: 0 });
    new BillingProvider(stack, 'Billing', { billing: { createCustomerFunction: { handler }, deleteCustomerFunction: { handler: fn(stack, 'DeleteCustomer') } } });
    Annotations.fromStack(stack).hasWarning('/TestStack/Billing', Match.stringLikeRegexp('CreateCustomer function .* already has an asynchronous invoke configuration without an on-failure destination'));
  });

  test('dead-letter queues carry the cdk-nag 2 acknowledgement of AwsSolutions-SQS3 with a reason', () => {
    const stack = newStack();
    new BillingProvider(stack, 'Billing', { billing: requiredBilling(stack) });
    const queues = Template.fromStack(stack).findResources('AWS::SQS::Queue');
    expect(Object.keys(queues)).toHaveLength(2);
    for (const q of Object.values(queues)) {
      expect(q.Metadata.cdk_nag.rules_to_suppress).toEqual([{ id: 'AwsSolutions-SQS3', reason: expect.stringMatching(/dead-letter queue of an EventBridge target/) }]);
    }
  });

  test('captureFunctionFailures: false leaves the functions untouched', () => {
    const stack = newStack();
    new BillingProvider(stack, 'Billing', { billing: requiredBilling(stack), captureFunctionFailures: false });
    Template.fromStack(stack).resourceCountIs('AWS::Lambda::EventInvokeConfig', 0);
  });

  test('retry policy and alarm actions can be set', () => {
    const stack = newStack();
    const topic = new sns.Topic(stack, 'Ops');
    new BillingProvider(stack, 'Billing', {
      billing: requiredBilling(stack),
      retryAttempts: 10,
      maxEventAge: Duration.hours(2),
      alarmActions: [new cw_actions.SnsAction(topic)],
    });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::Events::Rule', {
      Targets: [Match.objectLike({ RetryPolicy: { MaximumRetryAttempts: 10, MaximumEventAgeInSeconds: 7200 } })],
    });
    template.allResourcesProperties('AWS::CloudWatch::Alarm', { AlarmActions: [{ Ref: Match.stringLikeRegexp('^Ops') }] });
  });
});

describe('BillingProvider usage push and ingestor', () => {
  test('the usage push runs every 24 hours by default', () => {
    const stack = newStack();
    const provider = new BillingProvider(stack, 'Billing', {
      billing: { ...requiredBilling(stack), putUsageFunction: { handler: fn(stack, 'PutUsage') } },
    });
    Template.fromStack(stack).hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 day)',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^PutUsage'), 'Arn'] }, RetryPolicy: Match.anyValue(), DeadLetterConfig: Match.anyValue() })],
    });
    expect(provider.putUsage?.trigger).toBeUndefined();
  });

  test('the usage push schedule can be overridden', () => {
    const stack = newStack();
    new BillingProvider(stack, 'Billing', {
      billing: {
        ...requiredBilling(stack),
        putUsageFunction: { handler: fn(stack, 'PutUsage'), schedule: events.Schedule.cron({ minute: '15', hour: '1' }) },
      },
    });
    Template.fromStack(stack).hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'cron(15 1 * * ? *)' });
  });

  test('with an ingestor: outputs name its stream and store, and the push may read the aggregates', () => {
    const stack = newStack();
    const ingestor = new FakeIngestor(stack, 'Ingestor');
    new BillingProvider(stack, 'Billing', {
      billing: { ...requiredBilling(stack), ingestor, putUsageFunction: { handler: fn(stack, 'PutUsage') } },
    });
    const template = Template.fromStack(stack);
    const outputs = template.findOutputs('*');
    const values = Object.values(outputs).map((o) => JSON.stringify(o.Value));
    expect(values).toContain(JSON.stringify({ Ref: stack.getLogicalId(ingestor.dataStream.node.defaultChild as kinesis.CfnStream) }));
    expect(values).toContain(JSON.stringify({ Ref: stack.getLogicalId(ingestor.aggregateTable.node.defaultChild as dynamodb.CfnTable) }));
    expect(Object.keys(outputs).some((k) => k.includes('UsageStreamName'))).toBe(true);
    expect(Object.keys(outputs).some((k) => k.includes('AggregateTableName'))).toBe(true);
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: Match.arrayWith(['dynamodb:Query']) })]) },
      Roles: [{ Ref: Match.stringLikeRegexp('^PutUsageServiceRole') }],
    });
  });

  test('without an ingestor there are no outputs', () => {
    const stack = newStack();
    new BillingProvider(stack, 'Billing', { billing: requiredBilling(stack) });
    expect(Object.keys(Template.fromStack(stack).findOutputs('*'))).toHaveLength(0);
  });
});

describe('BillingProvider webhook', () => {
  test('mounts POST /billing/<path> on the HTTP API with a Lambda proxy integration, acknowledged for cdk-nag', () => {
    const stack = newStack();
    const httpApi = new apigwv2.HttpApi(stack, 'Api');
    const provider = new BillingProvider(stack, 'Billing', {
      billing: { ...requiredBilling(stack), webhookFunction: { path: 'stripe/events', handler: fn(stack, 'Webhook') } },
      httpApi,
    });
    const template = Template.fromStack(stack);
    template.hasResource('AWS::ApiGatewayV2::Route', {
      Properties: {
        ApiId: { Ref: Match.stringLikeRegexp('^Api') },
        RouteKey: 'POST /billing/stripe/events',
        AuthorizationType: 'NONE',
        Target: { 'Fn::Join': ['', ['integrations/', { Ref: Match.stringLikeRegexp('WebhookIntegration') }]] },
      },
      Metadata: { cdk_nag: { rules_to_suppress: [Match.objectLike({ id: 'AwsSolutions-APIG4', reason: Match.stringLikeRegexp('verifies the request signature') })] } },
    });
    template.hasResourceProperties('AWS::ApiGatewayV2::Integration', {
      IntegrationType: 'AWS_PROXY',
      PayloadFormatVersion: '2.0',
      IntegrationUri: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Webhook'), 'Arn'] },
    });
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Principal: 'apigateway.amazonaws.com',
      FunctionName: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Webhook'), 'Arn'] },
    });
    expect(provider.webhookRoutePath).toBe('/billing/stripe/events');
    expect(provider.webhookRoute).toBeDefined();
    // the webhook's URL: the API's endpoint and the route path, as a property and an output
    const apiId = stack.getLogicalId(httpApi.node.defaultChild as apigwv2.CfnApi);
    const url = { 'Fn::Join': ['', [{ 'Fn::GetAtt': [apiId, 'ApiEndpoint'] }, '/billing/stripe/events']] };
    expect(stack.resolve(provider.webhookUrl)).toEqual(url);
    const [output] = Object.entries(template.findOutputs('*')).filter(([k]) => k.startsWith('BillingWebhookUrl'));
    expect(output[1]).toMatchObject({ Value: url, Description: expect.stringMatching(/POST/) });
    // the webhook answers synchronously: no rule, no dead-letter queue, no async config for it
    template.resourceCountIs('AWS::Events::Rule', 2);
    expect(Object.keys(template.findResources('AWS::Lambda::EventInvokeConfig', {
      Properties: { FunctionName: { Ref: Match.stringLikeRegexp('^Webhook') } },
    }))).toHaveLength(0);
  });

  test('an unresolved path is not rejected', () => {
    const stack = newStack();
    const path = Lazy.string({ produce: () => 'late' });
    expect(Token.isUnresolved(path)).toBe(true);
    new BillingProvider(stack, 'Billing', {
      billing: { ...requiredBilling(stack), webhookFunction: { path, handler: fn(stack, 'Webhook') } },
      httpApi: new apigwv2.HttpApi(stack, 'Api'),
    });
    Template.fromStack(stack).hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'POST /billing/late' });
  });

  test('an imported HTTP API can carry the webhook', () => {
    const stack = newStack();
    const httpApi = apigwv2.HttpApi.fromHttpApiAttributes(stack, 'Imported', { httpApiId: 'abc123' });
    new BillingProvider(stack, 'Billing', {
      billing: { ...requiredBilling(stack), webhookFunction: { path: 'webhook', handler: fn(stack, 'Webhook') } },
      httpApi,
    });
    Template.fromStack(stack).hasResourceProperties('AWS::ApiGatewayV2::Route', { ApiId: 'abc123', RouteKey: 'POST /billing/webhook' });
  });

  test('an imported HTTP API without its endpoint: no URL output, no error', () => {
    const stack = newStack();
    const provider = new BillingProvider(stack, 'Billing', {
      billing: { ...requiredBilling(stack), webhookFunction: { path: 'webhook', handler: fn(stack, 'Webhook') } },
      httpApi: apigwv2.HttpApi.fromHttpApiAttributes(stack, 'Imported', { httpApiId: 'abc123' }),
    });
    expect(provider.webhookUrl).toBeUndefined();
    expect(Object.keys(Template.fromStack(stack).findOutputs('*'))).toHaveLength(0);
  });

  test('an imported HTTP API with its endpoint: the URL output', () => {
    const stack = newStack();
    const provider = new BillingProvider(stack, 'Billing', {
      billing: { ...requiredBilling(stack), webhookFunction: { path: 'webhook', handler: fn(stack, 'Webhook') } },
      httpApi: apigwv2.HttpApi.fromHttpApiAttributes(stack, 'Imported', { httpApiId: 'abc123', apiEndpoint: 'https://abc123.execute-api.us-east-1.amazonaws.com' }),
    });
    expect(provider.webhookUrl).toBe('https://abc123.execute-api.us-east-1.amazonaws.com/billing/webhook');
  });
});

describe('BillingProvider webhook on a REST API', () => {
  function restStack() {
    const stack = newStack();
    const restApi = new apigw.RestApi(stack, 'Rest', { cloudWatchRole: false });
    const webhook = fn(stack, 'Webhook');
    const provider = new BillingProvider(stack, 'Billing', {
      billing: { ...requiredBilling(stack), webhookFunction: { path: 'stripe/events', handler: webhook } },
      restApi,
    });
    return { stack, restApi, webhook, provider, template: Template.fromStack(stack) };
  }

  test('mounts POST /billing/<path> with a Lambda proxy integration and no authorizer, acknowledged for cdk-nag', () => {
    // GIVEN / WHEN
    const { stack, restApi, provider, template } = restStack();
    // THEN the resources /billing and /billing/stripe/events under the API's root
    template.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: 'billing', ParentId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Rest'), 'RootResourceId'] } });
    template.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: 'events', ParentId: { Ref: Match.stringLikeRegexp('^Restbillingstripe') } });
    // and POST on it, proxying to the webhook function, with the acknowledgements of the library's own method
    template.hasResource('AWS::ApiGateway::Method', {
      Properties: {
        HttpMethod: 'POST',
        AuthorizationType: 'NONE',
        ResourceId: { Ref: Match.stringLikeRegexp('^Restbillingstripeevents') },
        Integration: {
          Type: 'AWS_PROXY',
          IntegrationHttpMethod: 'POST',
          Uri: Match.objectLike({ 'Fn::Join': ['', Match.arrayWith([{ 'Fn::GetAtt': [Match.stringLikeRegexp('^Webhook'), 'Arn'] }])] }),
        },
      },
      Metadata: {
        cdk_nag: {
          rules_to_suppress: [
            { id: 'AwsSolutions-APIG4', reason: Match.stringLikeRegexp('verifies the request signature itself') },
            { id: 'AwsSolutions-COG4', reason: Match.stringLikeRegexp('not as a Cognito user') },
          ],
        },
      },
    });
    // API Gateway may invoke the function for this method on the deployment stage
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Principal: 'apigateway.amazonaws.com',
      FunctionName: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Webhook'), 'Arn'] },
      SourceArn: Match.objectLike({ 'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp('/POST/billing/stripe/events$')])] }),
    });
    // no HTTP API resources
    template.resourceCountIs('AWS::ApiGatewayV2::Route', 0);
    expect(provider.webhookRoute).toBeUndefined();
    expect(provider.webhookMethod).toBe(restApi.root.resourceForPath('/billing/stripe/events').node.findChild('POST'));
    expect(provider.webhookRoutePath).toBe('/billing/stripe/events');
    // the URL on the deployment stage, as a property and an output
    const url = stack.resolve(restApi.urlForPath('/billing/stripe/events'));
    expect(stack.resolve(provider.webhookUrl)).toEqual(url);
    const [output] = Object.entries(template.findOutputs('*')).filter(([k]) => k.startsWith('BillingWebhookUrl'));
    expect(output[1]).toMatchObject({ Value: url, Description: expect.stringMatching(/REST API's deployment stage/) });
    expect(JSON.stringify(url)).toMatch(/RestDeploymentStageprod.*\/billing\/stripe\/events/);
  });

  test('the deployment of a RestApi changes with the webhook method (it is redeployed)', () => {
    const logicalIdOfDeployment = (withWebhook: boolean) => {
      const stack = newStack();
      const restApi = new apigw.RestApi(stack, 'Rest', { cloudWatchRole: false });
      restApi.root.addResource('health').addMethod('GET', new apigw.MockIntegration());
      const billing: IBilling = { ...requiredBilling(stack), ...(withWebhook ? { webhookFunction: { path: 'webhook', handler: fn(stack, 'Webhook') } } : {}) };
      new BillingProvider(stack, 'Billing', { billing, restApi });
      return Object.keys(Template.fromStack(stack).findResources('AWS::ApiGateway::Deployment'))[0];
    };
    expect(logicalIdOfDeployment(true)).not.toEqual(logicalIdOfDeployment(false));
  });

  test('an existing /billing resource of the API is reused', () => {
    const stack = newStack();
    const restApi = new apigw.RestApi(stack, 'Rest', { cloudWatchRole: false });
    restApi.root.addResource('billing').addResource('usage').addMethod('GET', new apigw.MockIntegration(), { authorizationType: apigw.AuthorizationType.IAM });
    new BillingProvider(stack, 'Billing', { billing: { ...requiredBilling(stack), webhookFunction: { path: 'webhook', handler: fn(stack, 'Webhook') } }, restApi });
    const template = Template.fromStack(stack);
    expect(Object.keys(template.findResources('AWS::ApiGateway::Resource', { Properties: { PathPart: 'billing' } }))).toHaveLength(1);
    template.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: 'webhook', ParentId: { Ref: Match.stringLikeRegexp('^Restbilling') } });
  });

  test('an imported REST API (with its root resource) carries the webhook; without a deployment stage, no URL and no error', () => {
    const stack = newStack();
    const restApi = apigw.RestApi.fromRestApiAttributes(stack, 'Imported', { restApiId: 'abc123', rootResourceId: 'root456' });
    const provider = new BillingProvider(stack, 'Billing', {
      billing: { ...requiredBilling(stack), webhookFunction: { path: 'webhook', handler: fn(stack, 'Webhook') } },
      restApi,
    });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::ApiGateway::Resource', { RestApiId: 'abc123', ParentId: 'root456', PathPart: 'billing' });
    template.hasResourceProperties('AWS::ApiGateway::Method', { RestApiId: 'abc123', HttpMethod: 'POST', AuthorizationType: 'NONE' });
    expect(provider.webhookUrl).toBeUndefined();
    expect(Object.keys(template.findOutputs('*'))).toHaveLength(0);
  });
});

describe('BillingProvider bad input', () => {
  function webhookBilling(stack: Stack, path: unknown): IBilling {
    return { ...requiredBilling(stack), webhookFunction: { path: path as string, handler: fn(stack, 'Webhook') } };
  }

  test('fails if a webhook is given without httpApi or restApi', () => {
    const stack = newStack();
    expect(() => new BillingProvider(stack, 'Billing', { billing: webhookBilling(stack, 'webhook') }))
      .toThrow('BillingProvider at TestStack/Billing: invalid props:\n'
        + '- httpApi (Python: http_api) or restApi is required when billing.webhookFunction is set (given undefined): '
        + 'pass the HTTP API (apigwv2.IHttpApi) or the REST API (apigateway.IRestApi) to mount POST /billing/webhook on, or remove billing.webhookFunction');
  });

  test('fails if both httpApi and restApi are given, with the other problems', () => {
    const stack = newStack();
    expect(() => new BillingProvider(stack, 'Billing', {
      billing: webhookBilling(stack, '/webhook'),
      httpApi: new apigwv2.HttpApi(stack, 'Http'),
      restApi: new apigw.RestApi(stack, 'Rest', { cloudWatchRole: false }),
      retryAttempts: 500,
    })).toThrow('BillingProvider at TestStack/Billing: invalid props:\n'
      + '- restApi (Python: rest_api) cannot be given with httpApi (given \'TestStack/Rest\'): mount the webhook on one API: give httpApi or restApi\n'
      + '- billing.webhookFunction.path (Python: billing.webhook_function.path) would mount POST /billing//webhook (given \'/webhook\'): '
      + 'remove leading, trailing and double slashes (for example \'webhook\')\n'
      + '- retryAttempts (Python: retry_attempts) must be an integer between 0 and 185 (given number 500): give a value from 0 to 185');
  });

  test('fails if the REST API was imported without its root resource', () => {
    const stack = newStack();
    expect(() => new BillingProvider(stack, 'Billing', { billing: webhookBilling(stack, 'webhook'), restApi: apigw.RestApi.fromRestApiId(stack, 'Imported', 'abc123') }))
      .toThrow('- restApi (Python: rest_api) must be a REST API with its root resource (apigateway.IRestApi) (given \'TestStack/Imported\'): '
        + 'pass a RestApi, or import one with RestApi.fromRestApiAttributes({ restApiId, rootResourceId }) (RestApi.fromRestApiId gives no root resource)');
  });

  test('fails if the REST API already has POST on that path (a method of its own or another provider\'s)', () => {
    const stack = newStack();
    const restApi = new apigw.RestApi(stack, 'Rest', { cloudWatchRole: false });
    restApi.root.resourceForPath('/billing/mine').addMethod('POST', new apigw.MockIntegration());
    new BillingProvider(stack, 'First', { billing: webhookBilling(stack, 'webhook'), restApi });
    const second = (path: string): IBilling => ({
      createCustomerFunction: { handler: fn(stack, `C${path}`) },
      deleteCustomerFunction: { handler: fn(stack, `D${path}`) },
      webhookFunction: { path, handler: fn(stack, `W${path}`) },
    });
    expect(() => new BillingProvider(stack, 'Second', { billing: second('webhook'), restApi }))
      .toThrow('- billing.webhookFunction.path (Python: billing.webhook_function.path) mounts POST /billing/webhook on the REST API TestStack/Rest, '
        + 'which already has that method (TestStack/Rest/Default/billing/webhook/POST) (given \'webhook\'): give this webhook another path');
    expect(() => new BillingProvider(stack, 'Third', { billing: second('mine'), restApi }))
      .toThrow(/mounts POST \/billing\/mine on the REST API TestStack\/Rest, which already has that method \(TestStack\/Rest\/Default\/billing\/mine\/POST\)/);
    // another path under the same /billing resource is fine
    new BillingProvider(stack, 'Fourth', { billing: second('other'), restApi });
  });

  test('fails if the webhook path is empty', () => {
    const stack = newStack();
    expect(() => new BillingProvider(stack, 'Billing', { billing: webhookBilling(stack, ''), httpApi: new apigwv2.HttpApi(stack, 'Api') }))
      .toThrow(/- billing\.webhookFunction\.path \(Python: billing\.webhook_function\.path\) is empty \(given ''\): give a path such as 'webhook'/);
  });

  test.each([
    ['/webhook', 'webhook'],
    ['webhook/', 'webhook'],
    ['stripe//events', 'stripe/events'],
  ])('fails if the webhook path %s has slashes that would give /billing//x', (path, fixed) => {
    const stack = newStack();
    expect(() => new BillingProvider(stack, 'Billing', { billing: webhookBilling(stack, path), httpApi: new apigwv2.HttpApi(stack, 'Api') }))
      .toThrow(new RegExp(`path \\(Python: billing.webhook_function.path\\) would mount POST /billing/${path} \\(given '${path}'\\): remove leading, trailing and double slashes \\(for example '${fixed}'\\)`));
  });

  test.each([
    ['web hook', '" "'],
    ['hook?x=1', '"?", "="'],
    ['{proxy+}', '"{", "+", "}"'],
    ['caf\u00e9', '"\u00e9"'],
  ])('fails if the webhook path %s has characters a URL path segment cannot hold', (path, chars) => {
    const stack = newStack();
    const escaped = chars.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    expect(() => new BillingProvider(stack, 'Billing', { billing: webhookBilling(stack, path), httpApi: new apigwv2.HttpApi(stack, 'Api') }))
      .toThrow(new RegExp(`characters a URL path segment cannot hold \\(${escaped}\\) \\(given '.*'\\): use letters, digits and - . _ ~ only`));
  });

  test('fails if the same path is mounted twice on one API', () => {
    const stack = newStack();
    const httpApi = new apigwv2.HttpApi(stack, 'Api');
    new BillingProvider(stack, 'First', { billing: webhookBilling(stack, 'webhook'), httpApi });
    const second: IBilling = {
      createCustomerFunction: { handler: fn(stack, 'C2') },
      deleteCustomerFunction: { handler: fn(stack, 'D2') },
      webhookFunction: { path: 'webhook', handler: fn(stack, 'W2') },
    };
    expect(() => new BillingProvider(stack, 'Second', { billing: second, httpApi }))
      .toThrow('BillingProvider at TestStack/Second: invalid props:\n'
        + '- billing.webhookFunction.path (Python: billing.webhook_function.path) mounts POST /billing/webhook on the HTTP API TestStack/Api, '
        + 'which already has that route (TestStack/First/WebhookRoute) (given \'webhook\'): give this webhook another path');
  });

  test('fails if the API already has a route of its own on that path', () => {
    const stack = newStack();
    const httpApi = new apigwv2.HttpApi(stack, 'Api');
    httpApi.addRoutes({ path: '/billing/webhook', methods: [apigwv2.HttpMethod.POST], integration: new HttpLambdaIntegration('Mine', fn(stack, 'Mine')) });
    expect(() => new BillingProvider(stack, 'Billing', { billing: webhookBilling(stack, 'webhook'), httpApi }))
      .toThrow(/already has that route \(TestStack\/Api\/POST--billing--webhook\)/);
  });

  test('the same path on two different APIs is fine', () => {
    const stack = newStack();
    new BillingProvider(stack, 'First', { billing: webhookBilling(stack, 'webhook'), httpApi: new apigwv2.HttpApi(stack, 'Api1') });
    const second: IBilling = {
      createCustomerFunction: { handler: fn(stack, 'C2') },
      deleteCustomerFunction: { handler: fn(stack, 'D2') },
      webhookFunction: { path: 'webhook', handler: fn(stack, 'W2') },
    };
    new BillingProvider(stack, 'Second', { billing: second, httpApi: new apigwv2.HttpApi(stack, 'Api2') });
    Template.fromStack(stack).resourceCountIs('AWS::ApiGatewayV2::Route', 2);
  });

  test('fails if a required function is missing (JavaScript callers can pass anything)', () => {
    const stack = newStack();
    const billing = { createCustomerFunction: { handler: fn(stack, 'CreateCustomer') } } as unknown as IBilling;
    expect(() => new BillingProvider(stack, 'Billing', { billing }))
      .toThrow(/- billing\.deleteCustomerFunction \(Python: billing\.delete_customer_function\) is required \(given undefined\): pass \{ handler: myFunction \}/);
  });

  test('fails if a function has no handler', () => {
    const stack = newStack();
    const billing = { createCustomerFunction: { handler: 'my-function' }, deleteCustomerFunction: {} } as unknown as IBilling;
    expect(() => new BillingProvider(stack, 'Billing', { billing }))
      .toThrow(/billing\.createCustomerFunction\.handler \(Python: billing\.create_customer_function\.handler\) must be a lambda\.IFunction \(given 'my-function'\)[\s\S]*billing\.deleteCustomerFunction\.handler \(Python: billing\.delete_customer_function\.handler\) must be a lambda\.IFunction \(given undefined\)/);
  });

  test('fails if billing itself is missing', () => {
    const stack = newStack();
    expect(() => new BillingProvider(stack, 'Billing', {} as any))
      .toThrow('BillingProvider at TestStack/Billing: invalid props:\n- billing must be an IBilling object (given undefined): '
        + 'pass at least { createCustomerFunction: { handler }, deleteCustomerFunction: { handler } }');
  });

  test('fails if a trigger has an empty detail type', () => {
    const stack = newStack();
    const billing: IBilling = {
      ...requiredBilling(stack),
      createUserFunction: { handler: fn(stack, 'CreateUser'), trigger: { source: 'sbt.control.plane', detailType: '' } },
    };
    expect(() => new BillingProvider(stack, 'Billing', { billing })).toThrow(/billing\.createUserFunction\.trigger\.detailType \(Python: billing\.create_user_function\.trigger\.detail_type\) must be a non-empty string \(given ''\)/);
  });

  test.each(['rate(30 seconds)', 'rate(0 minutes)', 'rate(1 second)'])('fails if the schedule %s is shorter than one minute', (expression) => {
    const stack = newStack();
    const billing: IBilling = { ...requiredBilling(stack), putUsageFunction: { handler: fn(stack, 'PutUsage'), schedule: events.Schedule.expression(expression) } };
    expect(() => new BillingProvider(stack, 'Billing', { billing }))
      .toThrow(new RegExp(`billing\\.putUsageFunction\\.schedule \\(Python: billing\\.put_usage_function\\.schedule\\) is shorter than one minute or not a valid rate \\(given '${expression.replace(/[()]/g, '\\$&')}'\\)`));
  });

  test('a schedule of exactly one minute and an unresolved rate are accepted', () => {
    const stack = newStack();
    new BillingProvider(stack, 'A', { billing: { ...requiredBilling(stack), putUsageFunction: { handler: fn(stack, 'P1'), schedule: events.Schedule.rate(Duration.minutes(1)) } } });
    const s2 = newStack();
    const minutes = Lazy.number({ produce: () => 5 });
    new BillingProvider(s2, 'B', { billing: { ...requiredBilling(s2), putUsageFunction: { handler: fn(s2, 'P2'), schedule: events.Schedule.rate(Duration.minutes(minutes)) } } });
    Template.fromStack(stack).hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(1 minute)' });
    Template.fromStack(s2).hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(5 minutes)' });
  });

  test('fails if retryAttempts or maxEventAge are out of range, reporting both at once', () => {
    const stack = newStack();
    expect(() => new BillingProvider(stack, 'Billing', { billing: requiredBilling(stack), retryAttempts: 186, maxEventAge: Duration.seconds(30) }))
      .toThrow('BillingProvider at TestStack/Billing: invalid props:\n'
        + '- retryAttempts (Python: retry_attempts) must be an integer between 0 and 185 (given number 186): give a value from 0 to 185\n'
        + '- maxEventAge (Python: max_event_age) must be between 1 minute and 1 day (given 30 seconds): give a Duration from 1 minute to 1 day');
  });
});

describe('BillingProvider: the bus and event names of the billing\'s own functions', () => {
  const providers: Array<[string, (stack: Stack, props: { eventBus?: events.IEventBus; controlPlaneEvents?: ControlPlaneEvents }) => IBilling]> = [
    ['StripeBilling', (stack, props) => new StripeBilling(stack, 'Own', {
      apiKey: secretsmanager.Secret.fromSecretNameV2(stack, 'ApiKey', 'stripe/api-key'), webhookBaseUrl: 'https://api.example.com', ...props,
    })],
    ['DynamoDbBilling', (stack, props) => new DynamoDbBilling(stack, 'Own', props)],
  ];
  const provider = (stack: Stack, billing: IBilling, props: Partial<BillingProviderProps> = {}) =>
    new BillingProvider(stack, 'Billing', { billing, httpApi: new apigwv2.HttpApi(stack, 'Api'), ...props });

  describe.each(providers)('%s', (_name, make) => {
    test('fails if the provider is given a bus and the billing is not, naming both buses and the fix', () => {
      const stack = newStack();
      const billing = make(stack, {});
      expect(() => provider(stack, billing, { eventBus: new events.EventBus(stack, 'ControlPlaneBus') }))
        .toThrow(new RegExp('BillingProvider at TestStack/Billing: invalid props:\n- eventBus \\(Python: event_bus\\) differs from billing.eventBus, '
          + 'the bus the billing\'s own functions emit on \\(the default bus of 111111111111 in us-east-1 \\(TestStack/Own/DefaultEventBus\\)\\), '
          + 'so the control plane would not hear its billing events \\(given \'TestStack/ControlPlaneBus\'\\): '
          + 'pass the same eventBus and controlPlaneEvents to the billing \\(StripeBilling, DynamoDbBilling\\) and to BillingProvider'));
    });

    test('fails if the billing is given a bus and the provider is not', () => {
      const stack = newStack();
      const billing = make(stack, { eventBus: events.EventBus.fromEventBusName(stack, 'Given', 'billing-bus') });
      expect(() => provider(stack, billing)).toThrow(/eventBus \(Python: event_bus\) differs from billing\.eventBus, the bus the billing's own functions emit on \(TestStack\/Given \(billing-bus\)\), .*\(given 'none: the default bus of 111111111111 in us-east-1'\)/);
    });

    test('fails if the two are given different buses', () => {
      const stack = newStack();
      const billing = make(stack, { eventBus: events.EventBus.fromEventBusName(stack, 'A', 'bus-a') });
      expect(() => provider(stack, billing, { eventBus: events.EventBus.fromEventBusName(stack, 'B', 'bus-b') }))
        .toThrow(/own functions emit on \(TestStack\/A \(bus-a\)\).*\(given 'TestStack\/B \(bus-b\)'\)/);
    });

    test('fails if the provider\'s event names differ from the billing\'s, naming each member and both values', () => {
      const stack = newStack();
      const billing = make(stack, {});
      expect(() => provider(stack, billing, { controlPlaneEvents: ControlPlaneEvents.SBT_AWS_LEGACY }))
        .toThrow(/- controlPlaneEvents\.onboardingRequest \(Python: control_plane_events\.onboarding_request\) differs from billing\.controlPlaneEvents\.onboardingRequest, the names the billing was built with \(sbt\.control\.plane \/ sbt_aws_onboardingRequest\) \(given 'sbt\.control\.plane \/ onboardingRequest'\): pass the same eventBus and controlPlaneEvents[\s\S]*- controlPlaneEvents\.billingFailure .*\(sbt\.control\.plane \/ sbt_aws_billingFailure\) \(given 'sbt\.control\.plane \/ billingFailure'\)/);
    });

    test('fails if only the billing is given other event names', () => {
      const stack = newStack();
      const billing = make(stack, { controlPlaneEvents: new ControlPlaneEvents({ billingSource: 'my.billing' }) });
      expect(() => provider(stack, billing)).toThrow(/controlPlaneEvents\.billingSuccess .*\(my\.billing \/ sbt_aws_billingSuccess\) \(given 'sbt\.control\.plane \/ sbt_aws_billingSuccess'\)/);
    });

    test('passes with the same bus and event names given to both', () => {
      const stack = newStack();
      const eventBus = new events.EventBus(stack, 'ControlPlaneBus');
      const controlPlaneEvents = new ControlPlaneEvents({ source: 'acme.control', billingSubscriptionChanged: 'SubscriptionChanged' });
      const billing = make(stack, { eventBus, controlPlaneEvents });
      expect(billing.eventBus).toBe(eventBus);
      expect(billing.controlPlaneEvents).toBe(controlPlaneEvents);
      provider(stack, billing, { eventBus, controlPlaneEvents: new ControlPlaneEvents({ source: 'acme.control', billingSubscriptionChanged: 'SubscriptionChanged' }) });
      Template.fromStack(stack).hasResourceProperties('AWS::Events::Rule', {
        ...rulePattern('acme.control', 'sbt_aws_onboardingRequest'),
        EventBusName: { Ref: stack.getLogicalId(eventBus.node.defaultChild as events.CfnEventBus) },
      });
    });

    test('passes with no bus given to either, and with the default bus given explicitly to one of them', () => {
      const stack = newStack();
      provider(stack, make(stack, {}));
      const other = newStack();
      provider(other, make(other, {}), { eventBus: events.EventBus.fromEventBusName(other, 'Default', 'default') });
      const third = newStack();
      provider(third, make(third, { eventBus: events.EventBus.fromEventBusArn(third, 'Default', 'arn:aws:events:us-east-1:111111111111:event-bus/default') }));
    });

    test('passes with one bus imported twice by name', () => {
      const stack = newStack();
      const billing = make(stack, { eventBus: events.EventBus.fromEventBusName(stack, 'Imported', 'shared-bus') });
      provider(stack, billing, { eventBus: events.EventBus.fromEventBusName(stack, 'ImportedAgain', 'shared-bus') });
    });
  });

  test('a billing that declares no bus or event names is not checked', () => {
    const stack = newStack();
    new BillingProvider(stack, 'Billing', { billing: requiredBilling(stack), eventBus: new events.EventBus(stack, 'Bus'), controlPlaneEvents: ControlPlaneEvents.SBT_AWS_LEGACY });
  });

  test('the default bus of another account or region is another bus', () => {
    const app = testApp('provider-env');
    const billingStack = new Stack(app, 'BillingStack', { env: { account: '111111111111', region: 'eu-west-1' } });
    const providerStack = new Stack(app, 'TestStack', { env: { account: '111111111111', region: 'us-east-1' } });
    const billing = new DynamoDbBilling(billingStack, 'Own');
    expect(() => new BillingProvider(providerStack, 'Billing', { billing: billing.billing }))
      .toThrow(/own functions emit on \(the default bus of 111111111111 in eu-west-1 \(BillingStack\/Own\/DefaultEventBus\)\).*\(given 'none: the default bus of 111111111111 in us-east-1'\)/);
  });
});
