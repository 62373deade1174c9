import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { Type, type Static } from '@sinclair/typebox';

/*
 * What a backup is on disk: `<backups.dir>/<id>/` with one `<table>.copy.gz` per table (the
 * gzipped text of `COPY … TO STDOUT`) and `manifest.json`, written last. A directory whose name
 * starts with `.tmp-` is a backup being written (or one that failed): never listed as good.
 */

export const FORMAT_VERSION = 1;
export const MANIFEST = 'manifest.json';
export const TEMP_PREFIX = '.tmp-';
export const ID_PATTERN = '^[0-9]{8}T[0-9]{9}Z-[0-9a-f]{6}$';
export const dataFile = (table: string): string => `${table}.copy.gz`;

/*
 * The session settings both ends of a COPY run with: COPY's text form follows them (time zone
 * of timestamptz, bytea and float output), so a checksum taken at backup time and one taken
 * after a restore, perhaps on another PostgreSQL major, see the same bytes.
 */
export const SESSION_SETTINGS: Record<string, string> = {
  TimeZone: 'UTC',
  DateStyle: 'ISO, YMD',
  IntervalStyle: 'postgres',
  bytea_output: 'hex',
  extra_float_digits: '1',
  client_encoding: 'UTF8',
  statement_timeout: '0',
};

export const TableEntrySchema = Type.Object({
  name: Type.String(),
  file: Type.String(),
  columns: Type.Array(Type.String()),
  rows: Type.Integer({ minimum: 0 }),
  /** Size of the gzipped file. */
  bytes: Type.Integer({ minimum: 0 }),
  sha256: Type.String({ description: 'sha256 of the gzipped file.' }),
  content: Type.String({ description: 'Order-independent checksum of the rows (see RowHasher).' }),
  /** Its day-partitions (name and bound), recreated before loading the parent on restore. */
  partitions: Type.Array(Type.Object({ name: Type.String(), bound: Type.String() })),
});

export const SequenceEntrySchema = Type.Object({ name: Type.String(), last_value: Type.String(), is_called: Type.Boolean() });

export const ManifestSchema = Type.Object({
  format_version: Type.Integer(),
  id: Type.String(),
  sentinel_version: Type.String(),
  schema_version: Type.String({ description: 'The latest migration applied to the database backed up.' }),
  postgres_version: Type.String(),
  started_at: Type.String(),
  finished_at: Type.String(),
  /** sha256 over a fixed prefix and auth.encryption_key: tells whether a host has the same key, not the key. */
  encryption_key_fingerprint: Type.String(),
  tables: Type.Array(TableEntrySchema),
  sequences: Type.Array(SequenceEntrySchema),
});

export type Manifest = Static<typeof ManifestSchema>;
export type TableEntry = Static<typeof TableEntrySchema>;

export const keyFingerprint = (encryptionKey: string): string =>
  createHash('sha256').update(`sentinel-backup-key-fingerprint:${encryptionKey}`).digest('hex').slice(0, 16);

/**
 * An order-independent checksum of COPY text: every row (line) is hashed with two 32-bit FNV-1a
 * variants and the hashes are summed (mod 2^32 each), with the row count. Order-independent
 * because `COPY (select * from t)` promises no order and a restored table is read back in
 * whatever order its pages hold; a per-byte loop because a crypto hash object per row costs
 * several times the COPY itself. It detects a changed, lost or added row, not an adversary:
 * the files' sha256 is what guards the bytes.
 */
export class RowHasher extends Transform {
  private a = 0;
  private b = 0;
  private h1 = 0x811c9dc5;
  private h2 = 0x01000193 ^ 0x5bd1e995;
  rows = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.update(chunk);
    cb(null, chunk);
  }

  update(chunk: Buffer): void {
    let h1 = this.h1;
    let h2 = this.h2;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i];
      if (c === 10) {
        this.a = (this.a + h1) >>> 0;
        this.b = (this.b + h2) >>> 0;
        this.rows++;
        h1 = 0x811c9dc5;
        h2 = 0x01000193 ^ 0x5bd1e995;
      } else {
        h1 = Math.imul(h1 ^ c, 0x01000193);
        h2 = Math.imul(h2 ^ c, 0x5bd1e995) ^ (h2 >>> 15);
      }
    }
    this.h1 = h1;
    this.h2 = h2;
  }

  digest(): string {
    return `${this.rows}:${this.a.toString(16).padStart(8, '0')}${this.b.toString(16).padStart(8, '0')}`;
  }
}
