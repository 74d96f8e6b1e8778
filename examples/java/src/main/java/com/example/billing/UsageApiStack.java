package com.example.billing;

import io.github.cdksaasbilling.BillingProvider;
import io.github.cdksaasbilling.DynamoDbBilling;
import io.github.cdksaasbilling.MetricUnitPrice;
import io.github.cdksaasbilling.UsageApi;
import io.github.cdksaasbilling.UsageApiAuthorization;
import io.github.cdksaasbilling.UsageApiJwtOptions;
import io.github.cdksaasbilling.UsageIngestor;
import java.util.List;
import software.amazon.awscdk.CfnParameter;
import software.amazon.awscdk.Stack;
import software.amazon.awscdk.StackProps;
import software.amazon.awscdk.services.apigatewayv2.HttpApi;
import software.constructs.Construct;

/**
 * Usage readable over HTTP (mirrors examples/usage-api-stack.ts): the ready pipeline
 * ({@link UsageIngestor}, {@link DynamoDbBilling}, {@link BillingProvider}) plus two usage
 * APIs on the control plane's HTTP API:
 * <ul>
 * <li>{@code /usage/...} for tenants: an SBT tenant's Cognito ID token (claim
 * {@code custom:tenantId}) reads only that tenant's closed windows and open totals; the
 * closed-window feed {@code /usage/windows} stays IAM;</li>
 * <li>{@code /operator/usage/...} for AWS identities (SigV4): any tenant, and the feed.</li>
 * </ul>
 * The tenants' user pool is the control plane's (SBT creates it): its id and app client id
 * are parameters of the stack.
 */
public class UsageApiStack extends Stack {
    private final UsageIngestor ingestor;
    private final HttpApi httpApi;
    private final UsageApi tenantUsageApi;
    private final UsageApi operatorUsageApi;

    public UsageApiStack(final Construct scope, final String id, final StackProps props) {
        super(scope, id, props);
        // CloudFormation's Default is defaultValue in Java (default is a keyword).
        CfnParameter userPoolId = CfnParameter.Builder.create(this, "TenantUserPoolId")
                .description("Id of the Cognito user pool that signs the tenants' tokens (SBT control plane)")
                .defaultValue("us-east-1_EXAMPLE")
                .build();
        CfnParameter userPoolClientId = CfnParameter.Builder.create(this, "TenantUserPoolClientId")
                .description("App client id of that user pool (the audience of its ID tokens)")
                .defaultValue("1example23456789")
                .build();

        this.ingestor = new UsageIngestor(this, "Ingestor");
        DynamoDbBilling billing = DynamoDbBilling.Builder.create(this, "DynamoDbBilling")
                .ingestor(ingestor)
                .unitPrices(List.of(MetricUnitPrice.builder().metric("apiCalls").unitPrice("0.0025").build()))
                .build();
        this.httpApi = ControlPlaneApi.create(this, "ControlPlaneApi");
        BillingProvider.Builder.create(this, "Billing")
                .billing(billing.getBilling())
                .httpApi(httpApi)
                .build();

        this.tenantUsageApi = UsageApi.Builder.create(this, "TenantUsageApi")
                .ingestor(ingestor)
                .httpApi(httpApi)
                .authorization(UsageApiAuthorization.jwt(UsageApiJwtOptions.builder()
                        .issuer("https://cognito-idp." + getRegion() + ".amazonaws.com/" + userPoolId.getValueAsString())
                        .audience(List.of(userPoolClientId.getValueAsString()))
                        .build()))
                .build();
        this.operatorUsageApi = UsageApi.Builder.create(this, "OperatorUsageApi")
                .ingestor(ingestor)
                .httpApi(httpApi)
                .pathPrefix("/operator/usage")
                .build();
    }

    public UsageIngestor getIngestor() {
        return ingestor;
    }

    public HttpApi getHttpApi() {
        return httpApi;
    }

    public UsageApi getTenantUsageApi() {
        return tenantUsageApi;
    }

    public UsageApi getOperatorUsageApi() {
        return operatorUsageApi;
    }
}
