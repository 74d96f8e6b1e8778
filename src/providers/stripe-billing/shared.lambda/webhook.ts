/**
 * Stripe's webhook calls, received exactly as Stripe sends them:
 *
 * 1. **Verify** the `Stripe-Signature` header on the raw body with the official
 *    SDK (`webhooks.constructEvent`, 300 s tolerance; any of several `v1`
 *    signatures, as Stripe sends while an endpoint secret is rolled; any of the
 *    stored secrets, `current` and `previous`). A timestamp more than 300 s
 *    ahead is refused too (the SDK checks only the past).
 *    The header must carry exactly one `t=` timestamp, so that the SDK and the
 *    check of the future judge the same one.
 * 2. **Validate** every field used (event id, type, `created`, the customer,
 *    the invoice or subscription) and find the tenant through the mapping,
 *    before any write: a refusal has no side effect.
 * 3. **Claim** the event id with a condition: of concurrent deliveries one
 *    claims, the others answer 409 so that Stripe retries them later, when the
 *    id is recorded as done (then they answer 200, duplicate). A claim left by
 *    a crash expires after `CLAIM_SECONDS` and is taken over.
 * 4. **Order**: record the state the event gives its invoice or subscription,
 *    only when it is newer than the recorded one (`replaces`; Stripe does not
 *    deliver events in order: https://docs.stripe.com/webhooks#event-ordering).
 *    An older event is acknowledged, recorded as done and emits nothing. A
 *    subscription's status (and `customer.deleted`) is also written on the
 *    tenant mapping, for the push.
 * 5. **Emit** the billing events on the bus (`emissions`), then record the id as done.
 */
import { getSecret } from '@aws-lambda-powertools/parameters/secrets';
import Stripe from 'stripe';
import { numberEnv, requiredEnv } from '../../../shared.lambda/env';
import { CUSTOMER_DELETED_STATUS, NOTIFIED_SUBSCRIPTION_STATUSES, STRIPE_ENV, STRIPE_WEBHOOK_EVENTS } from '../contract';

/** Stripe's default signature tolerance, which the handler uses. */
export const SIGNATURE_TOLERANCE_SECONDS = 300;
/** How long a claim protects an event being processed (the function's timeout is 15 s). */
export const CLAIM_SECONDS = 60;
/** The largest body accepted (Stripe's events are far smaller). */
export const MAX_BODY_BYTES = 512 * 1024;

/** The signing secrets held by the secret: the secret itself, or JSON `{"current", "previous"}` (the setup adds `endpointId`). */
export function signingSecretsOf(secretString: unknown): string[] {
  if (typeof secretString !== 'string' || secretString.trim() === '') throw new Error('The webhook signing secret is empty');
  const text = secretString.trim();
  if (!text.startsWith('{')) return [text];
  const parsed = JSON.parse(text) as { current?: unknown; previous?: unknown };
  const secrets = [parsed.current, parsed.previous].filter((s): s is string => typeof s === 'string' && s !== '');
  if (typeof parsed.current !== 'string' || secrets.length === 0) throw new Error('The webhook signing secret JSON has no "current" string');
  return secrets;
}

/** The stored signing secrets (cached a minute; `forceFetch` after a rotation). */
export async function signingSecrets(forceFetch: boolean): Promise<string[]> {
  const value = await getSecret(requiredEnv(STRIPE_ENV.WEBHOOK_SECRET_ARN), {
    maxAge: numberEnv(STRIPE_ENV.SECRET_CACHE_SECONDS, { min: 0, max: 3600, integer: true, fallback: 300 }),
    forceFetch,
  });
  return signingSecretsOf(value);
}

/** Why a call was refused. */
export type Refusal = 'missing-signature' | 'bad-signature' | 'stale' | 'malformed';

/** The outcome of verification. */
export type Verified = { readonly ok: true; readonly event: Stripe.Event } | { readonly ok: false; readonly reason: Refusal };

/**
 * The one signature timestamp of a `Stripe-Signature` header
 * (`t=<unix seconds>,v1=<hex>[,v1=<hex>...]`: one timestamp, one or more
 * signatures; https://docs.stripe.com/webhooks#verify-manually), or undefined
 * when the header has none, more than one, or one that is not exactly
 * `t=<digits>`. The SDK keeps the last `t=` of a header and judges the past
 * only: with one timestamp refused unless it is the only one, the SDK's check
 * and the handler's check of the future read the same value.
 */
export function signatureTimestamp(header: string): number | undefined {
  let timestamp: number | undefined;
  let count = 0;
  for (const item of header.split(',')) {
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq);
    // Anything that could be read as a timestamp counts (` t=`, `T=`), and must be exactly `t=<digits>`.
    if (key.trim().toLowerCase() !== 't') continue;
    count++;
    const value = item.slice(eq + 1);
    if (key !== 't' || !/^\d{1,12}$/.test(value)) return undefined;
    timestamp = Number(value);
  }
  return count === 1 ? timestamp : undefined;
}

/** Verifies a call's signature with the Stripe SDK against each secret. */
export function verify(payload: Buffer, header: string | undefined, secrets: string[], nowSeconds: number): Verified {
  if (!header) return { ok: false, reason: 'missing-signature' };
  const timestamp = signatureTimestamp(header);
  if (timestamp === undefined) return { ok: false, reason: 'malformed' };
  let reason: Refusal = 'bad-signature';
  for (const secret of secrets) {
    try {
      const event = Stripe.webhooks.constructEvent(payload, header, secret, SIGNATURE_TOLERANCE_SECONDS, undefined, nowSeconds * 1000);
      // Signed with this secret; the SDK judged only the past: judge the future too (the same, single timestamp).
      if (timestamp > nowSeconds + SIGNATURE_TOLERANCE_SECONDS) return { ok: false, reason: 'stale' };
      return { ok: true, event };
    } catch (error) {
      const message = (error as Error).message ?? '';
      if (/tolerance/i.test(message)) reason = 'stale';
      else if (/Unable to extract|No signatures found with expected scheme/.test(message)) return { ok: false, reason: 'malformed' };
      else if (!(error as { type?: string }).type?.startsWith('StripeSignatureVerification')) return { ok: false, reason: 'malformed' };
    }
  }
  return { ok: false, reason };
}

/** What an event is about, and the state it gives that object. */
export interface ObjectState {
  readonly kind: 'invoice' | 'subscription' | 'customer';
  /** `in_...`, `sub_...` or `cus_...`. */
  readonly id: string;
  /** The invoice state (`paid`, `payment_failed`, `action_required`, `void`, `uncollectible`), the subscription's status, or `deleted`. */
  readonly state: string;
  /** The event's `created`, epoch seconds. */
  readonly at: number;
  readonly eventId: string;
}

/** A verified, well-formed event the handler acts on. */
export interface Processed {
  readonly action: 'process';
  readonly type: string;
  readonly customerId: string;
  readonly change: ObjectState;
  /** The subscription's status before this event, when the event says (`data.previous_attributes.status`). */
  readonly previousStatus?: string;
  /** `cancellation_details.reason` of a subscription. */
  readonly cancellationReason?: string;
  /** The fields of the billing success and failure events. */
  readonly detail: Record<string, unknown>;
}

/** What the handler does with a verified event. */
export type Route =
  | Processed
  | { readonly action: 'ignore'; readonly why: string }
  | { readonly action: 'refuse'; readonly why: string };

const EVENT_ID = /^evt_[A-Za-z0-9_]{1,250}$/;
const CUSTOMER_ID = /^cus_[A-Za-z0-9]{1,250}$/;
const INVOICE_ID = /^in_[A-Za-z0-9]{1,250}$/;
const SUBSCRIPTION_ID = /^sub_[A-Za-z0-9]{1,250}$/;
const STATUS = /^[a-z_]{1,40}$/;
type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const int = (v: unknown): number | undefined => (typeof v === 'number' && Number.isInteger(v) ? v : undefined);

const E = STRIPE_WEBHOOK_EVENTS;
/** The state each invoice event gives its invoice. */
const INVOICE_STATES = new Map<string, string>([
  [E.INVOICE_PAID, 'paid'],
  [E.INVOICE_PAYMENT_FAILED, 'payment_failed'],
  [E.INVOICE_PAYMENT_ACTION_REQUIRED, 'action_required'],
  [E.INVOICE_VOIDED, 'void'],
  [E.INVOICE_MARKED_UNCOLLECTIBLE, 'uncollectible'],
]);
const SUBSCRIPTION_EVENTS: string[] = [E.SUBSCRIPTION_CREATED, E.SUBSCRIPTION_UPDATED, E.SUBSCRIPTION_DELETED];

/**
 * Final states: nothing changes them (https://docs.stripe.com/invoicing/overview#invoice-statuses:
 * a paid or void invoice allows no action; https://docs.stripe.com/api/subscriptions/object#subscription_object-status:
 * `incomplete_expired` is terminal, a `canceled` subscription cannot be updated).
 */
const TERMINAL: Record<ObjectState['kind'], readonly string[]> = {
  invoice: ['paid', 'void'],
  subscription: ['canceled', 'incomplete_expired'],
  customer: ['deleted'],
};

/** Whether a state is final for its kind of object. */
export function isTerminal(kind: ObjectState['kind'], state: string): boolean {
  return TERMINAL[kind].includes(state);
}

/** The terminal subscription statuses (for the tenant mapping's condition). */
export const TERMINAL_SUBSCRIPTION_STATUSES = TERMINAL.subscription;

/**
 * The order rule: whether an event's state replaces the stored state of the
 * same object. Stripe does not deliver events in order
 * (https://docs.stripe.com/webhooks#event-ordering) and `created` counts whole
 * seconds, so: a later `created` wins; on the same second a terminal state
 * wins over a non-terminal one (otherwise the stored state stays); a terminal
 * state is never replaced by a non-terminal one.
 */
export function replaces(kind: ObjectState['kind'], next: { state: string; at: number }, stored: { state: string; at: number } | undefined): boolean {
  if (!stored) return true;
  const nextTerminal = isTerminal(kind, next.state);
  const storedTerminal = isTerminal(kind, stored.state);
  if (storedTerminal && !nextTerminal) return false;
  if (next.at !== stored.at) return next.at > stored.at;
  return nextTerminal && !storedTerminal;
}

/**
 * Decides from a verified event alone (no I/O) what it is about: process,
 * ignore (types the handler does not map), or refuse (malformed).
 */
export function route(event: Stripe.Event, nowSeconds: number, retentionSeconds: number): Route {
  const e = event as unknown as Obj;
  const id = str(e.id);
  const type = str(e.type);
  const created = int(e.created);
  if (!id || !EVENT_ID.test(id)) return { action: 'refuse', why: 'event id missing or malformed' };
  if (!type) return { action: 'refuse', why: 'event type missing' };
  if (created === undefined) return { action: 'refuse', why: 'event created time missing' };
  // A replay older than the remembered ids could be processed twice; one from the future is forged or broken.
  if (created < nowSeconds - retentionSeconds + 86400 || created > nowSeconds + SIGNATURE_TOLERANCE_SECONDS) {
    return { action: 'refuse', why: 'event created time out of range' };
  }
  const data = obj(e.data);
  const object = obj(data.object);
  const occurredAt = new Date(created * 1000).toISOString();

  if (type === E.CUSTOMER_DELETED) {
    const customerId = str(object.id);
    if (!customerId || !CUSTOMER_ID.test(customerId)) return { action: 'refuse', why: 'event has no customer' };
    return {
      action: 'process',
      type,
      customerId,
      change: { kind: 'customer', id: customerId, state: 'deleted', at: created, eventId: id },
      detail: { provider: 'stripe', eventId: id, webhookType: type, customerId, occurredAt },
    };
  }

  const invoiceState = INVOICE_STATES.get(type);
  const isSubscription = SUBSCRIPTION_EVENTS.includes(type);
  if (invoiceState === undefined && !isSubscription) return { action: 'ignore', why: 'event type not mapped' };
  const customerId = str(object.customer);
  if (!customerId || !CUSTOMER_ID.test(customerId)) return { action: 'refuse', why: 'event has no customer' };

  if (invoiceState !== undefined) {
    const invoiceId = str(object.id);
    if (!invoiceId || !INVOICE_ID.test(invoiceId)) return { action: 'refuse', why: 'event has no invoice id' };
    return {
      action: 'process',
      type,
      customerId,
      change: { kind: 'invoice', id: invoiceId, state: invoiceState, at: created, eventId: id },
      detail: {
        provider: 'stripe',
        eventId: id,
        webhookType: type,
        customerId,
        invoiceId,
        subscriptionId: str(obj(obj(object.parent).subscription_details).subscription),
        amount: int(type === E.INVOICE_PAID ? object.amount_paid : object.amount_due),
        currency: str(object.currency),
        occurredAt,
      },
    };
  }

  const subscriptionId = str(object.id);
  if (!subscriptionId || !SUBSCRIPTION_ID.test(subscriptionId)) return { action: 'refuse', why: 'event has no subscription id' };
  const status = str(object.status) ?? (type === E.SUBSCRIPTION_DELETED ? 'canceled' : undefined);
  if (!status || !STATUS.test(status)) return { action: 'refuse', why: 'subscription event without a status' };
  const previous = str(obj(data.previous_attributes).status);
  return {
    action: 'process',
    type,
    customerId,
    change: { kind: 'subscription', id: subscriptionId, state: status, at: created, eventId: id },
    previousStatus: previous && STATUS.test(previous) ? previous : undefined,
    cancellationReason: str(obj(object.cancellation_details).reason),
    detail: {
      provider: 'stripe',
      eventId: id,
      webhookType: type,
      customerId,
      invoiceId: str(object.latest_invoice),
      subscriptionId,
      currency: str(object.currency),
      occurredAt,
    },
  };
}

/** One event to put on the bus. */
export interface Emission {
  readonly kind: 'success' | 'failure' | 'subscriptionChanged';
  readonly detail: Record<string, unknown>;
}

/** What the handler knows besides the event, when it has applied the event's state. */
export interface Applied {
  /** The object's state before this event, as recorded (undefined when none was). */
  readonly previousState?: string;
  /** For `customer.deleted`: the tenant's current subscription and its recorded status. */
  readonly tenantSubscriptionId?: string;
  readonly tenantSubscriptionStatus?: string;
  /** For `customer.deleted`: whether the tenant is being (or was) offboarded, so that the deletion is probably ours. */
  readonly offboarding?: boolean;
}

/** Why a subscription entered a status (the `reason` of the subscription changed event). */
function subscriptionReason(status: string, cancellationReason: string | undefined): string {
  switch (status) {
    case 'incomplete_expired': return 'first_invoice_not_paid';
    case 'past_due': return 'invoice_not_paid';
    case 'unpaid': return 'payment_retries_exhausted';
    case 'canceled': return cancellationReason ?? 'canceled';
    default: return status;
  }
}

/**
 * The events to emit for an event whose state was applied (no I/O): the billing
 * success and failure events as before, the billing failure event for
 * `invoice.payment_action_required`, and the subscription changed event.
 */
export function emissions(r: Processed, applied: Applied, tenantId: string): Emission[] {
  const base = { tenantId, ...r.detail };
  switch (r.type) {
    case E.INVOICE_PAID: return [{ kind: 'success', detail: base }];
    case E.INVOICE_PAYMENT_FAILED: return [{ kind: 'failure', detail: { ...base, reason: 'payment_failed' } }];
    case E.INVOICE_PAYMENT_ACTION_REQUIRED: return [{ kind: 'failure', detail: { ...base, reason: 'payment_action_required' } }];
    case E.CUSTOMER_DELETED: return [{
      kind: 'subscriptionChanged',
      detail: {
        ...base,
        subscriptionId: applied.tenantSubscriptionId,
        status: CUSTOMER_DELETED_STATUS,
        previousStatus: applied.tenantSubscriptionStatus,
        reason: applied.offboarding ? 'offboarding' : 'customer_deleted',
      },
    }];
    default: break;
  }
  if (r.change.kind !== 'subscription') return [];
  const out: Emission[] = [];
  const status = r.change.state;
  if (r.type === E.SUBSCRIPTION_DELETED && r.cancellationReason === 'payment_failed') {
    out.push({ kind: 'failure', detail: { ...base, reason: 'subscription_canceled_for_non_payment' } });
  }
  // The status before: as the event says, else as recorded. A deletion is a change even when neither is known.
  const previousStatus = r.previousStatus ?? applied.previousState;
  const changed = previousStatus !== undefined ? previousStatus !== status : r.type === E.SUBSCRIPTION_DELETED;
  if ((NOTIFIED_SUBSCRIPTION_STATUSES as readonly string[]).includes(status) && changed) {
    out.push({
      kind: 'subscriptionChanged',
      detail: {
        tenantId,
        provider: 'stripe',
        eventId: r.detail.eventId,
        webhookType: r.type,
        customerId: r.customerId,
        subscriptionId: r.change.id,
        status,
        previousStatus,
        reason: subscriptionReason(status, r.cancellationReason),
        occurredAt: r.detail.occurredAt,
      },
    });
  }
  return out;
}
