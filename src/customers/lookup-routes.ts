import { Router } from 'express';
import { z } from 'zod';
import type { Deps, Guards } from '../deps';
import { authOf } from '../http/auth';
import { decodeCursor, encodeCursor, listQuery, parse, byId, pageOf } from '../http/validate';
import { describeOperation } from '../ops/openapi';
import { toMoney } from '../db';
import { requireByExternalId } from './repo';
import { externalIdSchema } from './schema';
import { searchCustomers } from './search';
import { segmentsOf } from './segments-of';
import { timeline } from './timeline';
import { customerView } from './view';

export const customerSearchQuery = listQuery.extend({ q: z.string().max(200).optional() });

describeOperation({ method: 'get', path: '/v1/customers', summary: 'Search customers, newest first (q: externalId, email or phone prefix; first or last name substring)', tag: 'Customers', auth: 'admin', query: customerSearchQuery });
describeOperation({ method: 'get', path: '/v1/customers/:externalId/timeline', summary: "A customer's purchases, refunds, events, messages and consent changes, newest first", tag: 'Customers', auth: 'admin', query: listQuery });
describeOperation({ method: 'get', path: '/v1/customers/:externalId/segments', summary: 'The segments a customer is in now, evaluated live', tag: 'Customers', auth: 'admin' });

const idCursor = z.object({ id: z.string().regex(/^\d{1,19}$/) });
const timelineCursor = z.object({ at: z.string().datetime({ offset: true }), type: z.enum(['purchase', 'refund', 'event', 'message', 'consent']), id: z.string().regex(/^\d{1,19}$/) });

/** Admin reads of customers beside the profile: search, timeline, live segments. */
export function customerLookupRoutes(deps: Deps, guards: Guards): Router {
  const r = Router();
  r.get('/v1/customers', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    const q = parse(customerSearchQuery, req.query, 'query');
    const rows = await searchCustomers(deps.db, workspaceId, q.q, q.limit, decodeCursor(idCursor, q.cursor)?.id);
    const { page, nextCursor } = pageOf(rows, q.limit, byId);
    const now = deps.clock.now();
    res.json({
      data: page.map((row) => {
        const { stats: _s, ...c } = customerView(row, undefined, now);
        return {
          ...c,
          summary: { purchaseCount: Number(row.purchase_count ?? 0), totalSpent: toMoney(row.total_spent) ?? 0, lastPurchaseAt: row.last_purchase_at ? new Date(row.last_purchase_at).toISOString() : null, leadScore: Number(row.lead_score ?? 0), churnRisk: row.churn_risk === null || row.churn_risk === undefined ? null : Number(row.churn_risk) },
        };
      }),
      nextCursor,
    });
  });

  r.get('/v1/customers/:externalId/timeline', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    const q = parse(listQuery, req.query, 'query');
    const row = await requireByExternalId(deps.db, workspaceId, parse(externalIdSchema, req.params.externalId, 'externalId'));
    const page = await timeline(deps.db, String(row.id), q.limit, decodeCursor(timelineCursor, q.cursor));
    res.json({ data: page.data, nextCursor: page.next ? encodeCursor(page.next) : null });
  });

  r.get('/v1/customers/:externalId/segments', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    const row = await requireByExternalId(deps.db, workspaceId, parse(externalIdSchema, req.params.externalId, 'externalId'));
    const data = await segmentsOf(deps.db, workspaceId, String(row.id), deps.clock.now());
    res.json({ data, count: data.length });
  });
  return r;
}
