#!/usr/bin/env python3
"""The example billing app in Python: the same stacks, stack names and construct IDs
as examples/app.ts, from the cdk-saas-billing wheel.

    python -m venv .venv && .venv/bin/pip install -r requirements.txt ../../dist/python/*.whl
    .venv/bin/python app.py          # or: cdk synth
"""
import os

from aws_cdk import App

from custom_billing_stack import CustomBillingStack
from dynamodb_billing_stack import DynamoDbBillingStack
from marketplace_billing_stack import MarketplaceBillingStack
from rest_api_billing_stack import RestApiBillingStack
from stripe_billing_stack import StripeBillingStack
from usage_api_stack import UsageApiStack


def add_example_stacks(app: App) -> list:
    return [
        DynamoDbBillingStack(
            app,
            "DynamoDbBillingExample",
            description="cdk-saas-billing example: the ready pipeline (UsageIngestor, DynamoDbBilling) wired by BillingProvider",
        ),
        CustomBillingStack(
            app,
            "CustomBillingExample",
            description="cdk-saas-billing example: BillingProvider wiring a billing integration of small functions",
        ),
        StripeBillingStack(
            app,
            "StripeBillingExample",
            description="cdk-saas-billing example: billing through Stripe (UsageIngestor, StripeBilling) wired by BillingProvider",
        ),
        MarketplaceBillingStack(
            app,
            "MarketplaceBillingExample",
            description="cdk-saas-billing example: selling through AWS Marketplace (UsageIngestor, MarketplaceBilling) wired by BillingProvider",
        ),
        UsageApiStack(
            app,
            "UsageApiExample",
            description="cdk-saas-billing example: usage readable over HTTP (UsageApi), tenants with their tokens, operators with IAM",
        ),
        RestApiBillingStack(
            app,
            "RestApiBillingExample",
            description="cdk-saas-billing example: a control plane on an API Gateway REST API (StripeBilling's webhook and a UsageApi on it)",
        ),
    ]


if __name__ == "__main__":
    outdir = os.environ.get("CDK_OUTDIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "cdk.out"))
    app = App(outdir=outdir)
    add_example_stacks(app)
    app.synth()
