import { Duration, RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { controlPlaneApi } from './control-plane-api';
import { BillingProvider, IBilling, LibraryFunctions } from '../src';

/**
 * Five small functions that fill `IBilling`: each only logs what it receives;
 * put your billing system's calls in their place. Plain data: no class to write.
 */
export function exampleBillingFunctions(scope: Construct): IBilling {
  const fn = (name: string, body: string) => {
    const logGroup = new logs.LogGroup(scope, `${name}Logs`, {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // A role that may write the function's own log group, and nothing else (no managed policy):
    // BillingProvider adds what the wiring needs (the on-failure destination).
    const role = new iam.Role(scope, `${name}Role`, { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    logGroup.grantWrite(role);
    const f = new lambda.Function(scope, name, {
      // The runtime the library's own functions get: the newest Node.js runtime of your aws-cdk-lib
      // (cdk-nag's AwsSolutions-L1 flags any older one).
      runtime: LibraryFunctions.newestNodeRuntime(),
      handler: 'index.handler',
      code: lambda.Code.fromInline(body),
      timeout: Duration.seconds(10),
      logGroup,
      role,
    });
    return f;
  };
  const logEvent = 'exports.handler = async (event) => { console.log(JSON.stringify({ detailType: event["detail-type"], tenantId: event.detail && event.detail.tenantId })); };';
  return {
    createCustomerFunction: { handler: fn('CreateCustomer', logEvent) },
    deleteCustomerFunction: { handler: fn('DeleteCustomer', logEvent) },
    createUserFunction: { handler: fn('CreateUser', logEvent) },
    deleteUserFunction: { handler: fn('DeleteUser', logEvent) },
    putUsageFunction: {
      handler: fn('PutUsage', 'exports.handler = async () => { console.log("push usage"); };'),
      schedule: events.Schedule.rate(Duration.hours(24)),
    },
    webhookFunction: {
      path: 'webhook',
      handler: fn('Webhook', 'exports.handler = async () => ({ statusCode: 401, body: "signature verification not implemented" });'),
    },
  };
}

/**
 * A billing integration of your own: the five small functions above wired by
 * `BillingProvider` on the account's default event bus, with the webhook
 * mounted on an HTTP API.
 */
export class CustomBillingStack extends Stack {
  public readonly provider: BillingProvider;
  public readonly httpApi: apigwv2.HttpApi;

  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);
    const billing = exampleBillingFunctions(this);
    this.httpApi = controlPlaneApi(this, 'ControlPlaneApi');
    this.provider = new BillingProvider(this, 'Billing', { billing, httpApi: this.httpApi });
  }
}
