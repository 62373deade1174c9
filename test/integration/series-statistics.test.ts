import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import { pino } from 'pino';
import { PartitionsRepository } from '../../src/db/partitions.js';
import { PartitionAnalyzer, type PartitionAnalyzeReport } from '../../src/features/retention/partition-maintenance.js';
import { retentionModule } from '../../src/features/retention/retention-module.js';
import { QueryRepository } from '../../src/features/telemetry/query-repository.js';
import { SeriesRepository } from '../../src/features/telemetry/series-repository.js';
import { SeriesStore } from '../../src/features/telemetry/series-store.js';
import { cloneDatabase, dropDatabase } from '../support/db.js';
import { moduleKits } from '../support/module-kits.js';
import { planNodes, type PlanNode } from '../support/plans.js';
import { recordStatements, type Statement } from '../support/statement-spy.js';

/**
 * The series table's statistics. Thousands of series created at once (a new
 * deployment, a bulk load) leave `series` without statistics until something analyzes it; the
 * metric read's series lookup then filters all of the metric's series instead of asking the GIN
 * index on labels. The `analyze` job (the retention module's, as the daemon runs it) analyzes
 * the table by the rule it applies to fresh partitions, after which the same statement's plan
 * reads the labels index. Autovacuum is off for `series` here, so nothing analyzes it behind the
 * test's back.
 */

const SERIES = 10_000;
const BATCH = 1000;
const HOUR = 3_600_000;
const labelsOf = (i: number) => ({ host: `h${i}`, shard: `s${i % 100}`, svc: `svc${Math.floor(i / 100)}` });

/** The indexes the plan reads `series` through (a bitmap heap scan's through its bitmap index scans), or 'Seq Scan'. */
function seriesAccess(plan: PlanNode): string[] {
  const out: string[] = [];
  for (const n of planNodes(plan)) {
    if (n['Relation Name'] !== 'series') continue;
    if (n['Node Type'] === 'Bitmap Heap Scan') out.push(...planNodes(n).flatMap((c) => (c['Node Type'] === 'Bitmap Index Scan' ? [c['Index Name'] ?? '?'] : [])));
    else out.push(n['Index Name'] ?? n['Node Type']);
  }
  return out;
}

describe('series statistics: the analyze job analyzes the series table', function () {
  this.timeout(120_000);
  let url: string;
  let knex: Knex;
  let readsKnex: Knex;
  let repo: QueryRepository;
  let store: SeriesStore;
  let explainer: pg.Client;
  let analyzeJob: () => Promise<PartitionAnalyzeReport>;
  const captured: Statement[] = [];
  const now = Date.now();
  const org = '0000000c-0000-4000-8000-000000000003';
  let created = 0;

  async function stats() {
    const { rows } = await knex.raw<{ rows: { reltuples: number; analyzed: boolean; modified: number }[] }>(
      `select c.reltuples::float8 as reltuples, s.n_mod_since_analyze::float8 as modified, (s.last_analyze is not null or s.last_autoanalyze is not null) as analyzed
         from pg_class c join pg_stat_user_tables s on s.relid = c.oid where c.relname = 'series'`,
    );
    return rows[0];
  }

  /** Creates `n` more series of metric `cpu` as ingest does (SeriesStore), then waits until the statistics collector counted them. */
  async function createSeries(n: number): Promise<void> {
    const before = (await stats()).modified;
    for (let from = created; from < created + n; from += BATCH) {
      const points = [];
      for (let i = from; i < Math.min(created + n, from + BATCH); i++) points.push({ name: 'cpu', labels: labelsOf(i) });
      const r = await store.resolve(org, points, 1_000_000);
      expect(r.ids.every((id) => id !== null)).to.equal(true);
    }
    created += n;
    await knex.raw('select pg_stat_force_next_flush()');
    const until = Date.now() + 20_000;
    while ((await stats()).modified < before + n) {
      if (Date.now() > until) throw new Error(`the collector did not report ${n} more changed rows of series`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** The statement(s) of a one-series metric read (host=h123, last hour) that look series up, as the query repository sends them. */
  async function lookupStatements(): Promise<Statement[]> {
    captured.length = 0;
    const r = await repo.metricRead(
      org,
      { name: 'cpu', matchers: [{ label: 'host', op: '=', value: 'h123', source: 'host=h123' }], by: [], startMs: now - HOUR, endMs: now, stepMs: 60_000, agg: 'avg', buckets: 60, maxSeries: 1000, maxPoints: 100_000 },
      30_000,
    );
    expect(r.series).to.equal(1);
    const lookups = captured.filter((s) => /\bfrom series\b/.test(s.sql));
    expect(lookups.length).to.be.greaterThan(0);
    return lookups;
  }

  /** What the lookup statements of that read read `series` through, by EXPLAIN of each as sent (its $n values included). */
  async function access(): Promise<string[]> {
    const out: string[] = [];
    for (const st of await lookupStatements()) {
      const { rows } = await explainer.query<{ 'QUERY PLAN': { Plan: PlanNode }[] }>(`explain (format json) ${st.sql}`, st.values);
      out.push(...seriesAccess(rows[0]['QUERY PLAN'][0].Plan));
    }
    return out;
  }

  before(async () => {
    url = await cloneDatabase();
    knex = knexFactory({ client: 'pg', connection: url, pool: { min: 1, max: 2 } });
    readsKnex = knexFactory({ client: 'pg', connection: url, pool: { min: 1, max: 1 } });
    // Record every statement of the reads pool (the repository sends them on its connections).
    recordStatements(readsKnex, captured);
    repo = new QueryRepository(knex, readsKnex);
    explainer = new pg.Client({ connectionString: url });
    await explainer.connect();
    store = new SeriesStore(new SeriesRepository(knex), { cacheSize: 100_000 });
    await knex.raw(`insert into organizations (id, slug, name) values (?, 'series-stats', 'S')`, [org]);
    await knex.raw('alter table series set (autovacuum_enabled = off)');

    const built = retentionModule.build(moduleKits(knex, url), { retentionPolicies: { retentionDays: async () => [] } });
    const job = retentionModule.jobs!.find((j) => j.name === 'analyze')!;
    analyzeJob = () => job.run(built.services, new AbortController().signal) as Promise<PartitionAnalyzeReport>;
    await createSeries(SERIES);
  });

  after(async () => {
    await explainer?.end();
    await readsKnex?.destroy();
    await knex?.destroy();
    if (url) await dropDatabase(url);
  });

  it('before the job, series has no statistics and the lookup filters the metric’s series instead of reading the labels index', async () => {
    const s = await stats();
    expect(s.analyzed).to.equal(false);
    expect(s.modified).to.be.at.least(SERIES);
    const used = await access();
    expect(used.length).to.be.greaterThan(0);
    expect(used).to.not.include('series_labels');
  });

  it('the analyze job analyzes series (in its report), after which the lookup reads the labels index', async () => {
    const report = await analyzeJob();
    expect(await access()).to.deep.equal(['series_labels']);
    expect(report.tables_analyzed).to.deep.equal(['series']);
    expect(report.tables_deferred).to.deep.equal([]);
    const s = await stats();
    expect(s.analyzed).to.equal(true);
    expect(s.reltuples).to.be.at.least(SERIES * 0.9);
    const printed = retentionModule.jobs!.find((j) => j.name === 'analyze')!.print!(report);
    expect(printed).to.include('analyzed tables: series');
  });

  it('series is analyzed again once 1,000 rows + 10% changed since, not before', async () => {
    await createSeries(500);
    expect((await analyzeJob()).tables_analyzed).to.deep.equal([]);
    const base = (await stats()).reltuples;
    await createSeries(Math.ceil(1000 + 0.1 * base) - 500 + 100);
    expect((await analyzeJob()).tables_analyzed).to.deep.equal(['series']);
  });

  it('waits at most the lock timeout for a series table another session holds, then defers it to the next run', async () => {
    await createSeries(Math.ceil(1000 + 0.1 * (await stats()).reltuples) + 100);
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query('begin');
      // What a VACUUM of series holds, and ANALYZE needs.
      await holder.query('lock table series in share update exclusive mode');
      const analyzer = new PartitionAnalyzer(new PartitionsRepository(knex, [], ['series']), { lockTimeoutMs: 300 }, pino({ level: 'silent' }));
      const t = Date.now();
      const report = await analyzer.run(now);
      expect(Date.now() - t).to.be.below(5000);
      expect(report).to.deep.equal({ analyzed: [], deferred: [], tables_analyzed: [], tables_deferred: ['series'] });
      await holder.query('rollback');
      expect((await analyzer.run(now)).tables_analyzed).to.deep.equal(['series']);
    } finally {
      await holder.end();
    }
  });

  it('new series are in the labels index at once (no pending list): the lookup right after 2,000 new ones reads a handful of its pages', async () => {
    const options = await knex.raw<{ rows: { reloptions: string[] | null }[] }>(`select reloptions from pg_class where relname = 'series_labels'`);
    expect(options.rows[0].reloptions).to.include('fastupdate=off');
    // Nothing vacuums series here (autovacuum off; a plain ANALYZE leaves a GIN pending list as it
    // is): with the list, these series' entries would wait in it and the lookup would read all of it.
    await createSeries(2000);
    const blocks: number[] = [];
    for (const st of await lookupStatements()) {
      const { rows } = await explainer.query<{ 'QUERY PLAN': { Plan: PlanNode & { 'Shared Hit Blocks': number; 'Shared Read Blocks': number } }[] }>(
        `explain (analyze, buffers, format json) ${st.sql}`,
        st.values,
      );
      for (const n of planNodes(rows[0]['QUERY PLAN'][0].Plan) as (PlanNode & { 'Shared Hit Blocks': number; 'Shared Read Blocks': number })[]) {
        if (n['Node Type'] === 'Bitmap Index Scan' && n['Index Name'] === 'series_labels') blocks.push(n['Shared Hit Blocks'] + n['Shared Read Blocks']);
      }
    }
    expect(blocks).to.have.length(1);
    expect(blocks[0]).to.be.at.most(10);
  });
});
