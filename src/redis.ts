import IORedis, { Cluster, Redis } from 'ioredis';
import { isClusterUrl, parseRedisUrl } from './redis-url';

export { isClusterUrl, parseRedisUrl } from './redis-url';

/**
 * A single Redis or a Redis Cluster: BullMQ and every key hark writes work on both. duplicate()
 * is restated so that a union of the two clients stays callable (workers take a connection each).
 */
export type RedisClient = (Redis | Cluster) & { duplicate(): RedisClient };

/** BullMQ needs maxRetriesPerRequest: null on the connections its workers block on. */
export function createRedis(url: string): RedisClient {
  return open(url) as RedisClient;
}

function open(url: string): Redis | Cluster {
  if (!isClusterUrl(url)) return new IORedis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false });
  const t = parseRedisUrl(url);
  if (!t) throw new Error(`redis: REDIS_URL is not a cluster URL of the form redis+cluster://host:port,host:port`);
  return new Cluster(t.nodes, {
    redisOptions: { maxRetriesPerRequest: null, username: t.username, password: t.password, tls: t.tls ? {} : undefined },
    enableReadyCheck: true,
    // A failover moves slots: follow MOVED/ASK and retry while the replica takes over.
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 300,
    slotsRefreshTimeout: 2000,
  });
}

const clusterLines = (s: string) => Object.fromEntries(s.split(/\r?\n/).filter((l) => l.includes(':')).map((l) => l.trim().split(':', 2) as [string, string]));

export interface ClusterState {
  state: string;
  slotsOk: number;
  mastersUp: number;
  replicasUp: number;
  nodesDown: number;
}

/** The cluster as the client sees it: CLUSTER INFO from one node, and which known nodes answer. */
export async function clusterState(cluster: Cluster): Promise<ClusterState> {
  const info = clusterLines(String(await cluster.cluster('INFO')));
  const raw = String(await cluster.cluster('NODES'));
  let mastersUp = 0;
  let replicasUp = 0;
  let nodesDown = 0;
  for (const line of raw.split('\n').filter(Boolean)) {
    const flags = line.split(' ')[2]?.split(',') ?? [];
    if (flags.includes('fail') || flags.includes('fail?') || flags.includes('noaddr')) nodesDown++;
    else if (flags.includes('master')) mastersUp++;
    else if (flags.includes('slave')) replicasUp++;
  }
  return { state: info.cluster_state ?? 'unknown', slotsOk: Number(info.cluster_slots_ok ?? 0), mastersUp, replicasUp, nodesDown };
}

/** Why this cluster cannot serve every key (one line), or null when it can. */
export function clusterProblem(s: ClusterState): string | null {
  if (s.state !== 'ok' || s.slotsOk < 16384) return `redis cluster is ${s.state}: ${s.slotsOk} of 16384 slots served`;
  return null;
}

/**
 * Boot check of REDIS_URL against what answers there, one line when it does not fit: a cluster seed
 * node that does not answer, a standalone Redis named as a cluster node (or a cluster node named as a
 * standalone Redis, where BullMQ would fail on MOVED), a cluster that does not serve every slot.
 */
export async function checkRedisTopology(url: string, timeoutMs = 3000): Promise<void> {
  const t = parseRedisUrl(url);
  const probes = t ? t.nodes.map((n) => ({ label: `${n.host}:${n.port}`, conn: () => new IORedis({ host: n.host, port: n.port, username: t.username, password: t.password, tls: t.tls ? {} : undefined, lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null }) })) : [{ label: new URL(url).host, conn: () => new IORedis(url, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null }) }];
  for (const p of probes) {
    const r = p.conn();
    r.on('error', () => undefined);
    try {
      try {
        await r.connect();
      } catch (err) {
        // A single Redis that is not up yet is waited for by the client (and reported by /readyz).
        if (!t) return;
        throw new Error(`redis: ${p.label} (REDIS_URL) does not answer: ${(err as Error).message}`);
      }
      const enabled = /cluster_enabled:1/.test(String(await r.info('cluster')));
      if (!t) {
        if (enabled) throw new Error(`redis: ${p.label} is a Redis Cluster node; name the cluster as REDIS_URL=redis+cluster://host:port,host:port`);
        continue;
      }
      if (!enabled) throw new Error(`redis: ${p.label} is a standalone Redis, not a Redis Cluster node (REDIS_URL is a redis+cluster:// URL)`);
      const info = clusterLines(String(await r.cluster('INFO')));
      const problem = clusterProblem({ state: info.cluster_state ?? 'unknown', slotsOk: Number(info.cluster_slots_ok ?? 0), mastersUp: 0, replicasUp: 0, nodesDown: 0 });
      if (problem) throw new Error(`redis: ${p.label}: ${problem}`);
    } finally {
      r.disconnect();
    }
  }
}
