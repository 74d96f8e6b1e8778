import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { MARKETPLACE_ENV, MARKETPLACE_METRICS } from './contract';
import { baseConfig } from './shared.lambda/config';
import { errorName, isTransient, resolveCustomer } from './shared.lambda/marketplace-api';
import { metrics, publishMetrics } from './shared.lambda/metrics';
import { page, PageReason, redirect } from './shared.lambda/pages';
import { hashToken, redeemToken, subscriberOf } from './shared.lambda/registrations';
import { requiredEnv } from '../../shared.lambda/env';
import { logger } from '../../shared.lambda/logger';

/** The form field AWS Marketplace posts (https://docs.aws.amazon.com/marketplace/latest/userguide/saas-product-customer-setup.html). */
export const TOKEN_FIELD = 'x-amzn-marketplace-token';
/** Longest body read: a form with one token. */
const MAX_BODY_BYTES = 16 * 1024;

function refuse(reason: PageReason, detail: Record<string, unknown> = {}): APIGatewayProxyStructuredResultV2 {
  logger.warn('Registration refused', { reason, ...detail });
  if (reason !== 'UNAVAILABLE') metrics.addMetric(MARKETPLACE_METRICS.REGISTRATIONS_REFUSED, MetricUnit.Count, 1);
  return page(reason);
}

/** The token from the form body (or, for a browser that followed a GET, the query string). */
function tokenOf(event: APIGatewayProxyEventV2): string | undefined {
  const raw = event.body ?? '';
  const body = event.isBase64Encoded ? Buffer.from(raw, 'base64') : Buffer.from(raw, 'utf8');
  if (body.length > MAX_BODY_BYTES) return undefined;
  const fromBody = new URLSearchParams(body.toString('utf8')).get(TOKEN_FIELD);
  const token = (fromBody ?? event.queryStringParameters?.[TOKEN_FIELD] ?? '').trim();
  return token.length > 0 && token.length <= 4096 && !/\s/.test(token) ? token : undefined;
}

/**
 * The product's fulfillment URL (`POST /billing/<registrationPath>`, HTTP API payload 2.0): AWS
 * Marketplace posts the buyer's browser here with `x-amzn-marketplace-token`.
 *
 * 1. The token is resolved (ResolveCustomer): an invalid or expired token gets a page saying so
 *    (400), a token of another product 403; Marketplace unavailable 503 (the token stays valid).
 * 2. The token is redeemed once, with the registration and its subscriber, in one conditional
 *    transaction: a replayed token (a second submit, concurrent or later) gets a page (409) and
 *    writes nothing.
 * 3. The browser is redirected (302) to the registration page with the opaque registration id.
 */
export const handler = async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
  logger.resetKeys();
  logger.appendKeys({ requestId: event.requestContext?.requestId });
  try {
    return await handle(event);
  } finally {
    publishMetrics();
  }
};

async function handle(event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> {
  const config = baseConfig();
  const method = event.requestContext?.http?.method ?? 'POST';
  if (method !== 'POST') return refuse('METHOD', { method });
  const token = tokenOf(event);
  if (!token) return refuse('NO_TOKEN');
  const tokenHash = hashToken(token);

  let customer;
  try {
    customer = await resolveCustomer(token);
  } catch (error) {
    const name = errorName(error);
    if (name === 'InvalidTokenException') return refuse('INVALID_TOKEN');
    if (name === 'ExpiredTokenException') return refuse('EXPIRED_TOKEN');
    if (isTransient(error) || name === 'DisabledApiException') return refuse('UNAVAILABLE', { error: name });
    throw error;
  }
  if (customer.productCode !== config.productCode) return refuse('OTHER_PRODUCT', { productCode: customer.productCode });
  if (!subscriberOf(customer)) return refuse('INVALID_TOKEN', { why: 'the token resolved to neither a license nor a customer identifier' });

  const redemption = await redeemToken(config.registrationsTable, tokenHash, { ...customer, productCode: config.productCode }, Date.now());
  if (redemption.outcome === 'REPLAYED') return refuse('REPLAYED_TOKEN');
  logger.info('Registration', { outcome: redemption.outcome, registrationId: redemption.registrationId, licenseArn: customer.licenseArn });
  if (redemption.outcome === 'CREATED') metrics.addMetric(MARKETPLACE_METRICS.REGISTRATIONS_CREATED, MetricUnit.Count, 1);
  return redirect(requiredEnv(MARKETPLACE_ENV.REGISTRATION_PAGE_URL), config.registrationIdField, redemption.registrationId);
}
