import { App, Stack, Validations } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
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

describe('on a REST API', () => {
  /** The user's REST API findings: its stage's logs and WAF, its request validation; the test stands in for the user, who decides. */
  const USERS_API_FINDINGS = ['AwsSolutions-APIG1', 'AwsSolutions-APIG2', 'AwsSolutions-APIG3', 'AwsSolutions-APIG6'];

  function restStack(app: App, opts: { withoutLibraryAcknowledgements?: boolean } = {}): Stack {
    const stack = new Stack(app, 'DynamoDbBillingRestNag', { env: { account: '111111111111', region: 'us-east-1' } });
    const ingestor = new UsageIngestor(stack, 'Ingestor');
    const billing = new DynamoDbBilling(stack, 'Billing', { ingestor, unitPrices: [{ metric: 'apiCalls', unitPrice: '0.001' }] });
    const restApi = new apigw.RestApi(stack, 'RestApi', { cloudWatchRole: false });
    for (const id of USERS_API_FINDINGS) Validations.of(restApi).acknowledge({ id, reason: 'The test stands in for the user\'s REST API.' });
    const provider = new BillingProvider(stack, 'Provider', { billing, restApi });
    if (opts.withoutLibraryAcknowledgements) {
      const method = provider.webhookMethod!;
      (method.node as unknown as { _metadata: { type: string }[] })._metadata = method.node.metadata.filter((m) => !m.type.includes('acknowledged'));
    }
    return stack;
  }

  test('DynamoDbBilling wired by BillingProvider on a REST API has no unacknowledged cdk-nag AwsSolutions finding', () => {
    expect(nagFindings((app) => restStack(app))).toEqual([]);
  });

  test('the nag check sees the webhook method: without the library\'s acknowledgements it is flagged (no authorizer, no Cognito)', () => {
    const findings = nagFindings((app) => restStack(app, { withoutLibraryAcknowledgements: true }));
    expect(findings.map((f) => `${f.rule} ${f.path}`).sort()).toEqual([
      'AwsSolutions-APIG4 DynamoDbBillingRestNag/RestApi/Default/billing/webhook/POST/Resource',
      'AwsSolutions-COG4 DynamoDbBillingRestNag/RestApi/Default/billing/webhook/POST/Resource',
    ]);
  });
});
