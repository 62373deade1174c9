import { Type, type TSchema } from '@sinclair/typebox';
import { MAX_LIMIT } from '../core/pagination.js';

/** `?limit=&cursor=` of every list route (DESIGN §6); the cursor is opaque. */
export const PageQuerySchema = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_LIMIT, description: `Items per page (default 50, at most ${MAX_LIMIT}).` })),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 512, description: 'next_cursor of the previous page.' })),
  },
  { additionalProperties: false },
);

/** `{items, next_cursor}`: next_cursor is null on the last page. */
export const pageOf = <T extends TSchema>(item: T) =>
  Type.Object({
    items: Type.Array(item),
    next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'Pass as ?cursor= for the next page; null on the last page.' }),
  });
