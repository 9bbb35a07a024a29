import { Router } from 'express';
import type { Deps, Guards } from '../deps';
import { authOf } from '../http/auth';
import { firstIssue, parse } from '../http/validate';
import { describeOperation } from '../ops/openapi';
import { AppError } from '../errors';
import * as repo from './repo';
import { batchCustomerRow, batchCustomersBody, customerFields, externalIdSchema } from './schema';
import { customerView } from './view';

describeOperation({ method: 'put', path: '/v1/customers/:externalId', summary: 'Create or update a customer', tag: 'Customers', auth: 'ingest', body: customerFields, responses: { 200: 'Updated', 201: 'Created' } });
describeOperation({ method: 'post', path: '/v1/customers/batch', summary: 'Upsert up to 1000 customers', tag: 'Customers', auth: 'ingest', body: batchCustomersBody });
describeOperation({ method: 'get', path: '/v1/customers/:externalId', summary: 'A customer with stats', tag: 'Customers', auth: 'admin' });
describeOperation({ method: 'delete', path: '/v1/customers/:externalId', summary: 'Erase a customer', tag: 'Customers', auth: 'admin', responses: { 204: 'Erased' } });
describeOperation({ method: 'get', path: '/v1/customers/:externalId/export', summary: 'Everything held about a customer', tag: 'Customers', auth: 'admin' });

export function customerRoutes(deps: Deps, guards: Guards) {
  const r = Router();
  const extId = (raw: unknown) => parse(externalIdSchema, raw, 'externalId');
  const view = async (workspaceId: string, row: Record<string, any>) =>
    customerView(row, await repo.getStatsRow(deps.db, row.id), deps.clock.now(), await repo.suppressionOf(deps.db, workspaceId, row));

  r.put('/v1/customers/:externalId', guards.ingest, async (req, res) => {
    const { workspaceId } = authOf(req);
    const externalId = extId(req.params.externalId);
    const fields = parse(customerFields, req.body ?? {});
    const [result] = await repo.upsertCustomers(deps.db, workspaceId, [{ externalId, fields }], deps.clock.now());
    // An ingest key writes and never reads: a stolen till key must not enumerate profiles.
    if (authOf(req).scope === 'ingest') return void res.status(result!.created ? 201 : 200).json({ id: String(result!.id), externalId });
    const row = await repo.requireByExternalId(deps.db, workspaceId, externalId);
    res.status(result!.created ? 201 : 200).json(await view(workspaceId, row));
  });

  r.post('/v1/customers/batch', guards.ingest, async (req, res) => {
    const { workspaceId } = authOf(req);
    const { customers } = parse(batchCustomersBody, req.body);
    const good: repo.UpsertRow[] = [];
    const errors: { index: number; error: unknown }[] = [];
    for (const [index, raw] of customers.entries()) {
      const row = batchCustomerRow.safeParse(raw);
      if (!row.success) {
        errors.push({ index, error: firstIssue(row.error) });
        continue;
      }
      const { externalId, ...fields } = row.data;
      try {
        repo.toColumns(fields);
        good.push({ externalId, fields });
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        errors.push({ index, error: { code: err.code, message: err.message, details: err.details } });
      }
    }
    const results = good.length ? await repo.upsertCustomers(deps.db, workspaceId, good, deps.clock.now()) : [];
    const created = results.filter((x) => x.created).length;
    res.json({ created, updated: results.length - created, errors });
  });

  r.get('/v1/customers/:externalId', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    res.json(await view(workspaceId, await repo.requireByExternalId(deps.db, workspaceId, extId(req.params.externalId))));
  });

  r.delete('/v1/customers/:externalId', guards.admin, async (req, res) => {
    await repo.eraseCustomer(deps.db, authOf(req).workspaceId, extId(req.params.externalId));
    res.status(204).end();
  });

  r.get('/v1/customers/:externalId/export', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    const row = await repo.requireByExternalId(deps.db, workspaceId, extId(req.params.externalId));
    const held = await repo.exportCustomer(deps.db, workspaceId, row);
    res.json({ customer: await view(workspaceId, row), ...held, exportedAt: deps.clock.now().toISOString() });
  });
  return r;
}
