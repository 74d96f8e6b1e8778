/**
 * Stripe's webhook calls, received exactly as Stripe sends them:
 *
 * 1. **Verify** the `Stripe-Signature` header on the raw body with the official
 *    SDK (`webhooks.constructEvent`, 300 s tolerance; any of several `v1`
 *    signatures, as Stripe sends while an endpoint secret is rolled; any of the
 *    stored secrets, `current` and `previous`). A timestamp more than 300 s
 *    ahead is refused too (the SDK checks only the past).
 * 2. **Validate** every field used (event id, type, `created`, the customer)
 *    and find the tenant through the mapping, before any write: a refusal has no side effect.
 * 3. **Claim** the event id with a condition: of concurrent deliveries one
 *    claims, the others answer 409 so that Stripe retries them later, when the
 *    id is recorded as done (then they answer 200, duplicate). A claim left by
 *    a crash expires after `CLAIM_SECONDS` and is taken over.
 * 4. **Emit** the billing event on the bus, then record the id as done.
 */
import { getSecret } from '@aws-lambda-powertools/parameters/secrets';
import Stripe from 'stripe';
import { numberEnv, requiredEnv } from '../../../shared.lambda/env';
import { STRIPE_ENV, STRIPE_WEBHOOK_EVENTS } from '../contract';

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

const SIGNATURE_TIMESTAMP = /(?:^|,)\s*t=(\d{1,12})(?:,|$)/;

/** Verifies a call's signature with the Stripe SDK against each secret. */
export function verify(payload: Buffer, header: string | undefined, secrets: string[], nowSeconds: number): Verified {
  if (!header) return { ok: false, reason: 'missing-signature' };
  const t = SIGNATURE_TIMESTAMP.exec(header);
  if (!t) return { ok: false, reason: 'malformed' };
  let reason: Refusal = 'bad-signature';
  for (const secret of secrets) {
    try {
      const event = Stripe.webhooks.constructEvent(payload, header, secret, SIGNATURE_TOLERANCE_SECONDS, undefined, nowSeconds * 1000);
      // Signed with this secret; the SDK judged only the past: judge the future too.
      if (Number(t[1]) > nowSeconds + SIGNATURE_TOLERANCE_SECONDS) return { ok: false, reason: 'stale' };
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

/** What the handler does with a verified event. */
export type Route =
  | { readonly action: 'emit'; readonly kind: 'success' | 'failure'; readonly customerId: string; readonly detail: Record<string, unknown> }
  | { readonly action: 'ignore'; readonly why: string }
  | { readonly action: 'refuse'; readonly why: string };

const EVENT_ID = /^evt_[A-Za-z0-9_]{1,250}$/;
type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const int = (v: unknown): number | undefined => (typeof v === 'number' && Number.isInteger(v) ? v : undefined);

/**
 * Decides from a verified event alone (no I/O) what to do: emit, ignore
 * (types the handler does not map), or refuse (malformed).
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
  const object = obj(obj(e.data).object);
  let kind: 'success' | 'failure';
  if (type === STRIPE_WEBHOOK_EVENTS.INVOICE_PAID) {kind = 'success';} else if (type === STRIPE_WEBHOOK_EVENTS.INVOICE_PAYMENT_FAILED) {kind = 'failure';} else if (type === STRIPE_WEBHOOK_EVENTS.SUBSCRIPTION_DELETED) {
    if (str(obj(object.cancellation_details).reason) !== 'payment_failed') return { action: 'ignore', why: 'subscription ended for another reason than non-payment' };
    kind = 'failure';
  } else {return { action: 'ignore', why: 'event type not mapped' };}
  const customerId = str(object.customer);
  if (!customerId || !/^cus_[A-Za-z0-9]{1,250}$/.test(customerId)) return { action: 'refuse', why: 'event has no customer' };
  const isInvoice = type.startsWith('invoice.');
  const amount = int(isInvoice ? (kind === 'success' ? object.amount_paid : object.amount_due) : undefined);
  return {
    action: 'emit',
    kind,
    customerId,
    detail: {
      provider: 'stripe',
      eventId: id,
      webhookType: type,
      customerId,
      invoiceId: isInvoice ? str(object.id) : str(object.latest_invoice),
      subscriptionId: isInvoice ? str(obj(obj(object.parent).subscription_details).subscription) : str(object.id),
      amount,
      currency: str(object.currency),
      occurredAt: new Date(created * 1000).toISOString(),
    },
  };
}
