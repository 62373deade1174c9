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

export interface RestoreReport {
  id: string;
  tables: number;
  rows: number;
  migrated_to: string;
  later_migrations: string[];
  warnings: string[];
  duration_ms: number;
}

export interface PruneReport {
  kept: string[];
  removed: string[];
  temporaries_removed: string[];
  /** `sentinel_verify_*` databases a killed verify left behind. */
  scratch_databases_dropped: string[];
}
