import { Type, type Static } from '@sinclair/typebox';
import { ID_PATTERN } from './backup-format.js';

export const BackupIdSchema = Type.String({ pattern: ID_PATTERN, description: 'Backup id: its start time (UTC) and a random suffix.' });
export const BackupParams = Type.Object({ id: BackupIdSchema });

export const BackupSummarySchema = Type.Object({
  id: BackupIdSchema,
  status: Type.Union([Type.Literal('complete'), Type.Literal('damaged')], { description: 'complete: a manifest was written and the directory published; damaged: its manifest is missing or unreadable.' }),
  problem: Type.Optional(Type.String()),
  started_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  finished_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  sentinel_version: Type.Union([Type.String(), Type.Null()]),
  schema_version: Type.Union([Type.String(), Type.Null()]),
  postgres_version: Type.Union([Type.String(), Type.Null()]),
  tables: Type.Integer({ minimum: 0 }),
  rows: Type.Integer({ minimum: 0 }),
  bytes: Type.Integer({ minimum: 0, description: 'Size on disk, every file.' }),
});
export type BackupSummary = Static<typeof BackupSummarySchema>;

export const BackupListSchema = Type.Object({ items: Type.Array(BackupSummarySchema) });

export const VerifyReportSchema = Type.Object({
  id: BackupIdSchema,
  ok: Type.Boolean(),
  problems: Type.Array(Type.String(), { description: 'What failed: missing or changed files, row counts or content checksums that differ after the trial restore.' }),
  tables: Type.Integer({ minimum: 0 }),
  rows: Type.Integer({ minimum: 0 }),
  duration_ms: Type.Integer({ minimum: 0 }),
});
export type VerifyReport = Static<typeof VerifyReportSchema>;

export const RestoreReportSchema = Type.Object({
  id: BackupIdSchema,
  tables: Type.Integer({ minimum: 0 }),
  rows: Type.Integer({ minimum: 0 }),
  migrated_to: Type.String({ description: "The backup's schema version, which the target was migrated to before loading." }),
  later_migrations: Type.Array(Type.String(), { description: 'Migrations this Sentinel has beyond the backup\'s, applied after loading.' }),
  warnings: Type.Array(Type.String()),
  duration_ms: Type.Integer({ minimum: 0 }),
});
/** `sentinel backup restore --json`. */
export type RestoreReport = Static<typeof RestoreReportSchema>;

export const PruneReportSchema = Type.Object({
  kept: Type.Array(BackupIdSchema),
  removed: Type.Array(BackupIdSchema),
  temporaries_removed: Type.Array(Type.String(), { description: 'Leftover `.tmp-<id>` directories of crashed backups.' }),
  scratch_databases_dropped: Type.Array(Type.String(), { description: '`sentinel_verify_*` databases a killed verify left behind.' }),
});
/** `sentinel backup prune --json` (and the backup job's prune). */
export type PruneReport = Static<typeof PruneReportSchema>;
