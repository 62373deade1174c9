import type { Knex } from 'knex';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { systemClock } from '../../src/core/clock.js';
import { PoolRegistry } from '../../src/db/pool-stats.js';
import type { Kits } from '../../src/features/feature-module.js';
import { testConfig } from './config.js';

/**
 * The kits a feature module's `build` needs, on one database, for a test that builds one module
 * alone: a silent logger, an own metrics registry, a queue that drops what is enqueued, and no
 * read cache, jobs kit or HTTP figures (a module that reaches for those fails loudly).
 */
export function moduleKits(knex: Knex, url: string): Kits {
  return {
    config: testConfig(url),
    logger: pino({ level: 'silent' }),
    db: { knex, url, embedded: null, pools: new PoolRegistry(), ping: async () => undefined, close: async () => undefined },
    cache: null as never,
    version: 'test',
    daemon: true,
    metrics: new Registry(),
    queue: { enqueue: async () => undefined },
    jobs: null as never,
    clock: systemClock,
    httpStatus: null as never,
  };
}
