import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { PartitionsRepository } from '../../src/db/partitions.js';
import { IngestRepository, type WriteItem } from '../../src/features/telemetry/ingest-repository.js';
import { CHUNK_WINDOW_MS, TELEMETRY_TABLES } from '../../src/features/telemetry/telemetry-tables.js';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';

/** The statements (query messages, each one round trip) `fn` sends through any pg client. */
async function statements(fn: () => Promise<unknown>): Promise<string[]> {
  const sent: string[] = [];
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  proto.query = function (this: unknown, ...args: unknown[]) {
    const q = args[0] as string | { text?: string };
    sent.push(typeof q === 'string' ? q : (q.text ?? '?'));
    return original.apply(this, args);
  };
  try {
    await fn();
  } finally {
    proto.query = original;
  }
  return sent;
}

describe('ingest repository: one group commit', function () {
  this.timeout(60_000);
  let url: string;
  let knex: Knex;
  let repo: IngestRepository;
  let orgA: string;
  let orgB: string;
  const ts = Date.now();

  before(async () => {
    url = await cloneDatabase();
    // One connection: a commit that left its transaction open would show in the next one.
    knex = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 1 } });
    [{ id: orgA }, { id: orgB }] = await query<{ id: string }>(url, "insert into organizations (slug, name) values ('ir-a', 'A'), ('ir-b', 'B') returning id");
    await new PartitionsRepository(knex, TELEMETRY_TABLES).ensure('points', [ts - (ts % 86_400_000)]);
    await new PartitionsRepository(knex, TELEMETRY_TABLES).ensure('logs', [ts - (ts % 86_400_000)]);
    await new PartitionsRepository(knex, TELEMETRY_TABLES).ensure('events', [ts - (ts % 86_400_000)]);
    repo = new IngestRepository(knex);
  });
  after(async () => {
    await knex?.destroy();
    if (url) await dropDatabase(url);
  });
  beforeEach(async () => {
    await query(url, 'delete from points');
    await query(url, 'delete from logs');
    await query(url, 'delete from events');
    await query(url, 'delete from usage_daily');
    await query(url, 'delete from ingest_idempotency');
  });

  const points = (orgId: string, n: number, series = 1): WriteItem => ({
    orgId,
    points: Array.from({ length: n }, (_, i) => ({ ts: ts + Math.floor(i / 3), value: i + 0.25 })),
    seriesIds: Array.from({ length: n }, (_, i) => series + (i % 3)),
    logs: [],
    events: [],
  });

  it('writes a group of points in two round trips (begin with the COPY, the usage counters with commit), every row and counter exact', async () => {
    const sent = await statements(() => repo.commit([points(orgA, 7), points(orgB, 5, 10), points(orgA, 2, 20)], 3));
    expect(sent, sent.join(' | ')).to.have.length(2);
    // READ COMMITTED whatever the server's default: the late-point count needs a snapshot taken after the COPY.
    expect(sent[0]).to.match(/^begin isolation level read committed; copy points/);
    expect(sent[1]).to.match(/^update point_window_claims .*; insert into usage_daily .*; commit$/s);

    const stored = await query<{ org_id: string; series_id: number; ts: Date; value: number }>(url, 'select org_id, series_id::int, ts, value from points order by org_id, series_id, ts, value');
    const expected = [points(orgA, 7), points(orgB, 5, 10), points(orgA, 2, 20)]
      .flatMap((item) => item.points.map((p, i) => ({ org_id: item.orgId, series_id: item.seriesIds[i], ts: new Date(p.ts), value: p.value })))
      .sort((a, b) => a.org_id.localeCompare(b.org_id) || a.series_id - b.series_id || a.ts.getTime() - b.ts.getTime() || a.value - b.value);
    expect(stored).to.deep.equal(expected);
    const usage = await query<{ org_id: string; slot: number; points: number; logs: number; events: number }>(url, 'select org_id, slot, points::int, logs::int, events::int from usage_daily order by org_id');
    expect(usage).to.deep.equal(
      [
        { org_id: orgA, slot: 3, points: 9, logs: 0, events: 0 },
        { org_id: orgB, slot: 3, points: 5, logs: 0, events: 0 },
      ].sort((a, b) => a.org_id.localeCompare(b.org_id)),
    );
  });

  it('adds to the counters of an existing row, and writes logs and events in one more round trip each', async () => {
    await repo.commit([points(orgA, 4)], 0);
    const item: WriteItem = {
      ...points(orgA, 1),
      logs: [{ ts, severityNumber: 9, severityText: 'info', body: 'a\tb\\c\nd', attributes: { k: 'v' }, resource: {}, traceId: null, spanId: null, observedTs: null, eventName: null }],
      events: [{ ts, type: 'deploy', title: 't', text: null, tags: ['x'] }],
    };
    const sent = await statements(() => repo.commit([item], 0));
    expect(sent.map((s) => s.slice(0, 17)), sent.join(' | ')).to.deep.equal(['begin isolation l', 'copy logs (org_id', 'copy events (org_', 'update point_wind']);
    const [usage] = await query<{ points: number; logs: number; events: number }>(url, 'select points::int, logs::int, events::int from usage_daily');
    expect(usage).to.deep.equal({ points: 5, logs: 1, events: 1 });
    const [log] = await query<{ body: string }>(url, 'select body from logs');
    expect(log.body).to.equal('a\tb\\c\nd');
  });

  it("counts a group's points in the claims of the windows they fall in (compaction's late points): once per commit, in its transaction, no other claim", async () => {
    const w = Math.floor(ts / CHUNK_WINDOW_MS) * CHUNK_WINDOW_MS;
    await query(url, 'delete from point_window_claims');
    await query(url, 'insert into point_window_claims (window_start) values ($1), ($2)', [new Date(w), new Date(w - CHUNK_WINDOW_MS)]);
    const claims = async () => (await query<{ late: string }>(url, 'select late from point_window_claims order by window_start')).map((r) => Number(r.late));
    await repo.commit([points(orgA, 7), points(orgB, 5, 10)], 0);
    expect(await claims(), 'the earlier window: none of its points').to.deep.equal([0, 1]);
    // Logs only: no point, no count.
    await repo.commit([{ orgId: orgA, points: [], seriesIds: [], logs: [{ ts, severityNumber: 9, severityText: 'INFO', body: 'x', attributes: {}, resource: {}, traceId: null, spanId: null, observedTs: null, eventName: null }], events: [] }], 0);
    expect(await claims()).to.deep.equal([0, 1]);
    // A commit that fails after its COPY counts nothing either.
    const failure = await repo.commit([points(orgA, 3), points(randomUUID(), 2)], 0).catch((err: unknown) => err);
    expect((failure as { code?: string }).code, 'the usage row of an unknown org, after the COPY').to.equal('23503');
    expect(await claims()).to.deep.equal([0, 1]);
    await query(url, 'delete from point_window_claims');
  });

  it('writes nothing when the counters cannot be stored: the COPY is rolled back, and the connection serves the next commit', async () => {
    // usage_daily references organizations, points do not: the COPY succeeds and the statement sent with commit fails.
    const unknown = randomUUID();
    let failure: unknown;
    await repo.commit([points(orgA, 3), points(unknown, 2)], 0).catch((err: unknown) => (failure = err));
    expect((failure as { code?: string } | undefined)?.code, String(failure)).to.equal('23503');
    expect(await query(url, 'select 1 from points')).to.have.length(0);
    expect(await query(url, 'select 1 from usage_daily')).to.have.length(0);

    await repo.commit([points(orgA, 2)], 0);
    expect(await query(url, 'select 1 from points')).to.have.length(2);
  });

  it('abandons the COPY when its text cannot be built: nothing is written, and the one connection serves the next commit', async () => {
    // A log attribute JSON cannot write (a BigInt) makes building the COPY text throw mid-stream,
    // after `begin; copy points` went out: without a CopyFail the connection would stay in COPY
    // mode, its rollback would wait behind it and the pool's only connection would never return.
    const item: WriteItem = {
      ...points(orgA, 3),
      logs: [{ ts, severityNumber: 9, severityText: 'info', body: 'x', attributes: { n: 1n } as unknown as Record<string, unknown>, resource: {}, traceId: null, spanId: null, observedTs: null, eventName: null }],
    };
    let failure: unknown;
    await repo.commit([item], 0).catch((err: unknown) => (failure = err));
    expect(failure, 'the commit failed').to.be.instanceOf(TypeError);
    expect(await query(url, 'select 1 from points')).to.have.length(0);
    expect(await query(url, 'select 1 from logs')).to.have.length(0);
    const next = repo.commit([points(orgA, 2)], 0);
    const stuck = new Promise((_, reject) => setTimeout(() => reject(new Error('the next commit never got the connection')), 10_000).unref());
    await Promise.race([next, stuck]);
    expect(await query(url, 'select 1 from points')).to.have.length(2);
  });

  it('refuses an item whose series ids do not match its points one for one, writing nothing of the group', async () => {
    const short: WriteItem = { ...points(orgA, 3), seriesIds: [1, 2] };
    let failure: unknown;
    await repo.commit([points(orgB, 2), short], 0).catch((err: unknown) => (failure = err));
    expect((failure as Error | undefined)?.message).to.equal('3 points with 2 series ids');
    expect(await query(url, 'select 1 from points')).to.have.length(0);
    expect(await query(url, 'select 1 from usage_daily')).to.have.length(0);
  });

  it('claims idempotency keys first when an item carries one, and skips the request whose key is stored', async () => {
    const keyed = (orgId: string, key: string): WriteItem => ({ ...points(orgId, 2), idempotency: { key, hash: Buffer.from('h'), response: { accepted: { metrics: 2 } } } });
    await repo.commit([keyed(orgA, 'k1')], 0);
    const sent: string[] = [];
    let duplicates: Set<number> | undefined;
    sent.push(...(await statements(async () => (duplicates = await repo.commit([keyed(orgA, 'k1'), keyed(orgB, 'k1'), points(orgA, 1)], 0)))));
    expect(sent.map((s) => s.trim().slice(0, 11)), sent.join(' | ')).to.deep.equal(['begin isola', 'insert into', 'copy points', 'update poin']);
    expect([...duplicates!]).to.deep.equal([0]);
    const usage = await query<{ org_id: string; points: number }>(url, 'select org_id, sum(points)::int as points from usage_daily group by org_id order by org_id');
    expect(usage).to.deep.equal([{ org_id: orgA, points: 3 }, { org_id: orgB, points: 2 }].sort((a, b) => a.org_id.localeCompare(b.org_id)));
    expect(await query(url, 'select 1 from points')).to.have.length(5);
  });

  it('stores every point exactly as its COPY text did: the same times, values bit for bit and series ids', async () => {
    // The points go as binary COPY; the reference is the text form the writer used before
    // (`new Date(ts).toISOString()`, the value's String) COPYed into a table like points.
    const day = ts - (ts % 86_400_000);
    const values = [0, -0, 0.1 + 0.2, -1.5, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -1.7976931348623157e308, NaN, Infinity, -Infinity, 123456789.123456789, 2 ** 53 + 2, 1 / 3];
    const times = [day, day + 1, day + 999.9, day + 86_399_999, ts, ts + 0.5, day + 12_345.678];
    const ids = [1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER];
    // 25 rounds (2,625 rows): the binary data spans three chunks.
    const rows = Array.from({ length: 25 }, (_, round) => values.flatMap((value, v) => times.map((t, i) => ({ ts: t, value, seriesId: ids[(v + i + round) % ids.length] })))).flat();
    const item: WriteItem = { orgId: orgA, points: rows.map(({ ts, value }) => ({ ts, value })), seriesIds: rows.map((r) => r.seriesId), logs: [], events: [] };
    await repo.commit([item], 0);

    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query('create temporary table points_text (like points)');
      const stream = c.query(copyFrom('copy points_text (org_id, series_id, ts, value) from stdin'));
      await new Promise<void>((resolve, reject) => {
        stream.on('error', reject);
        stream.on('finish', resolve);
        stream.end(rows.map((r) => `${orgA}\t${r.seriesId}\t${new Date(r.ts).toISOString()}\t${r.value}\n`).join(''));
      });
      const read = async (table: string) =>
        (await c.query<{ row: string }>(`select concat_ws(' ', org_id, series_id, (extract(epoch from ts) * 1000000)::bigint, encode(float8send(value), 'hex')) as row from ${table} order by 1`)).rows.map((r) => r.row);
      const stored = await read('points');
      expect(stored).to.have.length(rows.length);
      expect(stored).to.deep.equal(await read('points_text'));
    } finally {
      await c.end();
    }
  });

  it('refuses a point whose time or series id cannot be written, writing nothing of the group', async () => {
    for (const bad of [{ ts: NaN, id: 1 }, { ts: 9e15, id: 1 }, { ts, id: 1.5 }, { ts, id: 2 ** 53 }]) {
      const item: WriteItem = { orgId: orgA, points: [{ ts, value: 1 }, { ts: bad.ts, value: 2 }], seriesIds: [1, bad.id], logs: [], events: [] };
      let failure: unknown;
      await repo.commit([points(orgB, 2), item], 0).catch((err: unknown) => (failure = err));
      expect(failure, JSON.stringify(bad)).to.be.instanceOf(Error);
      expect(await query(url, 'select 1 from points')).to.have.length(0);
    }
  });

  it('commits an empty request as a usage row of zeros in one round trip', async () => {
    const sent = await statements(() => repo.commit([{ orgId: orgB, points: [], seriesIds: [], logs: [], events: [] }], 1));
    expect(sent).to.have.length(1);
    expect(sent[0]).to.match(/^begin isolation level read committed; insert into usage_daily .*; commit$/s);
    expect(await query(url, 'select org_id, slot, points::int from usage_daily')).to.deep.equal([{ org_id: orgB, slot: 1, points: 0 }]);
  });
});
