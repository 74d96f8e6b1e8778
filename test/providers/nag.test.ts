import { App, Stack, Validations } from 'aws-cdk-lib';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { BillingProvider, UsageIngestor } from '../../src';
import { DynamoDbBilling } from '../../src/providers';
import { nagFindings } from '../support/synth';

function billingStack(app: App): Stack {
  const stack = new Stack(app, 'DynamoDbBillingNag', { env: { account: '111111111111', region: 'us-east-1' } });
  const ingestor = new UsageIngestor(stack, 'Ingestor');
  const billing = new DynamoDbBilling(stack, 'Billing', { ingestor, unitPrices: [{ metric: 'apiCalls', unitPrice: '0.001' }] });
  const api = new apigwv2.HttpApi(stack, 'Api');
  // The HTTP API is the user's, not this library's: its access logging is the user's choice.
  Validations.of(api.defaultStage!).acknowledge({ id: 'AwsSolutions-APIG1', reason: 'The test stands in for the user\'s HTTP API.' });
  new BillingProvider(stack, 'Provider', { billing, httpApi: api });
  return stack;
}

test('DynamoDbBilling (wired by BillingProvider) with UsageIngestor and an HTTP API has no unacknowledged cdk-nag AwsSolutions finding', () => {
  // GIVEN / WHEN
  const findings = nagFindings((app) => billingStack(app));
  // THEN
  expect(findings).toEqual([]);
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
