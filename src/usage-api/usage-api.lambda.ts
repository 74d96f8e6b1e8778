/**
 * The usage API's handler: read-only routes over the usage read contract,
 * mounted by the `UsageApi` construct on the user's API (see `shared.lambda/api.ts`
 * for the routes, the authorization and tenant isolation).
 */
import { AUTH_MODES, AuthMode, USAGE_API_ENV } from './contract';
import { ApiResponse, ApiSettings, GatewayEvent, serve } from './shared.lambda/api';
import { ENTITLEMENT_READER_ENV } from '../entitlements/contract';
import { EntitlementReader } from '../entitlements/shared.lambda/entitlement-reader';
import { UsageReader } from '../ingestor/shared.lambda/usage-reader';
import { requiredEnv } from '../shared.lambda/env';
import { logger } from '../shared.lambda/logger';

function settingsFromEnv(): ApiSettings {
  const authMode = requiredEnv(USAGE_API_ENV.AUTH_MODE);
  if (!(AUTH_MODES as readonly string[]).includes(authMode)) {
    throw new Error(`Environment variable ${USAGE_API_ENV.AUTH_MODE} must be one of ${AUTH_MODES.join(', ')} (given ${JSON.stringify(authMode)})`);
  }
  return {
    pathPrefix: requiredEnv(USAGE_API_ENV.PATH_PREFIX),
    authMode: authMode as AuthMode,
    tenantClaim: process.env[USAGE_API_ENV.TENANT_CLAIM] ?? '',
  };
}

/** The Lambda handler, invoked by API Gateway (HTTP API payload 2.0 or REST API proxy integration). */
export async function handler(event: GatewayEvent): Promise<ApiResponse> {
  // Both are cheap (the DynamoDB client is shared by the execution environment).
  const entitlements = process.env[ENTITLEMENT_READER_ENV.TABLE_NAME] ? EntitlementReader.fromEnvironment() : undefined;
  const response = await serve(event, UsageReader.fromEnvironment(), settingsFromEnv(), entitlements);
  // Route and status only: never a tenant id from the request, a token or a cursor.
  logger.info('usage API request', { route: event.routeKey ?? `${event.httpMethod} ${event.resource}`, statusCode: response.statusCode });
  return response;
}
