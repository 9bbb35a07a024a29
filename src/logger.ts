import pino from 'pino';

/**
 * Structured logs, object first. Personal data never goes in: the redact list is a last line of
 * defence for fields that might slip into a logged object, not a licence to log them.
 * `pretty` (development): one readable line per entry (pino-pretty, in this thread, synchronously)
 * instead of JSON lines, which a log collector wants and a person at a terminal does not.
 */
export function createLogger(level: string, opts: { pretty?: boolean } = {}) {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'hark' },
    redact: {
      paths: ['email', 'phone', '*.email', '*.phone', 'body', '*.body', 'req.headers.authorization', 'to', '*.to'],
      censor: '[redacted]',
    },
  };
  if (!opts.pretty) return pino(options);
  // Required only here: production processes never load it.
  const pretty = require('pino-pretty') as typeof import('pino-pretty');
  return pino({ ...options, base: undefined }, pretty({ sync: true, colorize: Boolean(process.stdout.isTTY), translateTime: 'HH:MM:ss', singleLine: true, ignore: 'pid,hostname,service' }));
}

export type Logger = ReturnType<typeof createLogger>;
