import type { AuditSink } from '../../core/audit.js';
import type { OrgAccess } from '../../core/authorize.js';
import { defineModule } from '../feature-module.js';
import { AuditRepository } from './audit-repository.js';
import { registerAuditRoutes } from './audit-routes.js';
import { AuditService } from './audit-service.js';

/** The append-only audit log: every module writes to it (auditSink), admins read it per org. */
export const auditModule = defineModule({
  name: 'audit',
  requires: ['orgAccess'],
  provides: ['auditSink'],
  build(kits, needs: { orgAccess: OrgAccess }) {
    const audit = new AuditRepository(kits.db.knex);
    const auditLog = new AuditService(audit, needs.orgAccess);
    return {
      provides: { auditSink: audit as AuditSink },
      services: { audit },
      routes: (registry) => registerAuditRoutes(registry, auditLog),
    };
  },
});
