import { expect } from 'chai';
import knexFactory from 'knex';
import { QueryRepository, type Aggregation } from '../../src/features/telemetry/query-repository.js';
import { cloneDatabase, dropDatabase } from '../support/db.js';
import { recordStatements, type Statement } from '../support/statement-spy.js';

/*
 * metricRead's per-chunk choice `m` (1: the chunk's stored aggregates, 2: its halves', 0: decode its
 * data) has a shortcut for buckets aligned to the 2-hour windows (whole windows from a window's
 * start, or 1 h from an hour's start): a chunk wholly inside the range is decided by its first and
 * last time alone. Here the CASE of the statement metricRead sends is evaluated in PostgreSQL, with
 * and without the shortcut, over chunks at every edge of their window (microseconds included, `sub`
 * present or not), for aligned ranges before 1970, at 0 and now, ends on and off the grid.
 */
const H = 3_600_000;
const W = 7_200_000;

describe('metric reads: chunks of buckets aligned to the windows', function () {
  this.timeout(600_000);
  it('the aligned shortcut gives every chunk wholly inside the range the m the general bucket conditions give it (before 1970 too), and is not taken where it does not hold', async () => {
    const url = await cloneDatabase();
    const knex = knexFactory({ client: 'pg', connection: url, pool: { min: 1, max: 1 } });
    const reads = knexFactory({ client: 'pg', connection: url, pool: { min: 1, max: 1 } });
    const captured: Statement[] = [];
    recordStatements(reads, captured);
    const repo = new QueryRepository(knex, reads);
    const org = '0000000c-0000-4000-8000-000000000003';

    const lit = (v: unknown): string => (v instanceof Date ? `'${v.toISOString()}'::timestamptz` : typeof v === 'number' ? String(v) : `'${String(v)}'`);
    async function bodies(startMs: number, endMs: number, stepMs: number, agg: Aggregation) {
      captured.length = 0;
      await repo.metricRead(org, { name: 'x', matchers: [], by: [], startMs, endMs, stepMs, agg, buckets: Math.ceil((endMs - startMs) / stepMs), maxSeries: 10, maxPoints: 1e9 }, 30_000);
      const st = captured.find((s) => s.sql.includes('cross join lateral (select case'));
      expect(st, 'the statement with the per-chunk CASE').to.not.equal(undefined);
      const m = /cross join lateral \(select case ([\s\S]*?) end as m/.exec(st!.sql);
      expect(m, 'the per-chunk CASE').to.not.equal(null);
      const body = m![1].replace(/\$(\d+)/g, (_, n: string) => lit(st!.values[Number(n) - 1]));
      // The shortcut is the CASE's first branch: the range test alone, no bucket arithmetic.
      const hasFast = /^when c\.first_ts >= \S+ and c\.last_ts < \S+ then /.test(body);
      const wholeAt = body.search(/when c\.first_ts >= \S+ and c\.last_ts < \S+ and date_bin/);
      return { fast: body, general: hasFast ? body.slice(wholeAt) : body, hasFast };
    }

    const offsUs = [0, 1, 999, 1000, 1_800_000_000, 3_599_999_000, 3_599_999_999, 3_600_000_000, 3_600_000_001, 5_400_000_000, 7_199_999_000, 7_199_999_999];
    const specs: [number, number, number][] = [];
    const now = Math.floor(Date.now() / W) * W;
    for (const base of [now - 40 * W, -40 * W, -3 * W, 0, W * 5]) {
      for (const step of [W, 2 * W, 12 * W, H]) {
        for (const n of [1, 3, 7]) {
          for (const tail of [0, -H / 2, H / 2, 1, -1, H]) {
            const end = base + n * step + tail;
            if (end > base) specs.push([base, end, step]);
          }
        }
      }
      // 1 h from an odd hour.
      specs.push([base + H, base + H + 9 * H, H], [base + H, base + H + 9 * H - 7, H], [base - H, base + 5 * H + 30 * 60_000, H]);
    }
    let applied = 0;
    let compared = 0;
    const diffs: string[] = [];
    for (const [s, e, step] of specs) {
      const { fast, general, hasFast } = await bodies(s, e, step, 'avg');
      expect(hasFast, `${s} ${e} ${step}`).to.equal(true);
      const k0 = Math.floor(s / W) - 2;
      const k1 = Math.floor(e / W) + 2;
      const offs = `array[${offsUs.join(',')}]::bigint[]`;
      const sql = `
        with c as (
          select (to_timestamp(0) + (k::bigint * ${W}) * interval '1 millisecond') as ts,
                 (to_timestamp(0) + (k::bigint * ${W}) * interval '1 millisecond') + a * interval '1 microsecond' as first_ts,
                 (to_timestamp(0) + (k::bigint * ${W}) * interval '1 millisecond') + b * interval '1 microsecond' as last_ts,
                 case when sn then null else '\\x00'::bytea end as sub
            from generate_series(${k0}, ${k1}) k, unnest(${offs}) a, unnest(${offs}) b, (values (true), (false)) v(sn)
           where a <= b)
        select count(*)::int as n,
               count(*) filter (where f.m <> g.m)::int as bad,
               count(*) filter (where c.first_ts >= '${new Date(s).toISOString()}' and c.last_ts < '${new Date(e).toISOString()}')::int as inside,
               (array_agg(c.first_ts::text || ' ' || c.last_ts::text || ' sub=' || (c.sub is not null)::text || ' fast=' || f.m || ' general=' || g.m) filter (where f.m <> g.m))[1:3] as ex
          from c cross join lateral (select case ${fast} end as m) f
                 cross join lateral (select case ${general} end as m) g`;
      const { rows } = await knex.raw(sql);
      compared += rows[0].n;
      applied += rows[0].inside;
      if (rows[0].bad) diffs.push(`${new Date(s).toISOString()}..${new Date(e).toISOString()} step ${step}: ${rows[0].bad} ${JSON.stringify(rows[0].ex)}`);
    }
    // No fast branch where it must not be.
    for (const agg of ['increase', 'rate', 'p50', 'p99'] as Aggregation[]) expect((await bodies(now, now + 4 * W, W, agg)).hasFast, agg).to.equal(false);
    expect((await bodies(now + H, now + 5 * H, W, 'avg')).hasFast).to.equal(false);
    expect((await bodies(now, now + 6 * H, 3 * H, 'avg')).hasFast).to.equal(false);
    expect((await bodies(now + 1, now + 4 * W, W, 'avg')).hasFast).to.equal(false);
    expect(applied).to.be.greaterThan(compared / 4);
    expect(diffs).to.deep.equal([]);
    await knex.destroy();
    await reads.destroy();
    await dropDatabase(url);
  });
});
