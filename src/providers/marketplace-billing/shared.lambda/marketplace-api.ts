/**
 * The AWS Marketplace calls of the handlers, through the AWS SDK v3 clients (in the Lambda
 * runtime; the bundles keep `@aws-sdk/*` external), with the shapes the handlers use.
 *
 * Regions:
 * - ResolveCustomer and BatchMeterUsage are regional: the functions call them in their own
 *   region (the stack's), which must be one that supports them
 *   (https://docs.aws.amazon.com/marketplace/latest/APIReference/metering-regions.html), and from
 *   the account that published the product (a token of another seller does not resolve:
 *   https://docs.aws.amazon.com/marketplace/latest/APIReference/API_marketplace-metering_ResolveCustomer.html).
 * - GetEntitlements is served from us-east-1 only (`ENTITLEMENT_SERVICE_REGION`).
 */
import { GetEntitlementsCommand, MarketplaceEntitlementServiceClient } from '@aws-sdk/client-marketplace-entitlement-service';
import { BatchMeterUsageCommand, MarketplaceMeteringClient, ResolveCustomerCommand } from '@aws-sdk/client-marketplace-metering';
import { SDK_MAX_ATTEMPTS, sdkClient } from '../../../shared.lambda/sdk-client';
import { ENTITLEMENT_SERVICE_REGION } from '../contract';

/** What ResolveCustomer answers. */
export interface ResolvedCustomer {
  readonly customerIdentifier?: string;
  readonly customerAWSAccountId?: string;
  readonly licenseArn?: string;
  readonly productCode?: string;
}

/** One usage record of BatchMeterUsage. */
export interface UsageRecord {
  /** The start of the record's hour. */
  readonly Timestamp: Date;
  readonly Dimension: string;
  readonly Quantity: number;
  readonly CustomerAWSAccountId?: string;
  readonly LicenseArn?: string;
  readonly CustomerIdentifier?: string;
}

/** What BatchMeterUsage answers. */
export interface MeteringAnswer {
  readonly results: { readonly record: UsageRecord; readonly status: string; readonly meteringRecordId?: string }[];
  readonly unprocessed: UsageRecord[];
}

/** One entitlement of GetEntitlements. */
export interface EntitlementItem {
  readonly dimension?: string;
  readonly customerAWSAccountId?: string;
  readonly customerIdentifier?: string;
  readonly licenseArn?: string;
  readonly value?: string | number | boolean;
  readonly expirationDate?: string;
}

/** Resolves a registration token. Throws the service's errors (`InvalidTokenException`, `ExpiredTokenException`, ...). */
export async function resolveCustomer(token: string): Promise<ResolvedCustomer> {
  const out = await sdkClient(MarketplaceMeteringClient).send(new ResolveCustomerCommand({ RegistrationToken: token }));
  return {
    customerIdentifier: out.CustomerIdentifier || undefined,
    customerAWSAccountId: out.CustomerAWSAccountId || undefined,
    licenseArn: (out as { LicenseArn?: string }).LicenseArn || undefined,
    productCode: out.ProductCode || undefined,
  };
}

/** Sends at most 25 usage records in one BatchMeterUsage request (`productCode` only when a record has no license). */
export async function batchMeterUsage(records: readonly UsageRecord[], productCode?: string): Promise<MeteringAnswer> {
  const out = await sdkClient(MarketplaceMeteringClient).send(new BatchMeterUsageCommand({
    UsageRecords: records.map((r) => ({ ...r })),
    ...(productCode ? { ProductCode: productCode } : {}),
  } as ConstructorParameters<typeof BatchMeterUsageCommand>[0]));
  return {
    results: (out.Results ?? []).map((r) => ({
      record: r.UsageRecord as UsageRecord, status: String(r.Status), meteringRecordId: r.MeteringRecordId,
    })),
    unprocessed: (out.UnprocessedRecords ?? []) as UsageRecord[],
  };
}

let entitlementClient: MarketplaceEntitlementServiceClient | undefined;

/** Every entitlement of the product matching the filter (all pages). */
export async function getEntitlements(productCode: string, filter: Record<string, string[]>): Promise<EntitlementItem[]> {
  entitlementClient ??= new MarketplaceEntitlementServiceClient({ region: ENTITLEMENT_SERVICE_REGION, maxAttempts: SDK_MAX_ATTEMPTS });
  const found: EntitlementItem[] = [];
  let next: string | undefined;
  do {
    const out = await entitlementClient.send(new GetEntitlementsCommand({
      ProductCode: productCode, Filter: filter, NextToken: next, MaxResults: 25,
    } as ConstructorParameters<typeof GetEntitlementsCommand>[0]));
    for (const e of out.Entitlements ?? []) {
      const v = e.Value ?? {};
      found.push({
        dimension: e.Dimension,
        customerAWSAccountId: (e as { CustomerAWSAccountId?: string }).CustomerAWSAccountId,
        customerIdentifier: e.CustomerIdentifier,
        licenseArn: (e as { LicenseArn?: string }).LicenseArn,
        value: v.IntegerValue ?? v.DoubleValue ?? v.BooleanValue ?? v.StringValue,
        expirationDate: e.ExpirationDate ? new Date(e.ExpirationDate).toISOString() : undefined,
      });
    }
    next = out.NextToken;
  } while (next);
  return found;
}

/** The name of an AWS service error (`InvalidTokenException`, ...). */
export function errorName(error: unknown): string {
  return String((error as { name?: string } | undefined)?.name ?? 'Error');
}

/** Whether an error is Marketplace saying the call may succeed later (throttling, internal error). */
export function isTransient(error: unknown): boolean {
  const name = errorName(error);
  const status = (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
  return name === 'ThrottlingException' || name === 'InternalServiceErrorException' || (status !== undefined && status >= 500)
    || ['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'TimeoutError', 'RequestTimeout', 'NetworkingError'].includes(name)
    || (error as { code?: string } | undefined)?.code === 'ECONNRESET';
}
