"""A control plane on an API Gateway REST API (mirrors examples/rest-api-billing-stack.ts)."""
from typing import Optional

from aws_cdk import Stack
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from cdk_saas_billing import BillingProvider, StripeBilling, StripeMeter, UsageApi, UsageIngestor

from control_plane_api import control_plane_rest_api


class RestApiBillingStack(Stack):
    """`BillingProvider` mounts Stripe's webhook on the REST API as `POST /billing/stripe`
    (Lambda proxy integration, verified by its signature), `StripeBilling` tells Stripe the
    URL on the API's `prod` stage, and a `UsageApi` serves operators (IAM) under
    `/operator/usage`. Deploying the stack redeploys the stage with the new methods."""

    def __init__(self, scope: Construct, id: str, *, description: Optional[str] = None) -> None:
        super().__init__(scope, id, description=description)
        self.ingestor = UsageIngestor(self, "Ingestor")
        self.rest_api = control_plane_rest_api(self, "ControlPlaneApi")
        self.billing = StripeBilling(
            self,
            "StripeBilling",
            api_key=secretsmanager.Secret.from_secret_name_v2(self, "StripeApiKey", "cdk-saas-billing/stripe-api-key"),
            ingestor=self.ingestor,
            rest_api=self.rest_api,
            meters=[StripeMeter(metric="apiCalls", event_name="api_calls", display_name="API calls")],
            prices=["price_1ExampleBasePlan", "price_1ExampleApiCalls"],
        )
        # TypeScript passes the construct itself; elsewhere its `billing` property is the IBilling.
        self.provider = BillingProvider(self, "Billing", billing=self.billing.billing, rest_api=self.rest_api)
        self.usage_api = UsageApi(
            self, "OperatorUsageApi", ingestor=self.ingestor, rest_api=self.rest_api, path_prefix="/operator/usage"
        )
