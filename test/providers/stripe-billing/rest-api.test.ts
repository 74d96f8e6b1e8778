/**
 * StripeBilling with a REST API: the URL Stripe is told to call (the REST API's
 * deployment stage), the synth check that the API holds that method, the
 * refusals, and cdk-nag on the whole wiring.
 */
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { BillingProvider, StripeBilling, StripeBillingProps, UsageIngestor } from '../../../src';
import { STRIPE_SETUP_PROPERTIES } from '../../../src/providers/stripe-billing/contract';
import { nagFindings, scratchDir } from '../../support/synth';

function newStack(app = new App({ outdir: scratchDir('stripe-rest') })): Stack {
  return new Stack(app, 'Stack', { env: { account: '123456789012', region: 'eu-west-1' } });
}

let keys = 0;
const apiKey = (stack: Stack) => secretsmanager.Secret.fromSecretNameV2(stack, `ApiKey${++keys}`, 'stripe/api-key');

function restStack(stack = newStack(), props: Partial<StripeBillingProps> = {}) {
  const restApi = new apigw.RestApi(stack, 'Rest', { cloudWatchRole: false, endpointTypes: [apigw.EndpointType.REGIONAL] });
  const billing = new StripeBilling(stack, 'Stripe', { apiKey: apiKey(stack), ingestor: new UsageIngestor(stack, 'Ingestor'), restApi, ...props });
  const provider = new BillingProvider(stack, 'Billing', { billing, restApi });
  return { stack, restApi, billing, provider };
}

test('Stripe is told to call the webhook on the REST API\'s deployment stage, the URL BillingProvider mounts it at', () => {
  // GIVEN / WHEN
  const { stack, restApi, billing, provider } = restStack();
  // THEN the setup custom resource gets the stage URL of POST /billing/stripe
  const url = stack.resolve(restApi.urlForPath('/billing/stripe'));
  expect(stack.resolve(billing.webhookUrl)).toEqual(url);
  expect(stack.resolve(provider.webhookUrl)).toEqual(url);
  const template = Template.fromStack(stack);
  template.hasResourceProperties('Custom::StripeSetup', { [STRIPE_SETUP_PROPERTIES.WEBHOOK_URL]: url });
  expect(JSON.stringify(url)).toMatch(/execute-api.*RestDeploymentStageprod.*\/billing\/stripe/);
  template.hasResourceProperties('AWS::ApiGateway::Method', { HttpMethod: 'POST', AuthorizationType: 'NONE', Integration: Match.objectLike({ Type: 'AWS_PROXY' }) });
});

test('fails at synth if Stripe is told to call a method the REST API does not have', () => {
  const stack = newStack();
  const restApi = new apigw.RestApi(stack, 'Rest', { cloudWatchRole: false });
  restApi.root.addResource('health').addMethod('GET', new apigw.MockIntegration());
  new StripeBilling(stack, 'Stripe', { apiKey: apiKey(stack), restApi });
  expect(() => Template.fromStack(stack)).toThrow(/Stripe is told to call POST \/billing\/stripe on REST API Stack\/Rest, but that API has no such method: pass this StripeBilling .* to a BillingProvider with that restApi/);
});

test('refuses two of httpApi, restApi and webhookBaseUrl, and a REST API whose URL or root is unknown', () => {
  const stack = newStack();
  const restApi = new apigw.RestApi(stack, 'Rest', { cloudWatchRole: false });
  expect(() => new StripeBilling(stack, 'Both', { apiKey: apiKey(stack), httpApi: new apigwv2.HttpApi(stack, 'Http'), restApi }))
    .toThrow('- restApi (Python: rest_api) and httpApi are both given (given \'Stack/Rest\'): give httpApi or restApi for the API\'s own URL, '
      + 'or webhookBaseUrl for a custom domain or stage, not two of them');
  expect(() => new StripeBilling(stack, 'WithBase', { apiKey: apiKey(stack), restApi, webhookBaseUrl: 'https://api.example.com' }))
    .toThrow(/- webhookBaseUrl \(Python: webhook_base_url\) and restApi are both given \(given 'https:\/\/api.example.com'\)/);
  const imported = apigw.RestApi.fromRestApiAttributes(stack, 'Imported', { restApiId: 'abc123', rootResourceId: 'root456' });
  expect(() => new StripeBilling(stack, 'NoStage', { apiKey: apiKey(stack), restApi: imported }))
    .toThrow('- restApi (Python: rest_api) has no deployment stage, so the URL Stripe is to call is unknown (given \'Stack/Imported\'): '
      + 'give webhookBaseUrl (the stage\'s URL, for example \'https://abc123.execute-api.us-east-1.amazonaws.com/prod\') instead of restApi');
  expect(() => new StripeBilling(stack, 'NoRoot', { apiKey: apiKey(stack), restApi: apigw.RestApi.fromRestApiId(stack, 'ById', 'abc123') }))
    .toThrow(/- restApi \(Python: rest_api\) must be a REST API with its root resource \(apigateway.IRestApi\) \(given 'Stack\/ById'\)/);
});

test('a REST API imported without its stage: webhookBaseUrl gives the stage URL, BillingProvider mounts the method', () => {
  const stack = newStack();
  const restApi = apigw.RestApi.fromRestApiAttributes(stack, 'Imported', { restApiId: 'abc123', rootResourceId: 'root456' });
  const billing = new StripeBilling(stack, 'Stripe', { apiKey: apiKey(stack), webhookBaseUrl: 'https://abc123.execute-api.eu-west-1.amazonaws.com/prod/' });
  new BillingProvider(stack, 'Billing', { billing, restApi });
  expect(billing.webhookUrl).toBe('https://abc123.execute-api.eu-west-1.amazonaws.com/prod/billing/stripe');
  Template.fromStack(stack).hasResourceProperties('AWS::ApiGateway::Method', { RestApiId: 'abc123', HttpMethod: 'POST' });
});

test('StripeBilling wired by BillingProvider on a REST API has no unacknowledged cdk-nag AwsSolutions finding but the user\'s API\'s own', () => {
  const findings = nagFindings((app) => {
    const { restApi } = restStack(newStack(app));
    // The REST API and its stage are the user's: their logs, WAF and request validation are the user's choice.
    for (const id of ['AwsSolutions-APIG1', 'AwsSolutions-APIG2', 'AwsSolutions-APIG3', 'AwsSolutions-APIG6']) {
      Validations.of(restApi).acknowledge({ id, reason: 'The test stands in for the user\'s REST API.' });
    }
  });
  expect(findings).toEqual([]);
});
