/**
 * SMS encoding and segment count (3GPP TS 23.038 / 23.040). A message that fits the GSM 03.38
 * alphabet goes as GSM-7: 160 septets in one part, 153 per part when concatenated; extension
 * characters cost two septets and are never split across parts. Anything else goes as UCS-2:
 * 70 UTF-16 units in one part, 67 per part, surrogate pairs never split.
 */
const GSM_BASIC = new Set(
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà',
);
const GSM_EXTENSION = new Set('\f^{}\\[~]|€');

export type SmsEncoding = 'GSM-7' | 'UCS-2';

export function smsEncoding(text: string): SmsEncoding {
  for (const ch of text) if (!GSM_BASIC.has(ch) && !GSM_EXTENSION.has(ch)) return 'UCS-2';
  return 'GSM-7';
}

/** Units each character costs: septets for GSM-7, UTF-16 code units for UCS-2. */
function costs(text: string, encoding: SmsEncoding): number[] {
  const out: number[] = [];
  for (const ch of text) out.push(encoding === 'GSM-7' ? (GSM_EXTENSION.has(ch) ? 2 : 1) : ch.length);
  return out;
}

export function smsSegments(text: string, encoding: SmsEncoding = smsEncoding(text)): number {
  const units = costs(text, encoding);
  const total = units.reduce((a, b) => a + b, 0);
  const single = encoding === 'GSM-7' ? 160 : 70;
  const part = encoding === 'GSM-7' ? 153 : 67;
  if (total <= single) return 1;
  let segments = 1;
  let used = 0;
  for (const u of units) {
    if (used + u > part) {
      segments += 1;
      used = 0;
    }
    used += u;
  }
  return segments;
}

export const SMS_OPT_OUT = 'Reply STOP to opt out';

/** Every marketing SMS tells the recipient how to opt out, unless the body already does. */
export function withOptOut(text: string): string {
  const trimmed = text.replace(/\s+$/, '');
  return /\bSTOP\b/i.test(trimmed) ? trimmed : `${trimmed}\n${SMS_OPT_OUT}`;
}
