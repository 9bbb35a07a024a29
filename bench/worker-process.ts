import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..');

/**
 * NODE_OPTIONS of the worker role in docker-compose.yml: V8's young generation at 4 MB a
 * semi-space (default 16 on 64-bit), in the main thread and the sender thread (DISPATCH_SENDER=thread) alike. Dispatch
 * makes short-lived garbage at a high rate (rendered bodies, MIME parts); the default lets each
 * isolate's new space grow to 48 MB before a scavenge, which is most of the worker's peak RSS
 * (issue 21: <= 150 MB during a 100k send). Scavenges get more frequent, not costlier per message
 * in the dispatch bench (worker CPU per email 0.79 -> 0.67 ms in one small run each).
 */
export const WORKER_NODE_OPTIONS = '--max-semi-space-size=4';

/** The built hark (`dist/src/main.js`, run `npm run build` first) as a worker process; resolves once it listens. */
export function startWorkerProcess(nodeArgs: string[], env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...nodeArgs, join(ROOT, 'dist/src/main.js')], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('hark listening') && resolve(child));
    child.once('exit', (code) => reject(new Error(`worker exited ${code}: ${err}`)));
  });
}

/** SIGTERM, then SIGKILL after 10 s; resolves once the process is gone. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
