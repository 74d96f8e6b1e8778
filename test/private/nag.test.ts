import { Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { acknowledgeNag } from '../../src/private/nag';
import { testApp } from '../support/synth';

afterEach(() => jest.restoreAllMocks());

test('writes cdk-nag 2 metadata on every resource of the subtree, a finding as applies_to', () => {
  const stack = new Stack(testApp('nag-unit'), 'S');
  const group = new Construct(stack, 'Group');
  new sqs.Queue(group, 'A');
  new sqs.Queue(group, 'B');
  new sqs.Queue(stack, 'Outside');
  acknowledgeNag(group, 'AwsSolutions-SQS3', 'dead-letter queues');
  acknowledgeNag(group, 'AwsSolutions-IAM5[Action::s3:*]', 'scoped');
  const queues = Template.fromStack(stack).findResources('AWS::SQS::Queue');
  const withMetadata = Object.entries(queues).filter(([, q]) => q.Metadata?.cdk_nag);
  expect(withMetadata.map(([id]) => id).sort()).toEqual([expect.stringMatching(/^GroupA/), expect.stringMatching(/^GroupB/)]);
  for (const [, q] of withMetadata) {
    expect(q.Metadata.cdk_nag.rules_to_suppress).toEqual([
      { id: 'AwsSolutions-SQS3', reason: 'dead-letter queues' },
      { id: 'AwsSolutions-IAM5', reason: 'scoped', applies_to: ['Action::s3:*'] },
    ]);
  }
});

test('acknowledges through Validations with the finding id', () => {
  const stack = new Stack(testApp('nag-unit'), 'S');
  const acknowledged: string[] = [];
  jest.spyOn(Validations, 'of').mockReturnValue({ acknowledge: (a: { id: string }) => acknowledged.push(a.id) } as unknown as Validations);
  acknowledgeNag(new sqs.Queue(stack, 'Q'), 'AwsSolutions-IAM5[Action::s3:*]', 'scoped');
  expect(acknowledged).toEqual(['AwsSolutions-IAM5[Action::s3:*]']);
});

test('falls back to the rule on this construct where aws-cdk-lib refuses finding ids (before 2.269)', () => {
  const stack = new Stack(testApp('nag-unit'), 'S');
  const acknowledged: { id: string; reason: string }[] = [];
  jest.spyOn(Validations, 'of').mockReturnValue({
    acknowledge: (a: { id: string; reason: string }) => {
      if (a.id.includes('::')) throw new Error('InvalidValidationId');
      acknowledged.push(a);
    },
  } as unknown as Validations);
  acknowledgeNag(new sqs.Queue(stack, 'Q'), 'AwsSolutions-IAM5[Action::s3:*]', 'scoped');
  expect(acknowledged).toEqual([{ id: 'AwsSolutions-IAM5', reason: 'scoped (Action::s3:*)' }]);
});

test('a refused plain rule id is not swallowed', () => {
  const stack = new Stack(testApp('nag-unit'), 'S');
  jest.spyOn(Validations, 'of').mockReturnValue({ acknowledge: () => { throw new Error('boom'); } } as unknown as Validations);
  expect(() => acknowledgeNag(new sqs.Queue(stack, 'Q'), 'AwsSolutions-SQS3', 'x')).toThrow(/boom/);
});
