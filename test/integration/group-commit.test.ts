import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { createLogger } from '../../src/app/logger.js';
import { DomainError } from '../../src/core/errors.js';
import { dayStart, PartitionsRepository } from '../../src/db/partitions.js';
import { GroupCommitWriter } from '../../src/features/telemetry/group-commit-writer.js';
import { IngestRepository, type WriteItem } from '../../src/features/telemetry/ingest-repository.js';
import { TELEMETRY_TABLES } from '../../src/features/telemetry/telemetry-tables.js';
import { LogCapture } from '../support/capture.js';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';

/**
 * The real repository, except that one org's points carry a time PostgreSQL refuses (before
 * 4713 BC: SQLSTATE 22008, a data exception) — the stand-in for a value that validation let
 * through. The COPY and its failure are PostgreSQL's own.
 */
class PoisonedRepository extends IngestRepository {
  readonly commits: number[] = [];
  constructor(
    knex: Knex,
    private readonly poisonedOrg: string,
  ) {
    super(knex);
  }
  override commit(items: readonly WriteItem[], slot = 0): Promise<Set<number>> {
    this.commits.push(items.length);
    // Set after the writer made its partitions, so the COPY is what fails.
    const poisoned = items.map((i) => (i.orgId === this.poisonedOrg ? { ...i, points: i.points.map((p) => ({ ...p, ts: -8e15 })) } : i));
    return super.commit(poisoned, slot);
  }
}

/** The real repository, recording each commit: its requests' sizes and when it began and ended (ms since the recorder was made). */
class RecordingRepository extends IngestRepository {
  readonly commits: { sizes: number[]; began: number; ended: number }[] = [];
  readonly t0 = performance.now();
  override async commit(items: readonly WriteItem[], slot = 0): Promise<Set<number>> {
    const record = { sizes: items.map((i) => i.points.length), began: performance.now() - this.t0, ended: NaN };
    this.commits.push(record);
    try {
      return await super.commit(items, slot);
    } finally {
      record.ended = performance.now() - this.t0;
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Settles with the promise's value, or with 'still waiting' after `ms`. */
const within = <T>(p: Promise<T>, ms: number): Promise<T | 'still waiting'> => Promise.race([p, sleep(ms).then(() => 'still waiting' as const)]);

describe('group commit: when the writer writes', function () {
  this.timeout(60_000);
  let url: string;
  let knex: Knex;
  let org: string;
  let series = 1000;

  before(async () => {
    url = await cloneDatabase();
    knex = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 4 } });
    [{ id: org }] = await query<{ id: string }>(url, "insert into organizations (slug, name) values ('gc-w', 'W') returning id");
  });
  after(async () => {
    await knex?.destroy();
    if (url) await dropDatabase(url);
  });

  /** A request of `n` points of a series of its own (so each request's rows can be counted). */
  const request = (n: number): WriteItem => {
    const id = series++;
    const ts = Date.now();
    return { orgId: org, points: Array.from({ length: n }, (_, i) => ({ ts: ts + i, value: i })), seriesIds: Array.from({ length: n }, () => id), logs: [], events: [] };
  };
  const writerWith = (repo: IngestRepository, opts: { flushIntervalMs: number; flushMinItems: number; maxFlushItems?: number; connections: number }) =>
    new GroupCommitWriter(repo, new PartitionsRepository(knex, TELEMETRY_TABLES), { maxFlushItems: 50_000, ...opts }, createLogger('silent'));
  const storedRows = async (item: WriteItem) => Number((await query<{ n: string }>(url, 'select count(*) as n from points where org_id = $1 and series_id = $2', [org, item.seriesIds[0]]))[0].n);

  it('writes a request of flush_min_items or more at once while a connection is free, without waiting the flush interval', async () => {
    const repo = new RecordingRepository(knex);
    // An interval far longer than the test's patience: only writing at once can settle the request.
    const writer = writerWith(repo, { flushIntervalMs: 5000, flushMinItems: 100, connections: 2 });
    const large = request(100);
    const outcome = await within(writer.write(large), 4000);
    expect(outcome).to.equal('stored');
    expect(repo.commits.map((c) => c.sizes)).to.deep.equal([[100]]);
    expect(repo.commits[0].began, 'the commit began long before the interval would have ended').to.be.below(2500);
    expect(await storedRows(large)).to.equal(100);
    await writer.stop();
  });

  it('writes large requests arriving together in parallel, one per free connection', async () => {
    const repo = new RecordingRepository(knex);
    const writer = writerWith(repo, { flushIntervalMs: 5000, flushMinItems: 100, connections: 3 });
    const requests = [request(200), request(200), request(200)];
    const outcomes = await within(Promise.all(requests.map((r) => writer.write(r))), 4000);
    expect(outcomes).to.deep.equal(['stored', 'stored', 'stored']);
    expect(repo.commits.map((c) => c.sizes)).to.deep.equal([[200], [200], [200]]);
    // All three were in flight together: each began before any ended.
    const firstEnd = Math.min(...repo.commits.map((c) => c.ended));
    for (const c of repo.commits) expect(c.began).to.be.below(firstEnd);
    for (const r of requests) expect(await storedRows(r)).to.equal(200);
    await writer.stop();
  });

  it('still gathers small requests into one commit, waiting the flush interval for them', async () => {
    const repo = new RecordingRepository(knex);
    const writer = writerWith(repo, { flushIntervalMs: 300, flushMinItems: 100, connections: 4 });
    const started = performance.now();
    const first = writer.write(request(1));
    await sleep(50);
    const later = [writer.write(request(2)), writer.write(request(3))];
    expect(await Promise.all([first, ...later])).to.deep.equal(['stored', 'stored', 'stored']);
    expect(repo.commits.map((c) => c.sizes), 'one commit for the three, though connections were free').to.deep.equal([[1, 2, 3]]);
    // Timers may fire a millisecond early; the interval is counted from the first request.
    expect(repo.commits[0].began + repo.t0 - started).to.be.at.least(290);
    await writer.stop();
  });

  it('writes small requests at once when together they reach flush_min_items', async () => {
    const repo = new RecordingRepository(knex);
    const writer = writerWith(repo, { flushIntervalMs: 5000, flushMinItems: 100, connections: 4 });
    const waiting = [writer.write(request(40)), writer.write(request(40))];
    await sleep(20);
    expect(repo.commits, '80 rows wait for company').to.deep.equal([]);
    const all = within(Promise.all([...waiting, writer.write(request(40))]), 4000);
    expect(await all).to.deep.equal(['stored', 'stored', 'stored']);
    expect(repo.commits.map((c) => c.sizes)).to.deep.equal([[40, 40, 40]]);
    await writer.stop();
  });

  it('gathers what arrives while every connection is busy into the next commit, small or large', async () => {
    const repo = new RecordingRepository(knex);
    const writer = writerWith(repo, { flushIntervalMs: 5000, flushMinItems: 100, connections: 1 });
    const busy = writer.write(request(500));
    // Arrive while the one connection is committing: neither is written before it is free.
    const next = [writer.write(request(1)), writer.write(request(300))];
    expect(await within(Promise.all([busy, ...next]), 4000)).to.deep.equal(['stored', 'stored', 'stored']);
    expect(repo.commits.map((c) => c.sizes)).to.deep.equal([[500], [1, 300]]);
    expect(repo.commits[1].began).to.be.at.least(repo.commits[0].ended);
    await writer.stop();
  });

  it('never makes a group larger than max_flush_items', async () => {
    const repo = new RecordingRepository(knex);
    const writer = writerWith(repo, { flushIntervalMs: 5000, flushMinItems: 10_000, maxFlushItems: 250, connections: 1 });
    const outcomes = await within(Promise.all([writer.write(request(100)), writer.write(request(100)), writer.write(request(100))]), 4000);
    expect(outcomes).to.deep.equal(['stored', 'stored', 'stored']);
    // 300 rows queued reach max_flush_items: written at once, in groups of at most 250.
    expect(repo.commits.map((c) => c.sizes)).to.deep.equal([[100, 100], [100]]);
    await writer.stop();
  });

  it('stop() writes what still waits for company and every commit in flight, then refuses new requests with 503', async () => {
    const repo = new RecordingRepository(knex);
    const writer = writerWith(repo, { flushIntervalMs: 10_000, flushMinItems: 100, connections: 1 });
    const small = [request(1), request(2)];
    const large = request(150);
    const pending = [writer.write(large), ...small.map((r) => writer.write(r))];
    const settled = Promise.allSettled(pending);
    const started = performance.now();
    await writer.stop();
    expect(performance.now() - started, 'stop did not wait the 10 s interval').to.be.below(5000);
    expect((await settled).map((s) => s.status)).to.deep.equal(['fulfilled', 'fulfilled', 'fulfilled']);
    expect(repo.commits.map((c) => c.sizes)).to.deep.equal([[150], [1, 2]]);
    for (const r of [large, ...small]) expect(await storedRows(r)).to.equal(r.points.length);
    const refused = await writer.write(request(1)).then(
      () => null,
      (err: unknown) => err,
    );
    expect(refused).to.be.instanceOf(DomainError);
    expect((refused as DomainError).code).to.equal('unavailable');
  });

  it('fails a group with 503 and a Retry-After when the database cannot be reached, without retrying it request by request', async () => {
    const quiet = { warn: () => {}, error: () => {}, debug: () => {}, deprecate: () => {} };
    const dead = knexFactory({ client: 'pg', connection: 'postgres://sentinel@127.0.0.1:1/none', pool: { min: 0, max: 2 }, acquireConnectionTimeout: 2000, log: quiet });
    try {
      // The day's partition exists (made through the live database); the commit's connection cannot be had.
      await new PartitionsRepository(knex, TELEMETRY_TABLES).ensure('points', new Set([dayStart(Date.now())]));
      const repo = new RecordingRepository(dead);
      const writer = new GroupCommitWriter(repo, new PartitionsRepository(knex, TELEMETRY_TABLES), { flushIntervalMs: 5000, flushMinItems: 100, maxFlushItems: 50_000, connections: 2 }, createLogger('silent'));
      // Two small requests wait for company; the large one makes the group large enough to go.
      const outcomes = await Promise.allSettled([writer.write(request(1)), writer.write(request(2)), writer.write(request(150))]);
      await writer.stop();
      expect(outcomes.map((o) => o.status)).to.deep.equal(['rejected', 'rejected', 'rejected']);
      expect(repo.commits.map((c) => c.sizes), 'one attempt for the group, none per request').to.deep.equal([[1, 2, 150]]);
      for (const o of outcomes) {
        const err = (o as PromiseRejectedResult).reason as DomainError;
        expect(err).to.be.instanceOf(DomainError);
        expect(err.code).to.equal('unavailable');
        expect(err.details.retryAfter).to.be.a('number').and.above(0);
      }
    } finally {
      await dead.destroy();
    }
  });
});

describe('group commit: a value PostgreSQL refuses in a shared commit', function () {
  this.timeout(60_000);
  let url: string;
  let knex: Knex;
  let orgA: string;
  let orgB: string;

  before(async () => {
    url = await cloneDatabase();
    knex = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 4 } });
    [{ id: orgA }, { id: orgB }] = await query<{ id: string }>(url, "insert into organizations (slug, name) values ('gc-a', 'A'), ('gc-b', 'B') returning id");
  });
  after(async () => {
    await knex?.destroy();
    if (url) await dropDatabase(url);
  });

  it('fails only the request at fault; the others of its group are stored, and the failure is logged at error', async () => {
    const logs = new LogCapture();
    const repo = new PoisonedRepository(knex, orgB);
    // One connection and a long gathering window: the three writes below form one group.
    const writer = new GroupCommitWriter(repo, new PartitionsRepository(knex, TELEMETRY_TABLES), { flushIntervalMs: 200, flushMinItems: 1000, maxFlushItems: 1000, connections: 1 }, createLogger('info', logs));
    const ts = Date.now();
    const item = (orgId: string, value: number): WriteItem => ({ orgId, points: [{ ts, value }], seriesIds: [7], logs: [], events: [] });
    const outcomes = await Promise.allSettled([writer.write(item(orgA, 1)), writer.write(item(orgB, 2)), writer.write(item(orgA, 3))]);
    await writer.stop();

    expect(repo.commits[0], 'the three requests were merged into one commit').to.equal(3);
    expect(outcomes.map((o) => o.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[0] as PromiseFulfilledResult<string>).value).to.equal('stored');
    expect((outcomes[2] as PromiseFulfilledResult<string>).value).to.equal('stored');
    // The culprit, committed alone, gets the backstop's answer for its own value.
    const refused = (outcomes[1] as PromiseRejectedResult).reason as DomainError;
    expect(refused).to.be.instanceOf(DomainError);
    expect(refused.code).to.equal('bad_request');

    const stored = await query<{ org_id: string; value: number }>(url, 'select org_id, value from points where series_id = 7 order by value');
    expect(stored).to.deep.equal([
      { org_id: orgA, value: 1 },
      { org_id: orgA, value: 3 },
    ]);
    const usage = await query<{ org_id: string; points: number }>(url, 'select org_id, sum(points)::int as points from usage_daily group by org_id');
    expect(usage).to.deep.equal([{ org_id: orgA, points: 2 }]);

    const errors = logs.lines.map((l) => JSON.parse(l) as { level: string; msg: string; requests?: number; sqlstate?: string }).filter((l) => l.level === 'error');
    expect(errors.find((l) => l.requests === 3), JSON.stringify(errors)).to.include({ sqlstate: '22008' });
    expect(errors.some((l) => l.requests === 1), 'the culprit alone is logged too').to.equal(true);
  });
});
