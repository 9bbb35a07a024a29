import type { RequestHandler } from 'express';
import type { Clock } from './clock';
import type { Config } from './config';
import type { Db } from './db';
import type { Logger } from './logger';
import type { Metrics } from './ops/metrics';
import type { Queues } from './queues';
import type { RedisClient } from './redis';

/** What the app and the workers are built from; routes and workers import it from here, not from app.ts. */
export interface Deps {
  config: Config;
  db: Db;
  redis: RedisClient;
  queues: Queues;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
}

/** The three authentication guards every routes file is handed. */
export interface Guards {
  operator: RequestHandler;
  admin: RequestHandler;
  ingest: RequestHandler;
}
