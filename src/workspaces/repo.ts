import type { Db } from '../db';
import { generateKey, Scope } from '../http/auth';
import { notFound } from '../errors';
import { defaultSettings, Settings } from './schema';

export interface Workspace {
  id: string;
  name: string;
  timezone: string;
  currency: string;
  settings: Settings;
}

export async function createWorkspace(db: Db, input: { name: string; timezone?: string; currency?: string }) {
  return db.transaction(async (trx) => {
    const timezone = input.timezone ?? 'UTC';
    const [ws] = await trx('workspaces')
      .insert({ name: input.name, timezone, currency: input.currency ?? 'USD', settings: defaultSettings(timezone) })
      .returning(['id', 'name']);
    const key = await insertKey(trx, ws.id, 'default admin key', 'admin');
    return { id: ws.id as string, name: ws.name as string, apiKey: key.key };
  });
}

export async function insertKey(db: Db, workspaceId: string, name: string, scope: Scope) {
  const k = generateKey(scope);
  const [row] = await db('api_keys')
    .insert({ workspace_id: workspaceId, name, scope, key_hash: k.hash, key_prefix: k.prefix })
    .returning(['id', 'name', 'scope', 'created_at']);
  return { id: row.id as string, name: row.name as string, scope: row.scope as Scope, key: k.key, createdAt: row.created_at as Date };
}

export async function listKeys(db: Db, workspaceId: string) {
  const rows = await db('api_keys').where({ workspace_id: workspaceId }).orderBy('created_at').select('id', 'name', 'scope', 'key_prefix', 'created_at');
  return rows.map((r) => ({ id: r.id, name: r.name, scope: r.scope, prefix: r.key_prefix, createdAt: r.created_at }));
}

export async function deleteKey(db: Db, workspaceId: string, id: string) {
  const n = await db('api_keys').where({ workspace_id: workspaceId, id }).del();
  if (!n) throw notFound('API key');
}

export async function getWorkspace(db: Db, id: string): Promise<Workspace> {
  const row = await db('workspaces').where({ id }).first();
  if (!row) throw notFound('workspace');
  return {
    id: row.id,
    name: row.name,
    timezone: row.timezone,
    currency: row.currency,
    settings: { ...defaultSettings(row.timezone), ...row.settings, timezone: row.timezone },
  };
}

export async function updateSettings(db: Db, id: string, patch: Partial<Settings>): Promise<Settings> {
  return db.transaction(async (trx) => {
    const row = await trx('workspaces').where({ id }).forUpdate().first();
    if (!row) throw notFound('workspace');
    const next = { ...defaultSettings(row.timezone), ...row.settings, ...patch };
    const timezone = patch.timezone ?? row.timezone;
    await trx('workspaces').where({ id }).update({ settings: { ...next, timezone }, timezone });
    return { ...next, timezone };
  });
}
