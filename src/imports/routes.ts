import { RequestHandler, Router } from 'express';
import { z } from 'zod';
import type { Deps, Guards } from '../deps';
import { AppError, notFound } from '../errors';
import { authOf, workspaceAuth } from '../http/auth';
import { decodeCursor, listQuery, parse, byCreated, pageOf } from '../http/validate';
import { isUuid } from '../ids';
import { describeOperation } from '../ops/openapi';
import { enqueueImport } from './jobs';
import * as repo from './repo';
import { importQuery } from './schema';
import { receiveFile } from './upload';
import { importView } from './view';

describeOperation({ method: 'post', path: '/v1/imports', summary: 'Upload a CSV of customers or purchases (text/csv body, up to 200 MB)', tag: 'Imports', auth: 'admin', query: importQuery, responses: { 202: 'Queued' } });
describeOperation({ method: 'get', path: '/v1/imports', summary: 'List imports, newest first', tag: 'Imports', auth: 'admin', query: listQuery });
describeOperation({ method: 'get', path: '/v1/imports/:id', summary: "An import's status, counts, progress and first errors", tag: 'Imports', auth: 'admin' });

const CSV_TYPES = ['text/csv', 'text/plain', 'application/csv', 'application/vnd.ms-excel'];
const pageCursor = z.object({ t: z.string().datetime({ offset: true }), id: z.string().uuid() });

/**
 * POST /v1/imports reads its body itself (a stream into Postgres, never a whole string), so it
 * is mounted before the app's JSON-only guard. The key is checked before a byte of the body is
 * read, and a Content-Length over the limit is refused before reading too.
 */
export function importUploadRoutes(deps: Deps, admin: RequestHandler = workspaceAuth(deps.db).admin): Router {
  const r = Router();
  const max = deps.config.IMPORT_MAX_BYTES;
  r.post('/v1/imports', admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    // A refused upload closes the connection: the rest of the body is not worth reading.
    const refuse = (err: AppError) => {
      res.setHeader('Connection', 'close');
      throw err;
    };
    if (Number(req.headers['content-length'] ?? 0) > max) refuse(new AppError('payload_too_large', `an import file may be at most ${max} bytes`));
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (!CSV_TYPES.includes(type)) refuse(new AppError('unsupported_media_type', 'the body must be text/csv'));
    if (req.headers['content-encoding'] && req.headers['content-encoding'] !== 'identity') refuse(new AppError('unsupported_media_type', 'compressed bodies are not accepted'));
    let q;
    try {
      q = parse(importQuery, req.query, 'query');
    } catch (err) {
      return refuse(err as AppError);
    }
    const options = { mapping: q.mapping ?? {}, dateFormat: q.dateFormat ?? null, timezone: q.timezone ?? (await repo.workspaceTimezone(deps.db, workspaceId)), encoding: q.encoding };
    const id = await repo.createImport(deps.db, workspaceId, q.kind, options, deps.clock.now());
    try {
      await receiveFile(deps.db, id, req, q.kind, options, max);
    } catch (err) {
      if (err instanceof AppError) refuse(err);
      throw err;
    }
    await enqueueImport(deps.queues, id);
    res.status(202).json({ id, kind: q.kind, status: 'queued' });
  });
  return r;
}

export function importRoutes(deps: Deps, guards: Guards): Router {
  const r = Router();
  r.get('/v1/imports', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    const q = parse(listQuery, req.query, 'query');
    const rows = await repo.listImports(deps.db, workspaceId, q.limit, decodeCursor(pageCursor, q.cursor));
    const { page, nextCursor } = pageOf(rows, q.limit, byCreated);
    res.json({ data: page.map(importView), nextCursor });
  });
  r.get('/v1/imports/:id', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    const id = String(req.params.id);
    const row = isUuid(id) ? await repo.getImport(deps.db, workspaceId, id) : undefined;
    if (!row || row.status === 'uploading') throw notFound('import');
    res.json(importView(row));
  });
  return r;
}
