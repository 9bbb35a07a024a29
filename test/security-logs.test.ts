import { Writable } from 'node:stream';
import { createDb } from '../src/db';
import { createLogger } from '../src/logger';
import { errorAnswer } from '../src/http/errors';
import { TEST_DATABASE_URL } from './helpers/env';

/** Issue 15, security item 8: Postgres errors are logged without the values (keys, addresses) they carry. */
const db = createDb(TEST_DATABASE_URL, 2);
afterAll(async () => db.destroy());

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { logger: createLogger('info', { destination: stream }), text: () => lines.join('') };
}

async function pgError(run: () => Promise<unknown>): Promise<unknown> {
  try {
    await run();
  } catch (err) {
    return err;
  }
  throw new Error('expected a Postgres error');
}

test('when a unique violation and a bad cast carrying personal data reach the error handler, then the log has their codes and tables, not the values', async () => {
  const [ws] = await db('workspaces').insert({ name: 'logs' }).returning('id');
  const email = 'ann.secret@example.com';
  await db('customers').insert({ workspace_id: ws.id, external_id: email, email });
  const dup = await pgError(() => db('customers').insert({ workspace_id: ws.id, external_id: email, email }));
  const cast = await pgError(() => db.raw('SELECT ?::uuid', ['+15125550199']));
  expect(JSON.stringify(dup)).toContain(email); // the error itself does carry it
  const { logger, text } = capture();
  errorAnswer(dup, { method: 'PUT', url: '/v1/customers/x' }, logger);
  errorAnswer(cast, { method: 'GET', url: '/v1/segments/x' }, logger);
  logger.warn({ err: (cast as Error).message }, 'as a string too');
  logger.flush();
  const out = text();
  expect(out).toContain('23505');
  expect(out).toContain('customers_workspace_id_external_id_unique');
  expect(out).toContain('22P02');
  expect(out).not.toContain(email);
  expect(out).not.toContain('5125550199');
});
