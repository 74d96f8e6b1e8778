package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdk-saas-billing/cdk-saas-billing-go/cdksaasbilling"
)

// UsageApiStack makes usage readable over HTTP (mirrors examples/usage-api-stack.ts): the
// ready pipeline (UsageIngestor, DynamoDbBilling, BillingProvider) plus two usage APIs on
// the control plane's HTTP API:
//
//   - /usage/... for tenants: an SBT tenant's Cognito ID token (claim custom:tenantId) reads
//     only that tenant's closed windows and open totals; the closed-window feed
//     /usage/windows stays IAM;
//   - /operator/usage/... for AWS identities (SigV4): any tenant, and the feed.
//
// The tenants' user pool is the control plane's (SBT creates it): its id and app client id
// are parameters of the stack.
type UsageApiStack struct {
	awscdk.Stack
	Ingestor         cdksaasbilling.UsageIngestor
	HttpApi          awsapigatewayv2.HttpApi
	TenantUsageApi   cdksaasbilling.UsageApi
	OperatorUsageApi cdksaasbilling.UsageApi
}

func NewUsageApiStack(scope constructs.Construct, id string, props *awscdk.StackProps) *UsageApiStack {
	stack := awscdk.NewStack(scope, jsii.String(id), props)
	userPoolID := awscdk.NewCfnParameter(stack, jsii.String("TenantUserPoolId"), &awscdk.CfnParameterProps{
		Description: jsii.String("Id of the Cognito user pool that signs the tenants' tokens (SBT control plane)"),
		Default:     jsii.String("us-east-1_EXAMPLE"),
	})
	userPoolClientID := awscdk.NewCfnParameter(stack, jsii.String("TenantUserPoolClientId"), &awscdk.CfnParameterProps{
		Description: jsii.String("App client id of that user pool (the audience of its ID tokens)"),
		Default:     jsii.String("1example23456789"),
	})

	ingestor := cdksaasbilling.NewUsageIngestor(stack, jsii.String("Ingestor"), nil)
	billing := cdksaasbilling.NewDynamoDbBilling(stack, jsii.String("DynamoDbBilling"), &cdksaasbilling.DynamoDbBillingProps{
		Ingestor:   ingestor,
		UnitPrices: &[]*cdksaasbilling.MetricUnitPrice{{Metric: jsii.String("apiCalls"), UnitPrice: jsii.String("0.0025")}},
	})
	httpAPI := ControlPlaneAPI(stack, "ControlPlaneApi")
	cdksaasbilling.NewBillingProvider(stack, jsii.String("Billing"), &cdksaasbilling.BillingProviderProps{
		Billing: billing.Billing(),
		HttpApi: httpAPI,
	})

	tenantUsageAPI := cdksaasbilling.NewUsageApi(stack, jsii.String("TenantUsageApi"), &cdksaasbilling.UsageApiProps{
		Ingestor: ingestor,
		HttpApi:  httpAPI,
		Authorization: cdksaasbilling.UsageApiAuthorization_Jwt(&cdksaasbilling.UsageApiJwtOptions{
			Issuer:   jsii.String("https://cognito-idp." + *stack.Region() + ".amazonaws.com/" + *userPoolID.ValueAsString()),
			Audience: &[]*string{userPoolClientID.ValueAsString()},
		}),
	})
	operatorUsageAPI := cdksaasbilling.NewUsageApi(stack, jsii.String("OperatorUsageApi"), &cdksaasbilling.UsageApiProps{
		Ingestor:   ingestor,
		HttpApi:    httpAPI,
		PathPrefix: jsii.String("/operator/usage"),
	})
	return &UsageApiStack{Stack: stack, Ingestor: ingestor, HttpApi: httpAPI, TenantUsageApi: tenantUsageAPI, OperatorUsageApi: operatorUsageAPI}
}
