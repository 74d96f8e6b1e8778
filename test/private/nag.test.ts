import { Aws, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { acknowledgeNag } from '../../src/private/nag';
import { nagFindings, testApp } from '../support/synth';

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

test('where aws-cdk-lib refuses the finding id (before 2.269), cdk-nag 3 still sees the finding acknowledged', () => {
  // GIVEN aws-cdk-lib 2.263's Validations.acknowledge, which throws InvalidValidationId for an ID
  // with more than one '::' (many finding IDs have them: Resource::arn:<AWS::Partition>:...)
  const original = Validations.prototype.acknowledge;
  const refused: string[] = [];
  jest.spyOn(Validations.prototype, 'acknowledge').mockImplementation(function (this: Validations, ...rules) {
    const bad = rules.find((r) => r.id.split('::').length > 2);
    if (bad) {
      refused.push(bad.id);
      throw new Error(`Invalid validation rule ID '${bad.id}' (InvalidValidationId)`);
    }
    return original.apply(this, rules);
  });
  const finding = 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::example-bucket/*]';
  let role: iam.Role | undefined;
  const findings = (acknowledge: boolean) => nagFindings((app) => {
    const stack = new Stack(app, 'S');
    role = new iam.Role(stack, 'R', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    role.addToPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [`arn:${Aws.PARTITION}:s3:::example-bucket/*`] }));
    if (acknowledge) acknowledgeNag(role, finding, 'objects of one bucket');
  }).map((f) => f.rule);
  // WHEN the finding is not acknowledged, and when it is
  // THEN cdk-nag reports it, and then no longer does
  expect(findings(false)).toEqual([finding]);
  expect(findings(true)).toEqual([]);
  // (through the fallback: aws-cdk-lib refused the ID, the metadata holds it as cdk-nag matches it)
  expect(refused).toEqual([finding]);
  expect(role!.node.metadata.filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY).map((m) => m.data))
    .toEqual([{ [finding]: 'objects of one bucket' }]);
});

test('a refused plain rule id is not swallowed', () => {
  const stack = new Stack(testApp('nag-unit'), 'S');
  jest.spyOn(Validations, 'of').mockReturnValue({ acknowledge: () => { throw new Error('boom'); } } as unknown as Validations);
  expect(() => acknowledgeNag(new sqs.Queue(stack, 'Q'), 'AwsSolutions-SQS3', 'x')).toThrow(/boom/);
});
