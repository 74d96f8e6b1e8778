/**
 * A client-side rate limiter: a token bucket shared by every caller in the
 * process. Callers wait their turn in arrival order; at most `burst` requests
 * start at once after a quiet period, then one every `1000 / ratePerSecond` ms.
 * In any window of T seconds at most `burst + ratePerSecond * T` requests start.
 *
 * It measures time with the monotonic `performance.now()`, not `Date.now()`,
 * so that a test clock moving `Date.now()` neither stalls nor skips it.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private queue: Promise<void> = Promise.resolve();

  constructor(
    public readonly ratePerSecond: number,
    public readonly burst: number,
    private readonly now: () => number = () => performance.now(),
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  ) {
    if (!(ratePerSecond > 0) || !(burst >= 1)) throw new Error(`TokenBucket needs a positive rate and a burst of at least 1 (given ${ratePerSecond}, ${burst})`);
    this.tokens = burst;
    this.last = this.now();
  }

  /** Resolves when the caller may send one request. */
  public take(): Promise<void> {
    const turn = this.queue.then(() => this.acquire());
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  private async acquire(): Promise<void> {
    for (;;) {
      const now = this.now();
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.ratePerSecond) / 1000);
      this.last = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await this.sleep(Math.ceil(((1 - this.tokens) * 1000) / this.ratePerSecond));
    }
  }
}
