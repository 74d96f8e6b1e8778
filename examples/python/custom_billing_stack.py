"""A billing integration of your own (mirrors examples/custom-billing-stack.ts)."""
from typing import Optional

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from cdk_saas_billing import BillingProvider, IBilling, LibraryFunctions

from control_plane_api import control_plane_api

LOG_EVENT = (
    "exports.handler = async (event) => { console.log(JSON.stringify("
    '{ detailType: event["detail-type"], tenantId: event.detail && event.detail.tenantId })); };'
)
PUSH_USAGE = 'exports.handler = async () => { console.log("push usage"); };'
WEBHOOK = 'exports.handler = async () => ({ statusCode: 401, body: "signature verification not implemented" });'


def example_billing_functions(scope: Construct) -> IBilling:
    """Five small functions that fill `IBilling`: each only logs what it receives;
    put your billing system's calls in their place. Plain data: no class to write."""

    def fn(name: str, body: str) -> lambda_.Function:
        log_group = logs.LogGroup(
            scope,
            f"{name}Logs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY,
        )
        # A role that may write the function's own log group, and nothing else (no managed policy):
        # BillingProvider adds what the wiring needs (the on-failure destination).
        role = iam.Role(scope, f"{name}Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        log_group.grant_write(role)
        f = lambda_.Function(
            scope,
            name,
            # The runtime the library's own functions get: the newest Node.js runtime of your
            # aws-cdk-lib (cdk-nag's AwsSolutions-L1 flags any older one).
            runtime=LibraryFunctions.newest_node_runtime(),
            handler="index.handler",
            code=lambda_.Code.from_inline(body),
            timeout=Duration.seconds(10),
            log_group=log_group,
            role=role,
        )
        return f

    # IBilling and its functions are data: keyword arguments, and plain dicts for the slots.
    return IBilling(
        create_customer_function={"handler": fn("CreateCustomer", LOG_EVENT)},
        delete_customer_function={"handler": fn("DeleteCustomer", LOG_EVENT)},
        create_user_function={"handler": fn("CreateUser", LOG_EVENT)},
        delete_user_function={"handler": fn("DeleteUser", LOG_EVENT)},
        put_usage_function={
            "handler": fn("PutUsage", PUSH_USAGE),
            "schedule": events.Schedule.rate(Duration.hours(24)),
        },
        webhook_function={"path": "webhook", "handler": fn("Webhook", WEBHOOK)},
    )


class CustomBillingStack(Stack):
    """The five small functions above wired by `BillingProvider` on the account's
    default event bus, with the webhook mounted on an HTTP API."""

    def __init__(self, scope: Construct, id: str, *, description: Optional[str] = None) -> None:
        super().__init__(scope, id, description=description)
        billing = example_billing_functions(self)
        self.http_api = control_plane_api(self, "ControlPlaneApi")
        self.provider = BillingProvider(self, "Billing", billing=billing, http_api=self.http_api)
