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
  PUBLIC_URL: url(['http:', 'https:']).default('http://localhost:3000'),
  /** Secret for signing public tokens (unsubscribe, open, click); defaults to one derived from HARK_ADMIN_TOKEN. */
  HARK_SIGNING_SECRET: z.string().min(16).optional(),
  SMTP_URL: url(['smtp:', 'smtps:']).default('smtp://127.0.0.1:2525'),
  TWILIO_ACCOUNT_SID: z.string().default('AC00000000000000000000000000000000'),
  TWILIO_AUTH_TOKEN: z.string().default('dev-twilio-token'),
  TWILIO_API_URL: url(['http:', 'https:']).default('https://api.twilio.com'),
  /** Optional DKIM signing of outgoing email: all three must be set to sign. */
  DKIM_DOMAIN: z.string().optional(),
  DKIM_SELECTOR: z.string().optional(),
  DKIM_PRIVATE_KEY: z.string().optional(),
  LOG_LEVEL: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  BODY_LIMIT: z.string().regex(/^\d+(kb|mb)$/i, 'must look like 1mb or 512kb').default('2mb'),
  DB_POOL_MAX: intFromEnv(20, 1, 500),
  EMAIL_RATE_PER_SECOND: intFromEnv(200, 1, 100000),
  SMS_RATE_PER_SECOND: intFromEnv(50, 1, 100000),
  SHUTDOWN_TIMEOUT_MS: intFromEnv(10000, 100, 600000),
  /** V8's old-generation growth between full collections, in percent of the live heap; 0 leaves V8's own (up to 300). */
  HEAP_GROWING_PERCENT: intFromEnv(30, 0, 1000),
});

export type Config = z.infer<typeof configSchema>;

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
  return parsed.data;
}
