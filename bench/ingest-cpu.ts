import type { Db } from '../src/db';
import { procCpuMs } from './proc';

/**
 * CPU spent per phase, for a machine shared with other benchmarks where wall-clock figures are
 * noisy: this process's CPU (the server; the load generator is a child process), the CPU of the
 * Postgres backends serving the bench database (from /proc/<pid>/stat), and the SQL statements
 * the app sent (knex's query event; BEGIN and COMMIT included).
 */
export interface CpuSample {
  serverMs: number;
  postgresMs: number;
  statements: number;
  /** WAL written meanwhile, by the whole server (other databases' writers included). */
  walBytes: number;
  /** Shared-buffer misses (pages read from the OS) and hits in the bench database (pg_stat_database; a backend reports at most once a second). */
  blocksRead: number;
  blocksHit: number;
  /** Dirty pages a backend had to write itself to free a buffer (pg_stat_bgwriter, whole server). */
  backendWrites: number;
  /** With BENCH_IO_DETAIL: pages read and hit per table and index, most read first. */
  byRelation: Array<{ name: string; read: number; hit: number }>;
}

/** A WAL position ("16/B374D848") as a byte offset. */
const lsnBytes = (lsn: string) => {
  const [hi, lo] = lsn.split('/');
  return parseInt(hi!, 16) * 2 ** 32 + parseInt(lo!, 16);
};

export function cpuMeter(db: Db, database: string) {
  let statements = 0;
  db.on('query', () => statements++);
  const backends = async () => {
    const { rows } = await db.raw('SELECT pid, pg_current_wal_lsn() AS lsn FROM pg_stat_activity WHERE datname = ?', [database]);
    const pids = new Map<number, number>((rows as Array<{ pid: number }>).map((r) => [r.pid, procCpuMs(r.pid)]));
    const { rows: io } = await db.raw(
      'SELECT d.blks_read::float8 AS read, d.blks_hit::float8 AS hit, (SELECT buffers_backend::float8 FROM pg_stat_bgwriter) AS backend FROM pg_stat_database d WHERE d.datname = ?',
      [database],
    );
    const b = io[0] as { read: number; hit: number; backend: number };
    // BENCH_IO_DETAIL: misses and hits per table and index, to see which relation outgrew shared_buffers.
    const rel = new Map<string, { read: number; hit: number }>();
    if (process.env.BENCH_IO_DETAIL) {
      const { rows: r } = await db.raw(
        `SELECT relname AS name, heap_blks_read::float8 AS read, heap_blks_hit::float8 AS hit FROM pg_statio_user_tables
         UNION ALL SELECT indexrelname, idx_blks_read::float8, idx_blks_hit::float8 FROM pg_statio_user_indexes`,
      );
      for (const x of r as Array<{ name: string; read: number; hit: number }>) rel.set(x.name, { read: x.read, hit: x.hit });
    }
    return { pids, lsn: lsnBytes((rows as Array<{ lsn: string }>)[0]!.lsn), read: b.read, hit: b.hit, backend: b.backend, rel };
  };
  return async () => {
    const before = await backends();
    const cpu0 = process.cpuUsage();
    const q0 = statements;
    return async (): Promise<CpuSample> => {
      const cpu = process.cpuUsage(cpu0);
      const q = statements - q0 - (process.env.BENCH_IO_DETAIL ? 3 : 2); // less the queries of backends() below
      const after = await backends();
      let postgresMs = 0;
      for (const [pid, ms] of after.pids) postgresMs += ms - (before.pids.get(pid) ?? 0);
      const byRelation = [...after.rel]
        .map(([name, a]) => ({ name, read: a.read - (before.rel.get(name)?.read ?? 0), hit: a.hit - (before.rel.get(name)?.hit ?? 0) }))
        .filter((x) => x.read + x.hit > 0)
        .sort((x, y) => y.read - x.read || y.hit - x.hit);
      return {
        serverMs: (cpu.user + cpu.system) / 1000,
        postgresMs,
        statements: q,
        walBytes: after.lsn - before.lsn,
        blocksRead: after.read - before.read,
        blocksHit: after.hit - before.hit,
        backendWrites: after.backend - before.backend,
        byRelation,
      };
    };
  };
}
