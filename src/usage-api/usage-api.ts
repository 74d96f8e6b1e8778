import { ArnFormat, CfnOutput, CfnResource, Duration, Names, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer, HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { AuthMode, DEFAULT_PATH_PREFIX, DEFAULT_TENANT_CLAIM, ROUTES, routePath, USAGE_API_ENV } from './contract';
import { UsageApiFunction } from './usage-api-function';
import { IEntitlements } from '../entitlements/entitlements';
import { LibraryFunctionOptions } from '../functions/library-functions';
import { IDataIngestorAggregator } from '../ingestor/ingestor';
import { AlarmSet } from '../private/alarms';
import { createHandlerFunction } from '../private/handler-function';
import { acknowledgeNag } from '../private/nag';
import { validateRuntime } from '../private/node-runtime';
import { PropsValidator } from '../private/validation';

/**
 * Options of `UsageApiAuthorization.jwt()`.
 */
export interface UsageApiJwtOptions {
  /**
   * The issuer of the tenants' tokens (`iss`). For an Amazon Cognito user pool
   * (SBT's): `https://cognito-idp.<region>.amazonaws.com/<user pool id>`.
   */
  readonly issuer: string;

  /**
   * The audiences a token must carry one of (`aud`, or `client_id` for an
   * access token). For a Cognito user pool: the app client ids.
   */
  readonly audience: string[];

  /**
   * The claim that holds the tenant id.
   *
   * Cognito's ID tokens carry custom attributes, its access tokens only with a
   * pre token generation trigger.
   *
   * @default 'custom:tenantId' (SBT's)
   */
  readonly tenantClaim?: string;

  /**
   * Where API Gateway reads the token.
   *
   * @default ['$request.header.Authorization']
   */
  readonly identitySource?: string[];
}

/**
 * Options of `UsageApiAuthorization.tenantAuthorizer()`.
 */
export interface UsageApiTenantAuthorizerOptions {
  /**
   * The claim (JWT or Cognito user pool authorizer) or the context key (Lambda
   * authorizer) that holds the tenant id of the caller.
   *
   * @default 'custom:tenantId' (SBT's)
   */
  readonly tenantClaim?: string;
}

/** Where an authorization reports a problem with its options (`PropsValidator.add`). */
type ProblemSink = (prop: string, given: unknown, problem: string, fix: string) => void;

/** Which kind of API the routes go on. */
type ApiKind = 'HTTP' | 'REST';

/** What an authorization gives the construct. */
interface BoundAuthorization {
  readonly mode: AuthMode;
  /** On an HTTP API: the tenant routes' authorizer (none: IAM). */
  readonly tenantAuthorizer?: apigwv2.IHttpRouteAuthorizer;
  /** On a REST API: the tenant methods' authorizer (none: IAM). */
  readonly restTenantAuthorizer?: apigw.IAuthorizer;
  readonly tenantClaim?: string;
}

/**
 * How `UsageApi`'s routes are authorized.
 *
 * Two ways:
 *
 * - `UsageApiAuthorization.iam()` (the default): every route needs a SigV4-signed
 *   request from an AWS identity allowed `execute-api:Invoke` (`usageApi.grantInvoke(role)`);
 *   such a caller may read any tenant's usage (a back end, an operator, a dashboard).
 * - `UsageApiAuthorization.jwt({...})` or `UsageApiAuthorization.tenantAuthorizer(authorizer)`:
 *   the tenant routes take a tenant's token, and enforce tenant isolation: the
 *   token's tenant reads only its own usage, whatever the path or query says.
 *   The closed-window feed stays IAM (it holds every tenant's usage).
 */
export abstract class UsageApiAuthorization {
  /**
   * SigV4 (AWS IAM) on every route.
   */
  public static iam(): UsageApiAuthorization {
    return new IamAuthorization();
  }

  /**
   * Tenants' JWTs on the tenant routes, tenant isolation by the tenant claim.
   *
   * An API Gateway JWT authorizer, for example on SBT's Cognito user pool. The
   * feed stays IAM.
   */
  public static jwt(options: UsageApiJwtOptions): UsageApiAuthorization {
    return new JwtAuthorization(options);
  }

  /**
   * Your own route authorizer on the tenant routes of an HTTP API, tenant
   * isolation by the claim or context key it passes on.
   *
   * A JWT, Cognito user pool or Lambda authorizer. A Lambda authorizer must
   * return the tenant id in its context under `tenantClaim`. The feed stays IAM.
   */
  public static tenantAuthorizer(authorizer: apigwv2.IHttpRouteAuthorizer, options: UsageApiTenantAuthorizerOptions = {}): UsageApiAuthorization {
    return new AuthorizerAuthorization(authorizer, options.tenantClaim ?? DEFAULT_TENANT_CLAIM);
  }

  /**
   * Your own authorizer on the tenant methods of a REST API, tenant isolation by `tenantClaim`.
   *
   * A Cognito user pools authorizer, whose claims carry the tenant, or a Lambda
   * token or request authorizer, whose context does. The feed stays IAM.
   */
  public static restTenantAuthorizer(authorizer: apigw.IAuthorizer, options: UsageApiTenantAuthorizerOptions = {}): UsageApiAuthorization {
    return new RestAuthorizerAuthorization(authorizer, options.tenantClaim ?? DEFAULT_TENANT_CLAIM);
  }

  /** The claim that holds the tenant id, when tenant tokens are used. */
  public abstract readonly tenantClaim?: string;

  /** @internal */
  public abstract _bind(scope: Construct, kind: ApiKind, problem: ProblemSink): BoundAuthorization;
}

class IamAuthorization extends UsageApiAuthorization {
  public readonly tenantClaim?: string = undefined;
  public _bind(_scope: Construct, _kind: ApiKind, _problem: ProblemSink): BoundAuthorization {
    return { mode: 'IAM' };
  }
}

/** A refusal of an authorization made for the other kind of API. */
function wrongKind(problem: ProblemSink, given: string, kind: ApiKind): void {
  problem('authorization', given, kind === 'REST'
    ? 'is for HTTP APIs (API Gateway REST APIs have no JWT or HTTP route authorizers)'
    : 'is for REST APIs', kind === 'REST'
    ? 'use UsageApiAuthorization.restTenantAuthorizer(authorizer) with a Cognito user pools or Lambda authorizer, or iam()'
    : 'use UsageApiAuthorization.jwt({...}) or tenantAuthorizer(authorizer), or iam()');
}

class JwtAuthorization extends UsageApiAuthorization {
  public readonly tenantClaim: string;
  constructor(private readonly options: UsageApiJwtOptions) {
    super();
    this.tenantClaim = options.tenantClaim ?? DEFAULT_TENANT_CLAIM;
  }

  public _bind(scope: Construct, kind: ApiKind, problem: ProblemSink): BoundAuthorization {
    if (kind === 'REST') wrongKind(problem, 'UsageApiAuthorization.jwt()', kind);
    const { issuer, audience } = this.options;
    if (typeof issuer !== 'string' || (!Token.isUnresolved(issuer) && !/^https:\/\/[^\s/]+(\/\S*)?$/.test(issuer))) {
      problem('authorization.issuer', issuer, 'must be the https URL of the token issuer',
        'give for example `https://cognito-idp.<region>.amazonaws.com/<user pool id>`');
    }
    if (!Array.isArray(audience) || audience.length === 0 || audience.some((a) => typeof a !== 'string' || a === '')) {
      problem('authorization.audience', audience, 'must list at least one audience', 'give the app client ids of the user pool');
    }
    checkClaim(this.tenantClaim, problem);
    return {
      mode: 'TENANT_TOKEN',
      tenantClaim: this.tenantClaim,
      // The authorizer is created in the HTTP API's scope: its id names this usage API.
      tenantAuthorizer: new HttpJwtAuthorizer(`${Names.uniqueId(scope)}TenantAuthorizer`, issuer, {
        jwtAudience: audience,
        identitySource: this.options.identitySource,
      }),
    };
  }
}

class AuthorizerAuthorization extends UsageApiAuthorization {
  constructor(private readonly authorizer: apigwv2.IHttpRouteAuthorizer, public readonly tenantClaim: string) {
    super();
  }

  public _bind(_scope: Construct, kind: ApiKind, problem: ProblemSink): BoundAuthorization {
    if (kind === 'REST') wrongKind(problem, 'UsageApiAuthorization.tenantAuthorizer()', kind);
    if (!this.authorizer || typeof this.authorizer.bind !== 'function' || this.authorizer instanceof HttpIamAuthorizer) {
      problem('authorization', this.authorizer, 'must be a tenant token authorizer (JWT, Cognito user pool or Lambda)',
        'pass such an authorizer, or use UsageApiAuthorization.iam() for SigV4');
    }
    checkClaim(this.tenantClaim, problem);
    return { mode: 'TENANT_TOKEN', tenantClaim: this.tenantClaim, tenantAuthorizer: this.authorizer };
  }
}

class RestAuthorizerAuthorization extends UsageApiAuthorization {
  constructor(private readonly authorizer: apigw.IAuthorizer, public readonly tenantClaim: string) {
    super();
  }

  public _bind(_scope: Construct, kind: ApiKind, problem: ProblemSink): BoundAuthorization {
    if (kind === 'HTTP') wrongKind(problem, 'UsageApiAuthorization.restTenantAuthorizer()', kind);
    const type = this.authorizer?.authorizationType;
    if (!this.authorizer || typeof this.authorizer.authorizerId !== 'string' || (type !== apigw.AuthorizationType.COGNITO && type !== apigw.AuthorizationType.CUSTOM)) {
      problem('authorization', this.authorizer, 'must be a tenant token authorizer of a REST API (Cognito user pools, or a Lambda token or request authorizer)',
        'pass such an authorizer, or use UsageApiAuthorization.iam() for SigV4');
    }
    checkClaim(this.tenantClaim, problem);
    return { mode: 'TENANT_TOKEN', tenantClaim: this.tenantClaim, restTenantAuthorizer: this.authorizer };
  }
}

function checkClaim(claim: unknown, problem: ProblemSink): void {
  if (typeof claim !== 'string' || !/^[\x21-\x7e]{1,256}$/.test(claim)) {
    problem('authorization.tenantClaim', claim, 'must be a claim name of 1 to 256 printable ASCII characters', `give for example '${DEFAULT_TENANT_CLAIM}'`);
  }
}

/**
 * Properties of a `UsageApi`.
 */
export interface UsageApiProps extends LibraryFunctionOptions {
  /**
   * The usage ingestor whose usage the API reads (through its usage read
   * contract, `bindUsageReader`).
   */
  readonly ingestor: IDataIngestorAggregator;

  /**
   * The HTTP API the routes are mounted on (your control plane's). Give
   * `httpApi` or `restApi`.
   *
   * @default - none: `restApi` is required
   */
  readonly httpApi?: apigwv2.IHttpApi;

  /**
   * The API Gateway REST API the routes are mounted on, as `GET` methods with a
   * Lambda proxy integration. Give `httpApi` or `restApi`.
   *
   * A deployed `RestApi` redeploys with them, an imported one needs a new deployment.
   *
   * @default - none: `httpApi` is required
   */
  readonly restApi?: apigw.IRestApi;

  /**
   * The path the routes are mounted under, for example `/usage` or `/billing/usage`.
   *
   * Segments of letters, digits, `-`, `.`, `_` and `~`, each after a slash.
   *
   * @default '/usage'
   */
  readonly pathPrefix?: string;

  /**
   * How callers are authorized.
   *
   * @default UsageApiAuthorization.iam()
   */
  readonly authorization?: UsageApiAuthorization;

  /**
   * The entitlements whose balances `GET <prefix>/tenants/{tenantId}/entitlements`
   * serves (used, limit, remaining and thresholds crossed per entitlement of the
   * tenant's plan in the current period, and its access), authorized as the
   * other tenant routes.
   *
   * @default - the entitlements route is not mounted
   */
  readonly entitlements?: IEntitlements;

  /**
   * Actions of the API's alarm (see `alarms`), for example an SNS topic action.
   *
   * @default - the alarm has no action
   */
  readonly alarmActions?: cloudwatch.IAlarmAction[];

  /**
   * Retention of the handler's logs.
   *
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;

  /**
   * What happens to the handler's log group when it leaves the stack.
   *
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

const PREFIX = /^(\/[A-Za-z0-9._~-]+)+$/;
/** HTTP APIs give an integration at most 30 s; the handler stops well before. */
const HANDLER_TIMEOUT = Duration.seconds(25);

/**
 * A read-only usage API on your HTTP API (or REST API), over a usage ingestor's read contract.
 *
 * Its routes:
 *
 * - `GET <prefix>/tenants/{tenantId}/windows`: a tenant's closed windows
 *   (`from`, `to` on window start, `metric`, `limit` up to 1,000, `cursor`);
 * - `GET <prefix>/tenants/{tenantId}/open`: a tenant's running totals of the windows not closed yet (`metric`);
 * - `GET <prefix>/windows`: every closed window, oldest close first, with a cursor, for other consumers (IAM only).
 *
 * Sums are exact decimal strings. IAM (SigV4) authorization by default; with
 * tenant tokens (`UsageApiAuthorization.jwt()` and others) a tenant's token
 * reads only its own usage. With `entitlements`:
 * `GET <prefix>/tenants/{tenantId}/entitlements`, a tenant's entitlement balances.
 */
export class UsageApi extends Construct {
  /** The function that serves every route. */
  public readonly handler: lambda.IFunction;
  /** `GET <prefix>/tenants/{tenantId}/windows`, on an HTTP API. */
  public readonly tenantWindowsRoute?: apigwv2.HttpRoute;
  /** `GET <prefix>/tenants/{tenantId}/open`, on an HTTP API. */
  public readonly openTotalsRoute?: apigwv2.HttpRoute;
  /** `GET <prefix>/windows` (always IAM), on an HTTP API. */
  public readonly feedRoute?: apigwv2.HttpRoute;
  /** `GET <prefix>/tenants/{tenantId}/entitlements`, on an HTTP API, with `entitlements`. */
  public readonly entitlementsRoute?: apigwv2.HttpRoute;
  /** `GET <prefix>/tenants/{tenantId}/entitlements`, on a REST API, with `entitlements`. */
  public readonly entitlementsMethod?: apigw.Method;
  /** `GET <prefix>/tenants/{tenantId}/windows`, on a REST API. */
  public readonly tenantWindowsMethod?: apigw.Method;
  /** `GET <prefix>/tenants/{tenantId}/open`, on a REST API. */
  public readonly openTotalsMethod?: apigw.Method;
  /** `GET <prefix>/windows` (always IAM), on a REST API. */
  public readonly feedMethod?: apigw.Method;
  /** The path prefix of the routes (`/usage`). */
  public readonly pathPrefix: string;
  /** The claim holding a tenant token's tenant id, when tenant tokens are used. */
  public readonly tenantClaim?: string;
  /**
   * The base URL of the routes (`<api endpoint><prefix>`), when known.
   *
   * On an HTTP API's `$default` stage, or on a `RestApi`'s deployment stage.
   */
  public readonly url?: string;
  /** Every alarm of the API: `ErrorsAlarm` (the handler failed: a 500 to the caller). */
  public readonly alarms: cloudwatch.Alarm[];

  private readonly fn: lambda.Function;
  /** The id of the API the routes are on (HTTP or REST). */
  private readonly apiId: string;
  /** The paths (below the prefix) of the routes that take SigV4. */
  private readonly iamRoutePaths: string[];

  constructor(scope: Construct, id: string, props: UsageApiProps) {
    super(scope, id);
    const auth = validate(this, props);
    this.pathPrefix = props.pathPrefix ?? DEFAULT_PATH_PREFIX;
    this.tenantClaim = auth.tenantClaim;
    this.iamRoutePaths = auth.mode === 'IAM'
      ? [ROUTES.TENANT_WINDOWS, ROUTES.OPEN_TOTALS, ROUTES.FEED, ...(props.entitlements ? [ROUTES.ENTITLEMENTS] : [])]
      : [ROUTES.FEED];

    this.fn = this.createHandler(props, auth);
    this.handler = this.fn;
    props.ingestor.bindUsageReader(this.fn);
    props.entitlements?.bindEntitlementReader(this.fn);

    if (props.httpApi) {
      this.apiId = props.httpApi.apiId;
      const integration = new HttpLambdaIntegration('Integration', this.fn);
      const tenantAuthorizer = auth.tenantAuthorizer ?? new HttpIamAuthorizer();
      this.tenantWindowsRoute = this.route(props.httpApi, 'TenantWindowsRoute', ROUTES.TENANT_WINDOWS, integration, tenantAuthorizer);
      this.openTotalsRoute = this.route(props.httpApi, 'OpenTotalsRoute', ROUTES.OPEN_TOTALS, integration, tenantAuthorizer);
      this.feedRoute = this.route(props.httpApi, 'FeedRoute', ROUTES.FEED, integration, new HttpIamAuthorizer());
      if (props.entitlements) this.entitlementsRoute = this.route(props.httpApi, 'EntitlementsRoute', ROUTES.ENTITLEMENTS, integration, tenantAuthorizer);
      this.url = this.outputUrl(() => `${props.httpApi!.apiEndpoint}${this.pathPrefix}`, 'the HTTP API\'s $default stage');
    } else {
      const restApi = props.restApi!;
      this.apiId = restApi.restApiId;
      const integration = new apigw.LambdaIntegration(this.fn);
      this.tenantWindowsMethod = this.method(restApi, ROUTES.TENANT_WINDOWS, integration, auth.restTenantAuthorizer);
      this.openTotalsMethod = this.method(restApi, ROUTES.OPEN_TOTALS, integration, auth.restTenantAuthorizer);
      this.feedMethod = this.method(restApi, ROUTES.FEED, integration, undefined);
      if (props.entitlements) this.entitlementsMethod = this.method(restApi, ROUTES.ENTITLEMENTS, integration, auth.restTenantAuthorizer);
      this.url = this.outputUrl(() => (restApi as apigw.RestApiBase).urlForPath(this.pathPrefix), 'the REST API\'s deployment stage');
    }

    const alarms = new AlarmSet(this, props.alarmActions);
    alarms.add('ErrorsAlarm', this.metricErrors(), {
      description: 'the usage API handler failed (the caller got a 500): read its logs',
    });
    this.alarms = alarms.alarms;
  }

  /**
   * Lets an AWS identity call the routes that take SigV4 (`execute-api:Invoke`):
   * every route with IAM authorization, only the feed with tenant tokens.
   */
  public grantInvoke(grantee: iam.IGrantable): iam.Grant {
    const stack = Stack.of(this);
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['execute-api:Invoke'],
      resourceArns: this.iamRoutePaths.map((route) => stack.formatArn({
        service: 'execute-api',
        resource: this.apiId,
        arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
        // Any stage, GET, the route's path with its parameters as wildcards.
        resourceName: `*/GET${routePath(this.pathPrefix, route).replace(/\{[^}]+\}/g, '*')}`,
      })),
    });
  }

  /**
   * Errors of the handler (sum): requests answered 500.
   */
  public metricErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.fn.metricErrors({ statistic: cloudwatch.Stats.SUM, period: Duration.minutes(5), ...props });
  }

  /**
   * Invocations of the handler (sum): requests that reached it.
   */
  public metricInvocations(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.fn.metricInvocations({ statistic: cloudwatch.Stats.SUM, period: Duration.minutes(5), ...props });
  }

  /**
   * Duration of the handler (p99, milliseconds).
   */
  public metricDuration(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.fn.metricDuration({ statistic: cloudwatch.Stats.p(99), period: Duration.minutes(5), ...props });
  }

  private createHandler(props: UsageApiProps, auth: BoundAuthorization): lambda.Function {
    return createHandlerFunction(this, 'Handler', UsageApiFunction, {
      description: 'cdk-saas-billing usage API: serves read-only usage routes over the usage read contract',
      timeout: HANDLER_TIMEOUT,
      memorySize: 512,
      logRetention: props.logRetention,
      removalPolicy: props.removalPolicy,
      runtime: props.runtime,
      environment: {
        [USAGE_API_ENV.PATH_PREFIX]: props.pathPrefix ?? DEFAULT_PATH_PREFIX,
        [USAGE_API_ENV.AUTH_MODE]: auth.mode,
        ...(auth.tenantClaim ? { [USAGE_API_ENV.TENANT_CLAIM]: auth.tenantClaim } : {}),
        POWERTOOLS_SERVICE_NAME: Names.uniqueResourceName(this, { maxLength: 64 }),
      },
    });
  }

  private route(
    httpApi: apigwv2.IHttpApi, id: string, route: string, integration: apigwv2.HttpRouteIntegration, authorizer: apigwv2.IHttpRouteAuthorizer,
  ): apigwv2.HttpRoute {
    return new apigwv2.HttpRoute(this, id, {
      httpApi,
      routeKey: apigwv2.HttpRouteKey.with(routePath(this.pathPrefix, route), apigwv2.HttpMethod.GET),
      integration,
      authorizer,
    });
  }

  /** A `GET` method on the REST API (it lives in the API's tree, as every method does); IAM unless an authorizer is given. */
  private method(restApi: apigw.IRestApi, route: string, integration: apigw.Integration, authorizer?: apigw.IAuthorizer): apigw.Method {
    const method = restApi.root.resourceForPath(routePath(this.pathPrefix, route)).addMethod('GET', integration, authorizer
      ? { authorizer, authorizationType: authorizer.authorizationType }
      : { authorizationType: apigw.AuthorizationType.IAM });
    if (authorizer?.authorizationType !== apigw.AuthorizationType.COGNITO) {
      acknowledgeNag(method, 'AwsSolutions-COG4', authorizer
        ? `The tenant routes of ${this.node.path} use the tenant token authorizer the user passed (a Lambda authorizer, not Cognito).`
        : `IAM (SigV4) authorization: the callers of this route of ${this.node.path} are AWS identities, not Cognito users.`);
    }
    return method;
  }

  private outputUrl(url: () => string, where: string): string | undefined {
    let value: string;
    try {
      value = url();
    } catch {
      return undefined; // an imported API without its endpoint, or a REST API without a deployment stage
    }
    new CfnOutput(this, 'Url', { description: `Base URL of the usage API routes, on ${where}`, value });
    return value;
  }
}

/** Another construct's route with this route key on this API, if any (its path). */
function existingRoute(scope: Construct, httpApi: apigwv2.IHttpApi, routeKey: string): string | undefined {
  for (const c of scope.node.root.node.findAll()) {
    if (!CfnResource.isCfnResource(c) || c.cfnResourceType !== apigwv2.CfnRoute.CFN_RESOURCE_TYPE_NAME) continue;
    const route = c as apigwv2.CfnRoute;
    if (route.apiId === httpApi.apiId && route.routeKey === routeKey) return route.node.scope?.node.path ?? route.node.path;
  }
  return undefined;
}

/** The REST API's resource at a path, if it exists (without creating it). */
function existingResource(restApi: apigw.IRestApi, path: string): apigw.IResource | undefined {
  let resource: apigw.IResource | undefined = restApi.root;
  for (const part of path.split('/').filter((p) => p !== '')) resource = resource?.getResource(part);
  return resource;
}

/** Refuses bad props at synth time, every problem at once; returns the bound authorization. */
function validate(scope: Construct, props: UsageApiProps): BoundAuthorization {
  const v = new PropsValidator(scope, 'UsageApi');
  const ingestor = props?.ingestor as IDataIngestorAggregator | undefined;
  if (!ingestor || typeof ingestor.bindUsageReader !== 'function') {
    v.add('ingestor', ingestor, 'must be a usage ingestor (IDataIngestorAggregator)', 'pass the UsageIngestor whose usage the API reads');
  }
  const httpApi = props?.httpApi;
  const restApi = props?.restApi;
  const httpOk = httpApi !== undefined && typeof httpApi.apiId === 'string';
  const restOk = restApi !== undefined && typeof restApi.restApiId === 'string' && typeof restApi.root?.resourceForPath === 'function';
  if (httpApi !== undefined && restApi !== undefined) {
    v.add('restApi', restApi, 'cannot be given with httpApi', 'mount the usage API on one API: give httpApi or restApi (two UsageApis for both)');
  } else if (httpApi === undefined && restApi === undefined) {
    v.add('httpApi', httpApi, 'or restApi is required', 'pass your control plane\'s HTTP API (apigwv2.IHttpApi) or REST API (apigateway.IRestApi)');
  } else if (httpApi !== undefined && !httpOk) {
    v.add('httpApi', httpApi, 'must be an HTTP API (apigwv2.IHttpApi)', 'pass your control plane\'s HTTP API');
  } else if (restApi !== undefined && !restOk) {
    v.add('restApi', restApi, 'must be a REST API (apigateway.IRestApi)', 'pass your control plane\'s REST API');
  }
  const kind: ApiKind = restApi !== undefined && httpApi === undefined ? 'REST' : 'HTTP';
  const prefix = props?.pathPrefix ?? DEFAULT_PATH_PREFIX;
  const prefixOk = typeof prefix === 'string' && !Token.isUnresolved(prefix) && PREFIX.test(prefix) && prefix.length <= 128;
  if (!prefixOk) {
    v.add('pathPrefix', prefix, 'must be segments of letters, digits and - . _ ~, each after a slash, at most 128 characters',
      'give for example \'/usage\' (no trailing slash, no {parameters})');
  }
  const authorization = props?.authorization ?? UsageApiAuthorization.iam();
  let bound: BoundAuthorization = { mode: 'IAM' };
  if (!(authorization instanceof UsageApiAuthorization)) {
    v.add('authorization', authorization, 'must be a UsageApiAuthorization',
      'use UsageApiAuthorization.iam(), .jwt({...}), .tenantAuthorizer(authorizer) or .restTenantAuthorizer(authorizer)');
  } else {
    bound = authorization._bind(scope, kind, (prop, given, problem, fix) => v.add(prop, given, problem, fix));
  }
  if (prefixOk) {
    for (const route of [ROUTES.TENANT_WINDOWS, ROUTES.OPEN_TOTALS, ROUTES.FEED]) {
      const key = `GET ${routePath(prefix, route)}`;
      const existing = httpOk && kind === 'HTTP' ? existingRoute(scope, httpApi!, key)
        : restOk && kind === 'REST' ? existingResource(restApi!, routePath(prefix, route))?.node.tryFindChild('GET')?.node.path : undefined;
      if (existing) {
        v.add('pathPrefix', prefix, `mounts ${key} on the ${kind} API ${(httpApi ?? restApi)!.node.path}, which already has that route (${existing})`,
          'give this usage API another pathPrefix');
      }
    }
  }
  validateRuntime(v, props.runtime);
  v.throwIfInvalid();
  return bound;
}
