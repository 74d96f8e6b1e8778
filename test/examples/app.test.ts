import { App, Stack } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { addExampleStacks } from '../../examples/app';
import { cfnLintErrors, maskedTemplate, nagFindings, testApp } from '../support/synth';

const app = testApp('examples');
const stacks = addExampleStacks(app);

describe.each(stacks.map((s) => [s.stackName, s] as const))('example stack %s', (_name, stack) => {
  test('matches the snapshot (asset hashes masked; `npx projen test:update` after an intended change)', () => {
    expect(maskedTemplate(stack)).toMatchSnapshot();
  });

  test('cfn-lint reports no errors on the synthesized template', () => {
    expect(cfnLintErrors(stack)).toEqual([]);
  });
});

test('the example app has no unacknowledged cdk-nag AwsSolutions findings', () => {
  const findings = nagFindings((nagApp) => addExampleStacks(nagApp));
  expect(findings).toEqual([]);
});

test('the cdk-nag check does catch an unacknowledged finding', () => {
  // A queue without a dead-letter queue, TLS or encryption settings is flagged:
  // proves the check above would fail if the examples had a finding.
  const findings = nagFindings((nagApp: App) => {
    const stack = new Stack(nagApp, 'Bad');
    new sqs.Queue(stack, 'Plain', { encryption: sqs.QueueEncryption.UNENCRYPTED });
  });
  expect(findings.map((f) => f.rule)).toEqual(expect.arrayContaining(['AwsSolutions-SQS3', 'AwsSolutions-SQS4']));
});

test('the snapshot mask hides asset hashes only', () => {
  const masked = JSON.stringify(maskedTemplate(stacks[0]));
  expect(masked).not.toMatch(/[0-9a-f]{64}/);
  expect(masked).toContain('sbt_aws_onboardingRequest');
});
