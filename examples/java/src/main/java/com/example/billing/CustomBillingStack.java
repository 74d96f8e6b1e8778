package com.example.billing;

import io.github.cdksaasbilling.BillingProvider;
import io.github.cdksaasbilling.IASyncFunction;
import io.github.cdksaasbilling.IBilling;
import io.github.cdksaasbilling.IFunctionPath;
import io.github.cdksaasbilling.IFunctionSchedule;
import io.github.cdksaasbilling.LibraryFunctions;
import software.amazon.awscdk.Duration;
import software.amazon.awscdk.RemovalPolicy;
import software.amazon.awscdk.Stack;
import software.amazon.awscdk.StackProps;
import software.amazon.awscdk.services.apigatewayv2.HttpApi;
import software.amazon.awscdk.services.events.Schedule;
import software.amazon.awscdk.services.iam.Role;
import software.amazon.awscdk.services.iam.ServicePrincipal;
import software.amazon.awscdk.services.lambda.Code;
import software.amazon.awscdk.services.lambda.Function;
import software.amazon.awscdk.services.logs.LogGroup;
import software.amazon.awscdk.services.logs.RetentionDays;
import software.constructs.Construct;

/**
 * A billing integration of your own (mirrors examples/custom-billing-stack.ts): five small
 * functions wired by {@link BillingProvider} on the account's default event bus, with the
 * webhook mounted on an HTTP API.
 */
public class CustomBillingStack extends Stack {
    static final String LOG_EVENT = "exports.handler = async (event) => { console.log(JSON.stringify("
            + "{ detailType: event[\"detail-type\"], tenantId: event.detail && event.detail.tenantId })); };";
    static final String PUSH_USAGE = "exports.handler = async () => { console.log(\"push usage\"); };";
    static final String WEBHOOK =
            "exports.handler = async () => ({ statusCode: 401, body: \"signature verification not implemented\" });";

    private final BillingProvider provider;
    private final HttpApi httpApi;

    public CustomBillingStack(final Construct scope, final String id, final StackProps props) {
        super(scope, id, props);
        IBilling billing = exampleBillingFunctions(this);
        this.httpApi = ControlPlaneApi.create(this, "ControlPlaneApi");
        this.provider = BillingProvider.Builder.create(this, "Billing")
                .billing(billing)
                .httpApi(httpApi)
                .build();
    }

    public BillingProvider getProvider() {
        return provider;
    }

    public HttpApi getHttpApi() {
        return httpApi;
    }

    /**
     * Five small functions that fill IBilling: each only logs what it receives; put your
     * billing system's calls in their place. IBilling and its functions are data: builders.
     */
    static IBilling exampleBillingFunctions(final Construct scope) {
        return IBilling.builder()
                .createCustomerFunction(IASyncFunction.builder().handler(fn(scope, "CreateCustomer", LOG_EVENT)).build())
                .deleteCustomerFunction(IASyncFunction.builder().handler(fn(scope, "DeleteCustomer", LOG_EVENT)).build())
                .createUserFunction(IASyncFunction.builder().handler(fn(scope, "CreateUser", LOG_EVENT)).build())
                .deleteUserFunction(IASyncFunction.builder().handler(fn(scope, "DeleteUser", LOG_EVENT)).build())
                .putUsageFunction(IFunctionSchedule.builder()
                        .handler(fn(scope, "PutUsage", PUSH_USAGE))
                        .schedule(Schedule.rate(Duration.hours(24)))
                        .build())
                .webhookFunction(IFunctionPath.builder()
                        .path("webhook")
                        .handler(fn(scope, "Webhook", WEBHOOK))
                        .build())
                .build();
    }

    private static Function fn(final Construct scope, final String name, final String body) {
        LogGroup logGroup = LogGroup.Builder.create(scope, name + "Logs")
                .retention(RetentionDays.ONE_MONTH)
                .removalPolicy(RemovalPolicy.DESTROY)
                .build();
        // A role that may write the function's own log group, and nothing else (no managed policy):
        // BillingProvider adds what the wiring needs (the on-failure destination).
        Role role = Role.Builder.create(scope, name + "Role")
                .assumedBy(new ServicePrincipal("lambda.amazonaws.com"))
                .build();
        logGroup.grantWrite(role);
        Function f = Function.Builder.create(scope, name)
                // The runtime the library's own functions get: the newest Node.js runtime of your
                // aws-cdk-lib (cdk-nag's AwsSolutions-L1 flags any older one).
                .runtime(LibraryFunctions.newestNodeRuntime())
                .handler("index.handler")
                .code(Code.fromInline(body))
                .timeout(Duration.seconds(10))
                .logGroup(logGroup)
                .role(role)
                .build();
        return f;
    }
}
