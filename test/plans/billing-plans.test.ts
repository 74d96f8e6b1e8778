import { Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { BillingPlan, BillingPlans, ControlPlaneEvents, DynamoDbBilling, EntitlementPeriod, LimitAction, UsageIngestor } from '../../src';
import { nagFindings, testApp } from '../support/synth';

const PLANS: BillingPlan[] = [
  {
    name: 'basic',
    metrics: [{
      metric: 'apiCalls',
      price: { freeQuantity: '10000', tiers: [{ upTo: '90000', unitPrice: '0.002' }, { unitPrice: '0.001' }], minimumCharge: '5' },
      entitlements: [{ limit: '100000', period: EntitlementPeriod.CALENDAR_MONTH, thresholds: [80, 90], onLimit: LimitAction.BLOCK }],
    }],
    stripePriceIds: ['price_basic'],
  },
  { name: 'premium', metrics: [{ metric: 'apiCalls', price: { unitPrice: '0.001' } }] },
];

describe('BillingPlans', () => {
  test('GIVEN plans WHEN synthesized THEN a plans table, one function and three rules with a dead-letter queue', () => {
    const stack = new Stack(testApp(), 'S');
    new BillingPlans(stack, 'Plans', { plans: PLANS });
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::DynamoDB::Table', 1);
    t.resourceCountIs('AWS::Lambda::Function', 1);
    for (const detailType of ['sbt_aws_onboardingRequest', 'sbt_aws_offboardingRequest', 'cdk_saas_billing_planChangeRequest']) {
      t.hasResourceProperties('AWS::Events::Rule', {
        EventPattern: { 'source': ['sbt.control.plane'], 'detail-type': [detailType] },
        Targets: [Match.objectLike({
          DeadLetterConfig: Match.anyValue(),
          RetryPolicy: { MaximumRetryAttempts: 185, MaximumEventAgeInSeconds: 86400 },
        })],
      });
    }
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ PLAN_FIELD: 'tier', PLAN_CHANGED_DETAIL_TYPE: 'cdk_saas_billing_planChanged' }) },
    });
    t.hasResourceProperties('AWS::Lambda::EventInvokeConfig', { DestinationConfig: { OnFailure: Match.anyValue() } });
  });

  test('the plan change request and the emitted events follow controlPlaneEvents', () => {
    const stack = new Stack(testApp(), 'S');
    const plans = new BillingPlans(stack, 'Plans', {
      plans: PLANS,
      controlPlaneEvents: new ControlPlaneEvents({ source: 'my.cp', planChangeRequest: 'tierChanged', planChanged: 'planSet' }),
    });
    expect(plans.planChangedEvent).toEqual({ source: 'my.cp', detailType: 'planSet' });
    Template.fromStack(stack).hasResourceProperties('AWS::Events::Rule', { EventPattern: { 'source': ['my.cp'], 'detail-type': ['tierChanged'] } });
  });

  test('fails if plans are wrong, with every problem at once', () => {
    let message = '';
    try {
      new BillingPlans(new Stack(testApp(), 'T'), 'Plans', {
        plans: [{
          name: 'basic',
          metrics: [
            { metric: 'apiCalls', price: { tiers: [{ upTo: '100', unitPrice: '1' }, { upTo: '50', unitPrice: '2' }, { unitPrice: '-1' }] } },
            { metric: 'apiCalls' },
            { metric: 'bad metric', entitlements: [{ limit: 'ten', period: 'WEEK' as EntitlementPeriod, thresholds: [80, 100, 80] }] },
            { metric: 'storage', entitlements: [{ limit: '1', period: EntitlementPeriod.DAY }, { limit: '2', period: EntitlementPeriod.DAY }] },
          ],
          stripePriceIds: ['basic-price'],
        }, { name: 'basic' }],
        defaultPlan: 'gold',
        anchorAlignment: Duration.seconds(1),
      });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message.split('\n')).toEqual([
      'BillingPlans at T/Plans: invalid props:',
      '- plans[0].metrics[0].price.tiers[1].upTo (Python: plans[0].metrics[0].price.tiers[1].up_to) must be greater than the tier before it (100) (given \'50\'): list tiers in increasing order of upTo',
      '- plans[0].metrics[0].price.tiers[2].unitPrice (Python: plans[0].metrics[0].price.tiers[2].unit_price) must be a non-negative decimal string with at most 12 decimal places (given \'-1\'): for example \'0.002\'',
      '- plans[0].metrics[1].metric is listed twice in the plan (given \'apiCalls\'): give each metric one entry: its price and its entitlements together',
      '- plans[0].metrics[2].metric must be 1 to 128 characters of ASCII letters, digits and _ - . : @ + = (not \'.\' or \'..\') (given \'bad metric\'): use the metric name exactly as producers write it, for example \'apiCalls\'',
      '- plans[0].metrics[2].entitlements[0].limit must be a non-negative decimal string (at most 15 digits before the point and 9 after) (given \'ten\'): for example \'100000\'',
      '- plans[0].metrics[2].entitlements[0].period must be one of HOUR, DAY, CALENDAR_MONTH, BILLING_PERIOD (given \'WEEK\'): for example EntitlementPeriod.CALENDAR_MONTH',
      '- plans[0].metrics[2].entitlements[0].thresholds[1] must be a whole percentage between 1 and 99 (given number 100): for example 80; the limit itself (100) is announced by usageLimitReached',
      '- plans[0].metrics[2].entitlements[0].thresholds[2] is listed twice (given number 80): list each threshold once',
      '- plans[0].metrics[3].entitlements[1].period has two limits on the metric (given \'DAY\'): give one limit per period and metric',
      '- plans[0].stripePriceIds[0] (Python: plans[0].stripe_price_ids[0]) must be a Stripe price id (given \'basic-price\'): give the id of a price, for example \'price_1PQ2abc\'',
      '- plans[1].name names two plans (given \'basic\'): give each plan its own name',
      '- defaultPlan (Python: default_plan) is not the name of one of the plans (given \'gold\'): give one of \'basic\', or leave it out',
      '- anchorAlignment (Python: anchor_alignment) must be between 1 minute and 1 day (given 1 second): give a Duration from 1 minute to 1 day',
    ]);
  });

  test('DynamoDbBilling with plans: its usage push reads the plans (environment and read access)', () => {
    const stack = new Stack(testApp(), 'S');
    const plans = new BillingPlans(stack, 'Plans', { plans: PLANS });
    const billing = new DynamoDbBilling(stack, 'Billing', { ingestor: new UsageIngestor(stack, 'Ingestor'), plans });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('prices the usage windows'),
      Environment: { Variables: Match.objectLike({ PLAN_READER_TABLE_NAME: { Ref: Match.stringLikeRegexp('^PlansPlansTable') }, PLAN_READER_DEFINITIONS: Match.anyValue() }) },
    });
    t.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: Match.stringLikeRegexp('^BillingPutUsageRole') }],
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:ConditionCheckItem'] })]) },
    });
    expect(billing.putUsageFunction).toBeDefined();
  });

  test('cdk-nag: no unacknowledged finding', () => {
    expect(nagFindings((app) => new BillingPlans(new Stack(app, 'S'), 'Plans', { plans: PLANS }))).toEqual([]);
  });
});
