package com.example.billing;

import io.github.cdksaasbilling.BillingProvider;
import io.github.cdksaasbilling.MarketplaceBilling;
import io.github.cdksaasbilling.MarketplaceDimension;
import io.github.cdksaasbilling.MarketplaceRounding;
import io.github.cdksaasbilling.UsageIngestor;
import java.util.List;
import software.amazon.awscdk.Stack;
import software.amazon.awscdk.StackProps;
import software.amazon.awscdk.services.apigatewayv2.HttpApi;
import software.constructs.Construct;

/**
 * Selling through AWS Marketplace (mirrors examples/marketplace-billing-stack.ts): usage
 * records become exactly-once hourly windows ({@link UsageIngestor}); the product's
 * fulfillment URL is {@code POST /billing/marketplace} on the control plane's HTTP API; the
 * onboarding request carries the registration id back; each closed hour becomes one
 * BatchMeterUsage record per dimension ({@link MarketplaceBilling}); {@link BillingProvider}
 * wires it to the control plane's events and mounts the fulfillment URL. Deploy it in
 * us-east-1.
 */
public class MarketplaceBillingStack extends Stack {
    private final UsageIngestor ingestor;
    private final MarketplaceBilling billing;
    private final HttpApi httpApi;
    private final BillingProvider provider;

    public MarketplaceBillingStack(final Construct scope, final String id, final StackProps props) {
        super(scope, id, props);
        this.ingestor = new UsageIngestor(this, "Ingestor");
        this.httpApi = ControlPlaneApi.create(this, "ControlPlaneApi");
        this.billing = MarketplaceBilling.Builder.create(this, "MarketplaceBilling")
                .productCode("prod-example7xyz1234")
                .registrationPageUrl("https://app.example.com/marketplace/register")
                .ingestor(ingestor)
                .dimensions(List.of(
                        // Priced per thousand API calls: the remainders are carried within the month.
                        MarketplaceDimension.builder().metric("apiCalls").dimension("api_calls_thousands").multiplier("0.001").build(),
                        MarketplaceDimension.builder().metric("storageGb").dimension("storage_gb_hours").rounding(MarketplaceRounding.UP).build()))
                .contractEntitlements(true)
                .build();
        // TypeScript passes the construct itself; elsewhere its getBilling() is the IBilling.
        this.provider = BillingProvider.Builder.create(this, "Billing")
                .billing(billing.getBilling())
                .httpApi(httpApi)
                .build();
    }

    public UsageIngestor getIngestor() {
        return ingestor;
    }

    public MarketplaceBilling getBilling() {
        return billing;
    }

    public HttpApi getHttpApi() {
        return httpApi;
    }

    public BillingProvider getProvider() {
        return provider;
    }
}
