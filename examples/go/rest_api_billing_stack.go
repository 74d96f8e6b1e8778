package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdk-saas-billing/cdk-saas-billing-go/cdksaasbilling"
)

// RestApiBillingStack is a control plane on an API Gateway REST API (mirrors
// examples/rest-api-billing-stack.ts): BillingProvider mounts Stripe's webhook on it as
// POST /billing/stripe (Lambda proxy integration, verified by its signature), StripeBilling
// tells Stripe the URL on the API's prod stage, and a UsageApi serves operators (IAM) under
// /operator/usage. Deploying the stack redeploys the stage with the new methods.
type RestApiBillingStack struct {
	awscdk.Stack
	Ingestor cdksaasbilling.UsageIngestor
	RestApi  awsapigateway.RestApi
	Billing  cdksaasbilling.StripeBilling
	Provider cdksaasbilling.BillingProvider
	UsageApi cdksaasbilling.UsageApi
}

func NewRestApiBillingStack(scope constructs.Construct, id string, props *awscdk.StackProps) *RestApiBillingStack {
	stack := awscdk.NewStack(scope, jsii.String(id), props)
	ingestor := cdksaasbilling.NewUsageIngestor(stack, jsii.String("Ingestor"), nil)
	restAPI := ControlPlaneRestAPI(stack, "ControlPlaneApi")
	billing := cdksaasbilling.NewStripeBilling(stack, jsii.String("StripeBilling"), &cdksaasbilling.StripeBillingProps{
		ApiKey:   awssecretsmanager.Secret_FromSecretNameV2(stack, jsii.String("StripeApiKey"), jsii.String("cdk-saas-billing/stripe-api-key")),
		Ingestor: ingestor,
		RestApi:  restAPI,
		Meters: &[]*cdksaasbilling.StripeMeter{
			{Metric: jsii.String("apiCalls"), EventName: jsii.String("api_calls"), DisplayName: jsii.String("API calls")},
		},
		Prices: jsii.Strings("price_1ExampleBasePlan", "price_1ExampleApiCalls"),
	})
	// TypeScript passes the construct itself; elsewhere its Billing() is the IBilling.
	provider := cdksaasbilling.NewBillingProvider(stack, jsii.String("Billing"), &cdksaasbilling.BillingProviderProps{
		Billing: billing.Billing(),
		RestApi: restAPI,
	})
	usageAPI := cdksaasbilling.NewUsageApi(stack, jsii.String("OperatorUsageApi"), &cdksaasbilling.UsageApiProps{
		Ingestor:   ingestor,
		RestApi:    restAPI,
		PathPrefix: jsii.String("/operator/usage"),
	})
	return &RestApiBillingStack{Stack: stack, Ingestor: ingestor, RestApi: restAPI, Billing: billing, Provider: provider, UsageApi: usageAPI}
}
