// The example billing app in Go: the same stacks, stack names and construct IDs as
// examples/app.ts, from the Go module built by `npx projen package:go`.
//
//	go run .          # or: cdk synth
package main

import (
	"os"
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
)

// AddExampleStacks adds the example stacks to an app.
func AddExampleStacks(app awscdk.App) []awscdk.Stack {
	return []awscdk.Stack{
		NewDynamoDbBillingStack(app, "DynamoDbBillingExample", &awscdk.StackProps{
			Description: jsii.String("cdk-saas-billing example: the ready pipeline (UsageIngestor, DynamoDbBilling) wired by BillingProvider"),
		}).Stack,
		NewCustomBillingStack(app, "CustomBillingExample", &awscdk.StackProps{
			Description: jsii.String("cdk-saas-billing example: BillingProvider wiring a billing integration of small functions"),
		}).Stack,
		NewStripeBillingStack(app, "StripeBillingExample", &awscdk.StackProps{
			Description: jsii.String("cdk-saas-billing example: billing through Stripe (UsageIngestor, StripeBilling) wired by BillingProvider"),
		}).Stack,
		NewMarketplaceBillingStack(app, "MarketplaceBillingExample", &awscdk.StackProps{
			Description: jsii.String("cdk-saas-billing example: selling through AWS Marketplace (UsageIngestor, MarketplaceBilling) wired by BillingProvider"),
		}).Stack,
		NewUsageApiStack(app, "UsageApiExample", &awscdk.StackProps{
			Description: jsii.String("cdk-saas-billing example: usage readable over HTTP (UsageApi), tenants with their tokens, operators with IAM"),
		}).Stack,
		NewRestApiBillingStack(app, "RestApiBillingExample", &awscdk.StackProps{
			Description: jsii.String("cdk-saas-billing example: a control plane on an API Gateway REST API (StripeBilling's webhook and a UsageApi on it)"),
		}).Stack,
	}
}

func main() {
	defer jsii.Close()
	outdir := os.Getenv("CDK_OUTDIR")
	if outdir == "" {
		outdir, _ = filepath.Abs("cdk.out")
	}
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(outdir)})
	AddExampleStacks(app)
	app.Synth(nil)
}
