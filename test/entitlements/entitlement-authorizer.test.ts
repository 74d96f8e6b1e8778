import { Duration, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { BillingPlans, EntitlementAuthorizer, EntitlementPeriod, Entitlements, LimitAction, UsageApi, UsageIngestor } from '../../src';
import { acknowledgeNag } from '../../src/private/nag';
import { cfnLintErrors, nagFindings, testApp } from '../support/synth';

const ISSUER = 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example';

function build(stack: Stack) {
  const ingestor = new UsageIngestor(stack, 'Ingestor');
  const plans = new BillingPlans(stack, 'Plans', {
    plans: [{ name: 'basic', metrics: [{ metric: 'apiCalls', entitlements: [{ limit: '1000', period: EntitlementPeriod.DAY, onLimit: LimitAction.BLOCK }] }] }],
  });
  const entitlements = new Entitlements(stack, 'Entitlements', { ingestor, plans });
  const authorizer = new EntitlementAuthorizer(stack, 'Authorizer', {
    entitlements, jwtIssuer: ISSUER, jwtAudience: ['client-1'], routes: [{ routeKey: 'GET /orders', metric: 'apiCalls' }],
  });
  const api = new apigwv2.HttpApi(stack, 'Api');
  const app = new lambda.Function(stack, 'App', { runtime: lambda.Runtime.NODEJS_24_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler=async()=>({})') });
  api.addRoutes({ path: '/orders', methods: [apigwv2.HttpMethod.GET], integration: new HttpLambdaIntegration('Orders', app), authorizer: authorizer.authorizer });
  return { stack, api, app, authorizer };
}

describe('EntitlementAuthorizer', () => {
  test('a Lambda authorizer with simple responses, cached per token and route key, reading the entitlements', () => {
    const { stack } = build(new Stack(testApp(), 'S'));
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerType: 'REQUEST',
      EnableSimpleResponses: true,
      IdentitySource: ['$request.header.Authorization', '$context.routeKey'],
      AuthorizerResultTtlInSeconds: 30,
      AuthorizerPayloadFormatVersion: '2.0',
    });
    t.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'GET /orders', AuthorizationType: 'CUSTOM' });
    t.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('EntitlementAuthorizer'),
      Environment: {
        Variables: Match.objectLike({
          AUTHORIZER_TENANT_CLAIM: 'custom:tenantId',
          AUTHORIZER_ROUTE_METRICS: '{"GET /orders":"apiCalls"}',
          ENTITLEMENT_READER_TABLE_NAME: { Ref: Match.stringLikeRegexp('^EntitlementsEntitlementsTable') },
        }),
      },
    });
  });

  test('fails if the props are wrong, naming every problem at once', () => {
    const stack = new Stack(testApp(), 'S');
    const { authorizer } = build(stack);
    void authorizer;
    const entitlements = stack.node.findChild('Entitlements') as Entitlements;
    expect(() => new EntitlementAuthorizer(stack, 'Bad', {
      entitlements,
      jwtIssuer: 'http://issuer',
      jwtAudience: [],
      tenantIdClaim: 'has space',
      routes: [{ routeKey: '/orders', metric: 'apiCalls' }, { routeKey: 'GET /a', metric: 'bad metric' }],
      resultsCacheTtl: Duration.hours(2),
    })).toThrow([
      'EntitlementAuthorizer at S/Bad: invalid props:',
      '- jwtIssuer (Python: jwt_issuer) must be an https URL (given \'http://issuer\'): for Cognito: https://cognito-idp.<region>.amazonaws.com/<user pool id>',
      '- jwtAudience (Python: jwt_audience) must hold at least one audience (given an array of 0): give your app client ids',
      '- tenantIdClaim (Python: tenant_id_claim) must be 1 to 128 characters of letters, digits and _ : . - (given \'has space\'): for example \'custom:tenantId\'',
      '- routes[0].routeKey (Python: routes[0].route_key) must be an HTTP API route key: a method and a path (given \'/orders\'): for example \'GET /orders\'',
      '- routes[1].metric must be 1 to 128 characters of ASCII letters, digits and _ - . : @ + = (not \'.\' or \'..\') (given \'bad metric\'): the metric as producers write it',
      '- resultsCacheTtl (Python: results_cache_ttl) must be between 0 seconds and 1 hour (given 2 hours): give a Duration from 0 seconds to 1 hour',
    ].join('\n'));
  });

  test('cdk-nag: no unacknowledged finding; cfn-lint: no error', () => {
    const findings = nagFindings((app) => {
      const { api, app: fn } = build(new Stack(app, 'S'));
      // The HTTP API, its stage and the application function stand in for the user's.
      Validations.of(api).acknowledge({ id: 'AwsSolutions-APIG1', reason: 'The user\'s HTTP API: access logging is its owner\'s choice.' });
      acknowledgeNag(fn, 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]', 'The user\'s own function.');
    });
    expect(findings).toEqual([]);
    expect(cfnLintErrors(build(new Stack(testApp('lint'), 'Lint')).stack)).toEqual([]);
  });
});

describe('UsageApi with entitlements', () => {
  test('mounts GET /usage/tenants/{tenantId}/entitlements, authorized as the other tenant routes, and binds the entitlements reader', () => {
    const stack = new Stack(testApp(), 'S');
    const { api } = build(stack);
    const usageApi = new UsageApi(stack, 'UsageApi', {
      ingestor: stack.node.findChild('Ingestor') as UsageIngestor, httpApi: api, entitlements: stack.node.findChild('Entitlements') as Entitlements,
    });
    expect(usageApi.entitlementsRoute).toBeDefined();
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'GET /usage/tenants/{tenantId}/entitlements', AuthorizationType: 'AWS_IAM' });
    t.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('usage API'),
      Environment: { Variables: Match.objectLike({ ENTITLEMENT_READER_TABLE_NAME: Match.anyValue(), PLAN_READER_TABLE_NAME: Match.anyValue() }) },
    });
  });
});
