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

/**
 * What is wrong with a manifest's table entry as a path, or null: its file must be exactly
 * dataFile(name), and the name a plain file name, so that a doctored manifest (a backup copied in
 * from elsewhere) cannot make verify or restore read outside the backup's directory.
 */
export function entryFileProblem(t: { name: string; file: string }): string | null {
  if (t.name === '' || /[/\\\0]/.test(t.name)) return `table name ${JSON.stringify(t.name)} is not a plain name`;
  if (t.file !== dataFile(t.name)) return `${t.name}: file ${JSON.stringify(t.file)} is not ${JSON.stringify(dataFile(t.name))}`;
  return null;
}

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

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

export const keyFingerprint = (encryptionKey: string): string =>
  createHash('sha256').update(`sentinel-backup-key-fingerprint:${encryptionKey}`).digest('hex').slice(0, 16);

/**
 * An order-independent checksum of COPY text: every row (line; COPY escapes newlines inside
 * values) is hashed with 32-bit FNV-1a and a finalizer, and two functions of the row hashes are
 * summed (mod 2^32 each), with the row count. Order-independent because `COPY (select * from t)`
 * promises no order and a restored table is read back in whatever order its pages hold; FNV in a
 * tight loop between native newline searches because a crypto hash object per row costs several
 * times the COPY itself (bench/backup.ts). It detects a changed, lost or added row, not an
 * adversary: the files' sha256 is what guards the bytes.
 */
export class RowHasher extends Transform {
  private a = 0;
  private b = 0;
  /** The hash of the row so far (rows may span chunks). */
  private h = FNV_OFFSET;
  rows = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.update(chunk);
    cb(null, chunk);
  }

  update(chunk: Buffer): void {
    let h = this.h;
    let pos = 0;
    for (;;) {
      const nl = chunk.indexOf(10, pos);
      const end = nl === -1 ? chunk.length : nl;
      for (let i = pos; i < end; i++) h = Math.imul(h ^ chunk[i], FNV_PRIME);
      if (nl === -1) break;
      h ^= h >>> 16;
      h = Math.imul(h, 0x85ebca6b);
      h ^= h >>> 13;
      this.a = (this.a + h) >>> 0;
      this.b = (this.b + Math.imul(h ^ (h >>> 15), 0x2c1b3c6d)) >>> 0;
      this.rows++;
      h = FNV_OFFSET;
      pos = nl + 1;
    }
    this.h = h;
  }

  digest(): string {
    return `${this.rows}:${this.a.toString(16).padStart(8, '0')}${this.b.toString(16).padStart(8, '0')}`;
  }
}
