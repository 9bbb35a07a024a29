import { readdirSync, readFileSync } from 'node:fs';

/** CPU and memory of processes and threads as Linux reports them in /proc, for the benches. */

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** User + system CPU of a process, or of one of its threads, in ms; 0 once it is gone or unreadable. */
export function procCpuMs(pid: number, tid?: number): number {
  try {
    // The command name may hold spaces and ')': the fields after it start past the last ')'.
    const stat = readFileSync(tid ? `/proc/${pid}/task/${tid}/stat` : `/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_MS; // utime, stime
  } catch {
    return 0;
  }
}

/** A field of /proc/<pid>/status in kB, 0 once the process is gone. */
export function procStatusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** This process's own user + system CPU so far, in ms. */
export const ownCpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** Busy and total jiffies of all cores (/proc/stat). */
export function machineCpu(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3]! - f[4]!, total };
}

/** Pids whose command line (/proc/<pid>/cmdline, NULs as spaces) passes `match`. */
export function pidsWhere(match: (cmdline: string) => boolean): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (match(readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ').trim())) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * CPU (ms) of a changing set of processes between two reads: `take()` at the start, `since()` at
 * the end sums each process's CPU since the start (from zero for one that began meanwhile; one
 * that ended meanwhile is missed, so read before stopping them).
 */
export function cpuOf(pids: () => number[]): { since(): number } {
  const start = new Map(pids().map((p) => [p, procCpuMs(p)]));
  return { since: () => pids().reduce((sum, p) => sum + Math.max(0, procCpuMs(p) - (start.get(p) ?? 0)), 0) };
}
