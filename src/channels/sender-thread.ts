/**
 * The provider side of dispatch, in a worker thread (see threaded.ts): MIME composition and the
 * SMTP conversation (nodemailer), form encoding and HTTP (twilio) cost more CPU per message than
 * everything else dispatch does, so they run here, beside the main thread's claims, rules,
 * rendering and bookkeeping. Requests and replies are plain data; errors are classified here.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createProviderChannels, ProviderSpec } from './select';
import { ChannelError } from './types';

/** SMTP, Twilio or the built-in inbox (which writes with its own small pool from databaseUrl). */
export type SenderSpec = ProviderSpec;

export type SenderCall = { id: number; kind: 'email' | 'sms'; message: unknown };
/** The calls of one turn of the main thread's event loop come in one message. */
export type SenderRequest = { batch: SenderCall[] } | { close: true };
export type SenderReply =
  | { id: number; ok: true; providerId: string }
  | { id: number; ok: false; error: { message: string; permanent: boolean; suppress: boolean; code?: string } }
  | { closed: true }
  | { ready: true };

if (parentPort) {
  const port = parentPort;
  const spec = workerData as SenderSpec;
  const channels = createProviderChannels(spec);
  // The provider libraries are loaded: the main thread's warm() resolves on this.
  port.postMessage({ ready: true } satisfies SenderReply);
  // Replies of one turn of this thread's event loop go back in one message (see threaded.ts).
  let replies: SenderReply[] = [];
  const flush = () => {
    if (replies.length) port.postMessage(replies.splice(0));
  };
  const reply = (r: SenderReply) => {
    replies.push(r);
    if (replies.length === 1) setImmediate(flush);
  };
  port.on('message', (req: SenderRequest) => {
    if ('close' in req) {
      void Promise.allSettled([channels.email.close(), channels.sms.close()]).then(() => {
        flush();
        port.postMessage({ closed: true } satisfies SenderReply);
        port.close();
      });
      return;
    }
    for (const call of req.batch) {
      const channel = channels[call.kind] as { send(m: unknown): Promise<{ providerId: string }> };
      channel.send(call.message).then(
        (r) => reply({ id: call.id, ok: true, providerId: r.providerId }),
        (err: unknown) => {
          const e = err instanceof ChannelError ? err : new ChannelError(`provider call failed: ${(err as Error).message}`.slice(0, 500), false, false);
          reply({ id: call.id, ok: false, error: { message: e.message, permanent: e.permanent, suppress: e.suppress, code: e.code } });
        },
      );
    }
  });
}
