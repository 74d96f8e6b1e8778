package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdk-saas-billing/cdk-saas-billing-go/cdksaasbilling"
)

// MarketplaceBillingStack sells through AWS Marketplace (mirrors
// examples/marketplace-billing-stack.ts): usage records become exactly-once hourly windows
// (UsageIngestor); the product's fulfillment URL is POST /billing/marketplace on the control
// plane's HTTP API; the onboarding request carries the registration id back; each closed
// hour becomes one BatchMeterUsage record per dimension (MarketplaceBilling);
// BillingProvider wires it to the control plane's events and mounts the fulfillment URL.
// Deploy it in us-east-1.
type MarketplaceBillingStack struct {
	awscdk.Stack
	Ingestor cdksaasbilling.UsageIngestor
	Billing  cdksaasbilling.MarketplaceBilling
	HttpApi  awsapigatewayv2.HttpApi
	Provider cdksaasbilling.BillingProvider
}

func NewMarketplaceBillingStack(scope constructs.Construct, id string, props *awscdk.StackProps) *MarketplaceBillingStack {
	stack := awscdk.NewStack(scope, jsii.String(id), props)
	ingestor := cdksaasbilling.NewUsageIngestor(stack, jsii.String("Ingestor"), nil)
	httpAPI := ControlPlaneAPI(stack, "ControlPlaneApi")
	billing := cdksaasbilling.NewMarketplaceBilling(stack, jsii.String("MarketplaceBilling"), &cdksaasbilling.MarketplaceBillingProps{
		ProductCode:         jsii.String("prod-example7xyz1234"),
		RegistrationPageUrl: jsii.String("https://app.example.com/marketplace/register"),
		Ingestor:            ingestor,
		Dimensions: &[]*cdksaasbilling.MarketplaceDimension{
			// Priced per thousand API calls: the remainders are carried within the month.
			{Metric: jsii.String("apiCalls"), Dimension: jsii.String("api_calls_thousands"), Multiplier: jsii.String("0.001")},
			{Metric: jsii.String("storageGb"), Dimension: jsii.String("storage_gb_hours"), Rounding: cdksaasbilling.MarketplaceRounding_UP},
		},
		ContractEntitlements: jsii.Bool(true),
	})
	// TypeScript passes the construct itself; elsewhere its Billing() is the IBilling.
	provider := cdksaasbilling.NewBillingProvider(stack, jsii.String("Billing"), &cdksaasbilling.BillingProviderProps{
		Billing: billing.Billing(),
		HttpApi: httpAPI,
	})
	return &MarketplaceBillingStack{Stack: stack, Ingestor: ingestor, Billing: billing, HttpApi: httpAPI, Provider: provider}
}
