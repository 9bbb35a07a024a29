import type { Config } from '../config';
import { AppError, ErrorDetail } from '../errors';
import type { Settings } from './schema';

/**
 * The operator's allow-lists of senders (SENDER_DOMAINS, SMS_SENDERS). A workspace admin sets
 * fromEmail and smsFrom; unchecked, any tenant could send as any domain the SMTP relay or the
 * Twilio account may send for (the operator's own, or another tenant's). When a list is set, a
 * sender outside it is a 422; unset, any sender is accepted (the relay's own rules still apply).
 */
export function checkSenders(patch: Partial<Settings>, config: Pick<Config, 'SENDER_DOMAINS' | 'SMS_SENDERS'>): void {
  const errors: ErrorDetail[] = [];
  const domains = config.SENDER_DOMAINS;
  if (domains.length && patch.fromEmail) {
    const domain = patch.fromEmail.slice(patch.fromEmail.lastIndexOf('@') + 1).toLowerCase();
    if (!domains.some((d) => domain === d || domain.endsWith(`.${d}`))) errors.push({ path: 'fromEmail', message: `must be an address at ${domains.join(', ')} (SENDER_DOMAINS)` });
  }
  const senders = config.SMS_SENDERS;
  if (senders.length && patch.smsFrom && !senders.includes(patch.smsFrom.trim())) errors.push({ path: 'smsFrom', message: 'must be one of the senders this installation allows (SMS_SENDERS)' });
  if (errors.length) throw new AppError('unprocessable', 'sender not allowed on this installation', errors);
}
