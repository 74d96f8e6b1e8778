"""The control plane's HTTP and REST APIs of the examples (mirrors examples/control-plane-api.ts)."""
from typing import Optional

import jsii
from aws_cdk import Acknowledgment, RemovalPolicy, Validations
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


def control_plane_rest_api(scope: Construct, id: str) -> apigw.RestApi:
    """A regional REST API with a `prod` stage, access logs and throttling. Its cdk-nag
    findings are the API owner's decisions, acknowledged here with the reasons of this example."""
    access_logs = logs.LogGroup(
        scope,
        f"{id}AccessLogs",
        retention=logs.RetentionDays.ONE_MONTH,
        removal_policy=RemovalPolicy.DESTROY,
    )
    api = apigw.RestApi(
        scope,
        id,
        description="Control plane REST API (example)",
        endpoint_types=[apigw.EndpointType.REGIONAL],
        # The account-wide API Gateway CloudWatch Logs role is not this app's to set.
        cloud_watch_role=False,
        deploy_options=apigw.StageOptions(
            stage_name="prod",
            throttling_rate_limit=50,
            throttling_burst_limit=100,
            access_log_destination=apigw.LogGroupLogDestination(access_logs),
            # TypeScript's jsonWithStandardFields() defaults to every field; Python expands the
            # optional struct into keyword arguments that are all required: name them all.
            access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                ip=True,
                user=True,
                caller=True,
                request_time=True,
                http_method=True,
                resource_path=True,
                status=True,
                protocol=True,
                response_length=True,
            ),
        ),
    )
    Validations.of(api).acknowledge(
        Acknowledgment(
            id="AwsSolutions-APIG2",
            reason="Every method of this API is a Lambda proxy that validates its own input: the webhook verifies the signature of the raw body, the usage API answers 400 to a bad path or query.",
        ),
        Acknowledgment(
            id="AwsSolutions-APIG3",
            reason="Example: associate a WAFv2 web ACL with the prod stage in production.",
        ),
        Acknowledgment(
            id="AwsSolutions-APIG6",
            reason="Execution logs need the account-wide API Gateway CloudWatch Logs role, which this example does not set; access logs are on.",
        ),
    )
    return api
