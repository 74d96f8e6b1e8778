import { Stack, StackProps } from 'aws-cdk-lib';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { controlPlaneApi } from './control-plane-api';
import { BillingDashboard, BillingProvider, StripeBilling, StripeMeterRounding, UsageIngestor } from '../src';

/**
 * Billing through Stripe: usage records become exactly-once hourly windows
 * (`UsageIngestor`); each tenant gets a Stripe customer and a subscription to
 * the prices, closed windows become Stripe meter events, and Stripe's webhook
 * becomes the control plane's billing events (`StripeBilling`); `BillingProvider`
 * wires it to the control plane's events and mounts the webhook on its HTTP API.
 * `cdk deploy` creates the meters and the webhook endpoint in Stripe; the Stripe
 * API key is read from the secret `cdk-saas-billing/stripe-api-key`, which you
 * create before deploying (see docs/stripe-billing.md). `BillingDashboard` shows
 * the pipeline and every alarm on one CloudWatch dashboard (docs/dashboard.md).
 */
export class StripeBillingStack extends Stack {
  public readonly ingestor: UsageIngestor;
  public readonly billing: StripeBilling;
  public readonly provider: BillingProvider;
  public readonly httpApi: apigwv2.HttpApi;
  public readonly dashboard: BillingDashboard;

  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);
    this.ingestor = new UsageIngestor(this, 'Ingestor');
    this.httpApi = controlPlaneApi(this, 'ControlPlaneApi');
    this.billing = new StripeBilling(this, 'StripeBilling', {
      apiKey: secretsmanager.Secret.fromSecretNameV2(this, 'StripeApiKey', 'cdk-saas-billing/stripe-api-key'),
      ingestor: this.ingestor,
      httpApi: this.httpApi,
      meters: [
        { metric: 'apiCalls', eventName: 'api_calls', displayName: 'API calls' },
        // Storage is metered in GB-hours with decimals; Stripe takes whole numbers: bill MB-hours, rounding up.
        { metric: 'storageGb', eventName: 'storage_mb_hours', displayName: 'Storage (MB-hours)', multiplier: '1000', rounding: StripeMeterRounding.UP },
      ],
      prices: ['price_1ExampleBasePlan', 'price_1ExampleApiCalls', 'price_1ExampleStorage'],
    });
    this.provider = new BillingProvider(this, 'Billing', { billing: this.billing, httpApi: this.httpApi });
    // One CloudWatch dashboard of the pipeline: every alarm, then ingest, push and delivery metrics.
    this.dashboard = new BillingDashboard(this, 'Dashboard', { ingestor: this.ingestor, stripeBilling: this.billing, billingProvider: this.provider });
  }
}
