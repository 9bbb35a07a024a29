import type { RedisClient } from '../redis';

/**
 * Per-channel messages-per-second limit shared by every worker process: a counter per channel
 * and wall-clock second in Redis. take(n) returns once n sends fit in the current or later
 * seconds; tokens taken but not granted in a full window are simply lost with the window.
 * One key per channel and second, its INCRBY and EXPIRE in one MULTI: safe on a Redis Cluster.
 */
export class RateLimiter {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly perSecond: Record<string, number>,
  ) {}

  /** `signal`: a shutdown; the wait for tokens ends with an error instead of running on. */
  async take(channel: string, n: number, signal?: AbortSignal): Promise<void> {
    const limit = this.perSecond[channel] ?? 1;
    let left = n;
    while (left > 0) {
      signal?.throwIfAborted();
      const second = Math.floor(Date.now() / 1000);
      const key = `${this.prefix}:rate:${channel}:${second}`;
      const want = Math.min(left, limit);
      const [[, after]] = (await this.redis.multi().incrby(key, want).expire(key, 3).exec()) as [[Error | null, number], unknown];
      const granted = Math.max(0, Math.min(want, limit - (after - want)));
      left -= granted;
      if (left > 0) await sleep(Math.max(1, (second + 1) * 1000 - Date.now()), signal);
    }
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
