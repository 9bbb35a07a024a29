import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { buildApp } from '../../src/app';
import type { Deps } from '../../src/deps';
import { Clock, systemClock } from '../../src/clock';
import { loadConfig } from '../../src/config';
import { createDb } from '../../src/db';
import { createLogger } from '../../src/logger';
import { createMetrics } from '../../src/ops/metrics';
import { Queues } from '../../src/queues';
import { resolveSecrets } from '../../src/secrets';
import { createRedis } from '../../src/redis';
import { OPERATOR_TOKEN, TEST_DATABASE_URL, TEST_REDIS_URL, TEST_TWILIO_SID, TEST_TWILIO_TOKEN } from './env';

export interface TestServer {
  url: string;
  deps: Deps;
  close(): Promise<void>;
}

/** The real app on port 0 against the real test database and Redis, with its own queue prefix. */
export async function startTestServer(opts: { clock?: Clock; env?: Record<string, string> } = {}): Promise<TestServer> {
  const loaded = loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: TEST_DATABASE_URL,
    REDIS_URL: TEST_REDIS_URL,
    HARK_ADMIN_TOKEN: OPERATOR_TOKEN,
    LOG_LEVEL: 'silent',
    PORT: '0',
    // hark has no default Twilio account; the tests' stand-in takes any, and signs with this token.
    TWILIO_ACCOUNT_SID: TEST_TWILIO_SID,
    TWILIO_AUTH_TOKEN: TEST_TWILIO_TOKEN,
    ...opts.env,
  });
  const db = createDb(loaded.DATABASE_URL, 10, loaded.STATEMENT_TIMEOUT_MS);
  const config = await resolveSecrets(loaded, db);
  const redis = createRedis(config.REDIS_URL);
  const deps: Deps = {
    config,
    db,
    redis,
    queues: new Queues(redis, `hark-test-${randomBytes(4).toString('hex')}`),
    clock: opts.clock ?? systemClock,
    logger: createLogger('silent'),
    metrics: createMetrics(),
  };
  const server: Server = buildApp(deps).listen(0);
  await new Promise((r) => server.once('listening', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    deps,
    async close() {
      await new Promise((r) => server.close(r));
      await deps.queues.close();
      await deps.db.destroy();
      await redis.quit();
    },
  };
}
