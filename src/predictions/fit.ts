import type { Db } from '../db';
import { AppError } from '../errors';
import type { PurchaseModel } from './btyd';
import type { ChurnModel } from './churn';
import { loadHistory, type History } from './history';
import { CHURN_DAYS } from './churn';
import { DAY_MS, earliestDay, evaluate, fitCut, GRID_STEPS, isFailure, learnChurn, MIN_REPEAT_CUSTOMERS, recencyFallback, TRAINING_WINDOWS, WINDOW_STEP_DAYS, type CutFailure, type CutFit, type Validation, type WindowCuts } from './pipeline';
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

/** The cut-offs a fit at `at` reads: `at` and every WINDOW_STEP_DAYS back, GRID_STEPS of them. */
export function gridCuts(at: Date): Date[] {
  return Array.from({ length: GRID_STEPS + 1 }, (_, i) => new Date(at.getTime() - i * WINDOW_STEP_DAYS * DAY_MS));
}

/** Steps of the grid from a cut-off to the one 90 days before it. */
const CHURN_STEPS = CHURN_DAYS / WINDOW_STEP_DAYS;

/** The older training windows for a model applied at grid step `a` (the first, at a + CHURN_STEPS, is implied). */
function olderWindows(grid: number[], a: number): WindowCuts[] {
  const out: WindowCuts[] = [];
  for (let j = 1; j < TRAINING_WINDOWS; j++) {
    const k = grid[a + CHURN_STEPS + j];
    const kEnd = grid[a + j];
    if (k !== undefined && kEnd !== undefined) out.push({ k, kEnd });
  }
  return out;
}

/**
 * Everything a fit at cut-off grid[0] does, on a History loaded with the grid of cut-offs
 * WINDOW_STEP_DAYS apart going back from it (grid[i] is the History's index of the cut-off i steps
 * back): the purchase model there; the churn model learned on the windows starting 90, 120, 150 and
 * 180 days back (the purchase model fitted at 90 days back, kTrain), each labelled with its next 90
 * days; and the same procedure one churn window back (applied at kTrain, learned from kTrain2 =
 * 180 days back) scored on the 90 days up to grid[0]. If that validation ranks worse than plain
 * recency, the churn model is flagged and replaced by the recency rule.
 */
export function fitAt(h: History, grid: number[], unit: TimeUnit, model: PurchaseModel, horizonDays: number[], path: string): FitAt {
  const kApply = grid[0]!;
  const kTrain = grid[CHURN_STEPS]!;
  const kTrain2 = grid[2 * CHURN_STEPS]!;
  const main = fitCut(h, kApply, unit, model, horizonDays);
  if (isFailure(main)) refuse(main ?? { reason: 'too_few_repeaters', repeaters: 0, customers: 0 }, h.cuts[kApply]!.at, path);
  const early = earliestDay(h);
  const trained = fitCut(h, kTrain, unit, model, [h.cuts[kApply]!.day - h.cuts[kTrain]!.day], main.fit.params);
  const older = olderWindows(grid, 0);
  let churn = learnChurn(h, main, trained, early, older, unit, model);
  let validation: Validation | null = null;
  if (!isFailure(trained)) {
    const trained2 = fitCut(h, kTrain2, unit, model, [], trained.fit.params);
    validation = evaluate(h, trained, learnChurn(h, trained, trained2, early, olderWindows(grid, CHURN_STEPS), unit, model), kApply, kApply, model, unit);
    if (validation.churnAuc < validation.recencyAuc) {
      const what = validation.churnModel === 'learned' ? 'the learned churn model' : `the ${validation.churnModel} rule`;
      churn = recencyFallback(h, main, trained, early, unit, model, `${what} ranked worse than days since the last purchase on this workspace's last 90 days (AUC ${validation.churnAuc} against ${validation.recencyAuc})`);
    }
  }
  return { main, churn, validation };
}

export async function fitAsOf(db: Db, workspaceId: string, asOf: Date, unit: TimeUnit, model: PurchaseModel): Promise<FitAt & { history: History }> {
  const cuts = gridCuts(asOf);
  const history = await loadHistory(db, workspaceId, asOf, cuts);
  return { ...fitAt(history, cuts.map((_, i) => i), unit, model, [], 'asOf'), history };
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
  const grid = gridCuts(calibrationEnd);
  const cuts = [upTo, hold, churnEnd, ...grid];
  const h = await loadHistory(db, workspaceId, upTo, cuts);
  if (!h.cuts[3]!.n.some((v) => v > 0)) bad('calibrationEnd', 'calibrationEnd is before any purchase in this workspace');
  const r = fitAt(h, grid.map((_, i) => 3 + i), unit, model, [h.cuts[1]!.day - h.cuts[3]!.day], 'calibrationEnd');
  return evaluate(h, r.main, r.churn, 2, 1, model, unit);
}
