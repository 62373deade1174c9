import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import { pino, type Logger } from 'pino';
import { DAY_MS, dayStart, PartitionsRepository as DbPartitionsRepository, partitionName, type PartitionInfo } from '../../src/db/partitions.js';
import { RETAINED_TABLES as PARTITIONED_TABLES, SPLIT_TABLES, type RetainedTable as PartitionedTable } from '../../src/features/retention/retained-tables.js';
import { PartitionMaintenance } from '../../src/features/retention/partition-maintenance.js';
import { RetentionRepository, type DeleteBatch, type RowKey } from '../../src/features/retention/retention-repository.js';
import { RetentionService, type RetentionDays, type RetentionPolicySource, type RetentionReport } from '../../src/features/retention/retention-service.js';
import { LogCapture } from '../support/capture.js';
import { retentionModule } from '../../src/features/retention/retention-module.js';
import { cli } from '../support/cli.js';
import { testEnv } from '../support/config.js';
import { cloneDatabase, dropDatabase, holdingLock } from '../support/db.js';
import { moduleKits } from '../support/module-kits.js';

const HOUR = 3_600_000;
// Noon today (UTC): every org's cutoff then falls at noon of some day, mid-partition.
const NOW = dayStart(Date.now()) + 12 * HOUR;
const TODAY = dayStart(NOW);
const day = (offset: number) => TODAY + offset * DAY_MS;
/** Rows per org and day at these hours; 12:00 sits exactly on the cutoffs (ts < cutoff goes, ts = cutoff stays). */
const HOURS = [2, 6, 10, 12, 14, 18, 22];
const TABLES: PartitionedTable[] = ['points', 'logs', 'events'];
const days = (n: number): RetentionDays => ({ metrics: n, logs: n, events: n });
/** The db kit's repository over the telemetry tables, as the retention module builds it. */
class PartitionsRepository extends DbPartitionsRepository<PartitionedTable> {
  constructor(knex: Knex) {
    super(knex, PARTITIONED_TABLES);
  }
}

/** The real repository, with every batch's size recorded, to see that deletes are batched. */
class RecordingRepository extends RetentionRepository {
  readonly batches: number[] = [];
  override async deleteOrgRows(p: PartitionInfo<PartitionedTable>, orgId: string, before: Date | null, limit: number, after: RowKey | null): Promise<DeleteBatch> {
    const b = await super.deleteOrgRows(p, orgId, before, limit, after);
    this.batches.push(b.deleted);
    return b;
  }
}

/** Like the composition root's source: the orgs in the table, with retention per org (default 3 days). */
function policySource(knex: Knex, retention: Map<string, number>): RetentionPolicySource & { calls: number; hide: Set<string> } {
  return {
    calls: 0,
    // Orgs hidden from the first answer only: as if created while the run was going.
    hide: new Set<string>(),
    async retentionDays() {
      this.calls++;
      const rows = await knex('organizations').select<{ id: string }[]>('id');
      return rows.filter((r) => this.calls > 1 || !this.hide.has(r.id)).map((r) => ({ orgId: r.id, days: days(retention.get(r.id) ?? 3) }));
    },
  };
}

async function insertOrg(knex: Knex, slug: string): Promise<string> {
  const [row] = await knex('organizations').insert({ slug, name: slug }).returning<{ id: string }[]>('id');
  return row.id;
}

async function insertSeries(knex: Knex, orgId: string, name: string, lastSeenAt: number): Promise<number> {
  const [row] = await knex('series')
    .insert({ org_id: orgId, name, labels: '{}', labels_hash: Buffer.from(name), last_seen_at: new Date(lastSeenAt) })
    .returning<{ id: string }[]>('id');
  return Number(row.id);
}

/** One row per hour in HOURS on each given day, in points (of `seriesId`), logs and events. */
async function insertRows(knex: Knex, orgId: string, seriesId: number, dayOffsets: number[]): Promise<void> {
  const ts = dayOffsets.flatMap((d) => HOURS.map((h) => new Date(day(d) + h * HOUR)));
  await knex('points').insert(ts.map((t, i) => ({ org_id: orgId, series_id: seriesId, ts: t, value: i })));
  await knex('logs').insert(ts.map((t) => ({ org_id: orgId, ts: t, severity_number: 9, severity_text: 'info', body: 'log-body-canary' })));
  await knex('events').insert(ts.map((t) => ({ org_id: orgId, ts: t, type: 'deploy', title: 'event-title-canary' })));
}

/** Rows per table, org and day offset: `{ logs: { [orgId]: { '-1': 4 } } }`. */
async function counts(knex: Knex): Promise<Record<string, Record<string, Record<string, number>>>> {
  const out: Record<string, Record<string, Record<string, number>>> = {};
  for (const t of TABLES) {
    out[t] = {};
    const { rows } = await knex.raw<{ rows: { org_id: string; day: string; n: string }[] }>(
      `select org_id, to_char(ts at time zone 'UTC', 'YYYY-MM-DD') as day, count(*) as n from ?? group by 1, 2`,
      [t],
    );
    for (const r of rows) {
      const offset = (Date.parse(`${r.day}T00:00:00Z`) - TODAY) / DAY_MS;
      (out[t][r.org_id] ??= {})[String(offset)] = Number(r.n);
    }
  }
  return out;
}

const partitionNames = async (partitions: PartitionsRepository) => (await partitions.list()).map((p) => p.name);
const names = (offsets: number[]) => PARTITIONED_TABLES.flatMap((t) => offsets.map((d) => partitionName(t, day(d)))).sort();

function service(knex: Knex, repo: RetentionRepository, policies: RetentionPolicySource, logger: Logger, opts: { batch?: number; lockMs?: number } = {}) {
  return new RetentionService(repo, new PartitionsRepository(knex), policies, {
    defaults: days(30),
    deleteBatchSize: opts.batch ?? 2,
    idempotencyTtlMs: 24 * HOUR,
    dropLockTimeoutMs: opts.lockMs,
  }, logger);
}

describe('retention', function () {
  this.timeout(60_000);
  let url: string;
  let knex: Knex;
  let partitions: PartitionsRepository;
  const logs = new LogCapture();
  const logger = pino({ level: 'info' }, logs);

  before(async () => {
    url = await cloneDatabase();
    knex = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 4 } });
    partitions = new PartitionsRepository(knex);
  });
  after(async () => {
    await knex?.destroy();
    if (url) await dropDatabase(url);
  });

  describe('two orgs with 1 and 3 days of retention', () => {
    let orgA: string; // 1 day
    let orgB: string; // 3 days
    let retention: Map<string, number>;
    let repo: RecordingRepository;
    let first: RetentionReport;
    let initial: Awaited<ReturnType<typeof counts>>;
    const series: Record<string, number> = {};

    before(async () => {
      orgA = await insertOrg(knex, 'short');
      orgB = await insertOrg(knex, 'long');
      retention = new Map([
        [orgA, 1],
        [orgB, 3],
      ]);
      for (const t of PARTITIONED_TABLES) await partitions.ensure(t, [-5, -4, -3, -2, -1, 0].map(day));
      // A's cutoff is now − 1 d, B's now − 3 d.
      series.aGone = await insertSeries(knex, orgA, 'a.gone', NOW - 2 * DAY_MS);
      // Not seen for 2 days, but it has points after A's cutoff (last_seen_at lags): kept.
      series.aLagging = await insertSeries(knex, orgA, 'a.lagging', NOW - 2 * DAY_MS);
      series.aFresh = await insertSeries(knex, orgA, 'a.fresh', NOW - HOUR);
      series.bKept = await insertSeries(knex, orgB, 'b.kept', NOW - 2 * DAY_MS);
      series.bGone = await insertSeries(knex, orgB, 'b.gone', NOW - 4 * DAY_MS);
      await insertRows(knex, orgA, series.aLagging, [-5, -4, -3, -2, -1, 0]);
      await insertRows(knex, orgB, series.bKept, [-5, -4, -3, -2, -1, 0]);
      const key = (org: string, k: string, age: number) => ({ org_id: org, key: k, request_hash: Buffer.from(k), response: '{}', created_at: new Date(NOW - age) });
      await knex('ingest_idempotency').insert([
        key(orgA, 'old', 25 * HOUR),
        key(orgB, 'old', 24 * HOUR + 1),
        key(orgA, 'new', 23 * HOUR),
        key(orgB, 'new', HOUR),
      ]);
      initial = await counts(knex);
      repo = new RecordingRepository(knex);
      first = await service(knex, repo, policySource(knex, retention), logger).run(NOW);
    });

    it('drops a whole day only when both orgs\' retention has passed it', async () => {
      // B's cutoff is day −3 at noon: days −5 and −4 end before it; day −3 does not.
      expect(first.dropped_partitions.sort()).to.deep.equal(names([-5, -4]));
      expect(first.deferred_partitions).to.deep.equal([]);
      expect(await partitionNames(partitions)).to.deep.equal(names([-3, -2, -1, 0]));
    });

    it('deletes exactly the expired rows of each org in the days that stay, and nothing else', async () => {
      for (const t of TABLES) {
        expect(initial[t][orgA], t).to.deep.equal({ '-5': 7, '-4': 7, '-3': 7, '-2': 7, '-1': 7, '0': 7 });
        expect(initial[t][orgB], t).to.deep.equal({ '-5': 7, '-4': 7, '-3': 7, '-2': 7, '-1': 7, '0': 7 });
      }
      const after = await counts(knex);
      for (const t of TABLES) {
        // A keeps day −1 from noon on (12:00, 14, 18, 22) and all of today.
        expect(after[t][orgA], `${t} of A`).to.deep.equal({ '-1': 4, '0': 7 });
        // B keeps day −3 from noon on, then everything.
        expect(after[t][orgB], `${t} of B`).to.deep.equal({ '-3': 4, '-2': 7, '-1': 7, '0': 7 });
      }
      // Day −3: A 7 + B 3; day −2: A 7; day −1: A 3.
      expect(first.rows_deleted).to.deep.equal({ points: 20, point_chunks: 0, logs: 20, events: 20 });
      const [{ n }] = (await knex.raw<{ rows: { n: string }[] }>(`select count(*) as n from logs where org_id = ? and ts = ?`, [orgA, new Date(NOW - DAY_MS)])).rows;
      expect(Number(n), 'the row exactly at the cutoff stays').to.equal(1);
    });

    it('deletes in batches no larger than deleteBatchSize, looping until a short batch', () => {
      expect(Math.max(...repo.batches)).to.equal(2);
      expect(repo.batches.reduce((a, b) => a + b, 0)).to.equal(60);
      // A's 7 rows of day −2 in one table alone take 2 + 2 + 2 + 1.
      expect(repo.batches.length).to.be.greaterThan(30);
    });

    it('removes series not seen within the org\'s retention and without retained points; keeps the others', async () => {
      expect(first.series_removed).to.equal(2);
      const left = await knex('series').orderBy('name').pluck('name');
      expect(left).to.deep.equal(['a.fresh', 'a.lagging', 'b.kept']);
    });

    it('removes Idempotency-Key answers older than the TTL', async () => {
      expect(first.idempotency_keys_removed).to.equal(2);
      const left = await knex('ingest_idempotency').orderBy(['org_id', 'key']).select('org_id', 'key');
      expect(left).to.have.deep.members([
        { org_id: orgA, key: 'new' },
        { org_id: orgB, key: 'new' },
      ]);
    });

    it('logs a summary with counts only, never data', () => {
      const line = logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'retention run finished');
      expect(line).to.include({ job: 'retention', dropped: 8, series_removed: 2, idempotency_keys_removed: 2 });
      expect(logs.text).to.not.contain('canary').and.not.contain(orgA).and.not.contain(orgB);
    });

    it('finds nothing to do when run again', async () => {
      const again = await service(knex, repo, policySource(knex, retention), logger).run(NOW);
      expect(again).to.deep.include({
        dropped_partitions: [],
        deferred_partitions: [],
        rows_deleted: { points: 0, point_chunks: 0, logs: 0, events: 0 },
        deleted_orgs_swept: 0,
        series_removed: 0,
        idempotency_keys_removed: 0,
      });
      expect(await partitionNames(partitions)).to.deep.equal(names([-3, -2, -1, 0]));
    });

    it('removes the leftover rows of a deleted org, but not those of an org created during the run', async () => {
      const gone = await insertOrg(knex, 'gone');
      const late = await insertOrg(knex, 'late');
      const gs = await insertSeries(knex, gone, 'g', NOW);
      const ls = await insertSeries(knex, late, 'l', NOW);
      await insertRows(knex, gone, gs, [-1, 0]);
      await insertRows(knex, late, ls, [-1, 0]);
      await knex('organizations').where({ id: gone }).delete();
      const source = policySource(knex, retention);
      source.hide.add(late);
      const r = await service(knex, new RetentionRepository(knex), source, logger, { batch: 5 }).run(NOW);
      expect(r.deleted_orgs_swept).to.equal(1);
      expect(r.rows_deleted).to.deep.equal({ points: 14, point_chunks: 0, logs: 14, events: 14 });
      const after = await counts(knex);
      for (const t of TABLES) {
        expect(after[t][gone], t).to.equal(undefined);
        expect(after[t][late], t).to.deep.equal({ '-1': 7, '0': 7 });
        expect(after[t][orgA], t).to.deep.equal({ '-1': 4, '0': 7 });
      }
    });

    it('batches through rows with equal keys (points may repeat a series and ts) without leaving any', async () => {
      const ts = new Date(day(-2) + 3 * HOUR);
      await knex('points').insert(Array.from({ length: 5 }, () => ({ org_id: orgA, series_id: series.aLagging, ts, value: 1 })));
      const r = await service(knex, new RetentionRepository(knex), policySource(knex, retention), logger, { batch: 2 }).run(NOW);
      expect(r.rows_deleted).to.deep.equal({ points: 5, point_chunks: 0, logs: 0, events: 0 });
      expect((await counts(knex)).points[orgA]).to.deep.equal({ '-1': 4, '0': 7 });
    });

    it('defers a drop whose table is busy instead of queueing behind it, and drops it on the next run', async () => {
      const busy = new pg.Client({ connectionString: url });
      await busy.connect();
      try {
        await busy.query('begin');
        await busy.query('select count(*) from points');
        // Two days later every org's retention has passed day −3.
        const later = NOW + 2 * DAY_MS;
        const r = await service(knex, new RetentionRepository(knex), policySource(knex, retention), logger, { lockMs: 200 }).run(later);
        expect(r.deferred_partitions).to.include(partitionName('points', day(-3)));
        expect(r.dropped_partitions).to.include(partitionName('logs', day(-3)));
        expect(await partitionNames(partitions)).to.include(partitionName('points', day(-3)));
        await busy.query('commit');
        const again = await service(knex, new RetentionRepository(knex), policySource(knex, retention), logger, { lockMs: 200 }).run(later);
        expect(again.dropped_partitions).to.deep.equal(r.deferred_partitions);
        expect(again.deferred_partitions).to.deep.equal([]);
        expect(await partitionNames(partitions)).to.not.include(partitionName('points', day(-3)));
      } finally {
        await busy.end();
      }
    });
  });

  describe('without any org', () => {
    it('drops days by the configured defaults and sweeps rows of orgs that no longer exist', async () => {
      const db = await cloneDatabase();
      const k = knexFactory({ client: 'pg', connection: db, pool: { min: 0, max: 2 } });
      try {
        const parts = new PartitionsRepository(k);
        for (const t of PARTITIONED_TABLES) await parts.ensure(t, [day(-40), day(-1)]);
        const vanished = randomUUID();
        await k('logs').insert([-40, -1].map((d) => ({ org_id: vanished, ts: new Date(day(d) + HOUR), severity_number: 9, severity_text: 'info', body: 'x' })));
        const r = await new RetentionService(new RetentionRepository(k), parts, { retentionDays: async () => [] }, {
          defaults: days(30),
          deleteBatchSize: 10,
          idempotencyTtlMs: HOUR,
        }, logger).run(NOW);
        expect(r.dropped_partitions.sort()).to.deep.equal(names([-40]));
        expect(r.rows_deleted.logs).to.equal(1);
        expect(r.deleted_orgs_swept).to.equal(1);
        expect(await partitionNames(parts)).to.deep.equal(names([-1]));
      } finally {
        await k.destroy();
        await dropDatabase(db);
      }
    });
  });

  describe('aborted (the job\'s timeout, shutdown)', () => {
    it('stops between delete batches with the signal\'s reason, keeping what it did', async () => {
      const db = await cloneDatabase();
      const k = knexFactory({ client: 'pg', connection: db, pool: { min: 0, max: 2 } });
      try {
        const parts = new PartitionsRepository(k);
        for (const t of PARTITIONED_TABLES) await parts.ensure(t, [day(-1), day(0)]);
        const org = await insertOrg(k, 'aborted');
        await insertRows(k, org, await insertSeries(k, org, 'm', NOW), [-1, 0]);
        const controller = new AbortController();
        const reason = new Error('timed out after 1 ms');
        class AbortingRepository extends RecordingRepository {
          override async deleteOrgRows(p: PartitionInfo<PartitionedTable>, orgId: string, before: Date | null, limit: number, after: RowKey | null): Promise<DeleteBatch> {
            const b = await super.deleteOrgRows(p, orgId, before, limit, after);
            controller.abort(reason);
            return b;
          }
        }
        const repo = new AbortingRepository(k);
        const err = await service(k, repo, policySource(k, new Map([[org, 1]])), logger, { batch: 1 }).run(NOW, controller.signal).then(() => null, (e: unknown) => e);
        expect(err).to.equal(reason);
        // One batch of one row, then it stopped (unaborted, day −1's three early rows go in three batches per table).
        expect(repo.batches).to.deep.equal([1]);
      } finally {
        await k.destroy();
        await dropDatabase(db);
      }
    });

    it('partition maintenance stops before the next table', async () => {
      const controller = new AbortController();
      const seen: string[] = [];
      const reason = new Error('interrupted');
      const fake = {
        partitionedTables: PARTITIONED_TABLES,
        ensure: async (table: PartitionedTable) => {
          seen.push(table);
          controller.abort(reason);
          return { created: [], deferred: [] };
        },
      };
      const err = await new PartitionMaintenance(fake, { aheadDays: 1 }, logger).run(NOW, controller.signal).then(() => null, (e: unknown) => e);
      expect(err).to.equal(reason);
      expect(seen).to.deep.equal([PARTITIONED_TABLES[0]]);
    });
  });

  describe('partition maintenance', () => {
    // A day no other test touches, so every partition of it is new.
    const at = Date.UTC(2031, 0, 15, 9, 30);
    const expected = (ahead: number) => PARTITIONED_TABLES.flatMap((t) => Array.from({ length: ahead + 2 }, (_, i) => partitionName(t, dayStart(at) + (i - 1) * DAY_MS))).sort();

    it('creates yesterday through today + aheadDays for points, point chunks, logs and events, and is idempotent', async () => {
      const m = new PartitionMaintenance(partitions, { aheadDays: 2 }, logger);
      const first = await m.run(at);
      expect(first.created.sort()).to.deep.equal(expected(2));
      expect(first.created).to.include('logs_p20310114').and.include('events_p20310117');
      const listed = await partitionNames(partitions);
      for (const n of expected(2)) expect(listed).to.include(n);
      expect(await m.run(at)).to.deep.equal({ created: [], deferred: [] });
      // One more day ahead creates exactly the four new partitions of that day.
      expect((await new PartitionMaintenance(partitions, { aheadDays: 3 }, logger).run(at)).created.sort()).to.deep.equal(['events_p20310118', 'logs_p20310118', 'point_chunks_p20310118', 'points_p20310118']);
    });

    it('creates the days while a backup holds its lock on every table (ACCESS SHARE)', async () => {
      const at2 = Date.UTC(2032, 4, 10, 0, 5);
      const backup = await holdingLock(url, 'lock table points, logs, events, point_chunks in access share mode');
      try {
        // Nothing deferred: with CREATE … PARTITION OF each day waited its 2 s for the backup and was deferred.
        const r = await new PartitionMaintenance(partitions, { aheadDays: 0 }, logger).run(at2);
        expect(r.deferred).to.deep.equal([]);
        expect(r.created.sort()).to.deep.equal(PARTITIONED_TABLES.flatMap((t) => [partitionName(t, dayStart(at2) - DAY_MS), partitionName(t, dayStart(at2))]).sort());
      } finally {
        await backup.release();
      }
    });

    it('defers a day whose parent a conflicting lock holds (an ANALYZE of it, another ATTACH) within its lock timeout; inserts meanwhile do not queue behind it', async () => {
      const at2 = Date.UTC(2032, 5, 10, 0, 5);
      const existing = dayStart(at2) - 10 * DAY_MS;
      await partitions.ensure('points', [existing]);
      const orgId = await insertOrg(knex, 'locked');
      const seriesId = await insertSeries(knex, orgId, 'm', existing);
      const holder = await holdingLock(url, 'lock table points in share update exclusive mode');
      try {
        const started = Date.now();
        const deadline = <T>(p: Promise<T>) =>
          Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('still blocked behind the holder')), 6000).unref())]);
        // The insert is issued while the ATTACH waits for its lock: it does not queue behind it.
        const run = new PartitionMaintenance(partitions, { aheadDays: 0 }, logger).run(at2);
        const insert = (async () => {
          while (!(await knex.raw<{ rows: unknown[] }>(`select 1 from pg_locks where relation = 'points'::regclass and mode = 'ShareUpdateExclusiveLock' and not granted`)).rows.length) {
            if (Date.now() - started > 5000) throw new Error('the ATTACH never waited for the lock');
            await new Promise((r) => setTimeout(r, 10));
          }
          const t0 = Date.now();
          await knex('points').insert({ org_id: orgId, series_id: seriesId, ts: new Date(existing + HOUR), value: 1 });
          return Date.now() - t0;
        })();
        const [r, insertMs] = await deadline(Promise.all([run, insert]));
        expect(Date.now() - started).to.be.below(3500);
        expect(insertMs, 'the insert did not wait for the ATTACH').to.be.below(500);
        expect(r.deferred.sort()).to.deep.equal([partitionName('points', dayStart(at2) - DAY_MS), partitionName('points', dayStart(at2))]);
        expect(r.created.sort()).to.deep.equal(['events', 'logs', 'point_chunks'].flatMap((t) => [partitionName(t, dayStart(at2) - DAY_MS), partitionName(t, dayStart(at2))]).sort());
        await holder.release();
        const again = await new PartitionMaintenance(partitions, { aheadDays: 0 }, logger).run(at2);
        expect(again).to.deep.equal({ created: r.deferred, deferred: [] });
      } finally {
        await holder.release();
      }
    });

    it('the writer\'s on-demand creation waits for the lock (bounded), then answers the lock error', async () => {
      const day2 = Date.UTC(2032, 6, 1);
      const holder = await holdingLock(url, 'lock table logs in share update exclusive mode');
      try {
        const started = Date.now();
        const err = await partitions.ensure('logs', [day2], { lockTimeoutMs: 300 }).then(() => null, (e: unknown) => e);
        expect((err as { code?: string } | null)?.code).to.equal('55P03');
        expect(Date.now() - started).to.be.within(250, 3000);
        // Nothing half made: no table of that name, attached or not.
        expect((await knex.raw<{ rows: unknown[] }>('select 1 from pg_class where relname = ?', [partitionName('logs', day2)])).rows).to.deep.equal([]);
        // Once the holder ends, the same call creates it.
        const waiting = partitions.ensure('logs', [day2], { lockTimeoutMs: 5000 });
        await holder.release();
        expect(await waiting).to.deep.equal({ created: [partitionName('logs', day2)], deferred: [] });
      } finally {
        await holder.release();
      }
    });

    it('the created partitions take the rows of their UTC day', async () => {
      const orgId = randomUUID();
      await knex('events').insert({ org_id: orgId, ts: new Date(Date.UTC(2031, 0, 17, 23, 59, 59, 999)), type: 't', title: 't' });
      const { rows } = await knex.raw<{ rows: { rel: string }[] }>(`select tableoid::regclass::text as rel from events where org_id = ?`, [orgId]);
      expect(rows).to.deep.equal([{ rel: 'events_p20310117' }]);
    });
  });
});

describe('retention module: the "partitions ahead" start hook', function () {
  this.timeout(60_000);
  let url: string;
  let knex: Knex;

  before(async () => {
    url = await cloneDatabase();
    knex = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 4 } });
  });
  after(async () => {
    await knex?.destroy();
    if (url) await dropDatabase(url);
  });

  it('creates the partitions at start; no timer of its own: the hourly `partitions` job keeps them ahead', async () => {
    const repo = new DbPartitionsRepository(knex, PARTITIONED_TABLES, [], SPLIT_TABLES);
    for (const p of await repo.list()) await repo.drop(p);
    const built = retentionModule.build(moduleKits(knex, url), { retentionPolicies: { retentionDays: async () => [] } });
    expect(built.start!.map((h) => h.name)).to.deep.equal(['partitions ahead']);
    expect(built.stop ?? [], 'nothing to stop: no timer').to.deep.equal([]);
    await built.start![0].run();
    expect(await repo.list('points')).to.not.deep.equal([]);
    expect(retentionModule.jobs!.map((j) => [j.name, j.defaultSchedule, j.timeoutMs])).to.deep.equal([
      ['retention', '15 * * * *', 30 * 60_000],
      ['partitions', '5 * * * *', 5 * 60_000],
      ['analyze', '*/5 * * * *', 4 * 60_000],
    ]);
    // The jobs hand the runner's signal on: an aborted run (timeout, shutdown) stops with its reason.
    for (const job of retentionModule.jobs!) {
      const reason = new Error(`timed out: ${job.name}`);
      const err = await job.run(built.services, AbortSignal.abort(reason)).then(() => null, (e: unknown) => e);
      expect(err, job.name).to.equal(reason);
    }
  });
});

describe('CLI: jobs run', function () {
  this.timeout(60_000);
  let url: string;
  let env: Record<string, string>;
  let knex: Knex;
  before(async () => {
    url = await cloneDatabase();
    env = testEnv(url);
    knex = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 2 } });
  });
  after(async () => {
    await knex?.destroy();
    if (url) await dropDatabase(url);
  });

  it('jobs run retention --json applies each org\'s retention limits over the config defaults', async () => {
    const now = Date.now();
    const [short] = await knex('organizations').insert({ slug: 'cli-short', name: 'short', limits: JSON.stringify({ retention_days: { logs: 1 } }) }).returning<{ id: string }[]>('id');
    const [dflt] = await knex('organizations').insert({ slug: 'cli-default', name: 'default' }).returning<{ id: string }[]>('id');
    const parts = new PartitionsRepository(knex);
    for (const t of PARTITIONED_TABLES) await parts.ensure(t, [now - 20 * DAY_MS, now - 3 * DAY_MS]);
    // Defaults: logs 14 days, metrics 30, events 90. So day −20 goes whole for logs only, and on
    // day −3 only the 1-day org's log row goes.
    const at = (d: number) => new Date(now - d * DAY_MS);
    await knex('logs').insert([short.id, dflt.id].flatMap((org) => [20, 3].map((d) => ({ org_id: org, ts: at(d), severity_number: 9, severity_text: 'info', body: 'b' }))));

    const r = await cli(['jobs', 'run', 'retention', '--json'], env);
    expect(r.code, r.stderr).to.equal(0);
    const report = JSON.parse(r.stdout) as RetentionReport;
    expect(report.dropped_partitions).to.deep.equal([partitionName('logs', dayStart(now - 20 * DAY_MS))]);
    expect(report.rows_deleted).to.deep.equal({ points: 0, point_chunks: 0, logs: 1, events: 0 });
    const left = await knex('logs').select('org_id').orderBy('org_id');
    expect(left).to.deep.equal([{ org_id: dflt.id }]);

    const human = await cli(['jobs', 'run', 'retention'], env);
    expect(human.code, human.stderr).to.equal(0);
    expect(human.stdout).to.match(/^retention finished in \d+ ms/).and.contain('partitions dropped: 0\n').and.contain('rows deleted: points 0, point chunks 0, logs 0, events 0\n');
  });

  it('jobs run partitions creates the coming days once', async () => {
    const first = await cli(['jobs', 'run', 'partitions', '--json'], env);
    expect(first.code, first.stderr).to.equal(0);
    const { created } = JSON.parse(first.stdout) as { created: string[] };
    const ahead = dayStart(Date.now()) + 2 * DAY_MS; // retention.partitions_ahead_days defaults to 2
    // Days of logs, events and chunks; the windows of points (the last one of that day too).
    expect(created).to.include.members(TABLES.map((t) => (t === 'points' ? partitionName(t, ahead, 'w22') : partitionName(t, ahead))));
    const again = await cli(['jobs', 'run', 'partitions'], env);
    expect(again.code, again.stderr).to.equal(0);
    expect(again.stdout).to.equal('no partitions created: all exist\n');
  });
});
