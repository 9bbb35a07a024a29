import type { RedisClient as Redis } from '../redis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { AppError } from '../errors';

/**
 * API_RATE_PER_MINUTE per workspace key, counted in Redis so that the limit holds across every
 * API process. One Redis key per API key (`<prefix>:rate:<keyId>`, one INCR-with-TTL script on
 * it), so it works unchanged on a Redis Cluster. When Redis is not ready the check fails at once
 * (503) instead of queueing the request behind a reconnect. Returns null when the limit is off (0).
 */
export function keyRateLimit(redis: Redis, prefix: string, perMinute: number): ((keyId: string) => Promise<void>) | null {
  if (!perMinute) return null;
  const limiter = new RateLimiterRedis({ storeClient: redis, keyPrefix: `${prefix}:rate`, points: perMinute, duration: 60, rejectIfRedisNotReady: true });
  return async (keyId) => {
    try {
      await limiter.consume(keyId);
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) throw err;
      const retryAfter = Math.max(1, Math.ceil(err.msBeforeNext / 1000));
      throw new AppError('rate_limited', `this key made more than ${perMinute} requests in a minute; retry after ${retryAfter} s`, [], { 'Retry-After': String(retryAfter) });
    }
  };
}
