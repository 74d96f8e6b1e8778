import { CfnParameter, Stack, StackProps } from 'aws-cdk-lib';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { Construct } from 'constructs';
import { controlPlaneApi } from './control-plane-api';
import { BillingProvider, DynamoDbBilling, UsageApi, UsageApiAuthorization, UsageIngestor } from '../src';

/**
 * Usage readable over HTTP: the ready pipeline (`UsageIngestor`,
 * `DynamoDbBilling`, `BillingProvider`) plus two usage APIs on the control
 * plane's HTTP API:
 *
 * - `/usage/...` for tenants: an SBT tenant's Cognito ID token (claim
 *   `custom:tenantId`) reads only that tenant's closed windows and open totals;
 *   the closed-window feed `/usage/windows` stays IAM;
 * - `/operator/usage/...` for AWS identities (SigV4): any tenant, and the feed.
 *
 * The tenants' user pool is the control plane's (SBT creates it): its id and
 * app client id are parameters of the stack.
 */
export class UsageApiStack extends Stack {
  public readonly ingestor: UsageIngestor;
  public readonly httpApi: apigwv2.HttpApi;
  public readonly tenantUsageApi: UsageApi;
  public readonly operatorUsageApi: UsageApi;

  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);
    const userPoolId = new CfnParameter(this, 'TenantUserPoolId', {
      description: 'Id of the Cognito user pool that signs the tenants\' tokens (SBT control plane)',
      default: 'us-east-1_EXAMPLE',
    });
    const userPoolClientId = new CfnParameter(this, 'TenantUserPoolClientId', {
      description: 'App client id of that user pool (the audience of its ID tokens)',
      default: '1example23456789',
    });

    this.ingestor = new UsageIngestor(this, 'Ingestor');
    const billing = new DynamoDbBilling(this, 'DynamoDbBilling', {
      ingestor: this.ingestor,
      unitPrices: [{ metric: 'apiCalls', unitPrice: '0.0025' }],
    });
    this.httpApi = controlPlaneApi(this, 'ControlPlaneApi');
    new BillingProvider(this, 'Billing', { billing, httpApi: this.httpApi });

    this.tenantUsageApi = new UsageApi(this, 'TenantUsageApi', {
      ingestor: this.ingestor,
      httpApi: this.httpApi,
      authorization: UsageApiAuthorization.jwt({
        issuer: `https://cognito-idp.${this.region}.amazonaws.com/${userPoolId.valueAsString}`,
        audience: [userPoolClientId.valueAsString],
      }),
    });
    this.operatorUsageApi = new UsageApi(this, 'OperatorUsageApi', {
      ingestor: this.ingestor,
      httpApi: this.httpApi,
      pathPrefix: '/operator/usage',
    });
  }
}
