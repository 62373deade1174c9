import { randomBytes, randomUUID } from 'node:crypto';

export const newRequestId = (): string => randomUUID();

/** URL-safe random token with `bytes` bytes of entropy. */
export const randomToken = (bytes = 32): string => randomBytes(bytes).toString('base64url');

/** Organization slugs: lowercase DNS-label style, so they are safe in URLs and logs. */
export const SLUG_PATTERN = '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$';
const slugRe = new RegExp(SLUG_PATTERN);
export const isSlug = (s: string): boolean => slugRe.test(s);

/**
 * A canonical UUID (any case), as PostgreSQL's uuid type takes it and every id we issue is
 * written. Not ajv-formats' uuid, which also takes a `urn:uuid:` prefix PostgreSQL refuses.
 */
export const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
const uuidRe = new RegExp(UUID_PATTERN);
export const isUuid = (s: string): boolean => uuidRe.test(s);
