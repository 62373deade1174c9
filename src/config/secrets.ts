import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomToken } from '../core/ids.js';
import { DomainError, type ErrorDetail } from '../core/errors.js';
import type { Config } from './schema.js';

/** HS256 wants a key at least as long as its hash (RFC 7518 §3.2): 256 bits. */
export const JWT_SECRET_MIN_BYTES = 32;
/**
 * auth.encryption_key is 32 random bytes written as 64 hex digits or 43 base64/base64url
 * characters (44 with the `=` pad), what `openssl rand -hex 32` / `openssl rand -base64 32`
 * print and what Sentinel generates. SecretBox hashes whatever string it gets into its AES-256
 * key, so without this check a short passphrase would be accepted and silently weaken every
 * stored secret.
 */
const ENCRYPTION_KEY_FORMAT = /^(?:[0-9a-fA-F]{64}|[A-Za-z0-9+/_-]{43}=?)$/;

/** What is wrong with a configured secret, or null (empty means "generate one" and is fine). */
export function secretProblem(key: 'auth.jwt_secret' | 'auth.encryption_key', value: string): string | null {
  if (value === '') return null;
  if (key === 'auth.jwt_secret') {
    const bytes = Buffer.byteLength(value, 'utf8');
    return bytes < JWT_SECRET_MIN_BYTES ? `must be at least ${JWT_SECRET_MIN_BYTES} bytes (it has ${bytes}); e.g. 'openssl rand -base64 32', or leave it empty to have one generated` : null;
  }
  return ENCRYPTION_KEY_FORMAT.test(value)
    ? null
    : "must be 32 random bytes as 64 hex digits or 43-44 base64 characters (e.g. 'openssl rand -hex 32'), or empty to have one generated";
}

function checkedSecret(dataDir: string, key: 'auth.jwt_secret' | 'auth.encryption_key', name: string): string {
  const value = readOrCreateSecret(dataDir, name);
  const problem = secretProblem(key, value);
  // A hand-edited file in <data_dir>/secrets is held to the same rule as a configured value.
  if (problem) {
    const detail: ErrorDetail = { path: key, message: `"***" (from file ${join(secretsDir(dataDir), name)}): ${problem}` };
    // The loader's ConfigError shape (it imports this file, so this file cannot import it).
    throw new DomainError('invalid_config', `invalid configuration:\n  ${detail.path}: ${detail.message}`, { errors: [detail] });
  }
  return value;
}

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
      jwt_secret: config.auth.jwt_secret || checkedSecret(config.data_dir, 'auth.jwt_secret', 'jwt_secret'),
      encryption_key: config.auth.encryption_key || checkedSecret(config.data_dir, 'auth.encryption_key', 'encryption_key'),
    },
  };
}
