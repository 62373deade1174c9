import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { randomUUID } from 'node:crypto';
import { withPooledConnection } from '../../src/db/database.js';
import { DAY_MS, PartitionsRepository } from '../../src/db/partitions.js';
import { MAX_PREPARED_PER_CONNECTION, QueryRepository, type MetricReadSpec } from '../../src/features/telemetry/query-repository.js';
import { cloneDatabase, dropDatabase } from '../support/db.js';
import { pino } from 'pino';
import { CompactionRepository } from '../../src/features/telemetry/compaction-repository.js';
import { CompactionService } from '../../src/features/telemetry/compaction-service.js';

/**
 * The reads pool's statements: prepared on their first run on a connection, under a name derived
 * from their text, planned per execution for their values (plan_cache_mode = force_custom_plan),
 * at most MAX_PREPARED_PER_CONNECTION texts per connection (the others run unnamed). Checked in the
 * connection's own pg_prepared_statements (a session's view), on a reads pool of one connection.
 */
describe('read statements: prepared per connection, planned per read', function () {
  this.timeout(60_000);
  const org = randomUUID();
  const HOUR = 3_600_000;
  const end = Math.floor(Date.now() / HOUR) * HOUR;
  let url: string;
  let knex: Knex;
  let reads: Knex;
  let repo: QueryRepository;

  interface Prepared {
    name: string;
    generic_plans: number;
    custom_plans: number;
  }
  /** What the reads pool's one connection has prepared (its own session's view). */
  async function prepared(pool: Knex = reads): Promise<Prepared[]> {
    return withPooledConnection(pool, async (conn) => {
      const { rows } = await conn.query<Prepared>(`select name, generic_plans::int, custom_plans::int from pg_prepared_statements where name like 'sentinel_read_%' order by name`);
      return rows;
    });
  }

  const spec = (over: Partial<MetricReadSpec> = {}): MetricReadSpec => ({
    name: 'cpu',
    matchers: [{ label: 'host', op: '=', value: 'a', source: 'host=a' }],
    by: [],
    startMs: end - HOUR,
    endMs: end,
    stepMs: 60_000,
    agg: 'sum',
    buckets: 60,
    maxSeries: 100,
    maxPoints: 100_000,
    ...over,
  });

  before(async () => {
    url = await cloneDatabase();
    knex = knexFactory({ client: 'pg', connection: url, pool: { min: 1, max: 2 } });
    reads = knexFactory({ client: 'pg', connection: url, pool: { min: 1, max: 1 } });
    repo = new QueryRepository(knex, reads);
    await knex.raw(`insert into organizations (id, slug, name) values (?, 'read-statements', 'R')`, [org]);
    const ids: Record<string, string> = {};
    for (const host of ['a', 'b']) {
      const { rows } = await knex.raw<{ rows: { id: string }[] }>(
        `insert into series (org_id, name, labels, labels_hash, kind) values (?, 'cpu', ?::jsonb, sha256(convert_to(?, 'UTF8')), 'gauge') returning id::text`,
        [org, JSON.stringify({ host }), host],
      );
      ids[host] = rows[0].id;
    }
    const day = Math.floor((end - HOUR) / DAY_MS) * DAY_MS;
    await new PartitionsRepository(knex, ['points']).ensure('points', [day, day + DAY_MS]);
    // Host a: 1, 2, …, 60 at the middle of each minute of the hour; host b: 100 each.
    for (let i = 0; i < 60; i++) {
      const ts = new Date(end - HOUR + i * 60_000 + 30_000);
      await knex.raw('insert into points (org_id, series_id, ts, value) values (?, ?, ?, ?), (?, ?, ?, ?)', [org, ids.a, ts, i + 1, org, ids.b, ts, 100]);
    }
  });

  after(async () => {
    await reads?.destroy();
    await knex?.destroy();
    if (url) await dropDatabase(url);
  });

  it('a read is prepared on its first run on a connection and planned for each read’s values (no generic plan), with the right answers', async () => {
    const a = await repo.metricRead(org, spec(), 30_000);
    expect(await prepared()).to.have.length(1);
    const b = await repo.metricRead(org, spec({ matchers: [{ label: 'host', op: '=', value: 'b', source: 'host=b' }] }), 30_000);
    const late = await repo.metricRead(org, spec({ startMs: end - HOUR / 2 }), 30_000);
    for (let i = 0; i < 5; i++) await repo.metricRead(org, spec(), 30_000);
    // The same text with other values: one statement, planned each time for its own values.
    const ps = await prepared();
    expect(ps).to.have.length(1);
    expect(ps[0].generic_plans).to.equal(0);
    expect(ps[0].custom_plans).to.equal(8);
    expect(a.rows[0].v.reduce((x, y) => x! + y!, 0)).to.equal((60 * 61) / 2);
    expect(b.rows[0].v.every((v) => v === 100)).to.equal(true);
    expect(late.rows[0].t).to.have.length(30);
  });

  it('a prepared read whose selected column changed type (a migration while serving) runs unnamed instead of failing, then and after', async () => {
    const day = Math.floor((end - HOUR) / DAY_MS) * DAY_MS;
    await new PartitionsRepository(knex, ['logs']).ensure('logs', [day, day + DAY_MS]);
    await knex.raw(`insert into logs (org_id, ts, severity_number, severity_text, body) values (?, ?, 9, 'INFO', 'hello')`, [org, new Date(end - HOUR / 2)]);
    const filter = { startMs: end - HOUR, endMs: end, minSeverity: null, bodyLike: null, attributes: [], limit: 10 };
    // A reads pool of its own: what this test leaves prepared stays out of the others' counts.
    const own = knexFactory({ client: 'pg', connection: url, pool: { min: 1, max: 1 } });
    try {
      const ownRepo = new QueryRepository(knex, own);
      const read = async () => (await ownRepo.logs(org, filter, 30_000)).map((r) => [r.severity_text, r.body]);
      expect(await read()).to.deep.equal([['INFO', 'hello']]);
      expect(await prepared(own)).to.have.length(1);
      await knex.raw('alter table logs alter column severity_text type varchar(200)');
      // The prepared statement's result type changed: PostgreSQL refuses to run it again (0A000).
      expect(await read()).to.deep.equal([['INFO', 'hello']]);
      expect(await read()).to.deep.equal([['INFO', 'hello']]);
      // Run unnamed from then on (the refused statement stays on the connection, never used again).
      expect(await prepared(own)).to.have.length(1);
    } finally {
      await own.destroy();
    }
  });

  it(`at most ${MAX_PREPARED_PER_CONNECTION} texts are prepared on a connection; reads of other texts still answer (unnamed)`, async () => {
    // Each count of `!=` matchers is a text of its own.
    const shape = (n: number) =>
      spec({ matchers: Array.from({ length: n }, (_, i) => ({ label: `x${i}`, op: '!=' as const, value: 'never', source: `x${i}!=never` })) });
    const texts = MAX_PREPARED_PER_CONNECTION + 5;
    let last = await repo.metricRead(org, shape(1), 30_000);
    for (let n = 1; n <= texts; n++) for (let twice = 0; twice < 2; twice++) last = await repo.metricRead(org, shape(n), 30_000);
    expect((await prepared()).length).to.equal(MAX_PREPARED_PER_CONNECTION);
    // The last read's text was not prepared (the connection was full) and answered both series.
    expect(last.rows).to.have.length(2);
    expect(last.series).to.equal(2);
  });


  it('a read of recent data runs the fresh-first statement alone (no chunk rows to plan), one of old data the chunks-first one; where the tier was not the predicted one the full statement follows, with the same answer', async () => {
    const own = knexFactory({ client: 'pg', connection: url, pool: { min: 1, max: 1 } });
    const ownOld = knexFactory({ client: 'pg', connection: url, pool: { min: 1, max: 1 } });
    try {
      // Every read starts within a day of now: each tries the fresh-first statement.
      const fresh = new QueryRepository(knex, own, { compactAfterMs: DAY_MS });
      // Every read (but a percentile) predicted compacted: each tries the chunks-first statement.
      const old = new QueryRepository(knex, ownOld, { compactAfterMs: Number.NEGATIVE_INFINITY });
      const statements = (pool: Knex) =>
        withPooledConnection(pool, async (conn) => {
          const sql = `select statement, custom_plans::int from pg_prepared_statements where name like 'sentinel_read_%' order by prepare_time`;
          return (await conn.query<{ statement: string; custom_plans: number }>(sql)).rows;
        });
      const texts = async () => (await statements(own)).map((r) => r.statement);
      const specs = [spec(), spec({ agg: 'p90' }), spec({ agg: 'rate' }), spec({ by: ['host'], matchers: [] })];
      // metricRead's rows come in no particular order (the caller orders the answer).
      const read = async (r: QueryRepository, sp: MetricReadSpec) => {
        const x = await r.metricRead(org, sp, 30_000);
        return { ...x, rows: [...x.rows].sort((a, b) => JSON.stringify(a.labels).localeCompare(JSON.stringify(b.labels))) };
      };
      const expected = [];
      for (const sp of specs) expected.push(await read(repo, sp));
      for (let i = 0; i < specs.length; i++) expect(await read(fresh, specs[i]), `read ${i}`).to.deep.equal(expected[i]);
      const plain = specs.filter((sp) => !sp.agg.startsWith('p'));
      // All fresh: the chunks-first statement finds no chunk, the full one follows.
      for (const sp of plain) expect(await read(old, sp)).to.deep.equal(expected[specs.indexOf(sp)]);
      const onlyFresh = await texts();
      expect(onlyFresh).to.have.length(specs.length);
      for (const t of onlyFresh) {
        // The chunks' existence probe only: none of the full statement's chunk rows, bucket CASE or fresh-point probe.
        expect(t).to.match(/ch as materialized \(select 1 from point_chunks c where .* limit 1\)/s);
        expect(t).to.not.match(/cross join lateral \(select case/);
        expect(t).to.not.match(/fr as materialized/);
      }
      // Host a's hour moved into chunks (the job run as if 2 hours later, compacting everything before its window's end).
      const report = await new CompactionService(new CompactionRepository(knex), { compactAfterMs: 0, batchSeries: 100 }, pino({ level: 'silent' })).run(end + 2 * HOUR);
      expect(report.points_compacted).to.equal(120);
      for (let i = 0; i < specs.length; i++) {
        const got = await read(fresh, specs[i]);
        expect(got.decodedPoints, `read ${i} read chunks`).to.be.greaterThan(0);
        expect({ ...got, decodedPoints: 0 }, `read ${i}`).to.deep.equal({ ...expected[i], decodedPoints: 0 });
      }
      // The fresh-first statements found a chunk: each read's full statement ran after it.
      const after = await texts();
      expect(after).to.have.length(2 * specs.length);
      expect(after.slice(specs.length).every((t) => /cross join lateral \(select case/.test(t))).to.equal(true);
      // The chunks-first statements answer alone now.
      for (const sp of plain) {
        const got = await read(old, sp);
        expect(got.decodedPoints).to.be.greaterThan(0);
        expect({ ...got, decodedPoints: 0 }).to.deep.equal({ ...expected[specs.indexOf(sp)], decodedPoints: 0 });
      }
      // A read matching no series, or one its limits refuse: the chunks-first statement's answer is
      // the full one's (nothing to aggregate), no second statement.
      const none = knexFactory({ client: 'pg', connection: url, pool: { min: 1, max: 1 } });
      try {
        const viaNone = new QueryRepository(knex, none, { compactAfterMs: Number.NEGATIVE_INFINITY });
        const nothing = await viaNone.metricRead(org, spec({ matchers: [{ label: 'host', op: '=', value: 'nope', source: 'host=nope' }] }), 30_000);
        expect(nothing).to.deep.equal({ series: 0, answers: 0, rows: [], decodedPoints: 0 });
        const refused = await viaNone.metricRead(org, spec({ matchers: [], maxSeries: 1 }), 30_000);
        expect(refused).to.deep.include({ series: 2, rows: [] });
        expect((await statements(none)).map((r) => r.custom_plans)).to.deep.equal([1, 1]);
      } finally {
        await none.destroy();
      }
      const oldStatements = await statements(ownOld);
      // Per read a chunks-first text (run before and after the compaction) and a full one (before only).
      expect(oldStatements.map((r) => r.custom_plans)).to.deep.equal(plain.flatMap(() => [2, 1]));
      for (const [i, r] of oldStatements.entries()) {
        // The chunk rows, without the fresh-only aggregation (the full statement's `a`).
        expect(r.statement).to.match(/cross join lateral \(select case/);
        if (i % 2 === 0) expect(r.statement).to.not.match(/\n\s*a as \(/);
        else expect(r.statement).to.match(/\n\s*a as \(/);
      }
    } finally {
      await own.destroy();
      await ownOld.destroy();
    }
  });
});
