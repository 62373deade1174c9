import type { AuditSink } from '../../core/audit.js';
import { RateLimiter } from '../../core/rate-limiter.js';
import { SecretBox } from '../../core/secrets.js';
import { defineModule } from '../feature-module.js';
import { TotpRepository } from './totp-repository.js';
import { registerTotpRoutes } from './totp-routes.js';
import { TOTP_ATTEMPT_LIMIT, TOTP_ATTEMPT_WINDOW_MS, TotpService, type PasswordConfirmer, type UserLookup } from './totp-service.js';

/** TOTP second factor and recovery codes; login asks it through secondFactor. */
export const totpModule = defineModule({
  name: 'totp',
  requires: ['auditSink', 'userAccounts', 'passwordConfirmer'],
  provides: ['secondFactor'],
  build(kits, needs: { auditSink: AuditSink; userAccounts: UserLookup; passwordConfirmer: PasswordConfirmer }) {
    const totp = new TotpService({
      repo: new TotpRepository(kits.db.knex),
      password: needs.passwordConfirmer,
      box: new SecretBox(kits.config.auth.encryption_key),
      users: needs.userAccounts,
      audit: needs.auditSink,
      attempts: new RateLimiter(TOTP_ATTEMPT_LIMIT, TOTP_ATTEMPT_WINDOW_MS),
    });
    return {
      provides: { secondFactor: totp },
      services: { totp },
      routes: (registry) => registerTotpRoutes(registry, { totp }),
    };
  },
});
