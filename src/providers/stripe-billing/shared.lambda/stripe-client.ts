/**
 * The one way the Stripe handlers talk to Stripe: the official SDK, the API
 * version pinned, the API key read from Secrets Manager at run time (cached,
 * re-read at once when Stripe answers 401 after a rotation), and one retry
 * policy for every call:
 *
 * - 429: wait as long as Stripe's `Retry-After` header says (else back off), then retry;
 * - 5xx, 409 (a concurrent request with the same idempotency key), connection
 *   errors and timeouts: retry with backoff;
 * - `Stripe-Should-Retry` decides when Stripe sends it;
 * - any other 4xx is the caller's to handle (it is not retried).
 *
 * Every retry of a call is the same request: the caller passes its
 * `Idempotency-Key` (and, for meter events, the `identifier`), so a retry of a
 * request Stripe did receive is answered with the first answer, never applied twice.
 *
 * Test mode: a sandbox key (`sk_test_`, `rk_test_`) gets 25 requests per
 * second in all, meter events included (https://docs.stripe.com/rate-limits),
 * so every attempt of every call of the process first takes a token from one
 * bucket of 20 requests per second (burst 1: at most 21 in any second, the
 * rest left to the other functions), whatever the push's concurrency: the
 * push stays within the limit instead of relying on 429 retries. Live keys
 * are not limited here: meter events have a limit of their own in live mode
 * (1,000 per second, not counted against the 100 of the other requests, same
 * page), far above what the push sends at its concurrency (at most 64 calls in
 * flight), and a 429 is still retried as it says. The mode is logged once per key, never the key.
 */
import { getSecret } from '@aws-lambda-powertools/parameters/secrets';
import Stripe from 'stripe';
import { numberEnv, requiredEnv } from '../../../shared.lambda/env';
import { logger } from '../../../shared.lambda/logger';
import { withRetry } from '../../../shared.lambda/retry';
import { STRIPE_API_VERSION, STRIPE_ENV } from '../contract';
import { TokenBucket } from './rate-limit';

/** How a failed Stripe call is treated. */
export type StripeFailureKind = 'rate-limited' | 'transient' | 'auth' | 'refused' | 'not-stripe';

interface StripeLikeError {
  readonly type?: string;
  readonly statusCode?: number;
  readonly code?: string;
  readonly headers?: Record<string, string | string[] | undefined>;
  readonly message?: string;
}

function header(error: StripeLikeError, name: string): string | undefined {
  const headers = error.headers ?? {};
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
  const value = key === undefined ? undefined : headers[key];
  return Array.isArray(value) ? value[0] : value;
}

/** Whether an error came from the Stripe SDK (an API answer or a connection failure). */
export function isStripeError(error: unknown): error is StripeLikeError {
  const type = (error as StripeLikeError | undefined)?.type;
  return typeof type === 'string' && type.startsWith('Stripe');
}

/** Classifies a failed call (see the module comment). */
export function failureKind(error: unknown): StripeFailureKind {
  if (!isStripeError(error)) return 'not-stripe';
  const status = error.statusCode;
  if (error.type === 'StripeConnectionError' || status === undefined) return 'transient';
  if (status === 429) return 'rate-limited';
  const shouldRetry = header(error, 'stripe-should-retry');
  if (shouldRetry === 'true') return 'transient';
  if (status === 401) return 'auth';
  if (shouldRetry === 'false' && status < 500) return 'refused';
  if (status === 409 || status >= 500) return 'transient';
  return 'refused';
}

/** Whether Stripe answered 5xx: it keeps that answer for the Idempotency-Key and repeats it to every retry with the key. */
export function isServerError(error: unknown): boolean {
  return isStripeError(error) && (error.statusCode ?? 0) >= 500;
}

/** Whether Stripe refused a meter event because it holds one with the same identifier already (within its dedup window). */
export function isDuplicateIdentifier(error: unknown): boolean {
  return isStripeError(error) && error.statusCode === 400 && /already exists with identifier/i.test(error.message ?? '');
}

/** The wait Stripe asks for in `Retry-After` (seconds or an HTTP date), capped; undefined when absent. */
export function retryAfterMs(error: unknown, capMs = 30_000): number | undefined {
  if (!isStripeError(error)) return undefined;
  const value = header(error, 'retry-after');
  if (value === undefined) return undefined;
  const seconds = Number(value);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - Date.now();
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(capMs, Math.max(0, ms));
}

/** What a log line may say about a failed call: never a request body, never a key. */
export function describeFailure(error: unknown): Record<string, unknown> {
  if (!isStripeError(error)) return { error: (error as Error)?.name ?? String(error) };
  return { stripeError: error.type, httpStatus: error.statusCode, stripeCode: error.code, stripeRequestId: header(error, 'request-id') };
}

/** The API key in a secret string: the key itself, or JSON `{"apiKey": "..."}`. */
export function apiKeyFromSecretString(value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') throw new Error('The Stripe API key secret has no SecretString');
  const trimmed = value.trim();
  if (!trimmed.startsWith('{')) return trimmed;
  let parsed: { apiKey?: unknown };
  try {
    parsed = JSON.parse(trimmed);
  } catch {
    throw new Error('The Stripe API key secret looks like JSON but does not parse: store the key itself or {"apiKey": "..."}');
  }
  if (typeof parsed.apiKey !== 'string' || parsed.apiKey === '') throw new Error('The Stripe API key secret JSON has no "apiKey" string');
  return parsed.apiKey;
}

/** Which Stripe mode a key is for: `test` (a sandbox), `live`, or `unknown` (another prefix). */
export type StripeKeyMode = 'test' | 'live' | 'unknown';

/** The mode of an API key, from its prefix (https://docs.stripe.com/keys). */
export function stripeKeyMode(key: string): StripeKeyMode {
  if (/^(sk|rk)_test_/.test(key)) return 'test';
  if (/^(sk|rk)_live_/.test(key)) return 'live';
  return 'unknown';
}

/** Requests per second one process sends with a test-mode key (Stripe's sandbox allows 25 in all). */
export const SANDBOX_REQUESTS_PER_SECOND = 20;
/** Requests a test-mode process may start at once after a pause (at most 21 in any second). */
export const SANDBOX_BURST = 1;

let sandboxBucket: TokenBucket | undefined;

/**
 * The limiter of a key's mode: one bucket per process for test keys; none for
 * live (see the module comment). Tests and benches against stripe-mock may
 * raise the rate (`STRIPE_ENV.SANDBOX_REQUESTS_PER_SECOND`).
 */
export function requestLimiter(mode: StripeKeyMode): TokenBucket | undefined {
  if (mode !== 'test') return undefined;
  const rate = numberEnv(STRIPE_ENV.SANDBOX_REQUESTS_PER_SECOND, { min: 1, max: 1_000_000, fallback: SANDBOX_REQUESTS_PER_SECOND });
  if (sandboxBucket?.ratePerSecond !== rate) sandboxBucket = new TokenBucket(rate, SANDBOX_BURST);
  return sandboxBucket;
}

/** The test endpoint, when the environment names one (tests only; the construct never sets it). */
function endpointOverride(): Pick<Stripe.StripeConfig, 'host' | 'port' | 'protocol'> {
  const raw = process.env[STRIPE_ENV.TEST_ENDPOINT];
  if (!raw) return {};
  const url = new URL(raw);
  return { host: url.hostname, port: url.port || (url.protocol === 'http:' ? '80' : '443'), protocol: url.protocol === 'http:' ? 'http' : 'https' };
}

let cached: { key: string; settings: string; client: Stripe; mode: StripeKeyMode } | undefined;
let warnedOverride = false;
let loggedKey: string | undefined;

/** The Stripe client for the current API key (read from the secret, cached). */
export async function stripeClient(forceFetch = false): Promise<Stripe> {
  const value = await getSecret(requiredEnv(STRIPE_ENV.API_KEY_SECRET_ARN), {
    maxAge: numberEnv(STRIPE_ENV.SECRET_CACHE_SECONDS, { min: 0, max: 3600, integer: true, fallback: 300 }),
    forceFetch,
  });
  const key = apiKeyFromSecretString(value);
  const timeout = numberEnv(STRIPE_ENV.REQUEST_TIMEOUT_MS, { min: 100, max: 80_000, integer: true, fallback: 20_000 });
  const override = endpointOverride();
  const settings = `${timeout} ${override.host ?? ''}:${override.port ?? ''}`;
  if (cached?.key === key && cached.settings === settings) return cached.client;
  const mode = stripeKeyMode(key);
  if (loggedKey !== key) {
    loggedKey = key;
    logger.info(`Stripe API key mode: ${mode}`, {
      stripeMode: mode,
      requestLimit: mode === 'test' ? `${SANDBOX_REQUESTS_PER_SECOND} requests/s in this process (sandbox limit 25/s)` : 'none (Stripe\'s 429s are retried)',
    });
  }
  if (override.host && !warnedOverride) {
    warnedOverride = true;
    logger.warn(`Stripe calls go to ${override.protocol}://${override.host}:${override.port} (${STRIPE_ENV.TEST_ENDPOINT} is set: tests only)`);
  }
  const client = new Stripe(key, {
    // The SDK is typed for its own default version; the pinned one is older (see contract.ts).
    apiVersion: STRIPE_API_VERSION as Stripe.LatestApiVersion,
    // Retries are ours (one policy, Retry-After honoured); the SDK's own are off.
    maxNetworkRetries: 0,
    timeout,
    telemetry: false,
    appInfo: { name: 'cdk-saas-billing' },
    ...override,
  });
  cached = { key, settings, client, mode };
  return client;
}

/** How `stripeCall` retries. */
export interface StripeCallOptions {
  /** Most attempts in all. @default 6 */
  readonly attempts?: number;
  /** Longest backoff between attempts, ms. @default 8000 */
  readonly maxDelayMs?: number;
}

/**
 * Runs one Stripe call under the retry policy. `call` receives the client (and
 * the failure of the previous attempt) and must send the same request every
 * time, with its own Idempotency-Key.
 */
export async function stripeCall<T>(call: (stripe: Stripe, previousError?: unknown) => Promise<T>, opts: StripeCallOptions = {}): Promise<T> {
  let refreshKey = false;
  let previousError: unknown;
  return withRetry(async () => {
    const client = await stripeClient(refreshKey);
    refreshKey = false;
    await requestLimiter(cached?.mode ?? 'unknown')?.take();
    try {
      return await call(client, previousError);
    } catch (error) {
      previousError = error;
      throw error;
    }
  }, {
    attempts: opts.attempts ?? 6,
    baseDelayMs: 200,
    maxDelayMs: opts.maxDelayMs ?? 8000,
    retryable: (error, attempt) => {
      const kind = failureKind(error);
      if (kind === 'auth' && attempt === 1) {
        refreshKey = true; // the key may just have been rotated: read it again, once
        return true;
      }
      const retry = kind === 'rate-limited' || kind === 'transient';
      if (retry) logger.info('Stripe call failed, retrying', { attempt, ...describeFailure(error) });
      return retry;
    },
    delayMs: (error) => retryAfterMs(error),
  });
}
