import { Router } from 'express';
import type { Deps, Guards } from '../deps';
import { authOf } from '../http/auth';
import { decodeCursor, listQuery, parse, byCreated, pageOf } from '../http/validate';
import { uuidOr404 } from '../ids';
import { describeOperation } from '../ops/openapi';
import { listTemplates, loadTemplate } from './repo';
import { createTemplateBody, patchTemplateBody, previewBody, templateCursor } from './schema';
import { createTemplate, patchTemplate, previewTemplate, removeTemplate, templateView } from './service';

describeOperation({ method: 'post', path: '/v1/templates', summary: 'Create a Liquid template (email MJML/HTML, or SMS text)', tag: 'Templates', auth: 'admin', body: createTemplateBody, responses: { 201: 'Created', 422: 'Does not compile' } });
describeOperation({ method: 'get', path: '/v1/templates', summary: 'List templates', tag: 'Templates', auth: 'admin', query: listQuery });
describeOperation({ method: 'get', path: '/v1/templates/:id', summary: 'Get a template', tag: 'Templates', auth: 'admin' });
describeOperation({ method: 'patch', path: '/v1/templates/:id', summary: 'Change a template', tag: 'Templates', auth: 'admin', body: patchTemplateBody, responses: { 200: 'Updated', 422: 'Does not compile' } });
describeOperation({ method: 'delete', path: '/v1/templates/:id', summary: 'Delete a template not used by a campaign', tag: 'Templates', auth: 'admin', responses: { 204: 'Deleted', 409: 'In use' } });
describeOperation({ method: 'post', path: '/v1/templates/:id/preview', summary: 'Render for a customer or sample values', tag: 'Templates', auth: 'admin', body: previewBody });

export function templateRoutes(deps: Deps, guards: Guards) {
  const r = Router();
  r.post('/v1/templates', guards.admin, async (req, res) => {
    const body = parse(createTemplateBody, req.body);
    res.status(201).json(templateView(await createTemplate(deps.db, authOf(req).workspaceId, body, deps.clock.now())));
  });
  r.get('/v1/templates', guards.admin, async (req, res) => {
    const q = parse(listQuery, req.query, 'query');
    const rows = await listTemplates(deps.db, authOf(req).workspaceId, q.limit, decodeCursor(templateCursor, q.cursor));
    const { page, nextCursor } = pageOf(rows, q.limit, byCreated);
    res.json({ data: page.map(templateView), nextCursor });
  });
  r.get('/v1/templates/:id', guards.admin, async (req, res) => {
    res.json(templateView(await loadTemplate(deps.db, authOf(req).workspaceId, req.params.id as string)));
  });
  r.patch('/v1/templates/:id', guards.admin, async (req, res) => {
    const id = uuidOr404(req.params.id as string, 'template');
    const body = parse(patchTemplateBody, req.body);
    res.json(templateView(await patchTemplate(deps.db, authOf(req).workspaceId, id, body, deps.clock.now())));
  });
  r.delete('/v1/templates/:id', guards.admin, async (req, res) => {
    await removeTemplate(deps.db, authOf(req).workspaceId, uuidOr404(req.params.id as string, 'template'));
    res.status(204).end();
  });
  r.post('/v1/templates/:id/preview', guards.admin, async (req, res) => {
    const id = uuidOr404(req.params.id as string, 'template');
    const body = parse(previewBody, req.body ?? {});
    res.json(await previewTemplate(deps.db, authOf(req).workspaceId, id, body.customerExternalId, deps.config.PUBLIC_URL, deps.clock.now()));
  });
  return r;
}
