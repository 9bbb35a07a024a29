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
import { withRedisLock } from '../locks';

describeOperation({ method: 'post', path: '/v1/predictions/fit', summary: 'Fit MBG/NBD (or BG/NBD), Gamma-Gamma and the churn model on purchases up to asOf, then score every customer', tag: 'Predictions', auth: 'admin', body: fitBody, responses: { 200: 'The fit', 422: 'Too few customers with repeat purchases for a stable fit, or a fit that did not converge' } });
describeOperation({ method: 'get', path: '/v1/predictions/model', summary: 'The last fit, its churn model and its validation', tag: 'Predictions', auth: 'admin' });
describeOperation({ method: 'post', path: '/v1/predictions/validate', summary: 'Fit as of calibrationEnd and compare with what happened next; changes no stored prediction', tag: 'Predictions', auth: 'admin', body: validateBody, responses: { 200: 'The validation', 422: 'Dates that leave nothing to compare, too few repeat buyers, or no convergence' } });
describeOperation({ method: 'get', path: '/v1/predictions/customers/:externalId', summary: "A customer's churnRisk under the last fit and the three features that weigh most", tag: 'Predictions', auth: 'admin' });

export function predictionRoutes(deps: Deps, guards: Guards) {
  const r = Router();

  // The fit runs in the request (seconds even at a million customers), and the contract answers
  // it with 200. What it may cost is bounded: one fit at a time per workspace across all API
  // processes (a second is a 409: ten parallel fits would hold ten cores' worth of event loops),
  // its queries under STATEMENT_TIMEOUT_MS, and scoring written in the request only up to
  // PREDICTIONS_INLINE_SCORE_MAX customers; above that it is a job, and the answer says
  // scoring.status = "queued" until GET /v1/predictions/model shows it done.
  r.post('/v1/predictions/fit', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    const body = parse(fitBody, req.body ?? {});
    const now = deps.clock.now();
    const asOf = body.asOf ? new Date(body.asOf) : now;
    if (asOf.getTime() > now.getTime() + 60_000) throw new AppError('validation_failed', 'asOf is in the future', [{ path: 'asOf', message: 'must not be later than now' }]);
    const run = await withRedisLock(deps.redis, `${deps.queues.prefix}:predictions-fit:${workspaceId}`, 10 * 60_000, () => fitAndScore(workspaceId, asOf, body.timeUnit, now, body.model));
    if (run.busy) throw new AppError('conflict', 'a fit of this workspace is already running; retry when it is done');
    res.json(run.value);
  });

  const fitAndScore = async (workspaceId: string, asOf: Date, timeUnit: Parameters<typeof fitWorkspace>[3], now: Date, model: Parameters<typeof fitWorkspace>[5]) => {
    const { fit, summary } = await fitWorkspace(deps.db, workspaceId, asOf, timeUnit, now, model);
    if (summary.customerId.length <= Math.min(INLINE_SCORE_LIMIT, deps.config.PREDICTIONS_INLINE_SCORE_MAX)) {
      await scoreWorkspace(deps.db, fit, summary, deps.clock.now());
      // Rules may score on churnRisk and the like: re-score leads against the new forecasts.
      await scoreLeads(deps.db, workspaceId, deps.clock.now());
      return fitView((await getFit(deps.db, workspaceId, String(fit.id))) ?? fit);
    }
    await enqueueScoring(deps.queues, workspaceId, String(fit.id));
    return fitView(fit);
  };

  r.post('/v1/predictions/validate', guards.admin, async (req, res) => {
    const body = parse(validateBody, req.body ?? {});
    const holdoutEnd = body.holdoutEnd ? new Date(body.holdoutEnd) : undefined;
    const workspaceId = authOf(req).workspaceId;
    // A validation fits as much as a fit does: it shares the fit's one-at-a-time lock per workspace.
    const run = await withRedisLock(deps.redis, `${deps.queues.prefix}:predictions-fit:${workspaceId}`, 10 * 60_000, () => validateWorkspace(deps.db, workspaceId, new Date(body.calibrationEnd), holdoutEnd, body.timeUnit, body.model, deps.clock.now()));
    if (run.busy) throw new AppError('conflict', 'a fit or validation of this workspace is already running; retry when it is done');
    res.json(run.value);
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
