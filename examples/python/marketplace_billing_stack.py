"""Selling through AWS Marketplace (mirrors examples/marketplace-billing-stack.ts)."""
from typing import Optional

from aws_cdk import Stack
from constructs import Construct

from cdk_saas_billing import BillingProvider, MarketplaceBilling, MarketplaceDimension, MarketplaceRounding, UsageIngestor

from control_plane_api import control_plane_api


class MarketplaceBillingStack(Stack):
    """Usage records become exactly-once hourly windows (`UsageIngestor`); the product's
    fulfillment URL is `POST /billing/marketplace` on the control plane's HTTP API; the
    onboarding request carries the registration id back; each closed hour becomes one
    BatchMeterUsage record per dimension (`MarketplaceBilling`); `BillingProvider` wires it
    to the control plane's events and mounts the fulfillment URL. Deploy it in us-east-1."""

    def __init__(self, scope: Construct, id: str, *, description: Optional[str] = None) -> None:
        super().__init__(scope, id, description=description)
        self.ingestor = UsageIngestor(self, "Ingestor")
        self.http_api = control_plane_api(self, "ControlPlaneApi")
        self.billing = MarketplaceBilling(
            self,
            "MarketplaceBilling",
            product_code="prod-example7xyz1234",
            registration_page_url="https://app.example.com/marketplace/register",
            ingestor=self.ingestor,
            dimensions=[
                # Priced per thousand API calls: the remainders are carried within the month.
                MarketplaceDimension(metric="apiCalls", dimension="api_calls_thousands", multiplier="0.001"),
                MarketplaceDimension(metric="storageGb", dimension="storage_gb_hours", rounding=MarketplaceRounding.UP),
            ],
            contract_entitlements=True,
        )
        # TypeScript passes the construct itself; elsewhere its `billing` property is the IBilling.
        self.provider = BillingProvider(self, "Billing", billing=self.billing.billing, http_api=self.http_api)
