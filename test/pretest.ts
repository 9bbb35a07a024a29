/**
 * `npm test`'s pretest: what the suite needs before jest starts, on a fresh machine of the README's
 * kind (Debian, Node 20) with nothing else done.
 * - Postgres and Redis must answer: if not, one line saying which, where, and how to start it.
 * - The browser tests drive Debian's chromium (playwright-core, no bundled browser): installed here
 *   with apt-get when it is missing and this process may (root, or sudo without a password);
 *   otherwise the reason is printed, and those tests skip (and fail under CI=true, see helpers/browser.ts).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
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

async function main() {
  try {
    await preflight(TEST_DATABASE_URL, TEST_REDIS_URL);
  } catch (err) {
    if (err instanceof DependencyDown) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const problem = installChromium();
  if (problem) say(`${problem}; the browser tests will be skipped${process.env.CI === 'true' ? ' and, under CI=true, fail' : ''}`);
  process.exit(0);
}

void main();
