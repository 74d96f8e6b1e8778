/**
 * The deterministic names the Stripe handlers give their requests, so that
 * every retry and every rerun of the same step sends the same
 * `Idempotency-Key` (Stripe answers a repeat with the first answer for 24 hours)
 * and the same meter event `identifier` (Stripe drops a repeat for at least 24 hours).
 *
 * Every name starts with the installation's prefix (one per `StripeBilling`),
 * so two installations on one Stripe account never share a key.
 */
import { createHash } from 'node:crypto';

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}

/** Idempotency-Key of the creation of a tenant's customer (one per tenant and generation). */
export function customerKey(prefix: string, tenantId: string, generation: number): string {
  return `${prefix}-customer-${digest(tenantId)}-g${generation}`;
}

/** Idempotency-Key of the creation of a tenant's subscription. */
export function subscriptionKey(prefix: string, tenantId: string, generation: number): string {
  return `${prefix}-subscription-${digest(tenantId)}-g${generation}`;
}

/** Idempotency-Key of the cancellation of a subscription. */
export function cancellationKey(prefix: string, subscriptionId: string): string {
  return `${prefix}-cancel-${subscriptionId}`;
}

/**
 * The meter event `identifier` of a window: Stripe allows 100 characters; a
 * window id has at most 64 of `[A-Za-z0-9_-]` and the prefix 13.
 */
export function meterEventIdentifier(prefix: string, windowId: string): string {
  return `${prefix}-${windowId}`;
}

/**
 * Idempotency-Key of the request that sends a window's meter event: the same
 * for every retry, except that each 5xx answer (which Stripe repeats to every
 * request with that key) moves it on; the identifier never changes.
 */
export function meterEventKey(identifier: string, serverErrors = 0): string {
  return serverErrors === 0 ? `meter-event-${identifier}` : `meter-event-${identifier}-after-5xx-${serverErrors}`;
}

/** Idempotency-Key of the invoice item that marks a carried-over window on the invoice that bills it. */
export function carryNoteKey(identifier: string): string {
  return `carry-note-${identifier}`;
}

/** The meter event `identifier` of the reconciler's resend of a window Stripe did not count (`-r<n>`). */
export function resendIdentifier(identifier: string, attempt: number): string {
  return `${identifier}-r${attempt}`;
}

/** Idempotency key of a plan change's item swap: one per tenant generation and plan version. */
export function planChangeKey(prefix: string, tenantId: string, generation: number, planVersion: number): string {
  return `${prefix}-plan-${digest(tenantId)}-g${generation}-v${planVersion}`;
}
