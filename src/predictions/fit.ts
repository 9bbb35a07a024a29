import type { Db } from '../db';
import { AppError } from '../errors';
import type { PurchaseModel } from './btyd';
import type { ChurnModel } from './churn';
import { loadHistory, type History } from './history';
import { DAY_MS, earliestDay, evaluate, fitCut, isFailure, learnChurn, MIN_REPEAT_CUSTOMERS, recencyFallback, type CutFailure, type CutFit, type Validation } from './pipeline';
import type { TimeUnit } from './repo';

export interface FitAt {
  main: CutFit;
  churn: ChurnModel;
  /** The check on the workspace's own history: this same procedure run 90 days earlier, scored on the 90 days since. */
  validation: Validation | null;
}

function refuse(f: CutFailure, at: Date, path: string): never {
  if (f.reason === 'not_converged')
    throw new AppError('unprocessable', `the purchase model did not converge on the purchases up to ${at.toISOString()}; stored predictions are unchanged`, [{ path, message: 'the maximum-likelihood fit did not converge' }]);
  throw new AppError(
    'unprocessable',
    `too few customers for a stable fit: ${f.repeaters} customers with repeat purchases up to ${at.toISOString()}, at least ${MIN_REPEAT_CUSTOMERS} needed; stored predictions are unchanged`,
    [{ path, message: `needs at least ${MIN_REPEAT_CUSTOMERS} customers with repeat purchases` }],
  );
}

/**
 * Everything a fit at cut-off kApply does, on a History loaded with its two training cut-offs
 * (kTrain = 90 days before, kTrain2 = 180 days before): the purchase model there; the churn model
 * learned at kTrain on the 90 days up to kApply; and the same procedure one step back (applied at
 * kTrain, learned at kTrain2) scored on those 90 days. If that validation ranks worse than plain
 * recency, the churn model is flagged and replaced by the recency rule.
 */
export function fitAt(h: History, kApply: number, kTrain: number, kTrain2: number, unit: TimeUnit, model: PurchaseModel, horizonDays: number[], path: string): FitAt {
  const main = fitCut(h, kApply, unit, model, horizonDays);
  if (isFailure(main)) refuse(main ?? { reason: 'too_few_repeaters', repeaters: 0, customers: 0 }, h.cuts[kApply]!.at, path);
  const early = earliestDay(h);
  const trained = fitCut(h, kTrain, unit, model, [h.cuts[kApply]!.day - h.cuts[kTrain]!.day], main.fit.params);
  let churn = learnChurn(h, main, trained, early);
  let validation: Validation | null = null;
  if (!isFailure(trained)) {
    const trained2 = fitCut(h, kTrain2, unit, model, [], trained.fit.params);
    validation = evaluate(h, trained, learnChurn(h, trained, trained2, early), kApply, kApply, model, unit);
    if (validation.churnAuc < validation.recencyAuc) {
      const what = validation.churnModel === 'learned' ? 'the learned churn model' : `the ${validation.churnModel} rule`;
      churn = recencyFallback(h, main, trained, `${what} ranked worse than days since the last purchase on this workspace's last 90 days (AUC ${validation.churnAuc} against ${validation.recencyAuc})`);
    }
  }
  return { main, churn, validation };
}

export async function fitAsOf(db: Db, workspaceId: string, asOf: Date, unit: TimeUnit, model: PurchaseModel): Promise<FitAt & { history: History }> {
  const cuts = [asOf, new Date(asOf.getTime() - 90 * DAY_MS), new Date(asOf.getTime() - 180 * DAY_MS)];
  const history = await loadHistory(db, workspaceId, asOf, cuts);
  return { ...fitAt(history, 0, 1, 2, unit, model, [], 'asOf'), history };
}

/**
 * POST /v1/predictions/validate: everything fitted as of calibrationEnd, as a fit would, then
 * compared with what happened up to holdoutEnd (purchases) and over the 90 days after (churn).
 */
export async function validateWorkspace(db: Db, workspaceId: string, calibrationEnd: Date, holdoutEnd: Date | undefined, unit: TimeUnit, model: PurchaseModel, now: Date): Promise<Validation> {
  const bad = (path: string, message: string): never => {
    throw new AppError('unprocessable', message, [{ path, message }]);
  };
  if (calibrationEnd.getTime() > now.getTime()) bad('calibrationEnd', 'calibrationEnd is in the future: there is nothing to compare with yet');
  const churnEnd = new Date(Math.min(calibrationEnd.getTime() + 90 * DAY_MS, now.getTime()));
  const hold = holdoutEnd ?? churnEnd;
  if (hold.getTime() < calibrationEnd.getTime()) bad('holdoutEnd', 'calibrationEnd is after holdoutEnd');
  if (hold.getTime() > now.getTime()) bad('holdoutEnd', 'holdoutEnd is in the future');
  const upTo = new Date(Math.max(hold.getTime(), churnEnd.getTime()));
  const cuts = [upTo, hold, churnEnd, calibrationEnd, new Date(calibrationEnd.getTime() - 90 * DAY_MS), new Date(calibrationEnd.getTime() - 180 * DAY_MS)];
  const h = await loadHistory(db, workspaceId, upTo, cuts);
  if (!h.cuts[3]!.n.some((v) => v > 0)) bad('calibrationEnd', 'calibrationEnd is before any purchase in this workspace');
  const r = fitAt(h, 3, 4, 5, unit, model, [h.cuts[1]!.day - h.cuts[3]!.day], 'calibrationEnd');
  return evaluate(h, r.main, r.churn, 2, 1, model, unit);
}
