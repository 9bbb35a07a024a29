import { Router } from 'express';
import type { Deps, Guards } from '../deps';
import { AppError } from '../errors';
import { authOf } from '../http/auth';
import { parse } from '../http/validate';
import { describeOperation } from '../ops/openapi';
import { enqueueScoring, INLINE_SCORE_LIMIT } from './jobs';
import { getFit, lastFit } from './repo';
import { fitBody, validateBody } from './schema';
import { explainCustomer, fitView, fitWorkspace, scoreWorkspace } from './service';
import { validateWorkspace } from './fit';
import { scoreLeads } from '../scoring/service';

describeOperation({ method: 'post', path: '/v1/predictions/fit', summary: 'Fit MBG/NBD (or BG/NBD), Gamma-Gamma and the churn model on purchases up to asOf, then score every customer', tag: 'Predictions', auth: 'admin', body: fitBody, responses: { 200: 'The fit', 422: 'Too few customers with repeat purchases for a stable fit, or a fit that did not converge' } });
describeOperation({ method: 'get', path: '/v1/predictions/model', summary: 'The last fit, its churn model and its validation', tag: 'Predictions', auth: 'admin' });
describeOperation({ method: 'post', path: '/v1/predictions/validate', summary: 'Fit as of calibrationEnd and compare with what happened next; changes no stored prediction', tag: 'Predictions', auth: 'admin', body: validateBody, responses: { 200: 'The validation', 422: 'Dates that leave nothing to compare, too few repeat buyers, or no convergence' } });
describeOperation({ method: 'get', path: '/v1/predictions/customers/{externalId}', summary: "A customer's churnRisk under the last fit and the three features that weigh most", tag: 'Predictions', auth: 'admin' });

export function predictionRoutes(deps: Deps, guards: Guards) {
  const r = Router();

  // The fit runs in the request (seconds even at a million customers). Scoring is written in the
  // request too up to INLINE_SCORE_LIMIT customers; above that it is a job, and the answer says
  // scoring.status = "queued" until GET /v1/predictions/model shows it done.
  r.post('/v1/predictions/fit', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    const body = parse(fitBody, req.body ?? {});
    const now = deps.clock.now();
    const asOf = body.asOf ? new Date(body.asOf) : now;
    if (asOf.getTime() > now.getTime() + 60_000) throw new AppError('validation_failed', 'asOf is in the future', [{ path: 'asOf', message: 'must not be later than now' }]);
    const { fit, summary } = await fitWorkspace(deps.db, workspaceId, asOf, body.timeUnit, now, body.model);
    if (summary.customerId.length <= INLINE_SCORE_LIMIT) {
      await scoreWorkspace(deps.db, fit, summary, deps.clock.now());
      // Rules may score on churnRisk and the like: re-score leads against the new forecasts.
      await scoreLeads(deps.db, workspaceId, deps.clock.now());
      res.json(fitView((await getFit(deps.db, workspaceId, String(fit.id))) ?? fit));
    } else {
      await enqueueScoring(deps.queues, workspaceId, String(fit.id));
      res.json(fitView(fit));
    }
  });

  r.post('/v1/predictions/validate', guards.admin, async (req, res) => {
    const body = parse(validateBody, req.body ?? {});
    const holdoutEnd = body.holdoutEnd ? new Date(body.holdoutEnd) : undefined;
    res.json(await validateWorkspace(deps.db, authOf(req).workspaceId, new Date(body.calibrationEnd), holdoutEnd, body.timeUnit, body.model, deps.clock.now()));
  });

  r.get('/v1/predictions/customers/:externalId', guards.admin, async (req, res) => {
    res.json(await explainCustomer(deps.db, authOf(req).workspaceId, String(req.params.externalId)));
  });

  r.get('/v1/predictions/model', guards.admin, async (req, res) => {
    const fit = await lastFit(deps.db, authOf(req).workspaceId);
    if (!fit) throw new AppError('not_found', 'no model has been fitted in this workspace yet');
    res.json(fitView(fit));
  });
  return r;
}
