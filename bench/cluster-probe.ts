import { readdirSync } from 'node:fs';
import { cpus } from 'node:os';
import IORedis from 'ioredis';
import { cpuOf, machineCpu, ownCpuMs, pidsWhere, procCpuMs } from './proc';

/**
 * What the cluster bench reads around each run (bench/cluster.ts): CPU per thread of the worker
 * processes (main thread apart from the others: the sender thread, GC and libuv threads), CPU of
 * each redis-server process by port, and the commands each Redis node executed (INFO
 * commandstats), so that the cluster's cost can be told apart per part and per message.
 */

/** CPU (ms) of the main thread and of all other threads of some processes, since take. */
export function threadCpu(pids: number[]): { since(): { main: number; other: number } } {
  const read = () => {
    const m = new Map<string, number>();
    for (const pid of pids) {
      let tids: string[] = [];
      try {
        tids = readdirSync(`/proc/${pid}/task`);
      } catch {
        // gone
      }
      for (const tid of tids) m.set(`${pid}/${tid}`, procCpuMs(pid, Number(tid)));
    }
    return m;
  };
  const start = read();
  return {
    since() {
      let main = 0;
      let other = 0;
      for (const [k, v] of read()) {
        const [pid, tid] = k.split('/');
        const d = Math.max(0, v - (start.get(k) ?? 0));
        if (pid === tid) main += d;
        else other += d;
      }
      return { main, other };
    },
  };
}

/** The redis-server pids serving these ports, by port. */
export function redisPidsByPort(ports: number[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const port of ports) {
    const [pid] = pidsWhere((c) => c.startsWith('redis-server ') && c.includes(`:${port}`) && !c.includes(`:${port}0`));
    if (pid) out.set(port, pid);
  }
  return out;
}

/** CPU (ms) of each redis-server port's process since take. */
export function redisCpu(ports: number[]): { since(): Map<number, number> } {
  const pids = redisPidsByPort(ports);
  const start = new Map([...pids].map(([port, pid]) => [port, procCpuMs(pid)]));
  return { since: () => new Map([...pids].map(([port, pid]) => [port, Math.max(0, procCpuMs(pid) - (start.get(port) ?? 0))])) };
}

export type CommandStats = Map<string, { calls: number; usec: number }>;

/** INFO commandstats of one node (calls and µs per command), or an empty map when it does not answer. */
export async function commandStats(port: number): Promise<CommandStats> {
  const r = new IORedis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    const out: CommandStats = new Map();
    for (const m of String(await r.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) out.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) });
    return out;
  } catch {
    return new Map();
  } finally {
    r.disconnect();
  }
}

/** Commands executed on these ports between two reads, summed over the ports, by command. */
export async function commandsSince(ports: number[]): Promise<{ since(): Promise<CommandStats> }> {
  const start = await Promise.all(ports.map(commandStats));
  return {
    async since() {
      const sum: CommandStats = new Map();
      const end = await Promise.all(ports.map(commandStats));
      end.forEach((stats, i) => {
        for (const [cmd, v] of stats) {
          const s = start[i]!.get(cmd) ?? { calls: 0, usec: 0 };
          const acc = sum.get(cmd) ?? { calls: 0, usec: 0 };
          acc.calls += v.calls - s.calls;
          acc.usec += v.usec - s.usec;
          sum.set(cmd, acc);
        }
      });
      return sum;
    },
  };
}

/** The master ports of a cluster as one node sees it now ([port] for a single Redis). */
export async function masterPorts(seedPort: number): Promise<number[]> {
  const r = new IORedis({ host: '127.0.0.1', port: seedPort, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    if (!/cluster_enabled:1/.test(String(await r.info('cluster')))) return [seedPort];
    const nodes = String(await r.cluster('NODES')).split('\n').filter(Boolean).map((l) => l.split(' '));
    return nodes.filter((f) => f[2]!.includes('master') && !f[2]!.includes('fail')).map((f) => Number(f[1]!.split('@')[0]!.split(':').pop()));
  } finally {
    r.disconnect();
  }
}

/** CPU of the parts of one run, in cores (1 = one core busy all along), and Redis's commands. */
export interface RunCpu {
  /** The worker processes, and of them their main threads and their other threads (sender thread, GC, libuv). */
  workers: number;
  workersMain: number;
  workersOther: number;
  /** The bench database's Postgres backends. */
  postgres: number;
  /** Every redis-server process of the URL, and of them the masters and the replicas (a single Redis is one master). */
  redis: number;
  redisMasters: number;
  redisReplicas: number;
  /** The SMTP sink: the bench process (one thread serves it). */
  sink: number;
  /** The whole machine's busy share of all its cores (0-1), and the cores' worth that processes outside this run used. */
  machineBusy: number;
  others: number;
  /** Redis commands executed on the masters per message, and the busiest by calls. */
  redisCalls: number;
  topCommands: string;
}

/** Starts measuring a run's parts; stop(wallSeconds, messages) reads them all. */
export async function measureRun(workerPids: number[], pgBackends: () => number[], redisPorts: number[]): Promise<{ stop(wall: number, n: number): Promise<RunCpu> }> {
  const masters = await masterPorts(redisPorts[0]!);
  const cpu0 = machineCpu();
  const own0 = ownCpuMs();
  const workers = cpuOf(() => workerPids);
  const threads = threadCpu(workerPids);
  const pg = cpuOf(pgBackends);
  const redis = redisCpu(redisPorts);
  const commands = await commandsSince(masters);
  return {
    async stop(wall, n) {
      const cpu1 = machineCpu();
      const cores = (ms: number) => ms / 1000 / wall;
      const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
      const th = threads.since();
      const perPort = [...redis.since()];
      const cmds = [...(await commands.since())].filter(([, v]) => v.calls > 0).sort((a, b) => b[1].calls - a[1].calls);
      const r = {
        workers: cores(workers.since()),
        workersMain: cores(th.main),
        workersOther: cores(th.other),
        postgres: cores(pg.since()),
        redis: cores(sum(perPort.map(([, v]) => v))),
        redisMasters: cores(sum(perPort.filter(([p]) => masters.includes(p)).map(([, v]) => v))),
        redisReplicas: cores(sum(perPort.filter(([p]) => !masters.includes(p)).map(([, v]) => v))),
        sink: cores(ownCpuMs() - own0),
        machineBusy: (cpu1.busy - cpu0.busy) / (cpu1.total - cpu0.total),
        redisCalls: sum(cmds.map(([, v]) => v.calls)) / n,
        topCommands: cmds.slice(0, 6).map(([c, v]) => `${c} ${(v.calls / n).toFixed(3)}`).join(', '),
      };
      return { ...r, others: Math.max(0, r.machineBusy * cpus().length - r.workers - r.postgres - r.redis - r.sink) };
    },
  };
}

/** The run's parts in one line: % of one core, and CPU ms per message. */
export function describeRun(c: RunCpu, rate: number): string {
  const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
  const ms = (x: number) => ((1000 * x) / rate).toFixed(3);
  return (
    `CPU in % of one core (ms per message): workers ${pct(c.workers)} (${ms(c.workers)}; main threads ${ms(c.workersMain)}, other threads ${ms(c.workersOther)}), ` +
    `Postgres ${pct(c.postgres)} (${ms(c.postgres)}), Redis ${pct(c.redis)} (${ms(c.redis)}; masters ${ms(c.redisMasters)}, replicas ${ms(c.redisReplicas)}), ` +
    `sink ${pct(c.sink)} (${ms(c.sink)}; spare ${pct(1 - c.sink)} of its one thread); all ${ms(c.workers + c.postgres + c.redis + c.sink)} ms per message; ` +
    `machine busy ${pct(c.machineBusy)} of ${cpus().length} cores, others than this run ${pct(c.others)}; ` +
    `Redis commands on the masters per message ${c.redisCalls.toFixed(3)} (${c.topCommands})`
  );
}
