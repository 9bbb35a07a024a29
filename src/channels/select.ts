import { INBOX_URL } from '../config';
import type { InboxChannels, InboxSource } from './inbox';
import { createSmtpChannel, SmtpChannelOptions } from './smtp';
import { createTwilioChannel, TwilioChannelOptions } from './twilio';
import { Channel, ChannelError, OutgoingEmail, OutgoingSms } from './types';

/** What the providers are, as plain data (it crosses into the sender thread). */
export interface ProviderSpec {
  /** url `inbox:` is the built-in inbox. */
  smtp: SmtpChannelOptions;
  /** apiUrl `inbox:` is the built-in inbox; null: SMS is off (production without a Twilio account). */
  twilio: TwilioChannelOptions | null;
  /** For the inbox when it runs where no pool is at hand (the sender thread). */
  databaseUrl?: string;
}

export const SMS_OFF = 'ESMSOFF';

/** SMS with no provider: every send is refused for good (API routes refuse SMS campaigns and steps first, 422). */
const smsOff = (): Channel<OutgoingSms> => ({
  async send() {
    throw new ChannelError('SMS is off: no Twilio account is configured (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN)', true, false, SMS_OFF);
  },
  async close() {},
});

/** The email and SMS channels a spec names: SMTP or the inbox, Twilio, the inbox or off. */
export function createProviderChannels(spec: ProviderSpec, inboxSource?: InboxSource): { email: Channel<OutgoingEmail>; sms: Channel<OutgoingSms> } {
  let inbox: InboxChannels | undefined;
  const theInbox = () => {
    const source = inboxSource ?? (spec.databaseUrl ? { databaseUrl: spec.databaseUrl } : undefined);
    if (!source) throw new Error('the built-in inbox needs a database');
    // Loaded only when used: it brings knex and the status-callback code into the sender thread.
    return (inbox ??= (require('./inbox') as typeof import('./inbox')).createInboxChannels(source));
  };
  const email = spec.smtp.url === INBOX_URL ? theInbox().email : createSmtpChannel(spec.smtp);
  const sms = !spec.twilio ? smsOff() : spec.twilio.apiUrl === INBOX_URL ? theInbox().sms : createTwilioChannel(spec.twilio);
  return { email, sms };
}
