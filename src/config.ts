import { z } from 'zod';
import { isClusterUrl, parseRedisUrl } from './redis-url';

/**
 * The only reader of process.env. Parsed once at boot; a missing or malformed variable
 * stops the process with one line naming it (see main.ts).
 */
const url = (protocols: string[]) =>
  z.string().refine((v) => {
    try {
      return protocols.includes(new URL(v).protocol);
    } catch {
      return false;
    }
  }, `must be a URL (${protocols.join(' or ')})`);

const intFromEnv = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) => {
  const msg = `must be a whole number from ${min} to ${max}`;
  return z.coerce.number({ error: msg }).int(msg).min(min, msg).max(max, msg).default(def);
};
const oneOf = <T extends string>(values: [T, ...T[]]) => z.enum(values, { error: `must be one of ${values.join(', ')}` });

export const configSchema = z.object({
  NODE_ENV: oneOf(['development', 'test', 'production']).default('development'),
  ROLE: oneOf(['all', 'api', 'worker']).default('all'),
  PORT: intFromEnv(3000, 0, 65535),
  DATABASE_URL: url(['postgres:', 'postgresql:']).default('postgres://postgres@127.0.0.1:5432/hark'),
  /** One Redis (redis://, rediss://) or a Redis Cluster's seed nodes (redis+cluster://host:port,host:port). */
  REDIS_URL: z
    .string()
    .refine((v) => (isClusterUrl(v) ? parseRedisUrl(v) !== null : url(['redis:', 'rediss:']).safeParse(v).success), 'must be a URL (redis:, rediss:, or redis+cluster://host:port,host:port)')
    .default('redis://127.0.0.1:6379'),
  /** Key prefix of every BullMQ queue: two hark installations may share one Redis. */
  QUEUE_PREFIX: z.string().regex(/^[A-Za-z0-9_-]{1,40}$/, 'must be 1-40 letters, digits, - or _').default('hark'),
  HARK_ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters'),
  /** Default http://localhost:PORT (see resolveDefaults). */
  PUBLIC_URL: url(['http:', 'https:']).optional(),
  /** Secret for signing public tokens (unsubscribe, open, click); required in production, else generated once and kept in the database (src/secrets.ts). */
  HARK_SIGNING_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  /** The signing secret before a rotation: links it signed still verify; it never signs. */
  HARK_SIGNING_SECRET_PREVIOUS: z.string().min(32, 'must be at least 32 characters').optional(),
  /** Outgoing mail server; `inbox:` keeps mail in hark's own inbox (the default outside production; see resolveDefaults). */
  SMTP_URL: url(['smtp:', 'smtps:', 'inbox:']).optional(),
  /** No default: a public default token would let anyone sign Twilio webhooks (issue 15). */
  TWILIO_ACCOUNT_SID: z.string().optional(),
  TWILIO_AUTH_TOKEN: z.string().optional(),
  TWILIO_API_URL: url(['http:', 'https:', 'inbox:']).optional(),
  /** Test sends (POST /v1/templates|campaigns/:id/test) per workspace an hour. */
  TEST_SENDS_PER_HOUR: intFromEnv(30, 1, 100000),
  /** Optional DKIM signing of outgoing email: all three must be set to sign. */
  DKIM_DOMAIN: z.string().optional(),
  DKIM_SELECTOR: z.string().optional(),
  DKIM_PRIVATE_KEY: z.string().optional(),
  /** Outgoing webhooks may reach loopback and private addresses (development and tests); off unless set, whatever NODE_ENV. */
  WEBHOOK_ALLOW_PRIVATE: oneOf(['true', 'false']).default('false').transform((v) => v === 'true'),
  /** Requests a minute per workspace key, counted in Redis across API processes; 0 turns the limit off (benchmarks). */
  API_RATE_PER_MINUTE: intFromEnv(6000, 0, 10_000_000),
  /** Statement timeout of every query of the API's pool, ms; past it the request is a 503 query_timeout. */
  STATEMENT_TIMEOUT_MS: intFromEnv(15000, 0, 3_600_000),
  /** Statement timeout of the workers' queries, ms (0: none); their statements are whole-audience batches. */
  WORKER_STATEMENT_TIMEOUT_MS: intFromEnv(600000, 0, 86_400_000),
  /** POST /v1/predictions/fit scores up to this many customers in the request; above it, scoring is a job. */
  PREDICTIONS_INLINE_SCORE_MAX: intFromEnv(20000, 0, 10_000_000),
  /** Domains (and their subdomains) a workspace's fromEmail may use, comma-separated; unset: any. */
  SENDER_DOMAINS: z.string().default('').transform((v) => v.split(',').map((d) => d.trim().toLowerCase()).filter(Boolean)),
  /** SMS senders (numbers in E.164, or alphanumeric ids) a workspace's smsFrom may be, comma-separated; unset: any. */
  SMS_SENDERS: z.string().default('').transform((v) => v.split(',').map((d) => d.trim()).filter(Boolean)),
  LOG_LEVEL: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  BODY_LIMIT: z.string().regex(/^\d+(kb|mb)$/i, 'must look like 1mb or 512kb').default('2mb'),
  DB_POOL_MAX: intFromEnv(20, 1, 500),
  EMAIL_RATE_PER_SECOND: intFromEnv(200, 1, 100000),
  SMS_RATE_PER_SECOND: intFromEnv(50, 1, 100000),
  /**
   * Where the dispatch worker's provider calls run: 'main', its main thread, or 'thread', a worker
   * thread of their own (src/channels/threaded.ts), which costs a second V8 isolate (about 30 MB of
   * RSS) and a structured clone each way per batch (README, dispatch bench).
   */
  DISPATCH_SENDER: oneOf(['main', 'thread']).default('main'),
  SHUTDOWN_TIMEOUT_MS: intFromEnv(10000, 100, 600000),
  /** V8's old-generation growth between full collections, in percent of the live heap; 0 leaves V8's own (up to 300). */
  HEAP_GROWING_PERCENT: intFromEnv(30, 0, 1000),
  /** Largest CSV import body, in bytes (API.md: 200 MB). */
  IMPORT_MAX_BYTES: intFromEnv(200 * 1024 * 1024, 1024, 2 ** 40),
  /** After purchases commit, the results worker is woken at the end of the current slot of this many ms (one wake-up per slot); 0 leaves attribution to its 60 s schedule. */
  ATTRIBUTION_WAKE_MS: intFromEnv(1000, 0, 3_600_000),
  /** Imports one worker process runs at once. */
  IMPORT_CONCURRENCY: intFromEnv(1, 1, 16),
  // Months of message_events kept (src/messages/partitions.ts); 0 keeps everything.
  MESSAGE_EVENTS_RETENTION_MONTHS: intFromEnv(13, 0, 1200),
  // Months of messages kept, by the month of their send (src/messages/partitions.ts); 0 keeps everything.
  MESSAGES_RETENTION_MONTHS: intFromEnv(25, 0, 1200),
});

/** The built-in inbox's address: SMTP_URL or TWILIO_API_URL set to it delivers into hark's own inbox. */
export const INBOX_URL = 'inbox:';

type Parsed = z.infer<typeof configSchema>;
export type Config = Omit<Parsed, 'SMTP_URL' | 'TWILIO_API_URL' | 'PUBLIC_URL'> & {
  PUBLIC_URL: string;
  SMTP_URL: string;
  TWILIO_API_URL: string;
  /** How SMS leave: the built-in inbox, Twilio (account configured), or not at all (production without Twilio). */
  SMS_MODE: 'inbox' | 'twilio' | 'off';
};

/** Rules across variables: what production may not leave to a development default. */
function productionIssue(c: Parsed): string | null {
  if (c.NODE_ENV !== 'production') return null;
  if (!c.HARK_SIGNING_SECRET) return 'HARK_SIGNING_SECRET is required in production (32+ characters)';
  return null;
}

export class ConfigError extends Error {}

/** HEAP_GROWING_PERCENT alone, read before the rest of the config (heap.ts); 0 when malformed, which loadConfig then reports. */
export function heapGrowingPercent(env: NodeJS.ProcessEnv = process.env): number {
  const parsed = configSchema.shape.HEAP_GROWING_PERCENT.safeParse(env.HEAP_GROWING_PERCENT || undefined);
  return parsed.success ? parsed.data : 0;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // An empty variable (PORT= in a compose file) means "not set", as in most twelve-factor tools.
  const given = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = configSchema.safeParse(given);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0] ?? 'environment');
    const msg = given[name] === undefined ? 'is required' : issue.message;
    throw new ConfigError(`config: ${name} ${msg}`);
  }
  const issue = productionIssue(parsed.data);
  if (issue) throw new ConfigError(`config: ${issue}`);
  return resolveDefaults(parsed.data);
}

/**
 * Defaults that depend on other variables. PUBLIC_URL: this process's own port on localhost.
 * The providers' defaults depend on NODE_ENV. Outside production hark delivers into its own inbox
 * unless told otherwise, so a first `npm start` sends somewhere visible. In production nothing is
 * assumed: SMTP_URL is required (the inbox there would swallow real customers' mail), and SMS is
 * off until a Twilio account is configured.
 */
function resolveDefaults(c: Parsed): Config {
  const production = c.NODE_ENV === 'production';
  if (production && !c.SMTP_URL) throw new ConfigError('config: SMTP_URL is required in production (smtp://user:pass@host:port of your mail server)');
  if (production && c.SMTP_URL === INBOX_URL) throw new ConfigError('config: SMTP_URL inbox: is for trying hark out, not for production; give your mail server (smtp:// or smtps://)');
  if (production && c.TWILIO_API_URL === INBOX_URL) throw new ConfigError('config: TWILIO_API_URL inbox: is for trying hark out, not for production');
  const twilioAccount = Boolean(c.TWILIO_ACCOUNT_SID && c.TWILIO_AUTH_TOKEN);
  const twilioApi = c.TWILIO_API_URL ?? (production || twilioAccount ? 'https://api.twilio.com' : INBOX_URL);
  const smsMode = twilioApi === INBOX_URL ? 'inbox' : twilioAccount ? 'twilio' : 'off';
  const publicUrl = c.PUBLIC_URL ?? `http://localhost:${c.PORT || 3000}`;
  return { ...c, PUBLIC_URL: publicUrl, SMTP_URL: c.SMTP_URL ?? INBOX_URL, TWILIO_API_URL: twilioApi, SMS_MODE: smsMode };
}
