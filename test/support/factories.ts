import { randomBytes } from 'node:crypto';
import { SYSTEM_ACTOR } from '../../src/core/actor.js';
import type { Services } from '../../src/app/build-app.js';
import type { ApiKeyScope } from '../../src/core/permissions.js';
import type { OrgRole } from '../../src/core/roles.js';
import type { ApiKeyWithSecret } from '../../src/features/api-keys/api-keys-service.js';
import type { Organization } from '../../src/features/orgs/orgs-service.js';
import type { User } from '../../src/features/users/users-service.js';

// 48 bits: the role and tenant matrices create thousands of users and orgs per database (24 bits collided).
const uniq = () => randomBytes(6).toString('hex');

export async function createOrg(services: Services, slug = `org-${uniq()}`): Promise<Organization> {
  return services.orgs.create(SYSTEM_ACTOR, { slug, name: `Org ${slug}` });
}

export async function createUser(
  services: Services,
  opts: { email?: string; password?: string; org?: string; role?: OrgRole; superadmin?: boolean } = {},
): Promise<User & { password: string }> {
  const password = opts.password ?? `pw-${uniq()}-${uniq()}`;
  const user = await services.users.create(SYSTEM_ACTOR, {
    email: opts.email ?? `user-${uniq()}@example.test`,
    password,
    org: opts.org,
    role: opts.role,
    superadmin: opts.superadmin,
  });
  return { ...user, password };
}

/** An API key of `org` (created as the CLI would); the secret is returned this once. */
export async function createApiKey(services: Services, org: string, scopes: ApiKeyScope[] = ['ingest'], name = `key-${uniq()}`): Promise<ApiKeyWithSecret> {
  return services.apiKeys.create(SYSTEM_ACTOR, org, { name, scopes });
}
