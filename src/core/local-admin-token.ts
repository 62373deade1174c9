import { createSecretKey, randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';

/*
 * A short-lived token that whoever can read the daemon's JWT signing key (root or the service
 * user on the host: <data_dir>/secrets is 0700) mints without a password, for `sentinel status`.
 * Its audience differs from user access tokens', so it is no user's token and opens nothing but
 * what accepts this audience: GET /api/v1/admin/status.
 */
export const LOCAL_ADMIN_AUDIENCE = 'sentinel-local-admin';
export const LOCAL_ADMIN_SUBJECT = 'local-admin';
const ISSUER = 'sentinel';
/** Longer-lived local tokens are refused: the dashboard mints a new one whenever it needs one. */
export const LOCAL_ADMIN_MAX_TTL_SECONDS = 300;

export function mintLocalAdminToken(jwtSecret: string, ttlSeconds = 120): string {
  const ttl = Math.min(Math.max(1, Math.floor(ttlSeconds)), LOCAL_ADMIN_MAX_TTL_SECONDS);
  return jwt.sign({}, createSecretKey(Buffer.from(jwtSecret, 'utf8')), {
    algorithm: 'HS256',
    subject: LOCAL_ADMIN_SUBJECT,
    issuer: ISSUER,
    audience: LOCAL_ADMIN_AUDIENCE,
    expiresIn: ttl,
    jwtid: randomUUID(),
  });
}

/** True for a valid, unexpired local admin token signed with this key whose lifetime is within the bound. */
export function isLocalAdminToken(jwtSecret: string, token: string): boolean {
  try {
    const p = jwt.verify(token, createSecretKey(Buffer.from(jwtSecret, 'utf8')), {
      algorithms: ['HS256'],
      issuer: ISSUER,
      audience: LOCAL_ADMIN_AUDIENCE,
      subject: LOCAL_ADMIN_SUBJECT,
    });
    return typeof p === 'object' && typeof p.exp === 'number' && typeof p.iat === 'number' && p.exp - p.iat <= LOCAL_ADMIN_MAX_TTL_SECONDS;
  } catch {
    return false;
  }
}
