import { createSecretKey, randomUUID, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { DomainError } from '../../core/errors.js';
import { isUuid } from '../../core/ids.js';

export const TOKEN_ISSUER = 'sentinel';
export const TOKEN_AUDIENCE = 'sentinel-api';
const VERIFIED_CACHE_SIZE = 10_000;

export interface AccessClaims {
  sub: string;
  /** Session the token belongs to: logout revokes it. */
  sid: string;
  /** users.token_version when issued: a password change or disable invalidates older tokens. */
  tv: number;
}

/**
 * HS256 access tokens. The key is a KeyObject: jsonwebtoken re-imports a string secret on every
 * call, which makes sign+verify about 50× slower. Verification pins the algorithm, the issuer
 * and the audience, and requires `exp`.
 */
export class AccessTokens {
  private readonly key: KeyObject;

  constructor(secret: string, private readonly ttlSeconds: number) {
    this.key = createSecretKey(Buffer.from(secret, 'utf8'));
  }

  get expiresIn(): number {
    return this.ttlSeconds;
  }

  sign(claims: AccessClaims, ttlSeconds = this.ttlSeconds): string {
    return jwt.sign({ sid: claims.sid, tv: claims.tv }, this.key, {
      algorithm: 'HS256',
      subject: claims.sub,
      expiresIn: ttlSeconds,
      issuer: TOKEN_ISSUER,
      audience: TOKEN_AUDIENCE,
      jwtid: randomUUID(),
    });
  }

  /**
   * Verified tokens are remembered until they expire (bounded), so a client reusing its token
   * does not pay for HMAC and JSON parsing on every request. Revocation is not affected: the
   * session is still checked on every request.
   */
  private readonly verified = new Map<string, { claims: AccessClaims; expMs: number }>();

  verify(token: string): AccessClaims {
    const known = this.verified.get(token);
    if (known) {
      if (known.expMs > Date.now()) return known.claims;
      this.verified.delete(token);
    }
    const claims = this.verifyUncached(token);
    if (this.verified.size >= VERIFIED_CACHE_SIZE) this.verified.delete(this.verified.keys().next().value as string);
    this.verified.set(token, { claims, expMs: claims.exp * 1000 });
    return claims;
  }

  private verifyUncached(token: string): AccessClaims & { exp: number } {
    let payload: jwt.JwtPayload | string;
    try {
      payload = jwt.verify(token, this.key, { algorithms: ['HS256'], issuer: TOKEN_ISSUER, audience: TOKEN_AUDIENCE });
    } catch (err) {
      const reason = err instanceof jwt.TokenExpiredError ? 'token expired' : 'invalid token';
      throw new DomainError('unauthenticated', reason);
    }
    // sub and sid reach PostgreSQL as uuid parameters: anything else is a forged or foreign token.
    if (
      typeof payload === 'string' ||
      typeof payload.exp !== 'number' ||
      typeof payload.sub !== 'string' ||
      typeof payload.sid !== 'string' ||
      !isUuid(payload.sub) ||
      !isUuid(payload.sid) ||
      !Number.isSafeInteger(payload.tv)
    ) {
      throw new DomainError('unauthenticated', 'invalid token');
    }
    return { sub: payload.sub, sid: payload.sid, tv: payload.tv as number, exp: payload.exp };
  }
}
