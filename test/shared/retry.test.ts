import { withRetry } from '../../src/shared.lambda/retry';

describe('withRetry', () => {
  test('retries until the work succeeds', async () => {
    let calls = 0;
    const result = await withRetry(async (attempt) => {
      calls++;
      if (attempt < 3) throw new Error(`fail ${attempt}`);
      return 'ok';
    }, { attempts: 5, baseDelayMs: 1 });
    expect(result).toBe('ok');
    expect(calls).toBe(3);
  });

  test('throws the last failure after the last attempt', async () => {
    let calls = 0;
    await expect(withRetry(async (attempt) => {
      calls++;
      throw new Error(`fail ${attempt}`);
    }, { attempts: 4, baseDelayMs: 1 })).rejects.toThrow('fail 4');
    expect(calls).toBe(4);
  });

  test('does not retry what is not retryable', async () => {
    let calls = 0;
    await expect(withRetry(async () => {
      calls++;
      throw new Error('client error');
    }, { attempts: 5, baseDelayMs: 1, retryable: () => false })).rejects.toThrow('client error');
    expect(calls).toBe(1);
  });

  test('waits the delay a failure asks for', async () => {
    const started = Date.now();
    await withRetry(async (attempt) => {
      if (attempt === 1) throw Object.assign(new Error('429'), { retryAfterMs: 150 });
    }, { attempts: 2, delayMs: (e) => (e as { retryAfterMs?: number }).retryAfterMs });
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });
});
