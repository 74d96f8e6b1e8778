import { Duration, RemovalPolicy, Token } from 'aws-cdk-lib';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaAuthorizer, HttpLambdaResponseType } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { AuthorizerFunction } from './authorizer-function';
import { AUTHORIZER_ENV } from './contract';
import { IEntitlements } from './entitlements';
import { identifierRule, isMetricName } from '../events/identifiers';
import { LibraryFunctionOptions } from '../functions/library-functions';
import { createHandlerFunction } from '../private/handler-function';
import { validateRuntime } from '../private/node-runtime';
import { PropsValidator } from '../private/validation';

/**
 * The metric a route consumes: a tenant blocked for it is refused on the route.
 */
export interface EntitlementRoute {
  /** The route key, exactly as the HTTP API has it (`GET /orders`, `POST /exports/{id}`). */
  readonly routeKey: string;
  /** The metric, as producers write it in usage records. */
  readonly metric: string;
}

/**
 * Properties of `EntitlementAuthorizer`.
 */
export interface EntitlementAuthorizerProps extends LibraryFunctionOptions {
  /** The entitlements whose blocked states the authorizer reads. */
  readonly entitlements: IEntitlements;

  /**
   * The issuer of the tenants' tokens (`iss`), an https URL; its JSON Web Key Set
   * is found through its OpenID configuration (for Cognito:
   * `https://cognito-idp.<region>.amazonaws.com/<user pool id>`).
   */
  readonly jwtIssuer: string;

  /** The accepted audiences: `aud`, or a Cognito access token's `client_id` (the app client ids). */
  readonly jwtAudience: string[];

  /**
   * The claim that holds the tenant id.
   * @default 'custom:tenantId' (SBT's)
   */
  readonly tenantIdClaim?: string;

  /**
   * The metric of each route that uses the authorizer.
   * @default - every route uses `defaultMetric`
   */
  readonly routes?: EntitlementRoute[];

  /**
   * The metric of routes not in `routes`.
   * @default - none: a route not in `routes` is refused
   */
  readonly defaultMetric?: string;

  /**
   * How long an answer is kept: by API Gateway per token and route, and by the
   * function per tenant. The two caches follow one another, so a tenant blocked
   * (or unblocked) is refused (or let through) at most twice this long after.
   * Between 0 and 1 hour.
   * @default Duration.seconds(30)
   */
  readonly resultsCacheTtl?: Duration;

  /**
   * What happens to the function's log group when it leaves the stack.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;

  /**
   * How long the function's logs are kept.
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * An HTTP API Lambda authorizer that refuses a tenant blocked for the route's
 * metric (a `BLOCK` limit reached in the current period), an unknown or
 * offboarded tenant, and a request without a valid token. The tenant comes from
 * a JWT claim (SBT's `custom:tenantId` by default); the token is verified
 * against the issuer's keys. Its decision reads one DynamoDB item, and is
 * cached for `resultsCacheTtl`.
 *
 * Use `authorizer` on your routes:
 * `httpApi.addRoutes({ path: '/orders', methods: [HttpMethod.GET], integration, authorizer: entitlementAuthorizer.authorizer })`.
 */
export class EntitlementAuthorizer extends Construct {
  /** The authorizer to give your HTTP API routes. */
  public readonly authorizer: apigwv2.IHttpRouteAuthorizer;
  /** The function that decides. */
  public readonly authorizerFunction: lambda.IFunction;

  constructor(scope: Construct, id: string, props: EntitlementAuthorizerProps) {
    super(scope, id);
    validate(this, props);
    const ttl = props.resultsCacheTtl ?? Duration.seconds(30);
    const fn = createHandlerFunction(this, 'Authorizer', AuthorizerFunction, {
      description: 'cdk-saas-billing EntitlementAuthorizer: refuses tenants blocked for the route\'s metric',
      timeout: Duration.seconds(10),
      logRetention: props.logRetention,
      removalPolicy: props.removalPolicy,
      runtime: props.runtime,
      environment: {
        POWERTOOLS_SERVICE_NAME: 'EntitlementAuthorizer',
        [AUTHORIZER_ENV.ISSUER]: props.jwtIssuer,
        [AUTHORIZER_ENV.AUDIENCES]: JSON.stringify(props.jwtAudience),
        [AUTHORIZER_ENV.TENANT_CLAIM]: props.tenantIdClaim ?? 'custom:tenantId',
        [AUTHORIZER_ENV.ROUTE_METRICS]: JSON.stringify(Object.fromEntries((props.routes ?? []).map((r) => [r.routeKey, r.metric]))),
        [AUTHORIZER_ENV.DEFAULT_METRIC]: props.defaultMetric ?? '',
        [AUTHORIZER_ENV.CACHE_SECONDS]: String(ttl.toSeconds()),
      },
    });
    props.entitlements.bindEntitlementReader(fn);
    this.authorizerFunction = fn;
    this.authorizer = new HttpLambdaAuthorizer('EntitlementAuthorizer', fn, {
      authorizerName: 'EntitlementAuthorizer',
      responseTypes: [HttpLambdaResponseType.SIMPLE],
      // Cached per token and route: two routes of different metrics never share an answer.
      identitySource: ['$request.header.Authorization', '$context.routeKey'],
      resultsCacheTtl: ttl,
    });
  }
}

function validate(scope: Construct, props: EntitlementAuthorizerProps): void {
  const v = new PropsValidator(scope, 'EntitlementAuthorizer');
  if (!props?.entitlements) v.add('entitlements', props?.entitlements, 'is required', 'pass the Entitlements whose blocked states apply');
  const issuer = props?.jwtIssuer;
  if (typeof issuer !== 'string' || (!Token.isUnresolved(issuer) && !/^https:\/\/[^\s/]+(\/\S*)?$/.test(issuer))) {
    v.add('jwtIssuer', issuer, 'must be an https URL', 'for Cognito: https://cognito-idp.<region>.amazonaws.com/<user pool id>');
  }
  if (!Array.isArray(props?.jwtAudience) || props.jwtAudience.length === 0) {
    v.add('jwtAudience', props?.jwtAudience, 'must hold at least one audience', 'give your app client ids');
  }
  if (props?.tenantIdClaim !== undefined && !/^[A-Za-z0-9_:.-]{1,128}$/.test(props.tenantIdClaim)) {
    v.add('tenantIdClaim', props.tenantIdClaim, 'must be 1 to 128 characters of letters, digits and _ : . -', 'for example \'custom:tenantId\'');
  }
  const seen = new Set<string>();
  (props?.routes ?? []).forEach((r, i) => {
    if (typeof r?.routeKey !== 'string' || !/^(ANY|GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) \/\S*$/.test(r.routeKey)) {
      v.add(`routes[${i}].routeKey`, r?.routeKey, 'must be an HTTP API route key: a method and a path', 'for example \'GET /orders\'');
    } else if (seen.has(r.routeKey)) {
      v.add(`routes[${i}].routeKey`, r.routeKey, 'is listed twice', 'give each route one metric');
    }
    seen.add(r?.routeKey);
    if (!isMetricName(r?.metric)) v.add(`routes[${i}].metric`, r?.metric, identifierRule('metric'), 'the metric as producers write it');
  });
  if (props?.defaultMetric !== undefined && !isMetricName(props.defaultMetric)) {
    v.add('defaultMetric', props.defaultMetric, identifierRule('metric'), 'the metric as producers write it');
  }
  if ((props?.routes ?? []).length === 0 && props?.defaultMetric === undefined) {
    v.add('routes', props?.routes, 'and defaultMetric are both absent, so every route would be refused', 'give routes, or a defaultMetric');
  }
  v.durationRange('resultsCacheTtl', props?.resultsCacheTtl, Duration.seconds(0), Duration.hours(1));
  validateRuntime(v, props?.runtime);
  v.throwIfInvalid();
}
