/** REDIS_URL's two forms, parsed without loading a Redis client (config.ts reads this before boot). */
export interface RedisTarget {
  cluster: boolean;
  nodes: Array<{ host: string; port: number }>;
  tls: boolean;
  username?: string;
  password?: string;
}

/**
 * `redis[s]://…` is one Redis; `redis[s]+cluster://[user:pass@]host:port,host:port` names seed
 * nodes of a Redis Cluster (the client discovers the rest). Returns null when malformed.
 */
export function parseRedisUrl(url: string): RedisTarget | null {
  const m = /^(rediss?)\+cluster:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]+)\/?$/.exec(url);
  if (!m) return null;
  const nodes = m[4]!.split(',').map((hp) => {
    const at = hp.lastIndexOf(':');
    const host = at > 0 ? hp.slice(0, at).replace(/^\[(.*)\]$/, '$1') : hp;
    const port = at > 0 ? Number(hp.slice(at + 1)) : 6379;
    return { host, port };
  });
  if (nodes.some((n) => !n.host || !Number.isInteger(n.port) || n.port < 1 || n.port > 65535)) return null;
  const dec = (s: string | undefined) => (s ? decodeURIComponent(s) : undefined);
  return { cluster: true, nodes, tls: m[1] === 'rediss', username: dec(m[2]), password: dec(m[3]) };
}

export const isClusterUrl = (url: string) => /^rediss?\+cluster:/.test(url);
