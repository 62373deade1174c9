import { Type, type TProperties, type TSchema } from '@sinclair/typebox';
import { SLUG_PATTERN } from '../core/ids.js';
import { PageQuerySchema } from '../core/pagination.js';

/** Path and page schemas every feature's routes share, defined once. */

export { PageQuerySchema };

/** `{items, next_cursor}`: next_cursor is null on the last page. */
export const pageOf = <T extends TSchema>(item: T) =>
  Type.Object({
    items: Type.Array(item),
    next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'Pass as ?cursor= for the next page; null on the last page.' }),
  });

export const OrgSlugSchema = Type.String({ pattern: SLUG_PATTERN, description: 'Organization slug.' });

export const uuid = (description?: string) => Type.String({ format: 'uuid', ...(description ? { description } : {}) });

/** `/organizations/{org}`. */
export const OrgParams = Type.Object({ org: OrgSlugSchema });

/** `/organizations/{org}/…/{x}`: the org and the ids that follow it. */
export const orgParamsWith = <P extends TProperties>(ids: P) => Type.Object({ org: OrgSlugSchema, ...ids });

/** `/…/{id}` of a uuid-identified resource (users, invitations). */
export const IdParams = Type.Object({ id: uuid() });
