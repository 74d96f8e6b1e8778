import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { UsageIngestor } from '../../src/ingestor';
import { nagFindings } from '../support/synth';

describe('cdk-nag (AwsSolutions, cdk-nag 3)', () => {
  test('an ingestor on its defaults, with a producer and a reader, has no unacknowledged finding', () => {
    // GIVEN / WHEN
    const findings = nagFindings((app) => {
      const stack = new Stack(app, 'Ingest');
      const ingestor = new UsageIngestor(stack, 'Ingestor');
      ingestor.grantPutUsage(new iam.Role(stack, 'Producer', { assumedBy: new iam.AccountRootPrincipal() }));
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
