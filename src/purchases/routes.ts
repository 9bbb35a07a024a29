import { Response, Router } from 'express';
import type { Deps, Guards } from '../deps';
import { AuthContext, authOf } from '../http/auth';
import type { FastRoute, JsonAnswer } from '../http/fast';
import { firstIssue, parse } from '../http/validate';
import { describeOperation } from '../ops/openapi';
import { AppError } from '../errors';
import { normalizeRef } from '../customers/identity';
import { ingestPurchases } from './service';
import { attributionWaker } from '../results/wake';
import { purchaseCoalescer } from './coalesce';
import { getPurchasesByOrder, refundPurchase } from './repo';
import { batchPurchasesBody, PurchaseInput, purchaseBody, refundBody } from './schema';

describeOperation({ method: 'post', path: '/v1/purchases', summary: 'Record a purchase (idempotent by orderId)', tag: 'Purchases', auth: 'ingest', body: purchaseBody, responses: { 200: 'Replay of a known orderId', 201: 'Created' } });
describeOperation({ method: 'post', path: '/v1/purchases/batch', summary: 'Record up to 1000 purchases', tag: 'Purchases', auth: 'ingest', body: batchPurchasesBody });
describeOperation({ method: 'post', path: '/v1/purchases/:orderId/refund', summary: 'Refund part or all of a purchase', tag: 'Purchases', auth: 'ingest', body: refundBody });

/**
 * The purchase routes. The two ingest endpoints are also served by the app's fast JSON path
 * (src/http/fast.ts) for plain requests; both paths run the same handlers, and the same group
 * committer for single purchases.
 */
export function purchaseRoutes(deps: Deps, guards: Guards) {
  const r = Router();
  // Conversions of new purchases reach the reports at the next wake-up slot, not the schedule.
  const wake = attributionWaker(deps.queues, { everyMs: deps.config.ATTRIBUTION_WAKE_MS, logger: deps.logger });
  const ingestOne = purchaseCoalescer(deps.db, deps.clock, wake);

  const single = async ({ workspaceId, scope }: AuthContext, raw: unknown): Promise<JsonAnswer> => {
    const body = parse(purchaseBody, raw);
    normalizeRef(body.customer);
    const o = await ingestOne(workspaceId, body);
    // An ingest key writes and never reads: {id, externalId}, not the stored purchase.
    return { status: o.created ? 201 : 200, body: scope === 'ingest' ? { id: o.view.id, externalId: o.view.customer.externalId } : o.view };
  };

  const batch = async ({ workspaceId }: AuthContext, raw: unknown): Promise<JsonAnswer> => {
    const { purchases } = parse(batchPurchasesBody, raw);
    const good: PurchaseInput[] = [];
    const errors: { index: number; error: unknown }[] = [];
    purchases.forEach((row, index) => {
      const parsed = purchaseBody.safeParse(row);
      if (!parsed.success) return errors.push({ index, error: firstIssue(parsed.error) });
      try {
        normalizeRef(parsed.data.customer);
        good.push(parsed.data);
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        errors.push({ index, error: { code: err.code, message: err.message, details: err.details } });
      }
    });
    let accepted = 0;
    let duplicates = 0;
    if (good.length) {
      const { outcomes } = await ingestPurchases(deps.db, workspaceId, good, deps.clock.now());
      for (const o of outcomes) o.created ? accepted++ : duplicates++;
      if (accepted) wake();
    }
    return { status: 200, body: { accepted, duplicates, errors } };
  };

  const send = (res: Response, a: JsonAnswer) => void res.status(a.status).json(a.body);
  r.post('/v1/purchases', guards.ingest, async (req, res) => send(res, await single(authOf(req), req.body)));
  r.post('/v1/purchases/batch', guards.ingest, async (req, res) => send(res, await batch(authOf(req), req.body)));

  r.post('/v1/purchases/:orderId/refund', guards.ingest, async (req, res) => {
    const { workspaceId } = authOf(req);
    const body = parse(refundBody, req.body);
    const result = await refundPurchase(deps.db, workspaceId, req.params.orderId as string, body.amount, body.refundId, deps.clock.now());
    if (authOf(req).scope !== 'ingest') return void res.json(result);
    const view = (await getPurchasesByOrder(deps.db, workspaceId, [result.orderId])).get(result.orderId);
    res.json({ id: view?.id ?? null, externalId: view?.customer.externalId ?? null });
  });
  const fast: Record<string, FastRoute> = {
    '/v1/purchases': { scope: 'ingest', handle: single },
    '/v1/purchases/batch': { scope: 'ingest', handle: batch },
  };
  return { router: r, fast };
}
