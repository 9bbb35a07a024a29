import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { TEST_DATABASE_URL } from './env';
import type { TestServer } from './server';

const ROOT = join(__dirname, '..', '..');

/** Worker child processes of the multi-process tests, and their cleanup. */
export class WorkerProcs {
  readonly children: ChildProcess[] = [];

  /**
   * Starts `script` (test/helpers/dispatch-child.ts or scheduled-child.ts) against the server's
   * Postgres, Redis (or Cluster) and queue prefix; resolves once it prints "ready".
   */
  start(server: TestServer, env: Record<string, string>, script = 'test/helpers/dispatch-child.ts'): Promise<ChildProcess> {
    const full = {
      ...process.env,
      NODE_ENV: 'test',
      LOG_LEVEL: 'silent',
      DATABASE_URL: TEST_DATABASE_URL,
      REDIS_URL: server.deps.config.REDIS_URL,
      QUEUE_PREFIX: server.deps.queues.prefix,
      HARK_ADMIN_TOKEN: server.deps.config.HARK_ADMIN_TOKEN,
      ...env,
    };
    const child = spawn(process.execPath, ['-r', '@swc-node/register', script], { cwd: ROOT, env: full, stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.push(child);
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    return new Promise((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve(child));
      child.once('exit', (code, signal) => reject(new Error(`worker exited ${code ?? signal}: ${err}`)));
    });
  }

  killAll(): void {
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
}

export async function until(what: string, fn: () => Promise<boolean> | boolean, ms = 90_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}
