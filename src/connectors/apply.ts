import type { Clock } from '../clock';
import type { Db } from '../db';
import { AppError } from '../errors';
import { upsertCustomers } from '../customers/repo';
import { firstIssue } from '../http/validate';
import { purchaseCoalescer } from '../purchases/coalesce';
import { refundPurchase } from '../purchases/repo';
import { purchaseBody } from '../purchases/schema';
import { withRetry } from '../tx';
import { adapterOf } from './adapters';
import { batcher } from './batcher';
import { MappingError, obj, parseJsonKeepingIds } from './kit';
import * as repo from './repo';
import type { Outcome } from './schema';
import type { Write } from './types';

type Result = { outcome: Outcome; reason: string | null };

/**
 * Maps stored deliveries to hark's writes through the services the REST API uses: purchases by
 * the same group committer as POST /v1/purchases (concurrent jobs share its statements), refunds
 * by refundPurchase, customers by upsertCustomers. So stats, segments, automations and attribution
 * see connector data exactly as posted data.
 */
export function deliveryMapper(db: Db, clock: Clock, onPurchases?: () => void) {
  const ingest = purchaseCoalescer(db, clock, onPurchases);

  // Concurrent jobs share statements: their reads, their outcomes and their kept-refund lookups.
  const read = batcher((ids: string[]) => repo.getDeliveries(db, ids));
  const finish = batcher(async (list: Array<{ id: string; outcome: Outcome; reason: string | null }>) => {
    await repo.finishDeliveries(db, list, clock.now());
    return list.map(() => undefined);
  });
  const mark = batcher(async (list: Array<{ id: string; outcome: Outcome; reason: string | null }>) => {
    await repo.markDeliveries(db, list);
    return list.map(() => undefined);
  });
  const kept = batcher((orders: Array<{ workspaceId: string; orderId: string }>) => repo.keptRefunds(db, orders));

  /** Refunds kept for this order (they came first) are applied now; see refund() for the lock. */
  const applyKept = async (workspaceId: string, orderId: string) => {
    for (const k of await kept({ workspaceId, orderId })) {
      let r: Result;
      try {
        await refundPurchase(db, workspaceId, orderId, Number(k.amount), k.refund_id, clock.now());
        r = { outcome: 'stored', reason: `refund ${k.amount} applied when order ${orderId} arrived` };
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        r = { outcome: 'failed', reason: `kept refund could not be applied: ${err.message}` };
      }
      await repo.dropPendingRefund(db, workspaceId, k.refund_id);
      if (k.delivery_id) await repo.finishDelivery(db, k.delivery_id, r.outcome, r.reason, clock.now());
    }
  };

  const refund = async (workspaceId: string, w: Extract<Write, { kind: 'refund' }>, deliveryId: string): Promise<Result> => {
    const kept = await withRetry(db, async (trx) => {
      await repo.lockOrder(trx, workspaceId, w.orderId);
      if (await repo.purchaseExists(trx, workspaceId, w.orderId)) return false;
      await repo.keepRefund(trx, { workspaceId, orderId: w.orderId, refundId: w.refundId, amount: w.amount, deliveryId }, clock.now());
      return true;
    });
    if (kept) return { outcome: 'stored', reason: `refund ${w.amount} kept until order ${w.orderId} arrives` };
    const r = await refundPurchase(db, workspaceId, w.orderId, Number(w.amount), w.refundId, clock.now());
    return r.replayed ? { outcome: 'duplicate', reason: `refund ${w.refundId} already applied` } : { outcome: 'stored', reason: null };
  };

  const apply = async (workspaceId: string, w: Write, deliveryId: string, storedBefore: boolean): Promise<Result> => {
    switch (w.kind) {
      case 'skip':
        return { outcome: 'skipped', reason: w.reason };
      case 'purchase': {
        const parsed = purchaseBody.safeParse(w.purchase);
        if (!parsed.success) return { outcome: 'failed', reason: `order ${w.purchase.orderId}: ${firstIssue(parsed.error).message}` };
        const o = await ingest(workspaceId, parsed.data);
        // Recorded at once: if a later step fails, the retry finds this purchase stored and must not call it a duplicate.
        if (o.created) await mark({ id: deliveryId, outcome: 'stored', reason: null });
        await applyKept(workspaceId, parsed.data.orderId);
        return o.created || storedBefore ? { outcome: 'stored', reason: null } : { outcome: 'duplicate', reason: `order ${parsed.data.orderId} already stored` };
      }
      case 'refund':
        return refund(workspaceId, w, deliveryId);
      case 'customer':
        await upsertCustomers(db, workspaceId, [{ externalId: w.externalId, fields: w.fields }], clock.now());
        return { outcome: 'stored', reason: null };
    }
  };

  /** One delivery's writes, in order; the first failure ends it. Errors other than bad input propagate (the job retries). */
  const run = async (workspaceId: string, writes: Write[], deliveryId: string, storedBefore: boolean): Promise<Result> => {
    const results: Result[] = [];
    for (const w of writes) {
      let r: Result;
      try {
        r = await apply(workspaceId, w, deliveryId, storedBefore);
      } catch (err) {
        if (!(err instanceof AppError) || err.status >= 500) throw err;
        r = { outcome: 'failed', reason: err.details[0] ? `${err.message}: ${err.details[0].path} ${err.details[0].message}` : err.message };
      }
      results.push(r);
      if (r.outcome === 'failed') return r;
    }
    const stored = results.find((r) => r.outcome === 'stored');
    return stored ?? results[0] ?? { outcome: 'ignored', reason: 'nothing to store' };
  };

  /**
   * Maps one delivery and records its outcome. Returns the outcome; throws (for the job to retry)
   * on a failure a retry may cure, such as the database being down.
   */
  return async function mapDelivery(deliveryId: string): Promise<Outcome | 'gone'> {
    const d = await read(deliveryId);
    if (!d) return 'gone';
    // Finished deliveries have no body; one with a body was interrupted (its outcome may say what it had stored).
    if (!d.body) return d.outcome;
    const adapter = adapterOf(d.type);
    let result: Result;
    try {
      if (!adapter) throw new MappingError(`no adapter for ${d.type}`);
      let body: unknown;
      try {
        body = parseJsonKeepingIds(d.body.toString('utf8'));
      } catch {
        throw new MappingError('the body is not JSON');
      }
      result = await run(d.workspace_id, adapter.map(d.topic, obj(body)), deliveryId, d.outcome === 'stored');
    } catch (err) {
      if (!(err instanceof MappingError)) throw err;
      result = { outcome: 'failed', reason: err.message };
    }
    await finish({ id: deliveryId, outcome: result.outcome, reason: result.reason });
    return result.outcome;
  };
}

/** After the last attempt: the delivery is failed, with why. */
export async function giveUp(db: Db, deliveryId: string, attempts: number, err: unknown, now: Date): Promise<void> {
  const d = await repo.getDelivery(db, deliveryId);
  // knex prefixes the SQL to Postgres's message; the reason keeps Postgres's part only.
  const msg = String((err as Error)?.message ?? err);
  if (d?.body) await repo.finishDelivery(db, deliveryId, 'failed', `not mapped after ${attempts} attempts: ${msg.includes(' - ') ? msg.slice(msg.lastIndexOf(' - ') + 3) : msg}`, now);
}
