import type { Config } from '../config';
import { AppError } from '../errors';
import { createProviderChannels, ProviderSpec } from './select';
import { dkimFromConfig, SMTP_POOL_CONNECTIONS } from './smtp';
import { createThreadedChannels, ThreadedChannels } from './threaded';
import type { TwilioChannelOptions } from './twilio';

/** The Twilio side of a provider spec from config: null when SMS is off (see config.ts, SMS_MODE). */
export function twilioSpec(config: Pick<Config, 'SMS_MODE' | 'TWILIO_ACCOUNT_SID' | 'TWILIO_AUTH_TOKEN' | 'TWILIO_API_URL'>): TwilioChannelOptions | null {
  if (config.SMS_MODE === 'off') return null;
  return { accountSid: config.TWILIO_ACCOUNT_SID ?? '', authToken: config.TWILIO_AUTH_TOKEN ?? '', apiUrl: config.TWILIO_API_URL };
}

/** A 422 for anything that would send SMS while SMS is off (production without a Twilio account). */
export function requireSms(config: Pick<Config, 'SMS_MODE'>, path: string): void {
  if (config.SMS_MODE !== 'off') return;
  const message = 'SMS is off: no Twilio account is configured (set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN)';
  throw new AppError('unprocessable', message, [{ path, message }]);
}

/**
 * The providers from config (SMTP_URL, TWILIO_*; either may be the built-in inbox). Their calls
 * run in the main thread, or with DISPATCH_SENDER=thread in a sender thread (src/channels/threaded.ts).
 * The thread was there for nodemailer's composition (0.4 ms of CPU an email, paid by a second
 * core); composed by src/channels/mime.ts an email costs 0.15 ms, and the thread's second isolate
 * (about 30 MB of RSS) no longer pays for itself (issue 21: README, dispatch bench).
 */
export function channelsFromConfig(config: Config): ThreadedChannels {
  const spec: ProviderSpec = {
    smtp: { url: config.SMTP_URL, pool: true, maxConnections: SMTP_POOL_CONNECTIONS, dkim: dkimFromConfig(config) },
    twilio: twilioSpec(config),
    databaseUrl: config.DATABASE_URL,
  };
  if (config.DISPATCH_SENDER === 'thread') return createThreadedChannels(spec);
  const { email, sms } = createProviderChannels(spec);
  return { email, sms, warm: async () => undefined, terminate: async () => undefined };
}
