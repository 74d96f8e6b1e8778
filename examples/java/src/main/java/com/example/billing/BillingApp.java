package com.example.billing;

import java.nio.file.Path;
import java.util.List;
import software.amazon.awscdk.App;
import software.amazon.awscdk.AppProps;
import software.amazon.awscdk.Stack;
import software.amazon.awscdk.StackProps;

/**
 * The example billing app in Java: the same stacks, stack names and construct IDs as
 * examples/app.ts.
 */
public final class BillingApp {
    private BillingApp() {
    }

    static List<Stack> addExampleStacks(final App app) {
        return List.of(
                new DynamoDbBillingStack(app, "DynamoDbBillingExample", StackProps.builder()
                        .description("cdk-saas-billing example: the ready pipeline (UsageIngestor, DynamoDbBilling) wired by BillingProvider")
                        .build()),
                new CustomBillingStack(app, "CustomBillingExample", StackProps.builder()
                        .description("cdk-saas-billing example: BillingProvider wiring a billing integration of small functions")
                        .build()),
                new StripeBillingStack(app, "StripeBillingExample", StackProps.builder()
                        .description("cdk-saas-billing example: billing through Stripe (UsageIngestor, StripeBilling) wired by BillingProvider")
                        .build()),
                new MarketplaceBillingStack(app, "MarketplaceBillingExample", StackProps.builder()
                        .description("cdk-saas-billing example: selling through AWS Marketplace (UsageIngestor, MarketplaceBilling) wired by BillingProvider")
                        .build()),
                new UsageApiStack(app, "UsageApiExample", StackProps.builder()
                        .description("cdk-saas-billing example: usage readable over HTTP (UsageApi), tenants with their tokens, operators with IAM")
                        .build()),
                new RestApiBillingStack(app, "RestApiBillingExample", StackProps.builder()
                        .description("cdk-saas-billing example: a control plane on an API Gateway REST API (StripeBilling's webhook and a UsageApi on it)")
                        .build()));
    }

    public static void main(final String[] args) {
        String outdir = System.getenv("CDK_OUTDIR");
        if (outdir == null) {
            outdir = Path.of("cdk.out").toAbsolutePath().toString();
        }
        App app = new App(AppProps.builder().outdir(outdir).build());
        addExampleStacks(app);
        app.synth();
    }
}
