import { Duration, Lazy, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import { UsageIngestor, UsageIngestorProps, WindowGranularity } from '../../src/ingestor';
import { FAN_OUT_ITEMS, SEGMENT_ITEMS } from '../../src/ingestor/capacity';
import { testApp } from '../support/synth';

function stackWith(props?: UsageIngestorProps): { stack: Stack; ingestor: UsageIngestor; template: Template } {
  const { stack, ingestor } = unsynthesized(props);
  return { stack, ingestor, template: Template.fromStack(stack) };
}

function unsynthesized(props?: UsageIngestorProps): { stack: Stack; ingestor: UsageIngestor } {
  const stack = new Stack(testApp('ingestor'), 'Stack');
  return { stack, ingestor: new UsageIngestor(stack, 'Ingestor', props) };
}

/** The policy statements of the role whose logical id starts with `prefix`. */
function statementsOf(template: Template, prefix: string): any[] {
  const policies = template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: Match.stringLikeRegexp(`^${prefix}`) }] } });
  return Object.values(policies).flatMap((p: any) => p.Properties.PolicyDocument.Statement);
}

const inlineCode = () => lambda.Code.fromInline('exports.handler = async () => undefined;');

describe('defaults', () => {
  // GIVEN / WHEN an ingestor with no props
  const { template, ingestor } = stackWith();

  test('an on-demand data stream encrypted with the AWS managed key, kept 24 hours, retained on delete', () => {
    template.hasResourceProperties('AWS::Kinesis::Stream', {
      StreamModeDetails: { StreamMode: 'ON_DEMAND' },
      StreamEncryption: { EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' },
      RetentionPeriodHours: 24,
    });
    template.hasResource('AWS::Kinesis::Stream', { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    template.resourcePropertiesCountIs('AWS::Kinesis::Stream', { ShardCount: Match.anyValue() }, 0);
  });

  test('an on-demand usage table with point-in-time recovery, encryption and TTL, without any index, retained on delete', () => {
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      GlobalSecondaryIndexes: Match.absent(),
    });
    template.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
  });

  test('a Node.js 24 aggregator: hourly windows, 15 minutes of lateness, 5 minutes of clock skew, one year of logs, a description', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      MemorySize: 512,
      Timeout: 60,
      Description: Match.stringLikeRegexp('^cdk-saas-billing usage ingestor: writes each usage record'),
      Environment: {
        Variables: Match.objectLike({
          USAGE_TABLE_NAME: { Ref: Match.stringLikeRegexp('IngestorAggregateTable') },
          WINDOW_GRANULARITY: 'HOUR',
          ALLOWED_LATENESS_SECONDS: '900',
          MAX_CLOCK_SKEW_SECONDS: '300',
          LEDGER_RETENTION_SECONDS: String(7 * 86400),
          POWERTOOLS_METRICS_NAMESPACE: 'CdkSaasBilling/UsageIngestor',
        }),
      },
    });
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 365 });
  });

  test('a closer run every 5 minutes that closes windows 2 minutes after closesAt (aggregator timeout 60 s + 60 s) and announces them on the default bus', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^cdk-saas-billing usage ingestor: closes usage windows'),
      Timeout: 600,
      Environment: {
        Variables: Match.objectLike({
          CLOSING_MARGIN_SECONDS: '120',
          ALLOWED_LATENESS_SECONDS: '900',
          EVENT_BUS_ARN: { 'Fn::Join': ['', Match.arrayWith([':event-bus/default'])] },
        }),
      },
    });
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(5 minutes)',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('IngestorCloser'), 'Arn'] }, RetryPolicy: { MaximumRetryAttempts: 0 } })],
    });
  });

  test('an event source mapping that bisects, reports item failures, bounds retries and age, batches within 2 seconds, and sends failures to the DLQ', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      StartingPosition: 'TRIM_HORIZON',
      BatchSize: 100,
      MaximumBatchingWindowInSeconds: 2,
      ParallelizationFactor: 1,
      BisectBatchOnFunctionError: true,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      MaximumRetryAttempts: 500,
      MaximumRecordAgeInSeconds: 86400,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [Match.stringLikeRegexp('IngestorDeadLetterQueue'), 'Arn'] } } },
    });
  });

  test('an encrypted dead-letter queue that refuses plain HTTP and keeps messages 14 days', () => {
    template.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true, MessageRetentionPeriod: 1209600 });
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: { Statement: [Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })] },
    });
  });

  test('seven alarms, exposed as `alarms`: iterator age, DLQ depth, aggregator errors, quarantined records, closer errors, closing lag, closing DLQ depth', () => {
    template.resourceCountIs('AWS::CloudWatch::Alarm', 7);
    expect(ingestor.alarms).toHaveLength(7);
    expect(ingestor.alarms.map((a) => a.node.id)).toEqual([
      'IteratorAgeAlarm', 'DeadLetterQueueAlarm', 'ErrorsAlarm', 'QuarantinedRecordsAlarm', 'CloserErrorsAlarm', 'ClosingLagAlarm', 'ClosingDeadLetterQueueAlarm',
    ]);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'IteratorAge', Namespace: 'AWS/Lambda', Statistic: 'Maximum', Threshold: 300000, ComparisonOperator: 'GreaterThanThreshold',
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'ApproximateNumberOfMessagesVisible', Namespace: 'AWS/SQS', Threshold: 1 });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'QuarantinedRecords',
      Namespace: 'CdkSaasBilling/UsageIngestor',
      Dimensions: [{ Name: 'service', Value: Match.stringLikeRegexp('Ingestor') }],
      Threshold: 1,
      TreatMissingData: 'notBreaching',
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'ClosingLagSeconds', Statistic: 'Maximum', Threshold: 1800 });
    template.resourcePropertiesCountIs('AWS::CloudWatch::Alarm', { AlarmActions: Match.anyValue() }, 0);
  });

  test('the aggregator may only write and read ledger items by key; the closer and the closing workers may also query, put and update; none may scan or delete', () => {
    const table = { 'Fn::GetAtt': [Match.stringLikeRegexp('IngestorAggregateTable'), 'Arn'] };
    expect(statementsOf(template, 'IngestorAggregatorRole').filter((s) => JSON.stringify(s.Action).includes('dynamodb'))).toEqual([
      { Effect: 'Allow', Action: ['dynamodb:BatchWriteItem', 'dynamodb:BatchGetItem'], Resource: [expect.objectContaining({ 'Fn::GetAtt': expect.any(Array) })] },
    ]);
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: Match.stringLikeRegexp('^IngestorCloserRole') }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: ['dynamodb:Query', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:BatchWriteItem'], Resource: Match.arrayWith([table]),
          }),
          Match.objectLike({ Action: 'events:PutEvents' }),
        ]),
      },
    });
    for (const role of ['IngestorCloserRole', 'IngestorClosingWorkerRole']) {
      expect(statementsOf(template, role)).toContainEqual(expect.objectContaining({
        Action: ['dynamodb:Query', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:BatchWriteItem'],
      }));
      expect(statementsOf(template, role)).toContainEqual(expect.objectContaining({
        Action: ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'],
        Resource: { 'Fn::GetAtt': [expect.stringMatching(/^IngestorClosingQueue/), 'Arn'] },
      }));
    }
    expect(JSON.stringify(template.findResources('AWS::IAM::Policy'))).not.toMatch(/dynamodb:(Scan|DeleteItem|\*)/);
  });

  test('the functions have their own roles without managed policies', () => {
    template.resourcePropertiesCountIs('AWS::IAM::Role', { ManagedPolicyArns: Match.anyValue() }, 0);
  });

  test('the closing fan-out: a queue redelivering after a worker\'s longest run and sending a message to its dead-letter queue after 5 tries, '
    + 'workers of a whole vCPU taking one message at a time, and the closer\'s thresholds', () => {
    template.hasResourceProperties('AWS::SQS::Queue', {
      SqsManagedSseEnabled: true,
      VisibilityTimeout: 960,
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^IngestorClosingDeadLetterQueue'), 'Arn'] }, maxReceiveCount: 5 },
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^cdk-saas-billing usage ingestor: folds, merges and announces'),
      MemorySize: 1769,
      Timeout: 900,
      Runtime: 'nodejs24.x',
      Environment: { Variables: Match.objectLike({ WINDOW_GRANULARITY: 'HOUR', EVENT_BUS_ARN: Match.anyValue() }) },
    });
    // the closer learns the closing queue from its schedule's event (its environment names no queue: tools that run it outside AWS resolve it as before)
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(5 minutes)',
      Targets: [Match.objectLike({
        Input: { 'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp('closingQueueUrl'), { Ref: Match.stringLikeRegexp('^IngestorClosingQueue') }])] },
      })],
    });
    expect(JSON.stringify(template.findResources('AWS::Lambda::Function'))).not.toMatch(/IngestorClosingQueue/);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^IngestorClosingQueue'), 'Arn'] },
      FunctionName: { Ref: Match.stringLikeRegexp('^IngestorClosingWorker') },
      BatchSize: 1,
      ScalingConfig: Match.absent(),
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^cdk-saas-billing usage ingestor: closes usage windows'),
      Environment: {
        Variables: Match.objectLike({
          LEDGER_KEYS: '64', LEDGER_RETENTION_SECONDS: String(7 * 86400), CLOSING_FAN_OUT_ITEMS: String(FAN_OUT_ITEMS), CLOSING_SEGMENT_ITEMS: String(SEGMENT_ITEMS),
        }),
      },
    });
    expect(ingestor.closingQueue).toBeDefined();
    expect(ingestor.closingWorkerFunction).toBeDefined();
    expect(ingestor.ledgerKeys).toBe(64);
    expect(ingestor.metricClosingDeadLetterQueueDepth().metricName).toBe('ApproximateNumberOfMessagesVisible');
  });

  test('the closing times StripeBilling checks: 15 min lateness + 2 min margin + 5 min interval + the closer\'s 10-minute run', () => {
    expect(ingestor.closingTimes?.maxClosingDelay.toMinutes()).toBe(32);
  });

  test('no capacity warning without expectedRecordsPerSecond', () => {
    expect(Annotations.fromStack(ingestor.node.scope as Stack).findWarning('*', Match.stringLikeRegexp('expectedRecordsPerSecond'))).toEqual([]);
  });

  test('the contract members, the event definition and the metrics are exposed', () => {
    expect(ingestor.dataStream).toBeDefined();
    expect(ingestor.aggregateTable).toBeDefined();
    expect(ingestor.aggregatorFunction).toBeDefined();
    expect(ingestor.closerFunction).toBeDefined();
    expect(ingestor.deadLetterQueue).toBeDefined();
    expect(ingestor.encryptionKey).toBeUndefined();
    expect(ingestor.windowGranularity).toBe(WindowGranularity.HOUR);
    expect(ingestor.windowClosedEvent).toEqual({ source: 'cdk-saas-billing.usage', detailType: 'usageWindowClosed' });
    expect(ingestor.metricIteratorAge().metricName).toBe('IteratorAge');
    expect(ingestor.metricDeadLetterQueueDepth().metricName).toBe('ApproximateNumberOfMessagesVisible');
    expect(ingestor.metricErrors().metricName).toBe('Errors');
    expect(ingestor.metricCloserErrors().metricName).toBe('Errors');
    expect(ingestor.metricQuarantinedRecords().metricName).toBe('QuarantinedRecords');
    expect(ingestor.metricRecordsCounted().metricName).toBe('RecordsCounted');
    expect(ingestor.metricWindowsClosed().metricName).toBe('WindowsClosed');
    expect(ingestor.metricClosingLag().metricName).toBe('ClosingLagSeconds');
    expect(ingestor.metricDuplicateRecords({ period: Duration.minutes(1) }).period.toMinutes()).toBe(1);
  });
});

describe('options', () => {
  test('a provisioned stream with shards and a longer retention', () => {
    const { template } = stackWith({ streamMode: kinesis.StreamMode.PROVISIONED, shardCount: 4, retentionPeriod: Duration.days(7) });
    template.hasResourceProperties('AWS::Kinesis::Stream', { StreamModeDetails: { StreamMode: 'PROVISIONED' }, ShardCount: 4, RetentionPeriodHours: 168 });
  });

  test('a provisioned stream has 1 shard unless told', () => {
    const { template } = stackWith({ streamMode: kinesis.StreamMode.PROVISIONED });
    template.hasResourceProperties('AWS::Kinesis::Stream', { ShardCount: 1 });
  });

  test('daily windows, lateness and clock skew reach both functions and the reader under one name each', () => {
    // GIVEN
    const { stack, ingestor } = unsynthesized({
      windowGranularity: WindowGranularity.DAY, allowedLateness: Duration.minutes(15), maxClockSkew: Duration.minutes(1),
    });
    const consumer = new lambda.Function(stack, 'Consumer', { runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: inlineCode() });
    // WHEN
    ingestor.bindUsageReader(consumer);
    // THEN
    const template = Template.fromStack(stack);
    expect(ingestor.windowGranularity).toBe(WindowGranularity.DAY);
    template.resourcePropertiesCountIs('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ WINDOW_GRANULARITY: 'DAY', ALLOWED_LATENESS_SECONDS: '900' }) },
    }, 3);
    template.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ MAX_CLOCK_SKEW_SECONDS: '60' }) } });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: { USAGE_READER_WINDOW_GRANULARITY: 'DAY', USAGE_READER_ALLOWED_LATENESS_SECONDS: '900', USAGE_READER_MAX_CLOCK_SKEW_SECONDS: '60', USAGE_READER_TABLE_NAME: Match.anyValue() } },
    });
  });

  test('a custom bus receives the events; the closer may put events on it only', () => {
    // GIVEN
    const stack = new Stack(testApp('ingestor'), 'Stack');
    const bus = new events.EventBus(stack, 'Bus');
    // WHEN
    new UsageIngestor(stack, 'Ingestor', { eventBus: bus, closingInterval: Duration.minutes(1) });
    // THEN
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ EVENT_BUS_ARN: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Bus'), 'Arn'] } }) },
    });
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: Match.arrayWith([{ Effect: 'Allow', Action: 'events:PutEvents', Resource: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Bus'), 'Arn'] } }]) },
    });
    template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(1 minute)' });
  });

  test('event source mapping options', () => {
    const { template } = stackWith({
      batchSize: 500, maxBatchingWindow: Duration.seconds(0), parallelizationFactor: 4, retryAttempts: 3, maxRecordAge: Duration.hours(1),
    });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', { BatchSize: 500, ParallelizationFactor: 4, MaximumRetryAttempts: 3, MaximumRecordAgeInSeconds: 3600 });
  });

  test('alarm actions reach every alarm; iterator age threshold and log retention', () => {
    // GIVEN
    const stack = new Stack(testApp('ingestor'), 'Stack');
    const topic = new sns.Topic(stack, 'Alarms');
    // WHEN
    const ingestor = new UsageIngestor(stack, 'Ingestor', {
      alarmActions: [{ bind: () => ({ alarmActionArn: topic.topicArn }) }],
      iteratorAgeAlarmThreshold: Duration.seconds(30),
      logRetention: logs.RetentionDays.ONE_MONTH,
    });
    // THEN
    const template = Template.fromStack(stack);
    template.resourcePropertiesCountIs('AWS::CloudWatch::Alarm', { AlarmActions: [{ Ref: Match.stringLikeRegexp('^Alarms') }] }, 7);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'IteratorAge', Threshold: 30000 });
    template.resourcePropertiesCountIs('AWS::Logs::LogGroup', { RetentionInDays: 30 }, 3);
    // the alarms are concrete: an action can be added in every language
    const extra: cloudwatch.IAlarmAction = { bind: () => ({ alarmActionArn: 'arn:aws:sns:us-east-1:123456789012:extra' }) };
    ingestor.alarms[0].addAlarmAction(extra);
  });

  test('a customer-managed key encrypts the stream, the table and the queue; the functions and readers may use it', () => {
    // GIVEN
    const stack = new Stack(testApp('ingestor'), 'Stack');
    const key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
    const reader = new iam.Role(stack, 'Reader', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    // WHEN
    const ingestor = new UsageIngestor(stack, 'Ingestor', { encryptionKey: key });
    ingestor.bindUsageReader(lambda.Function.fromFunctionAttributes(stack, 'Imported', {
      functionArn: 'arn:aws:lambda:us-east-1:123456789012:function:reader', role: reader, sameEnvironment: true,
    }));
    // THEN
    const template = Template.fromStack(stack);
    const keyArn = { 'Fn::GetAtt': [Match.stringLikeRegexp('^Key'), 'Arn'] };
    expect(ingestor.encryptionKey).toBe(key);
    template.hasResourceProperties('AWS::Kinesis::Stream', { StreamEncryption: { EncryptionType: 'KMS', KeyId: keyArn } });
    template.hasResourceProperties('AWS::DynamoDB::Table', { SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: keyArn } });
    template.resourcePropertiesCountIs('AWS::SQS::Queue', { KmsMasterKeyId: keyArn }, 3);
    for (const role of ['IngestorAggregatorRole', 'IngestorCloserRole', 'IngestorClosingWorkerRole']) {
      expect(statementsOf(template, role)).toContainEqual(expect.objectContaining({ Action: expect.arrayContaining(['kms:Decrypt', 'kms:Encrypt']), Resource: expect.anything() }));
    }
    expect(statementsOf(template, 'Reader')).toContainEqual(expect.objectContaining({ Action: 'kms:Decrypt' }));
  });

  test('without a key, no KMS permission and no acknowledgement of KMS findings', () => {
    const { template } = stackWith();
    expect(JSON.stringify(template.toJSON())).not.toMatch(/kms:/);
  });

  test('removalPolicy DESTROY applies to the stream, the table and the log groups', () => {
    const { template } = stackWith({ removalPolicy: RemovalPolicy.DESTROY });
    template.hasResource('AWS::Kinesis::Stream', { DeletionPolicy: 'Delete' });
    template.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Delete' });
    template.resourcePropertiesCountIs('AWS::Logs::LogGroup', {}, 3);
    expect(Object.values(template.findResources('AWS::Logs::LogGroup')).map((r: any) => r.DeletionPolicy)).toEqual(['Delete', 'Delete', 'Delete']);
  });
});

describe('ledger keys and capacity', () => {
  test('ledgerKeys reaches the aggregator, the closer and the reader\'s environment', () => {
    // GIVEN
    const { stack, ingestor } = unsynthesized({ ledgerKeys: 512 });
    const consumer = new lambda.Function(stack, 'Consumer', { runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: inlineCode() });
    // WHEN
    const binding = ingestor.bindUsageReader(consumer);
    // THEN
    const template = Template.fromStack(stack);
    expect(ingestor.ledgerKeys).toBe(512);
    template.resourcePropertiesCountIs('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ LEDGER_KEYS: '512' }) } }, 2);
    expect(binding.environment.USAGE_READER_LEDGER_KEYS).toBe('512');
  });

  test('with the default 64 keys the reader\'s environment is what it was (the reader assumes 64)', () => {
    const { stack, ingestor } = unsynthesized();
    const consumer = new lambda.Function(stack, 'Consumer', { runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: inlineCode() });
    expect(ingestor.bindUsageReader(consumer).environment.USAGE_READER_LEDGER_KEYS).toBeUndefined();
  });

  test('250,000 records/s with the defaults: synth warns about every limit on the way, naming the prop to set', () => {
    // GIVEN / WHEN
    const { stack } = stackWith({ expectedRecordsPerSecond: 250_000, windowGranularity: WindowGranularity.DAY });
    // THEN
    const warnings = Annotations.fromStack(stack).findWarning('/Stack/Ingestor', Match.anyValue()).map((w) => String(w.entry.data));
    const about = (id: string) => warnings.find((w) => w.includes(`[ack: cdk-saas-billing:usageIngestorCapacity.${id}]`));
    expect(about('ledgerKeys')).toMatch(/ledgerKeys 64 carries about 51,200 records\/s .* set ledgerKeys to 313/);
    expect(about('onDemandStart')).toMatch(/a new on-demand stream takes 4 MB\/s .* shardCount 313/);
    expect(about('tableQuota')).toMatch(/ask for a table-level write quota of at least 313,000/);
    expect(about('closingReads')).toMatch(/reads about [\d,]+ read units a second/);
    expect(about('closingLag')).toMatch(/closing a window start takes about \d+ minutes by the capacity model .* raise ledgerKeys/);
    expect(about('aggregatorBatch')).toMatch(/reads one shard at about 500 records\/s with batchSize 100 .* set batchSize to 200 or more/);
    expect(about('shardCount')).toBeUndefined();
  });

  test('250,000 records/s with hourly windows and props sized for it: only the account quotas no prop can raise are left', () => {
    // GIVEN / WHEN
    const { stack, ingestor } = stackWith({
      expectedRecordsPerSecond: 250_000,
      ledgerKeys: 512,
      streamMode: kinesis.StreamMode.PROVISIONED,
      shardCount: 320,
      batchSize: 500,
      closingInterval: Duration.minutes(1),
    });
    // THEN
    const warnings = Annotations.fromStack(stack).findWarning('/Stack/Ingestor', Match.anyValue()).map((w) => String(w.entry.data));
    expect(warnings.map((w) => /usageIngestorCapacity\.(\w+)/.exec(w)?.[1]).sort()).toEqual(['closingReads', 'tableQuota']);
    // AND the closing times stay those of one closer run (the model closes a window start in less)
    expect(ingestor.closingTimes?.maxClosingDelay.toMinutes()).toBe(15 + 2 + 1 + 10);
  });

  test('a provisioned stream too small for the declared rate is named; closing times grow when the model closes slower than one closer run', () => {
    // GIVEN / WHEN
    const { stack, ingestor } = stackWith({
      expectedRecordsPerSecond: 50_000, streamMode: kinesis.StreamMode.PROVISIONED, shardCount: 10, windowGranularity: WindowGranularity.DAY,
    });
    // THEN
    Annotations.fromStack(stack).hasWarning('/Stack/Ingestor', Match.stringLikeRegexp('shardCount 10 takes 10,000 records/s \\(1,000 per shard\\), not 50,000'));
    expect(ingestor.closingTimes!.maxClosingDelay.toMinutes()).toBeGreaterThan(32);
  });
});

describe('grants and the usage read contract', () => {
  test('grantPutUsage lets a producer put records on the stream', () => {
    // GIVEN
    const { stack, ingestor } = unsynthesized();
    const producer = new iam.Role(stack, 'Producer', { assumedBy: new iam.AccountRootPrincipal() });
    // WHEN
    ingestor.grantPutUsage(producer);
    // THEN
    Template.fromStack(stack).hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: Match.stringLikeRegexp('Producer') }],
      PolicyDocument: {
        Statement: [Match.objectLike({
          Action: Match.arrayWith(['kinesis:PutRecord', 'kinesis:PutRecords']),
          Resource: { 'Fn::GetAtt': [Match.stringLikeRegexp('IngestorDataStream'), 'Arn'] },
        })],
      },
    });
  });

  test('bindUsageReader lets a function query and get items of the table (no write, no index) and sets the environment UsageReader reads', () => {
    // GIVEN
    const { stack, ingestor } = unsynthesized();
    const consumer = new lambda.Function(stack, 'Pusher', { runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: inlineCode() });
    // WHEN
    const binding = ingestor.bindUsageReader(consumer);
    // THEN
    const template = Template.fromStack(stack);
    expect(Object.keys(binding.environment).sort()).toEqual([
      'USAGE_READER_ALLOWED_LATENESS_SECONDS', 'USAGE_READER_MAX_CLOCK_SKEW_SECONDS', 'USAGE_READER_TABLE_NAME', 'USAGE_READER_WINDOW_GRANULARITY',
    ]);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'index.handler',
      Environment: { Variables: Match.objectLike({ USAGE_READER_TABLE_NAME: { Ref: Match.stringLikeRegexp('IngestorAggregateTable') }, USAGE_READER_WINDOW_GRANULARITY: 'HOUR' }) },
    });
    const statements = statementsOf(template, 'PusherServiceRole');
    expect(statements).toEqual([expect.objectContaining({ Action: ['dynamodb:Query', 'dynamodb:GetItem'] })]);
    expect(JSON.stringify(statements)).not.toMatch(/index|PutItem|UpdateItem|DeleteItem|BatchWrite/);
  });

  test('bindUsageReader on a function it cannot configure grants read access and returns the environment to set', () => {
    // GIVEN
    const { stack, ingestor } = unsynthesized();
    const role = new iam.Role(stack, 'ImportedRole', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    const imported = lambda.Function.fromFunctionAttributes(stack, 'Imported', { functionArn: 'arn:aws:lambda:us-east-1:123456789012:function:x', role, sameEnvironment: true });
    // WHEN
    const binding = ingestor.bindUsageReader(imported);
    // THEN
    expect(binding.environment.USAGE_READER_ALLOWED_LATENESS_SECONDS).toBe('900');
    expect(statementsOf(Template.fromStack(stack), 'ImportedRole')).toEqual([expect.objectContaining({ Action: ['dynamodb:Query', 'dynamodb:GetItem'] })]);
  });
});

describe('validation', () => {
  const cases: Array<[string, UsageIngestorProps, RegExp]> = [
    ['shardCount is given for an on-demand stream', { shardCount: 2 }, /- shardCount \(Python: shard_count\) only applies to provisioned streams \(given number 2\): set streamMode to StreamMode.PROVISIONED/],
    ['shardCount is 0', { streamMode: kinesis.StreamMode.PROVISIONED, shardCount: 0 }, /shardCount \(Python: shard_count\) must be an integer between 1 and 100000 \(given number 0\)/],
    ['allowedLateness is over 7 days', { allowedLateness: Duration.days(8) }, /allowedLateness \(Python: allowed_lateness\) must be a whole number of seconds between 0 seconds and 7 days \(given 8 days\)/],
    ['maxClockSkew is over a day', { maxClockSkew: Duration.days(2) }, /maxClockSkew \(Python: max_clock_skew\) must be a whole number of seconds between 0 seconds and 1 day \(given 2 days\)/],
    ['closingInterval is under a minute', { closingInterval: Duration.seconds(30) }, /closingInterval \(Python: closing_interval\) must be a whole number of minutes between 1 minute and 1 hour \(given 30 seconds\)/],
    ['iteratorAgeAlarmThreshold is 0', { iteratorAgeAlarmThreshold: Duration.seconds(0) }, /iteratorAgeAlarmThreshold \(Python: iterator_age_alarm_threshold\) must be between 1 second and 7 days \(given 0 seconds\)/],
    ['ledgerKeys is under 64', { ledgerKeys: 63 }, /ledgerKeys \(Python: ledger_keys\) must be an integer between 64 and 1024 \(given number 63\): give about expectedRecordsPerSecond \/ 800 keys/],
    ['ledgerKeys is over 1,024', { ledgerKeys: 1025 }, /ledgerKeys \(Python: ledger_keys\) must be an integer between 64 and 1024 \(given number 1025\)/],
    ['ledgerKeys is not an integer', { ledgerKeys: 100.5 }, /ledgerKeys \(Python: ledger_keys\) must be an integer between 64 and 1024 \(given number 100.5\)/],
    ['expectedRecordsPerSecond is 0', { expectedRecordsPerSecond: 0 }, /expectedRecordsPerSecond \(Python: expected_records_per_second\) must be an integer between 1 and 10000000 \(given number 0\)/],
  ];
  test.each(cases)('fails if %s', (_name, props, message) => {
    const stack = new Stack(testApp('ingestor'), 'Stack');
    expect(() => new UsageIngestor(stack, 'Ingestor', props)).toThrow(message);
  });

  test('fails with every problem at once, in the one format of the library', () => {
    const stack = new Stack(testApp('ingestor'), 'Stack');
    expect(() => new UsageIngestor(stack, 'Ingestor', { shardCount: 2, allowedLateness: Duration.days(8) }))
      .toThrow(/^UsageIngestor at Stack\/Ingestor: invalid props:\n- shardCount[^\n]*\n- allowedLateness/);
  });

  // Each of these passed on the old code (a fraction synthesized with only a CloudFormation warning) or failed
  // with aws-cdk-lib's own message, in another format and one problem at a time.
  test.each([
    ['batchSize is 0', { batchSize: 0 }, 'batchSize (Python: batch_size) must be an integer between 1 and 10000 (given number 0): give a value from 1 to 10000'],
    ['batchSize is 1.5', { batchSize: 1.5 }, 'batchSize (Python: batch_size) must be an integer between 1 and 10000 (given number 1.5)'],
    ['batchSize is over 10000', { batchSize: 10_001 }, 'batchSize (Python: batch_size) must be an integer between 1 and 10000 (given number 10001)'],
    ['parallelizationFactor is 2.5', { parallelizationFactor: 2.5 },
      'parallelizationFactor (Python: parallelization_factor) must be an integer between 1 and 10 (given number 2.5): give a value from 1 to 10'],
    ['parallelizationFactor is 11', { parallelizationFactor: 11 }, 'parallelizationFactor (Python: parallelization_factor) must be an integer between 1 and 10 (given number 11)'],
    ['retryAttempts is 0.5', { retryAttempts: 0.5 },
      'retryAttempts (Python: retry_attempts) must be an integer between -1 and 10000 (given number 0.5): give 0 to 10000 retries, or -1 to retry until the record is older than maxRecordAge'],
    ['retryAttempts is -2', { retryAttempts: -2 }, 'retryAttempts (Python: retry_attempts) must be an integer between -1 and 10000 (given number -2)'],
    ['maxBatchingWindow is over 5 minutes', { maxBatchingWindow: Duration.seconds(301) },
      'maxBatchingWindow (Python: max_batching_window) must be a whole number of seconds between 0 seconds and 5 minutes (given 5 minutes 1 second)'],
    ['maxBatchingWindow is not whole seconds', { maxBatchingWindow: Duration.millis(1500) },
      'maxBatchingWindow (Python: max_batching_window) must be a whole number of seconds between 0 seconds and 5 minutes (given 1 second 500 millis): give a Duration from 0 seconds to 5 minutes in whole seconds'],
    ['maxRecordAge is under a minute', { maxRecordAge: Duration.seconds(30) }, 'maxRecordAge (Python: max_record_age) must be a whole number of seconds between 1 minute and 7 days (given 30 seconds)'],
    ['retentionPeriod is under 24 hours', { retentionPeriod: Duration.hours(12) },
      'retentionPeriod (Python: retention_period) must be a whole number of hours between 1 day and 365 days (given 12 hours)'],
    ['retentionPeriod is not whole hours', { retentionPeriod: Duration.minutes(90 * 60 + 30) }, 'retentionPeriod (Python: retention_period) must be a whole number of hours'],
    ['closingInterval is not whole minutes', { closingInterval: Duration.seconds(90) }, 'closingInterval (Python: closing_interval) must be a whole number of minutes between 1 minute and 1 hour'],
    ['allowedLateness is not whole seconds', { allowedLateness: Duration.millis(100) }, 'allowedLateness (Python: allowed_lateness) must be a whole number of seconds'],
  ] as Array<[string, UsageIngestorProps, string]>)('fails if %s, in the common format', (_name, props, message) => {
    const stack = new Stack(testApp('ingestor'), 'Stack');
    expect(() => new UsageIngestor(stack, 'Ingestor', props)).toThrow(`UsageIngestor at Stack/Ingestor: invalid props:\n- ${message}`);
  });

  test('fails with every event source mapping problem at once', () => {
    const stack = new Stack(testApp('ingestor'), 'Stack');
    expect(() => new UsageIngestor(stack, 'Ingestor', { batchSize: 1.5, parallelizationFactor: 2.5, retryAttempts: 0.5, maxBatchingWindow: Duration.seconds(301) }))
      .toThrow(/^UsageIngestor at Stack\/Ingestor: invalid props:\n- batchSize [^\n]*\n- maxBatchingWindow [^\n]*\n- parallelizationFactor [^\n]*\n- retryAttempts [^\n]*$/);
  });

  test('accepts the ends of every documented range', () => {
    for (const props of [
      { batchSize: 1, parallelizationFactor: 1, retryAttempts: -1, maxBatchingWindow: Duration.seconds(0), maxRecordAge: Duration.minutes(1) },
      { batchSize: 10_000, parallelizationFactor: 10, retryAttempts: 10_000, maxBatchingWindow: Duration.minutes(5), maxRecordAge: Duration.days(7) },
      { retentionPeriod: Duration.hours(24) },
      { retentionPeriod: Duration.days(365) },
    ] as UsageIngestorProps[]) {
      const stack = new Stack(testApp('ingestor'), 'Stack');
      new UsageIngestor(stack, 'Ingestor', props);
      const template = Template.fromStack(stack);
      if (props.batchSize) template.hasResourceProperties('AWS::Lambda::EventSourceMapping', { BatchSize: props.batchSize, MaximumRetryAttempts: props.retryAttempts });
      if (props.retentionPeriod) template.hasResourceProperties('AWS::Kinesis::Stream', { RetentionPeriodHours: props.retentionPeriod.toHours() });
    }
  });

  test('skips unresolved tokens', () => {
    const stack = new Stack(testApp('ingestor'), 'Stack');
    expect(() => new UsageIngestor(stack, 'Ingestor', {
      batchSize: Lazy.number({ produce: () => 50 }),
      streamMode: kinesis.StreamMode.PROVISIONED,
      shardCount: Lazy.number({ produce: () => 0 }),
    })).not.toThrow();
  });
});
