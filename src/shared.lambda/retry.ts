/**
 * The one retry helper of the library's handlers: full-jitter exponential
 * backoff (delay drawn from [0, min(maxDelay, base * 2^attempt)]), or the delay
 * the failure itself asks for (a `Retry-After` header, say).
 */

/** Waits `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** How `withRetry` retries. */
export interface RetryOptions {
  /** Most attempts in all (the first included). */
  readonly attempts: number;
  /** @default 25 */
  readonly baseDelayMs?: number;
  /** @default 2000 */
  readonly maxDelayMs?: number;
  /** Whether a failure is worth another attempt. @default every failure */
  readonly retryable?: (error: unknown, attempt: number) => boolean;
  /** The delay a failure asks for (for example from `Retry-After`); undefined for the backoff. */
  readonly delayMs?: (error: unknown, attempt: number) => number | undefined;
}

/** The backoff before attempt `attempt + 1`. */
export function backoffMs(attempt: number, baseDelayMs = 25, maxDelayMs = 2000): number {
  return Math.random() * Math.min(maxDelayMs, baseDelayMs * 2 ** attempt);
}

/**
 * Runs `work` until it succeeds, a failure is not retryable, or `attempts`
 * attempts have failed; then the last failure is thrown as it is.
 */
export async function withRetry<T>(work: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work(attempt);
    } catch (error) {
      if (attempt >= options.attempts || (options.retryable && !options.retryable(error, attempt))) throw error;
      await sleep(options.delayMs?.(error, attempt) ?? backoffMs(attempt, options.baseDelayMs, options.maxDelayMs));
    }
  }
}
