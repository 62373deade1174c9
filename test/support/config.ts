import { declaredJobs } from '../../src/app/build-app.js';
import { loadConfig } from '../../src/config/loader.js';
import type { Config } from '../../src/config/schema.js';
import { scratchDir } from './scratch.js';

/**
 * Environment for a test instance: its own database and data dir (a scratchDir), cheap bcrypt, port 0.
 */
export function testEnv(databaseUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    SENTINEL_DATABASE_URL: databaseUrl,
    SENTINEL_DATA_DIR: scratchDir('sentinel-data-'),
    SENTINEL_HTTP_PORT: '0',
    SENTINEL_AUTH_BCRYPT_ROUNDS: '4',
    SENTINEL_LOG_LEVEL: 'info',
    SENTINEL_SHUTDOWN_GRACE_MS: '3000',
    // No real cron ticks in tests: a backup or a report starting because the wall clock passed
    // 06:00 would make a test's counts depend on when it runs. Tests of the scheduler drive its
    // ticks through its seam, with jobs they enable.
    SENTINEL_JOBS: JSON.stringify(Object.fromEntries(declaredJobs().map((j) => [j.name, { enabled: false }]))),
    // Likewise no background alert evaluation: tests drive evaluation ticks with a pinned clock;
    // the end-to-end alerting tests turn it on.
    SENTINEL_ALERTS_ENABLED: 'false',
    ...extra,
  };
}

/** Never connected to: for servers under test that have no database (the http kit's unit tests). */
const NO_DATABASE = 'postgres://sentinel@127.0.0.1:1/no-database';

/**
 * The one test configuration: the loader's result for testEnv (so every default and check is the
 * real one), with `http` overrides on top for what environment strings cannot say.
 */
export function testConfig(databaseUrl: string = NO_DATABASE, extra: Record<string, string> = {}, http: Partial<Config['http']> = {}): Config {
  const config = loadConfig({ env: testEnv(databaseUrl, extra) }).config;
  return { ...config, http: { ...config.http, host: '127.0.0.1', port: 0, ...http } };
}
