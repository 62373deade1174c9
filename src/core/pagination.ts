import { Type, type Static } from '@sinclair/typebox';
import { DomainError } from './errors.js';
import { isUuid } from './ids.js';
import { isStorableText } from './text.js';

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 1000;

/**
 * `?limit=&cursor=` of every list route (DESIGN §6); the cursor is opaque. Defined here rather
 * than in the http kit because services take it as their page type and telemetry's query schemas
 * (which may not import http) spread its properties; routes take it from http/schemas.ts.
 */
export const PageQuerySchema = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_LIMIT, description: `Items per page (default ${DEFAULT_LIMIT}, at most ${MAX_LIMIT}).` })),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 512, description: 'next_cursor of the previous page.' })),
  },
  { additionalProperties: false },
);
export type PageRequest = Static<typeof PageQuerySchema>;

export function pageLimit(limit?: number): number {
  if (limit === undefined) return DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw new DomainError('validation_failed', `limit must be an integer from 1 to ${MAX_LIMIT}`, {
      errors: [{ path: 'query/limit', message: `must be from 1 to ${MAX_LIMIT}` }],
    });
  }
  return limit;
}

/** The client's 400 for a cursor this server did not hand out (or one that was tampered with). */
export const invalidCursor = (): DomainError =>
  new DomainError('validation_failed', 'invalid cursor', { errors: [{ path: 'query/cursor', message: 'invalid cursor' }] });

/** Opaque keyset cursors: the sort key of the last item, base64url-encoded. */
export const encodeCursor = (key: string): string => Buffer.from(key, 'utf8').toString('base64url');

export function decodeCursor(cursor?: string): string | undefined {
  if (cursor === undefined) return undefined;
  const key = Buffer.from(cursor, 'base64url').toString('utf8');
  // A NUL inside the decoded key would reach PostgreSQL as text it refuses.
  if (!key || encodeCursor(key) !== cursor || !isStorableText(key)) {
    throw invalidCursor();
  }
  return key;
}

/**
 * decodeCursor for lists keyed by a uuid (the last item's id): a cursor whose key is not a uuid
 * is the client's 400 at query/cursor, not PostgreSQL's error on the uuid comparison.
 */
export function uuidCursor(cursor: string | undefined): string | undefined {
  const key = decodeCursor(cursor);
  if (key !== undefined && !isUuid(key)) {
    throw invalidCursor();
  }
  return key;
}

/** Given limit+1 rows, the page and the cursor of its last item. */
export function toPage<T>(rows: T[], limit: number, key: (row: T) => string): Page<T> {
  const items = rows.slice(0, limit);
  return { items, next_cursor: rows.length > limit ? encodeCursor(key(items[items.length - 1])) : null };
}

/** Walk every page (CLI listings print everything). */
export async function collectAll<T>(fetchPage: (cursor?: string) => Promise<Page<T>>): Promise<T[]> {
  const all: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await fetchPage(cursor);
    all.push(...page.items);
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
  return all;
}
