/**
 * npm run demo: a "Demo store" workspace with a year of real purchase history (the UCI Online
 * Retail sample, shifted so the last order was yesterday), the segments a retailer starts with,
 * and a win-back automation run once. Everything goes through hark's own API (an in-process copy
 * of the app on a loopback port: batch endpoints, segments, templates, automations), against the
 * database and Redis of the environment, so a running hark's workers send the win-back.
 * Running it again resets the workspace.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { systemClock } from '../clock';
import { ConfigError, loadConfig } from '../config';
import { createDb, ensureDatabase, migrateLatest } from '../db';
import type { Deps } from '../deps';
import { createLogger } from '../logger';
import { createMetrics } from '../ops/metrics';
import { DependencyDown, preflight } from '../ops/preflight';
import { Queues } from '../queues';
import { createRedis } from '../redis';
import { deleteAutomation } from '../automations/service';
import { deleteWorkspacesNamed } from './reset';
import { DEMO_SMS_FROM, loadRetail } from './retail';

export const DEMO_NAME = 'Demo store';
// From the sources (src/demo) or the build (dist/src/demo).
const DATA = [join(__dirname, '../..'), join(__dirname, '../../..')].map((root) => join(root, 'test/fixtures/data/online-retail-sample.csv')).find((f) => existsSync(f)) ?? 'test/fixtures/data/online-retail-sample.csv';
const say = (line: string) => process.stdout.write(`${line}\n`);

type Call = <T = any>(method: string, path: string, body?: unknown) => Promise<T>;

function api(base: string, key: string): Call {
  return async (method, path, body) => {
    const res = await fetch(base + path, { method, headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
    return (text ? JSON.parse(text) : null) as never;
  };
}

export interface DemoResult {
  workspaceId: string;
  apiKey: string;
  consoleUrl: string;
  customers: number;
  purchases: number;
  segments: Record<string, { id: string; count: number }>;
  automationId: string;
  entered: number;
}

export async function runDemo(deps: Deps, opts: { now?: Date; log?: (line: string) => void } = {}): Promise<DemoResult> {
  const log = opts.log ?? (() => undefined);
  const now = opts.now ?? new Date();
  // Reset: automations first (their schedules live in Redis too), then every row of the workspace.
  for (const ws of await deps.db('workspaces').where({ name: DEMO_NAME }).select('id')) {
    for (const a of await deps.db('automations').where({ workspace_id: ws.id }).select('id')) await deleteAutomation(deps, ws.id, a.id);
  }
  const removed = await deleteWorkspacesNamed(deps.db, DEMO_NAME);
  if (removed) log(`reset: removed the previous "${DEMO_NAME}"`);

  const { buildApp } = require('../app') as typeof import('../app');
  const server = buildApp(deps).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const ws = await api(base, deps.config.HARK_ADMIN_TOKEN)<{ id: string; apiKey: string }>('POST', '/v1/workspaces', { name: DEMO_NAME, timezone: 'Europe/London', currency: 'GBP' });
    const call = api(base, ws.apiKey);
    // No quiet hours or cap: the win-back goes out now, whatever the hour in London.
    await call('PATCH', '/v1/settings', { fromEmail: 'hello@demo-store.example', fromName: DEMO_NAME, replyTo: 'help@demo-store.example', smsFrom: DEMO_SMS_FROM, postalAddress: '1 High Street, London EC1A 1AA', quietHours: null, frequencyCap: null });

    const yesterday = new Date(now.getTime() - 86400_000);
    const data = loadRetail(DATA, yesterday);
    for (let i = 0; i < data.customers.length; i += 1000) {
      const r = await call<{ errors: unknown[] }>('POST', '/v1/customers/batch', { customers: data.customers.slice(i, i + 1000) });
      if (r.errors.length) throw new Error(`customers refused: ${JSON.stringify(r.errors.slice(0, 3))}`);
    }
    log(`loaded ${data.customers.length} customers`);
    for (let i = 0; i < data.purchases.length; i += 1000) {
      const r = await call<{ errors: unknown[] }>('POST', '/v1/purchases/batch', { purchases: data.purchases.slice(i, i + 1000) });
      if (r.errors.length) throw new Error(`purchases refused: ${JSON.stringify(r.errors.slice(0, 3))}`);
    }
    log(`loaded ${data.purchases.length} purchases (dates moved ${data.shiftDays} days: the last order was yesterday)`);

    const segments: DemoResult['segments'] = {};
    for (const [preset, name] of [['fading', 'Fading regulars'], ['vip', 'VIP (top 10% by spend)'], ['lapsed', 'Lapsed (no order in 180 days)'], ['new', 'New (first order within 30 days)']] as const) {
      const s = await call<{ id: string }>('POST', '/v1/segments', { name, definition: { preset } });
      const { count } = await call<{ count: number }>('GET', `/v1/segments/${s.id}/count`);
      segments[preset] = { id: s.id, count };
      log(`segment ${name}: ${count} customers`);
    }

    const starter = await call<{ data: Array<{ key: string; id: string }> }>('POST', '/v1/templates/starter', {});
    const tpl = Object.fromEntries(starter.data.map((t) => [t.key, t.id]));
    const automation = await call<{ id: string }>('POST', '/v1/automations', {
      name: 'Win back fading regulars',
      trigger: { type: 'segmentEntry', segmentId: segments.fading!.id },
      schedule: '0 10 * * *',
      steps: [
        { type: 'send', channel: 'email', templateId: tpl['win-back-email'] },
        { type: 'wait', hours: 168 },
        { type: 'send', channel: 'sms', templateId: tpl['win-back-sms'] },
      ],
      exitWhen: 'purchased',
      reentryAfterDays: 90,
      enabled: true,
    });
    const { entered } = await call<{ entered: number }>('POST', `/v1/automations/${automation.id}/run`);
    log(`win-back automation: ${entered} fading regulars entered; their emails go out now, the SMS in 7 days unless they buy`);
    return {
      workspaceId: ws.id,
      apiKey: ws.apiKey,
      consoleUrl: `${deps.config.PUBLIC_URL.replace(/\/+$/, '')}/app/`,
      customers: data.customers.length,
      purchases: data.purchases.length,
      segments,
      automationId: automation.id,
      entered,
    };
  } finally {
    await new Promise((r) => server.close(r));
  }
}

async function main() {
  // The operator token only opens the in-process copy's POST /v1/workspaces; any will do if none is set.
  const config = loadConfig({ HARK_ADMIN_TOKEN: randomBytes(24).toString('hex'), ...process.env });
  await preflight(config.DATABASE_URL, config.REDIS_URL);
  await ensureDatabase(config.DATABASE_URL);
  const db = createDb(config.DATABASE_URL, 5);
  await migrateLatest(db);
  const redis = createRedis(config.REDIS_URL);
  const deps: Deps = { config, db, redis, queues: new Queues(redis, config.QUEUE_PREFIX), clock: systemClock, logger: createLogger('silent'), metrics: createMetrics() };
  const started = Date.now();
  try {
    const r = await runDemo(deps, { log: say });
    const running = await fetch(new URL('/healthz', config.PUBLIC_URL)).then((res) => res.ok, () => false);
    say('');
    say(`"${DEMO_NAME}" is ready (${((Date.now() - started) / 1000).toFixed(1)} s).`);
    say(`  console:   ${r.consoleUrl}`);
    say(`  admin key: ${r.apiKey}`);
    say(
      running
        ? `  Open the console, paste the key, and see the ${r.entered} win-back emails arrive on the Inbox page (within a minute).`
        : `  No hark answers at ${config.PUBLIC_URL}: start it (npm start, same environment) and its workers send the ${r.entered} win-back emails to the Inbox page.`,
    );
  } finally {
    await deps.queues.close();
    await db.destroy();
    await redis.quit();
  }
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err) => {
      process.stderr.write(`${err instanceof ConfigError || err instanceof DependencyDown ? err.message : `demo failed: ${(err as Error).message}`}\n`);
      process.exit(1);
    },
  );
}
