import { Router } from 'express';
import type { Deps } from '../app';
import { buildOpenApi } from './openapi';
import { QUEUE_NAMES } from '../queues';

export function opsRoutes(deps: Deps) {
  const r = Router();
  r.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  r.get('/readyz', async (_req, res) => {
    const check = async (f: () => Promise<unknown>) => {
      try {
        await Promise.race([f(), new Promise((_, rej) => setTimeout(() => rej(new Error('timeout')), 2000))]);
        return 'ok';
      } catch {
        return 'down';
      }
    };
    const [postgres, redis] = await Promise.all([check(() => deps.db.raw('SELECT 1')), check(() => deps.redis.ping())]);
    const ok = postgres === 'ok' && redis === 'ok';
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'unavailable', postgres, redis });
  });
  r.get('/metrics', async (_req, res) => {
    await Promise.all(
      Object.values(QUEUE_NAMES).map(async (name) => {
        try {
          const counts = await deps.queues.get(name).getJobCounts('waiting', 'active', 'delayed', 'failed');
          for (const [state, n] of Object.entries(counts)) deps.metrics.queueDepth.set({ queue: name, state }, n);
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
    res.type('html').send(docsPage());
  });
  return r;
}

/** A self-contained reference page rendered from /openapi.json in the browser (no CDN: hark may run offline). */
function docsPage(): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>hark API</title>
<style>body{font:14px/1.5 system-ui,sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem}
h2{border-bottom:1px solid #ddd}code,pre{background:#f5f5f5;padding:2px 4px}pre{padding:8px;overflow:auto}
.m{display:inline-block;min-width:4em;font-weight:bold}</style></head><body><h1>hark API</h1>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a></p><div id="ops">Loading…</div>
<script src="/docs/render.js"></script></body></html>`;
}
