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
