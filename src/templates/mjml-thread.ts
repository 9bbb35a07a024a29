import { parentPort } from 'node:worker_threads';
import type mjml2htmlFn from 'mjml';

/**
 * The thread MJML compiles in (mjml-pool.ts): one document at a time, errors as data. MJML is
 * synchronous CPU work of up to seconds for a large document; here it blocks no request.
 */
export interface MjmlRequest {
  id: number;
  body: string;
}
export type MjmlReply = { id: number; html: string; errors: Array<{ line: number; message: string }> } | { id: number; failure: string };
/** Posted once MJML is loaded: the pool's compile timeout starts only after it. */
export const READY = 'mjml-ready';

const mjml2html = require('mjml') as typeof mjml2htmlFn;
parentPort!.postMessage(READY);

parentPort!.on('message', (m: MjmlRequest) => {
  void (async () => {
    try {
      const r = await mjml2html(m.body, { validationLevel: 'soft', ignoreIncludes: true, keepComments: false, useMjmlConfigOptions: false });
      parentPort!.postMessage({ id: m.id, html: r.html, errors: (r.errors ?? []).slice(0, 20).map((e) => ({ line: e.line, message: e.message })) } satisfies MjmlReply);
    } catch (err) {
      parentPort!.postMessage({ id: m.id, failure: (err as Error).message } satisfies MjmlReply);
    }
  })();
});
