import { Router } from 'express';
import type { Deps, Guards } from '../app';
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

  r.put('/v1/customers/:externalId', guards.ingest, async (req, res) => {
    const { workspaceId } = authOf(req);
    const body = parse(customerFields, req.body ?? {});
    const result = await repo.upsertCustomer(deps.db, workspaceId, extId(req.params.externalId), body, deps.clock.now());
    const row = await repo.requireByExternalId(deps.db, workspaceId, extId(req.params.externalId));
    res.status(result.created ? 201 : 200).json(customerView(row, await repo.getStatsRow(deps.db, row.id), deps.clock.now()));
  });

  r.post('/v1/customers/batch', guards.ingest, async (req, res) => {
    const { workspaceId } = authOf(req);
    const { customers } = parse(batchCustomersBody, req.body);
    let created = 0;
    let updated = 0;
    const errors: { index: number; error: unknown }[] = [];
    const now = deps.clock.now();
    for (const [index, raw] of customers.entries()) {
      const row = batchCustomerRow.safeParse(raw);
      if (!row.success) {
        errors.push({ index, error: firstIssue(row.error) });
        continue;
      }
      const { externalId, ...fields } = row.data;
      try {
        const result = await repo.upsertCustomer(deps.db, workspaceId, externalId, fields, now);
        if (result.created) created++;
        else updated++;
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        errors.push({ index, error: { code: err.code, message: err.message, details: err.details } });
      }
    }
    res.json({ created, updated, errors });
  });

  r.get('/v1/customers/:externalId', guards.admin, async (req, res) => {
    const row = await repo.requireByExternalId(deps.db, authOf(req).workspaceId, extId(req.params.externalId));
    res.json(customerView(row, await repo.getStatsRow(deps.db, row.id), deps.clock.now()));
  });

  r.delete('/v1/customers/:externalId', guards.admin, async (req, res) => {
    await repo.eraseCustomer(deps.db, authOf(req).workspaceId, extId(req.params.externalId));
    res.status(204).end();
  });

  r.get('/v1/customers/:externalId/export', guards.admin, async (req, res) => {
    const { workspaceId } = authOf(req);
    const row = await repo.requireByExternalId(deps.db, workspaceId, extId(req.params.externalId));
    const held = await repo.exportCustomer(deps.db, workspaceId, row.id);
    res.json({ customer: customerView(row, await repo.getStatsRow(deps.db, row.id), deps.clock.now()), ...held, exportedAt: deps.clock.now().toISOString() });
  });
  return r;
}
