import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { RequestHandler } from 'express';
import { errorHandler, requireJson } from './http/errors';
import { requireOperator, workspaceAuth } from './http/auth';
import { keyRateLimit } from './http/rate-limit';
import { fastJsonRoutes, limitBytes, SECURITY_HEADERS } from './http/fast';
import { metricsMiddleware } from './ops/metrics';
import { opsRoutes } from './ops/routes';
import { workspaceRoutes } from './workspaces/routes';
import { customerRoutes } from './customers/routes';
import { purchaseRoutes } from './purchases/routes';
import { eventRoutes } from './events/routes';
import { predictionRoutes } from './predictions/routes';
import { scoringRoutes } from './scoring/routes';
import { resultRoutes } from './results/routes';
import { webhookRoutes } from './webhooks/routes';
import { automationRoutes } from './automations/routes';
import { templateRoutes } from './templates/routes';
import { publicRoutes } from './public/routes';
import { AppError } from './errors';
import { consoleRoutes, overviewRoutes } from './console/routes';
import { segmentCsvRoutes, segmentRoutes } from './segments/routes';
import { campaignRoutes } from './campaigns/routes';
import { inboxRoutes } from './inbox/routes';
import { connectorIngressRoutes, connectorRoutes } from './connectors/routes';
import { connectorService } from './connectors/service';
import { connectorIngress } from './connectors/ingress';
import { importRoutes, importUploadRoutes } from './imports/routes';
import { customerLookupRoutes } from './customers/lookup-routes';
import type { Deps, Guards } from './deps';

export function buildApp(deps: Deps) {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  app.use(metricsMiddleware(deps.metrics));
  app.use((_req, res, next) => {
    for (const [k, v] of SECURITY_HEADERS) res.setHeader(k, v);
    next();
  });
  app.use(opsRoutes(deps));
  // Inbox links and Twilio webhooks (form bodies): mounted before the JSON-only guard.
  app.use(publicRoutes(deps));
  // The marketer console's static files (GETs, own strict headers): before the JSON-only guard.
  app.use(consoleRoutes());
  // Authentication (and the key's rate limit) come before the body is read: a request without a
  // valid key costs a hash and a cached lookup, never the parsing of a 2 MB body. Each guard
  // parses a JSON body once it has let the request through.
  const ws = workspaceAuth(deps.db, keyRateLimit(deps.redis, deps.queues.prefix, deps.config.API_RATE_PER_MINUTE));
  const json = express.json({ limit: deps.config.BODY_LIMIT, strict: false, type: 'application/json' });
  const thenJson = (guard: RequestHandler): RequestHandler => (req, res, next) => guard(req, res, (err?: unknown) => (err ? next(err) : json(req, res, next)));
  const guards: Guards = { operator: thenJson(requireOperator(deps.config.HARK_ADMIN_TOKEN)), admin: thenJson(ws.admin), ingest: thenJson(ws.ingest) };
  // CSV uploads of static segment lists: a text/csv body, so before the JSON-only guard.
  app.use(segmentCsvRoutes(deps, ws.admin));
  // Commerce platforms' webhooks: verified over the raw bytes, so before any body parser.
  const connectors = connectorService(deps);
  app.use(connectorIngressRoutes(connectors));
  // CSV imports stream their text/csv body into Postgres themselves.
  app.use(importUploadRoutes(deps, ws.admin));
  app.use(requireJson);
  const purchases = purchaseRoutes(deps, guards);
  app.use(workspaceRoutes(deps, guards));
  app.use(customerRoutes(deps, guards));
  app.use(customerLookupRoutes(deps, guards));
  app.use(purchases.router);
  app.use(eventRoutes(deps, guards));
  app.use(templateRoutes(deps, guards));
  app.use(predictionRoutes(deps, guards));
  app.use(scoringRoutes(deps, guards));
  app.use(resultRoutes(deps, guards));
  app.use(webhookRoutes(deps, guards));
  app.use(automationRoutes(deps, guards));
  app.use(segmentRoutes(deps, guards));
  app.use(campaignRoutes(deps, guards));
  app.use(inboxRoutes(deps, guards));
  app.use(connectorRoutes(deps, guards, connectors));
  app.use(overviewRoutes(deps, guards));
  app.use(importRoutes(deps, guards));
  app.use((_req, _res, next) => next(new AppError('not_found', 'no such endpoint')));
  app.use(errorHandler(deps.logger));

  // Plain JSON posts to the ingest endpoints are served ahead of express, by the same handlers
  // (src/http/fast.ts); any other request goes to express as it comes.
  const fast = fastJsonRoutes(purchases.fast, { limit: limitBytes(deps.config.BODY_LIMIT), authenticate: ws.authenticate, metrics: deps.metrics, logger: deps.logger });
  // Express calls app.handle(req, res, next) for each request; its typings do not declare it.
  const entry = app as unknown as { handle(req: IncomingMessage, res: ServerResponse, next?: unknown): void };
  const routed = entry.handle.bind(app);
  const connect = connectorIngress(connectors, { metrics: deps.metrics, logger: deps.logger });
  entry.handle = (req, res, next) => {
    if (!fast(req, res) && !connect(req, res)) routed(req, res, next);
  };
  return app;
}
