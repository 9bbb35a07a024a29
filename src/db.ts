import knexFactory, { Knex } from 'knex';
import pg from 'pg';
import { migrationSource } from '../migrations';

// numeric -> string by default in pg; money is converted explicitly where it is read (toMoney),
// bigint ids stay strings so that they never lose precision.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => v);

export type Db = Knex;

/**
 * `statementTimeoutMs` (0: none) is set on each pooled connection, so that it bounds every
 * statement the pool runs, lock waits included: the API's pool has STATEMENT_TIMEOUT_MS, the
 * workers' pool WORKER_STATEMENT_TIMEOUT_MS (main.ts).
 */
export function createDb(databaseUrl: string, poolMax = 20, statementTimeoutMs = 0): Db {
  return knexFactory({
    client: 'pg',
    connection: statementTimeoutMs > 0 ? { connectionString: databaseUrl, statement_timeout: statementTimeoutMs } : databaseUrl,
    pool: { min: 0, max: poolMax },
    acquireConnectionTimeout: 10000,
  });
}

/** Creates the database named in the URL when it does not exist (first boot on a fresh machine). */
export async function ensureDatabase(databaseUrl: string): Promise<void> {
  const target = new URL(databaseUrl);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ''));
  if (!/^[A-Za-z0-9_\-]+$/.test(name)) throw new Error(`database name ${JSON.stringify(name)} is not allowed`);
  const admin = new URL(databaseUrl);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) {
      try {
        // Identifiers cannot be bound; the name was checked against a strict pattern above.
        await client.query(`CREATE DATABASE "${name}"`);
      } catch (err) {
        // Another process created it between our check and our create.
        if ((err as { code?: string }).code !== '42P04') throw err;
      }
    }
  } finally {
    await client.end();
  }
}

export async function migrateLatest(db: Db): Promise<void> {
  await db.migrate.latest({ migrationSource });
}

export async function migrateRollbackAll(db: Db): Promise<void> {
  await db.migrate.rollback({ migrationSource }, true);
}

/**
 * Autovacuum keeps the planner's statistics current as hark's tables grow. Without it (it can be
 * switched off server-wide), plans made while a table was empty stay cached: in the ingest bench,
 * customers were then looked up by the wrong index and customer_stats scanned whole. hark does not
 * take over autovacuum's job; it says so at boot.
 */
export async function autovacuumWarning(db: Db): Promise<string | null> {
  const { rows } = await db.raw('SHOW autovacuum');
  if ((rows as Array<{ autovacuum: string }>)[0]?.autovacuum === 'on') return null;
  return "Postgres has autovacuum off: table statistics go stale as hark's tables grow, and query plans with them; turn it on, or run ANALYZE on a schedule";
}

/** Money is numeric in Postgres and a decimal number in the API. */
export const toMoney = (v: string | number | null | undefined): number | null =>
  v === null || v === undefined ? null : Math.round(Number(v) * 100) / 100;

/** knex's binding types do not admit arrays with nulls (bound as Postgres arrays); this says they are fine. */
export const bindings = (values: readonly unknown[]): readonly Knex.RawBinding[] => values as readonly Knex.RawBinding[];
