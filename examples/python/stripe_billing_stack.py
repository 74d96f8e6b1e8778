"""Billing through Stripe (mirrors examples/stripe-billing-stack.ts)."""
from typing import Optional

from aws_cdk import Stack
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from cdk_saas_billing import BillingDashboard, BillingProvider, StripeBilling, StripeMeter, StripeMeterRounding, UsageIngestor

from control_plane_api import control_plane_api


class StripeBillingStack(Stack):
    """Usage records become exactly-once hourly windows (`UsageIngestor`); each tenant gets
    a Stripe customer and a subscription to the prices, closed windows become Stripe meter
    events, and Stripe's webhook becomes the control plane's billing events
    (`StripeBilling`); `BillingProvider` wires it to the control plane's events and mounts
    the webhook on its HTTP API. `cdk deploy` creates the meters and the webhook endpoint
    in Stripe; the API key is read from the secret `cdk-saas-billing/stripe-api-key`."""

    def __init__(self, scope: Construct, id: str, *, description: Optional[str] = None) -> None:
        super().__init__(scope, id, description=description)
        self.ingestor = UsageIngestor(self, "Ingestor")
        self.http_api = control_plane_api(self, "ControlPlaneApi")
        self.billing = StripeBilling(
            self,
            "StripeBilling",
            api_key=secretsmanager.Secret.from_secret_name_v2(self, "StripeApiKey", "cdk-saas-billing/stripe-api-key"),
            ingestor=self.ingestor,
            http_api=self.http_api,
            meters=[
                StripeMeter(metric="apiCalls", event_name="api_calls", display_name="API calls"),
                # Storage is metered in GB-hours with decimals; Stripe takes whole numbers: bill MB-hours, rounding up.
                StripeMeter(
                    metric="storageGb",
                    event_name="storage_mb_hours",
                    display_name="Storage (MB-hours)",
                    multiplier="1000",
                    rounding=StripeMeterRounding.UP,
                ),
            ],
            prices=["price_1ExampleBasePlan", "price_1ExampleApiCalls", "price_1ExampleStorage"],
        )
        # TypeScript passes the construct itself; elsewhere its `billing` property is the IBilling.
        self.provider = BillingProvider(self, "Billing", billing=self.billing.billing, http_api=self.http_api)
        # One CloudWatch dashboard of the pipeline: every alarm, then ingest, push and delivery metrics.
        self.dashboard = BillingDashboard(
            self, "Dashboard", ingestor=self.ingestor, stripe_billing=self.billing, billing_provider=self.provider
        )
