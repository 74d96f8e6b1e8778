/**
 * One HTTP request as API Gateway hands it to a Lambda proxy integration, in
 * both payload formats, so a handler test can send the same call through an
 * HTTP API and a REST API. The differences are the documented ones:
 *
 * - HTTP API, payload 2.0: header names lowercased, a repeated header's values
 *   joined with commas in `headers`; no `multiValueHeaders`
 *   (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html).
 * - REST API, payload 1.0: header names as sent, `headers` holding the last value
 *   of a repeated header and `multiValueHeaders` all of them, `body` null when
 *   there is none, `resource`/`path`/`httpMethod`
 *   (https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html#api-gateway-simple-proxy-for-lambda-input-format).
 * - Both base64-encode a body they treat as binary and say so in `isBase64Encoded`.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyEventV2 } from 'aws-lambda';

/** An HTTP request as the caller sent it. */
export interface HttpCall {
  /** The route path, for example `/billing/webhook`. */
  readonly path: string;
  /** Headers in the order and case sent; a name may repeat. */
  readonly headers: Array<[string, string]>;
  /** The body as sent; undefined for none. */
  readonly body?: string;
  /** Whether API Gateway treats the body as binary (base64-encodes it). */
  readonly binary?: boolean;
  readonly requestId: string;
  readonly method?: string;
}

function encoded(call: HttpCall): string | undefined {
  if (call.body === undefined) return undefined;
  return call.binary ? Buffer.from(call.body, 'utf8').toString('base64') : call.body;
}

/** The call as an HTTP API delivers it (payload 2.0, `$default` stage). */
export function httpApiEvent(call: HttpCall): APIGatewayProxyEventV2 {
  const headers: Record<string, string> = {};
  for (const [name, value] of call.headers) {
    const key = name.toLowerCase();
    headers[key] = key in headers ? `${headers[key]},${value}` : value;
  }
  const method = call.method ?? 'POST';
  return {
    version: '2.0',
    routeKey: `${method} ${call.path}`,
    rawPath: call.path,
    rawQueryString: '',
    headers,
    requestContext: { requestId: call.requestId, stage: '$default', http: { method, path: call.path } } as APIGatewayProxyEventV2['requestContext'],
    body: encoded(call),
    isBase64Encoded: call.binary === true,
  };
}

/** The call as a REST API delivers it (payload 1.0, stage `prod`). */
export function restApiEvent(call: HttpCall): APIGatewayProxyEvent {
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  for (const [name, value] of call.headers) {
    headers[name] = value;
    (multiValueHeaders[name] ??= []).push(value);
  }
  const method = call.method ?? 'POST';
  return {
    resource: call.path,
    path: call.path,
    httpMethod: method,
    headers,
    multiValueHeaders,
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    requestContext: {
      requestId: call.requestId,
      stage: 'prod',
      httpMethod: method,
      resourcePath: call.path,
      path: `/prod${call.path}`,
    } as APIGatewayProxyEvent['requestContext'],
    body: encoded(call) ?? null,
    isBase64Encoded: call.binary === true,
  };
}
