package com.example.billing;

import software.amazon.awscdk.RemovalPolicy;
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
 * The control plane's HTTP API of the examples (mirrors examples/control-plane-api.ts):
 * a {@code $default} stage with access logs and throttling, as a production API would have.
 */
final class ControlPlaneApi {
    private ControlPlaneApi() {
    }

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
}
