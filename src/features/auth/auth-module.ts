import type { TObject } from '@sinclair/typebox';
import type { Actor } from '../../core/actor.js';
import type { AuditSink } from '../../core/audit.js';
import { configuredMs } from '../../core/duration.js';
import { isLocalAdminToken } from '../../core/local-admin-token.js';
import { RateLimiter } from '../../core/rate-limiter.js';
import type { Authenticator } from '../../http/registry.js';
import { defineModule } from '../feature-module.js';
import { createAuthenticator, registerAuthRoutes } from './auth-routes.js';
import { AuthService, type ApiKeyAuthenticator, type PasswordVerifier, type SecondFactor, type UserStore } from './auth-service.js';
import { PasswordConfirmation, type ConfirmationUserStore } from './password-confirmation.js';
import { SessionsRepository } from './sessions-repository.js';
import { AccessTokens } from './tokens.js';

const ms = configuredMs;

/** Login, tokens and sessions; the registry's authenticator, which every route (OTLP too) goes through. */
export const authModule = defineModule({
  name: 'auth',
  requires: ['auditSink', 'userAccounts', 'passwordHasher', 'userProfiles', 'secondFactor', 'apiKeyAuthenticator'],
  provides: ['sessionRevoker', 'passwordConfirmer'],
  build(
    kits,
    needs: {
      auditSink: AuditSink;
      userAccounts: UserStore & ConfirmationUserStore;
      passwordHasher: PasswordVerifier;
      userProfiles: { profile(actor: Actor): Promise<unknown>; readonly schema: TObject };
      secondFactor: SecondFactor;
      apiKeyAuthenticator: ApiKeyAuthenticator;
    },
  ) {
    const { config, cache } = kits;
    const sessions = new SessionsRepository(kits.db.knex, cache);
    // One per-account failure count for login and for re-entering the password while signed in
    // (password change, enabling 2FA): a stolen access token is no way around the login limit.
    const failuresPerAccount = new RateLimiter(config.rate_limits.login_failures_per_account, ms(config.rate_limits.login_window));
    const passwordConfirmer = new PasswordConfirmation(needs.userAccounts, needs.passwordHasher, failuresPerAccount);
    const auth = new AuthService({
      users: needs.userAccounts,
      sessions,
      tokens: new AccessTokens(config.auth.jwt_secret, ms(config.auth.access_ttl) / 1000),
      passwords: needs.passwordHasher,
      audit: needs.auditSink,
      secondFactor: needs.secondFactor,
      apiKeys: needs.apiKeyAuthenticator,
      loginPerIp: new RateLimiter(config.rate_limits.login_per_minute_per_ip, 60_000),
      failuresPerAccount,
      refreshTtlMs: ms(config.auth.refresh_ttl),
    });
    const requestAuthenticator: Authenticator = createAuthenticator(auth, new RateLimiter(config.rate_limits.auth_failures_per_minute_per_ip, 60_000), (token) =>
      isLocalAdminToken(config.auth.jwt_secret, token),
    );
    return {
      provides: { sessionRevoker: sessions, passwordConfirmer },
      services: { auth },
      routes: (registry) => {
        registry.setAuthenticator(requestAuthenticator);
        registerAuthRoutes(registry, { auth, profile: (actor) => needs.userProfiles.profile(actor), profileSchema: needs.userProfiles.schema });
      },
    };
  },
});
