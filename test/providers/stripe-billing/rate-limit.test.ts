/**
 * The client-side limiter that keeps a test-mode process within Stripe's
 * sandbox rate limit (25 requests per second in all: https://docs.stripe.com/rate-limits),
 * whatever the push's concurrency, and how a key's mode is recognised.
 */
import { STRIPE_ENV } from '../../../src/providers/stripe-billing/contract';
import { TokenBucket } from '../../../src/providers/stripe-billing/shared.lambda/rate-limit';
import {
  requestLimiter, SANDBOX_BURST, SANDBOX_REQUESTS_PER_SECOND, stripeKeyMode,
} from '../../../src/providers/stripe-billing/shared.lambda/stripe-client';

/** A virtual clock: sleeping moves it on, so a run of minutes takes no real time. */
function virtualClock() {
  let now = 0;
  return {
    now: () => now,
    sleep: async (ms: number) => {
      await Promise.resolve();
      now += ms;
    },
  };
}

/** The most requests started in any window of `windowMs` (start times sorted). */
function mostInAnyWindow(starts: number[], windowMs: number): number {
  let most = 0;
  for (let i = 0, j = 0; i < starts.length; i++) {
    while (starts[i] - starts[j] >= windowMs) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

describe('TokenBucket', () => {
  test('8 concurrent workers (the push\'s default concurrency), 400 requests: never more than 21 in any second, 20 per second overall', async () => {
    const clock = virtualClock();
    const bucket = new TokenBucket(SANDBOX_REQUESTS_PER_SECOND, SANDBOX_BURST, clock.now, clock.sleep);
    const starts: number[] = [];
    await Promise.all(Array.from({ length: 8 }, async () => {
      for (let i = 0; i < 50; i++) {
        await bucket.take();
        starts.push(clock.now());
      }
    }));
    starts.sort((a, b) => a - b);
    expect(starts).toHaveLength(400);
    expect(mostInAnyWindow(starts, 1000)).toBeLessThanOrEqual(21);
    expect(mostInAnyWindow(starts, 1000)).toBeLessThan(25);
    // N requests at 20/s take at least (N - burst) / 20 seconds, and not much more.
    expect(starts.at(-1)! - starts[0]).toBeGreaterThanOrEqual(((400 - SANDBOX_BURST) * 1000) / SANDBOX_REQUESTS_PER_SECOND);
    expect(starts.at(-1)! - starts[0]).toBeLessThanOrEqual((400 * 1000) / SANDBOX_REQUESTS_PER_SECOND + 50);
  });

  test('after a pause at most `burst` requests start at once, then one per interval', async () => {
    const clock = virtualClock();
    const bucket = new TokenBucket(10, 3, clock.now, clock.sleep);
    await clock.sleep(10_000);
    const starts: number[] = [];
    await Promise.all(Array.from({ length: 6 }, async () => {
      await bucket.take();
      starts.push(clock.now());
    }));
    expect(starts.map((t) => t - 10_000)).toEqual([0, 0, 0, 100, 200, 300]);
  });

  test('callers are served in arrival order', async () => {
    const clock = virtualClock();
    const bucket = new TokenBucket(5, 1, clock.now, clock.sleep);
    const order: number[] = [];
    await Promise.all([0, 1, 2, 3, 4].map(async (i) => {
      await bucket.take();
      order.push(i);
    }));
    expect(order).toEqual([0, 1, 2, 3, 4]);
  });

  test('real time: 21 requests through the sandbox limiter take at least a second', async () => {
    const bucket = new TokenBucket(SANDBOX_REQUESTS_PER_SECOND, SANDBOX_BURST);
    const started = performance.now();
    for (let i = 0; i < 21; i++) await bucket.take();
    // 20 intervals of 50 ms (timers may fire up to a millisecond early).
    expect(performance.now() - started).toBeGreaterThanOrEqual(990);
  });

  test('refuses a rate or burst that would never let a request through', () => {
    expect(() => new TokenBucket(0, 1)).toThrow(/positive rate and a burst of at least 1 \(given 0, 1\)/);
    expect(() => new TokenBucket(20, 0)).toThrow(/given 20, 0/);
  });
});

describe('the key\'s mode', () => {
  test.each([
    ['sk_test_51Abc', 'test'],
    ['rk_test_51Abc', 'test'],
    ['sk_live_51Abc', 'live'],
    ['rk_live_51Abc', 'live'],
    ['pk_test_51Abc', 'unknown'],
    ['whsec_abc', 'unknown'],
    ['sk_testing', 'unknown'],
  ])('%s is %s', (key, mode) => {
    expect(stripeKeyMode(key)).toBe(mode);
  });

  test('test keys share one limiter per process; live keys have none (Stripe\'s 429s are retried)', () => {
    expect(requestLimiter('test')).toBeInstanceOf(TokenBucket);
    expect(requestLimiter('test')).toBe(requestLimiter('test'));
    expect(requestLimiter('test')).toMatchObject({ ratePerSecond: 20, burst: 1 });
    expect(requestLimiter('live')).toBeUndefined();
    expect(requestLimiter('unknown')).toBeUndefined();
  });

  test('tests and benches against stripe-mock may raise the rate (the construct never sets it)', () => {
    process.env[STRIPE_ENV.SANDBOX_REQUESTS_PER_SECOND] = '500';
    try {
      expect(requestLimiter('test')).toMatchObject({ ratePerSecond: 500, burst: 1 });
    } finally {
      delete process.env[STRIPE_ENV.SANDBOX_REQUESTS_PER_SECOND];
    }
    expect(requestLimiter('test')).toMatchObject({ ratePerSecond: 20 });
  });
});
