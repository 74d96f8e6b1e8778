"""The control plane's HTTP API of the examples (mirrors examples/control-plane-api.ts)."""
from typing import Optional

import jsii
from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_logs as logs
from constructs import Construct


@jsii.implements(apigwv2.IAccessLogSettings)
class AccessLogSettings:
    """aws-cdk-lib types `HttpStageProps.access_log_settings` as `IAccessLogSettings`, an
    interface rather than a struct (its name starts with I): in Python it takes a class
    that implements it, where TypeScript passes `{ destination }`."""

    def __init__(self, destination: apigwv2.IAccessLogDestination) -> None:
        self._destination = destination

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> Optional[apigw.AccessLogFormat]:
        return None


def control_plane_api(scope: Construct, id: str) -> apigwv2.HttpApi:
    """A `$default` stage with access logs and throttling, as a production API would have."""
    api = apigwv2.HttpApi(
        scope,
        id,
        description="Control plane API (example)",
        create_default_stage=False,
    )
    access_logs = logs.LogGroup(
        scope,
        f"{id}AccessLogs",
        retention=logs.RetentionDays.ONE_MONTH,
        removal_policy=RemovalPolicy.DESTROY,
    )
    apigwv2.HttpStage(
        scope,
        f"{id}DefaultStage",
        http_api=api,
        stage_name="$default",
        auto_deploy=True,
        throttle=apigwv2.ThrottleSettings(rate_limit=50, burst_limit=100),
        access_log_settings=AccessLogSettings(
            destination=apigwv2.LogGroupLogDestination(access_logs),
        ),
    )
    return api
