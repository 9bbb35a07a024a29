import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { TEST_DATABASE_URL } from './env';
import { newWorkspace } from './api';
import type { TestServer } from './server';
import type { SmtpPeer } from './smtp-peer';

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
      // The server's resolved secret: links the children sign verify on the server, and no child
      // needs the database's generated one.
      HARK_SIGNING_SECRET: server.deps.config.HARK_SIGNING_SECRET ?? '',
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

/** Messages received per address of `domain`. */
export function receivedBy(smtp: SmtpPeer, domain: string): Map<string, number> {
  const per = new Map<string, number>();
  for (const m of smtp.received) for (const to of m.envelopeTo) if (to.endsWith(`@${domain}`)) per.set(to, (per.get(to) ?? 0) + 1);
  return per;
}

/** A workspace and a campaign to n subscribed customers at k<i>@domain (a tracked link in it), sent now. */
export async function sendCampaign(server: TestServer, domain: string, n: number) {
  const ws = await newWorkspace(server.url, `scale ${domain}`, { timezone: 'UTC' });
  await ws.api.patch('/v1/settings', { fromEmail: 'shop@example.com', postalAddress: '1 Main St' });
  for (let i = 0; i < n; i += 1000) {
    const customers = Array.from({ length: Math.min(1000, n - i) }, (_, j) => ({ externalId: `k${i + j}`, email: `k${i + j}@${domain}`, emailConsent: 'subscribed', city: 'Riga' }));
    const res = await ws.api.post('/v1/customers/batch', { customers });
    if (res.body.created !== customers.length) throw new Error(`customers: ${JSON.stringify(res.body)}`);
  }
  const seg = (await ws.api.post('/v1/segments', { name: 'riga', definition: { field: 'city', op: 'eq', value: 'Riga' } })).body.id;
  const tpl = (await ws.api.post('/v1/templates', { name: 't', channel: 'email', subject: 'Hi', body: '<p>Hello <a href="https://shop.example.com/sale">Shop</a></p>' })).body.id;
  const id = (await ws.api.post('/v1/campaigns', { name: 'c', channel: 'email', templateId: tpl, segmentIds: [seg] })).body.id;
  const sent = await ws.api.post(`/v1/campaigns/${id}/send`);
  if (sent.status !== 202) throw new Error(`send: ${sent.status}`);
  return { ws, id: id as string };
}
