/**
 * The layout of the DynamoDB billing tables. Shared by the construct (which
 * creates the tables), the handlers (which write them) and the tests.
 *
 * Billing table: partition key `pk` (S), sort key `sk` (S).
 *
 * | item           | pk                    | sk                                                      |
 * |----------------|-----------------------|---------------------------------------------------------|
 * | customer       | `CUSTOMER#<tenantId>` | `CUSTOMER`                                              |
 * | user           | `CUSTOMER#<tenantId>` | `USER#<userId>`                                         |
 * | charge line    | `CUSTOMER#<tenantId>` | `CHARGE#<YYYY-MM>#<granularity>#<windowStartIso>#<metric>` |
 * | period total   | `CUSTOMER#<tenantId>` | `PERIOD#<YYYY-MM>#<currency>`                           |
 * | push watermark | `PUSH`                | `WATERMARK`                                             |
 *
 * Webhook events table: partition key `pk` (S) = `EVENT#<eventId>`; TTL attribute `expiresAt`.
 */
export const BILLING_TABLE_LAYOUT = {
  partitionKey: 'pk',
  sortKey: 'sk',
} as const;

/** The webhook events table's keys and TTL attribute. */
export const WEBHOOK_EVENTS_TABLE_LAYOUT = {
  partitionKey: 'pk',
  ttlAttribute: 'expiresAt',
} as const;

/** Customer and user status values. */
export const STATUS = {
  ACTIVE: 'ACTIVE',
  CLOSED: 'CLOSED',
  DELETED: 'DELETED',
} as const;

/** Partition key of everything kept for a tenant's customer. */
export function customerPk(tenantId: string): string {
  return `CUSTOMER#${tenantId}`;
}

/** Sort key of the customer item. */
export const CUSTOMER_SK = 'CUSTOMER';

/** Sort key of a user item. */
export function userSk(userId: string): string {
  return `USER#${userId}`;
}

/** Prefix of user items' sort keys. */
export const USER_SK_PREFIX = 'USER#';

/** Prefix of charge lines' sort keys. */
export const CHARGE_SK_PREFIX = 'CHARGE#';

/** The billing period (calendar month, UTC) of a window start: `YYYY-MM`. */
export function billingPeriodOf(windowStartIso: string): string {
  return windowStartIso.slice(0, 7);
}

/** Sort key of the charge line of one aggregate window: unique per window, so it doubles as the pushed marker. */
export function chargeSk(windowStartIso: string, granularity: string, metric: string): string {
  return `${CHARGE_SK_PREFIX}${billingPeriodOf(windowStartIso)}#${granularity}#${windowStartIso}#${metric}`;
}

/** Sort key of a period total. */
export function periodSk(period: string, currency: string): string {
  return `PERIOD#${period}#${currency}`;
}

/** Key of the usage push watermark. */
export const WATERMARK_KEY = { pk: 'PUSH', sk: 'WATERMARK' } as const;

/** Key of a processed webhook event. */
export function webhookEventPk(eventId: string): string {
  return `EVENT#${eventId}`;
}
