/**
 * The dispatch bench's baselines, each in a process of its own like hark's worker, so that neither
 * side shares a thread with the SMTP server or the Twilio stand-in (both live in the bench
 * process). The messages are what hark renders for the campaign's audience, rendered before the
 * clock starts; only the provider calls are timed.
 *   email: a bare nodemailer pool of hark's SMTP pool size, 64 sendMail calls in flight;
 *   sms:   the twilio library as shipped (its default HTTP client, axios) with only the API base
 *          rewritten to the stand-in, 32 messages.create calls in flight: as many as hark has on
 *          the wire (its sender thread's agent holds 32 sockets). `transport: 'hark'` runs the same
 *          calls through hark's own HTTP client for the library (src/channels/twilio-http.ts), to
 *          show how much of the difference is that client.
 * Run by bench/dispatch.ts (runBaseline); prints one JSON line {"rate": messages per second}.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { SMTP_POOL_CONNECTIONS } from '../src/channels/smtp';
import { createTwilioChannel } from '../src/channels/twilio';
import { ownCpuMs } from './proc';
import { loadConfig } from '../src/config';
import { createDb, Db } from '../src/db';
import { publicLinks } from '../src/public/tokens';
import { buildRenderContexts, loadTemplate, renderMessage, RenderedEmail, RenderedSms } from '../src/templates/render';

export interface BaselineJob {
  channel: 'email' | 'sms';
  dbUrl: string;
  workspaceId: string;
  templateId: string;
  n: number;
  /** SMTP_URL / TWILIO_API_URL of the peers. */
  smtpUrl: string;
  twilioUrl: string;
  /** SMS only: 'library' (default) the library's own HTTP client; 'hark' hark's. */
  transport?: 'library' | 'hark';
}

interface PreRendered {
  id: string;
  to: string;
  rendered: RenderedEmail | RenderedSms;
}

/** Messages per second of the timed sends, and the child's own CPU over them (ms). */
export interface BaselineResult {
  rate: number;
  cpuMs: number;
}

/** Runs one baseline in a child process and returns its messages per second and CPU. */
export function runBaseline(job: BaselineJob): Promise<BaselineResult> {
  const child = spawn(process.execPath, ['-r', '@swc-node/register', __filename], { cwd: join(__dirname, '..'), env: { ...process.env, BASELINE_JOB: JSON.stringify(job) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code === 0 && line.startsWith('{')) resolve(JSON.parse(line) as BaselineResult);
      else reject(new Error(`baseline ${job.channel} exited ${code}: ${err}`));
    });
  });
}

/** What hark would send to the audience's first n customers (ids 1..n stand in for message ids). */
async function preRender(db: Db, config: ReturnType<typeof loadConfig>, job: BaselineJob): Promise<PreRendered[]> {
  const now = new Date();
  const template = await loadTemplate(db, job.workspaceId, job.templateId);
  const customers = (await db('customers').where({ workspace_id: job.workspaceId }).orderBy('id').limit(job.n).select('id', 'email', 'phone')) as Array<{ id: string; email: string; phone: string }>;
  const contexts = await buildRenderContexts(db, job.workspaceId, customers.map((c) => String(c.id)), now);
  const out: PreRendered[] = [];
  for (const [i, c] of customers.entries()) {
    const rendered = await renderMessage(template, contexts.get(String(c.id))!, publicLinks(config, String(i + 1), now));
    out.push({ id: String(i + 1), to: rendered.channel === 'email' ? c.email : c.phone, rendered });
  }
  return out;
}

/** BENCH_SMS_BASELINE_IN_FLIGHT overrides it, to compare. */
const SMS_IN_FLIGHT = Number(process.env.BENCH_SMS_BASELINE_IN_FLIGHT ?? 32);

async function pool<T>(items: T[], parallel: number, fn: (t: T) => Promise<unknown>) {
  let next = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

async function main(job: BaselineJob): Promise<BaselineResult> {
  const config = loadConfig({ DATABASE_URL: job.dbUrl, SMTP_URL: job.smtpUrl, TWILIO_API_URL: job.twilioUrl, TWILIO_ACCOUNT_SID: 'AC00000000000000000000000000000bench', TWILIO_AUTH_TOKEN: 'bench-twilio-token', HARK_ADMIN_TOKEN: 'bench-admin-token-0123456789abcdef', HARK_SIGNING_SECRET: 'bench-signing-secret-0123456789-abcdef', LOG_LEVEL: 'silent' });
  const db = createDb(job.dbUrl, 2);
  const messages = await preRender(db, config, job);
  await db.destroy();
  if (job.channel === 'email') {
    const u = new URL(job.smtpUrl);
    const transport = nodemailer.createTransport({ host: u.hostname, port: Number(u.port), secure: false, pool: true, maxConnections: SMTP_POOL_CONNECTIONS, maxMessages: 1000 });
    const c0 = ownCpuMs();
    const t0 = process.hrtime.bigint();
    await pool(messages, 64, (m) => {
      const r = m.rendered as RenderedEmail;
      return transport.sendMail({ from: 'shop@example.com', to: m.to, subject: r.subject, html: r.html, text: r.text, headers: r.headers, messageId: `<hark.${m.id}@example.com>` });
    });
    const rate = messages.length / (Number(process.hrtime.bigint() - t0) / 1e9);
    const cpu = ownCpuMs() - c0;
    transport.close();
    return { rate, cpuMs: cpu };
  }
  // Only the library and a base-URL rewrite: no rendering, rules or bookkeeping.
  const ch = createTwilioChannel({ accountSid: config.TWILIO_ACCOUNT_SID!, authToken: config.TWILIO_AUTH_TOKEN!, apiUrl: job.twilioUrl, httpClient: job.transport === 'hark' ? 'hark' : 'library' });
  const statusCallback = `${config.PUBLIC_URL.replace(/\/+$/, '')}/webhooks/twilio/status`;
  const c0 = ownCpuMs();
  const t0 = process.hrtime.bigint();
  await pool(messages, SMS_IN_FLIGHT, (m) => ch.send({ messageId: m.id, to: m.to, from: '+15005550006', body: (m.rendered as RenderedSms).text, statusCallback }));
  const rate = messages.length / (Number(process.hrtime.bigint() - t0) / 1e9);
  const cpu = ownCpuMs() - c0;
  await ch.close();
  return { rate, cpuMs: cpu };
}

if (require.main === module) {
  main(JSON.parse(process.env.BASELINE_JOB!) as BaselineJob)
    .then((r) => {
      process.stdout.write(`${JSON.stringify(r)}\n`);
      process.exit(0);
    })
    .catch((err) => {
      process.stderr.write(`${(err as Error).stack}\n`);
      process.exit(1);
    });
}
