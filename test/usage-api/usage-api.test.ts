import { Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaAuthorizer, HttpLambdaResponseType } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import { UsageIngestor } from '../../src/ingestor';
import { UsageApi, UsageApiAuthorization, UsageApiProps } from '../../src/usage-api';
import { cfnLintErrors, nagFindings, testApp } from '../support/synth';

const ISSUER = 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example';

/** A usage API on an ingestor and an HTTP API; `template` synthesizes (add to the stack before reading it). */
function stackWith(props: Partial<UsageApiProps> = {}, stack = new Stack(testApp('usage-api'), 'Stack')) {
  const ingestor = new UsageIngestor(stack, 'Ingestor');
  const httpApi = new apigwv2.HttpApi(stack, 'Api');
  const api = new UsageApi(stack, 'UsageApi', { ingestor, httpApi, ...props });
  return { stack, api, ingestor, httpApi, get template() { return Template.fromStack(stack); } };
}

/** The routes of the template: route key -> authorization type. */
function routes(template: Template): Record<string, string> {
  return Object.fromEntries(Object.values(template.findResources('AWS::ApiGatewayV2::Route'))
    .map((r: any) => [r.Properties.RouteKey, r.Properties.AuthorizationType]));
}

/** The policy statements of the role whose logical id starts with `prefix`. */
function statementsOf(template: Template, prefix: string): any[] {
  const policies = template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: Match.stringLikeRegexp(`^${prefix}`) }] } });
  return Object.values(policies).flatMap((p: any) => p.Properties.PolicyDocument.Statement);
}

describe('defaults: IAM authorization on every route', () => {
  const { template, api } = stackWith();

  test('three GET routes under /usage, each AWS_IAM, one integration', () => {
    expect(routes(template)).toEqual({
      'GET /usage/tenants/{tenantId}/windows': 'AWS_IAM',
      'GET /usage/tenants/{tenantId}/open': 'AWS_IAM',
      'GET /usage/windows': 'AWS_IAM',
    });
    template.resourceCountIs('AWS::ApiGatewayV2::Integration', 1);
    template.resourceCountIs('AWS::ApiGatewayV2::Authorizer', 0);
    expect(api.pathPrefix).toBe('/usage');
  });

  test('one bundled handler with its settings and the usage read contract\'s environment, reading the usage table only', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^cdk-saas-billing usage API'),
      Timeout: 25,
      Environment: {
        Variables: Match.objectLike({
          USAGE_API_PATH_PREFIX: '/usage',
          USAGE_API_AUTH_MODE: 'IAM',
          USAGE_READER_TABLE_NAME: { Ref: Match.stringLikeRegexp('^IngestorAggregateTable') },
          USAGE_READER_WINDOW_GRANULARITY: 'HOUR',
        }),
      },
    });
    const statements = statementsOf(template, 'UsageApiHandlerRole');
    expect(statements.flatMap((s) => [].concat(s.Action))).toEqual(expect.arrayContaining(['dynamodb:Query', 'dynamodb:GetItem']));
    expect(statements.flatMap((s) => [].concat(s.Action)).filter((a: string) => a.startsWith('dynamodb:')).sort()).toEqual(['dynamodb:GetItem', 'dynamodb:Query']);
  });

  test('an alarm on handler errors, and the base URL as an output', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Errors',
      Namespace: 'AWS/Lambda',
      Threshold: 1,
      TreatMissingData: 'notBreaching',
      AlarmDescription: Match.stringLikeRegexp('usage API handler failed'),
    });
    expect(api.alarms).toHaveLength(1);
    template.hasOutput('*', { Value: { 'Fn::Join': ['', [Match.anyValue(), '/usage']] } });
  });

  test('grantInvoke allows execute-api:Invoke on exactly the three routes, any stage', () => {
    const { stack, api: usageApi } = stackWith();
    const role = new iam.Role(stack, 'Reader', { assumedBy: new iam.AccountRootPrincipal() });
    usageApi.grantInvoke(role);
    const statements = statementsOf(Template.fromStack(stack), 'Reader');
    expect(statements).toHaveLength(1);
    expect(statements[0].Action).toBe('execute-api:Invoke');
    const paths = statements[0].Resource.map((r: any) => JSON.stringify(r).match(/\/\*\/GET[^"]*/)![0]);
    expect(paths).toEqual(['/*/GET/usage/tenants/*/windows', '/*/GET/usage/tenants/*/open', '/*/GET/usage/windows']);
  });
});

describe('tenant tokens', () => {
  test('jwt(): the tenant routes take the JWT authorizer (issuer, audience), the feed stays IAM, the claim defaults to custom:tenantId', () => {
    const { template, api } = stackWith({ authorization: UsageApiAuthorization.jwt({ issuer: ISSUER, audience: ['client-1'] }) });
    expect(routes(template)).toEqual({
      'GET /usage/tenants/{tenantId}/windows': 'JWT',
      'GET /usage/tenants/{tenantId}/open': 'JWT',
      'GET /usage/windows': 'AWS_IAM',
    });
    template.resourceCountIs('AWS::ApiGatewayV2::Authorizer', 1);
    template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerType: 'JWT',
      JwtConfiguration: { Issuer: ISSUER, Audience: ['client-1'] },
      IdentitySource: ['$request.header.Authorization'],
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ USAGE_API_AUTH_MODE: 'TENANT_TOKEN', USAGE_API_TENANT_CLAIM: 'custom:tenantId' }) },
    });
    expect(api.tenantClaim).toBe('custom:tenantId');
  });

  test('grantInvoke with tenant tokens allows only the feed', () => {
    const { stack, api } = stackWith({ authorization: UsageApiAuthorization.jwt({ issuer: ISSUER, audience: ['client-1'], tenantClaim: 'tenant_id' }) });
    const role = new iam.Role(stack, 'Reader', { assumedBy: new iam.AccountRootPrincipal() });
    api.grantInvoke(role);
    const template = Template.fromStack(stack);
    const [statement] = statementsOf(template, 'Reader');
    expect([].concat(statement.Resource).map((r: any) => JSON.stringify(r).match(/\/\*\/GET[^"]*/)![0])).toEqual(['/*/GET/usage/windows']);
    template.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ USAGE_API_TENANT_CLAIM: 'tenant_id' }) } });
  });

  test('tenantAuthorizer(): a user\'s Lambda authorizer on the tenant routes, with its context key', () => {
    const stack = new Stack(testApp('usage-api'), 'Stack');
    const fn = new lambda.Function(stack, 'AuthFn', {
      runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = async () => ({ isAuthorized: false });'),
    });
    const authorizer = new HttpLambdaAuthorizer('TenantAuth', fn, { responseTypes: [HttpLambdaResponseType.SIMPLE] });
    const { template } = stackWith({ authorization: UsageApiAuthorization.tenantAuthorizer(authorizer, { tenantClaim: 'tenantId' }) }, stack);
    expect(routes(template)).toEqual({
      'GET /usage/tenants/{tenantId}/windows': 'CUSTOM',
      'GET /usage/tenants/{tenantId}/open': 'CUSTOM',
      'GET /usage/windows': 'AWS_IAM',
    });
    template.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ USAGE_API_TENANT_CLAIM: 'tenantId' }) } });
  });

  test('two usage APIs with JWTs on one HTTP API get an authorizer each', () => {
    const stack = new Stack(testApp('usage-api'), 'Stack');
    const ingestor = new UsageIngestor(stack, 'Ingestor');
    const httpApi = new apigwv2.HttpApi(stack, 'Api');
    const authorization = () => UsageApiAuthorization.jwt({ issuer: ISSUER, audience: ['client-1'] });
    new UsageApi(stack, 'One', { ingestor, httpApi, authorization: authorization() });
    new UsageApi(stack, 'Two', { ingestor, httpApi, authorization: authorization(), pathPrefix: '/v2/usage' });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::ApiGatewayV2::Authorizer', 2);
    template.resourceCountIs('AWS::ApiGatewayV2::Route', 6);
  });
});

test('pathPrefix, alarmActions and logRetention are applied', () => {
  const stack = new Stack(testApp('usage-api'), 'Stack');
  const topic = new sns.Topic(stack, 'Alarms');
  const { template } = stackWith({
    pathPrefix: '/billing/usage',
    alarmActions: [{ bind: () => ({ alarmActionArn: topic.topicArn }) }],
    logRetention: logs.RetentionDays.ONE_MONTH,
  }, stack);
  expect(Object.keys(routes(template)).sort()).toEqual([
    'GET /billing/usage/tenants/{tenantId}/open', 'GET /billing/usage/tenants/{tenantId}/windows', 'GET /billing/usage/windows',
  ]);
  template.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmActions: [{ Ref: Match.stringLikeRegexp('^Alarms') }] });
  template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
});

describe('on a REST API', () => {
  function restStack(authorization?: (stack: Stack, api: apigw.RestApi) => UsageApiAuthorization, stack = new Stack(testApp('usage-api'), 'Stack')) {
    const ingestor = new UsageIngestor(stack, 'Ingestor');
    const restApi = new apigw.RestApi(stack, 'RestApi', { cloudWatchRole: false });
    restApi.root.addResource('health').addMethod('GET', new apigw.MockIntegration(), { authorizationType: apigw.AuthorizationType.IAM });
    const api = new UsageApi(stack, 'UsageApi', { ingestor, restApi, authorization: authorization?.(stack, restApi) });
    return { stack, api, restApi, get template() { return Template.fromStack(stack); } };
  }

  /** The methods of the template: resource path -> authorization type. */
  function methods(template: Template): Record<string, string> {
    const resources = template.findResources('AWS::ApiGateway::Resource');
    const pathOf = (ref: any): string => {
      if (!ref?.Ref || !resources[ref.Ref]) return '';
      const r = resources[ref.Ref].Properties;
      return `${pathOf(r.ParentId)}/${r.PathPart}`;
    };
    return Object.fromEntries(Object.values(template.findResources('AWS::ApiGateway::Method'))
      .map((m: any) => [`${m.Properties.HttpMethod} ${pathOf(m.Properties.ResourceId)}`, m.Properties.AuthorizationType]));
  }

  test('IAM: three GET methods with a Lambda proxy integration, AWS_IAM each, and the deployment stage\'s URL', () => {
    const { template, api } = restStack();
    expect(methods(template)).toEqual({
      'GET /health': 'AWS_IAM',
      'GET /usage/tenants/{tenantId}/windows': 'AWS_IAM',
      'GET /usage/tenants/{tenantId}/open': 'AWS_IAM',
      'GET /usage/windows': 'AWS_IAM',
    });
    template.resourcePropertiesCountIs('AWS::ApiGateway::Method', { Integration: { Type: 'AWS_PROXY', IntegrationHttpMethod: 'POST' } }, 3);
    expect(api.tenantWindowsMethod).toBeDefined();
    expect(api.tenantWindowsRoute).toBeUndefined();
    template.hasOutput('*', { Description: Match.stringLikeRegexp('REST API\'s deployment stage') });
  });

  test('restTenantAuthorizer(): a Cognito user pools authorizer on the tenant methods, the feed stays IAM', () => {
    const { template } = restStack((stack) => UsageApiAuthorization.restTenantAuthorizer(new apigw.CognitoUserPoolsAuthorizer(stack, 'Tenants', {
      cognitoUserPools: [new cognito.UserPool(stack, 'Pool')],
    })));
    expect(methods(template)).toMatchObject({
      'GET /usage/tenants/{tenantId}/windows': 'COGNITO_USER_POOLS',
      'GET /usage/tenants/{tenantId}/open': 'COGNITO_USER_POOLS',
      'GET /usage/windows': 'AWS_IAM',
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ USAGE_API_AUTH_MODE: 'TENANT_TOKEN', USAGE_API_TENANT_CLAIM: 'custom:tenantId' }) },
    });
  });

  test('grantInvoke names the REST API\'s routes', () => {
    const { stack, api } = restStack();
    const role = new iam.Role(stack, 'Reader', { assumedBy: new iam.AccountRootPrincipal() });
    api.grantInvoke(role);
    const [statement] = statementsOf(Template.fromStack(stack), 'Reader');
    expect(JSON.stringify(statement.Resource)).toContain('RestApi');
    expect(statement.Resource.map((r: any) => JSON.stringify(r).match(/\/\*\/GET[^"]*/)![0])).toEqual(['/*/GET/usage/tenants/*/windows', '/*/GET/usage/tenants/*/open', '/*/GET/usage/windows']);
  });

  test('fails if an HTTP API authorizer is given for a REST API, or a method exists on the path already', () => {
    expect(() => restStack(() => UsageApiAuthorization.jwt({ issuer: ISSUER, audience: ['c'] })))
      .toThrow(/authorization is for HTTP APIs \(API Gateway REST APIs have no JWT or HTTP route authorizers\) \(given 'UsageApiAuthorization.jwt\(\)'\): use UsageApiAuthorization.restTenantAuthorizer/);
    const stack = new Stack(testApp('usage-api'), 'Stack');
    const ingestor = new UsageIngestor(stack, 'Ingestor');
    const restApi = new apigw.RestApi(stack, 'RestApi', { cloudWatchRole: false });
    restApi.root.resourceForPath('/usage/windows').addMethod('GET', new apigw.MockIntegration());
    expect(() => new UsageApi(stack, 'UsageApi', { ingestor, restApi }))
      .toThrow(/mounts GET \/usage\/windows on the REST API Stack\/RestApi, which already has that route \(Stack\/RestApi\/Default\/usage\/windows\/GET\)/);
  });

  test('fails if both APIs or neither is given', () => {
    const stack = new Stack(testApp('usage-api'), 'Stack');
    const ingestor = new UsageIngestor(stack, 'Ingestor');
    expect(() => new UsageApi(stack, 'Neither', { ingestor }))
      .toThrow(/httpApi \(Python: http_api\) or restApi is required \(given undefined\)/);
    expect(() => new UsageApi(stack, 'Both', { ingestor, httpApi: new apigwv2.HttpApi(stack, 'H'), restApi: new apigw.RestApi(stack, 'R') }))
      .toThrow(/restApi \(Python: rest_api\) cannot be given with httpApi/);
  });

  test('no unacknowledged cdk-nag finding of the construct, with IAM and with a Cognito authorizer; no cfn-lint error', () => {
    const build = (app: any, name: string, cognitoAuth: boolean) => {
      const { restApi, stack } = restStack(cognitoAuth ? (s) => UsageApiAuthorization.restTenantAuthorizer(new apigw.CognitoUserPoolsAuthorizer(s, 'Tenants', {
        cognitoUserPools: [new cognito.UserPool(s, 'Pool', { passwordPolicy: { minLength: 12, requireSymbols: true, requireDigits: true, requireLowercase: true, requireUppercase: true }, mfa: cognito.Mfa.REQUIRED, mfaSecondFactor: { sms: false, otp: true } })],
      })) : undefined, new Stack(app, name));
      // The REST API and its stage are the user's: logging, request validation and WAF are their choices.
      for (const id of ['AwsSolutions-APIG1', 'AwsSolutions-APIG2', 'AwsSolutions-APIG3', 'AwsSolutions-APIG6']) {
        Validations.of(restApi).acknowledge({ id, reason: 'The test stands in for the user\'s REST API.' });
      }
      Validations.of(restApi.root.getResource('health')!).acknowledge({ id: 'AwsSolutions-COG4', reason: 'The user\'s own IAM method.' });
      const pool = stack.node.tryFindChild('Pool');
      for (const id of ['AwsSolutions-COG3', 'AwsSolutions-COG8']) if (pool) Validations.of(pool).acknowledge({ id, reason: 'The test stands in for the user\'s user pool.' });
      return stack;
    };
    expect(nagFindings((app) => build(app, 'UsageApiRestNag', false))).toEqual([]);
    expect(nagFindings((app) => build(app, 'UsageApiRestCognitoNag', true))).toEqual([]);
    expect(cfnLintErrors(build(testApp('lint'), 'UsageApiRestLint', true))).toEqual([]);
  });
});

describe('validation', () => {
  test('fails if the props are wrong, naming every problem at once', () => {
    const stack = new Stack(testApp('usage-api'), 'Stack');
    expect(() => new UsageApi(stack, 'UsageApi', {
      ingestor: {} as any,
      httpApi: undefined as any,
      pathPrefix: 'usage/',
      authorization: UsageApiAuthorization.jwt({ issuer: 'http://issuer', audience: [], tenantClaim: 'has space' }),
    })).toThrow([
      'UsageApi at Stack/UsageApi: invalid props:',
      '- ingestor must be a usage ingestor (IDataIngestorAggregator) (given an object with keys []): pass the UsageIngestor whose usage the API reads',
      '- httpApi (Python: http_api) or restApi is required (given undefined): pass your control plane\'s HTTP API (apigwv2.IHttpApi) or REST API (apigateway.IRestApi)',
      '- pathPrefix (Python: path_prefix) must be segments of letters, digits and - . _ ~, each after a slash, at most 128 characters (given \'usage/\'): give for example \'/usage\' (no trailing slash, no {parameters})',
      '- authorization.issuer must be the https URL of the token issuer (given \'http://issuer\'): give for example `https://cognito-idp.<region>.amazonaws.com/<user pool id>`',
      '- authorization.audience must list at least one audience (given an array of 0): give the app client ids of the user pool',
      '- authorization.tenantClaim (Python: authorization.tenant_claim) must be a claim name of 1 to 256 printable ASCII characters (given \'has space\'): give for example \'custom:tenantId\'',
    ].join('\n'));
  });

  test.each([['/usage/'], ['/usage/{id}'], ['/us age'], ['']])('fails if pathPrefix is %j', (pathPrefix) => {
    expect(() => stackWith({ pathPrefix })).toThrow(/pathPrefix \(Python: path_prefix\) must be segments of letters/);
  });

  test('fails if another construct has one of the routes on that HTTP API', () => {
    const stack = new Stack(testApp('usage-api'), 'Stack');
    const ingestor = new UsageIngestor(stack, 'Ingestor');
    const httpApi = new apigwv2.HttpApi(stack, 'Api');
    new UsageApi(stack, 'First', { ingestor, httpApi });
    expect(() => new UsageApi(stack, 'Second', { ingestor, httpApi }))
      .toThrow(/pathPrefix \(Python: path_prefix\) mounts GET \/usage\/tenants\/\{tenantId\}\/windows on the HTTP API Stack\/Api, which already has that route \(Stack\/First\/TenantWindowsRoute\) \(given '\/usage'\): give this usage API another pathPrefix/);
  });

  test('fails if tenantAuthorizer() is given the IAM authorizer', () => {
    const { HttpIamAuthorizer } = jest.requireActual('aws-cdk-lib/aws-apigatewayv2-authorizers');
    expect(() => stackWith({ authorization: UsageApiAuthorization.tenantAuthorizer(new HttpIamAuthorizer()) }))
      .toThrow(/authorization must be a tenant token authorizer \(JWT, Cognito user pool or Lambda\)/);
  });
});

describe('cdk-nag (AwsSolutions, cdk-nag 3) and cfn-lint', () => {
  function build(stack: Stack, authorization?: UsageApiAuthorization) {
    const { httpApi, api } = stackWith({ authorization }, stack);
    // The HTTP API is the user's, not this library's: its access logging is the user's choice.
    Validations.of(httpApi.defaultStage!).acknowledge({ id: 'AwsSolutions-APIG1', reason: 'The test stands in for the user\'s HTTP API.' });
    return { httpApi, api };
  }

  test('a usage API with IAM has no unacknowledged finding', () => {
    expect(nagFindings((app) => build(new Stack(app, 'UsageApiNag')))).toEqual([]);
  });

  test('a usage API with JWTs has no unacknowledged finding', () => {
    expect(nagFindings((app) => build(new Stack(app, 'UsageApiJwtNag'), UsageApiAuthorization.jwt({ issuer: ISSUER, audience: ['client-1'] })))).toEqual([]);
  });

  test('grantInvoke: cdk-nag flags exactly the documented wildcards on the grantee (IAM5, any stage and any tenant, one per route)', () => {
    const findings = nagFindings((app) => {
      const stack = new Stack(app, 'UsageApiGrantNag');
      const { api } = build(stack);
      api.grantInvoke(new iam.Role(stack, 'Reader', { assumedBy: new iam.AccountRootPrincipal() }));
    });
    expect(findings.map((f) => [f.path, f.rule.replace(/<Api[0-9A-F]{8}>/, '<Api>')])).toEqual(
      ['/*/GET/usage/tenants/*/windows', '/*/GET/usage/tenants/*/open', '/*/GET/usage/windows'].map((path) => [
        'UsageApiGrantNag/Reader/DefaultPolicy/Resource',
        `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<Api>${path}]`,
      ]),
    );
  });

  test('the nag check sees routes without authorization (APIG4)', () => {
    const findings = nagFindings((app) => {
      const stack = new Stack(app, 'Open');
      const api = new apigwv2.HttpApi(stack, 'Api');
      Validations.of(api.defaultStage!).acknowledge({ id: 'AwsSolutions-APIG1', reason: 'test' });
      const fn = new lambda.Function(stack, 'Fn', {
        runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = async () => undefined;'),
      });
      const { HttpLambdaIntegration } = jest.requireActual('aws-cdk-lib/aws-apigatewayv2-integrations');
      api.addRoutes({ path: '/open', methods: [apigwv2.HttpMethod.GET], integration: new HttpLambdaIntegration('I', fn) });
    });
    expect(findings.map((f) => f.rule)).toContain('AwsSolutions-APIG4');
  });

  test('no cfn-lint error, with IAM and with JWTs', () => {
    const iamStack = new Stack(testApp('lint'), 'UsageApiLint');
    build(iamStack);
    expect(cfnLintErrors(iamStack)).toEqual([]);
    const jwtStack = new Stack(testApp('lint'), 'UsageApiJwtLint');
    build(jwtStack, UsageApiAuthorization.jwt({ issuer: ISSUER, audience: ['client-1'] }));
    expect(cfnLintErrors(jwtStack)).toEqual([]);
  });
});
