import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { AlarmSet } from '../../src/private/alarms';

describe('AlarmSet', () => {
  test('builds every alarm the same way, with the actions given', () => {
    // GIVEN
    const stack = new Stack();
    const scope = new Construct(stack, 'Thing');
    const topic = new sns.Topic(stack, 'Topic');
    const set = new AlarmSet(scope, [new SnsAction(topic)]);
    const metric = new cloudwatch.Metric({ namespace: 'N', metricName: 'M' });

    // WHEN
    set.add('FailedAlarm', metric, { description: 'things failed; look at the queue' });
    set.add('LagAlarm', metric, { description: 'lags', threshold: 300, comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD });

    // THEN
    expect(set.alarms).toHaveLength(2);
    expect(set.alarms.every((a) => a instanceof cloudwatch.Alarm)).toBe(true);
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::CloudWatch::Alarm', 2);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmDescription: 'cdk-saas-billing: things failed; look at the queue (Default/Thing)',
      Threshold: 1,
      EvaluationPeriods: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [{ Ref: Object.keys(template.findResources('AWS::SNS::Topic'))[0] }],
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { Threshold: 300, ComparisonOperator: 'GreaterThanThreshold' });
  });
});
