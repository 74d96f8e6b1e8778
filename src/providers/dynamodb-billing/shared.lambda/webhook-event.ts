/**
 * Reads a verified webhook body into what the webhook emits, checking every
 * field it uses before anything is written: a refusal names the field and
 * leaves no trace.
 */
import { identifierRule, isTenantId } from '../../../events/identifiers';

/** Payment event types that become the billing success event. */
export const SUCCESS_TYPES: readonly string[] = ['invoice.paid', 'invoice.payment_succeeded', 'payment_intent.succeeded', 'charge.succeeded', 'payment.succeeded'];
/** Payment event types that become the billing failure event. */
export const FAILURE_TYPES: readonly string[] = ['invoice.payment_failed', 'payment_intent.payment_failed', 'charge.failed', 'payment.failed'];

/** The detail of a billing success or failure event. */
export interface BillingEventDetail {
  /** The webhook event id: stable across the sender's retries. */
  readonly eventId: string;
  readonly webhookType: string;
  readonly tenantId?: string;
  readonly customerId?: string;
  readonly invoiceId?: string;
  /** In the currency's minor unit (cents for USD), as the billing system sends it. */
  readonly amount?: number;
  readonly currency?: string;
  readonly occurredAt?: string;
}

/** A webhook event whose every field was checked. */
export interface WebhookEvent {
  readonly eventId: string;
  readonly type: string;
  /** Which billing event it becomes. */
  readonly kind: 'success' | 'failure' | 'ignored';
  /** The detail to emit, for a success or failure. */
  readonly detail?: BillingEventDetail;
}

/** The result of reading a body. */
export type ReadResult = { readonly event: WebhookEvent; readonly problem?: undefined } | { readonly event?: undefined; readonly problem: string };

const ID = /^[\w.:@+=/-]{1,256}$/;
const TYPE = /^[A-Za-z0-9_.-]{1,128}$/;
const CURRENCY = /^[A-Za-z]{3}$/;
/** 2000-01-01T00:00:00Z: no billing event is older. */
const MIN_CREATED = 946_684_800;
/** A sender's clock may run ahead, but not by a day. */
const MAX_CREATED_AHEAD = 86_400;

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

class Refusal extends Error {}

function optionalId(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string' || !ID.test(value)) throw new Refusal(`${field} must be an id of letters, digits and _.:@+=/- (at most 256)`);
  return value;
}

/** A tenant id, under the one identifier rule (`events/identifiers.ts`), as the lifecycle handlers and the ingestor read it. */
function optionalTenantId(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (!isTenantId(value)) throw new Refusal(`${field} ${identifierRule('tenantId')}`);
  return value;
}

function optionalAmount(object: Obj): number | undefined {
  const field = ['amount_paid', 'amount_due', 'amount'].find((f) => object[f] !== undefined && object[f] !== null);
  if (field === undefined) return undefined;
  const value = object[field];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new Refusal(`data.object.${field} must be a whole number of 0 or more (the amount in minor units)`);
  }
  return value;
}

function optionalCreated(value: unknown, nowSeconds: number): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < MIN_CREATED || value > nowSeconds + MAX_CREATED_AHEAD) {
    throw new Refusal('created must be a time in whole seconds since 1970 between 2000-01-01 and a day from now');
  }
  return new Date(value * 1000).toISOString();
}

function kindOf(type: string): WebhookEvent['kind'] {
  return SUCCESS_TYPES.includes(type) ? 'success' : FAILURE_TYPES.includes(type) ? 'failure' : 'ignored';
}

function paymentDetail(body: Obj, eventId: string, type: string, occurredAt: string | undefined): BillingEventDetail {
  const data = body.data === undefined ? {} : body.data;
  if (!isObject(data)) throw new Refusal('data must be an object');
  const object = data.object === undefined ? {} : data.object;
  if (!isObject(object)) throw new Refusal('data.object must be an object');
  const metadata = object.metadata === undefined || object.metadata === null ? {} : object.metadata;
  if (!isObject(metadata)) throw new Refusal('data.object.metadata must be an object');
  const currency = object.currency;
  if (currency !== undefined && currency !== null && (typeof currency !== 'string' || !CURRENCY.test(currency))) {
    throw new Refusal('data.object.currency must be an ISO 4217 code');
  }
  return {
    eventId,
    webhookType: type,
    tenantId: optionalTenantId(metadata.tenantId, 'data.object.metadata.tenantId') ?? optionalTenantId(object.tenantId, 'data.object.tenantId')
      ?? optionalTenantId(body.tenantId, 'tenantId'),
    customerId: optionalId(object.customer, 'data.object.customer') ?? optionalId(object.customerId, 'data.object.customerId'),
    invoiceId: optionalId(object.invoice, 'data.object.invoice') ?? (type.startsWith('invoice.') ? optionalId(object.id, 'data.object.id') : undefined),
    amount: optionalAmount(object),
    currency: typeof currency === 'string' ? currency : undefined,
    occurredAt,
  };
}

/** Reads and checks a verified body; a problem names the field. */
export function readWebhookEvent(payload: Buffer, nowSeconds: number): ReadResult {
  let body: unknown;
  try {
    body = JSON.parse(payload.toString('utf8'));
  } catch {
    return { problem: 'body is not JSON' };
  }
  try {
    if (!isObject(body)) throw new Refusal('body must be a JSON object');
    if (typeof body.id !== 'string' || !ID.test(body.id)) throw new Refusal('id must be an event id of letters, digits and _.:@+=/- (at most 256)');
    if (typeof body.type !== 'string' || !TYPE.test(body.type)) throw new Refusal('type must be an event type such as invoice.paid');
    const occurredAt = optionalCreated(body.created, nowSeconds);
    const kind = kindOf(body.type);
    const detail = kind === 'ignored' ? undefined : paymentDetail(body, body.id, body.type, occurredAt);
    return { event: { eventId: body.id, type: body.type, kind, detail } };
  } catch (error) {
    if (error instanceof Refusal) return { problem: error.message };
    throw error;
  }
}
