import pino from 'pino';

/**
 * Structured logs, object first. Personal data never goes in: the redact list is a last line of
 * defence for fields that might slip into a logged object, not a licence to log them.
 */
export function createLogger(level: string) {
  return pino({
    level,
    base: { service: 'hark' },
    redact: {
      paths: ['email', 'phone', '*.email', '*.phone', 'body', '*.body', 'req.headers.authorization', 'to', '*.to'],
      censor: '[redacted]',
    },
  });
}

export type Logger = ReturnType<typeof createLogger>;
