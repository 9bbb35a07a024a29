import express, { Request, Response, Router } from 'express';
import twilio from 'twilio';
import type { Deps } from '../deps';
import { AppError } from '../errors';
import { isUuid } from '../ids';
import { describeOperation } from '../ops/openapi';
import { applyInboundKeyword, applySmsStatus, readToken, recordClick, recordOpen, TokenKeys, unsubscribe } from './service';
import { legacyDerivedSecret, signingSecret } from './tokens';
import { legacyLinksBefore } from './repo';
import { confirmPage, invalidPage, unsubscribePage } from './pages';

describeOperation({ method: 'get', path: '/u/:token', summary: 'Unsubscribe page (changes nothing)', tag: 'Public', auth: 'none', responses: { 200: 'HTML page', 400: 'Invalid or expired link' } });
describeOperation({ method: 'post', path: '/u/:token', summary: 'One-click unsubscribe (RFC 8058)', tag: 'Public', auth: 'none', responses: { 200: 'Unsubscribed', 400: 'Invalid or expired link' } });
describeOperation({ method: 'get', path: '/o/:token', summary: 'Open pixel', tag: 'Public', auth: 'none', responses: { 200: '1x1 GIF' } });
describeOperation({ method: 'get', path: '/c/:token', summary: 'Click redirect to a link of the sent message', tag: 'Public', auth: 'none', responses: { 302: 'Redirect' } });
describeOperation({ method: 'post', path: '/webhooks/twilio/status', summary: 'Twilio status callback (X-Twilio-Signature)', tag: 'Public', auth: 'none', responses: { 204: 'Applied', 403: 'Bad signature' } });
describeOperation({ method: 'post', path: '/webhooks/twilio/inbound', summary: 'Twilio inbound SMS: STOP/START keywords (X-Twilio-Signature)', tag: 'Public', auth: 'none', responses: { 200: 'Empty TwiML', 403: 'Bad signature' } });

const PIXEL = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
/**
 * The unsubscribe pages run no script, load nothing and post only to themselves; nobody may
 * frame them (a framed one-click button is a clickjacking target).
 */
const PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>';

/**
 * Endpoints reached from inboxes and from Twilio: no key, no JSON. Mounted before the JSON-only
 * guard; the Twilio routes parse their own form bodies, the unsubscribe POST ignores its body
 * (RFC 8058 sends List-Unsubscribe=One-Click, and nothing in it matters).
 */
export function publicRoutes(deps: Deps) {
  const r = Router();
  let legacy: ReturnType<TokenKeys['legacy']> | undefined;
  const secret: TokenKeys = {
    secret: signingSecret(deps.config),
    previous: deps.config.HARK_SIGNING_SECRET_PREVIOUS,
    // Read once per process, when a token first fails the current key.
    legacy: () =>
      (legacy ??= legacyLinksBefore(deps.db).then(
        (before) => (before ? { secret: legacyDerivedSecret(deps.config.HARK_ADMIN_TOKEN), before } : null),
        (err: unknown) => {
          legacy = undefined;
          throw err;
        },
      )),
  };
  const now = () => deps.clock.now();
  const noStore = (res: Response) => res.setHeader('Cache-Control', 'no-store');

  const page = (res: Response) => {
    noStore(res);
    res.setHeader('Content-Security-Policy', PAGE_CSP);
    res.setHeader('X-Frame-Options', 'DENY');
  };

  r.get('/u/:token', async (req, res) => {
    page(res);
    try {
      await readToken(req.params.token, 'u', secret, now());
    } catch {
      return res.status(400).type('html').send(invalidPage());
    }
    res.type('html').send(unsubscribePage(req.originalUrl));
  });

  r.post('/u/:token', async (req, res) => {
    page(res);
    const p = await readToken(req.params.token, 'u', secret, now());
    await unsubscribe(deps.db, p.m, now());
    if (req.accepts(['html', 'json']) === 'json') return res.json({ unsubscribed: true });
    res.type('html').send(confirmPage());
  });

  r.get('/o/:token', async (req, res) => {
    noStore(res);
    const p = await readToken(req.params.token, 'o', secret, now());
    // HEAD comes from link scanners and proxies, not from a person opening the mail.
    if (req.method !== 'HEAD') await recordOpen(deps.db, p.m, now());
    res.type('gif').send(PIXEL);
  });

  r.get('/c/:token', async (req, res) => {
    noStore(res);
    const p = await readToken(req.params.token, 'c', secret, now());
    if (req.method !== 'HEAD') await recordClick(deps.db, p.m, p.u!, now());
    res.redirect(302, p.u!);
  });

  const form = express.urlencoded({ extended: false, limit: '64kb', parameterLimit: 200 });
  const authToken = deps.config.TWILIO_AUTH_TOKEN;
  const publicBase = deps.config.PUBLIC_URL.replace(/\/+$/, '');
  /** X-Twilio-Signature over the public URL Twilio called (PUBLIC_URL + path and query) and the form fields. */
  const signed = (req: Request) => {
    // Without a Twilio account (production before it is configured, or the built-in inbox) nothing
    // can sign a callback: the endpoints do not exist, rather than checking against a known token.
    if (!authToken || deps.config.SMS_MODE === 'off') throw new AppError('not_found', 'Twilio is not configured');
    const sig = req.header('x-twilio-signature');
    const params = (req.body ?? {}) as Record<string, string>;
    if (!sig || !twilio.validateRequest(authToken, sig, publicBase + req.originalUrl, params)) {
      throw new AppError('forbidden', 'invalid Twilio signature');
    }
    return params;
  };
  const wsParam = (req: Request): string | undefined => {
    const ws = typeof req.query.ws === 'string' ? req.query.ws : undefined;
    return ws && isUuid(ws) ? ws.toLowerCase() : undefined;
  };

  r.post('/webhooks/twilio/status', form, async (req, res) => {
    const params = signed(req);
    const m = typeof req.query.m === 'string' && /^\d{1,19}$/.test(req.query.m) ? req.query.m : undefined;
    if (params.MessageSid && params.MessageStatus) {
      await applySmsStatus(deps.db, { messageSid: params.MessageSid, status: params.MessageStatus, errorCode: params.ErrorCode || undefined, messageId: m, workspaceId: wsParam(req) }, now());
    }
    res.status(204).end();
  });

  r.post('/webhooks/twilio/inbound', form, async (req, res) => {
    const params = signed(req);
    if (params.From && typeof params.Body === 'string') {
      await applyInboundKeyword(deps.db, { messageSid: params.MessageSid || undefined, from: params.From, to: params.To ?? '', body: params.Body, workspaceId: wsParam(req) }, now());
    }
    res.type('text/xml').send(EMPTY_TWIML);
  });

  return r;
}
