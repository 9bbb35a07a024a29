import { Router } from 'express';
import type { Deps, Guards } from '../app';
import { authOf } from '../http/auth';
import { firstIssue, parse } from '../http/validate';
import { describeOperation } from '../ops/openapi';
import { AppError } from '../errors';
import { normalizeRef } from '../customers/identity';
import { ingestPurchases } from './service';
import { purchaseCoalescer } from './coalesce';
import { refundPurchase } from './repo';
import { batchPurchasesBody, PurchaseInput, purchaseBody, refundBody } from './schema';

describeOperation({ method: 'post', path: '/v1/purchases', summary: 'Record a purchase (idempotent by orderId)', tag: 'Purchases', auth: 'ingest', body: purchaseBody, responses: { 200: 'Replay of a known orderId', 201: 'Created' } });
describeOperation({ method: 'post', path: '/v1/purchases/batch', summary: 'Record up to 1000 purchases', tag: 'Purchases', auth: 'ingest', body: batchPurchasesBody });
describeOperation({ method: 'post', path: '/v1/purchases/:orderId/refund', summary: 'Refund part or all of a purchase', tag: 'Purchases', auth: 'ingest', body: refundBody });

export function purchaseRoutes(deps: Deps, guards: Guards) {
  const r = Router();
  const ingestOne = purchaseCoalescer(deps.db, deps.clock);

  r.post('/v1/purchases', guards.ingest, async (req, res) => {
    const { workspaceId } = authOf(req);
    const body = parse(purchaseBody, req.body);
    normalizeRef(body.customer);
    const o = await ingestOne(workspaceId, body);
    res.status(o.created ? 201 : 200).json(o.view);
  });

  r.post('/v1/purchases/batch', guards.ingest, async (req, res) => {
    const { workspaceId } = authOf(req);
    const { purchases } = parse(batchPurchasesBody, req.body);
    const good: PurchaseInput[] = [];
    const errors: { index: number; error: unknown }[] = [];
    purchases.forEach((raw, index) => {
      const row = purchaseBody.safeParse(raw);
      if (!row.success) return errors.push({ index, error: firstIssue(row.error) });
      try {
        normalizeRef(row.data.customer);
        good.push(row.data);
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
    }
    res.json({ accepted, duplicates, errors });
  });

  r.post('/v1/purchases/:orderId/refund', guards.ingest, async (req, res) => {
    const { workspaceId } = authOf(req);
    const body = parse(refundBody, req.body);
    const result = await refundPurchase(deps.db, workspaceId, req.params.orderId as string, body.amount, body.refundId, deps.clock.now());
    res.json(result);
  });
  return r;
}
