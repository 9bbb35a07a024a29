import { extname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { AppError } from '../errors';
import type { MjmlReply } from './mjml-thread';

/** The thread's first message (mjml-thread.ts READY; not imported, as that module starts the thread's work). */
const READY = 'mjml-ready';
/** Longest a new thread may take to load MJML (a cold start on a loaded machine takes seconds). */
const START_TIMEOUT_MS = 60_000;

/** Largest MJML source compiled (characters): about two seconds of MJML on the development machine. */
export const MJML_MAX_CHARS = 100_000;
/** Longest one compile may take in the thread; past it the thread is ended (and restarted for the next). */
export const MJML_TIMEOUT_MS = 5_000;

type Result = Extract<MjmlReply, { html: string }>;

/**
 * MJML compiles in one worker thread per process (started at the first MJML compile, as the
 * modules it loads are large), one document at a time: a template save, preview or test send in
 * the API, or a cache miss in dispatch, never blocks the event loop that serves other requests.
 * A compile past MJML_TIMEOUT_MS ends the thread (a 422 for that template); the next starts a new one.
 */
let thread: { worker: Worker; ready: Promise<void> } | null = null;
let nextId = 1;
let queue: Promise<unknown> = Promise.resolve();

function start(): { worker: Worker; ready: Promise<void> } {
  const file = join(__dirname, `mjml-thread${extname(__filename)}`);
  // Run from TypeScript sources (tests, benches), the thread needs the same on-the-fly compiler.
  const execArgv = extname(__filename) === '.ts' ? ['-r', '@swc-node/register'] : [];
  const t = new Worker(file, { execArgv });
  t.unref();
  const entry = {
    worker: t,
    // Loading MJML is not part of a document's compile: the compile timeout starts after it.
    ready: new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the MJML thread did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      const onMessage = (m: unknown) => {
        if (m !== READY) return;
        clearTimeout(timer);
        t.off('message', onMessage);
        resolve();
      };
      t.on('message', onMessage);
      t.once('error', (err) => (clearTimeout(timer), reject(err)));
      t.once('exit', () => (clearTimeout(timer), reject(new Error('the MJML thread exited while starting'))));
    }),
  };
  entry.ready.catch(() => {
    if (thread === entry) thread = null;
    void t.terminate();
  });
  t.once('exit', () => {
    if (thread === entry) thread = null;
  });
  return entry;
}

async function compileInThread(body: string): Promise<Result> {
  const entry = (thread ??= start());
  await entry.ready;
  const t = entry.worker;
  const id = nextId++;
  return new Promise<Result>((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      t.off('message', onMessage);
      t.off('error', onError);
    };
    const onMessage = (r: MjmlReply) => {
      if (r.id !== id) return;
      done();
      if ('failure' in r) reject(new AppError('unprocessable', `MJML does not compile: ${r.failure}`, [{ path: 'body', message: r.failure }]));
      else resolve(r);
    };
    const onError = (err: Error) => {
      done();
      if (thread === entry) thread = null;
      reject(err);
    };
    const timer = setTimeout(() => {
      done();
      if (thread === entry) thread = null;
      void t.terminate();
      reject(new AppError('unprocessable', `MJML took longer than ${MJML_TIMEOUT_MS} ms to compile`, [{ path: 'body', message: 'document too complex' }]));
    }, MJML_TIMEOUT_MS);
    t.on('message', onMessage);
    t.once('error', onError);
    t.postMessage({ id, body });
  });
}

/** The compiled HTML of an MJML document, or a 422 naming what is wrong. */
export async function compileMjml(body: string): Promise<Result> {
  if (body.length > MJML_MAX_CHARS) {
    throw new AppError('unprocessable', `MJML documents are compiled up to ${MJML_MAX_CHARS} characters`, [{ path: 'body', message: `longer than ${MJML_MAX_CHARS} characters` }]);
  }
  // One at a time: the timeout measures this document's compile, not the queue before it.
  const run = queue.then(() => compileInThread(body));
  queue = run.catch(() => undefined);
  return run;
}
