import { Stack, StackProps } from 'aws-cdk-lib';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { Construct } from 'constructs';
import { controlPlaneApi } from './control-plane-api';
import { BillingProvider, MarketplaceBilling, MarketplaceRounding, UsageIngestor } from '../src';

/**
 * Selling through AWS Marketplace: usage records become exactly-once hourly windows
 * (`UsageIngestor`); the product's fulfillment URL is `POST /billing/marketplace` on the control
 * plane's HTTP API, which resolves the buyer's registration token and redirects to the
 * registration page; the onboarding request carries the registration id back; each closed hour
 * becomes one BatchMeterUsage record per dimension (`MarketplaceBilling`); `BillingProvider` wires
 * it to the control plane's events and mounts the fulfillment URL. Deploy it in us-east-1, where
 * AWS Marketplace sends its SaaS subscription events (docs/marketplace-billing.md).
 */
export class MarketplaceBillingStack extends Stack {
  public readonly ingestor: UsageIngestor;
  public readonly billing: MarketplaceBilling;
  public readonly provider: BillingProvider;
  public readonly httpApi: apigwv2.HttpApi;

  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);
    this.ingestor = new UsageIngestor(this, 'Ingestor');
    this.httpApi = controlPlaneApi(this, 'ControlPlaneApi');
    this.billing = new MarketplaceBilling(this, 'MarketplaceBilling', {
      productCode: 'prod-example7xyz1234',
      registrationPageUrl: 'https://app.example.com/marketplace/register',
      ingestor: this.ingestor,
      dimensions: [
        // Priced per thousand API calls: the remainders are carried within the month.
        { metric: 'apiCalls', dimension: 'api_calls_thousands', multiplier: '0.001' },
        { metric: 'storageGb', dimension: 'storage_gb_hours', rounding: MarketplaceRounding.UP },
      ],
      contractEntitlements: true,
    });
    this.provider = new BillingProvider(this, 'Billing', { billing: this.billing, httpApi: this.httpApi });
  }
}
