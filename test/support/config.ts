import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/loader.js';
import type { Config } from '../../src/config/schema.js';

/** Environment for a test instance: its own database and data dir, cheap bcrypt, port 0. */
export function testEnv(databaseUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    SENTINEL_DATABASE_URL: databaseUrl,
    SENTINEL_DATA_DIR: mkdtempSync(join(tmpdir(), 'sentinel-data-')),
    SENTINEL_HTTP_PORT: '0',
    SENTINEL_AUTH_BCRYPT_ROUNDS: '4',
    SENTINEL_LOG_LEVEL: 'info',
    SENTINEL_SHUTDOWN_GRACE_MS: '3000',
    ...extra,
  };
}

export function testConfig(databaseUrl: string, extra: Record<string, string> = {}): Config {
  return loadConfig({ env: testEnv(databaseUrl, extra) }).config;
}
