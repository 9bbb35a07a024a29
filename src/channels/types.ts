/**
 * The one small interface every provider sits behind (after Dittofeed's destinations/*):
 * dispatch speaks to a Channel, tests swap in a real local SMTP server or Twilio stand-in.
 */
export interface OutgoingEmail {
  messageId: string;
  to: string;
  from: string;
  replyTo?: string;
  subject: string;
  html: string;
  text: string;
  headers: Record<string, string>;
  /** Set by test sends, which have no message row (the built-in inbox files them under it). */
  workspaceId?: string;
}

export interface OutgoingSms {
  messageId: string;
  to: string;
  from: string;
  body: string;
  statusCallback?: string;
  /** Set by test sends, which have no message row (the built-in inbox files them under it). */
  workspaceId?: string;
}

export interface Channel<M> {
  send(m: M): Promise<{ providerId: string }>;
  close(): Promise<void>;
}

/**
 * Code of a ChannelError whose request reached the provider's side (it was written) and whose
 * answer was lost (timeout, connection cut): the message may have left, so it is marked
 * 'unknown' and never resent.
 */
export const ANSWER_LOST = 'EANSWERLOST';

/**
 * A provider's refusal, classified once here so that dispatch never parses provider errors:
 * `permanent` means a retry cannot help (fail the message), `suppress` means the address itself
 * is bad or opted out (add it to the suppression list). `code` is the provider's own code.
 */
export class ChannelError extends Error {
  constructor(
    message: string,
    readonly permanent: boolean,
    readonly suppress: boolean,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'ChannelError';
  }
}
