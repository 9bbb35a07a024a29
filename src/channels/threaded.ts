import { extname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { SenderReply, SenderRequest, SenderSpec } from './sender-thread';
import { Channel, ChannelError, OutgoingEmail, OutgoingSms } from './types';

export type { SenderSpec } from './sender-thread';

/** Code of the error a send gets when the sender thread died while holding it: it may have left. */
export const SENDER_LOST = 'ESENDERLOST';

type Waiter = { resolve(r: { providerId: string }): void; reject(e: Error): void };

/**
 * Email and SMS channels whose provider calls run in one worker thread (sender-thread.ts), so a
 * dispatch worker uses a second core for the provider libraries while its main thread claims,
 * checks, renders and records. Same Channel interface and ChannelError classification as the
 * direct channels; a send resolves when the provider answered, as before. Should the thread die,
 * the sends it held fail with SENDER_LOST (dispatch marks them 'unknown', never resent) and the
 * next send starts a new thread.
 */
export function createThreadedChannels(spec: SenderSpec): { email: Channel<OutgoingEmail>; sms: Channel<OutgoingSms> } {
  const file = join(__dirname, `sender-thread${extname(__filename)}`);
  // Run from TypeScript sources (tests, benches), the thread needs the same on-the-fly compiler.
  const execArgv = extname(__filename) === '.ts' ? ['-r', '@swc-node/register'] : [];
  let thread: Worker | null = null;
  let waiting = new Map<number, Waiter>();
  let nextId = 1;
  let closing: Promise<void> | null = null;

  const start = (): Worker => {
    const t = new Worker(file, { workerData: spec, execArgv });
    const held = new Map<number, Waiter>();
    waiting = held;
    t.on('message', (r: SenderReply) => {
      if ('closed' in r) return;
      const w = held.get(r.id);
      if (!w) return;
      held.delete(r.id);
      if (r.ok) w.resolve({ providerId: r.providerId });
      else w.reject(new ChannelError(r.error.message, r.error.permanent, r.error.suppress, r.error.code));
    });
    const lost = (why: string) => {
      if (thread === t) thread = null;
      for (const w of held.values()) w.reject(new ChannelError(`sender thread stopped during the provider call (${why})`, true, false, SENDER_LOST));
      held.clear();
    };
    t.on('error', (err) => lost(err.message));
    t.on('exit', (code) => lost(`exit ${code}`));
    // An idle sender thread does not keep the process alive.
    t.unref();
    return t;
  };

  const call = (kind: 'email' | 'sms', message: OutgoingEmail | OutgoingSms) =>
    new Promise<{ providerId: string }>((resolve, reject) => {
      // Never posted, so safe to retry later.
      if (closing) return reject(new ChannelError('sender thread is closed', false, false, 'ECLOSED'));
      thread ??= start();
      const id = nextId++;
      waiting.set(id, { resolve, reject });
      thread.postMessage({ id, kind, message } satisfies SenderRequest);
    });

  const close = () => {
    closing ??= (async () => {
      const t = thread;
      if (!t) return;
      const exited = new Promise<void>((r) => t.once('exit', () => r()));
      t.postMessage({ close: true } satisfies SenderRequest);
      const timer = setTimeout(() => void t.terminate(), 5000);
      await exited;
      clearTimeout(timer);
    })();
    return closing;
  };
  return { email: { send: (m) => call('email', m), close }, sms: { send: (m) => call('sms', m), close } };
}
