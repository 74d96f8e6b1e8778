import { Stack, StackProps } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { controlPlaneRestApi } from './control-plane-api';
import { BillingProvider, StripeBilling, UsageApi, UsageIngestor } from '../src';

/**
 * A control plane on an API Gateway REST API: `BillingProvider` mounts Stripe's
 * webhook on it as `POST /billing/stripe` (Lambda proxy integration, verified by
 * its signature), `StripeBilling` tells Stripe the URL on the API's `prod` stage,
 * and a `UsageApi` serves operators (IAM) under `/operator/usage`. Deploying the
 * stack redeploys the stage with the new methods.
 */
export class RestApiBillingStack extends Stack {
  public readonly ingestor: UsageIngestor;
  public readonly restApi: apigw.RestApi;
  public readonly billing: StripeBilling;
  public readonly provider: BillingProvider;
  public readonly usageApi: UsageApi;

  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);
    this.ingestor = new UsageIngestor(this, 'Ingestor');
    this.restApi = controlPlaneRestApi(this, 'ControlPlaneApi');
    this.billing = new StripeBilling(this, 'StripeBilling', {
      apiKey: secretsmanager.Secret.fromSecretNameV2(this, 'StripeApiKey', 'cdk-saas-billing/stripe-api-key'),
      ingestor: this.ingestor,
      restApi: this.restApi,
      meters: [{ metric: 'apiCalls', eventName: 'api_calls', displayName: 'API calls' }],
      prices: ['price_1ExampleBasePlan', 'price_1ExampleApiCalls'],
    });
    this.provider = new BillingProvider(this, 'Billing', { billing: this.billing, restApi: this.restApi });
    this.usageApi = new UsageApi(this, 'OperatorUsageApi', { ingestor: this.ingestor, restApi: this.restApi, pathPrefix: '/operator/usage' });
  }
}
