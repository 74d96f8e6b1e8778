"""Usage readable over HTTP (mirrors examples/usage-api-stack.ts)."""
from typing import Optional

from aws_cdk import CfnParameter, Stack
from constructs import Construct

from cdk_saas_billing import (
    BillingProvider,
    DynamoDbBilling,
    MetricUnitPrice,
    UsageApi,
    UsageApiAuthorization,
    UsageIngestor,
)

from control_plane_api import control_plane_api


class UsageApiStack(Stack):
    """The ready pipeline (`UsageIngestor`, `DynamoDbBilling`, `BillingProvider`) plus two
    usage APIs on the control plane's HTTP API:

    - `/usage/...` for tenants: an SBT tenant's Cognito ID token (claim `custom:tenantId`)
      reads only that tenant's closed windows and open totals; the closed-window feed
      `/usage/windows` stays IAM;
    - `/operator/usage/...` for AWS identities (SigV4): any tenant, and the feed.

    The tenants' user pool is the control plane's (SBT creates it): its id and app client
    id are parameters of the stack."""

    def __init__(self, scope: Construct, id: str, *, description: Optional[str] = None) -> None:
        super().__init__(scope, id, description=description)
        user_pool_id = CfnParameter(
            self,
            "TenantUserPoolId",
            description="Id of the Cognito user pool that signs the tenants' tokens (SBT control plane)",
            default="us-east-1_EXAMPLE",
        )
        user_pool_client_id = CfnParameter(
            self,
            "TenantUserPoolClientId",
            description="App client id of that user pool (the audience of its ID tokens)",
            default="1example23456789",
        )

        self.ingestor = UsageIngestor(self, "Ingestor")
        billing = DynamoDbBilling(
            self,
            "DynamoDbBilling",
            ingestor=self.ingestor,
            unit_prices=[MetricUnitPrice(metric="apiCalls", unit_price="0.0025")],
        )
        self.http_api = control_plane_api(self, "ControlPlaneApi")
        BillingProvider(self, "Billing", billing=billing.billing, http_api=self.http_api)

        self.tenant_usage_api = UsageApi(
            self,
            "TenantUsageApi",
            ingestor=self.ingestor,
            http_api=self.http_api,
            # Options of a static method are keyword arguments too.
            authorization=UsageApiAuthorization.jwt(
                issuer=f"https://cognito-idp.{self.region}.amazonaws.com/{user_pool_id.value_as_string}",
                audience=[user_pool_client_id.value_as_string],
            ),
        )
        self.operator_usage_api = UsageApi(
            self,
            "OperatorUsageApi",
            ingestor=self.ingestor,
            http_api=self.http_api,
            path_prefix="/operator/usage",
        )
