import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { ID_PATTERN, MANIFEST, ManifestSchema, TEMP_PREFIX, entryFileProblem, type Manifest } from './backup-format.js';
import type { Readable, Writable } from 'node:stream';

/*
 * The backups directory. A backup is written into `.tmp-<id>` and renamed to `<id>` only once
 * every file and the directory are fsynced, so a crash or a full disk leaves a temporary
 * directory (never listed, removed by prune), not a backup that looks good.
 */

const ID = new RegExp(ID_PATTERN);

export interface StoredBackup {
  id: string;
  /** Null when manifest.json is missing or unreadable: a damaged backup, never "good". */
  manifest: Manifest | null;
  problem?: string;
  bytes: number;
}

export function newBackupId(now: Date): string {
  // Milliseconds, so that ids sort by time even for backups taken within one second.
  return `${now.toISOString().replace(/[-:.]/g, '')}-${randomBytes(3).toString('hex')}`;
}

export const isBackupId = (id: string): boolean => ID.test(id);

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export class BackupStore {
  constructor(readonly dir: string) {}

  path(id: string): string {
    return join(this.dir, id);
  }

  /** A fresh temporary directory for backup `id` (the backups directory made 0700 if new). */
  async begin(id: string): Promise<string> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = join(this.dir, `${TEMP_PREFIX}${id}`);
    await mkdir(tmp, { mode: 0o700 });
    return tmp;
  }

  /** A new file in the temporary directory, 0600, refusing to overwrite. */
  writer(tmp: string, file: string): Writable {
    return createWriteStream(join(tmp, file), { flags: 'wx', mode: 0o600 });
  }

  /** Manifest last, then every file and the directory fsynced, then the rename that publishes it. */
  async commit(tmp: string, manifest: Manifest): Promise<void> {
    const fh = await open(join(tmp, MANIFEST), 'wx', 0o600);
    try {
      await fh.writeFile(`${JSON.stringify(manifest, null, 2)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    for (const t of manifest.tables) await fsyncPath(join(tmp, t.file));
    await fsyncPath(tmp);
    await rename(tmp, this.path(manifest.id));
    await fsyncPath(this.dir);
  }

  async discard(tmp: string): Promise<void> {
    await rm(tmp, { recursive: true, force: true });
  }

  reader(id: string, file: string): Readable {
    return createReadStream(join(this.path(id), file));
  }

  async fileSize(id: string, file: string): Promise<number | null> {
    try {
      return (await stat(join(this.path(id), file))).size;
    } catch {
      return null;
    }
  }

  /** One backup as stored; null when there is no such directory. */
  async read(id: string): Promise<StoredBackup | null> {
    if (!isBackupId(id)) return null;
    let names: string[];
    try {
      names = await readdir(this.path(id));
    } catch {
      return null;
    }
    let bytes = 0;
    for (const n of names) bytes += (await stat(join(this.path(id), n)).catch(() => ({ size: 0 }))).size;
    try {
      const parsed: unknown = JSON.parse(await readFile(join(this.path(id), MANIFEST), 'utf8'));
      if (!Value.Check(ManifestSchema, parsed)) return { id, manifest: null, problem: 'manifest.json does not have the expected shape', bytes };
      if (parsed.id !== id) return { id, manifest: null, problem: `manifest.json names another backup (${parsed.id})`, bytes };
      for (const t of parsed.tables) {
        const problem = entryFileProblem(t);
        if (problem) return { id, manifest: null, problem: `manifest.json: ${problem}`, bytes };
      }
      return { id, manifest: parsed, bytes };
    } catch (err) {
      return { id, manifest: null, problem: `manifest.json unreadable: ${(err as Error).message}`, bytes };
    }
  }

  /** Every backup directory, newest first (ids sort by time); temporary ones aside. */
  async list(): Promise<StoredBackup[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: StoredBackup[] = [];
    for (const n of names.filter(isBackupId).sort().reverse()) {
      const b = await this.read(n);
      if (b) out.push(b);
    }
    return out;
  }

  async temporaries(): Promise<string[]> {
    try {
      return (await readdir(this.dir)).filter((n) => n.startsWith(TEMP_PREFIX));
    } catch {
      return [];
    }
  }

  async remove(name: string): Promise<void> {
    await rm(join(this.dir, name), { recursive: true, force: true });
  }
}
