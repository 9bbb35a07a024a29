import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  queueDepth: Gauge<'queue' | 'state'>;
  /** Redis Cluster only: 1 when cluster_state is ok, its served slots, and its nodes by role and state. */
  redisClusterUp: Gauge;
  redisClusterSlotsOk: Gauge;
  redisClusterNodes: Gauge<'role' | 'state'>;
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
    redisClusterUp: new Gauge({ name: 'hark_redis_cluster_up', help: 'Redis Cluster: 1 when cluster_state is ok and every slot is served', registers: [registry] }),
    redisClusterSlotsOk: new Gauge({ name: 'hark_redis_cluster_slots_ok', help: 'Redis Cluster: hash slots served (of 16384)', registers: [registry] }),
    redisClusterNodes: new Gauge({ name: 'hark_redis_cluster_nodes', help: 'Redis Cluster nodes by role and state', labelNames: ['role', 'state'], registers: [registry] }),
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
