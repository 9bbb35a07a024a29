import { Router } from 'express';
import type { Deps, Guards } from '../deps';
import { authOf } from '../http/auth';
import { parse } from '../http/validate';
import { uuidOr404 } from '../ids';
import { describeOperation } from '../ops/openapi';
import { automationOf, campaignOf } from './repo';
import { automationReportQuery, campaignReportQuery } from './schema';
import { buildReport } from './service';

// At module load, so that the document is complete without building the app (npm run gen:api).
describeOperation({ method: 'get', path: '/v1/campaigns/:id/report', summary: 'Campaign results per group, holdout and lift', tag: 'results', auth: 'admin', query: campaignReportQuery });
describeOperation({ method: 'get', path: '/v1/automations/:id/report', summary: 'Automation results per step', tag: 'results', auth: 'admin', query: automationReportQuery });

export function resultRoutes(deps: Deps, guards: Guards) {
  const r = Router();
  r.get('/v1/campaigns/:id/report', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    const { groupBy } = parse(campaignReportQuery, req.query, 'query');
    const c = await campaignOf(deps.db, workspaceId, uuidOr404(req.params.id as string, 'campaign'));
    res.json({ campaignId: c.id, ...(await buildReport(deps.db, workspaceId, { campaignId: c.id }, groupBy, 'always')) });
  });
  r.get('/v1/automations/:id/report', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    const { groupBy } = parse(automationReportQuery, req.query, 'query');
    const a = await automationOf(deps.db, workspaceId, uuidOr404(req.params.id as string, 'automation'));
    res.json({ automationId: a.id, ...(await buildReport(deps.db, workspaceId, { automationId: a.id }, groupBy, 'ifPresent')) });
  });
  return r;
}
