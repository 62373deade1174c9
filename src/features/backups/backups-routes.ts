import { actorOf } from '../../http/context.js';
import type { ApiRegistry } from '../../http/registry.js';
import type { BackupService } from './backup-service.js';
import { BackupListSchema, BackupParams, BackupSummarySchema, VerifyReportSchema } from './backups-schemas.js';

export function registerBackupRoutes(registry: ApiRegistry, backups: BackupService): void {
  registry.route({
    method: 'get',
    path: '/admin/backups',
    operationId: 'listBackups',
    summary: 'The backups in backups.dir, newest first (superadmins)',
    tags: ['admin'],
    auth: 'user',
    responses: { 200: { description: 'Every backup directory, complete or damaged.', schema: BackupListSchema }, 403: { description: 'Not a superadmin.' } },
    handler: async (ctx) => {
      ctx.body = { items: await backups.list(actorOf(ctx)) };
    },
  });

  registry.route({
    method: 'post',
    path: '/admin/backups',
    operationId: 'createBackup',
    summary: 'Take a backup now (a manual run of the backup job, then its prune) and answer once it is complete (superadmins)',
    tags: ['admin'],
    auth: 'user',
    responses: {
      201: { description: 'The backup, written and published.', schema: BackupSummarySchema },
      403: { description: 'Not a superadmin.' },
      409: { description: 'A backup is running (the backup job holds its lock somewhere on the database).' },
      500: { description: 'The backup failed (nothing is left that looks like a good backup).' },
    },
    handler: async (ctx) => {
      ctx.body = await backups.createNow(actorOf(ctx));
      ctx.status = 201;
    },
  });

  registry.route({
    method: 'post',
    path: '/admin/backups/{id}/verify',
    operationId: 'verifyBackup',
    summary: 'Check the checksums and restore into a scratch database to compare every table (superadmins)',
    tags: ['admin'],
    auth: 'user',
    params: BackupParams,
    responses: {
      200: { description: 'The verification ran; `ok` says whether the backup is good and `problems` what is wrong.', schema: VerifyReportSchema },
      404: { description: 'No such backup (also to anyone but a superadmin).' },
    },
    handler: async (ctx, { params }) => {
      ctx.body = await backups.verify(actorOf(ctx), params.id);
    },
  });
}
