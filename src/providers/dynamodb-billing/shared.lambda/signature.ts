import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signatures in the Stripe style: a header `t=<unix seconds>,v1=<hex>[,v1=<hex>...]`
 * where each `v1` is HMAC-SHA256, keyed with a signing secret, over `<t>.<raw body>`.
 * Several `v1` values let a sender sign with the old and the new secret during a rotation.
 */

/** A parsed signature header. */
export interface ParsedSignature {
  readonly timestamp: number;
  readonly signatures: string[];
}

/** Why a signature was refused. */
export type SignatureRefusal = 'missing' | 'malformed' | 'mismatch' | 'stale';

/** The result of a verification. */
export type VerifyResult = { readonly ok: true; readonly timestamp: number } | { readonly ok: false; readonly reason: SignatureRefusal };

const HEX_SHA256 = /^[0-9a-f]{64}$/;
const UNIX_SECONDS = /^\d{1,12}$/;
/** More v1 values than this is not a rotation but an attempt to guess. */
const MAX_SIGNATURES = 8;

/**
 * Parses `t=...,v1=...`. Unknown schemes (for example Stripe's `v0`) are ignored;
 * a header without exactly one valid `t` or without a valid `v1` is malformed.
 */
export function parseSignatureHeader(header: string): ParsedSignature | undefined {
  if (header.length > 2048) return undefined;
  let timestamp: number | undefined;
  const signatures: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) return undefined;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't') {
      if (timestamp !== undefined || !UNIX_SECONDS.test(value)) return undefined;
      timestamp = Number(value);
    } else if (key === 'v1') {
      if (!HEX_SHA256.test(value)) return undefined;
      signatures.push(value);
    }
  }
  if (timestamp === undefined || signatures.length === 0 || signatures.length > MAX_SIGNATURES) return undefined;
  return { timestamp, signatures };
}

/** HMAC-SHA256 of `<timestamp>.<payload>` as lowercase hex. */
export function computeSignature(secret: string, timestamp: number, payload: Buffer | string): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(payload).digest('hex');
}

/** A header value signing `payload` with each of `secrets` (one `v1` per secret). */
export function signatureHeader(secrets: string[], payload: Buffer | string, timestamp: number = Math.floor(Date.now() / 1000)): string {
  return [`t=${timestamp}`, ...secrets.map((s) => `v1=${computeSignature(s, timestamp, payload)}`)].join(',');
}

/**
 * Verifies a signature header against the raw payload with any of the accepted
 * secrets, in constant time per comparison, within `toleranceSeconds` of `nowSeconds`.
 */
export function verifySignature(opts: {
  readonly header: string | undefined;
  readonly payload: Buffer;
  readonly secrets: string[];
  readonly toleranceSeconds: number;
  readonly nowSeconds: number;
}): VerifyResult {
  if (opts.header === undefined || opts.header.trim() === '') return { ok: false, reason: 'missing' };
  const parsed = parseSignatureHeader(opts.header);
  if (!parsed) return { ok: false, reason: 'malformed' };
  let matched = false;
  for (const secret of opts.secrets) {
    const expected = Buffer.from(computeSignature(secret, parsed.timestamp, opts.payload), 'hex');
    for (const given of parsed.signatures) {
      // Evaluate every pair (no early exit) so timing does not depend on which one matched.
      if (timingSafeEqual(expected, Buffer.from(given, 'hex'))) matched = true;
    }
  }
  if (!matched) return { ok: false, reason: 'mismatch' };
  if (Math.abs(opts.nowSeconds - parsed.timestamp) > opts.toleranceSeconds) return { ok: false, reason: 'stale' };
  return { ok: true, timestamp: parsed.timestamp };
}

/**
 * The signing secrets held in a Secrets Manager secret string: either the secret
 * itself, or JSON `{"current": "...", "previous": "..."}` (previous optional)
 * while a rotation is in progress.
 */
export function secretsFromSecretString(secretString: string): string[] {
  const trimmed = secretString.trim();
  if (trimmed.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch {
      throw new Error('The webhook signing secret looks like JSON but does not parse: store the secret itself or {"current": "...", "previous": "..."}');
    }
    const { current, previous } = parsed as { current?: unknown; previous?: unknown };
    if (typeof current !== 'string' || current.length === 0) {
      throw new Error('The webhook signing secret JSON has no non-empty "current" string');
    }
    return typeof previous === 'string' && previous.length > 0 ? [current, previous] : [current];
  }
  if (trimmed.length === 0) throw new Error('The webhook signing secret is empty');
  return [trimmed];
}
