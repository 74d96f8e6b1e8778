package com.example.billing;

import java.util.List;
import software.amazon.awscdk.Acknowledgment;
import software.amazon.awscdk.RemovalPolicy;
import software.amazon.awscdk.Validations;
import software.amazon.awscdk.services.apigateway.AccessLogFormat;
import software.amazon.awscdk.services.apigateway.EndpointType;
import software.amazon.awscdk.services.apigateway.RestApi;
import software.amazon.awscdk.services.apigateway.StageOptions;
import software.amazon.awscdk.services.apigatewayv2.HttpApi;
import software.amazon.awscdk.services.apigatewayv2.HttpStage;
import software.amazon.awscdk.services.apigatewayv2.IAccessLogDestination;
import software.amazon.awscdk.services.apigatewayv2.IAccessLogSettings;
import software.amazon.awscdk.services.apigatewayv2.LogGroupLogDestination;
import software.amazon.awscdk.services.apigatewayv2.ThrottleSettings;
import software.amazon.awscdk.services.logs.LogGroup;
import software.amazon.awscdk.services.logs.RetentionDays;
import software.constructs.Construct;

/**
 * The control plane's HTTP and REST APIs of the examples (mirrors examples/control-plane-api.ts).
 */
final class ControlPlaneApi {
    private ControlPlaneApi() {
    }

    /**
     * The control plane's HTTP API: a {@code $default} stage with access logs and throttling,
     * as a production API would have.
     */
    static HttpApi create(final Construct scope, final String id) {
        HttpApi api = HttpApi.Builder.create(scope, id)
                .description("Control plane API (example)")
                .createDefaultStage(false)
                .build();
        LogGroup accessLogs = LogGroup.Builder.create(scope, id + "AccessLogs")
                .retention(RetentionDays.ONE_MONTH)
                .removalPolicy(RemovalPolicy.DESTROY)
                .build();
        // aws-cdk-lib types accessLogSettings as IAccessLogSettings, an interface rather than
        // a struct (no builder): Java implements it where TypeScript passes { destination }.
        IAccessLogDestination destination = new LogGroupLogDestination(accessLogs);
        IAccessLogSettings accessLogSettings = new IAccessLogSettings() {
            @Override
            public IAccessLogDestination getDestination() {
                return destination;
            }
        };
        HttpStage.Builder.create(scope, id + "DefaultStage")
                .httpApi(api)
                .stageName("$default")
                .autoDeploy(true)
                .throttle(ThrottleSettings.builder().rateLimit(50).burstLimit(100).build())
                .accessLogSettings(accessLogSettings)
                .build();
        return api;
    }

    /**
     * The control plane's REST API: a regional API with a {@code prod} stage, access logs and
     * throttling. Its cdk-nag findings are the API owner's decisions, acknowledged here with
     * the reasons of this example.
     */
    static RestApi createRestApi(final Construct scope, final String id) {
        LogGroup accessLogs = LogGroup.Builder.create(scope, id + "AccessLogs")
                .retention(RetentionDays.ONE_MONTH)
                .removalPolicy(RemovalPolicy.DESTROY)
                .build();
        RestApi api = RestApi.Builder.create(scope, id)
                .description("Control plane REST API (example)")
                .endpointTypes(List.of(EndpointType.REGIONAL))
                // The account-wide API Gateway CloudWatch Logs role is not this app's to set.
                .cloudWatchRole(false)
                .deployOptions(StageOptions.builder()
                        .stageName("prod")
                        .throttlingRateLimit(50)
                        .throttlingBurstLimit(100)
                        .accessLogDestination(new software.amazon.awscdk.services.apigateway.LogGroupLogDestination(accessLogs))
                        .accessLogFormat(AccessLogFormat.jsonWithStandardFields())
                        .build())
                .build();
        Validations.of(api).acknowledge(
                Acknowledgment.builder()
                        .id("AwsSolutions-APIG2")
                        .reason("Every method of this API is a Lambda proxy that validates its own input: the webhook verifies the signature of the raw body, the usage API answers 400 to a bad path or query.")
                        .build(),
                Acknowledgment.builder()
                        .id("AwsSolutions-APIG3")
                        .reason("Example: associate a WAFv2 web ACL with the prod stage in production.")
                        .build(),
                Acknowledgment.builder()
                        .id("AwsSolutions-APIG6")
                        .reason("Execution logs need the account-wide API Gateway CloudWatch Logs role, which this example does not set; access logs are on.")
                        .build());
        return api;
    }
}
