import { Router } from 'express';
import type { Deps, Guards } from '../deps';
import { authOf } from '../http/auth';
import { firstIssue, parse } from '../http/validate';
import { describeOperation } from '../ops/openapi';
import { AppError } from '../errors';
import { normalizeRef } from '../customers/identity';
import { ingestEvents } from './service';
import { batchEventsBody, EventInput, eventBody } from './schema';

describeOperation({ method: 'post', path: '/v1/events', summary: 'Record a touchpoint event', tag: 'Events', auth: 'ingest', body: eventBody, responses: { 201: 'Stored' } });
describeOperation({ method: 'post', path: '/v1/events/batch', summary: 'Record up to 1000 events', tag: 'Events', auth: 'ingest', body: batchEventsBody });

export function eventRoutes(deps: Deps, guards: Guards) {
  const r = Router();
  r.post('/v1/events', guards.ingest, async (req, res) => {
    const body = parse(eventBody, req.body);
    normalizeRef(body.customer);
    const { stored, customerIds, externalIds } = await ingestEvents(deps.db, authOf(req).workspaceId, [body], deps.clock.now());
    // An ingest key writes and never reads: {id, externalId} only.
    if (authOf(req).scope === 'ingest') return void res.status(201).json({ id: stored[0]?.id ?? null, externalId: externalIds[0] ?? null });
    res.status(201).json({ id: stored[0]?.id ?? null, customerId: customerIds[0], duplicate: stored.length === 0 });
  });
  r.post('/v1/events/batch', guards.ingest, async (req, res) => {
    const { events } = parse(batchEventsBody, req.body);
    const good: EventInput[] = [];
    const errors: { index: number; error: unknown }[] = [];
    events.forEach((raw, index) => {
      const row = eventBody.safeParse(raw);
      if (!row.success) return errors.push({ index, error: firstIssue(row.error) });
      try {
        normalizeRef(row.data.customer);
        good.push(row.data);
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        errors.push({ index, error: { code: err.code, message: err.message, details: err.details } });
      }
    });
    const stored = good.length ? (await ingestEvents(deps.db, authOf(req).workspaceId, good, deps.clock.now())).stored.length : 0;
    res.json({ accepted: stored, duplicates: good.length - stored, errors });
  });
  return r;
}
