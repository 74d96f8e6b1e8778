package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdk-saas-billing/cdk-saas-billing-go/cdksaasbilling"
)

// StripeBillingStack bills through Stripe (mirrors examples/stripe-billing-stack.ts):
// usage records become exactly-once hourly windows (UsageIngestor); each tenant gets a
// Stripe customer and a subscription to the prices, closed windows become Stripe meter
// events, and Stripe's webhook becomes the control plane's billing events (StripeBilling);
// BillingProvider wires it to the control plane's events and mounts the webhook on its
// HTTP API. `cdk deploy` creates the meters and the webhook endpoint in Stripe; the API
// key is read from the secret cdk-saas-billing/stripe-api-key.
type StripeBillingStack struct {
	awscdk.Stack
	Ingestor  cdksaasbilling.UsageIngestor
	Billing   cdksaasbilling.StripeBilling
	HttpApi   awsapigatewayv2.HttpApi
	Provider  cdksaasbilling.BillingProvider
	Dashboard cdksaasbilling.BillingDashboard
}

func NewStripeBillingStack(scope constructs.Construct, id string, props *awscdk.StackProps) *StripeBillingStack {
	stack := awscdk.NewStack(scope, jsii.String(id), props)
	ingestor := cdksaasbilling.NewUsageIngestor(stack, jsii.String("Ingestor"), nil)
	httpAPI := ControlPlaneAPI(stack, "ControlPlaneApi")
	billing := cdksaasbilling.NewStripeBilling(stack, jsii.String("StripeBilling"), &cdksaasbilling.StripeBillingProps{
		ApiKey:   awssecretsmanager.Secret_FromSecretNameV2(stack, jsii.String("StripeApiKey"), jsii.String("cdk-saas-billing/stripe-api-key")),
		Ingestor: ingestor,
		HttpApi:  httpAPI,
		Meters: &[]*cdksaasbilling.StripeMeter{
			{Metric: jsii.String("apiCalls"), EventName: jsii.String("api_calls"), DisplayName: jsii.String("API calls")},
			// Storage is metered in GB-hours with decimals; Stripe takes whole numbers: bill MB-hours, rounding up.
			{
				Metric:      jsii.String("storageGb"),
				EventName:   jsii.String("storage_mb_hours"),
				DisplayName: jsii.String("Storage (MB-hours)"),
				Multiplier:  jsii.String("1000"),
				Rounding:    cdksaasbilling.StripeMeterRounding_UP,
			},
		},
		Prices: jsii.Strings("price_1ExampleBasePlan", "price_1ExampleApiCalls", "price_1ExampleStorage"),
	})
	// TypeScript passes the construct itself; elsewhere its Billing() is the IBilling.
	provider := cdksaasbilling.NewBillingProvider(stack, jsii.String("Billing"), &cdksaasbilling.BillingProviderProps{
		Billing: billing.Billing(),
		HttpApi: httpAPI,
	})
	// One CloudWatch dashboard of the pipeline: every alarm, then ingest, push and delivery metrics.
	dashboard := cdksaasbilling.NewBillingDashboard(stack, jsii.String("Dashboard"), &cdksaasbilling.BillingDashboardProps{
		Ingestor:        ingestor,
		StripeBilling:   billing,
		BillingProvider: provider,
	})
	return &StripeBillingStack{Stack: stack, Ingestor: ingestor, Billing: billing, HttpApi: httpAPI, Provider: provider, Dashboard: dashboard}
}
