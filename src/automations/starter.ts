import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Db } from '../db';
import { AppError } from '../errors';
import { createTemplate, templateView } from '../templates/service';
import { templateByName } from './repo';

/**
 * Starter templates ship as files in templates/ (listed in templates/starter.json) so that they
 * can be read, edited and version-controlled like any other source; POST /v1/templates/starter
 * creates them in a workspace.
 */
const manifest = z.object({
  templates: z.array(
    z.object({
      key: z.string(),
      name: z.string(),
      channel: z.enum(['email', 'sms']),
      format: z.enum(['mjml', 'html', 'text']),
      subject: z.string().optional(),
      file: z.string().regex(/^[\w.-]+$/),
    }),
  ),
});
export type StarterTemplate = z.infer<typeof manifest>['templates'][number] & { body: string };

export const starterBody = z.strictObject({ keys: z.array(z.string().min(1).max(100)).min(1).max(50).optional() });

/** templates/ sits at the repository root: found by walking up, so it works from src/ and from dist/src/. */
function templatesDir(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'templates', 'starter.json');
    if (existsSync(candidate)) return path.dirname(candidate);
    if (path.dirname(dir) === dir) throw new Error('templates/starter.json not found');
  }
}

let cache: StarterTemplate[] | undefined;

export function starterTemplates(): StarterTemplate[] {
  if (!cache) {
    const dir = templatesDir();
    const m = manifest.parse(JSON.parse(readFileSync(path.join(dir, 'starter.json'), 'utf8')));
    cache = m.templates.map((t) => ({ ...t, body: readFileSync(path.join(dir, t.file), 'utf8') }));
  }
  return cache;
}

/**
 * Creates the chosen starter templates (all by default). A template of the same name already in
 * the workspace is returned as it is, so running this twice creates nothing new.
 */
export async function createStarterTemplates(db: Db, workspaceId: string, keys: string[] | undefined, now: Date) {
  const all = starterTemplates();
  const unknown = (keys ?? []).filter((k) => !all.some((t) => t.key === k));
  if (unknown.length) {
    throw new AppError('unprocessable', `unknown starter template: ${unknown.join(', ')}`, [
      { path: 'keys', message: `known keys: ${all.map((t) => t.key).join(', ')}` },
    ]);
  }
  const chosen = keys ? all.filter((t) => keys.includes(t.key)) : all;
  const out = [];
  for (const t of chosen) {
    const existing = await templateByName(db, workspaceId, t.name, t.channel);
    const row = existing ?? (await createTemplate(db, workspaceId, { name: t.name, channel: t.channel, subject: t.subject ?? null, body: t.body, format: t.format }, now));
    out.push({ key: t.key, created: !existing, ...templateView(row) });
  }
  return out;
}
