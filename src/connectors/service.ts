import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { RedisClient as Redis } from '../redis';
import type { Config } from '../config';
import type { Db } from '../db';
import { AppError, notFound } from '../errors';
import { isUuid } from '../ids';
import type { Logger } from '../logger';
import { QUEUE_NAMES, Queues } from '../queues';
import { signingSecret } from '../public/tokens';
import { adapterOf } from './adapters';
import { batcher } from './batcher';
import * as repo from './repo';
import type { CreateConnector } from './schema';
import { connectorKey, openSecret, sealSecret } from './secret';

/** Retries back off as the worker's backoffStrategy says (workers/connector-worker.ts: 2 s doubling, about a minute over 6 attempts). */
export const MAP_JOB = { attempts: 6, backoff: { type: 'connector' }, removeOnComplete: true, removeOnFail: 1000 };
/** A connector found by the public route is trusted this long; DELETE in this process forgets it at once. */
const CACHE_MS = 10_000;
/** Longer than all of a job's retries take (MAP_JOB: about a minute). */
const LOST_AFTER_MS = 10 * 60_000;

export function connectorView(row: repo.ConnectorRow, publicUrl: string, extra: { refused?: number; lastDeliveryAt?: Date } = {}) {
  return {
    id: row.id,
    type: row.type,
    name: row.name,
    url: `${publicUrl.replace(/\/+$/, '')}/connect/${row.type}/${row.id}`,
    setup: adapterOf(row.type)?.setup ?? null,
    createdAt: new Date(row.created_at).toISOString(),
    refusedDeliveries: extra.refused ?? 0,
    lastDeliveryAt: extra.lastDeliveryAt ? new Date(extra.lastDeliveryAt).toISOString() : null,
  };
}

type Answer = { status: number; body: unknown };
type Cached = { workspaceId: string; type: string; secret: string | null; at: number };

/**
 * The connectors' service: their lifecycle and the public receiving end. A delivery is found,
 * verified over its raw bytes, stored and queued; it is mapped later (workers/connector-worker.ts),
 * so that the platform's answer comes back within milliseconds whatever the mapping costs.
 */
export function connectorService(deps: { db: Db; redis: Redis; queues: Queues; config: Config; logger: Logger; clock: { now(): Date } }) {
  // Sealed under the signing secret; the one before a rotation (HARK_SIGNING_SECRET_PREVIOUS) still opens.
  const key = connectorKey(signingSecret(deps.config));
  const previous = deps.config.HARK_SIGNING_SECRET_PREVIOUS ? connectorKey(deps.config.HARK_SIGNING_SECRET_PREVIOUS) : null;
  const open = (sealed: Buffer) => openSecret(key, sealed) ?? (previous && openSecret(previous, sealed));
  const refusedKey = `${deps.queues.prefix}:connectors:refused`;
  const cache = new Map<string, Cached>();
  const queue = () => deps.queues.get(QUEUE_NAMES.connectors);

  const lookup = async (id: string): Promise<Cached | undefined> => {
    const hit = cache.get(id);
    if (hit && Date.now() - hit.at < CACHE_MS) return hit;
    const row = await repo.findConnector(deps.db, id);
    if (!row) {
      cache.delete(id);
      return undefined;
    }
    const c = { workspaceId: row.workspace_id, type: row.type, secret: open(row.secret_enc), at: Date.now() };
    if (c.secret === null) deps.logger.error({ connectorId: id }, 'connector secret cannot be opened (HARK_SIGNING_SECRET changed without HARK_SIGNING_SECRET_PREVIOUS?); deliveries are refused');
    if (cache.size > 10_000) cache.clear();
    cache.set(id, c);
    return c;
  };

  /** One job for the deliveries that arrived together (job data: their ids); its id is the first one's, so queuing it twice is a no-op. */
  const enqueue = async (ids: string[]) => {
    if (ids.length) await queue().add('map', { deliveryIds: ids }, { ...MAP_JOB, jobId: `cd-${ids[0]}` });
  };
  /**
   * Deliveries arriving together are stored by one statement and queued as one job: each costs a
   * commit (an fsync) and round trips whatever its size. A 200 is answered only after both.
   */
  const arrive = batcher(async (list: Array<repo.ArrivalInput & { known: boolean }>) => {
    const arrivals = await repo.recordArrivals(deps.db, list, deps.clock.now());
    await enqueue(arrivals.flatMap((a, i) => ('first' in a && a.first && list[i]!.known ? [a.id] : [])));
    // A redelivery of one not mapped yet: if its job was lost (Redis down when it came), this queues it again.
    // Only once it is older than any job could still be waiting, so that one delivery is not mapped twice at once.
    const lost = arrivals.flatMap((a) => ('original' in a && a.original.unfinished && a.original.receivedAt.getTime() < deps.clock.now().getTime() - LOST_AFTER_MS ? [a.original.id] : []));
    for (const id of new Set(lost)) await enqueue([id]);
    return arrivals;
  });

  return {
    async create(workspaceId: string, body: CreateConnector) {
      const row = await repo.insertConnector(deps.db, { workspace_id: workspaceId, type: body.type, name: body.name, secret_enc: sealSecret(key, body.secret) }, deps.clock.now());
      return connectorView(row, deps.config.PUBLIC_URL);
    },

    async views(rows: repo.ConnectorRow[]) {
      const [refused, last] = await Promise.all([
        rows.length ? deps.redis.hmget(refusedKey, ...rows.map((r) => r.id)).catch(() => rows.map(() => null)) : Promise.resolve([]),
        repo.lastDeliveryAt(deps.db, rows.map((r) => r.id)),
      ]);
      return rows.map((r, i) => connectorView(r, deps.config.PUBLIC_URL, { refused: Number(refused[i] ?? 0), lastDeliveryAt: last.get(r.id) }));
    },

    async remove(workspaceId: string, id: string) {
      await repo.deleteConnector(deps.db, workspaceId, id);
      cache.delete(id);
      await deps.redis.hdel(refusedKey, id).catch(() => undefined);
    },

    /** Step one of POST /connect/:type/:id, before the body is read: unknown connectors cost one indexed read (or none, cached). */
    async find(type: string, id: string): Promise<Cached> {
      const c = adapterOf(type) && isUuid(id) ? await lookup(id.toLowerCase()) : undefined;
      if (!c || c.type !== type) throw notFound('connector');
      return c;
    },

    /**
     * Step two, with the raw body: verify, then store and queue. Nothing is parsed or written before
     * the signature holds; a refused one only bumps a counter in Redis.
     */
    async receive(c: Cached, id: string, raw: Buffer, headers: IncomingHttpHeaders): Promise<Answer> {
      const adapter = adapterOf(c.type)!;
      if (adapter.isPing?.(raw, headers)) return { status: 200, body: { ok: true } };
      if (!c.secret || !adapter.verify(raw, headers, c.secret)) {
        await deps.redis.hincrby(refusedKey, id, 1).catch(() => undefined);
        throw new AppError('unauthorized', 'signature does not match this connector');
      }
      const topic = adapter.topic(headers);
      const name = adapter.deliveryName(headers) ?? `sha256:${createHash('sha256').update(raw).digest('hex')}`;
      const known = adapter.topics.includes(topic);
      const arrival = await arrive({
        workspaceId: c.workspaceId, connectorId: id, name, topic: topic.slice(0, 200) || '(none)', body: raw, known,
        ...(known ? {} : { outcome: 'ignored' as const, reason: `topic ${topic || '(none)'} is not mapped` }),
      });
      if ('gone' in arrival) {
        cache.delete(id);
        throw notFound('connector');
      }
      return { status: 200, body: { received: true, id: arrival.id } };
    },
  };
}
export type ConnectorService = ReturnType<typeof connectorService>;
