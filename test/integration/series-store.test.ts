import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { LRUCache } from 'lru-cache';
import { SeriesRepository } from '../../src/features/telemetry/series-repository.js';
import { canonicalLabels, labelsCacheKey, SeriesStore } from '../../src/features/telemetry/series-store.js';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';

describe('series store (ids for ingest)', function () {
  this.timeout(60_000);
  let url: string;
  let knex: Knex;
  let orgId: string;
  let clock: number;
  const now = () => clock;

  before(async () => {
    url = await cloneDatabase();
    knex = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 8 } });
    [{ id: orgId }] = await query<{ id: string }>(url, "insert into organizations (slug, name) values ('s', 'S') returning id");
  });
  after(async () => {
    await knex?.destroy();
    if (url) await dropDatabase(url);
  });
  beforeEach(() => (clock = Date.UTC(2026, 10, 28, 12)));

  it('canonical labels do not depend on key order', () => {
    expect(canonicalLabels({ b: '2', a: '1' })).to.equal(canonicalLabels({ a: '1', b: '2' }));
    expect(canonicalLabels({})).to.equal('{}');
    expect(JSON.parse(canonicalLabels({ 'k"\\': 'v\n' }))).to.deep.equal({ 'k"\\': 'v\n' });
  });

  it('the cache key tells label sets apart that a plain join of keys and values would mix up, and ignores key order', () => {
    const sets: Record<string, string>[] = [{ a: '1:b' }, { a: '1', b: '' }, { 'a1:b': '' }, { a: '', b: '1' }, { 'a:1': 'b' }, { '1:a': '' }, {}];
    expect(new Set(sets.map(labelsCacheKey)).size).to.equal(sets.length);
    expect(labelsCacheKey({ region: 'eu', host: 'h1', az: 'x' })).to.equal(labelsCacheKey({ az: 'x', host: 'h1', region: 'eu' }));
    expect(labelsCacheKey({ b: '2', a: '1' })).to.equal(labelsCacheKey({ a: '1', b: '2' }));
  });

  it('concurrent stores creating overlapping series agree on one id per series and create no duplicates', async () => {
    const stores = Array.from({ length: 6 }, () => new SeriesStore(new SeriesRepository(knex), { cacheSize: 1000 }, now));
    const points = Array.from({ length: 50 }, (_, i) => ({ name: 'conc', labels: { i: String(i % 20) } }));
    const results = await Promise.all(stores.map((s, n) => s.resolve(orgId, n % 2 ? [...points].reverse() : points, 1000)));
    const idOf = (r: { ids: (number | null)[] }, n: number, i: number) => r.ids[n % 2 ? points.length - 1 - i : i];
    for (let i = 0; i < points.length; i++) {
      const ids = new Set(results.map((r, n) => idOf(r, n, i)));
      expect(ids.size, `point ${i}`).to.equal(1);
    }
    const [{ n }] = await query<{ n: number }>(url, "select count(*)::int as n from series where org_id = $1 and name = 'conc'", [orgId]);
    expect(n).to.equal(20);
  });

  it('refuses only the new series beyond the limit, in input order; existing ones keep resolving', async () => {
    const store = new SeriesStore(new SeriesRepository(knex), { cacheSize: 1000 }, now);
    const [{ n: before }] = await query<{ n: number }>(url, 'select count(*)::int as n from series where org_id = $1', [orgId]);
    const r = await store.resolve(orgId, [{ name: 'lim', labels: { a: '1' } }, { name: 'conc', labels: { i: '0' } }, { name: 'lim', labels: { a: '2' } }, { name: 'lim', labels: { a: '1' } }], before + 1);
    expect(r.refused).to.deep.equal([2]);
    expect(r.ids[0]).to.be.a('number');
    expect(r.ids[3]).to.equal(r.ids[0]);
    expect(r.ids[1]).to.be.a('number');
    expect(r.ids[2]).to.equal(null);
  });

  it('serves ids from memory for an hour, then looks them up again and refreshes last_seen_at', async () => {
    const store = new SeriesStore(new SeriesRepository(knex), { cacheSize: 1000 }, now);
    const p = [{ name: 'seen', labels: { x: '1' } }];
    const [id] = (await store.resolve(orgId, p, 1000)).ids;
    const old = '2026-11-20T00:00:00Z';
    await query(url, 'update series set last_seen_at = $1 where id = $2', [old, id]);
    clock += 30 * 60_000;
    expect((await store.resolve(orgId, p, 1000)).ids).to.deep.equal([id]);
    const [mid] = await query<{ t: Date }>(url, 'select last_seen_at as t from series where id = $1', [id]);
    expect(mid.t.toISOString()).to.equal(new Date(old).toISOString());
    clock += 31 * 60_000;
    expect((await store.resolve(orgId, p, 1000)).ids).to.deep.equal([id]);
    const [after] = await query<{ t: Date }>(url, 'select last_seen_at as t from series where id = $1', [id]);
    expect(Date.now() - after.t.getTime()).to.be.below(60_000);
  });
  it('asks its LRU once per series of a batch, however many points name it, and gives every point its id', async () => {
    const store = new SeriesStore(new SeriesRepository(knex), { cacheSize: 1000 }, now);
    // 5 series × 8 timestamps, labels in two key orders (one series either way).
    const batch = Array.from({ length: 40 }, (_, i) => ({ name: 'dedup', labels: i % 2 ? { host: `h${i % 5}`, az: 'a' } : { az: 'a', host: `h${i % 5}` } }));
    const first = await store.resolve(orgId, batch, 1000);
    expect(new Set(first.ids).size).to.equal(5);
    const proto = LRUCache.prototype as unknown as { get: (...args: unknown[]) => unknown };
    const get = proto.get;
    let gets = 0;
    proto.get = function (this: unknown, ...args: unknown[]) {
      gets++;
      return get.apply(this, args);
    };
    let again: Awaited<ReturnType<SeriesStore['resolve']>>;
    try {
      again = await store.resolve(orgId, batch, 1000);
    } finally {
      proto.get = get;
    }
    expect(gets).to.equal(5);
    expect(again.ids).to.deep.equal(first.ids);
    for (let i = 0; i < batch.length; i++) expect(again.ids[i], `point ${i}`).to.equal(first.ids[i % 5]);
  });

  it('tells apart, within one batch, label sets that share a prefix, differ only in a value or a name, or come in another key order', async () => {
    const sets: Record<string, string>[] = [{}, { a: '1' }, { a: '1', b: '2' }, { a: '1', b: '2', c: '' }, { a: '1', b: '' }, { a: '', b: '1' }, { a: '12' }, { b: '2', a: '1' }, { a: '1', c: '2' }, { ab: '1' }, { a: 'b1' }, { b: '1' }];
    const batch = ['tree', 'tree_b'].flatMap((name) => [...sets, ...sets.slice().reverse()].map((labels) => ({ name, labels })));
    const store = new SeriesStore(new SeriesRepository(knex), { cacheSize: 1000 }, now);
    const together = await store.resolve(orgId, batch, 1000);
    // Each point alone, through a store that has seen none of them: the series table decides.
    const alone = await Promise.all(batch.map(async (p) => (await new SeriesStore(new SeriesRepository(knex), { cacheSize: 1000 }, now).resolve(orgId, [p], 1000)).ids[0]));
    expect(together.ids).to.deep.equal(alone);
    // {b: '2', a: '1'} is {a: '1', b: '2'}: 11 series per name.
    expect(new Set(together.ids).size).to.equal(22);
  });
});
