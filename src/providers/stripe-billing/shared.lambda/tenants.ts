/**
 * The tenant to customer mapping (see `CUSTOMERS_TABLE_LAYOUT`): the record of
 * which Stripe customer and subscription belong to a tenant, written with
 * conditions so that concurrent and repeated lifecycle events agree on one.
 */
import { GetCommand, NumberValue, PutCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { documentClient } from '../../../shared.lambda/aws-clients';
import { cancellationCodes, isConditionalCheckFailed } from '../../../shared.lambda/dynamodb';
import { requiredEnv } from '../../../shared.lambda/env';
import { CancellationPolicy, CUSTOMERS_TABLE_LAYOUT, STRIPE_ENV } from '../contract';

/** Where a tenant is in its life. */
export type TenantStatus = 'CREATING' | 'ACTIVE' | 'OFFBOARDING' | 'OFFBOARDED';

/** A tenant's mapping item. */
export interface TenantRecord {
  readonly tenantId: string;
  readonly status: TenantStatus;
  /** 1 at the first onboarding, +1 at each re-onboarding after an offboarding. */
  readonly generation: number;
  readonly customerId?: string;
  /** When this generation first tried to create its customer (ISO). */
  readonly customerAttemptedAt?: string;
  readonly subscriptionId?: string;
  readonly subscriptionAttemptedAt?: string;
  /** The time of the onboarding event of this generation (ISO). */
  readonly onboardedAt?: string;
  /** The time of the offboarding event (ISO). */
  readonly offboardedAt?: string;
  /** When an offboarding that waits for the tenant's last windows does its final push and cancellation (ISO). */
  readonly finalizeAt?: string;
  readonly cancellation?: CancellationPolicy;
  /** When an `AT_PERIOD_END` cancellation takes effect (ISO). */
  readonly cancelAt?: string;
  readonly customerDeleted?: boolean;
  /** A deletion asked for on offboarding and waiting for the customer's invoices to settle. */
  readonly customerDeletion?: 'PENDING' | 'DONE' | 'GAVE_UP';
  /** When the subscription started (ISO): no meter event is timestamped before it. */
  readonly subscriptionStartedAt?: string;
  /** The subscription's current billing period as last read from Stripe (ISO). */
  readonly periodStart?: string;
  readonly periodEnd?: string;
  /** The start of the period before `periodStart`, when it was read as the current one (ISO). */
  readonly previousPeriodStart?: string;
  /** The subscription's currency (for the invoice item that marks usage carried over). */
  readonly currency?: string;
  /** The subscription's Stripe status, the time (epoch seconds) of the event or read that set it, and the subscription it is of. */
  readonly subscriptionStatus?: string;
  readonly subscriptionStatusAt?: number;
  readonly subscriptionStatusOf?: string;
  /** The customer was deleted in Stripe, not by an offboarding (and when, ISO, by the webhook). */
  readonly customerDeletedByStripe?: boolean;
  readonly customerDeletedByStripeAt?: number;
  /** When the subscription ended, as last read from Stripe (ISO). */
  readonly subscriptionEndedAt?: string;
  /** With plans: the tenant's plan as the subscription's items are, and the plan version (BillingPlans') that set it. */
  readonly plan?: string;
  readonly planVersion?: number;
}

function table(): string {
  return requiredEnv(STRIPE_ENV.CUSTOMERS_TABLE_NAME);
}

/** Key of a tenant's item. */
export function tenantKey(tenantId: string) {
  return { [CUSTOMERS_TABLE_LAYOUT.partitionKey]: `${CUSTOMERS_TABLE_LAYOUT.tenantPrefix}${tenantId}` };
}

/** Key of a customer's reverse item. */
export function customerKey(customerId: string) {
  return { [CUSTOMERS_TABLE_LAYOUT.partitionKey]: `${CUSTOMERS_TABLE_LAYOUT.customerPrefix}${customerId}` };
}

function num(v: unknown): number {
  return v instanceof NumberValue ? Number(v.value) : Number(v);
}

function recordOf(item: Record<string, unknown> | undefined): TenantRecord | undefined {
  if (!item) return undefined;
  const numbers = Object.fromEntries(['subscriptionStatusAt', 'customerDeletedByStripeAt', 'planVersion']
    .filter((k) => item[k] !== undefined).map((k) => [k, num(item[k])]));
  return { ...(item as unknown as TenantRecord), generation: num(item.generation), ...numbers };
}

/** The tenant's mapping (strongly consistent), or undefined. */
export async function getTenant(tenantId: string): Promise<TenantRecord | undefined> {
  const got = await documentClient().send(new GetCommand({ TableName: table(), Key: tenantKey(tenantId), ConsistentRead: true }));
  return recordOf(got.Item);
}

/** The tenant a Stripe customer belongs to, through the reverse item. */
export async function tenantOfCustomer(customerId: string): Promise<string | undefined> {
  const got = await documentClient().send(new GetCommand({ TableName: table(), Key: customerKey(customerId), ConsistentRead: true }));
  return typeof got.Item?.tenantId === 'string' ? got.Item.tenantId : undefined;
}

/** Writes the first mapping of a tenant; returns false when one exists already. */
export async function putNewTenant(record: TenantRecord): Promise<boolean> {
  try {
    await documentClient().send(new PutCommand({
      TableName: table(),
      Item: { ...tenantKey(record.tenantId), ...record },
      ConditionExpression: 'attribute_not_exists(#pk)',
      ExpressionAttributeNames: { '#pk': CUSTOMERS_TABLE_LAYOUT.partitionKey },
    }));
    return true;
  } catch (error) {
    if (isConditionalCheckFailed(error)) return false;
    throw error;
  }
}

/**
 * Updates a tenant's item on the condition that its generation (and, when
 * given, its status) is the one read; returns the new item, or undefined when
 * the condition failed (another event got there first).
 */
export async function updateTenant(
  tenantId: string,
  expect: { generation: number; status?: TenantStatus[] },
  set: Record<string, unknown>,
  opts: { ifAbsent?: string[]; remove?: string[] } = {},
): Promise<TenantRecord | undefined> {
  const names: Record<string, string> = { '#generation': 'generation' };
  const values: Record<string, unknown> = { ':generation': expect.generation };
  const sets: string[] = [];
  for (const [i, [k, v]] of Object.entries(set).entries()) {
    names[`#s${i}`] = k;
    values[`:s${i}`] = v;
    sets.push(opts.ifAbsent?.includes(k) ? `#s${i} = if_not_exists(#s${i}, :s${i})` : `#s${i} = :s${i}`);
  }
  const removes = (opts.remove ?? []).map((k, i) => {
    names[`#r${i}`] = k;
    return `#r${i}`;
  });
  let condition = '#generation = :generation';
  if (expect.status) {
    names['#status'] = 'status';
    condition += ` AND #status IN (${expect.status.map((s, i) => {
      values[`:e${i}`] = s;
      return `:e${i}`;
    }).join(', ')})`;
  }
  try {
    const res = await documentClient().send(new UpdateCommand({
      TableName: table(),
      Key: tenantKey(tenantId),
      UpdateExpression: [sets.length ? `SET ${sets.join(', ')}` : '', removes.length ? `REMOVE ${removes.join(', ')}` : ''].join(' ').trim(),
      ConditionExpression: condition,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
      ReturnValues: 'ALL_NEW',
    }));
    return recordOf(res.Attributes);
  } catch (error) {
    if (isConditionalCheckFailed(error)) return undefined;
    throw error;
  }
}

/**
 * Records the tenant's customer and its reverse item in one transaction, on
 * the condition that the tenant has no other customer. Returns the customer id
 * the tenant has afterwards (another one when a concurrent event recorded it first).
 */
export async function recordCustomer(tenantId: string, generation: number, customerId: string): Promise<string> {
  try {
    await documentClient().send(new TransactWriteCommand({
      TransactItems: [
        {
          Update: {
            TableName: table(),
            Key: tenantKey(tenantId),
            UpdateExpression: 'SET customerId = :c',
            ConditionExpression: '#generation = :g AND (attribute_not_exists(customerId) OR customerId = :c)',
            ExpressionAttributeNames: { '#generation': 'generation' },
            ExpressionAttributeValues: { ':c': customerId, ':g': generation },
          },
        },
        { Put: { TableName: table(), Item: { ...customerKey(customerId), tenantId, generation } } },
      ],
    }));
    return customerId;
  } catch (error) {
    const codes = cancellationCodes(error);
    if (!codes?.includes('ConditionalCheckFailed')) throw error;
    const now = await getTenant(tenantId);
    if (!now?.customerId) throw new Error(`Tenant ${tenantId}: generation changed while its customer was being recorded; retry`);
    return now.customerId;
  }
}

