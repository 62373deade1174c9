import { actorOf } from '../../http/context.js';
import { OrgParams, PageQuerySchema, pageOf } from '../../http/schemas.js';
import type { ApiRegistry } from '../../http/registry.js';
import { AuditEntrySchema } from './audit-schemas.js';
import type { AuditService } from './audit-service.js';

const AuditPage = pageOf(AuditEntrySchema);

export function registerAuditRoutes(registry: ApiRegistry, audit: AuditService): void {
  registry.route({
    method: 'get',
    path: '/organizations/{org}/audit-log',
    operationId: 'listOrgAuditLog',
    summary: "The organization's audit log, newest first (admins and owners; API keys with the admin scope)",
    tags: ['audit'],
    auth: 'any',
    permission: 'audit.read',
    params: OrgParams,
    query: PageQuerySchema,
    responses: { 200: { description: 'One page of entries.', schema: AuditPage }, 403: { description: 'Role too low.' }, 404: { description: 'No such organization (or not yours).' } },
    handler: async (ctx, { params, query }) => {
      ctx.body = await audit.listForOrg(actorOf(ctx), params.org, query);
    },
  });

  registry.route({
    method: 'get',
    path: '/admin/audit-log',
    operationId: 'listAuditLog',
    summary: 'The whole audit log, newest first (superadmins)',
    tags: ['audit', 'admin'],
    auth: 'user',
    query: PageQuerySchema,
    responses: { 200: { description: 'One page of entries.', schema: AuditPage }, 403: { description: 'Not a superadmin.' } },
    handler: async (ctx, { query }) => {
      ctx.body = await audit.listAll(actorOf(ctx), query);
    },
  });
}
