import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomToken } from '../core/ids.js';
import type { Config } from './schema.js';

export const secretsDir = (dataDir: string): string => join(dataDir, 'secrets');

/** Read <data_dir>/secrets/<name>, creating it (mode 0600, `bytes` random bytes) on first use. */
export function readOrCreateSecret(dataDir: string, name: string, bytes = 32): string {
  const dir = secretsDir(dataDir);
  // data_dir itself stays traversable: the embedded server's unprivileged user works inside it.
  mkdirSync(dataDir, { recursive: true, mode: 0o755 });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, name);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const value = randomToken(bytes);
  writeFileSync(file, `${value}\n`, { mode: 0o600, flag: 'wx' });
  return value;
}

/** Fill the secrets the operator did not configure from <data_dir>/secrets/. */
export function withSecrets(config: Config): Config {
  return {
    ...config,
    auth: {
      ...config.auth,
      jwt_secret: config.auth.jwt_secret || readOrCreateSecret(config.data_dir, 'jwt_secret'),
      encryption_key: config.auth.encryption_key || readOrCreateSecret(config.data_dir, 'encryption_key'),
    },
  };
}
