/**
 * Backup and verify throughput, each beside the ceiling measured in the same run: a raw
 * `COPY (SELECT …) TO STDOUT` of the same tables in one REPEATABLE READ transaction, its bytes
 * drained and counted by `pg` (what any backup must read; no gzip, no files, no checksums).
 *
 *  - backup: `sentinel backup create` (the real binary against the daemon's embedded PostgreSQL):
 *    COPY, row checksums, gzip, sha256, files, fsync, rename → target ≥ 80% of the raw COPY's MB/s;
 *  - verify: `sentinel backup verify <id>`: sha256 of the files, a trial restore into a scratch
 *    database (COPY FROM, indexes, constraints), reading every table back and comparing. It does
 *    several times the work of a COPY TO, so its ratio is reported, not held to the target.
 *
 * Data: SENTINEL_BENCH_POINTS points (default 10,000,000) over SENTINEL_BENCH_SERIES series
 * (default 10,000), 60 s apart, ending now, COPYed straight into series and points.
 *
 *   npm run bench:backup
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { BIN } from '../test/support/daemon.js';
import { ensurePointPartitions, loadPointGrid, loadSeries, pct, startSentinel } from './harness.js';
import { machineLine } from './machine.js';

const SERIES = Number(process.env.SENTINEL_BENCH_SERIES ?? 10_000);
const POINTS = Number(process.env.SENTINEL_BENCH_POINTS ?? 10_000_000);
const PER_SERIES = Math.floor(POINTS / SERIES);
const SPACING_MS = 60_000;
const LOAD_CONNECTIONS = 2;
const LOAD_ROWS_PER_COMMIT = 500_000;
const MB = 1_000_000;
const ROUNDS = Number(process.env.SENTINEL_BENCH_ROUNDS ?? 2);

/** The ceiling: every data table COPYed out in one snapshot, bytes counted and dropped. */
async function rawCopy(url: string): Promise<{ ms: number; bytes: number; rows: number; perTable: Map<string, number> }> {
  const c = new pg.Client(url);
  await c.connect();
  try {
    await c.query("set timezone = 'UTC'");
    const t0 = performance.now();
    await c.query('begin isolation level repeatable read read only');
    const { rows: tables } = await c.query<{ name: string }>(
      `select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = current_schema() and c.relkind in ('r', 'p') and not c.relispartition and c.relname not like 'knex\\_migrations%'`,
    );
    let bytes = 0;
    let rows = 0;
    const perTable = new Map<string, number>();
    for (const { name } of tables) {
      const stream = c.query(copyTo(`COPY (SELECT * FROM "${name}") TO STDOUT`));
      await new Promise<void>((resolve, reject) => {
        stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
        stream.on('end', () => {
          rows += stream.rowCount;
          perTable.set(name, stream.rowCount);
          resolve();
        });
        stream.on('error', reject);
      });
    }
    await c.query('commit');
    return { ms: performance.now() - t0, bytes, rows, perTable };
  } finally {
    await c.end();
  }
}

/** `sentinel ARGS` to completion, timed (no 60 s cap: a verify of 10 M points takes longer). */
async function timedBin(args: string[], env: Record<string, string>): Promise<{ ms: number; stdout: string }> {
  const t0 = performance.now();
  const proc = spawn(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  proc.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const code = await new Promise<number | null>((resolve) => proc.once('exit', resolve));
  if (code !== 0) throw new Error(`sentinel ${args.join(' ')} exited ${code}: ${stderr}`);
  return { ms: performance.now() - t0, stdout };
}

const rate = (bytes: number, rows: number, ms: number) => `${(bytes / MB / (ms / 1000)).toFixed(1)} MB/s, ${Math.round(rows / (ms / 1000)).toLocaleString('en')} rows/s (${(ms / 1000).toFixed(1)} s)`;

// ---------------------------------------------------------------------------------------------
console.log(machineLine());
const s = await startSentinel('backup');
const admin = new pg.Client(s.pgUrl);
try {
  await admin.connect();
  console.log(`server: PostgreSQL ${(await admin.query<{ v: string }>("select current_setting('server_version') as v")).rows[0].v}`);
  const org = s.orgId;
  const t0 = performance.now();
  const ids = await loadSeries(admin, org, 'bench.backup', SERIES, (i) => ({ host: `h${i}`, shard: `s${i % 100}` }));
  const lastTs = Math.floor(Date.now() / SPACING_MS) * SPACING_MS;
  const firstTs = lastTs - (PER_SERIES - 1) * SPACING_MS;
  await ensurePointPartitions(s.pgUrl, firstTs, lastTs);
  await loadPointGrid(s.pgUrl, { orgId: org, seriesIds: ids, perSeries: PER_SERIES, firstTs, spacingMs: SPACING_MS, connections: LOAD_CONNECTIONS, rowsPerCommit: LOAD_ROWS_PER_COMMIT });
  console.log(`loaded ${(SERIES * PER_SERIES).toLocaleString('en')} points over ${SERIES.toLocaleString('en')} series with COPY in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  // Interleaved rounds (raw, backup, raw, backup …) after one warm-up pass, best of each: the
  // machine's other load hits both alike.
  await rawCopy(s.pgUrl);
  const raws: Awaited<ReturnType<typeof rawCopy>>[] = [];
  const backups: { ms: number; id: string; workMs: number }[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    raws.push(await rawCopy(s.pgUrl));
    const b = await timedBin(['backup', 'create', '--json'], s.env);
    const id = (JSON.parse(b.stdout) as { id: string }).id;
    const m = JSON.parse(readFileSync(join(s.dataDir, 'backups', id, 'manifest.json'), 'utf8')) as { started_at: string; finished_at: string };
    backups.push({ ms: b.ms, id, workMs: Date.parse(m.finished_at) - Date.parse(m.started_at) });
  }
  const ceiling = raws.reduce((a, b) => (b.ms < a.ms ? b : a));
  const backup = backups.reduce((a, b) => (b.ms < a.ms ? b : a));
  const id = backup.id;
  const manifest = JSON.parse(readFileSync(join(s.dataDir, 'backups', id, 'manifest.json'), 'utf8')) as { tables: { name: string; rows: number; bytes: number }[] };
  const rows = manifest.tables.reduce((n, t) => n + t.rows, 0);
  const gz = manifest.tables.reduce((n, t) => n + t.bytes, 0);
  // Table by table; job_runs aside: each backup is a run of the backup job, whose row (and the
  // earlier rounds') is in its own snapshot but not in an earlier raw COPY.
  for (const t of manifest.tables)
    if (t.name !== 'job_runs' && t.rows !== (ceiling.perTable.get(t.name) ?? 0)) throw new Error(`backup has ${t.rows} rows in ${t.name}, the raw COPY read ${ceiling.perTable.get(t.name) ?? 0}`);
  const secs = (xs: { ms: number }[]) => xs.map((x) => `${(x.ms / 1000).toFixed(1)} s`).join(' / ');
  console.log(`raw COPY TO STDOUT (ceiling, best of ${ROUNDS}): ${rate(ceiling.bytes, ceiling.rows, ceiling.ms)}; rounds ${secs(raws)}`);
  console.log(
    `backup create (the CLI, process start to exit, best of ${ROUNDS}): ${rate(ceiling.bytes, rows, backup.ms)} of COPY text → ${(gz / MB).toFixed(1)} MB gzipped (${pct(gz, ceiling.bytes)})   ratio ${pct(ceiling.ms, backup.ms)} (target >= 80%); rounds ${secs(backups)}`,
  );
  console.log(`  of which the snapshot to the published backup (manifest started_at → finished_at): ${(backup.workMs / 1000).toFixed(1)} s   ratio ${pct(ceiling.ms, backup.workMs)}`);
  const verify = await timedBin(['backup', 'verify', id, '--json'], s.env);
  console.log(`backup verify (checksums + trial restore + read back): ${rate(ceiling.bytes, rows, verify.ms)}   ratio ${pct(ceiling.ms, verify.ms)} of the raw COPY TO (reported, no target)`);
} finally {
  await admin.end().catch(() => undefined);
  await s.stop();
}
