import { createHash } from 'node:crypto';
import type { Db } from '../db';
import { AppError } from '../errors';
import { recordMessageEvents } from '../messages/events';
import { normalizePhone } from '../normalize';
import { suppress, unsuppress } from '../suppressions/repo';
import { withRetry } from '../tx';
import * as repo from './repo';
import { LEGACY_LINK_GRACE_SECONDS, TokenKind, TokenPayload, verifyToken } from './tokens';

/** The key that signs links now, and the legacy one that verifies older links for a while, if any. */
export interface TokenKeys {
  secret: string;
  /** HARK_SIGNING_SECRET_PREVIOUS: verifies links signed before a rotation. */
  previous?: string;
  legacy(): Promise<{ secret: string; before: Date } | null>;
}

/**
 * A genuine token of this kind, or a 400. A token the current key does not verify may be a link
 * sent before the upgrade, signed under the key derived from the operator token: it is honoured
 * when it says it was issued before the upgrade and the upgrade is less than 60 days old (links
 * in mail already sent keep working for the time the contract promises), and never after.
 */
export async function readToken(token: string | undefined, kind: TokenKind, keys: TokenKeys, now: Date): Promise<TokenPayload> {
  for (const secret of keys.previous ? [keys.secret, keys.previous] : [keys.secret]) {
    const p = verifyToken(token ?? '', secret, now);
    if (p && p.k === kind) return p;
  }
  const legacy = await keys.legacy();
  if (legacy && now.getTime() < legacy.before.getTime() + LEGACY_LINK_GRACE_SECONDS * 1000) {
    const q = verifyToken(token ?? '', legacy.secret, now);
    if (q && q.k === kind && q.issuedAt < legacy.before) return q;
  }
  throw new AppError('invalid_token', 'this link is invalid or has expired');
}

/**
 * RFC 8058 one-click unsubscribe: consent off for the message's channel, the address on the
 * suppression list, the message marked. Idempotent: a second POST changes nothing and still succeeds.
 */
export async function unsubscribe(db: Db, messageId: string, now: Date): Promise<void> {
  await withRetry(db, async (trx) => {
    const m = await repo.findMessage(trx, messageId);
    if (!m) throw new AppError('invalid_token', 'this link no longer refers to a message');
    if (m.customer_id) await repo.setConsent(trx, m.workspace_id, [m.customer_id], m.channel, 'unsubscribed', now);
    const address = m.address ?? (m.customer_id ? await repo.customerAddress(trx, m.workspace_id, m.customer_id, m.channel) : null);
    if (address) await suppress(trx, m.workspace_id, m.channel, address, 'unsubscribed');
    if (await repo.markFirst(trx, m.id, 'unsubscribed_at', now)) {
      await recordMessageEvents(trx, [{ workspaceId: m.workspace_id, messageId: m.id, type: 'unsubscribed', occurredAt: now }]);
    }
  });
}

/** First open of a message: opened_at, an email_open event on the customer, a message event. */
export async function recordOpen(db: Db, messageId: string, now: Date): Promise<void> {
  await db.transaction(async (trx) => {
    const m = await repo.findMessage(trx, messageId);
    if (!m || !(await repo.markFirst(trx, m.id, 'opened_at', now))) return;
    if (m.customer_id) {
      await repo.insertCustomerEvent(trx, {
        workspaceId: m.workspace_id,
        customerId: m.customer_id,
        eventId: `hark:open:${m.id}`,
        type: 'email_open',
        occurredAt: now,
        properties: { messageId: m.id, campaignId: m.campaign_id, automationId: m.automation_id },
      });
    }
    await recordMessageEvents(trx, [{ workspaceId: m.workspace_id, messageId: m.id, type: 'opened', occurredAt: now }]);
  });
}

/** A click: clicked_at on the first, and one email_click event and message event per distinct link. */
export async function recordClick(db: Db, messageId: string, url: string, now: Date): Promise<void> {
  await db.transaction(async (trx) => {
    const m = await repo.findMessage(trx, messageId);
    if (!m) return;
    await repo.markFirst(trx, m.id, 'clicked_at', now);
    const urlKey = createHash('sha256').update(url).digest('base64url').slice(0, 22);
    const fresh = m.customer_id
      ? await repo.insertCustomerEvent(trx, {
          workspaceId: m.workspace_id,
          customerId: m.customer_id,
          eventId: `hark:click:${m.id}:${urlKey}`,
          type: 'email_click',
          occurredAt: now,
          properties: { url, messageId: m.id, campaignId: m.campaign_id, automationId: m.automation_id },
        })
      : false;
    if (fresh) await recordMessageEvents(trx, [{ workspaceId: m.workspace_id, messageId: m.id, type: 'clicked', occurredAt: now, data: { url } }]);
  });
}

/** Twilio error codes after which the number must not be messaged again. */
const SUPPRESSING_ERRORS = new Set(['21211', '21610', '21614']);

export async function applySmsStatus(
  db: Db,
  p: { messageSid: string; status: string; errorCode?: string; messageId?: string; workspaceId?: string },
  now: Date,
): Promise<number> {
  const to = p.status === 'delivered' || p.status === 'read' ? 'delivered' : p.status === 'failed' || p.status === 'undelivered' ? 'failed' : p.status === 'sent' ? 'sent' : null;
  if (!to) return 0; // queued/accepted/sending/scheduled: dispatch owns those states
  return withRetry(db, async (trx) => {
    const where = { providerId: p.messageSid, messageId: p.messageId, workspaceId: p.workspaceId };
    const changed = await repo.advanceStatus(trx, where, to, now, to === 'failed' ? `twilio ${p.status}${p.errorCode ? ` ${p.errorCode}` : ''}` : undefined);
    if (to === 'failed' && p.errorCode && SUPPRESSING_ERRORS.has(p.errorCode)) {
      for (const m of changed) if (m.address) await suppress(trx, m.workspace_id, 'sms', m.address, p.errorCode === '21610' ? 'sms_stop' : 'invalid_number');
    }
    if (to !== 'sent') {
      await recordMessageEvents(
        trx,
        changed.map((m) => ({ workspaceId: m.workspace_id, messageId: m.id, type: to, occurredAt: now, data: p.errorCode ? { errorCode: p.errorCode } : {} })),
      );
    }
    return changed.length;
  });
}

const STOP_WORDS = new Set(['STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT']);
const START_WORDS = new Set(['START', 'UNSTOP']);

export function keywordOf(body: string): 'stop' | 'start' | null {
  const w = body.trim().toUpperCase();
  return STOP_WORDS.has(w) ? 'stop' : START_WORDS.has(w) ? 'start' : null;
}

/**
 * Inbound STOP/START for the sender number. Which workspaces: the one named in the webhook URL
 * (?ws=, for a number configured per workspace), else every workspace whose settings.smsFrom is
 * the number the reply was sent to: carriers block at number level, so a STOP to a shared number
 * means all of its senders.
 */
export async function applyInboundKeyword(db: Db, p: { messageSid?: string; from: string; to: string; body: string; workspaceId?: string }, now: Date) {
  const keyword = keywordOf(p.body);
  if (!keyword) return { keyword, workspaces: 0 };
  const phone = normalizePhone(p.from);
  if (!phone) return { keyword, workspaces: 0 };
  return withRetry(db, async (trx) => {
    // Once per MessageSid, in the transaction that applies it: Twilio's retries and a replayed
    // capture of a signed request (a STOP after the person texted START) change nothing.
    if (p.messageSid && !(await repo.firstInbound(trx, p.messageSid, now))) return { keyword, workspaces: 0, duplicate: true };
    const workspaces = p.workspaceId
      ? (await repo.workspaceExists(trx, p.workspaceId)) ? [p.workspaceId] : []
      : await repo.workspacesBySmsFrom(trx, normalizePhone(p.to) ?? p.to);
    for (const ws of workspaces) {
      const customers = await repo.customersByPhone(trx, ws, phone);
      if (keyword === 'stop') {
        await repo.setConsent(trx, ws, customers, 'sms', 'unsubscribed', now);
        await suppress(trx, ws, 'sms', phone, 'sms_stop');
      } else {
        await repo.setConsent(trx, ws, customers, 'sms', 'subscribed', now);
        await unsuppress(trx, ws, 'sms', phone, ['sms_stop']);
      }
    }
    return { keyword, workspaces: workspaces.length };
  });
}
