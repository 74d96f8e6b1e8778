"""The ready billing pipeline on its defaults (mirrors examples/dynamodb-billing-stack.ts)."""
from typing import Optional

from aws_cdk import Stack
from constructs import Construct

from cdk_saas_billing import BillingDashboard, BillingProvider, DynamoDbBilling, MetricUnitPrice, UsageIngestor

from control_plane_api import control_plane_api


class DynamoDbBillingStack(Stack):
    """Usage records on a Kinesis data stream become exactly-once hourly aggregates
    (`UsageIngestor`); customers, users and priced charges are kept in DynamoDB
    (`DynamoDbBilling`); and `BillingProvider` wires it all to the control plane's events
    on the account's default bus, the daily usage push and the signed webhook on the
    control plane's HTTP API."""

    def __init__(self, scope: Construct, id: str, *, description: Optional[str] = None) -> None:
        super().__init__(scope, id, description=description)
        self.ingestor = UsageIngestor(self, "Ingestor")
        self.billing = DynamoDbBilling(
            self,
            "DynamoDbBilling",
            ingestor=self.ingestor,
            # Structs inside a list take the struct class: jsii turns a dict into a struct
            # only where the struct is the parameter's own type.
            unit_prices=[
                MetricUnitPrice(metric="apiCalls", unit_price="0.0025"),
                MetricUnitPrice(metric="storageGb", unit_price="0.10"),
            ],
        )
        self.http_api = control_plane_api(self, "ControlPlaneApi")
        # TypeScript passes the construct itself; elsewhere its `billing` property is the IBilling.
        self.provider = BillingProvider(self, "Billing", billing=self.billing.billing, http_api=self.http_api)
        # One CloudWatch dashboard of the pipeline: every alarm, then ingest, push and delivery metrics.
        self.dashboard = BillingDashboard(
            self, "Dashboard", ingestor=self.ingestor, dynamo_db_billing=self.billing, billing_provider=self.provider
        )
