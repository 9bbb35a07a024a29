import type { Knex } from 'knex';
import type { Db } from './db';

/**
 * Runs `run` again when Postgres aborted it for a deadlock or a serialization failure: both mean
 * "try again", and the work is idempotent by construction. `run` must be a whole transaction (or
 * one statement, which is its own).
 */
export async function retryAborted<T>(run: () => PromiseLike<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await run();
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (i >= attempts || (code !== '40P01' && code !== '40001')) throw err;
      await new Promise((r) => setTimeout(r, 5 * i + Math.random() * 20));
    }
  }
}

/** A transaction, retried by retryAborted. */
export function withRetry<T>(db: Db, work: (trx: Knex.Transaction) => Promise<T>, attempts = 5): Promise<T> {
  return retryAborted(() => db.transaction(work), attempts);
}
