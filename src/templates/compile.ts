import { Liquid, Template } from 'liquidjs';
import { convert, HtmlToTextOptions } from 'html-to-text';
import { AppError } from '../errors';
import type { TemplateRow } from './repo';
import { compileMjml } from './mjml-pool';

/**
 * Compiling is the expensive part (MJML takes tens of milliseconds); rendering a compiled
 * template for one customer is a Liquid pass over pre-parsed templates. So MJML runs once per
 * template version, with the Liquid tags still in it, and the plain-text part is also derived
 * once (html-to-text over the compiled HTML, Liquid tags intact) so that no message pays for
 * an HTML-to-text conversion.
 */
const base = {
  strictFilters: true,
  strictVariables: false,
  ownPropertyOnly: true,
  // No file system: include/render/layout look up this empty map and fail.
  templates: {},
  // What one parse or render may cost. A render runs on the event loop of the API (previews, test
  // sends, the sample render at save time) or of a dispatch worker (each message), so it is held
  // to 200 ms: a template that needs more for one recipient could not be sent to an audience at
  // any useful rate (100,000 recipients would be 5.5 hours of CPU), and is refused at save time.
  parseLimit: 1_000_000,
  renderLimit: 200,
  memoryLimit: 50_000_000,
};
/** HTML bodies: every output is escaped; `| raw` opts out deliberately. */
export const htmlEngine = new Liquid({ ...base, outputEscape: 'escape' });
/** Subjects, text parts and SMS: no escaping. */
export const textEngine = new Liquid(base);

export const textOptions: HtmlToTextOptions = {
  // No wrapping: a wrapped line could split a Liquid tag, and mail clients wrap anyway.
  wordwrap: false,
  selectors: [
    { selector: 'a', options: { hideLinkHrefIfSameAsText: true } },
    { selector: 'img', format: 'skip' },
    { selector: 'h1', options: { uppercase: false } },
    { selector: 'h2', options: { uppercase: false } },
    { selector: 'h3', options: { uppercase: false } },
    { selector: 'h4', options: { uppercase: false } },
    { selector: 'h5', options: { uppercase: false } },
    { selector: 'h6', options: { uppercase: false } },
    { selector: 'table', format: 'block' },
    { selector: 'tr', format: 'block' },
    { selector: 'td', format: 'block' },
    { selector: 'th', format: 'block' },
  ],
};

export interface CompiledEmail {
  channel: 'email';
  subject: Template[];
  html: Template[];
  /** null: derive the text part per message (the once-derived one did not parse as Liquid). */
  text: Template[] | null;
}

export interface CompiledSms {
  channel: 'sms';
  body: Template[];
}

export type CompiledTemplate = CompiledEmail | CompiledSms;

type Source = Pick<TemplateRow, 'channel' | 'subject' | 'body' | 'format'>;

function liquid(engine: Liquid, source: string, path: string): Template[] {
  try {
    return engine.parse(source);
  } catch (err) {
    throw new AppError('unprocessable', `template does not compile: ${(err as Error).message}`, [{ path, message: (err as Error).message }]);
  }
}

// MJML (with juice, cheerio, js-beautify, lodash: ~600 modules, ~15 MB of heap) runs in a thread
// of its own (mjml-pool.ts), started at the first MJML compile: a dispatch worker sending HTML
// templates never loads it, and a large document never blocks the event loop.
async function mjmlToHtml(body: string): Promise<string> {
  const result = await compileMjml(body);
  if (result.errors?.length) {
    const details = result.errors.slice(0, 20).map((e) => ({ path: 'body', message: `line ${e.line}: ${e.message}` }));
    throw new AppError('unprocessable', `MJML does not compile: ${details[0]!.message}`, details);
  }
  if (!/<body[\s>]/i.test(result.html)) throw new AppError('unprocessable', 'MJML does not compile: no <mj-body>', [{ path: 'body', message: 'no <mj-body>' }]);
  return result.html;
}

/** Compiles a template; any problem is a 422 naming it. Used at creation (validation) and by the cache. */
export async function compileTemplate(t: Source): Promise<CompiledTemplate> {
  if (t.channel === 'sms') return { channel: 'sms', body: liquid(textEngine, t.body, 'body') };
  // Liquid first on the source, so a Liquid error is reported against what the author wrote.
  liquid(htmlEngine, t.body, 'body');
  const subject = liquid(textEngine, t.subject ?? '', 'subject');
  const htmlSource = t.format === 'mjml' ? await mjmlToHtml(t.body) : t.body;
  const html = liquid(htmlEngine, htmlSource, 'body');
  let text: Template[] | null = null;
  try {
    text = textEngine.parse(convert(htmlSource, textOptions));
  } catch {
    text = null;
  }
  return { channel: 'email', subject, html, text };
}

const CACHE_MAX = 500;
const cache = new Map<string, Promise<CompiledTemplate>>();

/** Compiled once per template version (id + updated_at); a small LRU keeps memory bounded. */
export function compiledFor(t: TemplateRow): Promise<CompiledTemplate> {
  const key = `${t.id}:${new Date(t.updated_at).getTime()}`;
  let hit = cache.get(key);
  if (hit) {
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  hit = compileTemplate(t);
  hit.catch(() => cache.delete(key));
  cache.set(key, hit);
  if (cache.size > CACHE_MAX) cache.delete(cache.keys().next().value!);
  return hit;
}
