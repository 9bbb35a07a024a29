import type { Knex } from 'knex';
import { customerView } from '../customers/view';
import { statsColumns, statsView, StatsRow } from '../customers/stats';
import { toMoney } from '../db';
import { getWorkspace, Workspace } from '../workspaces/repo';

/** What a template sees: `customer.*`, `stats.*`, `workspace.*` (unsubscribeUrl is added per message). */
export interface RenderContext {
  customer: Record<string, unknown>;
  stats: Record<string, unknown>;
  workspace: Record<string, unknown>;
}

type Conn = Knex | Knex.Transaction;

export function workspaceScope(ws: Workspace): Record<string, unknown> {
  const s = ws.settings;
  return {
    id: ws.id,
    name: ws.name,
    timezone: ws.timezone,
    currency: ws.currency,
    postalAddress: s.postalAddress,
    fromName: s.fromName,
    fromEmail: s.fromEmail,
    replyTo: s.replyTo,
  };
}

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

export function customerScope(row: Record<string, any>, now: Date): Pick<RenderContext, 'customer' | 'stats'> {
  const view = customerView(row, undefined, now);
  const attributes = (row.attributes ?? {}) as Record<string, unknown>;
  const { id: _id, createdAt: _c, updatedAt: _u, ...profile } = view;
  // Attributes are reachable both as customer.attributes.x and as customer.x; profile fields win.
  const customer = { ...attributes, ...profile, attributes };
  const stats = {
    ...statsView(row as StatsRow, now),
    leadScore: Number(row.lead_score ?? 0),
    pAlive: num(row.p_alive),
    churnRisk: num(row.churn_risk),
    expectedPurchases90d: num(row.expected_purchases_90d),
    predictedSpend365d: toMoney(row.predicted_spend_365d),
  };
  return { customer, stats };
}

/**
 * Contexts for many customers at once (dispatch renders in batches): one query for the batch,
 * one for the workspace. Customers not found in the workspace are absent from the map.
 */
export async function buildRenderContexts(db: Conn, workspaceId: string, customerIds: string[], now: Date): Promise<Map<string, RenderContext>> {
  const ws = await getWorkspace(db as Knex, workspaceId);
  const workspace = workspaceScope(ws);
  const out = new Map<string, RenderContext>();
  if (!customerIds.length) return out;
  const { rows } = await db.raw(
    `SELECT c.*, ${statsColumns}, s.lead_score, s.p_alive, s.churn_risk, s.expected_purchases_90d, s.predicted_spend_365d
       FROM customers c LEFT JOIN customer_stats s ON s.customer_id = c.id AND s.workspace_id = c.workspace_id
      WHERE c.workspace_id = ? AND c.id = ANY(?::bigint[])`,
    [workspaceId, customerIds] as unknown as Knex.RawBinding[],
  );
  for (const row of rows as Array<Record<string, any>>) out.set(String(row.id), { ...customerScope(row, now), workspace });
  return out;
}

/** One customer's context; null customerId gives sample values (template preview). */
export async function buildRenderContext(db: Conn, workspaceId: string, customerId: string | null, now: Date): Promise<RenderContext> {
  if (customerId === null) {
    const ws = await getWorkspace(db as Knex, workspaceId);
    return { ...sampleScope(now), workspace: workspaceScope(ws) };
  }
  const ctx = (await buildRenderContexts(db, workspaceId, [customerId], now)).get(String(customerId));
  if (!ctx) return { ...sampleScope(now), workspace: workspaceScope(await getWorkspace(db as Knex, workspaceId)) };
  return ctx;
}

/** Plausible values so a preview shows what a real message would look like. */
export function sampleScope(now: Date): Pick<RenderContext, 'customer' | 'stats'> {
  const day = 86400000;
  return {
    customer: {
      externalId: 'sample-customer',
      email: 'alex.sample@example.com',
      phone: '+15555550100',
      firstName: 'Alex',
      lastName: 'Sample',
      birthDate: '1990-04-12',
      gender: null,
      city: 'Springfield',
      region: null,
      country: 'US',
      postalCode: '00000',
      timezone: null,
      emailConsent: 'subscribed',
      smsConsent: 'subscribed',
      attributes: {},
    },
    stats: {
      purchaseCount: 4,
      totalSpent: 212.5,
      avgOrderValue: 53.13,
      firstPurchaseAt: new Date(now.getTime() - 300 * day).toISOString(),
      lastPurchaseAt: new Date(now.getTime() - 45 * day).toISOString(),
      daysSinceLastPurchase: 45,
      avgDaysBetweenPurchases: 85,
      expectedNextPurchaseAt: new Date(now.getTime() + 40 * day).toISOString(),
      purchases90d: 1,
      spent90d: 48,
      topCategory: 'shoes',
      leadScore: 20,
      pAlive: 0.72,
      churnRisk: 0.28,
      expectedPurchases90d: 0.9,
      predictedSpend365d: 180,
    },
  };
}
