import type { AuditSink } from '../../core/audit.js';
import type { OrgAccess } from '../../core/authorize.js';
import type { Mailer } from '../../core/mail.js';
import { defineModule } from '../feature-module.js';
import { InvitationsRepository } from './invitations-repository.js';
import { registerInvitationRoutes } from './invitations-routes.js';
import { InvitationsService, type InviteeLookup } from './invitations-service.js';
import { OrgGuard } from './org-guard.js';
import { OrgsRepository } from './orgs-repository.js';
import { registerOrgRoutes } from './orgs-routes.js';
import { OrgsService, type UserDirectory } from './orgs-service.js';
import { WelcomeMail } from './welcome-mail.js';

/** An org's stored limit overrides, as other features (telemetry, retention) read them. */
export interface OrgLimitsDirectory {
  /** undefined when the org no longer exists. */
  overrides(orgId: string): Promise<Record<string, unknown> | undefined>;
  all(): Promise<{ id: string; slug: string; limits: Record<string, unknown> }[]>;
}

const PAGE = 1000;

/** Organizations, their members and invitations; the guard every org-scoped feature checks with. */
export const orgsModule = defineModule({
  name: 'orgs',
  requires: ['auditSink', 'userAccounts', 'mailer'],
  provides: ['orgAccess', 'orgMembership', 'orgLimits'],
  build(kits, needs: { auditSink: AuditSink; userAccounts: UserDirectory & InviteeLookup; mailer: Mailer }) {
    const knex = kits.db.knex;
    const repo = new OrgsRepository(knex, kits.cache);
    const orgGuard = new OrgGuard(repo);
    const welcome = new WelcomeMail(needs.mailer, kits.logger);
    const invitations = new InvitationsService(new InvitationsRepository(knex, kits.cache), repo, needs.userAccounts, needs.auditSink, welcome);
    const orgs = new OrgsService(repo, needs.auditSink, orgGuard, needs.userAccounts, invitations, welcome);
    const orgLimits: OrgLimitsDirectory = {
      overrides: async (orgId) => (await repo.findById(orgId))?.limits as Record<string, unknown> | undefined,
      all: async () => {
        const out: { id: string; slug: string; limits: Record<string, unknown> }[] = [];
        for (let page = await repo.list(PAGE); page.length > 0; page = await repo.list(PAGE, page[page.length - 1].slug)) {
          for (const o of page) out.push({ id: o.id, slug: o.slug, limits: o.limits as Record<string, unknown> });
        }
        return out;
      },
    };
    return {
      provides: { orgAccess: orgGuard as OrgAccess, orgMembership: orgs, orgLimits },
      services: { orgs, orgGuard },
      routes: (registry) => {
        registerOrgRoutes(registry, orgs);
        registerInvitationRoutes(registry, invitations);
      },
    };
  },
});
