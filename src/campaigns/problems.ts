import type { Knex } from 'knex';

type Conn = Knex | Knex.Transaction;

export interface CampaignProblem {
  code: string;
  message: string;
  /** When the oldest of these messages first failed (messages.error_since). */
  since: string | null;
  /** How many of the campaign's messages it holds back or failed. */
  messages: number;
}

/**
 * Why a campaign cannot deliver, read from its messages' errors: rows waiting for a retry
 * (queued or sending with an error) and rows that failed or whose fate is unknown. Errors are
 * the channels' classified text ("SMTP ECONNECTION: connection problem", "Twilio 503/...: temporary
 * failure"), never a provider's raw message, so they carry no address.
 */
export async function campaignProblems(db: Conn, campaignId: string): Promise<CampaignProblem[]> {
  const { rows } = await db.raw(
    `SELECT error, status IN ('queued', 'sending') AS retrying, count(*)::int AS n, min(error_since) AS since
       FROM messages
      WHERE campaign_id = ? AND error IS NOT NULL AND status IN ('queued', 'sending', 'failed', 'unknown')
      GROUP BY 1, 2`,
    [campaignId],
  );
  const byCode = new Map<string, CampaignProblem & { biggest: number }>();
  for (const r of rows as Array<{ error: string; retrying: boolean; n: number; since: Date | null }>) {
    const { code, message } = explain(r.error, r.retrying);
    const since = r.since ? new Date(r.since).toISOString() : null;
    const p = byCode.get(code);
    if (!p) byCode.set(code, { code, message, since, messages: r.n, biggest: r.n });
    else {
      p.messages += r.n;
      if (since && (!p.since || since < p.since)) p.since = since;
      if (r.n > p.biggest) Object.assign(p, { message, biggest: r.n });
    }
  }
  return [...byCode.values()].sort((a, b) => b.messages - a.messages).map(({ biggest: _b, ...p }) => p);
}

/** A stable code and a sentence an operator can act on, from a message's classified error. */
export function explain(error: string, retrying: boolean): { code: string; message: string } {
  const then = retrying ? 'hark keeps retrying' : 'these messages failed';
  if (/^SMTP (ECONNECTION|ECONNREFUSED|ETIMEDOUT|ESOCKET|EDNS|ECONNRESET)\b/.test(error)) {
    return { code: 'smtp_unreachable', message: `The mail server (SMTP_URL) does not answer: ${error}; ${then}.` };
  }
  if (/^SMTP EAUTH\b/.test(error)) return { code: 'smtp_auth_failed', message: `The mail server refused hark's login (check SMTP_URL's user and password): ${error}; ${then}.` };
  if (/^SMTP (ETLS|EPROTOCOL)\b/.test(error)) return { code: 'smtp_protocol', message: `The mail server and hark do not agree on the connection (TLS?): ${error}; ${then}.` };
  if (/^SMTP 4\d\d\b/.test(error)) return { code: 'smtp_deferred', message: `The mail server defers these messages: ${error}; ${then}.` };
  if (/^SMTP 5\d\d\b/.test(error)) return { code: 'smtp_rejected', message: `The mail server rejected these messages: ${error}.` };
  if (/^Twilio (401|403)\b/.test(error)) return { code: 'sms_not_authorised', message: `Twilio refused hark's credentials (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN): ${error}; ${then}.` };
  if (/^Twilio (429|5\d\d)\b/.test(error) || /^Twilio (E[A-Z]+|network error)/.test(error)) {
    return { code: 'sms_provider_unavailable', message: `Twilio does not answer or is overloaded: ${error}; ${then}.` };
  }
  if (/^Twilio \d{3}/.test(error) || /^twilio /.test(error)) return { code: 'sms_rejected', message: `Twilio rejected these messages: ${error}.` };
  if (/^SMS is off\b/.test(error)) return { code: 'sms_off', message: error };
  if (/no smsFrom/.test(error)) return { code: 'no_sms_from', message: 'The workspace has no sending number: set smsFrom in the settings.' };
  if (/^could not render/.test(error)) return { code: 'render_failed', message: `The template does not render for some customers: ${error}.` };
  if (/sender thread|worker stopped|answer lost|EANSWERLOST/i.test(error)) return { code: 'outcome_unknown', message: `A worker stopped or an answer was lost during the provider call; these messages may have left and are not resent: ${error}.` };
  return { code: retrying ? 'send_retrying' : 'send_failed', message: `${error}; ${then}.` };
}
