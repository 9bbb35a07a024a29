import { Router } from 'express';
import type { Deps } from '../deps';
import { docsPage, renderScript } from './docs';
import { buildOpenApi, describeOperation } from './openapi';
import { QUEUE_NAMES } from '../queues';
import { recordClusterMetrics, redisHealth, withTimeout } from './redis-health';

describeOperation({ method: 'get', path: '/healthz', summary: 'The process is up', tag: 'Operations', auth: 'none' });
describeOperation({ method: 'get', path: '/readyz', summary: 'Postgres and Redis are reachable, and a Redis Cluster serves every slot (503 with the reason when not)', tag: 'Operations', auth: 'none', responses: { 200: 'Ready', 503: 'A dependency is down' } });
describeOperation({ method: 'get', path: '/metrics', summary: 'Prometheus metrics: requests, latencies, queue depths, Redis Cluster state', tag: 'Operations', auth: 'none' });
describeOperation({ method: 'get', path: '/openapi.json', summary: 'This document', tag: 'Operations', auth: 'none' });
describeOperation({ method: 'get', path: '/docs', summary: 'This document, rendered', tag: 'Operations', auth: 'none' });
describeOperation({ method: 'get', path: '/docs/render.js', summary: 'The script that renders /docs', tag: 'Operations', auth: 'none' });

export function opsRoutes(deps: Deps) {
  const r = Router();
  r.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  r.get('/readyz', async (_req, res) => {
    const check = async (f: () => Promise<unknown>) => {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([f(), new Promise((_, rej) => (timer = setTimeout(() => rej(new Error('timeout')), 2000)))]);
        return 'ok';
      } catch {
        return 'down';
      } finally {
        // A pending 2 s timer per probe would keep a stopping process (and jest) alive.
        clearTimeout(timer);
      }
    };
    const [postgres, r] = await Promise.all([check(() => deps.db.raw('SELECT 1')), redisHealth(deps.redis, deps.config.REDIS_URL)]);
    recordClusterMetrics(deps.metrics, r);
    const ok = postgres === 'ok' && r.redis === 'ok';
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'unavailable', postgres, redis: r.redis, ...(r.cluster && { redisCluster: r.cluster }), ...(r.reason && { reason: r.reason }) });
  });
  r.get('/metrics', async (_req, res) => {
    recordClusterMetrics(deps.metrics, await redisHealth(deps.redis, deps.config.REDIS_URL));
    await Promise.all(
      Object.values(QUEUE_NAMES).map(async (name) => {
        try {
          // Commands wait in the client's queue while Redis is away: a scrape must not hang on them.
          const counts = await withTimeout(deps.queues.get(name).getJobCounts('waiting', 'active', 'delayed', 'failed'), 2000);
          // The label is the queue's name without its cluster hash tag's braces.
          for (const [state, n] of Object.entries(counts)) deps.metrics.queueDepth.set({ queue: name.replace(/[{}]/g, ''), state }, n);
        } catch {
          /* Redis down: keep the last figures; /readyz reports it */
        }
      }),
    );
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
  r.get('/openapi.json', (_req, res) => {
    res.json(buildOpenApi(deps.config.PUBLIC_URL));
  });
  r.get('/docs', (_req, res) => {
    res.setHeader('Content-Security-Policy', "default-src 'self'; style-src 'unsafe-inline'");
    res.type('html').send(docsPage());
  });
  r.get('/docs/render.js', (_req, res) => {
    res.type('application/javascript').setHeader('Cache-Control', 'public, max-age=300');
    res.send(renderScript);
  });
  return r;
}

