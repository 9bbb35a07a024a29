import { Cluster } from 'ioredis';
import type { Metrics } from './metrics';
import { checkRedisTopology, ClusterState, clusterProblem, clusterState, RedisClient } from '../redis';

export interface RedisHealth {
  redis: 'ok' | 'down';
  clustered: boolean;
  /** Only for a Redis Cluster: its state as seen from one node, and which nodes answer. */
  cluster?: ClusterState;
  /** One line: what is wrong, when redis is down. */
  reason?: string;
}

export const withTimeout = async <T>(p: Promise<T>, ms: number): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`no answer within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
};

/**
 * PING, and for a cluster CLUSTER INFO/NODES: a cluster not serving every slot is down. When the
 * cluster client gets no answer, the seed nodes of `url` are asked directly what is wrong.
 */
export async function redisHealth(redis: RedisClient, url: string, timeoutMs = 2000): Promise<RedisHealth> {
  const clustered = redis instanceof Cluster;
  try {
    await withTimeout(redis.ping(), timeoutMs);
    if (!(redis instanceof Cluster)) return { redis: 'ok', clustered };
    const cluster = await withTimeout(clusterState(redis), timeoutMs);
    const problem = clusterProblem(cluster);
    return problem ? { redis: 'down', clustered, cluster, reason: problem } : { redis: 'ok', clustered, cluster };
  } catch (err) {
    // A cluster client that cannot map the slots stays 'connecting' and queues every command.
    const what = clustered ? `redis cluster (client ${redis.status})` : 'redis';
    const seen = clustered ? await checkRedisTopology(url, 1000).then(() => null, (e: Error) => e.message) : null;
    return { redis: 'down', clustered, reason: seen ?? `${what}: ${(err as Error).message}` };
  }
}

/** The cluster gauges of /metrics (a single Redis leaves them unset). */
export function recordClusterMetrics(m: Metrics, h: RedisHealth): void {
  if (!h.clustered) return;
  if (!h.cluster) {
    m.redisClusterUp.set(0);
    return;
  }
  m.redisClusterUp.set(h.cluster.state === 'ok' ? 1 : 0);
  m.redisClusterSlotsOk.set(h.cluster.slotsOk);
  m.redisClusterNodes.set({ role: 'master', state: 'up' }, h.cluster.mastersUp);
  m.redisClusterNodes.set({ role: 'replica', state: 'up' }, h.cluster.replicasUp);
  m.redisClusterNodes.set({ role: 'any', state: 'down' }, h.cluster.nodesDown);
}
