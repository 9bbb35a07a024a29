import { requireSms } from '../channels/config';
import { Router } from 'express';
import { z } from 'zod';
import type { Deps, Guards } from '../deps';
import { authOf } from '../http/auth';
import { decodeCursor, listQuery, parse, timeIdCursor, byCreated, byId, pageOf } from '../http/validate';
import { uuidOr404 } from '../ids';
import { describeOperation } from '../ops/openapi';
import * as repo from './repo';
import { campaignProblems } from './problems';
import { campaignMessagesQuery, createCampaignBody, messagesQuery, scheduleBody } from './schema';
import * as service from './service';
import { campaignView, messageView } from './view';

describeOperation({ method: 'post', path: '/v1/campaigns', summary: 'Create a campaign (draft, or scheduled with scheduledAt)', tag: 'Campaigns', auth: 'admin', body: createCampaignBody, responses: { 201: 'Created' } });
describeOperation({ method: 'get', path: '/v1/campaigns', summary: 'List campaigns', tag: 'Campaigns', auth: 'admin' });
describeOperation({ method: 'get', path: '/v1/campaigns/:id', summary: 'A campaign with its counts', tag: 'Campaigns', auth: 'admin' });
describeOperation({ method: 'post', path: '/v1/campaigns/:id/send', summary: 'Send now', tag: 'Campaigns', auth: 'admin' });
describeOperation({ method: 'post', path: '/v1/campaigns/:id/schedule', summary: 'Schedule', tag: 'Campaigns', auth: 'admin', body: scheduleBody });
describeOperation({ method: 'post', path: '/v1/campaigns/:id/cancel', summary: 'Cancel', tag: 'Campaigns', auth: 'admin' });
describeOperation({ method: 'get', path: '/v1/campaigns/:id/messages', summary: "A campaign's messages", tag: 'Campaigns', auth: 'admin', query: campaignMessagesQuery });
describeOperation({ method: 'get', path: '/v1/messages', summary: 'Messages', tag: 'Messages', auth: 'admin', query: messagesQuery });

const listCursor = timeIdCursor;
const idCursor = z.object({ id: z.string().regex(/^\d+$/) });

export function campaignRoutes(deps: Deps, guards: Guards) {
  const r = Router();
  const idOf = (raw: string | string[] | undefined) => uuidOr404(typeof raw === 'string' ? raw : undefined, 'campaign');
  // problems: why its messages do not go out (campaigns/problems.ts), instead of a bar stuck at 0.
  const show = async (row: repo.CampaignRow) => ({ ...campaignView(row, await repo.campaignCounts(deps.db, row.id)), problems: await campaignProblems(deps.db, row.id) });

  r.post('/v1/campaigns', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    const body = parse(createCampaignBody, req.body);
    if (body.channel === 'sms') requireSms(deps.config, 'channel');
    res.status(201).json(await show(await service.createCampaign(deps, workspaceId, body)));
  });

  r.get('/v1/campaigns', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    const q = parse(listQuery, req.query, 'query');
    const rows = await repo.listCampaigns(deps.db, workspaceId, q.limit + 1, decodeCursor(listCursor, q.cursor));
    const { page, nextCursor } = pageOf(rows, q.limit, byCreated);
    res.json({ data: await Promise.all(page.map(show)), nextCursor });
  });

  r.get('/v1/campaigns/:id', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    res.json(await show(await repo.requireCampaign(deps.db, workspaceId, idOf(req.params.id))));
  });

  r.post('/v1/campaigns/:id/send', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    res.status(202).json(await show(await service.sendNow(deps, workspaceId, idOf(req.params.id))));
  });

  r.post('/v1/campaigns/:id/schedule', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    const id = idOf(req.params.id);
    const { at } = parse(scheduleBody, req.body);
    res.json(await show(await service.schedule(deps, workspaceId, id, at)));
  });

  r.post('/v1/campaigns/:id/cancel', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    res.json(await show(await service.cancel(deps, workspaceId, idOf(req.params.id))));
  });

  r.get('/v1/campaigns/:id/messages', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    const row = await repo.requireCampaign(deps.db, workspaceId, idOf(req.params.id));
    const q = parse(campaignMessagesQuery, req.query, 'query');
    const after = decodeCursor(idCursor, q.cursor);
    const rows = await repo.listMessages(deps.db, workspaceId, { campaignId: row.id, status: q.status }, q.limit + 1, after?.id);
    page(res, rows, q.limit);
  });

  r.get('/v1/messages', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    const q = parse(messagesQuery, req.query, 'query');
    const after = decodeCursor(idCursor, q.cursor);
    const rows = await repo.listMessages(deps.db, workspaceId, { campaignId: q.campaignId, automationId: q.automationId, status: q.status, customerExternalId: q.customerExternalId }, q.limit + 1, after?.id);
    page(res, rows, q.limit);
  });

  return r;
}

function page(res: import('express').Response, rows: Array<{ id: string } & Record<string, any>>, limit: number) {
  const { page: data, nextCursor } = pageOf(rows, limit, byId);
  res.json({ data: data.map(messageView), nextCursor });
}
