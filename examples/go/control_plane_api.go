package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// accessLogSettings implements awsapigatewayv2.IAccessLogSettings: aws-cdk-lib types
// HttpStageProps.AccessLogSettings as an interface rather than a struct (its name starts
// with I), so Go implements it where TypeScript passes { destination }.
type accessLogSettings struct {
	destination awsapigatewayv2.IAccessLogDestination
}

func (s *accessLogSettings) Destination() awsapigatewayv2.IAccessLogDestination {
	return s.destination
}

func (s *accessLogSettings) Format() awsapigateway.AccessLogFormat {
	return nil
}

// ControlPlaneAPI is the control plane's HTTP API of the examples (mirrors
// examples/control-plane-api.ts): a $default stage with access logs and throttling.
func ControlPlaneAPI(scope constructs.Construct, id string) awsapigatewayv2.HttpApi {
	api := awsapigatewayv2.NewHttpApi(scope, jsii.String(id), &awsapigatewayv2.HttpApiProps{
		Description:        jsii.String("Control plane API (example)"),
		CreateDefaultStage: jsii.Bool(false),
	})
	accessLogs := awslogs.NewLogGroup(scope, jsii.String(id+"AccessLogs"), &awslogs.LogGroupProps{
		Retention:     awslogs.RetentionDays_ONE_MONTH,
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	awsapigatewayv2.NewHttpStage(scope, jsii.String(id+"DefaultStage"), &awsapigatewayv2.HttpStageProps{
		HttpApi:    api,
		StageName:  jsii.String("$default"),
		AutoDeploy: jsii.Bool(true),
		Throttle: &awsapigatewayv2.ThrottleSettings{
			RateLimit:  jsii.Number(50),
			BurstLimit: jsii.Number(100),
		},
		AccessLogSettings: &accessLogSettings{
			destination: awsapigatewayv2.NewLogGroupLogDestination(accessLogs),
		},
	})
	return api
}

// ControlPlaneRestAPI is the control plane's REST API of the examples (mirrors
// examples/control-plane-api.ts): a regional API with a prod stage, access logs and
// throttling. Its cdk-nag findings are the API owner's decisions, acknowledged here with the
// reasons of this example.
func ControlPlaneRestAPI(scope constructs.Construct, id string) awsapigateway.RestApi {
	accessLogs := awslogs.NewLogGroup(scope, jsii.String(id+"AccessLogs"), &awslogs.LogGroupProps{
		Retention:     awslogs.RetentionDays_ONE_MONTH,
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	api := awsapigateway.NewRestApi(scope, jsii.String(id), &awsapigateway.RestApiProps{
		Description:   jsii.String("Control plane REST API (example)"),
		EndpointTypes: &[]awsapigateway.EndpointType{awsapigateway.EndpointType_REGIONAL},
		// The account-wide API Gateway CloudWatch Logs role is not this app's to set.
		CloudWatchRole: jsii.Bool(false),
		DeployOptions: &awsapigateway.StageOptions{
			StageName:            jsii.String("prod"),
			ThrottlingRateLimit:  jsii.Number(50),
			ThrottlingBurstLimit: jsii.Number(100),
			AccessLogDestination: awsapigateway.NewLogGroupLogDestination(accessLogs),
			AccessLogFormat:      awsapigateway.AccessLogFormat_JsonWithStandardFields(nil),
		},
	})
	awscdk.Validations_Of(api).Acknowledge(
		&awscdk.Acknowledgment{
			Id:     jsii.String("AwsSolutions-APIG2"),
			Reason: jsii.String("Every method of this API is a Lambda proxy that validates its own input: the webhook verifies the signature of the raw body, the usage API answers 400 to a bad path or query."),
		},
		&awscdk.Acknowledgment{
			Id:     jsii.String("AwsSolutions-APIG3"),
			Reason: jsii.String("Example: associate a WAFv2 web ACL with the prod stage in production."),
		},
		&awscdk.Acknowledgment{
			Id:     jsii.String("AwsSolutions-APIG6"),
			Reason: jsii.String("Execution logs need the account-wide API Gateway CloudWatch Logs role, which this example does not set; access logs are on."),
		},
	)
	return api
}
