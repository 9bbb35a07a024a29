import { spawnSync } from 'node:child_process';
import type { Db } from '../src/db';
import { ownCpuMs, procCpuMs } from './proc';

/** CPU of the dispatch bench's parties (worker threads, Postgres backends, this process, Redis). */
export interface CpuSnapshot {
  workerMain: number;
  workerAll: number;
  pg: Map<number, number>;
  bench: number;
  redis: number;
}

/** CPU so far of the worker (main thread = the task whose id is the pid), the bench database's backends, this process, redis-server. */
export async function cpuSnapshot(db: Db, workerPid: number, quiet = false): Promise<CpuSnapshot> {
  const { rows } = await db.raw('SELECT pid, backend_type FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
  const pg = new Map<number, number>();
  for (const r of rows as Array<{ pid: number; backend_type: string }>) {
    pg.set(r.pid, procCpuMs(r.pid));
    if (process.env.BENCH_CPU_DETAIL && !quiet) process.stderr.write(`  pg ${r.pid} ${r.backend_type} ${procCpuMs(r.pid)}\n`);
  }
  const redisPid = Number(spawnSync('pgrep', ['-o', '-x', 'redis-server'], { encoding: 'utf8' }).stdout.trim()) || 0;
  return { workerMain: procCpuMs(workerPid, workerPid), workerAll: procCpuMs(workerPid), pg, bench: ownCpuMs(), redis: redisPid ? procCpuMs(redisPid) : 0 };
}

/** Deltas; a backend that appeared in between counts whole, one that ended in between is lost (pools keep theirs). */
export function cpuSince(a: CpuSnapshot, b: CpuSnapshot) {
  let pg = 0;
  for (const [pid, ms] of b.pg) pg += ms - (a.pg.get(pid) ?? 0);
  return { workerMain: b.workerMain - a.workerMain, workerThreads: b.workerAll - b.workerMain - (a.workerAll - a.workerMain), pg, bench: b.bench - a.bench, redis: b.redis - a.redis };
}
