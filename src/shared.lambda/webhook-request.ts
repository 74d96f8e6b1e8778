import type { APIGatewayProxyEvent, APIGatewayProxyEventV2 } from 'aws-lambda';

/**
 * A webhook call as API Gateway hands it to a Lambda proxy integration: from an
 * HTTP API (payload format 2.0) or from a REST API (payload format 1.0). The
 * answer has the same shape in both formats (`statusCode`, `headers`, `body`).
 *
 * What differs, and how it is read here:
 * - headers: 2.0 lowercases the names and joins a repeated header's values with
 *   commas in `headers`
 *   (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html);
 *   1.0 keeps the names as sent, keeps only the last value of a repeated header in
 *   `headers` and all of them in `multiValueHeaders`
 *   (https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html#api-gateway-simple-proxy-for-lambda-input-format).
 *   Both are read as 2.0 does: names compared without case, repeated values joined with commas;
 *   a signature header sent twice is therefore judged the same way on both APIs.
 * - body: both carry `body` (1.0: `null` when there is none) and `isBase64Encoded`. A REST API
 *   passes a text body as it was sent, and base64-encodes it only for the API's `binaryMediaTypes`
 *   (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-payload-encodings.html);
 *   an HTTP API decides by the content type. Either way the bytes the sender signed are the body,
 *   decoded when `isBase64Encoded` says so.
 * - the request id is `requestContext.requestId` in both.
 */
export type WebhookRequest = APIGatewayProxyEventV2 | APIGatewayProxyEvent;

/** The answer of a webhook handler, valid in both payload formats. */
export interface WebhookResponse {
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** The payload format of the call: `1.0` from a REST API, `2.0` from an HTTP API. */
export function payloadFormat(event: WebhookRequest): '1.0' | '2.0' {
  return (event as { version?: string }).version === '2.0' ? '2.0' : '1.0';
}

/**
 * A header's value, its name compared without case; a header sent more than once
 * gives its values joined with commas (as an HTTP API gives them).
 */
export function webhookHeader(event: WebhookRequest, name: string): string | undefined {
  const wanted = name.toLowerCase();
  const multi = (event as APIGatewayProxyEvent).multiValueHeaders;
  if (multi && typeof multi === 'object') {
    const values = Object.entries(multi)
      .filter(([k, v]) => k.toLowerCase() === wanted && Array.isArray(v))
      .flatMap(([, v]) => v as string[]);
    if (values.length > 0) return values.join(',');
  }
  const headers = (event.headers ?? {}) as Record<string, string | undefined>;
  const values = Object.entries(headers).filter(([k, v]) => k.toLowerCase() === wanted && typeof v === 'string').map(([, v]) => v as string);
  return values.length > 0 ? values.join(',') : undefined;
}

/**
 * The body as the sender signed it (base64-decoded when API Gateway encoded it),
 * or undefined when it is larger than `maxBytes`; an absent body is empty.
 */
export function webhookBody(event: WebhookRequest, maxBytes: number): Buffer | undefined {
  const raw = typeof event.body === 'string' ? event.body : '';
  const base64 = event.isBase64Encoded === true;
  // Cheap bound before decoding: base64 holds 3 bytes per 4 characters.
  const size = base64 ? Math.floor((raw.length * 3) / 4) - 2 : Buffer.byteLength(raw, 'utf8');
  if (size > maxBytes) return undefined;
  const payload = Buffer.from(raw, base64 ? 'base64' : 'utf8');
  return payload.length > maxBytes ? undefined : payload;
}

/** The API Gateway request id of the call (the same field in both formats). */
export function webhookRequestId(event: WebhookRequest): string | undefined {
  return event.requestContext?.requestId;
}
