import { randomBytes } from 'node:crypto';
import type { RedisClient as Redis } from './redis';

// Deletes the key only if it still holds this holder's token (it may have expired and been taken).
const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/**
 * Runs `fn` while holding a Redis lock on `key` (one key: Cluster-safe), across every process
 * sharing the Redis; returns `busy` without running it when another holder has the key. The lock
 * expires after ttlMs, so a process that dies holding it does not hold it for ever.
 */
export async function withRedisLock<T>(redis: Redis, key: string, ttlMs: number, fn: () => Promise<T>): Promise<{ busy: true } | { busy: false; value: T }> {
  const token = randomBytes(12).toString('hex');
  if ((await redis.set(key, token, 'PX', ttlMs, 'NX')) !== 'OK') return { busy: true };
  try {
    return { busy: false, value: await fn() };
  } finally {
    await redis.eval(RELEASE, 1, key, token).catch(() => undefined);
  }
}
