import { AdminStatusSchema } from '../../core/status.js';
import { actorOf } from '../../http/context.js';
import type { ApiRegistry } from '../../http/registry.js';
import type { StatusService } from './status-service.js';

export function registerStatusRoutes(registry: ApiRegistry, status: StatusService): void {
  registry.route({
    method: 'get',
    path: '/admin/status',
    operationId: 'getAdminStatus',
    summary: 'The instance at a glance: process, database and pools, HTTP and ingest over the last minutes, alerts, jobs, backups, late heartbeats (superadmins)',
    description:
      'What `sentinel status` shows, cheap enough to be asked every second. Besides a superadmin\'s access token it takes a local admin token: ' +
      'a short-lived token `sentinel status` mints on the host from the daemon\'s own signing key (no other route takes it).',
    tags: ['admin'],
    auth: 'user',
    localAdmin: true,
    // The dashboard asks every second, one per open terminal: the per-IP request limit (100 a
    // minute by default) would lock out the second. Refused credentials are still limited per
    // address by the authenticator. What a request costs is bounded instead: the database-backed
    // sections are assembled at most once a second whoever asks (StatusService, DB_SECTIONS_MS).
    rateLimit: 'none',
    responses: {
      200: { description: 'The status.', schema: AdminStatusSchema },
      401: { description: 'No token, or one that is invalid or expired.' },
      403: { description: 'Not a superadmin (or an API key).' },
    },
    handler: async (ctx) => {
      ctx.set('Cache-Control', 'no-store');
      ctx.body = await status.status(actorOf(ctx));
    },
  });
}
