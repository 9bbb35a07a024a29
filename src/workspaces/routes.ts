import { Router } from 'express';
import type { Deps, Guards } from '../deps';
import { authOf } from '../http/auth';
import { parse } from '../http/validate';
import * as repo from './repo';
import { createKeyBody, createWorkspaceBody, patchSettingsBody } from './schema';
import { uuidOr404 } from '../ids';
import { describeOperation } from '../ops/openapi';
import { checkSenders } from './senders';

describeOperation({ method: 'post', path: '/v1/workspaces', summary: 'Create a workspace and its first admin key (operator token)', tag: 'Workspaces', auth: 'operator', body: createWorkspaceBody, responses: { 201: 'Created; apiKey is shown once' } });
describeOperation({ method: 'post', path: '/v1/api-keys', summary: 'Create an API key (shown once)', tag: 'Workspaces', auth: 'admin', body: createKeyBody, responses: { 201: 'Created' } });
describeOperation({ method: 'get', path: '/v1/api-keys', summary: 'List API keys (prefixes only)', tag: 'Workspaces', auth: 'admin' });
describeOperation({ method: 'delete', path: '/v1/api-keys/:id', summary: 'Revoke an API key', tag: 'Workspaces', auth: 'admin', responses: { 204: 'Revoked' } });
describeOperation({ method: 'get', path: '/v1/settings', summary: 'Workspace settings', tag: 'Workspaces', auth: 'admin' });
describeOperation({ method: 'patch', path: '/v1/settings', summary: 'Change workspace settings', tag: 'Workspaces', auth: 'admin', body: patchSettingsBody });

export function workspaceRoutes(deps: Deps, guards: Guards) {
  const r = Router();
  r.post('/v1/workspaces', guards.operator, async (req, res) => {
    res.status(201).json(await repo.createWorkspace(deps.db, parse(createWorkspaceBody, req.body)));
  });
  r.post('/v1/api-keys', guards.admin, async (req, res) => {
    const body = parse(createKeyBody, req.body);
    const { createdAt, ...key } = await repo.insertKey(deps.db, authOf(req).workspaceId, body.name, body.scope);
    res.status(201).json({ ...key, createdAt });
  });
  r.get('/v1/api-keys', guards.admin, async (req, res) => {
    res.json({ data: await repo.listKeys(deps.db, authOf(req).workspaceId), nextCursor: null });
  });
  r.delete('/v1/api-keys/:id', guards.admin, async (req, res) => {
    await repo.deleteKey(deps.db, authOf(req).workspaceId, uuidOr404(req.params.id as string, 'API key'));
    res.status(204).end();
  });
  r.get('/v1/settings', guards.admin, async (req, res) => {
    res.json((await repo.getWorkspace(deps.db, authOf(req).workspaceId)).settings);
  });
  r.patch('/v1/settings', guards.admin, async (req, res) => {
    const patch = parse(patchSettingsBody, req.body);
    checkSenders(patch, deps.config);
    res.json(await repo.updateSettings(deps.db, authOf(req).workspaceId, patch));
  });
  return r;
}
