/**
 * A local Redis Cluster for the tests and the cluster benchmark: 3 masters and 3 replicas of the
 * installed redis-server (7+) on loopback ports 7101-7106, data under the system temp folder.
 * Idempotent: a cluster already up on those ports (all slots served, six nodes) is reused; anything
 * else on them that is ours (a half-built cluster) is shut down and rebuilt. Never touches 6379.
 *
 * `node -r @swc-node/register test/helpers/redis-cluster.ts` starts it from a shell (.ci/run);
 * test/global-setup.ts calls ensureRedisCluster() so that `npm test` needs nothing done by hand.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, rmdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CLUSTER_PORTS = [7101, 7102, 7103, 7104, 7105, 7106];
export const CLUSTER_URL = `redis+cluster://${CLUSTER_PORTS.slice(0, 3)
  .map((p) => `127.0.0.1:${p}`)
  .join(',')}`;
const ROOT = join(tmpdir(), 'hark-redis-cluster');
const LOCK = join(ROOT, 'lock');

/** redis-cli against one port; stdout, or null when the node does not answer. */
export function cli(port: number, ...args: string[]): string | null {
  const r = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0 || /^Could not connect/m.test(r.stdout + r.stderr)) return null;
  return r.stdout;
}

export function clusterInfo(port: number): Record<string, string> | null {
  const out = cli(port, 'cluster', 'info');
  if (!out || !out.includes('cluster_state')) return null;
  return Object.fromEntries(
    out
      .split(/\r?\n/)
      .filter((l) => l.includes(':'))
      .map((l) => l.split(':', 2) as [string, string]),
  );
}

/** Every node answers, all 16384 slots are served, six nodes known, each master has its replica. */
export function clusterHealthy(): boolean {
  for (const port of CLUSTER_PORTS) {
    const info = clusterInfo(port);
    if (!info || info.cluster_state !== 'ok' || info.cluster_slots_ok !== '16384' || info.cluster_known_nodes !== '6') return false;
  }
  const nodes = cli(CLUSTER_PORTS[0]!, 'cluster', 'nodes') ?? '';
  const lines = nodes.split('\n').filter(Boolean);
  const masters = lines.filter((l) => / master /.test(l.replace(/,/g, ' ')) && !/fail/.test(l));
  const replicas = lines.filter((l) => / slave /.test(l.replace(/,/g, ' ')) && !/fail/.test(l));
  return masters.length === 3 && replicas.length === 3;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, fn: () => boolean, ms = 30_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (fn()) return;
    await sleep(200);
  }
  throw new Error(`redis cluster: timed out waiting for ${what}`);
}

/** One builder at a time across processes (parallel test runs on one machine). */
async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  mkdirSync(ROOT, { recursive: true });
  const end = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch {
      // A lock older than two minutes is a builder that died.
      try {
        if (Date.now() - statSync(LOCK).mtimeMs > 120_000) rmdirSync(LOCK);
      } catch {
        /* gone meanwhile */
      }
      if (Date.now() > end) throw new Error(`redis cluster: ${LOCK} held for two minutes`);
      await sleep(250);
    }
  }
  try {
    return await fn();
  } finally {
    rmdirSync(LOCK);
  }
}

export async function ensureRedisCluster(): Promise<string> {
  if (clusterHealthy()) return CLUSTER_URL;
  return withLock(async () => {
    if (clusterHealthy()) return CLUSTER_URL;
    // Replicas may still be syncing after a restart or a failover: give a live cluster a moment.
    if (CLUSTER_PORTS.every((p) => clusterInfo(p)?.cluster_state === 'ok')) {
      try {
        await until('replicas', clusterHealthy, 10_000);
        return CLUSTER_URL;
      } catch {
        /* rebuild below */
      }
    }
    for (const port of CLUSTER_PORTS) {
      const info = cli(port, 'info', 'server');
      if (info === null) continue;
      // Only ever stop a node of ours: a cluster node whose data folder is under ROOT.
      const dir = cli(port, 'config', 'get', 'dir') ?? '';
      if (!dir.includes(ROOT)) throw new Error(`redis cluster: port ${port} is taken by something else (${dir.trim().split('\n').pop()})`);
      cli(port, 'shutdown', 'nosave');
    }
    await until('ports free', () => CLUSTER_PORTS.every((p) => cli(p, 'ping') === null));
    for (const port of CLUSTER_PORTS) {
      const dir = join(ROOT, String(port));
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      execFileSync('redis-server', [
        '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--daemonize', 'yes',
        '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf',
        // Failure detection within seconds, yet not fooled by a busy 2-core machine.
        '--cluster-node-timeout', '5000',
        '--save', '', '--appendonly', 'no', '--logfile', join(dir, 'redis.log'),
      ]);
    }
    await until('nodes up', () => CLUSTER_PORTS.every((p) => cli(p, 'ping')?.trim() === 'PONG'));
    execFileSync('redis-cli', ['--cluster', 'create', ...CLUSTER_PORTS.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '1', '--cluster-yes'], { stdio: 'ignore', timeout: 60_000 });
    await until('cluster ok', clusterHealthy, 60_000);
    return CLUSTER_URL;
  });
}

if (require.main === module) {
  ensureRedisCluster().then(
    (url) => process.stdout.write(`${url}\n`),
    (err) => {
      process.stderr.write(`${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}

/** The ports of the master serving `key`'s slot and of one of its replicas, as the cluster says now. */
export function ownersOf(key: string): { master: number; replica: number } {
  const slot = Number(cli(CLUSTER_PORTS[0]!, 'cluster', 'keyslot', key)!.trim());
  const lines = (cli(CLUSTER_PORTS[0]!, 'cluster', 'nodes') ?? '').split('\n').filter(Boolean).map((l) => l.split(' '));
  const port = (f: string[]) => Number(f[1]!.split('@')[0]!.split(':').pop());
  const master = lines.find((f) => f[2]!.includes('master') && !f[2]!.includes('fail') && f.slice(8).some((r) => {
    const [a, b] = r.split('-').map(Number);
    return slot >= a! && slot <= (b ?? a)!;
  }));
  if (!master) throw new Error(`no master serves slot ${slot}`);
  const replica = lines.find((f) => f[2]!.includes('slave') && f[3] === master[0] && !f[2]!.includes('fail'));
  if (!replica) throw new Error(`the master of slot ${slot} has no live replica`);
  return { master: port(master), replica: port(replica) };
}
