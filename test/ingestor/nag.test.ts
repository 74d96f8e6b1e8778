import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { UsageIngestor } from '../../src/ingestor';
import { cfnLintErrors, nagFindings, testApp } from '../support/synth';

describe('cdk-nag (AwsSolutions, cdk-nag 3)', () => {
  test('an ingestor on its defaults, with a producer and a reader, has no unacknowledged finding', () => {
    // GIVEN / WHEN
    const findings = nagFindings((app) => {
      const stack = new Stack(app, 'Ingest');
      const ingestor = new UsageIngestor(stack, 'Ingestor');
      ingestor.grantPutUsage(new iam.Role(stack, 'Producer', { assumedBy: new iam.AccountRootPrincipal() }));
      const readerRole = new iam.Role(stack, 'ReaderRole', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
      ingestor.bindUsageReader(lambda.Function.fromFunctionAttributes(stack, 'Reader', {
        functionArn: 'arn:aws:lambda:us-east-1:123456789012:function:reader', role: readerRole, sameEnvironment: true,
      }));
    });
    // THEN
    expect(findings).toEqual([]);
  });

  test('an ingestor with a customer-managed key has no unacknowledged finding', () => {
    const findings = nagFindings((app) => {
      const stack = new Stack(app, 'IngestKms');
      new UsageIngestor(stack, 'Ingestor', { encryptionKey: new kms.Key(stack, 'Key', { enableKeyRotation: true }) });
    });
    expect(findings).toEqual([]);
  });
});

describe('cfn-lint', () => {
  test('an ingestor with a reader, a producer and a customer-managed key has no cfn-lint error', () => {
    // GIVEN
    const stack = new Stack(testApp('lint'), 'IngestLint');
    const ingestor = new UsageIngestor(stack, 'Ingestor', { encryptionKey: new kms.Key(stack, 'Key', { enableKeyRotation: true }) });
    ingestor.grantPutUsage(new iam.Role(stack, 'Producer', { assumedBy: new iam.AccountRootPrincipal() }));
    ingestor.bindUsageReader(new lambda.Function(stack, 'Reader', {
      runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = async () => undefined;'),
    }));
    // WHEN / THEN
    expect(cfnLintErrors(stack)).toEqual([]);
  });
});
