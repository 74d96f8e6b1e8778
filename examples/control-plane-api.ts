import { RemovalPolicy } from 'aws-cdk-lib';
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
