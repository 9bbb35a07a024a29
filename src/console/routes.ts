import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import express, { RequestHandler, Router } from 'express';
import type { Deps, Guards } from '../deps';
import { authOf } from '../http/auth';
import { describeOperation } from '../ops/openapi';
import { overviewFigures } from './repo';

describeOperation({ method: 'get', path: '/app', summary: 'The marketer console (static single-page app)', tag: 'Console', auth: 'none' });
describeOperation({ method: 'get', path: '/v1/overview', summary: 'Headline figures: customers, purchases per day (30 days), campaigns and automations by status', tag: 'Console', auth: 'admin' });

/**
 * The console's JavaScript is built by `npm run build:ui` into dist/console. From compiled code
 * (dist/src/console) that is ../../console; from the TypeScript sources (tests) ../../dist/console.
 */
export function consoleDir(): string | undefined {
  return [resolve(__dirname, '../../console'), resolve(__dirname, '../../dist/console')].find((d) => existsSync(resolve(d, 'index.html')));
}

/**
 * The console holds an admin key in the page, so the page is locked down: scripts only from this
 * origin (no inline, no eval), never framed, no referrer, nothing cross-origin. Inline styles are
 * allowed so an email preview (iframe srcdoc, sandboxed without scripts) renders as it will be sent.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "frame-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "object-src 'none'",
  "frame-ancestors 'none'",
].join('; ');

const securityHeaders: RequestHandler = (_req, res, next) => {
  res.setHeader('Content-Security-Policy', CONSOLE_CSP);
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  res.setHeader('Permissions-Policy', 'camera=(), microphone=(), geolocation=(), payment=()');
  res.setHeader('Strict-Transport-Security', 'max-age=31536000');
  next();
};

/** Static console at /app, mounted before the JSON-only guard (these are GETs of files). */
export function consoleRoutes(): Router {
  const r = Router();
  const sendIndex: RequestHandler = (_req, res) => {
    const dir = consoleDir();
    // The page is small and names hashed assets: never cache it, so a deploy is picked up at once.
    res.setHeader('Cache-Control', 'no-store');
    if (!dir) {
      res.status(503).type('text').send('The console is not built: run `npm run build` (or `npm run build:ui`).');
      return;
    }
    res.sendFile(resolve(dir, 'index.html'));
  };
  r.use('/app', securityHeaders);
  r.get(['/app', '/app/', '/app/index.html'], sendIndex);
  r.use('/app/assets', (req, res, next) => {
    const dir = consoleDir();
    if (!dir) return next();
    // File names carry a content hash, so they can be cached for good.
    return express.static(resolve(dir, 'assets'), { index: false, immutable: true, maxAge: '365d', fallthrough: true })(req, res, next);
  });
  return r;
}

/** Figures for the Overview page that the rest of the API does not give in one call. */
export function overviewRoutes(deps: Deps, guards: Guards): Router {
  const r = Router();
  r.get('/v1/overview', guards.admin, async (req, res) => {
    res.json(await overviewFigures(deps.db, authOf(req).workspaceId, deps.clock.now()));
  });
  return r;
}
