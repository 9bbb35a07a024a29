import express, { RequestHandler, Router } from 'express';
import { parse as parseCsv } from 'csv-parse/sync';
import { z } from 'zod';
import type { Deps, Guards } from '../deps';
import { AppError, notFound } from '../errors';
import { authOf, workspaceAuth } from '../http/auth';
import { decodeCursor, listQuery, parse, timeIdCursor, byCreated, byId, pageOf } from '../http/validate';
import { uuidOr404 } from '../ids';
import { normalizePhone } from '../normalize';
import { describeOperation } from '../ops/openapi';
import { withRetry } from '../tx';
import { explain } from './explain';
import { fieldList } from './fields';
import { presetList } from './presets';
import { churnRuleNote } from '../predictions/service';
import * as repo from './repo';
import { createSegmentBody, csvQuery, patchSegmentBody, previewBody, snapshotBody } from './schema';
import { membersQuery, validateAndExpand } from './service';

// The OpenAPI document (GET /openapi.json) lists these from the same schemas the handlers parse with.
describeOperation({ method: 'get', path: '/v1/segments/fields', summary: 'Fields a rule can test, with their types and ops', tag: 'Segments', auth: 'admin' });
describeOperation({ method: 'get', path: '/v1/segments/presets', summary: 'Presets, each with its rule', tag: 'Segments', auth: 'admin' });
describeOperation({ method: 'post', path: '/v1/segments/preview', summary: 'Count and sample of a definition, without saving it', tag: 'Segments', auth: 'admin', body: previewBody });
describeOperation({ method: 'post', path: '/v1/segments', summary: 'Create a live segment (definition) or a static one (members)', tag: 'Segments', auth: 'admin', body: createSegmentBody, responses: { 201: 'Created' } });
describeOperation({ method: 'get', path: '/v1/segments', summary: 'List segments', tag: 'Segments', auth: 'admin', query: listQuery });
describeOperation({ method: 'get', path: '/v1/segments/:id', summary: 'A segment', tag: 'Segments', auth: 'admin' });
describeOperation({ method: 'patch', path: '/v1/segments/:id', summary: 'Rename or redefine a segment', tag: 'Segments', auth: 'admin', body: patchSegmentBody });
describeOperation({ method: 'delete', path: '/v1/segments/:id', summary: 'Delete a segment', tag: 'Segments', auth: 'admin', responses: { 204: 'Deleted', 409: 'In use by another segment, a scheduled or sending campaign, or an enabled automation (details name it)' } });
describeOperation({ method: 'get', path: '/v1/segments/:id/count', summary: "A segment's live count", tag: 'Segments', auth: 'admin' });
describeOperation({ method: 'get', path: '/v1/segments/:id/members', summary: "A segment's members (paginated)", tag: 'Segments', auth: 'admin', query: listQuery });
describeOperation({ method: 'get', path: '/v1/segments/:id/explain/:externalId', summary: 'The tree with each node marked matched or not for one customer', tag: 'Segments', auth: 'admin' });
describeOperation({ method: 'post', path: '/v1/segments/:id/snapshot', summary: "Freeze a segment's current members into a new static segment", tag: 'Segments', auth: 'admin', body: snapshotBody, responses: { 201: 'Created' } });

const pageCursor = timeIdCursor;
const memberCursor = z.object({ id: z.string().regex(/^\d{1,19}$/) });

export function segmentRoutes(deps: Deps, guards: Guards): Router {
  const r = Router();
  const now = () => deps.clock.now();
  const segId = (s: string | string[] | undefined) => uuidOr404(typeof s === 'string' ? s : undefined, 'segment');

  r.get('/v1/segments/fields', guards.admin, (_req, res) => void res.json({ data: fieldList() }));
  // likelyToChurn reads churnRisk: when the workspace's last fit made churnRisk by a fallback rule, the preset says which.
  r.get('/v1/segments/presets', guards.admin, async (req, res) => {
    const note = await churnRuleNote(deps.db, authOf(req).workspaceId);
    res.json({ data: presetList().map((p) => (p.name === 'likelyToChurn' && note ? { ...p, ...note } : p)) });
  });

  r.post('/v1/segments/preview', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    const body = parse(previewBody, req.body);
    const e = await validateAndExpand(deps.db, workspaceId, body.definition, 'definition');
    // Count and sample are independent reads: run side by side, as the console waits on both.
    const at = now();
    const [count, sample] = await Promise.all([
      repo.countOf(deps.db, workspaceId, e.node, at),
      repo.membersPage(deps.db, workspaceId, e.node, at, (body.sampleSize ?? 20) - 1),
    ]);
    res.json({ count, sample: sample.slice(0, body.sampleSize ?? 20).map(repo.memberView) });
  });

  r.post('/v1/segments', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    const body = parse(createSegmentBody, req.body);
    if ('definition' in body) {
      const e = await validateAndExpand(deps.db, workspaceId, body.definition, 'definition');
      const row = await repo.insertDynamic(deps.db, workspaceId, body.name, e.source, e.node, e.refs, now());
      return void res.status(201).json(repo.segmentView(row));
    }
    const found = await repo.customerIdsBy(deps.db, workspaceId, 'external_id', body.members);
    const missing = body.members.filter((m) => !found.has(m));
    const row = await withRetry(deps.db, (trx) => repo.insertStatic(trx, workspaceId, body.name, now(), [...found.values()]));
    res.status(201).json({ ...repo.segmentView(row, new Set(found.values()).size), unmatched: missing.slice(0, 1000), unmatchedCount: missing.length });
  });

  r.get('/v1/segments', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    const q = parse(listQuery, req.query, 'query');
    const rows = await repo.listSegments(deps.db, workspaceId, q.limit, decodeCursor(pageCursor, q.cursor));
    const { page, nextCursor } = pageOf(rows, q.limit, byCreated);
    res.json({ data: page.map((x) => repo.segmentView(x)), nextCursor });
  });

  r.get('/v1/segments/:id', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    res.json(repo.segmentView(await repo.getSegment(deps.db, workspaceId, segId(req.params.id))));
  });

  r.patch('/v1/segments/:id', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    const id = segId(req.params.id);
    const body = parse(patchSegmentBody, req.body);
    const row = await withRetry(deps.db, async (trx) => {
      const cur = await repo.getSegment(trx, workspaceId, id);
      const set: Record<string, unknown> = { updated_at: now() };
      if (body.name !== undefined) set.name = body.name;
      if (body.definition !== undefined) {
        if (cur.kind === 'static') throw new AppError('conflict', 'a static segment has no definition', [{ path: 'definition', message: 'static segments are lists' }]);
        const e = await validateAndExpand(trx, workspaceId, body.definition, 'definition', id);
        Object.assign(set, { source: JSON.stringify(e.source), definition: JSON.stringify(e.node), refs: e.refs });
      }
      const [updated] = await trx('segments').where({ id, workspace_id: workspaceId }).update(set).returning('*');
      if (body.definition !== undefined) await repo.refreshDependents(trx, workspaceId, id, now());
      return updated as repo.SegmentRow;
    });
    res.json(repo.segmentView(row));
  });

  r.delete('/v1/segments/:id', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    const id = segId(req.params.id);
    await withRetry(deps.db, (trx) => repo.deleteSegment(trx, workspaceId, id));
    res.status(204).end();
  });

  r.get('/v1/segments/:id/count', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    const row = await repo.getSegment(deps.db, workspaceId, segId(req.params.id));
    res.json({ count: await repo.countOf(deps.db, workspaceId, repo.treeOf(row), now()) });
  });

  r.get('/v1/segments/:id/members', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    const q = parse(listQuery, req.query, 'query');
    const row = await repo.getSegment(deps.db, workspaceId, segId(req.params.id));
    const after = decodeCursor(memberCursor, q.cursor);
    const rows = await repo.membersPage(deps.db, workspaceId, repo.treeOf(row), now(), q.limit, after?.id);
    const { page, nextCursor } = pageOf(rows, q.limit, byId);
    res.json({ data: page.map(repo.memberView), nextCursor });
  });

  r.get('/v1/segments/:id/explain/:externalId', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    const row = await repo.getSegment(deps.db, workspaceId, segId(req.params.id));
    const externalId = String(req.params.externalId);
    const customerId = (await repo.customerIdsBy(deps.db, workspaceId, 'external_id', [externalId])).get(externalId);
    if (!customerId) throw notFound('customer');
    res.json(await explain(deps.db, workspaceId, row, customerId, now()));
  });

  r.post('/v1/segments/:id/snapshot', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    const body = parse(snapshotBody, req.body ?? {});
    const src = await repo.getSegment(deps.db, workspaceId, segId(req.params.id));
    const at = now();
    const name = body.name ?? `${src.name} (snapshot ${at.toISOString()})`;
    const row = await withRetry(deps.db, (trx) => repo.insertStatic(trx, workspaceId, name, at, membersQuery(trx, workspaceId, repo.treeOf(src), at)));
    res.status(201).json(repo.segmentView(row, await repo.staticCount(deps.db, row.id)));
  });

  return r;
}

/**
 * POST /v1/segments/csv?name=...&column=externalId|email|phone with a text/csv body: a static
 * segment from a list. Mounted before the JSON-only guard, with its own auth, since the body is CSV.
 */
export function segmentCsvRoutes(deps: Deps, admin: RequestHandler = workspaceAuth(deps.db).admin): Router {
  const r = Router();
  const query = csvQuery.extend({ column: z.enum(['externalId', 'email', 'phone']).default('externalId') });
  r.post('/v1/segments/csv', admin, express.text({ type: ['text/csv', 'text/plain'], limit: '20mb' }), async (req, res) => {
    const { workspaceId } = authOf(req);
    const q = parse(query, req.query, 'query');
    if (typeof req.body !== 'string') throw new AppError('unsupported_media_type', 'body must be text/csv');
    let records: string[][];
    try {
      records = parseCsv(req.body, { relax_column_count: true, skip_empty_lines: true, trim: true, bom: true });
    } catch (err) {
      throw new AppError('validation_failed', 'body is not valid CSV', [{ path: 'body', message: (err as Error).message.slice(0, 200) }]);
    }
    // The first cell of each row; a header row naming the column is skipped.
    let values = records.map((row) => row[0] ?? '').filter((v) => v.length > 0);
    if (values.length && ['externalid', 'external_id', 'email', 'phone', 'id'].includes(values[0]!.toLowerCase())) values = values.slice(1);
    if (values.length > 200000) throw new AppError('payload_too_large', 'at most 200000 rows');
    const column = q.column === 'externalId' ? 'external_id' : q.column;
    const norm = q.column === 'email' ? values.map((v) => v.toLowerCase()) : q.column === 'phone' ? values.map((v) => normalizePhone(v) ?? v) : values;
    const found = await repo.customerIdsBy(deps.db, workspaceId, column, norm);
    const missing = norm.filter((v) => !found.has(v));
    const row = await withRetry(deps.db, (trx) => repo.insertStatic(trx, workspaceId, q.name, deps.clock.now(), [...new Set(found.values())]));
    res.status(201).json({ ...repo.segmentView(row, new Set(found.values()).size), unmatchedCount: missing.length });
  });
  return r;
}
