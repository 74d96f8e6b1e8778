package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdk-saas-billing/cdk-saas-billing-go/cdksaasbilling"
)

const (
	logEvent  = `exports.handler = async (event) => { console.log(JSON.stringify({ detailType: event["detail-type"], tenantId: event.detail && event.detail.tenantId })); };`
	pushUsage = `exports.handler = async () => { console.log("push usage"); };`
	webhook   = `exports.handler = async () => ({ statusCode: 401, body: "signature verification not implemented" });`
)

// ExampleBillingFunctions returns five small functions that fill IBilling: each only logs
// what it receives; put your billing system's calls in their place. IBilling and its
// functions are data: struct literals.
func ExampleBillingFunctions(scope constructs.Construct) *cdksaasbilling.IBilling {
	fn := func(name, body string) awslambda.Function {
		logGroup := awslogs.NewLogGroup(scope, jsii.String(name+"Logs"), &awslogs.LogGroupProps{
			Retention:     awslogs.RetentionDays_ONE_MONTH,
			RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
		})
		// A role that may write the function's own log group, and nothing else (no managed policy):
		// BillingProvider adds what the wiring needs (the on-failure destination).
		role := awsiam.NewRole(scope, jsii.String(name+"Role"), &awsiam.RoleProps{
			AssumedBy: awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		})
		logGroup.GrantWrite(role)
		f := awslambda.NewFunction(scope, jsii.String(name), &awslambda.FunctionProps{
			// The runtime the library's own functions get: the newest Node.js runtime of your
			// aws-cdk-lib (cdk-nag's AwsSolutions-L1 flags any older one).
			Runtime:  cdksaasbilling.LibraryFunctions_NewestNodeRuntime(),
			Handler:  jsii.String("index.handler"),
			Code:     awslambda.Code_FromInline(jsii.String(body)),
			Timeout:  awscdk.Duration_Seconds(jsii.Number(10)),
			LogGroup: logGroup,
			Role:     role,
		})
		return f
	}
	return &cdksaasbilling.IBilling{
		CreateCustomerFunction: &cdksaasbilling.IASyncFunction{Handler: fn("CreateCustomer", logEvent)},
		DeleteCustomerFunction: &cdksaasbilling.IASyncFunction{Handler: fn("DeleteCustomer", logEvent)},
		CreateUserFunction:     &cdksaasbilling.IASyncFunction{Handler: fn("CreateUser", logEvent)},
		DeleteUserFunction:     &cdksaasbilling.IASyncFunction{Handler: fn("DeleteUser", logEvent)},
		PutUsageFunction: &cdksaasbilling.IFunctionSchedule{
			Handler:  fn("PutUsage", pushUsage),
			Schedule: awsevents.Schedule_Rate(awscdk.Duration_Hours(jsii.Number(24))),
		},
		WebhookFunction: &cdksaasbilling.IFunctionPath{
			Path:    jsii.String("webhook"),
			Handler: fn("Webhook", webhook),
		},
	}
}

// CustomBillingStack is a billing integration of your own (mirrors
// examples/custom-billing-stack.ts): the five small functions above wired by
// BillingProvider on the account's default event bus, with the webhook on an HTTP API.
type CustomBillingStack struct {
	awscdk.Stack
	Provider cdksaasbilling.BillingProvider
	HttpApi  awsapigatewayv2.HttpApi
}

func NewCustomBillingStack(scope constructs.Construct, id string, props *awscdk.StackProps) *CustomBillingStack {
	stack := awscdk.NewStack(scope, jsii.String(id), props)
	billing := ExampleBillingFunctions(stack)
	httpAPI := ControlPlaneAPI(stack, "ControlPlaneApi")
	provider := cdksaasbilling.NewBillingProvider(stack, jsii.String("Billing"), &cdksaasbilling.BillingProviderProps{
		Billing: billing,
		HttpApi: httpAPI,
	})
	return &CustomBillingStack{Stack: stack, Provider: provider, HttpApi: httpAPI}
}
