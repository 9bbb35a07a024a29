import { Router } from 'express';
import type { Deps, Guards } from '../deps';
import { authOf } from '../http/auth';
import { parse } from '../http/validate';
import { describeOperation } from '../ops/openapi';
import { getRules } from './repo';
import { putScoringBody } from './schema';
import { putRules, scoringView } from './service';

describeOperation({ method: 'get', path: '/v1/scoring', summary: 'The lead scoring rules', tag: 'Predictions', auth: 'admin' });
describeOperation({ method: 'put', path: '/v1/scoring', summary: 'Replace the lead scoring rules and re-score every customer', tag: 'Predictions', auth: 'admin', body: putScoringBody, responses: { 200: 'The rules', 422: 'A rule is invalid (path named)' } });

export function scoringRoutes(deps: Deps, guards: Guards) {
  const r = Router();
  r.get('/v1/scoring', guards.admin, async (req, res) => {
    res.json(scoringView(await getRules(deps.db, authOf(req).workspaceId)));
  });
  r.put('/v1/scoring', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    const body = parse(putScoringBody, req.body ?? {});
    const { changed } = await putRules(deps.db, workspaceId, body, deps.clock.now());
    res.json({ ...scoringView(await getRules(deps.db, workspaceId)), changed });
  });
  return r;
}
