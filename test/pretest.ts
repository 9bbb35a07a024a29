/**
 * `npm test`'s pretest: what the suite needs before jest starts, on a fresh machine of the README's
 * kind (Debian, Node 20) with nothing else done.
 * - Postgres and Redis must answer. When the local one does not and this machine has it installed
 *   (Debian's pg_ctlcluster, redis-server), it is started as .ci/run does; otherwise one line says
 *   which, where, and how to start it.
 * - The browser tests drive Debian's chromium (playwright-core, no bundled browser): installed here
 *   with apt-get when it is missing and this process may (root, or sudo without a password);
 *   otherwise the reason is printed, and those tests skip (and fail under CI=true, see helpers/browser.ts).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { DependencyDown, preflight } from '../src/ops/preflight';
import { CHROMIUM } from './helpers/browser-path';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from './helpers/env';

const say = (line: string) => process.stdout.write(`pretest: ${line}\n`);

function installChromium(): string | null {
  if (existsSync(CHROMIUM)) return null;
  if (!existsSync('/usr/bin/apt-get')) return `no chromium at ${CHROMIUM} and no apt-get to install it (install chromium, or set CHROMIUM_PATH)`;
  const root = process.getuid?.() === 0;
  const sudo = !root && spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0;
  if (!root && !sudo) return `no chromium at ${CHROMIUM}; installing it needs root: sudo apt-get install chromium`;
  const run = (args: string[]) => execFileSync(root ? args[0]! : 'sudo', root ? args.slice(1) : args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  say("installing Debian's chromium for the browser tests (apt-get install chromium; once, about a minute)");
  try {
    run(['apt-get', 'update', '-qq']);
    run(['apt-get', 'install', '-y', '-qq', 'chromium']);
  } catch (err) {
    return `apt-get install chromium failed: ${String((err as { stderr?: Buffer }).stderr ?? (err as Error).message).trim().split('\n').pop()}`;
  }
  return existsSync(CHROMIUM) ? null : `apt-get installed chromium, but not at ${CHROMIUM}`;
}

const local = (url: string) => ['127.0.0.1', 'localhost', '::1', '[::1]'].includes(new URL(url).hostname);

/** Starts the machine's own Postgres or Redis, the way .ci/run does; false when it cannot. */
function startService(which: 'Postgres' | 'Redis'): boolean {
  try {
    if (which === 'Postgres') {
      if (!local(TEST_DATABASE_URL) || !existsSync('/usr/bin/pg_ctlcluster') || !existsSync('/etc/postgresql')) return false;
      const version = readdirSync('/etc/postgresql')[0];
      if (!version) return false;
      say(`Postgres does not answer: starting it (pg_ctlcluster ${version} main start)`);
      execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'start'], { stdio: 'ignore' });
      return true;
    }
    if (!local(TEST_REDIS_URL) || !existsSync('/usr/bin/redis-server')) return false;
    const port = new URL(TEST_REDIS_URL).port || '6379';
    say(`Redis does not answer: starting it (redis-server on 127.0.0.1:${port})`);
    execFileSync('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', port, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function main() {
  const started = new Set<string>();
  for (let attempt = 0; ; attempt++) {
    try {
      await preflight(TEST_DATABASE_URL, TEST_REDIS_URL);
      break;
    } catch (err) {
      if (!(err instanceof DependencyDown)) throw err;
      const which = /Postgres/.test(err.message.split('(')[0]!) ? 'Postgres' : 'Redis';
      // Each is started once, then given half a minute to answer.
      const fail = started.has(which) ? attempt >= 30 : !startService(which);
      if (fail) {
        process.stderr.write(`${err.message}\n`);
        process.exit(1);
      }
      started.add(which);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  const problem = installChromium();
  if (problem) say(`${problem}; the browser tests will be skipped${process.env.CI === 'true' ? ' and, under CI=true, fail' : ''}`);
  process.exit(0);
}

void main();
