import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import {
  BillingPlan, BillingPlans, EntitlementPeriod, Entitlements, IDataIngestorAggregator, LimitAction, UsageIngestor, UsageReaderBinding,
  WindowGranularity,
} from '../../src';
import { nagFindings, testApp } from '../support/synth';

const PLANS: BillingPlan[] = [
  { name: 'basic', metrics: [{ metric: 'apiCalls', entitlements: [{ limit: '1000', period: EntitlementPeriod.DAY, thresholds: [80], onLimit: LimitAction.BLOCK }] }] },
  { name: 'premium', metrics: [{ metric: 'storageGb', entitlements: [{ limit: '50', period: EntitlementPeriod.HOUR }] }] },
];

function build(stack: Stack, plans = PLANS) {
  const ingestor = new UsageIngestor(stack, 'Ingestor');
  const billingPlans = new BillingPlans(stack, 'Plans', { plans });
  return { ingestor, plans: billingPlans, entitlements: new Entitlements(stack, 'Entitlements', { ingestor, plans: billingPlans }) };
}

describe('Entitlements', () => {
  test('GIVEN plans with limits WHEN synthesized THEN the ledger\'s stream feeds the consumer, filtered to the metrics with limits and voids', () => {
    const stack = new Stack(testApp(), 'S');
    build(stack);
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::DynamoDB::Table', { StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' }, KeySchema: Match.anyValue() });
    const esm = Object.values(t.findResources('AWS::Lambda::EventSourceMapping'))
      .find((m: any) => JSON.stringify(m.Properties.EventSourceArn).includes('IngestorAggregateTable')) as any;
    expect(esm.Properties).toMatchObject({ StartingPosition: 'TRIM_HORIZON', ParallelizationFactor: 1, BisectBatchOnFunctionError: true, BatchSize: 100 });
    expect(esm.Properties.FilterCriteria.Filters.map((f: any) => JSON.parse(f.Pattern))).toEqual([
      { eventName: ['INSERT', 'MODIFY'], dynamodb: { Keys: { pk: { S: [{ prefix: 'L#' }] } }, NewImage: { m: { S: ['apiCalls', 'storageGb'] } } } },
      { eventName: ['MODIFY'], dynamodb: { Keys: { pk: { S: [{ prefix: 'L#' }] } }, OldImage: { m: { S: ['apiCalls', 'storageGb'] } } } },
      { eventName: ['INSERT', 'MODIFY'], dynamodb: { Keys: { pk: { S: [{ prefix: 'L#' }] } }, NewImage: { vi: { S: [{ exists: true }] } } } },
    ]);
    expect(esm.Properties.DestinationConfig.OnFailure.Destination).toBeDefined();
  });

  test('a pipe per threshold event type puts the threshold event items on the bus', () => {
    const stack = new Stack(testApp(), 'S');
    build(stack);
    const t = Template.fromStack(stack);
    for (const [kind, detailType] of [['THRESHOLD_CROSSED', 'usageThresholdCrossed'], ['LIMIT_REACHED', 'usageLimitReached']]) {
      t.hasResourceProperties('AWS::Pipes::Pipe', {
        SourceParameters: {
          DynamoDBStreamParameters: Match.objectLike({ StartingPosition: 'TRIM_HORIZON', DeadLetterConfig: Match.anyValue() }),
          FilterCriteria: { Filters: [{ Pattern: JSON.stringify({ eventName: ['INSERT'], dynamodb: { NewImage: { kind: { S: [kind] } } } }) }] },
        },
        TargetParameters: { EventBridgeEventBusParameters: { Source: 'cdk-saas-billing.entitlements', DetailType: detailType }, InputTemplate: Match.stringLikeRegexp('"tenantId": "<\\$.dynamodb.NewImage.tenantId.S>"') },
      });
    }
    t.hasResourceProperties('AWS::Events::Rule', { EventPattern: { 'source': ['sbt.control.plane'], 'detail-type': ['cdk_saas_billing_planChanged'] } });
  });

  test('fails if the ingestor has no change feed, no plan has a limit, or an hourly limit meets daily windows', () => {
    const stack = new Stack(testApp(), 'S');
    class PlainIngestor extends Construct implements IDataIngestorAggregator {
      public readonly dataStream = new kinesis.Stream(this, 'S');
      public readonly aggregateTable = new dynamodb.Table(this, 'T', { partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING } });
      public readonly aggregatorFunction = lambda.Function.fromFunctionName(this, 'F', 'f');
      public grantPutUsage(grantee: iam.IGrantable) { return this.dataStream.grantWrite(grantee); }
      public bindUsageReader(): UsageReaderBinding { return { environment: {} }; }
    }
    const plans = new BillingPlans(stack, 'Plans', { plans: [{ name: 'free' }] });
    expect(() => new Entitlements(stack, 'E1', { ingestor: new PlainIngestor(stack, 'Plain'), plans })).toThrow([
      'Entitlements at S/E1: invalid props:',
      '- ingestor has no ledger change feed (ledgerChanges) (given a PlainIngestor): pass a UsageIngestor: it offers its ledger\'s changes',
      '- plans define no entitlement on any metric (given \'S/Plans\'): give a plan\'s metric entitlements: [{ limit, period }]',
    ].join('\n'));
    const daily = new UsageIngestor(stack, 'Daily', { windowGranularity: WindowGranularity.DAY });
    expect(() => new Entitlements(stack, 'E2', { ingestor: daily, plans: new BillingPlans(stack, 'P2', { plans: PLANS }) }))
      .toThrow(/plans\.plans\[1\]\.metrics\[0\]\.entitlements\[0\]\.period needs hourly usage windows, and the ingestor's windows are 24 hours long \(given 'HOUR'\)/);
  });

  test('cdk-nag: no unacknowledged finding', () => {
    expect(nagFindings((app) => build(new Stack(app, 'S')))).toEqual([]);
  });
});
