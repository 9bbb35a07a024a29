import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  queueDepth: Gauge<'queue' | 'state'>;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    httpRequests: new Counter({ name: 'hark_http_requests_total', help: 'HTTP requests', labelNames: ['method', 'route', 'status'], registers: [registry] }),
    httpDuration: new Histogram({
      name: 'hark_http_request_duration_seconds',
      help: 'HTTP request latency',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    queueDepth: new Gauge({ name: 'hark_queue_jobs', help: 'BullMQ jobs by queue and state', labelNames: ['queue', 'state'], registers: [registry] }),
  };
}

/**
 * Counts a request and its latency once its response is sent. Labels use the route pattern,
 * never the raw path, so that ids do not explode cardinality.
 */
export function trackRequest(m: Metrics, req: IncomingMessage, res: ServerResponse, route: () => string) {
  const end = m.httpDuration.startTimer();
  res.on('finish', () => {
    const labels = { method: req.method ?? '', route: route(), status: String(res.statusCode) };
    end(labels);
    m.httpRequests.inc(labels);
  });
}

export function metricsMiddleware(m: Metrics) {
  return (req: Request, res: Response, next: NextFunction) => {
    trackRequest(m, req, res, () => (req.route?.path ? `${req.baseUrl}${req.route.path}` : 'unmatched'));
    next();
  };
}
