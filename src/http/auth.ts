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
 * deleted key stops working within KEY_CACHE_MS.
 */
export function workspaceAuth(db: Db, limit?: ((keyId: string) => Promise<void>) | null) {
  const KEY_CACHE_MS = 5000;
  const cache = new Map<string, CachedKey>();
  const resolve = async (token: string): Promise<AuthContext | null> => {
    // One-shot hashing: a Hash object per request cost several times as much, on every request.
    const k = hash('sha256', token, 'hex');
    const hit = cache.get(k);
    if (hit && Date.now() - hit.at < KEY_CACHE_MS) return hit.ctx;
    const row = await db('api_keys').where({ key_hash: Buffer.from(k, 'hex') }).first('id', 'workspace_id', 'scope');
    const ctx = row ? { workspaceId: row.workspace_id, keyId: row.id, scope: row.scope as Scope } : null;
    if (cache.size > 10000) cache.clear();
    cache.set(k, { ctx, at: Date.now() });
    return ctx;
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
  return { admin: middleware('admin'), ingest: middleware('ingest'), authenticate, forget: () => cache.clear() };
}

export function authOf(req: Request): AuthContext {
  if (!req.auth) throw new AppError('unauthorized', 'not authenticated');
  return req.auth;
}
