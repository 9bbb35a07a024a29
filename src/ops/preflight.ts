import IORedis from 'ioredis';
import { isClusterUrl } from '../redis-url';
import pg from 'pg';

/** What to run to start each dependency on a machine like the README's (Debian), or with the compose file. */
const START = {
  Postgres: 'service postgresql start   (or: docker compose up -d postgres)',
  Redis: 'service redis-server start   (or: redis-server --daemonize yes, or: docker compose up -d redis)',
};

export class DependencyDown extends Error {}

const where = (url: string, defaultPort: number) => {
  const u = new URL(url);
  return `${u.hostname || '127.0.0.1'}:${u.port || defaultPort}`;
};

const why = (err: unknown) => {
  const e = err as { code?: string; message?: string };
  return e.code ?? (e.message ?? 'no answer').split('\n')[0]!.slice(0, 120);
};

/**
 * Before boot does anything else: do Postgres and Redis answer? If not, one line saying which, at
 * which address, and how to start it, instead of a stack trace or a Redis client that retries forever.
 */
export async function preflight(databaseUrl: string, redisUrl: string, timeoutMs = 3000): Promise<void> {
  const admin = new URL(databaseUrl);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: timeoutMs });
  try {
    await client.connect();
  } catch (err) {
    const e = err as { code?: string };
    // The server answered but refused us (password, role): that is not "down", boot reports it as it comes.
    if (!e.code || /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ECONNRESET)$/.test(e.code) || /timeout/i.test(String((err as Error).message))) {
      throw new DependencyDown(`hark cannot reach Postgres at ${where(databaseUrl, 5432)} (${why(err)}); start it: ${START.Postgres}`);
    }
  } finally {
    await client.end().catch(() => undefined);
  }

  // A cluster is checked node by node, with its slots, by checkRedisTopology (src/redis.ts).
  if (isClusterUrl(redisUrl)) return;
  const redis = new IORedis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: timeoutMs, enableOfflineQueue: false });
  // connect() rejects with "Connection is closed"; the socket's own error says why.
  let cause: unknown;
  redis.on('error', (err) => (cause ??= err));
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    throw new DependencyDown(`hark cannot reach Redis at ${where(redisUrl, 6379)} (${why(cause ?? err)}); start it: ${START.Redis}`);
  } finally {
    redis.disconnect();
  }
}
