/**
 * The registrations table (`REGISTRATIONS_TABLE_LAYOUT`): redeemed tokens, registrations, the
 * subscriber (license) each belongs to, and the tenant that claimed it. Every write is
 * conditional: a token is redeemed once, a subscriber has one registration, a registration one tenant.
 */
import { createHash, randomBytes } from 'node:crypto';
import { GetCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { documentClient } from '../../../shared.lambda/aws-clients';
import { cancellationCodes, isConditionalCheckFailed } from '../../../shared.lambda/dynamodb';
import { REGISTRATIONS_TABLE_LAYOUT as L } from '../contract';
import type { ResolvedCustomer } from './marketplace-api';

const doc = () => documentClient();
export const key = (pk: string) => ({ [L.partitionKey]: pk });
export const registrationKey = (id: string) => key(`${L.registrationPrefix}${id}`);
export const tokenKey = (tokenHash: string) => key(`${L.tokenPrefix}${tokenHash}`);
export const subscriberKey = (subscriber: string) => key(`${L.subscriberPrefix}${subscriber}`);
export const tenantKey = (tenantId: string) => key(`${L.tenantPrefix}${tenantId}`);
export const agreementKey = (agreementId: string) => key(`${L.agreementPrefix}${agreementId}`);
export const eventKey = (eventId: string) => key(`${L.eventPrefix}${eventId}`);

/** Tokens are kept (hashed) this long after their redemption: Marketplace's tokens expire within hours. */
const TOKEN_RETENTION_SECONDS = 7 * 24 * 3600;

/** A token as stored: its SHA-256 (the token itself is never stored or logged). */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** An opaque registration id: 128 random bits, base64url (22 characters). */
export function newRegistrationId(): string {
  return randomBytes(16).toString('base64url');
}

/**
 * The subscriber a resolved customer is metered as: its license ARN (concurrent agreements), or
 * its customer identifier for products integrated before them.
 */
export function subscriberOf(c: Pick<ResolvedCustomer, 'licenseArn' | 'customerIdentifier'>): string | undefined {
  if (c.licenseArn) return c.licenseArn;
  return c.customerIdentifier ? `${L.customerSubscriberPrefix}${c.customerIdentifier}` : undefined;
}

/** A registration as stored. */
export interface Registration {
  readonly registrationId: string;
  readonly subscriber: string;
  readonly licenseArn?: string;
  readonly customerAWSAccountId?: string;
  readonly customerIdentifier?: string;
  readonly productCode: string;
  readonly createdAt: string;
  readonly tenantId?: string;
}

/** What redeeming a token did. */
export type Redemption =
  | { readonly outcome: 'CREATED' | 'EXISTING'; readonly registrationId: string }
  | { readonly outcome: 'REPLAYED' };

/**
 * Redeems a resolved token: in one transaction the token (once), the registration and its
 * subscriber (once). A token seen before is a replay: nothing is written. A fresh token of a
 * subscriber that already has a registration (the buyer asked Marketplace for a new link) is
 * redeemed and leads to that registration.
 */
export async function redeemToken(
  table: string, tokenHash: string, customer: ResolvedCustomer & { productCode: string }, nowMs: number,
): Promise<Redemption> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await redeemOnce(table, tokenHash, customer, nowMs);
    } catch (error) {
      // Two submits of one token at the same instant: DynamoDB cancels one with TransactionConflict; decide again.
      if (attempt >= 4 || !cancellationCodes(error)?.includes('TransactionConflict')) throw error;
      await new Promise((r) => setTimeout(r, 50 * attempt));
    }
  }
}

async function redeemOnce(
  table: string, tokenHash: string, customer: ResolvedCustomer & { productCode: string }, nowMs: number,
): Promise<Redemption> {
  const subscriber = subscriberOf(customer)!;
  const now = new Date(nowMs).toISOString();
  const expiresAt = Math.floor(nowMs / 1000) + TOKEN_RETENTION_SECONDS;
  const registrationId = newRegistrationId();
  const notExists = { ConditionExpression: 'attribute_not_exists(#pk)', ExpressionAttributeNames: { '#pk': L.partitionKey } };
  const registration = {
    registrationId,
    subscriber,
    productCode: customer.productCode,
    createdAt: now,
    ...(customer.licenseArn ? { licenseArn: customer.licenseArn } : {}),
    ...(customer.customerAWSAccountId ? { customerAWSAccountId: customer.customerAWSAccountId } : {}),
    ...(customer.customerIdentifier ? { customerIdentifier: customer.customerIdentifier } : {}),
  };
  try {
    await doc().send(new TransactWriteCommand({
      TransactItems: [
        { Put: { TableName: table, Item: { ...tokenKey(tokenHash), registrationId, usedAt: now, [L.ttlAttribute]: expiresAt }, ...notExists } },
        { Put: { TableName: table, Item: { ...registrationKey(registrationId), ...registration }, ...notExists } },
        { Put: { TableName: table, Item: { ...subscriberKey(subscriber), subscriber, registrationId, state: 'PENDING', createdAt: now }, ...notExists } },
      ],
    }));
    return { outcome: 'CREATED', registrationId };
  } catch (error) {
    const codes = cancellationCodes(error);
    if (!codes) throw error;
    if (codes[0] === 'ConditionalCheckFailed') return { outcome: 'REPLAYED' };
    if (codes[2] !== 'ConditionalCheckFailed' || codes.includes('TransactionConflict')) throw error;
  }
  // The subscriber is registered already: redeem the token for its registration.
  const existing = await doc().send(new GetCommand({ TableName: table, Key: subscriberKey(subscriber), ConsistentRead: true }));
  const existingId = existing.Item?.registrationId as string | undefined;
  if (!existingId) {
    // A subscriber item made by an event before any registration: attach this registration to it.
    return attachRegistration(table, tokenHash, subscriber, registrationId, registration, now, expiresAt);
  }
  try {
    await doc().send(new TransactWriteCommand({
      TransactItems: [{
        Put: {
          TableName: table, Item: { ...tokenKey(tokenHash), registrationId: existingId, usedAt: now, [L.ttlAttribute]: expiresAt }, ...notExists,
        },
      }],
    }));
  } catch (error) {
    if (cancellationCodes(error)?.[0] === 'ConditionalCheckFailed') return { outcome: 'REPLAYED' };
    throw error;
  }
  return { outcome: 'EXISTING', registrationId: existingId };
}

async function attachRegistration(
  table: string, tokenHash: string, subscriber: string, registrationId: string, registration: Record<string, unknown>, now: string, expiresAt: number,
): Promise<Redemption> {
  try {
    await doc().send(new TransactWriteCommand({
      TransactItems: [
        { Put: { TableName: table, Item: { ...tokenKey(tokenHash), registrationId, usedAt: now, [L.ttlAttribute]: expiresAt }, ConditionExpression: 'attribute_not_exists(#pk)', ExpressionAttributeNames: { '#pk': L.partitionKey } } },
        { Put: { TableName: table, Item: { ...registrationKey(registrationId), ...registration }, ConditionExpression: 'attribute_not_exists(#pk)', ExpressionAttributeNames: { '#pk': L.partitionKey } } },
        {
          Update: {
            TableName: table,
            Key: subscriberKey(subscriber),
            UpdateExpression: 'SET registrationId = :r',
            ConditionExpression: 'attribute_exists(#pk) AND attribute_not_exists(registrationId)',
            ExpressionAttributeNames: { '#pk': L.partitionKey },
            ExpressionAttributeValues: { ':r': registrationId },
          },
        },
      ],
    }));
    return { outcome: 'CREATED', registrationId };
  } catch (error) {
    const codes = cancellationCodes(error);
    if (codes?.[0] === 'ConditionalCheckFailed') return { outcome: 'REPLAYED' };
    throw new Error(`Registration of ${subscriber}: its subscriber changed concurrently; the buyer may submit the token again`, { cause: error });
  }
}

export async function getItem<T>(table: string, k: Record<string, string>): Promise<T | undefined> {
  const got = await doc().send(new GetCommand({ TableName: table, Key: k, ConsistentRead: true }));
  return got.Item as T | undefined;
}

export function getRegistration(table: string, registrationId: string): Promise<Registration | undefined> {
  return getItem<Registration>(table, registrationKey(registrationId));
}

/** A tenant as stored. */
export interface TenantRecord {
  readonly tenantId: string;
  readonly registrationId: string;
  readonly subscriber: string;
  readonly licenseArn?: string;
  readonly customerAWSAccountId?: string;
  readonly customerIdentifier?: string;
  readonly status: 'ACTIVE' | 'OFFBOARDED';
  readonly onboardedAt: string;
  readonly offboardedAt?: string;
}

export function getTenant(table: string, tenantId: string): Promise<TenantRecord | undefined> {
  return getItem<TenantRecord>(table, tenantKey(tenantId));
}

/** A subscriber (license) as stored, with its subscription state. */
export interface SubscriberRecord {
  readonly subscriber: string;
  readonly registrationId?: string;
  readonly tenantId?: string;
  readonly state: 'PENDING' | 'ACTIVE' | 'CANCELLATION_PENDING' | 'CANCELLED';
  readonly stateAt?: string;
  readonly stateRank?: number;
  readonly stateEventId?: string;
  readonly agreementId?: string;
  readonly meterUntil?: string;
  readonly finalMeteredAt?: string;
}

export function getSubscriber(table: string, subscriber: string): Promise<SubscriberRecord | undefined> {
  return getItem<SubscriberRecord>(table, subscriberKey(subscriber));
}

/** What claiming a registration for a tenant did. */
export type Claim =
  | { readonly outcome: 'CLAIMED' | 'ALREADY_CLAIMED_BY_TENANT'; readonly registration: Registration; readonly subscriber?: SubscriberRecord }
  | { readonly outcome: 'NO_REGISTRATION' | 'CLAIMED_BY_ANOTHER_TENANT' | 'TENANT_HAS_ANOTHER_REGISTRATION' };

/**
 * Links a tenant to a registration, in one transaction: the registration (unclaimed, or claimed by
 * this tenant), the tenant (new, offboarded, or already on this registration) and the subscriber.
 * Idempotent: the same onboarding delivered twice claims once.
 */
export async function claimRegistration(table: string, registrationId: string, tenantId: string, nowMs: number): Promise<Claim> {
  const registration = await getRegistration(table, registrationId);
  if (!registration) return { outcome: 'NO_REGISTRATION' };
  if (registration.tenantId && registration.tenantId !== tenantId) return { outcome: 'CLAIMED_BY_ANOTHER_TENANT' };
  const now = new Date(nowMs).toISOString();
  const tenant = {
    ...tenantKey(tenantId),
    tenantId,
    registrationId,
    subscriber: registration.subscriber,
    status: 'ACTIVE',
    onboardedAt: now,
    ...(registration.licenseArn ? { licenseArn: registration.licenseArn } : {}),
    ...(registration.customerAWSAccountId ? { customerAWSAccountId: registration.customerAWSAccountId } : {}),
    ...(registration.customerIdentifier ? { customerIdentifier: registration.customerIdentifier } : {}),
  };
  try {
    await doc().send(new TransactWriteCommand({
      TransactItems: [
        {
          Update: {
            TableName: table,
            Key: registrationKey(registrationId),
            UpdateExpression: 'SET tenantId = :t, claimedAt = if_not_exists(claimedAt, :now)',
            ConditionExpression: 'attribute_exists(#pk) AND (attribute_not_exists(tenantId) OR tenantId = :t)',
            ExpressionAttributeNames: { '#pk': L.partitionKey },
            ExpressionAttributeValues: { ':t': tenantId, ':now': now },
          },
        },
        {
          Put: {
            TableName: table,
            Item: tenant,
            // A new tenant, the same tenant on the same registration (a redelivery), or an offboarded one re-onboarded.
            ConditionExpression: 'attribute_not_exists(#pk) OR registrationId = :r OR #s = :off',
            ExpressionAttributeNames: { '#pk': L.partitionKey, '#s': 'status' },
            ExpressionAttributeValues: { ':r': registrationId, ':off': 'OFFBOARDED' },
          },
        },
        {
          Update: {
            TableName: table,
            Key: subscriberKey(registration.subscriber),
            UpdateExpression: 'SET tenantId = :t',
            ExpressionAttributeValues: { ':t': tenantId },
          },
        },
      ],
    }));
  } catch (error) {
    const codes = cancellationCodes(error);
    if (!codes) throw error;
    if (codes[0] === 'ConditionalCheckFailed') return { outcome: 'CLAIMED_BY_ANOTHER_TENANT' };
    if (codes[1] === 'ConditionalCheckFailed') return { outcome: 'TENANT_HAS_ANOTHER_REGISTRATION' };
    throw error;
  }
  const subscriber = await getSubscriber(table, registration.subscriber);
  return { outcome: registration.tenantId === tenantId ? 'ALREADY_CLAIMED_BY_TENANT' : 'CLAIMED', registration: { ...registration, tenantId }, subscriber };
}

/** Marks a tenant offboarded (its usage from then on is not metered). Returns false when no tenant is known. */
export async function offboardTenant(table: string, tenantId: string, at: string): Promise<boolean> {
  try {
    await doc().send(new UpdateCommand({
      TableName: table,
      Key: tenantKey(tenantId),
      UpdateExpression: 'SET #s = :off, offboardedAt = :at',
      // An offboarding older than the tenant's (re-)onboarding is stale.
      ConditionExpression: 'attribute_exists(#pk) AND onboardedAt <= :at',
      ExpressionAttributeNames: { '#pk': L.partitionKey, '#s': 'status' },
      ExpressionAttributeValues: { ':off': 'OFFBOARDED', ':at': at },
    }));
    return true;
  } catch (error) {
    if (isConditionalCheckFailed(error)) return false;
    throw error;
  }
}
