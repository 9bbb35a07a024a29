import { randomBytes } from 'node:crypto';
import MimeNode from 'nodemailer/lib/mime-node';
import { encodeWords, foldLines } from 'nodemailer/lib/mime-funcs';
import type { OutgoingEmail } from './types';

/**
 * A dispatch email as one finished RFC 5322 message, for nodemailer's `raw` (smtp.ts). The
 * message hark sends has one shape (a text and an html alternative, a few headers), and sending
 * it through nodemailer's general composer costs more CPU than the SMTP conversation: a MIME
 * tree, a stream pipeline with an AbortController per message, a JS quoted-printable encoder, and
 * the message written to the socket in a dozen small chunks (each a system call and, on
 * loopback, the receiver's wake-up). The header values are encoded with nodemailer's own
 * functions (encoded words, folding; the From and Reply-To addresses through its MimeNode, once
 * per distinct value), the bodies are sent as they are when they are 7-bit text of short lines
 * and in base64 (Node's native encoder) otherwise.
 * Messages outside the fast shape (an address nodemailer would have to rewrite, a line break in a
 * header) are not composed here: `composeEmail` returns null and smtp.ts hands them to
 * nodemailer's composer as before.
 */
export interface ComposedEmail {
  raw: Buffer;
  envelope: { from: string; to: string[] };
  messageId: string;
}

/** A bare ASCII address that nodemailer would write and address unchanged (no display name, no IDN). */
const SIMPLE_ADDRESS = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/;
const HEADER_KEY = /^[A-Za-z0-9-]+$/;
/** Text that may go out as 7bit: printable ASCII, tabs and line breaks, no line over 76 characters. */
const NOT_7BIT = /[^\t\r\n\x20-\x7e]/;
const LONG_LINE = /[^\r\n]{77}/;

/** An address header exactly as nodemailer's MimeNode writes it, and the envelope address it implies. */
type AddressHeader = { line: string; address: string };
const addressHeaders = new Map<string, AddressHeader | null>();

function addressHeader(key: 'From' | 'Reply-To', value: string): AddressHeader | null {
  const cacheKey = `${key}\n${value}`;
  let hit = addressHeaders.get(cacheKey);
  if (hit !== undefined) return hit;
  const node = new MimeNode();
  node.setHeader(key, value);
  const encoded = node.encodeHeaderValue(key, value);
  const address = key === 'From' ? node.getEnvelope().from : '';
  hit = encoded && !/[\r\n]/.test(encoded) && (key !== 'From' || address) ? { line: foldLines(`${key}: ${encoded}`, 76), address: address || '' } : null;
  // Workspaces' from and reply-to addresses: a handful per worker. Bounded all the same.
  if (addressHeaders.size > 1000) addressHeaders.clear();
  addressHeaders.set(cacheKey, hit);
  return hit;
}

const textHeader = (key: string, value: string) => foldLines(`${key}: ${encodeWords(value, 'Q', 52)}`, 76);

function part(type: string, body: string): string {
  if (!NOT_7BIT.test(body) && !LONG_LINE.test(body)) {
    return `Content-Type: ${type}; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n${body.replace(/\r?\n/g, '\r\n')}`;
  }
  const b64 = Buffer.from(body, 'utf8').toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 76) lines.push(b64.slice(i, i + 76));
  return `Content-Type: ${type}; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n${lines.join('\r\n')}`;
}

const boundaryBase = randomBytes(8).toString('hex');
let boundaryCount = 0;

/** The message as one buffer, or null when it is not of the shape composed here (see above). */
export function composeEmail(m: OutgoingEmail, messageId: string, date = new Date()): ComposedEmail | null {
  if (!SIMPLE_ADDRESS.test(m.to)) return null;
  const from = addressHeader('From', m.from);
  const replyTo = m.replyTo ? addressHeader('Reply-To', m.replyTo) : undefined;
  if (!from || replyTo === null) return null;
  if (/[\r\n]/.test(m.subject)) return null;
  const headers = [from.line];
  if (replyTo) headers.push(replyTo.line);
  headers.push(`To: ${m.to}`);
  // As nodemailer does: a header whose value is blank is left out.
  if (m.subject.trim()) headers.push(textHeader('Subject', m.subject));
  headers.push(`Message-ID: ${messageId}`, `Date: ${date.toUTCString().replace(/GMT/, '+0000')}`);
  for (const [key, value] of Object.entries(m.headers ?? {})) {
    if (typeof value !== 'string' || !HEADER_KEY.test(key) || /[\r\n]/.test(value) || /^(from|to|cc|bcc|reply-to|subject|message-id|date|mime-version|content-.*)$/i.test(key)) return null;
    if (value.trim()) headers.push(textHeader(key, value));
  }
  const text = part('text/plain', m.text);
  const html = part('text/html', m.html);
  // Base64 and 7-bit parts of short lines: the boundary cannot be in them unless a 7-bit line is it.
  let boundary = `--_hark-${boundaryBase}-${(boundaryCount = (boundaryCount + 1) % 1e9)}`;
  while (text.includes(boundary) || html.includes(boundary)) boundary += '_';
  headers.push('MIME-Version: 1.0', `Content-Type: multipart/alternative;\r\n boundary="${boundary}"`);
  const raw = `${headers.join('\r\n')}\r\n\r\n--${boundary}\r\n${text}\r\n--${boundary}\r\n${html}\r\n--${boundary}--\r\n`;
  return { raw: Buffer.from(raw, 'utf8'), envelope: { from: from.address, to: [m.to] }, messageId };
}
