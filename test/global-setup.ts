import pg from 'pg';
import { createDb, migrateLatest, migrateRollbackAll } from '../src/db';
import { TEST_DATABASE_URL } from './helpers/env';
import { ensureRedisCluster } from './helpers/redis-cluster';

/**
 * A fresh test database per run: dropped and recreated, then migrated down and up once, so that
 * both directions of every migration run in CI. Tests isolate themselves by creating their own
 * workspaces, not by truncating.
 */
export default async function globalSetup() {
  // test/cluster.test.ts runs on a local Redis Cluster (ports 7101-7106): started here when not up.
  await ensureRedisCluster();
  const url = new URL(TEST_DATABASE_URL);
  const name = url.pathname.slice(1);
  url.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: url.toString() });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const db = createDb(TEST_DATABASE_URL, 2);
  await migrateLatest(db);
  await migrateRollbackAll(db);
  await migrateLatest(db);
  await db.destroy();
}
