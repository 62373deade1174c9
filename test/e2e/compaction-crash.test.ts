import { expect } from 'chai';
import pg from 'pg';
import { declaredJobs } from '../../src/app/build-app.js';
import { decodeChunk } from '../../src/features/telemetry/chunk-codec.js';
import { CHUNK_WINDOW_MS } from '../../src/features/telemetry/telemetry-tables.js';
import { testEnv } from '../support/config.js';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { runBin, startDaemon, type Daemon } from '../support/daemon.js';
import { ApiClient } from '../support/http.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const SERIES = 20;
const POINTS = 500;
const HOUR = 3_600_000;

/**
 * Crash safety of the two tiers (DESIGN §3): the real daemon compacts every second (its
 * compaction job scheduled at `* * * * * *`, five series per transaction) while clients keep
 * sending points into windows it has already compacted (late data, merged by each run). The
 * daemon is SIGKILLed while a compaction transaction is open; after a restart and another
 * compaction, every acknowledged point is stored exactly once across `points` and
 * `point_chunks`, and nothing is stored twice.
 */
describe('compaction crash safety: SIGKILL during compaction under ingest', function () {
  this.timeout(180_000);
  let url: string;
  let env: Record<string, string>;
  let daemon: Daemon | undefined;

  before(async () => {
    url = await cloneDatabase();
    const jobs = Object.fromEntries(declaredJobs().map((j) => [j.name, { enabled: false }]));
    env = testEnv(url, {
      SENTINEL_INGEST_POINTS_PER_SECOND: '100000000',
      SENTINEL_STORAGE_COMPACT_BATCH_SERIES: '5',
      SENTINEL_JOBS: JSON.stringify({ ...jobs, compaction: { schedule: '* * * * * *' } }),
    });
  });
  after(async () => {
    if (daemon && daemon.proc.exitCode === null) {
      daemon.proc.kill('SIGKILL');
      await daemon.exited;
    }
    await dropDatabase(url);
  });

  /** The compaction transaction the daemon has open right now, if any (what the kill cuts). */
  async function compactionInFlight(c: pg.Client, db: string): Promise<boolean> {
    const { rows } = await c.query(
      `select 1 from pg_stat_activity
        where datname = $1 and application_name = 'sentinel' and xact_start is not null
          and (query ilike 'delete from "points_p%' or query ilike '%point_chunks%')`,
      [db],
    );
    return rows.length > 0;
  }

  it('counts every acknowledged point exactly once across both tiers after a restart', async () => {
    expect(runBin(['org', 'create', 'crash'], env).code).to.equal(0);
    const created = runBin(['apikey', 'create', '--org', 'crash', '--name', 'k', '--json'], env);
    expect(created.code, created.stderr).to.equal(0);
    const key = (JSON.parse(created.stdout) as { secret: string }).secret;
    daemon = await startDaemon(env, ['serve']);
    const api = new ApiClient(`http://127.0.0.1:${daemon.port}`);

    // Every point has its own id (its value); its time is spread over a day of windows that are
    // all behind the compaction horizon (now − 2 h, rounded down to the window) when sent.
    const start = Math.floor((Date.now() - 30 * HOUR) / CHUNK_WINDOW_MS) * CHUNK_WINDOW_MS;
    const acknowledged = new Set<number>();
    const sent = new Set<number>();
    let nextId = 1;
    let stop = false;
    const client = async () => {
      while (!stop) {
        const ids = Array.from({ length: POINTS }, () => nextId++);
        for (const id of ids) sent.add(id);
        const body = JSON.stringify({
          metrics: ids.map((id) => ({ name: 'crash.value', value: id, ts: start + ((id * 104_729) % (24 * HOUR)), labels: { s: String(id % SERIES) } })),
        });
        try {
          const res = await api.post('/telemetry', key, body);
          if (res.status === 202) for (const id of ids) acknowledged.add(id);
        } catch {
          return; // the daemon is gone
        }
      }
    };
    const clients = Array.from({ length: 3 }, client);

    // Wait until runs have merged late points into chunks, then kill inside a compaction transaction.
    const db = new URL(url).pathname.slice(1);
    const watcher = new pg.Client({ connectionString: url });
    await watcher.connect();
    let killedInFlight = false;
    try {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const merged = await query<{ n: number }>(
          url,
          "select count(*)::int as n from job_runs where job = 'compaction' and outcome = 'ok' and (details->>'chunks_merged')::int > 0",
        );
        if (merged[0].n >= 1 && acknowledged.size >= 20 * POINTS) break;
        if (Date.now() > deadline) throw new Error(`no compaction merged late points in time:\n${daemon.stdout()}`);
        await sleep(100);
      }
      const killBy = Date.now() + 30_000;
      while (Date.now() < killBy) {
        if (await compactionInFlight(watcher, db)) {
          daemon.proc.kill('SIGKILL');
          killedInFlight = true;
          break;
        }
      }
    } finally {
      await watcher.end();
    }
    if (!killedInFlight) daemon.proc.kill('SIGKILL');
    await daemon.exited;
    stop = true;
    await Promise.all(clients);
    expect(killedInFlight, 'the kill landed while a compaction transaction was open').to.equal(true);

    // A restart compacts again (the lock of the killed run went with its connection).
    const killedAt = new Date();
    daemon = await startDaemon(env, ['serve']);
    const deadline = Date.now() + 60_000;
    while ((await query<{ n: number }>(url, "select count(*)::int as n from job_runs where job = 'compaction' and outcome = 'ok' and started_at > $1", [killedAt]))[0].n < 1) {
      if (Date.now() > deadline) throw new Error(`no compaction after the restart:\n${daemon.stdout()}`);
      await sleep(100);
    }
    daemon.proc.kill('SIGTERM');
    await daemon.exited;
    daemon = undefined;
    const last = runBin(['jobs', 'run', 'compaction', '--json'], env);
    expect(last.code, last.stderr).to.equal(0);

    // Both tiers, every point by its id.
    const fresh = await query<{ v: number }>(url, 'select value as v from points');
    const chunks = await query<{ data: Buffer }>(url, 'select data from point_chunks');
    const seen = new Map<number, number>();
    for (const r of fresh) seen.set(r.v, (seen.get(r.v) ?? 0) + 1);
    for (const c of chunks) for (const v of decodeChunk(c.data).values) seen.set(v, (seen.get(v) ?? 0) + 1);
    expect(fresh.length, 'all of it was compacted').to.equal(0);
    expect(acknowledged.size).to.be.at.least(20 * POINTS);
    const missing = [...acknowledged].filter((id) => seen.get(id) !== 1);
    expect(missing.length, `acknowledged points not stored exactly once (first: ${missing.slice(0, 5).map((id) => `${id}×${seen.get(id) ?? 0}`).join(', ')})`).to.equal(0);
    const twice = [...seen].filter(([, n]) => n !== 1);
    expect(twice, 'no point is stored twice').to.deep.equal([]);
    const unknown = [...seen.keys()].filter((id) => !sent.has(id));
    expect(unknown, 'only points that were sent').to.deep.equal([]);
    // Stored but unacknowledged: only the requests the kill cut off (whole batches).
    expect(seen.size - acknowledged.size).to.be.at.most(3 * POINTS);
    const sums = await query<{ n: number; c: number }>(url, 'select coalesce(sum(count), 0)::int as n, count(*)::int as c from point_chunks');
    expect(sums[0].n).to.equal(seen.size);
    expect(sums[0].c).to.be.at.most(SERIES * 13);
  });
});
