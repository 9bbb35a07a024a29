import type { Db } from '../db';
import { bindings } from '../db';

/** LIKE's wildcards in user text are literal: escaped with the default escape character. */
const likeEscape = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

export interface SearchRow extends Record<string, any> {
  id: string;
}

/**
 * GET /v1/customers: newest first (by id, which grows with creation), keyset-paginated on id.
 * `q` matches an externalId, email or phone by prefix (customers_search_* text_pattern_ops
 * indexes, migration 0015) or a first or last name by case-insensitive substring (pg_trgm GIN
 * indexes when installed). Each branch of the OR is one index's question, so Postgres can answer
 * with a BitmapOr over them and sort the few matches, or, for a q that matches most customers,
 * walk (workspace_id, id) backwards and stop at the page; both beat a scan at a million rows.
 * A phone is matched in E.164 with or without its +, spaces and dashes ignored ("1 512 555" finds
 * +1512555...); a national number without its country code is not (no index could answer it).
 */
export async function searchCustomers(db: Db, workspaceId: string, q: string | undefined, limit: number, beforeId?: string): Promise<SearchRow[]> {
  const where: string[] = ['c.workspace_id = ?'];
  const args: unknown[] = [workspaceId];
  const text = q?.trim();
  if (text) {
    const any: string[] = ['c.external_id LIKE ?', 'c.email LIKE ?', 'c.first_name ILIKE ?', 'c.last_name ILIKE ?'];
    const prefix = `${likeEscape(text)}%`;
    args.push(prefix, `${likeEscape(text.toLowerCase())}%`, `%${likeEscape(text)}%`, `%${likeEscape(text)}%`);
    const digits = text.replace(/[\s().-]/g, '');
    if (/^\+?\d+$/.test(digits)) {
      any.push('c.phone LIKE ?');
      args.push(`${digits.startsWith('+') ? digits : `+${digits}`}%`);
    }
    where.push(`(${any.join(' OR ')})`);
  }
  if (beforeId) {
    where.push('c.id < ?');
    args.push(beforeId);
  }
  const { rows } = await db.raw(
    `SELECT c.*, s.purchase_count, s.total_spent, s.last_purchase_at, s.lead_score, s.churn_risk
     FROM customers c LEFT JOIN customer_stats s ON s.customer_id = c.id AND s.workspace_id = c.workspace_id
     WHERE ${where.join(' AND ')} ORDER BY c.id DESC LIMIT ?`,
    bindings([...args, limit + 1]),
  );
  return rows as SearchRow[];
}
