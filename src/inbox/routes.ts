import { NextFunction, Request, Response, Router } from 'express';
import type { Deps, Guards } from '../deps';
import { authOf } from '../http/auth';
import { decodeCursor, parse, byId, pageOf } from '../http/validate';
import { uuidOr404 } from '../ids';
import { describeOperation } from '../ops/openapi';
import { requireCampaign } from '../campaigns/repo';
import { listInbox, InboxRow } from './repo';
import { inboxCursor, inboxQuery, testSendBody } from './schema';
import { sendTest, templateForTest, TestSendDeps } from './service';

describeOperation({ method: 'get', path: '/v1/inbox', summary: 'The built-in inbox: what hark delivered with SMTP_URL or TWILIO_API_URL set to inbox:', tag: 'Trying hark out', auth: 'admin', query: inboxQuery });
describeOperation({ method: 'post', path: '/v1/templates/:id/test', summary: 'Send a test of a template to 1-5 addresses ([Test] subject; counted nowhere)', tag: 'Trying hark out', auth: 'admin', body: testSendBody, responses: { 202: 'Sent', 422: 'Address does not fit the channel', 429: 'Hourly test-send limit reached' } });
describeOperation({ method: 'post', path: '/v1/campaigns/:id/test', summary: "Send a test of a campaign's template to 1-5 addresses", tag: 'Trying hark out', auth: 'admin', body: testSendBody, responses: { 202: 'Sent', 422: 'Address does not fit the channel', 429: 'Hourly test-send limit reached' } });

export function inboxView(r: InboxRow) {
  return {
    id: String(r.id),
    messageId: r.message_id === null ? null : String(r.message_id),
    test: r.test,
    channel: r.channel,
    to: r.to_address,
    from: r.from_address,
    subject: r.subject,
    html: r.html,
    text: r.text,
    headers: r.headers,
    ...(r.channel === 'sms' ? { encoding: r.encoding, segments: r.segments } : {}),
    receivedAt: new Date(r.received_at).toISOString(),
  };
}

/** A 429 from the test-send limit carries Retry-After, like the API's other limits. */
const retryAfter = (err: unknown, res: Response) => {
  const s = (err as { retryAfter?: number }).retryAfter;
  if (typeof s === 'number') res.setHeader('Retry-After', String(s));
};

export function inboxRoutes(deps: Deps, guards: Guards) {
  const r = Router();
  const testDeps: TestSendDeps = { db: deps.db, redis: deps.redis, config: deps.config, clock: deps.clock, queuePrefix: deps.queues.prefix };

  r.get('/v1/inbox', guards.admin, async (req, res) => {
    const q = parse(inboxQuery, req.query, 'query');
    const before = decodeCursor(inboxCursor, q.cursor);
    const rows = await listInbox(deps.db, authOf(req).workspaceId, { channel: q.channel, limit: q.limit + 1, beforeId: before?.id });
    const { page, nextCursor } = pageOf(rows, q.limit, byId);
    res.json({ data: page.map(inboxView), nextCursor });
  });

  const test = (templateOf: (req: Request, workspaceId: string) => Promise<string>) => async (req: Request, res: Response, next: NextFunction) => {
    try {
      const { workspaceId } = authOf(req);
      const body = parse(testSendBody, req.body ?? {});
      const template = await templateForTest(deps.db, workspaceId, await templateOf(req, workspaceId));
      const data = await sendTest(testDeps, workspaceId, template, body);
      res.status(202).json({ data });
    } catch (err) {
      retryAfter(err, res);
      next(err);
    }
  };
  r.post('/v1/templates/:id/test', guards.admin, test(async (req) => uuidOr404(req.params.id as string, 'template')));
  r.post('/v1/campaigns/:id/test', guards.admin, test(async (req, workspaceId) => (await requireCampaign(deps.db, workspaceId, uuidOr404(req.params.id as string, 'campaign'))).template_id));
  return r;
}
