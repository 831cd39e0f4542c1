import { ErrorCode, RpcError } from "../protocol/errors.js";

interface Bucket {
  tokens: number;
  updatedAt: number;
}

/**
 * A token bucket per API key, shared by all of the key's connections and
 * POST /rpc calls on this process, so opening more connections does not
 * raise a key's rate. Each bucket holds up to one second of requests.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private sweepTimer: NodeJS.Timeout;

  /** `requestsPerSecond` 0 turns the limit off. */
  constructor(private readonly requestsPerSecond: number) {
    // Full buckets carry no information, so they are dropped to bound
    // memory by the number of recently active keys.
    this.sweepTimer = setInterval(() => this.sweep(), 10_000);
    this.sweepTimer.unref();
  }

  get enabled(): boolean {
    return this.requestsPerSecond > 0;
  }

  /** Takes one token for the key, or throws -32007 with retryAfterMs. */
  take(keyId: string, now = Date.now()): void {
    if (!this.enabled) return;
    const capacity = this.requestsPerSecond;
    const bucket = this.buckets.get(keyId) ?? {
      tokens: capacity,
      updatedAt: now,
    };
    const refilled = ((now - bucket.updatedAt) / 1000) * this.requestsPerSecond;
    bucket.tokens = Math.min(capacity, bucket.tokens + refilled);
    bucket.updatedAt = now;
    this.buckets.set(keyId, bucket);

    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return;
    }
    const retryAfterMs = Math.ceil(
      ((1 - bucket.tokens) / this.requestsPerSecond) * 1000,
    );
    throw new RpcError(
      ErrorCode.RateLimited,
      `This API key is over its limit of ${this.requestsPerSecond} requests per second; retry after ${retryAfterMs} ms.`,
      { retryAfterMs },
    );
  }

  private sweep(now = Date.now()): void {
    for (const [keyId, bucket] of this.buckets) {
      const refilled =
        ((now - bucket.updatedAt) / 1000) * this.requestsPerSecond;
      if (bucket.tokens + refilled >= this.requestsPerSecond)
        this.buckets.delete(keyId);
    }
  }

  stop(): void {
    clearInterval(this.sweepTimer);
  }
}
