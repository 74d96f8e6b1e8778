import { Stack, StackProps } from 'aws-cdk-lib';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { Construct } from 'constructs';
import { controlPlaneApi } from './control-plane-api';
import { BillingDashboard, BillingProvider, DynamoDbBilling, UsageIngestor } from '../src';

/**
 * The ready billing pipeline, on its defaults: usage records on a Kinesis data
 * stream become exactly-once hourly aggregates (`UsageIngestor`); customers,
 * users and priced charges are kept in DynamoDB (`DynamoDbBilling`); and
 * `BillingProvider` wires it all to the control plane's events on the
 * account's default bus, the daily usage push and the signed webhook on the
 * control plane's HTTP API. `BillingDashboard` shows the pipeline and every
 * alarm on one CloudWatch dashboard.
 */
export class DynamoDbBillingStack extends Stack {
  public readonly ingestor: UsageIngestor;
  public readonly billing: DynamoDbBilling;
  public readonly provider: BillingProvider;
  public readonly httpApi: apigwv2.HttpApi;
  public readonly dashboard: BillingDashboard;

  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);
    this.ingestor = new UsageIngestor(this, 'Ingestor');
    this.billing = new DynamoDbBilling(this, 'DynamoDbBilling', {
      ingestor: this.ingestor,
      unitPrices: [
        { metric: 'apiCalls', unitPrice: '0.0025' },
        { metric: 'storageGb', unitPrice: '0.10' },
      ],
    });
    this.httpApi = controlPlaneApi(this, 'ControlPlaneApi');
    this.provider = new BillingProvider(this, 'Billing', { billing: this.billing, httpApi: this.httpApi });
    // One CloudWatch dashboard of the pipeline: every alarm, then ingest, push and delivery metrics.
    this.dashboard = new BillingDashboard(this, 'Dashboard', { ingestor: this.ingestor, dynamoDbBilling: this.billing, billingProvider: this.provider });
  }
}
