import { createHash } from 'node:crypto';
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { pino } from 'pino';
import { DAY_MS, PartitionsRepository, dayStart, partitionName } from '../../src/db/partitions.js';
import { PartitionAnalyzer } from '../../src/features/retention/partition-maintenance.js';
import { QueryRepository } from '../../src/features/telemetry/query-repository.js';
import { cloneDatabase, dropDatabase } from '../support/db.js';
import { explainAnalyzed, planNodes, type PlanNode } from '../support/plans.js';
import { recordStatements, type Statement } from '../support/statement-spy.js';

/**
 * Plans over a fresh day partition (issue 13, point 3). Hundreds of thousands of rows land in
 * today's partition with no ANALYZE (autovacuum is off for it, so nothing analyzes it behind the
 * test's back): the `analyze` job's step gives it statistics, after which the API's newest-logs
 * statement reads the (org_id, ts, id) index backwards up to its limit (no Sort over the
 * partition, about `limit` rows read), and a one-series metric read goes through the points index.
 * Before the step, the same logs statement sorts the whole range (checked too, so the test shows
 * what the step changes).
 */

const TABLES = ['points', 'point_chunks', 'logs', 'events'];
const LOG_ROWS = 300_000;
const SERIES = 200;
const POINTS_PER_SERIES = 1500;
const HOUR = 3_600_000;

const reads = (n: PlanNode, relation: string) => planNodes(n).filter((x) => x['Relation Name'] === relation);
/** Sort nodes with a scan of `relation` below them. */
const sortsOver = (n: PlanNode, relation: string) => planNodes(n).filter((x) => /Sort/.test(x['Node Type']) && reads(x, relation).length > 0);

describe('fresh partitions: plans without waiting for autovacuum', function () {
  this.timeout(90_000);
  let url: string;
  let knex: Knex;
  let readsKnex: Knex;
  let repo: QueryRepository;
  const captured: Statement[] = [];
  // Noon of today (UTC) stands for "now", whatever the time of the run: the data and every range
  // read (the last hour, the last 24 h) are then in today's partition, and "the last 24 h" spans
  // exactly two. At the real time just after midnight, the last hour would reach into yesterday's
  // (empty) partition and the plans would be different ones.
  const today = dayStart(Date.now());
  const now = today + 12 * HOUR;
  const from = now - 6 * HOUR;
  const orgA = '0000000a-0000-4000-8000-000000000001';
  const orgB = '0000000b-0000-4000-8000-000000000002';
  const logsToday = partitionName('logs', today);
  const pointsToday = partitionName('points', today);
  const seriesIds: number[] = [];

  async function stats(name: string) {
    const { rows } = await knex.raw<{ rows: { reltuples: number; analyzed: boolean; modified: number }[] }>(
      `select c.reltuples::float8 as reltuples, s.n_mod_since_analyze::float8 as modified, (s.last_analyze is not null or s.last_autoanalyze is not null) as analyzed
         from pg_class c join pg_stat_user_tables s on s.relid = c.oid where c.relname = ?`,
      [name],
    );
    return rows[0];
  }

  /** Waits until the statistics collector has counted the rows just written to `name`. */
  async function counted(name: string, atLeast: number): Promise<void> {
    const until = Date.now() + 20_000;
    while ((await stats(name)).modified < atLeast) {
      if (Date.now() > until) throw new Error(`${name}: the collector did not report ${atLeast} changed rows`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** The statements `fn` sends on the reads pool, as sent. */
  async function statementsOf(fn: () => Promise<unknown>): Promise<Statement[]> {
    captured.length = 0;
    await fn();
    return captured.filter((s) => !/^\s*set /i.test(s.sql));
  }

  const newestLogs = (startMs: number, minSeverity: number | null = null) =>
    statementsOf(() => repo.logs(orgA, { startMs, endMs: now + 1, minSeverity, bodyLike: null, attributes: [], limit: 101 }, 30_000));

  /** The metric read of one series of the last hour reads the fresh partition through its index, that series' points only. */
  async function expectOneSeriesByIndex(): Promise<void> {
    const statements = await statementsOf(() =>
      repo.metricRead(
        orgA,
        { name: 'cpu', matchers: [{ label: 'host', op: '=', value: 'h7', source: 'host=h7' }], by: [], startMs: now - HOUR, endMs: now, stepMs: 60_000, agg: 'avg', buckets: 60, maxSeries: 1000, maxPoints: 100_000 },
        30_000,
      ),
    );
    const onPoints = statements.filter((s) => /\bpoints\b/.test(s.sql));
    expect(onPoints.length).to.be.greaterThan(0);
    let read = 0;
    for (const st of onPoints) {
      const plan = await explainAnalyzed(readsKnex, st);
      const scans = reads(plan, pointsToday);
      expect(scans.length, JSON.stringify(plan)).to.be.greaterThan(0);
      for (const n of scans) {
        expect(n['Node Type'], JSON.stringify(plan)).to.match(/^(Index Scan|Index Only Scan|Bitmap Heap Scan)$/);
        const index = n['Node Type'] === 'Bitmap Heap Scan' ? n.Plans?.find((c) => c['Node Type'] === 'Bitmap Index Scan')?.['Index Name'] : n['Index Name'];
        expect(index, JSON.stringify(n)).to.match(/^points_p\d{8}_org_id_series_id_ts/);
        read += (n['Actual Rows'] ?? 0) * (n['Actual Loops'] ?? 1);
      }
    }
    // One series' points of the hour (POINTS_PER_SERIES spread over [from, now)), not the partition's.
    expect(read).to.be.greaterThan(0);
    expect(read).to.be.at.most(Math.ceil(POINTS_PER_SERIES / Math.max(1, (now - from) / HOUR)) + 2);
  }

  before(async () => {
    url = await cloneDatabase();
    knex = knexFactory({ client: 'pg', connection: url, pool: { min: 1, max: 1 } });
    readsKnex = knexFactory({ client: 'pg', connection: url, pool: { min: 1, max: 2 } });
    // Record every statement of the reads pool (the repository sends them on its connections).
    recordStatements(readsKnex, captured);
    repo = new QueryRepository(knex, readsKnex);
    await knex.raw(`insert into organizations (id, slug, name) values (?, 'fresh-a', 'A'), (?, 'fresh-b', 'B')`, [orgA, orgB]);
    for (const t of TABLES) await new PartitionsRepository(knex, TABLES).ensure(t, [today - DAY_MS, today, today + DAY_MS]);
    for (const p of [logsToday, pointsToday]) await knex.raw(`alter table ${p} set (autovacuum_enabled = off)`);

    // Logs: org A's rows evenly over [from, now), org B's (another tenant in the same partition) in between.
    await knex.raw(
      `insert into logs (org_id, ts, severity_number, severity_text, body)
       select case when g % 10 = 0 then ?::uuid else ?::uuid end, ?::timestamptz + g * (?::float8 * interval '1 millisecond'),
              case when g % 7 = 0 then 17 else 9 end, 'INFO', 'line ' || g
         from generate_series(0, ? - 1) g`,
      [orgB, orgA, new Date(from).toISOString(), (now - from) / LOG_ROWS, LOG_ROWS],
    );
    // Points: SERIES series of org A, each a point every (now - from) / POINTS_PER_SERIES, time-major as ingest writes them.
    for (let i = 0; i < SERIES; i++) {
      const labels = JSON.stringify({ host: `h${i}` });
      const hash = createHash('sha256').update(`cpu\u0000${labels}`).digest();
      const { rows } = await knex.raw<{ rows: { id: string }[] }>(`insert into series (org_id, name, labels, labels_hash) values (?, 'cpu', ?::jsonb, ?) returning id`, [orgA, labels, hash]);
      seriesIds.push(Number(rows[0].id));
    }
    await knex.raw(
      `insert into points (org_id, series_id, ts, value)
       select ?, s, ?::timestamptz + k * (?::float8 * interval '1 millisecond'), k from generate_series(0, ? - 1) k, unnest(?::bigint[]) s order by k, s`,
      [orgA, new Date(from).toISOString(), (now - from) / POINTS_PER_SERIES, POINTS_PER_SERIES, seriesIds],
    );
    await knex.raw('select pg_stat_force_next_flush()');
    await counted(logsToday, LOG_ROWS);
    await counted(pointsToday, SERIES * POINTS_PER_SERIES);
  });

  after(async () => {
    await readsKnex?.destroy();
    await knex?.destroy();
    if (url) await dropDatabase(url);
  });

  it('before any analyze, the partition has no statistics and the newest logs of the last hour sort the whole hour', async () => {
    const s = await stats(logsToday);
    expect(s.analyzed).to.equal(false);
    expect(s.reltuples).to.equal(-1);
    const [st] = await newestLogs(now - HOUR);
    expect(st.sql).to.match(/from logs/);
    const plan = await explainAnalyzed(readsKnex, st);
    // What the analyze step is for: PostgreSQL guesses a handful of rows and sorts them all.
    expect(sortsOver(plan, logsToday), JSON.stringify(plan)).to.have.length(1);
    // The metric read does not depend on it: the series' index either way.
    await expectOneSeriesByIndex();
  });

  it("the analyze job's step analyzes today's partitions that changed enough, and only those", async () => {
    const analyzer = new PartitionAnalyzer(new PartitionsRepository(knex, TABLES), {}, pino({ level: 'silent' }));
    const report = await analyzer.run(now);
    expect(report.analyzed).to.have.members([logsToday, pointsToday]);
    expect(report.deferred).to.deep.equal([]);
    for (const p of [logsToday, pointsToday]) {
      const s = await stats(p);
      expect(s.analyzed, p).to.equal(true);
      expect(s.reltuples, p).to.be.greaterThan(0);
    }
    // Nothing changed since: the next run leaves them alone.
    expect((await analyzer.run(now)).analyzed).to.deep.equal([]);
  });

  for (const [what, span, minSeverity] of [
    ['the last hour (API default)', HOUR, null],
    ['the last 24 h (two partitions)', 24 * HOUR, null],
    ['the last hour, warnings and up', HOUR, 13],
  ] as const) {
    it(`newest 100 logs of ${what}: the index read backwards, no Sort over the partition`, async () => {
      const statements = await newestLogs(now - span, minSeverity);
      expect(statements).to.have.length(1);
      const plan = await explainAnalyzed(readsKnex, statements[0]);
      expect(sortsOver(plan, logsToday), JSON.stringify(plan)).to.deep.equal([]);
      const scans = reads(plan, logsToday);
      expect(scans.map((n) => n['Node Type'])).to.deep.equal(['Index Scan']);
      expect(scans[0]['Scan Direction']).to.equal('Backward');
      // Read up to the limit, not the range: a few hundred rows at most (org B's and the severity filter's skipped ones).
      expect(scans[0]['Actual Rows']).to.be.at.most(101);
      const rows = await repo.logs(orgA, { startMs: now - span, endMs: now + 1, minSeverity, bodyLike: null, attributes: [], limit: 101 }, 30_000);
      expect(rows).to.have.length(101);
      for (let i = 1; i < rows.length; i++) {
        const [a, b] = [rows[i - 1], rows[i]];
        expect(a.ts.getTime() > b.ts.getTime() || (a.ts.getTime() === b.ts.getTime() && BigInt(a.id) > BigInt(b.id)), `row ${i} newest first`).to.equal(true);
      }
    });
  }

  it('a metric read of one series over the fresh partition uses the points index', async () => {
    await expectOneSeriesByIndex();
  });

  it('a partition changed by more than 1,000 rows + 10% since its analyze is analyzed again; a small change is not', async () => {
    const analyzer = new PartitionAnalyzer(new PartitionsRepository(knex, TABLES), {}, pino({ level: 'silent' }));
    const before = await stats(logsToday);
    const more = Math.ceil(1000 + 0.1 * before.reltuples) + 500;
    await knex.raw(`insert into logs (org_id, ts, severity_number, severity_text, body) select ?, ?::timestamptz, 9, 'INFO', 'more' from generate_series(1, ?)`, [
      orgA,
      new Date(now - 1000).toISOString(),
      more,
    ]);
    await knex.raw(`insert into points (org_id, series_id, ts, value) select ?, ?, ?::timestamptz + g * interval '1 microsecond', 1 from generate_series(1, 500) g`, [
      orgA,
      seriesIds[0],
      new Date(now - 1000).toISOString(),
    ]);
    await knex.raw('select pg_stat_force_next_flush()');
    await counted(logsToday, more);
    await counted(pointsToday, 500);
    expect((await analyzer.run(now)).analyzed).to.deep.equal([logsToday]);
  });
});
