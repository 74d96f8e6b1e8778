package com.example.billing;

import io.github.cdksaasbilling.BillingProvider;
import io.github.cdksaasbilling.StripeBilling;
import io.github.cdksaasbilling.StripeMeter;
import io.github.cdksaasbilling.UsageApi;
import io.github.cdksaasbilling.UsageIngestor;
import java.util.List;
import software.amazon.awscdk.Stack;
import software.amazon.awscdk.StackProps;
import software.amazon.awscdk.services.apigateway.RestApi;
import software.amazon.awscdk.services.secretsmanager.Secret;
import software.constructs.Construct;

/**
 * A control plane on an API Gateway REST API (mirrors examples/rest-api-billing-stack.ts):
 * {@link BillingProvider} mounts Stripe's webhook on it as {@code POST /billing/stripe}
 * (Lambda proxy integration, verified by its signature), {@link StripeBilling} tells Stripe
 * the URL on the API's {@code prod} stage, and a {@link UsageApi} serves operators (IAM)
 * under {@code /operator/usage}. Deploying the stack redeploys the stage with the new methods.
 */
public class RestApiBillingStack extends Stack {
    private final UsageIngestor ingestor;
    private final RestApi restApi;
    private final StripeBilling billing;
    private final BillingProvider provider;
    private final UsageApi usageApi;

    public RestApiBillingStack(final Construct scope, final String id, final StackProps props) {
        super(scope, id, props);
        this.ingestor = new UsageIngestor(this, "Ingestor");
        this.restApi = ControlPlaneApi.createRestApi(this, "ControlPlaneApi");
        this.billing = StripeBilling.Builder.create(this, "StripeBilling")
                .apiKey(Secret.fromSecretNameV2(this, "StripeApiKey", "cdk-saas-billing/stripe-api-key"))
                .ingestor(ingestor)
                .restApi(restApi)
                .meters(List.of(StripeMeter.builder().metric("apiCalls").eventName("api_calls").displayName("API calls").build()))
                .prices(List.of("price_1ExampleBasePlan", "price_1ExampleApiCalls"))
                .build();
        // TypeScript passes the construct itself; elsewhere its getBilling() is the IBilling.
        this.provider = BillingProvider.Builder.create(this, "Billing")
                .billing(billing.getBilling())
                .restApi(restApi)
                .build();
        this.usageApi = UsageApi.Builder.create(this, "OperatorUsageApi")
                .ingestor(ingestor)
                .restApi(restApi)
                .pathPrefix("/operator/usage")
                .build();
    }

    public UsageIngestor getIngestor() {
        return ingestor;
    }

    public RestApi getRestApi() {
        return restApi;
    }

    public StripeBilling getBilling() {
        return billing;
    }

    public BillingProvider getProvider() {
        return provider;
    }

    public UsageApi getUsageApi() {
        return usageApi;
    }
}
