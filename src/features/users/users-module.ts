import type { TObject } from '@sinclair/typebox';
import type { Actor } from '../../core/actor.js';
import type { AuditSink } from '../../core/audit.js';
import { defineModule } from '../feature-module.js';
import { PasswordHasher } from './passwords.js';
import { UsersRepository } from './users-repository.js';
import { registerUserRoutes } from './users-routes.js';
import { UserSchema } from './users-schemas.js';
import { UsersService, type OrgMembership, type PasswordConfirmer, type SessionRevoker } from './users-service.js';

/** The signed-in user's own profile and its schema, for GET /auth/me (the auth feature's route). */
export interface UserProfiles {
  profile(actor: Actor): Promise<unknown>;
  readonly schema: TObject;
}

/** User accounts and passwords; other features see the accounts through small lookup interfaces. */
export const usersModule = defineModule({
  name: 'users',
  requires: ['auditSink', 'orgMembership', 'sessionRevoker', 'passwordConfirmer'],
  provides: ['userAccounts', 'passwordHasher', 'userProfiles'],
  build(kits, needs: { auditSink: AuditSink; orgMembership: OrgMembership; sessionRevoker: SessionRevoker; passwordConfirmer: PasswordConfirmer }) {
    const repo = new UsersRepository(kits.db.knex, kits.cache);
    const passwords = new PasswordHasher(kits.config.auth.bcrypt_rounds);
    // Password change and disable end every session of the user (the auth feature's sessions).
    const users = new UsersService(repo, needs.orgMembership, passwords, needs.auditSink, needs.sessionRevoker, needs.passwordConfirmer);
    const userProfiles: UserProfiles = { profile: (actor) => users.profile(actor), schema: UserSchema };
    return {
      provides: { userAccounts: repo, passwordHasher: passwords, userProfiles },
      services: { users },
      routes: (registry) => registerUserRoutes(registry, users),
    };
  },
});
