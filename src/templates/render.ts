import { convert } from 'html-to-text';
import { AppError } from '../errors';
import { compiledFor, htmlEngine, textEngine, textOptions } from './compile';
import type { RenderContext } from './context';
import type { TemplateRow } from './repo';
import { smsEncoding, smsSegments, SmsEncoding, withOptOut } from './sms';

export { buildRenderContext, buildRenderContexts, type RenderContext } from './context';
export { loadTemplate, type TemplateRow } from './repo';

export interface RenderedEmail {
  channel: 'email';
  subject: string;
  html: string;
  text: string;
  headers: Record<string, string>;
}

export interface RenderedSms {
  channel: 'sms';
  text: string;
  encoding: SmsEncoding;
  segments: number;
}

export interface RenderLinks {
  unsubscribeUrl: string;
  openPixelUrl?: string;
  clickUrl?: (url: string) => string;
}

const escapeHtml = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
const unescapeHtml = (s: string) =>
  s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

function insertBeforeBodyEnd(html: string, fragment: string): string {
  const i = html.search(/<\/body\s*>/i);
  return i < 0 ? html + fragment : html.slice(0, i) + fragment + html.slice(i);
}

/** Tracked links: every http(s) href except the unsubscribe link goes through /c/ with its URL signed in. */
function trackLinks(html: string, links: RenderLinks): string {
  const clickUrl = links.clickUrl;
  if (!clickUrl) return html;
  return html.replace(/(<a\b[^>]*?\shref\s*=\s*)(["'])(https?:\/\/[^"']+)\2/gi, (whole, pre: string, q: string, href: string) => {
    const url = unescapeHtml(href);
    if (url === links.unsubscribeUrl) return whole;
    return `${pre}${q}${escapeHtml(clickUrl(url))}${q}`;
  });
}

function render(engine: typeof htmlEngine, tpl: Parameters<typeof htmlEngine.renderSync>[0], scope: object, what: string): string {
  try {
    return String(engine.renderSync(tpl, scope));
  } catch (err) {
    throw new AppError('unprocessable', `template does not render (${what}): ${(err as Error).message}`, [{ path: what, message: (err as Error).message }]);
  }
}

/**
 * One message from a compiled template. Marketing-law furniture is guaranteed here, not left to
 * the author: a visible unsubscribe link and the postal address (a footer is appended when the
 * rendered body lacks them), RFC 8058 one-click headers, and for SMS an opt-out line.
 */
export async function renderMessage(template: TemplateRow, ctx: RenderContext, links: RenderLinks): Promise<RenderedEmail | RenderedSms> {
  const compiled = await compiledFor(template);
  if (compiled.channel === 'sms') {
    // Read only if the body uses it: publicLinks signs a link on its first read.
    const smsScope = Object.defineProperty({ ...ctx }, 'unsubscribeUrl', { get: () => links.unsubscribeUrl, enumerable: true });
    const text = withOptOut(render(textEngine, compiled.body, smsScope, 'body'));
    const encoding = smsEncoding(text);
    return { channel: 'sms', text, encoding, segments: smsSegments(text, encoding) };
  }

  const scope = { ...ctx, unsubscribeUrl: links.unsubscribeUrl };
  const subject = render(textEngine, compiled.subject, scope, 'subject').replace(/[\r\n]+/g, ' ').trim();
  let html = render(htmlEngine, compiled.html, scope, 'body');
  let text = compiled.text ? render(textEngine, compiled.text, scope, 'body') : convert(html, textOptions);

  const postal = typeof ctx.workspace.postalAddress === 'string' ? ctx.workspace.postalAddress.trim() : '';
  const unsubInHtml = html.includes(escapeHtml(links.unsubscribeUrl));
  const postalInHtml = !postal || html.includes(escapeHtml(postal));
  if (!unsubInHtml || !postalInHtml) {
    const parts: string[] = [];
    if (!postalInHtml) parts.push(escapeHtml(postal).replace(/\n/g, '<br>'));
    if (!unsubInHtml) parts.push(`<a href="${escapeHtml(links.unsubscribeUrl)}" style="color:#666666">Unsubscribe</a>`);
    html = insertBeforeBodyEnd(
      html,
      `<div class="hark-footer" style="font-family:Arial,sans-serif;font-size:12px;color:#666666;text-align:center;padding:16px">${parts.join('<br>')}</div>`,
    );
  }
  const textParts: string[] = [];
  if (postal && !text.includes(postal)) textParts.push(postal);
  if (!text.includes(links.unsubscribeUrl)) textParts.push(`Unsubscribe: ${links.unsubscribeUrl}`);
  if (textParts.length) text = `${text.replace(/\s+$/, '')}\n\n--\n${textParts.join('\n')}\n`;

  html = trackLinks(html, links);
  if (links.openPixelUrl) {
    html = insertBeforeBodyEnd(html, `<img src="${escapeHtml(links.openPixelUrl)}" width="1" height="1" alt="" style="display:block;width:1px;height:1px;border:0">`);
  }
  return {
    channel: 'email',
    subject,
    html,
    text,
    headers: {
      'List-Unsubscribe': `<${links.unsubscribeUrl}>`,
      'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
    },
  };
}
