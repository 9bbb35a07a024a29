import { fork } from 'node:child_process';

/**
 * A load generator runs in a child process of its own, so that building requests and parsing
 * answers takes no event-loop turns from the server under test. `inChild` runs `file`'s job there;
 * the file calls `serveInChild` with the same job at its end.
 */
export function inChild<S, R>(file: string, spec: S): Promise<R> {
  return new Promise((resolve, reject) => {
    const child = fork(file, [], { execArgv: ['-r', '@swc-node/register'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let done = false;
    child.once('message', (m: { ok: true; result: R } | { ok: false; error: string }) => {
      done = true;
      if (m.ok) resolve(m.result);
      else reject(new Error(`load generator: ${m.error}`));
    });
    child.once('error', reject);
    child.once('exit', (code) => done || reject(new Error(`load generator exited with ${code}`)));
    child.send(spec as object);
  });
}

/** In the child `inChild` forked (module is the file's own): run the job on the spec it is sent, answer, exit. */
export function serveInChild<S, R>(module: NodeModule, job: (spec: S) => Promise<R>): void {
  if (require.main !== module || !process.send) return;
  process.once('message', (spec: S) => {
    job(spec).then(
      (result) => process.send!({ ok: true, result }, () => process.exit(0)),
      (err: Error) => process.send!({ ok: false, error: err.stack ?? String(err) }, () => process.exit(1)),
    );
  });
}
