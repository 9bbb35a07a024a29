import { extname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { SenderCall, SenderReply, SenderRequest, SenderSpec } from './sender-thread';
import { Channel, ChannelError, OutgoingEmail, OutgoingSms } from './types';

export type { SenderSpec } from './sender-thread';

/** Code of the error a send gets when the sender thread died while holding it: it may have left. */
export const SENDER_LOST = 'ESENDERLOST';

type Waiter = { resolve(r: { providerId: string }): void; reject(e: Error): void };
/** A call waiting for this turn's postMessage, with how to fail it should the thread die first. */
type QueuedCall = SenderCall & { reject(e: Error): void };

/**
 * Email and SMS channels whose provider calls run in one worker thread (sender-thread.ts), so a
 * dispatch worker uses a second core for the provider libraries while its main thread claims,
 * checks, renders and records. Same Channel interface and ChannelError classification as the
 * direct channels; a send resolves when the provider answered, as before. Should the thread die,
 * the sends it held fail with SENDER_LOST (dispatch marks them 'unknown', never resent) and the
 * next send starts a new thread.
 */
export interface ThreadedChannels {
  email: Channel<OutgoingEmail>;
  sms: Channel<OutgoingSms>;
  /** Starts the thread now, so the first sends do not wait for it to load the provider libraries; resolves once they are loaded. */
  warm(): Promise<void>;
  terminate(): Promise<void>;
}

export function createThreadedChannels(spec: SenderSpec): ThreadedChannels {
  const file = join(__dirname, `sender-thread${extname(__filename)}`);
  // Run from TypeScript sources (tests, benches), the thread needs the same on-the-fly compiler.
  const execArgv = extname(__filename) === '.ts' ? ['-r', '@swc-node/register'] : [];
  let thread: Worker | null = null;
  let waiting = new Map<number, Waiter>();
  let nextId = 1;
  let closing: Promise<void> | null = null;
  let ready: Promise<void> = Promise.resolve();

  // Requests made in one turn of the event loop cross to the thread in one postMessage, and the
  // thread answers the same way (sender-thread.ts): a cross-thread wake-up and message costs more
  // than the few bytes of an SMS, so 32 lanes' sends after one claim cost one hop, not 32.
  let queued: QueuedCall[] = [];

  const start = (): Worker => {
    const t = new Worker(file, { workerData: spec, execArgv });
    const held = new Map<number, Waiter>();
    waiting = held;
    let loaded = () => {};
    ready = new Promise<void>((r) => (loaded = r));
    t.on('message', (replies: SenderReply[] | SenderReply) => {
      for (const r of Array.isArray(replies) ? replies : [replies]) {
        if ('ready' in r) loaded();
        if ('closed' in r || 'ready' in r) continue;
        const w = held.get(r.id);
        if (!w) continue;
        held.delete(r.id);
        if (r.ok) w.resolve({ providerId: r.providerId });
        else w.reject(new ChannelError(r.error.message, r.error.permanent, r.error.suppress, r.error.code));
      }
    });
    const lost = (why: string) => {
      if (thread === t) {
        thread = null;
        // Not yet posted to this thread: never reached a provider, so safe to retry later.
        for (const c of queued.splice(0)) {
          held.delete(c.id);
          c.reject(new ChannelError(`sender thread stopped before the call was handed to it (${why})`, false, false, 'ESENDERDOWN'));
        }
      }
      for (const w of held.values()) w.reject(new ChannelError(`sender thread stopped during the provider call (${why})`, true, false, SENDER_LOST));
      held.clear();
    };
    t.on('error', (err) => lost(err.message));
    t.on('exit', (code) => {
      loaded();
      lost(`exit ${code}`);
    });
    // An idle sender thread does not keep the process alive.
    t.unref();
    return t;
  };

  const flush = () => {
    if (!queued.length || !thread) return;
    const batch: SenderCall[] = queued.splice(0).map(({ id, kind, message }) => ({ id, kind, message }));
    thread.postMessage({ batch } satisfies SenderRequest);
  };

  const call = (kind: 'email' | 'sms', message: OutgoingEmail | OutgoingSms) =>
    new Promise<{ providerId: string }>((resolve, reject) => {
      // Never posted, so safe to retry later.
      if (closing) return reject(new ChannelError('sender thread is closed', false, false, 'ECLOSED'));
      thread ??= start();
      const id = nextId++;
      waiting.set(id, { resolve, reject });
      queued.push({ id, kind, message, reject });
      if (queued.length === 1) setImmediate(flush);
    });

  const close = () => {
    closing ??= (async () => {
      const t = thread;
      if (!t) return;
      const exited = new Promise<void>((r) => t.once('exit', () => r()));
      flush();
      t.postMessage({ close: true } satisfies SenderRequest);
      const timer = setTimeout(() => void t.terminate(), 5000);
      await exited;
      clearTimeout(timer);
    })();
    return closing;
  };
  /** Stops the thread at once, as a crash would: the sends it holds fail with SENDER_LOST; the next send starts a new thread. */
  const terminate = async () => {
    await thread?.terminate();
  };
  const warm = () => {
    if (!closing) thread ??= start();
    return ready;
  };
  return { email: { send: (m) => call('email', m), close }, sms: { send: (m) => call('sms', m), close }, warm, terminate };
}
