import { App, Stack } from 'aws-cdk-lib';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { LayoutIngestor } from './support';
import { BillingProvider } from '../../src';
import { DynamoDbBilling } from '../../src/providers';
import { nagFindings } from '../support/synth';

function billingStack(app: App): Stack {
  const stack = new Stack(app, 'DynamoDbBillingNag', { env: { account: '111111111111', region: 'us-east-1' } });
  const ingestor = new LayoutIngestor(stack, 'Ingestor');
  const billing = new DynamoDbBilling(stack, 'Billing', { ingestor, unitPrices: [{ metric: 'apiCalls', unitPrice: '0.001' }] });
  new BillingProvider(stack, 'Provider', { billing, httpApi: new apigwv2.HttpApi(stack, 'Api') });
  return stack;
}

test('DynamoDbBilling (wired by BillingProvider) has no unacknowledged cdk-nag AwsSolutions finding of its own', () => {
  // GIVEN / WHEN
  const findings = nagFindings((app) => billingStack(app));
  // THEN: findings on the stand-in ingestor and the test's HTTP API are not this construct's
  const ours = findings.filter((f) => f.path.includes('/Billing/') || f.path.includes('/Provider/'));
  expect(ours).toEqual([]);
});

test('the nag check sees this construct: without its acknowledgements the secret is flagged', () => {
  // GIVEN: the same construct, with its created secret's acknowledgement removed
  const findings = nagFindings((app) => {
    const stack = billingStack(app);
    const secret = stack.node.findChild('Billing').node.findChild('WebhookSecret');
    (secret.node as unknown as { _metadata: { type: string }[] })._metadata =
      secret.node.metadata.filter((m) => !m.type.includes('acknowledged'));
  });
  // THEN
  expect(findings.filter((f) => f.path.includes('/Billing/')).map((f) => f.rule)).toContain('AwsSolutions-SMG4');
});
