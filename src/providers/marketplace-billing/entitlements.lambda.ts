import { baseConfig } from './shared.lambda/config';
import { getEntitlements } from './shared.lambda/marketplace-api';
import { publishMetrics } from './shared.lambda/metrics';
import { getTenant } from './shared.lambda/registrations';
import { isTenantId } from '../../events/identifiers';
import { logger } from '../../shared.lambda/logger';

/** A tenant's contract entitlement. */
export interface TenantEntitlement {
  readonly dimension?: string;
  readonly value?: string | number | boolean;
  readonly expirationDate?: string;
}

/**
 * Reads a tenant's contract entitlements (`{"tenantId": "..."}`, invoked synchronously) from the
 * AWS Marketplace Entitlement Service (GetEntitlements, us-east-1), filtered on the tenant's AWS
 * account (or its customer identifier for a registration without one) and, when Marketplace names
 * them, on its license.
 */
export const handler = async (event: { tenantId?: unknown }): Promise<{ tenantId: string; entitlements: TenantEntitlement[] }> => {
  logger.resetKeys();
  try {
    if (!isTenantId(event?.tenantId)) throw new Error('Invoke with {"tenantId": "<tenant id>"}');
    const tenantId = event.tenantId;
    const config = baseConfig();
    const tenant = await getTenant(config.registrationsTable, tenantId);
    if (!tenant) throw new Error(`Tenant ${tenantId} is not linked to a Marketplace registration`);
    const filter: Record<string, string[]> = tenant.customerAWSAccountId
      ? { CUSTOMER_AWS_ACCOUNT_ID: [tenant.customerAWSAccountId] }
      : { CUSTOMER_IDENTIFIER: [tenant.customerIdentifier!] };
    const all = await getEntitlements(config.productCode, filter);
    const mine = all.filter((e) => !e.licenseArn || !tenant.licenseArn || e.licenseArn === tenant.licenseArn);
    return { tenantId, entitlements: mine.map((e) => ({ dimension: e.dimension, value: e.value, expirationDate: e.expirationDate })) };
  } finally {
    publishMetrics();
  }
};
