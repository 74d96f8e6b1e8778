package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdk-saas-billing/cdk-saas-billing-go/cdksaasbilling"
)

// DynamoDbBillingStack is the ready billing pipeline on its defaults (mirrors
// examples/dynamodb-billing-stack.ts): usage records on a Kinesis data stream become
// exactly-once hourly aggregates (UsageIngestor); customers, users and priced charges are
// kept in DynamoDB (DynamoDbBilling); and BillingProvider wires it all to the control
// plane's events on the account's default bus, the daily usage push and the signed webhook
// on the control plane's HTTP API.
type DynamoDbBillingStack struct {
	awscdk.Stack
	Ingestor  cdksaasbilling.UsageIngestor
	Billing   cdksaasbilling.DynamoDbBilling
	HttpApi   awsapigatewayv2.HttpApi
	Provider  cdksaasbilling.BillingProvider
	Dashboard cdksaasbilling.BillingDashboard
}

func NewDynamoDbBillingStack(scope constructs.Construct, id string, props *awscdk.StackProps) *DynamoDbBillingStack {
	stack := awscdk.NewStack(scope, jsii.String(id), props)
	ingestor := cdksaasbilling.NewUsageIngestor(stack, jsii.String("Ingestor"), nil)
	billing := cdksaasbilling.NewDynamoDbBilling(stack, jsii.String("DynamoDbBilling"), &cdksaasbilling.DynamoDbBillingProps{
		Ingestor: ingestor,
		UnitPrices: &[]*cdksaasbilling.MetricUnitPrice{
			{Metric: jsii.String("apiCalls"), UnitPrice: jsii.String("0.0025")},
			{Metric: jsii.String("storageGb"), UnitPrice: jsii.String("0.10")},
		},
	})
	httpAPI := ControlPlaneAPI(stack, "ControlPlaneApi")
	// TypeScript passes the construct itself; elsewhere its Billing() is the IBilling.
	provider := cdksaasbilling.NewBillingProvider(stack, jsii.String("Billing"), &cdksaasbilling.BillingProviderProps{
		Billing: billing.Billing(),
		HttpApi: httpAPI,
	})
	// One CloudWatch dashboard of the pipeline: every alarm, then ingest, push and delivery metrics.
	dashboard := cdksaasbilling.NewBillingDashboard(stack, jsii.String("Dashboard"), &cdksaasbilling.BillingDashboardProps{
		Ingestor:        ingestor,
		DynamoDbBilling: billing,
		BillingProvider: provider,
	})
	return &DynamoDbBillingStack{Stack: stack, Ingestor: ingestor, Billing: billing, HttpApi: httpAPI, Provider: provider, Dashboard: dashboard}
}
