package com.example.billing;

import io.github.cdksaasbilling.BillingDashboard;
import io.github.cdksaasbilling.BillingProvider;
import io.github.cdksaasbilling.StripeBilling;
import io.github.cdksaasbilling.StripeMeter;
import io.github.cdksaasbilling.StripeMeterRounding;
import io.github.cdksaasbilling.UsageIngestor;
import java.util.List;
import software.amazon.awscdk.Stack;
import software.amazon.awscdk.StackProps;
import software.amazon.awscdk.services.apigatewayv2.HttpApi;
import software.amazon.awscdk.services.secretsmanager.Secret;
import software.constructs.Construct;

/**
 * Billing through Stripe (mirrors examples/stripe-billing-stack.ts): usage records become
 * exactly-once hourly windows ({@link UsageIngestor}); each tenant gets a Stripe customer
 * and a subscription to the prices, closed windows become Stripe meter events, and
 * Stripe's webhook becomes the control plane's billing events ({@link StripeBilling});
 * {@link BillingProvider} wires it to the control plane's events and mounts the webhook on
 * its HTTP API. {@code cdk deploy} creates the meters and the webhook endpoint in Stripe;
 * the API key is read from the secret {@code cdk-saas-billing/stripe-api-key}.
 */
public class StripeBillingStack extends Stack {
    private final UsageIngestor ingestor;
    private final StripeBilling billing;
    private final HttpApi httpApi;
    private final BillingProvider provider;
    private final BillingDashboard dashboard;

    public StripeBillingStack(final Construct scope, final String id, final StackProps props) {
        super(scope, id, props);
        this.ingestor = new UsageIngestor(this, "Ingestor");
        this.httpApi = ControlPlaneApi.create(this, "ControlPlaneApi");
        this.billing = StripeBilling.Builder.create(this, "StripeBilling")
                .apiKey(Secret.fromSecretNameV2(this, "StripeApiKey", "cdk-saas-billing/stripe-api-key"))
                .ingestor(ingestor)
                .httpApi(httpApi)
                .meters(List.of(
                        StripeMeter.builder().metric("apiCalls").eventName("api_calls").displayName("API calls").build(),
                        // Storage is metered in GB-hours with decimals; Stripe takes whole numbers: bill MB-hours, rounding up.
                        StripeMeter.builder().metric("storageGb").eventName("storage_mb_hours").displayName("Storage (MB-hours)")
                                .multiplier("1000").rounding(StripeMeterRounding.UP).build()))
                .prices(List.of("price_1ExampleBasePlan", "price_1ExampleApiCalls", "price_1ExampleStorage"))
                .build();
        // TypeScript passes the construct itself; elsewhere its getBilling() is the IBilling.
        this.provider = BillingProvider.Builder.create(this, "Billing")
                .billing(billing.getBilling())
                .httpApi(httpApi)
                .build();
        // One CloudWatch dashboard of the pipeline: every alarm, then ingest, push and delivery metrics.
        this.dashboard = BillingDashboard.Builder.create(this, "Dashboard")
                .ingestor(ingestor)
                .stripeBilling(billing)
                .billingProvider(provider)
                .build();
    }

    public UsageIngestor getIngestor() {
        return ingestor;
    }

    public StripeBilling getBilling() {
        return billing;
    }

    public HttpApi getHttpApi() {
        return httpApi;
    }

    public BillingProvider getProvider() {
        return provider;
    }

    public BillingDashboard getDashboard() {
        return dashboard;
    }
}
