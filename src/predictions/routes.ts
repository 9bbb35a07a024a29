import { Router } from 'express';
import type { Deps, Guards } from '../deps';
import { AppError } from '../errors';
import { authOf } from '../http/auth';
import { parse } from '../http/validate';
import { describeOperation } from '../ops/openapi';
import { enqueueScoring, INLINE_SCORE_LIMIT } from './jobs';
import { getFit, lastFit } from './repo';
import { fitBody } from './schema';
import { fitView, fitWorkspace, scoreWorkspace } from './service';
import { scoreLeads } from '../scoring/service';
import { withRedisLock } from '../locks';

describeOperation({ method: 'post', path: '/v1/predictions/fit', summary: 'Fit BG/NBD and Gamma-Gamma on purchases up to asOf, then score every customer', tag: 'Predictions', auth: 'admin', body: fitBody, responses: { 200: 'The fit', 422: 'Too few customers with repeat purchases for a stable fit' } });
describeOperation({ method: 'get', path: '/v1/predictions/model', summary: 'The last fit', tag: 'Predictions', auth: 'admin' });

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
    const run = await withRedisLock(deps.redis, `${deps.queues.prefix}:predictions-fit:${workspaceId}`, 10 * 60_000, () => fitAndScore(workspaceId, asOf, body.timeUnit, now));
    if (run.busy) throw new AppError('conflict', 'a fit of this workspace is already running; retry when it is done');
    res.json(run.value);
  });

  const fitAndScore = async (workspaceId: string, asOf: Date, timeUnit: Parameters<typeof fitWorkspace>[3], now: Date) => {
    const { fit, summary } = await fitWorkspace(deps.db, workspaceId, asOf, timeUnit, now);
    if (summary.customerId.length <= Math.min(INLINE_SCORE_LIMIT, deps.config.PREDICTIONS_INLINE_SCORE_MAX)) {
      await scoreWorkspace(deps.db, fit, summary, deps.clock.now());
      // Rules may score on churnRisk and the like: re-score leads against the new forecasts.
      await scoreLeads(deps.db, workspaceId, deps.clock.now());
      return fitView((await getFit(deps.db, workspaceId, String(fit.id))) ?? fit);
    }
    await enqueueScoring(deps.queues, workspaceId, String(fit.id));
    return fitView(fit);
  };

  r.get('/v1/predictions/model', guards.admin, async (req, res) => {
    const fit = await lastFit(deps.db, authOf(req).workspaceId);
    if (!fit) throw new AppError('not_found', 'no model has been fitted in this workspace yet');
    res.json(fitView(fit));
  });
  return r;
}
