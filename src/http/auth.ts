import { createHash, hash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import type { Db } from '../db';
import { AppError } from '../errors';

export type Scope = 'admin' | 'ingest';

export interface AuthContext {
  workspaceId: string;
  keyId: string;
  scope: Scope;
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      auth?: AuthContext;
    }
  }
}

export const hashKey = (key: string): Buffer => createHash('sha256').update(key).digest();

/** 32 random bytes: long enough that a plain SHA-256 is the right way to store it. */
export function generateKey(scope: Scope): { key: string; prefix: string; hash: Buffer } {
  const key = `hark_${scope === 'admin' ? 'adm' : 'ing'}_${randomBytes(32).toString('base64url')}`;
  return { key, prefix: key.slice(0, 12), hash: hashKey(key) };
}

function bearer(req: { headers: IncomingHttpHeaders }): string | undefined {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1];
}

export function requireOperator(adminToken: string) {
  const expected = createHash('sha256').update(adminToken).digest();
  return (req: Request, _res: Response, next: NextFunction) => {
    const token = bearer(req);
    if (!token) return next(new AppError('unauthorized', 'missing bearer token'));
    const got = createHash('sha256').update(token).digest();
    if (!timingSafeEqual(got, expected)) return next(new AppError('unauthorized', 'invalid operator token'));
    next();
  };
}

interface CachedKey {
  ctx: AuthContext | null;
  at: number;
}

/**
 * Resolves a workspace key. A short cache keeps ingest traffic off the api_keys table; a
 * deleted key stops working within KEY_CACHE_MS. One lookup per key at a time: the requests that
 * find the entry missing or expired share it (when it expired under load, each of them used to
 * take a pool connection for the same row, ahead of the purchases' statements); and an entry in
 * the last second of its life is refreshed in the background while it still answers, so a busy
 * key never waits on the table.
 */
export function workspaceAuth(db: Db, limit?: ((keyId: string) => Promise<void>) | null) {
  const KEY_CACHE_MS = 5000;
  const REFRESH_AHEAD_MS = 1000;
  const cache = new Map<string, CachedKey>();
  const inFlight = new Map<string, Promise<AuthContext | null>>();
  let generation = 0; // forget() moves it: a read begun before does not fill the cache after
  const lookup = (k: string): Promise<AuthContext | null> => {
    let p = inFlight.get(k);
    if (p) return p;
    const gen = generation;
    const at = Date.now(); // the entry's age counts from before the read: never served past KEY_CACHE_MS of it
    p = db('api_keys')
      .where({ key_hash: Buffer.from(k, 'hex') })
      .first('id', 'workspace_id', 'scope')
      .then((row) => {
        const ctx = row ? { workspaceId: row.workspace_id, keyId: row.id, scope: row.scope as Scope } : null;
        if (cache.size > 10000) cache.clear();
        if (gen === generation) cache.set(k, { ctx, at });
        return ctx;
      })
      .finally(() => inFlight.get(k) === p && inFlight.delete(k));
    inFlight.set(k, p);
    return p;
  };
  const resolve = async (token: string): Promise<AuthContext | null> => {
    // One-shot hashing: a Hash object per request cost several times as much, on every request.
    const k = hash('sha256', token, 'hex');
    const hit = cache.get(k);
    const age = hit ? Date.now() - hit.at : Infinity;
    if (age < KEY_CACHE_MS) {
      if (age >= KEY_CACHE_MS - REFRESH_AHEAD_MS && !inFlight.has(k)) lookup(k).catch(() => undefined); // the next request retries
      return hit!.ctx;
    }
    return lookup(k);
  };
  /** The request's key and workspace, or the 401/403 the guards answer. */
  const authenticate = async (req: { headers: IncomingHttpHeaders }, scope: Scope): Promise<AuthContext> => {
    const token = bearer(req);
    if (!token) throw new AppError('unauthorized', 'missing bearer token');
    const ctx = await resolve(token);
    if (!ctx) throw new AppError('unauthorized', 'invalid API key');
    if (scope === 'admin' && ctx.scope !== 'admin') throw new AppError('forbidden', 'this endpoint needs an admin-scoped key');
    if (limit) await limit(ctx.keyId);
    return ctx;
  };
  const middleware = (scope: Scope) => (req: Request, _res: Response, next: NextFunction) => {
    authenticate(req, scope).then(
      (ctx) => {
        req.auth = ctx;
        next();
      },
      (err: unknown) => next(err),
    );
  };
  const forget = () => {
    generation++;
    cache.clear();
    inFlight.clear();
  };
  return { admin: middleware('admin'), ingest: middleware('ingest'), authenticate, forget };
}

export function authOf(req: Request): AuthContext {
  if (!req.auth) throw new AppError('unauthorized', 'not authenticated');
  return req.auth;
}
