import type { Config } from '../config';
import { AppError } from '../errors';
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
