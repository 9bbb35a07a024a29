import type { Knex } from 'knex';
import { notFound } from '../errors';
import { isUuid } from '../ids';

export interface TemplateRow {
  id: string;
  workspace_id: string;
  name: string;
  channel: 'email' | 'sms';
  subject: string | null;
  body: string;
  format: 'mjml' | 'html' | 'text';
  created_at: Date;
  updated_at: Date;
}

type Conn = Knex | Knex.Transaction;

/** The template, if it belongs to this workspace; an id of another workspace is a 404 like any unknown id. */
export async function loadTemplate(db: Conn, workspaceId: string, templateId: string): Promise<TemplateRow> {
  if (!isUuid(templateId)) throw notFound('template');
  const row = await db('templates').where({ workspace_id: workspaceId, id: templateId.toLowerCase() }).first();
  if (!row) throw notFound('template');
  return row as TemplateRow;
}

/** The row locked for an update (patch re-validates against the current body). */
export async function lockTemplate(trx: Knex.Transaction, workspaceId: string, id: string): Promise<TemplateRow | undefined> {
  return trx('templates').where({ workspace_id: workspaceId, id }).forUpdate().first();
}

export async function customerIdByExternalId(db: Conn, workspaceId: string, externalId: string): Promise<string | undefined> {
  const row = await db('customers').where({ workspace_id: workspaceId, external_id: externalId }).first('id');
  return row ? String(row.id) : undefined;
}

export async function insertTemplate(
  db: Conn,
  row: Pick<TemplateRow, 'workspace_id' | 'name' | 'channel' | 'subject' | 'body' | 'format'>,
  now: Date,
): Promise<TemplateRow> {
  const [created] = await db('templates').insert({ ...row, created_at: now, updated_at: now }).returning('*');
  return created as TemplateRow;
}

export async function updateTemplate(
  db: Conn,
  workspaceId: string,
  id: string,
  patch: Partial<Pick<TemplateRow, 'name' | 'subject' | 'body' | 'format'>>,
  now: Date,
): Promise<TemplateRow> {
  const [row] = await db('templates')
    .where({ workspace_id: workspaceId, id })
    .update({ ...patch, updated_at: now })
    .returning('*');
  if (!row) throw notFound('template');
  return row as TemplateRow;
}

/** Keyset page over (created_at, id), newest first. */
export async function listTemplates(db: Conn, workspaceId: string, limit: number, after?: { t: string; id: string }): Promise<TemplateRow[]> {
  const q = db('templates').where({ workspace_id: workspaceId });
  if (after) q.andWhereRaw('(created_at, id) < (?::timestamptz, ?::uuid)', [after.t, after.id]);
  return (await q.orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(limit + 1)) as TemplateRow[];
}

/** Campaigns keep a foreign key to their template: one in use cannot be deleted. */
export async function templateInUse(db: Conn, workspaceId: string, id: string): Promise<boolean> {
  const row = await db('campaigns')
    .where({ workspace_id: workspaceId })
    .andWhere((q) => q.where({ template_id: id }).orWhereRaw('variants @> ?::jsonb', [JSON.stringify([{ templateId: id }])]))
    .first('id');
  if (row) return true;
  // An automation's send step names its template inside the steps array; deleting it would make
  // every later send of that step fail at render time.
  const step = await db('automations')
    .where({ workspace_id: workspaceId })
    .whereRaw('steps @> ?::jsonb', [JSON.stringify([{ templateId: id }])])
    .first('id');
  return !!step;
}

export async function deleteTemplate(db: Conn, workspaceId: string, id: string): Promise<void> {
  const n = await db('templates').where({ workspace_id: workspaceId, id }).del();
  if (!n) throw notFound('template');
}
