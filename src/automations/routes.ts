import { requireSms } from '../channels/config';
import { Router } from 'express';
import { z } from 'zod';
import type { Deps, Guards } from '../deps';
import { authOf } from '../http/auth';
import { decodeCursor, encodeCursor, listQuery, parse, timeIdCursor } from '../http/validate';
import { uuidOr404 } from '../ids';
import { describeOperation } from '../ops/openapi';
import * as repo from './repo';
import { Automation, createAutomationBody, patchAutomationBody } from './schema';
import { createAutomation, deleteAutomation, getAutomationWithCounts, patchAutomation, runAutomation } from './service';
import { createStarterTemplates, starterBody } from './starter';

describeOperation({ method: 'post', path: '/v1/automations', summary: 'Create an automation (trigger, steps, exitWhen, re-entry)', tag: 'Automations', auth: 'admin', body: createAutomationBody, responses: { 201: 'Created', 404: 'Segment or template not found', 422: 'Bad cron, wait, template channel or exitWhen' } });
describeOperation({ method: 'get', path: '/v1/automations', summary: 'List automations', tag: 'Automations', auth: 'admin', query: listQuery });
describeOperation({ method: 'get', path: '/v1/automations/:id', summary: 'An automation with counts per step', tag: 'Automations', auth: 'admin' });
describeOperation({ method: 'patch', path: '/v1/automations/:id', summary: 'Change an automation; enabled: false stops entries and pending sends', tag: 'Automations', auth: 'admin', body: patchAutomationBody });
describeOperation({ method: 'delete', path: '/v1/automations/:id', summary: 'Delete an automation (pending sends are cancelled)', tag: 'Automations', auth: 'admin', responses: { 204: 'Deleted' } });
describeOperation({ method: 'post', path: '/v1/automations/:id/run', summary: 'Evaluate the trigger now', tag: 'Automations', auth: 'admin', responses: { 200: '{entered}', 409: 'Disabled' } });
describeOperation({ method: 'post', path: '/v1/templates/starter', summary: 'Create the starter templates (win-back email and SMS, first-purchase thank-you, VIP appreciation)', tag: 'Templates', auth: 'admin', body: starterBody, responses: { 201: 'Created (or found by name)' } });

const cursorSchema = timeIdCursor;

export function automationView(a: Automation) {
  const { workspaceId: _w, ...rest } = a;
  return rest;
}

export function automationRoutes(deps: Deps, guards: Guards) {
  const r = Router();
  const id404 = (raw: unknown) => uuidOr404(raw as string, 'automation');

  r.post('/v1/automations', guards.admin, async (req, res) => {
    const body = parse(createAutomationBody, req.body);
    body.steps.forEach((s, i) => s.type === 'send' && s.channel === 'sms' && requireSms(deps.config, `steps.${i}.channel`));
    res.status(201).json(automationView(await createAutomation(deps, authOf(req).workspaceId, body)));
  });
  r.get('/v1/automations', guards.admin, async (req, res) => {
    const q = parse(listQuery, req.query, 'query');
    const cur = decodeCursor(cursorSchema, q.cursor);
    const page = await repo.listAutomations(deps.db, authOf(req).workspaceId, q.limit, cur ? { createdAt: cur.t, id: cur.id } : undefined);
    const last = page.rows[page.rows.length - 1];
    res.json({ data: page.rows.map(automationView), nextCursor: page.more && last ? encodeCursor({ t: last.createdAt.toISOString(), id: last.id }) : null });
  });
  r.get('/v1/automations/:id', guards.admin, async (req, res) => {
    res.json(automationView(await getAutomationWithCounts(deps, authOf(req).workspaceId, id404(req.params.id))));
  });
  r.patch('/v1/automations/:id', guards.admin, async (req, res) => {
    const id = id404(req.params.id);
    const body = parse(patchAutomationBody, req.body);
    const a = await patchAutomation(deps, authOf(req).workspaceId, id, body);
    res.json(automationView(await getAutomationWithCounts(deps, a.workspaceId, a.id)));
  });
  r.delete('/v1/automations/:id', guards.admin, async (req, res) => {
    await deleteAutomation(deps, authOf(req).workspaceId, id404(req.params.id));
    res.status(204).end();
  });
  r.post('/v1/automations/:id/run', guards.admin, async (req, res) => {
    res.json(await runAutomation(deps, authOf(req).workspaceId, id404(req.params.id)));
  });
  r.post('/v1/templates/starter', guards.admin, async (req, res) => {
    const body = parse(starterBody, req.body ?? {});
    const data = await createStarterTemplates(deps.db, authOf(req).workspaceId, body.keys, deps.clock.now());
    res.status(201).json({ data });
  });
  return r;
}
