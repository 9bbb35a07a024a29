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

  async take(channel: string, n: number): Promise<void> {
    const limit = this.perSecond[channel] ?? 1;
    let left = n;
    while (left > 0) {
      const second = Math.floor(Date.now() / 1000);
      const key = `${this.prefix}:rate:${channel}:${second}`;
      const want = Math.min(left, limit);
      const [[, after]] = (await this.redis.multi().incrby(key, want).expire(key, 3).exec()) as [[Error | null, number], unknown];
      const granted = Math.max(0, Math.min(want, limit - (after - want)));
      left -= granted;
      if (left > 0) await sleep(Math.max(1, (second + 1) * 1000 - Date.now()));
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
