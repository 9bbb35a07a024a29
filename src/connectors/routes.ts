import express, { Router } from 'express';
import { z } from 'zod';
import type { Deps, Guards } from '../deps';
import { authOf } from '../http/auth';
import { decodeCursor, listQuery, parse, byCreated, pageOf } from '../http/validate';
import { uuidOr404 } from '../ids';
import { describeOperation } from '../ops/openapi';
import * as repo from './repo';
import { createConnectorBody } from './schema';
import type { ConnectorService } from './service';
import { CONNECT_LIMIT_BYTES } from './ingress';

describeOperation({ method: 'post', path: '/v1/connectors', summary: 'Add a Shopify or WooCommerce connector; the secret is never shown again', tag: 'Connectors', auth: 'admin', body: createConnectorBody, responses: { 201: 'Created' } });
describeOperation({ method: 'get', path: '/v1/connectors', summary: 'Connectors', tag: 'Connectors', auth: 'admin', query: listQuery });
describeOperation({ method: 'get', path: '/v1/connectors/:id', summary: 'A connector', tag: 'Connectors', auth: 'admin' });
describeOperation({ method: 'delete', path: '/v1/connectors/:id', summary: 'Remove a connector (its deliveries go; what they stored stays)', tag: 'Connectors', auth: 'admin', responses: { 204: 'Removed' } });
describeOperation({ method: 'get', path: '/v1/connectors/:id/deliveries', summary: 'The last 100 deliveries and their outcomes', tag: 'Connectors', auth: 'admin' });
describeOperation({ method: 'post', path: '/connect/:type/:id', summary: "A platform's webhook (signed with the connector's secret)", tag: 'Connectors', auth: 'none', responses: { 200: 'Received', 401: 'Bad signature', 404: 'Unknown connector', 413: 'Body over 1 MB' } });

const cursorSchema = z.object({ t: z.string(), id: z.string() });

/**
 * POST /connect/:type/:id through express: mounted before the JSON-only guard, with its own raw body
 * reader. Plain requests are served ahead of express by connectorIngress (./ingress.ts); this
 * serves the rest (a query string, a compressed body) the same way.
 */
export function connectorIngressRoutes(service: ConnectorService) {
  const r = Router();
  const raw = express.raw({ type: () => true, limit: CONNECT_LIMIT_BYTES });
  r.post(
    '/connect/:type/:id',
    async (req, res, next) => {
      // Found before the body is read: an unknown id is a 404 without reading or storing anything.
      res.locals.connector = await service.find(req.params.type as string, req.params.id as string);
      next();
    },
    raw,
    async (req, res) => {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const a = await service.receive(res.locals.connector, (req.params.id as string).toLowerCase(), body, req.headers);
      res.status(a.status).json(a.body);
    },
  );
  return r;
}

export function connectorRoutes(deps: Deps, guards: Guards, service: ConnectorService) {
  const r = Router();
  const id = (raw: unknown) => uuidOr404(raw as string, 'connector');

  r.post('/v1/connectors', guards.admin, async (req, res) => {
    res.status(201).json(await service.create(authOf(req).workspaceId, parse(createConnectorBody, req.body)));
  });

  r.get('/v1/connectors', guards.admin, async (req, res) => {
    const q = parse(listQuery, req.query, 'query');
    const rows = await repo.listConnectors(deps.db, authOf(req).workspaceId, q.limit + 1, decodeCursor(cursorSchema, q.cursor));
    const { page, nextCursor } = pageOf(rows, q.limit, byCreated);
    res.json({ data: await service.views(page), nextCursor });
  });

  r.get('/v1/connectors/:id', guards.admin, async (req, res) => {
    const [view] = await service.views([await repo.requireConnector(deps.db, authOf(req).workspaceId, id(req.params.id))]);
    res.json(view);
  });

  r.delete('/v1/connectors/:id', guards.admin, async (req, res) => {
    await service.remove(authOf(req).workspaceId, id(req.params.id));
    res.status(204).end();
  });

  r.get('/v1/connectors/:id/deliveries', guards.admin, async (req, res) => {
    const c = await repo.requireConnector(deps.db, authOf(req).workspaceId, id(req.params.id));
    const rows = await repo.recentDeliveries(deps.db, c.id, 100);
    res.json({
      data: rows.map((d) => ({
        id: String(d.id),
        topic: d.topic,
        receivedAt: new Date(d.received_at).toISOString(),
        outcome: d.outcome,
        ...(d.reason ? { reason: d.reason } : {}),
        ...(d.duplicate_of ? { duplicateOf: String(d.duplicate_of) } : {}),
      })),
    });
  });
  return r;
}
