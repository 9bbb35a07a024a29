import pino from 'pino';

/**
 * Postgres errors carry the values they complain about: `detail` ("Key (workspace_id,
 * external_id)=(…, ann@example.com) already exists"), `where`, and messages such as `invalid input
 * syntax for type uuid: "ann@example.com"`. Logged whole, an externalId, an address or a phone
 * number lands in the logs. The `err` serializer keeps what identifies the fault (code, table,
 * constraint, column, routine, the SQL with its placeholders) and drops or masks the values.
 */
const PG_VALUE_FIELDS = ['detail', 'where', 'hint', 'internalQuery', 'parameters', 'bindings'];

/** Quoted values and `Key (…)=(values)` in the part of a message that comes from Postgres. */
export function redactValues(message: string): string {
  // knex prefixes Postgres's message with the SQL (placeholders only): "<sql> - <message>".
  const cut = message.lastIndexOf(' - ');
  const head = cut >= 0 ? message.slice(0, cut + 3) : '';
  const tail = cut >= 0 ? message.slice(cut + 3) : message;
  return head + tail.replace(/"[^"]*"/g, '"[redacted]"').replace(/=\([^)]*\)/g, '=([redacted])');
}

export function errSerializer(err: unknown): unknown {
  if (typeof err === 'string') return redactValues(err);
  if (!err || typeof err !== 'object') return err;
  const out = pino.stdSerializers.err(err as Error) as unknown as Record<string, unknown>;
  for (const f of PG_VALUE_FIELDS) delete out[f];
  if (typeof out.message === 'string') out.message = redactValues(out.message);
  if (typeof out.stack === 'string') {
    const first = out.stack.indexOf('\n');
    out.stack = first < 0 ? redactValues(out.stack) : redactValues(out.stack.slice(0, first)) + out.stack.slice(first);
  }
  return out;
}

/**
 * Structured logs, object first. Personal data never goes in: the redact list is a last line of
 * defence for fields that might slip into a logged object, not a licence to log them.
 * `pretty` (development): one readable line per entry (pino-pretty, in this thread, synchronously)
 * instead of JSON lines, which a log collector wants and a person at a terminal does not.
 */
export function createLogger(level: string, opts: { pretty?: boolean; destination?: pino.DestinationStream } = {}) {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'hark' },
    serializers: { err: errSerializer },
    redact: {
      paths: ['email', 'phone', '*.email', '*.phone', 'body', '*.body', 'req.headers.authorization', 'to', '*.to'],
      censor: '[redacted]',
    },
  };
  if (opts.destination) return pino(options, opts.destination);
  if (!opts.pretty) return pino(options);
  // Required only here: production processes never load it.
  const pretty = require('pino-pretty') as typeof import('pino-pretty');
  return pino({ ...options, base: undefined }, pretty({ sync: true, colorize: Boolean(process.stdout.isTTY), translateTime: 'HH:MM:ss', singleLine: true, ignore: 'pid,hostname,service' }));
}

export type Logger = ReturnType<typeof createLogger>;
