import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

/**
 * The control plane's HTTP API of the examples: a `$default` stage with access
 * logs and throttling, as a production API would have.
 */
export function controlPlaneApi(scope: Construct, id: string): apigwv2.HttpApi {
  const api = new apigwv2.HttpApi(scope, id, {
    description: 'Control plane API (example)',
    createDefaultStage: false,
  });
  const accessLogs = new logs.LogGroup(scope, `${id}AccessLogs`, {
    retention: logs.RetentionDays.ONE_MONTH,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  new apigwv2.HttpStage(scope, `${id}DefaultStage`, {
    httpApi: api,
    stageName: '$default',
    autoDeploy: true,
    throttle: { rateLimit: 50, burstLimit: 100 },
    accessLogSettings: { destination: new apigwv2.LogGroupLogDestination(accessLogs) },
  });
  return api;
}

/**
 * The control plane's REST API of the examples: a regional API with a `prod`
 * stage, access logs and throttling. Its cdk-nag findings are the API owner's
 * decisions, acknowledged here with the reasons of this example.
 */
export function controlPlaneRestApi(scope: Construct, id: string): apigw.RestApi {
  const accessLogs = new logs.LogGroup(scope, `${id}AccessLogs`, {
    retention: logs.RetentionDays.ONE_MONTH,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  const api = new apigw.RestApi(scope, id, {
    description: 'Control plane REST API (example)',
    endpointTypes: [apigw.EndpointType.REGIONAL],
    // The account-wide API Gateway CloudWatch Logs role is not this app's to set.
    cloudWatchRole: false,
    deployOptions: {
      stageName: 'prod',
      throttlingRateLimit: 50,
      throttlingBurstLimit: 100,
      accessLogDestination: new apigw.LogGroupLogDestination(accessLogs),
      accessLogFormat: apigw.AccessLogFormat.jsonWithStandardFields(),
    },
  });
  Validations.of(api).acknowledge(
    { id: 'AwsSolutions-APIG2', reason: 'Every method of this API is a Lambda proxy that validates its own input: the webhook verifies the signature of the raw body, the usage API answers 400 to a bad path or query.' },
    { id: 'AwsSolutions-APIG3', reason: 'Example: associate a WAFv2 web ACL with the prod stage in production.' },
    { id: 'AwsSolutions-APIG6', reason: 'Execution logs need the account-wide API Gateway CloudWatch Logs role, which this example does not set; access logs are on.' },
  );
  return api;
}
