import type { Db } from '../db';
import { AppError, notFound } from '../errors';
import { buildRenderContext } from './context';
import { CompiledTemplate, compileTemplate, htmlEngine, textEngine } from './compile';
import { sampleScope } from './context';
import { renderMessage } from './render';
import * as repo from './repo';
import type { TemplateRow } from './repo';
import type { CreateTemplate, PatchTemplate } from './schema';

type Fields = Pick<TemplateRow, 'channel' | 'subject' | 'body' | 'format'>;

/** Format when not given: MJML when the body is an <mjml> document, HTML for other email, text for SMS. */
export function defaultFormat(channel: 'email' | 'sms', body: string): TemplateRow['format'] {
  if (channel === 'sms') return 'text';
  return /^\s*<mjml[\s>]/i.test(body) ? 'mjml' : 'html';
}

/** Channel rules, then a full compile: what is stored is known to render. */
async function validated(f: Fields): Promise<Fields> {
  if (f.channel === 'email') {
    if (!f.subject) throw new AppError('validation_failed', 'an email template needs a subject', [{ path: 'subject', message: 'required for email templates' }]);
    if (f.format === 'text') throw new AppError('validation_failed', 'email templates are mjml or html', [{ path: 'format', message: 'must be mjml or html for email' }]);
  } else {
    if (f.subject) throw new AppError('validation_failed', 'SMS templates have no subject', [{ path: 'subject', message: 'not allowed for sms templates' }]);
    if (f.format !== 'text') throw new AppError('validation_failed', 'SMS templates are text', [{ path: 'format', message: 'must be text for sms' }]);
  }
  trialRender(await compileTemplate(f));
  return f;
}

/**
 * Parsing is not enough: `{% include %}` (no file system here) or a bad filter argument only
 * fails when rendered. A render with sample values at save time turns those into a 422 now
 * rather than a failed message at send time.
 */
function trialRender(c: CompiledTemplate): void {
  const scope = { ...sampleScope(new Date(0)), workspace: { name: 'Sample', postalAddress: '1 Sample Street' }, unsubscribeUrl: 'https://example.com/u/x' };
  const parts = c.channel === 'sms' ? [['body', textEngine, c.body] as const] : [['subject', textEngine, c.subject] as const, ['body', htmlEngine, c.html] as const];
  for (const [path, engine, tpl] of parts) {
    try {
      engine.renderSync(tpl, scope);
    } catch (err) {
      throw new AppError('unprocessable', `template does not render: ${(err as Error).message}`, [{ path, message: (err as Error).message }]);
    }
  }
}

export async function createTemplate(db: Db, workspaceId: string, input: CreateTemplate, now: Date): Promise<TemplateRow> {
  const f = await validated({
    channel: input.channel,
    subject: input.subject ?? null,
    body: input.body,
    format: input.format ?? defaultFormat(input.channel, input.body),
  });
  return repo.insertTemplate(db, { workspace_id: workspaceId, name: input.name, ...f }, now);
}

export async function patchTemplate(db: Db, workspaceId: string, id: string, patch: PatchTemplate, now: Date): Promise<TemplateRow> {
  return db.transaction(async (trx) => {
    const current = await repo.lockTemplate(trx, workspaceId, id);
    if (!current) throw notFound('template');
    const body = patch.body ?? current.body;
    const format = patch.format ?? (patch.body !== undefined ? defaultFormat(current.channel, body) : current.format);
    const f = await validated({ channel: current.channel, subject: patch.subject === undefined ? current.subject : patch.subject, body, format });
    return repo.updateTemplate(trx, workspaceId, id, { ...(patch.name ? { name: patch.name } : {}), subject: f.subject, body: f.body, format: f.format }, now);
  });
}

export async function removeTemplate(db: Db, workspaceId: string, id: string): Promise<void> {
  await repo.loadTemplate(db, workspaceId, id);
  if (await repo.templateInUse(db, workspaceId, id)) throw new AppError('conflict', 'template is used by a campaign or an automation');
  await repo.deleteTemplate(db, workspaceId, id);
}

async function customerIdOf(db: Db, workspaceId: string, externalId: string): Promise<string> {
  const id = await repo.customerIdByExternalId(db, workspaceId, externalId);
  if (!id) throw notFound('customer');
  return id;
}

/** What the template renders to, for one customer or for sample values; links are placeholders. */
export async function previewTemplate(db: Db, workspaceId: string, id: string, customerExternalId: string | undefined, publicUrl: string, now: Date) {
  const t = await repo.loadTemplate(db, workspaceId, id);
  const customerId = customerExternalId ? await customerIdOf(db, workspaceId, customerExternalId) : null;
  const ctx = await buildRenderContext(db, workspaceId, customerId, now);
  const r = await renderMessage(t, ctx, { unsubscribeUrl: `${publicUrl.replace(/\/+$/, '')}/u/preview` });
  return r.channel === 'email' ? { subject: r.subject, html: r.html, text: r.text } : { text: r.text, encoding: r.encoding, segments: r.segments };
}

export function templateView(t: TemplateRow) {
  return {
    id: t.id,
    name: t.name,
    channel: t.channel,
    subject: t.subject,
    body: t.body,
    format: t.format,
    createdAt: new Date(t.created_at).toISOString(),
    updatedAt: new Date(t.updated_at).toISOString(),
  };
}
