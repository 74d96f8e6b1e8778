import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { UsageIngestor, UsageIngestorProps, WindowGranularity } from '../../src/ingestor';
import { testApp } from '../support/synth';

function stackWith(props?: UsageIngestorProps): { stack: Stack; ingestor: UsageIngestor; template: Template } {
  const { stack, ingestor } = unsynthesized(props);
  return { stack, ingestor, template: Template.fromStack(stack) };
}

function unsynthesized(props?: UsageIngestorProps): { stack: Stack; ingestor: UsageIngestor } {
  const stack = new Stack(testApp('ingestor'), 'Stack');
  return { stack, ingestor: new UsageIngestor(stack, 'Ingestor', props) };
}

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

  test('an on-demand table with point-in-time recovery, encryption, TTL and the byCloseTime index, retained on delete', () => {
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      GlobalSecondaryIndexes: [
        {
          IndexName: 'byCloseTime',
          KeySchema: [
            { AttributeName: 'closeBucket', KeyType: 'HASH' },
            { AttributeName: 'closeSortKey', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
    });
    template.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
  });

  test('a Node.js 24 aggregator function configured for hourly windows and 1 hour of lateness, with one year of logs', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      Handler: 'index.handler',
      MemorySize: 512,
      Timeout: 60,
      Environment: {
        Variables: Match.objectLike({
          WINDOW_GRANULARITY: 'HOUR',
          ALLOWED_LATENESS_SECONDS: '3600',
          MAX_FUTURE_SKEW_SECONDS: '300',
          DEDUP_RETENTION_SECONDS: String(7 * 86400),
          AGGREGATE_TABLE_NAME: { Ref: Match.stringLikeRegexp('IngestorAggregateTable') },
          POWERTOOLS_METRICS_NAMESPACE: 'CdkSaasBilling/UsageIngestor',
        }),
      },
    });
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 365 });
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

  test('four alarms: iterator age over 5 minutes, DLQ depth, function errors, quarantined records', () => {
    template.resourceCountIs('AWS::CloudWatch::Alarm', 4);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'IteratorAge', Namespace: 'AWS/Lambda', Statistic: 'Maximum', Threshold: 300000, ComparisonOperator: 'GreaterThanThreshold',
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'ApproximateNumberOfMessagesVisible', Namespace: 'AWS/SQS', Threshold: 1 });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'Errors', Namespace: 'AWS/Lambda', Statistic: 'Sum', Threshold: 1 });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'QuarantinedRecords',
      Namespace: 'CdkSaasBilling/UsageIngestor',
      Dimensions: [{ Name: 'service', Value: Match.stringLikeRegexp('Ingestor') }],
      Threshold: 1,
      TreatMissingData: 'notBreaching',
    });
  });

  test('the function may touch only the table itself with the calls it makes (no index, no scan, no delete)', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Effect: 'Allow',
            Action: [
              'dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem', 'dynamodb:ConditionCheckItem',
              'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem',
            ],
            Resource: { 'Fn::GetAtt': [Match.stringLikeRegexp('IngestorAggregateTable'), 'Arn'] },
          },
        ]),
      },
    });
  });

  test('the contract members and the metrics are exposed', () => {
    expect(ingestor.dataStream).toBeDefined();
    expect(ingestor.aggregateTable).toBeDefined();
    expect(ingestor.aggregatorFunction).toBeDefined();
    expect(ingestor.deadLetterQueue).toBeDefined();
    expect(ingestor.encryptionKey).toBeUndefined();
    expect(ingestor.windowGranularity).toBe(WindowGranularity.HOUR);
    expect(ingestor.metricIteratorAge().metricName).toBe('IteratorAge');
    expect(ingestor.metricDeadLetterQueueDepth().metricName).toBe('ApproximateNumberOfMessagesVisible');
    expect(ingestor.metricErrors().metricName).toBe('Errors');
    expect(ingestor.metricQuarantinedRecords().metricName).toBe('QuarantinedRecords');
    expect(ingestor.metricRecordsCounted().metricName).toBe('RecordsCounted');
    expect(ingestor.metricDuplicateRecords({ period: Duration.minutes(1) }).period.toMinutes()).toBe(1);
  });
});

describe('options', () => {
  test('a provisioned stream with shards and a longer retention', () => {
    // WHEN
    const { template } = stackWith({ streamMode: kinesis.StreamMode.PROVISIONED, shardCount: 4, retentionPeriod: Duration.days(7) });
    // THEN
    template.hasResourceProperties('AWS::Kinesis::Stream', {
      StreamModeDetails: { StreamMode: 'PROVISIONED' }, ShardCount: 4, RetentionPeriodHours: 168,
    });
  });

  test('a provisioned stream has 1 shard unless told', () => {
    const { template } = stackWith({ streamMode: kinesis.StreamMode.PROVISIONED });
    template.hasResourceProperties('AWS::Kinesis::Stream', { ShardCount: 1 });
  });

  test('daily windows, lateness and clock skew reach the function', () => {
    const { template, ingestor } = stackWith({
      windowGranularity: WindowGranularity.DAY, allowedLateness: Duration.minutes(15), maxClockSkew: Duration.minutes(1),
    });
    expect(ingestor.windowGranularity).toBe(WindowGranularity.DAY);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ WINDOW_GRANULARITY: 'DAY', ALLOWED_LATENESS_SECONDS: '900', MAX_FUTURE_SKEW_SECONDS: '60' }) },
    });
  });

  test('event source mapping options', () => {
    const { template } = stackWith({
      batchSize: 500, maxBatchingWindow: Duration.seconds(0), parallelizationFactor: 4, retryAttempts: 3, maxRecordAge: Duration.hours(1),
    });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 500, ParallelizationFactor: 4, MaximumRetryAttempts: 3, MaximumRecordAgeInSeconds: 3600,
    });
  });

  test('iterator age alarm threshold and log retention', () => {
    const { template } = stackWith({ iteratorAgeAlarmThreshold: Duration.seconds(30), logRetention: logs.RetentionDays.ONE_MONTH });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'IteratorAge', Threshold: 30000 });
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  });

  test('a customer-managed key encrypts the stream, the table and the queue, and the function may use it', () => {
    // GIVEN
    const stack = new Stack(testApp('ingestor'), 'Stack');
    const key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
    // WHEN
    const ingestor = new UsageIngestor(stack, 'Ingestor', { encryptionKey: key });
    // THEN
    const template = Template.fromStack(stack);
    const keyArn = { 'Fn::GetAtt': [Match.stringLikeRegexp('^Key'), 'Arn'] };
    expect(ingestor.encryptionKey).toBe(key);
    template.hasResourceProperties('AWS::Kinesis::Stream', { StreamEncryption: { EncryptionType: 'KMS', KeyId: keyArn } });
    template.hasResourceProperties('AWS::DynamoDB::Table', { SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: keyArn } });
    template.hasResourceProperties('AWS::SQS::Queue', { KmsMasterKeyId: keyArn });
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: Match.arrayWith(['kms:Decrypt', 'kms:Encrypt']), Resource: keyArn })]) },
    });
  });

  test('removalPolicy DESTROY applies to the stream, the table and the log group', () => {
    const { template } = stackWith({ removalPolicy: RemovalPolicy.DESTROY });
    template.hasResource('AWS::Kinesis::Stream', { DeletionPolicy: 'Delete' });
    template.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Delete' });
    template.hasResource('AWS::Logs::LogGroup', { DeletionPolicy: 'Delete' });
  });
});

describe('grants', () => {
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

  test('grantReadAggregates lets the usage push read the table and its index, not write it', () => {
    // GIVEN
    const { stack, ingestor } = unsynthesized();
    const pusher = new iam.Role(stack, 'Pusher', { assumedBy: new iam.AccountRootPrincipal() });
    // WHEN
    ingestor.grantReadAggregates(pusher);
    // THEN
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: Match.stringLikeRegexp('Pusher') }],
      PolicyDocument: {
        Statement: Match.arrayWith([Match.objectLike({
          Action: Match.arrayWith(['dynamodb:Query', 'dynamodb:GetItem']),
          Resource: Match.arrayWith([{ 'Fn::Join': ['', [{ 'Fn::GetAtt': [Match.stringLikeRegexp('IngestorAggregateTable'), 'Arn'] }, '/index/*']] }]),
        })]),
      },
    });
    const policies = template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: Match.stringLikeRegexp('Pusher') }] } });
    expect(JSON.stringify(policies)).not.toMatch(/PutItem|UpdateItem|DeleteItem/);
  });
});

describe('validation', () => {
  const cases: Array<[string, UsageIngestorProps, RegExp]> = [
    ['batchSize is 0', { batchSize: 0 }, /batchSize must be an integer between 1 and 10000 \(given 0\)/],
    ['batchSize is above 10000', { batchSize: 10001 }, /batchSize must be an integer between 1 and 10000 \(given 10001\)/],
    ['batchSize is not an integer', { batchSize: 1.5 }, /batchSize .* \(given 1.5\)/],
    ['shardCount is given for an on-demand stream', { shardCount: 2 }, /shardCount \(given 2\) only applies to provisioned streams: set streamMode/],
    ['shardCount is 0', { streamMode: kinesis.StreamMode.PROVISIONED, shardCount: 0 }, /shardCount must be an integer between 1/],
    ['parallelizationFactor is 11', { parallelizationFactor: 11 }, /parallelizationFactor must be an integer between 1 and 10 \(given 11\)/],
    ['retryAttempts is negative', { retryAttempts: -1 }, /retryAttempts must be an integer between 0 and 10000 \(given -1\): retries must be bounded/],
    ['retentionPeriod is under 24 hours', { retentionPeriod: Duration.hours(12) }, /retentionPeriod must be an integer between 24 and 8760 hours \(given 12\)/],
    ['maxBatchingWindow is over 5 minutes', { maxBatchingWindow: Duration.minutes(6) }, /maxBatchingWindow must be an integer between 0 and 300 seconds \(given 360\)/],
    ['maxRecordAge is under a minute', { maxRecordAge: Duration.seconds(10) }, /maxRecordAge must be an integer between 60 and 604800 seconds \(given 10\)/],
    ['allowedLateness is over 7 days', { allowedLateness: Duration.days(8) }, /allowedLateness must be an integer between 0 and 604800 seconds \(given 691200\)/],
    ['maxClockSkew is over a day', { maxClockSkew: Duration.days(2) }, /maxClockSkew must be an integer between 0 and 86400 seconds \(given 172800\)/],
    ['iteratorAgeAlarmThreshold is 0', { iteratorAgeAlarmThreshold: Duration.seconds(0) }, /iteratorAgeAlarmThreshold must be positive \(given 0 seconds\)/],
  ];
  test.each(cases)('fails if %s', (_name, props, message) => {
    const stack = new Stack(testApp('ingestor'), 'Stack');
    expect(() => new UsageIngestor(stack, 'Ingestor', props)).toThrow(message);
  });

  test('fails with every problem at once', () => {
    const stack = new Stack(testApp('ingestor'), 'Stack');
    expect(() => new UsageIngestor(stack, 'Ingestor', { batchSize: 0, retryAttempts: -1 })).toThrow(/batchSize[\s\S]*retryAttempts/);
  });

  test('skips unresolved tokens', () => {
    const stack = new Stack(testApp('ingestor'), 'Stack');
    const { Lazy } = jest.requireActual('aws-cdk-lib');
    expect(() => new UsageIngestor(stack, 'Ingestor', { batchSize: Lazy.number({ produce: () => 50 }) })).not.toThrow();
  });
});
