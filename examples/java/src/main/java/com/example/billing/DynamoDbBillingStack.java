package com.example.billing;

import io.github.cdksaasbilling.BillingDashboard;
import io.github.cdksaasbilling.BillingProvider;
import io.github.cdksaasbilling.DynamoDbBilling;
import io.github.cdksaasbilling.MetricUnitPrice;
import io.github.cdksaasbilling.UsageIngestor;
import java.util.List;
import software.amazon.awscdk.Stack;
import software.amazon.awscdk.StackProps;
import software.amazon.awscdk.services.apigatewayv2.HttpApi;
import software.constructs.Construct;

/**
 * The ready billing pipeline on its defaults (mirrors examples/dynamodb-billing-stack.ts):
 * usage records on a Kinesis data stream become exactly-once hourly aggregates
 * ({@link UsageIngestor}); customers, users and priced charges are kept in DynamoDB
 * ({@link DynamoDbBilling}); and {@link BillingProvider} wires it all to the control plane's
 * events on the account's default bus, the daily usage push and the signed webhook on the
 * control plane's HTTP API.
 */
public class DynamoDbBillingStack extends Stack {
    private final UsageIngestor ingestor;
    private final DynamoDbBilling billing;
    private final HttpApi httpApi;
    private final BillingProvider provider;
    private final BillingDashboard dashboard;

    public DynamoDbBillingStack(final Construct scope, final String id, final StackProps props) {
        super(scope, id, props);
        this.ingestor = new UsageIngestor(this, "Ingestor");
        this.billing = DynamoDbBilling.Builder.create(this, "DynamoDbBilling")
                .ingestor(ingestor)
                .unitPrices(List.of(
                        MetricUnitPrice.builder().metric("apiCalls").unitPrice("0.0025").build(),
                        MetricUnitPrice.builder().metric("storageGb").unitPrice("0.10").build()))
                .build();
        this.httpApi = ControlPlaneApi.create(this, "ControlPlaneApi");
        // TypeScript passes the construct itself; elsewhere its getBilling() is the IBilling.
        this.provider = BillingProvider.Builder.create(this, "Billing")
                .billing(billing.getBilling())
                .httpApi(httpApi)
                .build();
        // One CloudWatch dashboard of the pipeline: every alarm, then ingest, push and delivery metrics.
        this.dashboard = BillingDashboard.Builder.create(this, "Dashboard")
                .ingestor(ingestor)
                .dynamoDbBilling(billing)
                .billingProvider(provider)
                .build();
    }

    public UsageIngestor getIngestor() {
        return ingestor;
    }

    public DynamoDbBilling getBilling() {
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
