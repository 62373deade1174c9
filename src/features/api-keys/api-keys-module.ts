import type { AuditSink } from '../../core/audit.js';
import type { OrgAccess } from '../../core/authorize.js';
import { configuredMs } from '../../core/duration.js';
import { defineModule } from '../feature-module.js';
import { ApiKeysRepository } from './api-keys-repository.js';
import { registerApiKeyRoutes } from './api-keys-routes.js';
import { ApiKeysService } from './api-keys-service.js';

/** Organizations' API keys; the auth feature resolves `snt_…` bearer tokens through it. */
export const apiKeysModule = defineModule({
  name: 'api-keys',
  requires: ['auditSink', 'orgAccess'],
  provides: ['apiKeyAuthenticator'],
  build(kits, needs: { auditSink: AuditSink; orgAccess: OrgAccess }) {
    const apiKeys = new ApiKeysService(new ApiKeysRepository(kits.db.knex, kits.cache), needs.orgAccess, needs.auditSink, {
      rotationGraceMs: configuredMs(kits.config.auth.api_key_rotation_grace),
    });
    return {
      provides: { apiKeyAuthenticator: apiKeys },
      services: { apiKeys },
      routes: (registry) => registerApiKeyRoutes(registry, apiKeys),
    };
  },
});
