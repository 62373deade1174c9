import type { Services } from '../../src/app/build-app.js';
import type { ApiKeyScope } from '../../src/core/permissions.js';
import type { OrgRole } from '../../src/core/roles.js';
import type { Organization } from '../../src/features/orgs/orgs-service.js';
import { createApiKey, createOrg, createUser } from './factories.js';

export interface TenantUser {
  id: string;
  email: string;
  password: string;
}

/**
 * An organization with the people and things that requests can aim at: two owners (so demoting
 * or removing one is never the last-owner 409), a viewer, a user who exists but is not a member,
 * and an API key.
 */
export interface Tenant {
  org: Organization;
  owner: TenantUser;
  coOwner: TenantUser;
  viewer: TenantUser;
  /** Exists, and is a member of nothing (so adding them to an org is valid). */
  outsider: TenantUser;
  key: { id: string; secret: string; prefix: string };
  /** Every member's user id. */
  memberIds: string[];
}

export async function createTenant(services: Services, opts: { slugPrefix?: string; keyScopes?: ApiKeyScope[] } = {}): Promise<Tenant> {
  const org = await createOrg(services, `${opts.slugPrefix ?? 't'}-${Math.random().toString(36).slice(2, 10)}`);
  const member = async (role: OrgRole) => {
    const u = await createUser(services, { org: org.slug, role });
    return { id: u.id, email: u.email, password: u.password };
  };
  const owner = await member('owner');
  const coOwner = await member('owner');
  const viewer = await member('viewer');
  const o = await createUser(services);
  const key = await createApiKey(services, org.slug, opts.keyScopes ?? ['admin']);
  return {
    org,
    owner,
    coOwner,
    viewer,
    outsider: { id: o.id, email: o.email, password: o.password },
    key: { id: key.id, secret: key.secret, prefix: key.prefix },
    memberIds: [owner.id, coOwner.id, viewer.id],
  };
}

/** Add one more member with `role` to a tenant's org. */
export async function addMember(services: Services, tenant: Tenant, role: OrgRole): Promise<TenantUser> {
  const u = await createUser(services, { org: tenant.org.slug, role });
  tenant.memberIds.push(u.id);
  return { id: u.id, email: u.email, password: u.password };
}
