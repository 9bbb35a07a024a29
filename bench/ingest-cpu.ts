import { readFileSync } from 'node:fs';
import type { Db } from '../src/db';

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
}

const TICK_MS = 10; // USER_HZ is 100 on Linux

function backendMs(pid: number): number {
  try {
    // The command name may hold spaces: the fields after it start past the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_MS; // utime, stime
  } catch {
    return 0; // gone, or not readable
  }
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
    const pids = new Map<number, number>((rows as Array<{ pid: number }>).map((r) => [r.pid, backendMs(r.pid)]));
    return { pids, lsn: lsnBytes((rows as Array<{ lsn: string }>)[0]!.lsn) };
  };
  return async () => {
    const before = await backends();
    const cpu0 = process.cpuUsage();
    const q0 = statements;
    return async (): Promise<CpuSample> => {
      const cpu = process.cpuUsage(cpu0);
      const q = statements - q0 - 1; // less the pg_stat_activity query below
      const after = await backends();
      let postgresMs = 0;
      for (const [pid, ms] of after.pids) postgresMs += ms - (before.pids.get(pid) ?? 0);
      return { serverMs: (cpu.user + cpu.system) / 1000, postgresMs, statements: q, walBytes: after.lsn - before.lsn };
    };
  };
}
