import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { DAY_MS, PartitionsRepository, partitionName } from '../../src/db/partitions.js';
import { CompactionRepository } from '../../src/features/telemetry/compaction-repository.js';
import { CompactionService } from '../../src/features/telemetry/compaction-service.js';
import { QueryRepository, type MetricReadSpec } from '../../src/features/telemetry/query-repository.js';
import { cloneDatabase, dropDatabase } from '../support/db.js';
import { explainAnalyzed, planNodes } from '../support/plans.js';
import { recordStatements, type Statement } from '../support/statement-spy.js';

/**
 * A rate read over compacted counters right after they were written: the series table and the
 * chunk partition have no statistics yet (autovacuum is off for them here, as it is busy or has
 * not come round in real life). Whether a chunk may be read by its stored increase depends on its
 * series not being an up-down counter; that check must cost the statement once, not once per
 * chunk: without statistics PostgreSQL planned a correlated NOT EXISTS over the matching series
 * as a scan of all of them for every chunk (measured: 250 counters × 500 chunks, the statement's
 * execution 8 → 19 ms). Checked in the executed plans: no scan of the matching series (the CTE `s`)
 * runs more than once. And the answers are those of the same reads after ANALYZE.
 */
describe('a rate read over compacted counters before any statistics', function () {
  this.timeout(60_000);
  const org = randomUUID();
  const HOUR = 3_600_000;
  const SERIES = 40;
  // Four hours of points at 60 s ending on a 2-hour boundary at least 4 h ago: two whole windows, both compacted below.
  const end = Math.floor((Date.now() - 4 * HOUR) / (2 * HOUR)) * 2 * HOUR;
  const start = end - 4 * HOUR;
  let url: string;
  let knex: Knex;
  let reads: Knex;
  let repo: QueryRepository;
  const captured: Statement[] = [];
  /** The days of the data (their point_chunks partitions are analyzed only at the end). */
  const chunkDays: number[] = [];

  const spec = (stepMs: number, agg: 'rate' | 'increase', from = start): MetricReadSpec => ({
    name: 'jiffies_total',
    matchers: [],
    by: [],
    startMs: from,
    endMs: end,
    stepMs,
    agg,
    buckets: (end - from) / stepMs,
    maxSeries: 1000,
    maxPoints: 1_000_000,
  });

  before(async () => {
    url = await cloneDatabase();
    knex = knexFactory({ client: 'pg', connection: url, pool: { min: 1, max: 2 } });
    reads = knexFactory({ client: 'pg', connection: url, pool: { min: 1, max: 1 } });
    recordStatements(reads, captured);
    repo = new QueryRepository(knex, reads, { compactAfterMs: 2 * HOUR });
    const days = [...new Set([start, end - 1].map((t) => Math.floor(t / DAY_MS) * DAY_MS))];
    chunkDays.push(...days);
    for (const t of ['points', 'point_chunks'] as const) await new PartitionsRepository(knex, [t]).ensure(t, days);
    await knex.raw('alter table series set (autovacuum_enabled = off)');
    for (const d of days) await knex.raw('alter table ?? set (autovacuum_enabled = off)', [partitionName('point_chunks', d)]);
    await knex.raw(`insert into organizations (id, slug, name) values (?, 'counter-plans', 'C')`, [org]);
    // SERIES counters and one up-down counter (its chunks are always decoded), a point every 60 s at :30.
    await knex.raw(
      `insert into series (org_id, name, labels, labels_hash, kind, temporality)
       select ?, 'jiffies_total', jsonb_build_object('cpu', g::text), sha256(convert_to(g::text, 'UTF8')),
              case when g = 0 then 'updowncounter' else 'counter' end, 'cumulative'
         from generate_series(0, ?) g`,
      [org, SERIES],
    );
    await knex.raw(
      `insert into points (org_id, series_id, ts, value)
       select ?, s.id, ?::timestamptz + k * interval '60 s' + interval '30 s', k * (1 + s.id % 7)
         from series s, generate_series(0, 239) k where s.org_id = ?`,
      [org, new Date(start), org],
    );
    const report = await new CompactionService(new CompactionRepository(knex), { compactAfterMs: 2 * HOUR, batchSeries: 100 }, pino({ level: 'silent' })).run(end + 3 * HOUR);
    expect(report.points_compacted).to.equal((SERIES + 1) * 240);
  });

  after(async () => {
    await reads?.destroy();
    await knex?.destroy();
    if (url) await dropDatabase(url);
  });

  const reads3 = [
    [60_000, 'rate', 'rate at 60 s (no chunk within one bucket)', start],
    [HOUR, 'increase', 'increase at 1 h (each half of a chunk within one bucket: read by its stored aggregates)', start],
    [2 * HOUR, 'rate', 'rate at 2 h (each chunk within one bucket)', start],
    [HOUR, 'rate', 'rate at 1 h over 26 h (a long read: its per-chunk subquery kept apart by OFFSET 0)', end - 26 * HOUR],
  ] as const;
  const answers = new Map<string, unknown>();
  /** A read's rows in an order of their own (the repository leaves ordering to its caller). */
  const canonical = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).sort();
  for (const [stepMs, agg, what, from] of reads3) {
    it(`${what}: the matching series are scanned once per statement, not once per chunk`, async () => {
      const { rows } = await knex.raw<{ rows: { n: number }[] }>(`select count(*)::int as n from pg_stats where tablename = 'series'`);
      expect(rows[0].n, 'the series table has no statistics').to.equal(0);
      captured.length = 0;
      const read = await repo.metricRead(org, spec(stepMs, agg, from), 30_000);
      expect(read.series).to.equal(SERIES + 1);
      answers.set(what, canonical(read.rows));
      const onChunks = captured.filter((s) => /\bpoint_chunks\b/.test(s.sql) && !/^\s*set /i.test(s.sql));
      expect(onChunks.length).to.be.greaterThan(0);
      for (const st of onChunks) {
        const plan = await explainAnalyzed(reads, st);
        const scansOfS = planNodes(plan).filter((n) => n['Node Type'] === 'CTE Scan' && n['CTE Name'] === 's');
        expect(scansOfS.length).to.be.greaterThan(0);
        for (const n of scansOfS) expect(n['Actual Loops'], `a scan of s (${n['Subplan Name'] ?? 'in the main plan'}) per chunk`).to.be.at.most(1);
      }
    });
  }

  // (Compares with the answers the tests above recorded before any ANALYZE: run with them.)
  it('answers the same reads alike once the tables have statistics (other plans)', async () => {
    await knex.raw('analyze series');
    for (const d of chunkDays) await knex.raw('analyze ??', [partitionName('point_chunks', d)]);
    for (const [stepMs, agg, what, from] of reads3) {
      expect(answers.has(what), `${what}: recorded before ANALYZE`).to.equal(true);
      expect(canonical((await repo.metricRead(org, spec(stepMs, agg, from), 30_000)).rows), what).to.deep.equal(answers.get(what));
    }
  });
});
