import { Router } from 'express';
import { z } from 'zod';
import type { Deps, Guards } from '../deps';
import { authOf } from '../http/auth';
import { decodeCursor, listQuery, parse, timeIdCursor, byCreated, byId, pageOf } from '../http/validate';
import { uuidOr404 } from '../ids';
import { describeOperation } from '../ops/openapi';
import * as repo from './repo';
import { createEndpointBody, deliveriesQuery, patchEndpointBody, rotateBody } from './schema';
import * as service from './service';

describeOperation({ method: 'post', path: '/v1/webhooks', summary: 'Add an outgoing webhook endpoint (Standard Webhooks); the secret is shown once', tag: 'Webhooks', auth: 'admin', body: createEndpointBody, responses: { 201: 'Created' } });
describeOperation({ method: 'get', path: '/v1/webhooks', summary: 'Webhook endpoints', tag: 'Webhooks', auth: 'admin', query: listQuery });
describeOperation({ method: 'get', path: '/v1/webhooks/:id', summary: 'A webhook endpoint', tag: 'Webhooks', auth: 'admin' });
describeOperation({ method: 'patch', path: '/v1/webhooks/:id', summary: 'Change or disable a webhook endpoint', tag: 'Webhooks', auth: 'admin', body: patchEndpointBody });
describeOperation({ method: 'delete', path: '/v1/webhooks/:id', summary: 'Remove a webhook endpoint', tag: 'Webhooks', auth: 'admin', responses: { 204: 'Removed' } });
describeOperation({ method: 'post', path: '/v1/webhooks/:id/rotate', summary: 'New signing secret; the old one signs too during the grace period', tag: 'Webhooks', auth: 'admin', body: rotateBody });
describeOperation({ method: 'get', path: '/v1/webhooks/:id/deliveries', summary: 'Delivery attempts of an endpoint', tag: 'Webhooks', auth: 'admin', query: deliveriesQuery });

const endpointCursor = timeIdCursor;
const deliveryCursor = z.object({ id: z.string().regex(/^\d+$/) });

export function webhookRoutes(deps: Deps, guards: Guards) {
  const r = Router();
  const id = (raw: unknown) => uuidOr404(raw as string, 'webhook endpoint');

  r.post('/v1/webhooks', guards.admin, async (req, res) => {
    const body = parse(createEndpointBody, req.body);
    res.status(201).json(await service.createEndpoint(deps.db, authOf(req).workspaceId, body, deps.clock.now(), deps.config.WEBHOOK_ALLOW_PRIVATE));
  });

  r.get('/v1/webhooks', guards.admin, async (req, res) => {
    const q = parse(listQuery, req.query, 'query');
    const rows = await repo.listEndpoints(deps.db, authOf(req).workspaceId, q.limit + 1, decodeCursor(endpointCursor, q.cursor));
    const { page, nextCursor } = pageOf(rows, q.limit, byCreated);
    res.json({ data: page.map((e) => service.endpointView(e)), nextCursor });
  });

  r.get('/v1/webhooks/:id', guards.admin, async (req, res) => {
    res.json(service.endpointView(await repo.requireEndpoint(deps.db, authOf(req).workspaceId, id(req.params.id))));
  });

  r.patch('/v1/webhooks/:id', guards.admin, async (req, res) => {
    const endpointId = id(req.params.id);
    const body = parse(patchEndpointBody, req.body);
    res.json(await service.patchEndpoint(deps.db, authOf(req).workspaceId, endpointId, body, deps.clock.now(), deps.config.WEBHOOK_ALLOW_PRIVATE));
  });

  r.delete('/v1/webhooks/:id', guards.admin, async (req, res) => {
    await repo.deleteEndpoint(deps.db, authOf(req).workspaceId, id(req.params.id));
    res.status(204).end();
  });

  r.post('/v1/webhooks/:id/rotate', guards.admin, async (req, res) => {
    const endpointId = id(req.params.id);
    const { graceHours } = parse(rotateBody, req.body ?? {});
    res.json(await service.rotateSecret(deps.db, authOf(req).workspaceId, endpointId, graceHours, deps.clock.now()));
  });

  r.get('/v1/webhooks/:id/deliveries', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    const endpointId = id(req.params.id);
    const q = parse(deliveriesQuery, req.query, 'query');
    await repo.requireEndpoint(deps.db, workspaceId, endpointId);
    const rows = await repo.listDeliveries(deps.db, workspaceId, endpointId, q.limit + 1, q.status, decodeCursor(deliveryCursor, q.cursor)?.id);
    const { page, nextCursor } = pageOf(rows, q.limit, byId);
    const iso = (v: Date | null) => (v ? new Date(v).toISOString() : null);
    res.json({
      data: page.map((d) => ({
        id: String(d.id),
        webhookId: d.webhook_id,
        type: `message.${d.event_type}`,
        status: d.status,
        attempts: d.attempts,
        lastStatusCode: d.last_status_code,
        lastError: d.last_error,
        nextAttemptAt: iso(d.next_attempt_at),
        createdAt: iso(d.created_at),
        deliveredAt: iso(d.delivered_at),
        failedAt: iso(d.failed_at),
        payload: d.payload,
      })),
      nextCursor,
    });
  });
  return r;
}
