import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import { pino } from 'pino';
import type { Clock } from '../../src/core/clock.js';
import { createJobsKit, JOB_RUN_TASK, type JobsKit, type KitJob } from '../../src/jobs/jobs-kit.js';
import { QueueWorkers, type QueueTaskDef } from '../../src/jobs/queue-workers.js';
import { TaskStore, type TaskRow } from '../../src/jobs/task-store.js';
import { PgWorkQueue } from '../../src/jobs/work-queue.js';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';

/*
 * The jobs kit on a real PostgreSQL, with jobs and tasks of the tests' own (so each can be made
 * to block, fail or overrun). Several kits on one database stand for several daemons: each has
 * its own pool, its own queue workers and its own scheduler. Ticks go through the scheduler's
 * seam (`tick(job, slot)`) with slots the tests choose: node-cron's timer is not under test,
 * the slot logic (dedupe, catch-up, overlap) is.
 */

const HOUR = 3_600_000;
const silent = pino({ level: 'silent' });

interface Daemon {
  kit: JobsKit;
  knex: Knex;
  queue: PgWorkQueue;
  stop(): Promise<void>;
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('jobs kit: scheduler, durable queue and runner on PostgreSQL', function () {
  this.timeout(60_000);
  let url: string;
  let db: Knex;
  const daemons: Daemon[] = [];

  function daemon(o: { jobs?: KitJob[]; tasks?: QueueTaskDef[]; clock?: Clock; overrides?: Record<string, { schedule?: string; enabled?: boolean }>; graceMs?: number } = {}): Daemon {
    const knex = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 4 } });
    const store = new TaskStore(knex);
    const tasks = o.tasks ?? [];
    const queue = new PgWorkQueue(store, new Map(tasks.map((t) => [t.name, t.maxAttempts])), silent);
    const kit = createJobsKit({
      knex,
      url,
      connectTimeoutMs: 3000,
      jobs: o.jobs ?? [],
      tasks,
      overrides: o.overrides ?? {},
      store,
      queue,
      concurrency: 4,
      // The tests call poll() when they want one; the timer's is the slow fallback.
      pollMs: 200,
      graceMs: o.graceMs ?? 2000,
      metrics: null,
      logger: silent,
      clock: o.clock ?? { now: () => new Date() },
    });
    let stopped = false;
    const d: Daemon = {
      kit,
      knex,
      queue,
      stop: async () => {
        if (stopped) return;
        stopped = true;
        for (const h of kit.stop) await h.run();
        await knex.destroy();
      },
    };
    daemons.push(d);
    return d;
  }
  const start = async (d: Daemon) => {
    for (const h of d.kit.start) await h.run();
    return d;
  };
  const runsOf = (job: string) =>
    query<{ id: string; trigger: string; slot: Date | null; outcome: string | null; error: string | null; details: unknown }>(url, 'select * from job_runs where job = $1 order by id', [job]);
  const tasksOf = (task: string) => query<{ id: string; state: string; attempts: number; last_error: string | null; dedupe_key: string | null; payload: Record<string, unknown> }>(url, 'select * from queue_tasks where task = $1 order by created_at', [task]);

  before(async () => {
    url = await cloneDatabase();
    db = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 2 } });
  });
  afterEach(async () => {
    for (const d of daemons.splice(0)) await d.stop();
    await db('queue_tasks').delete();
    await db('job_runs').delete();
  });
  after(async () => {
    await db?.destroy();
    if (url) await dropDatabase(url);
  });

  it('two daemons on one database run each scheduled slot once', async () => {
    const started: string[] = [];
    const job = (): KitJob => ({
      name: 'tick',
      description: 'counts',
      module: 'test',
      defaultSchedule: '0 * * * *',
      run: async () => {
        started.push(new Date().toISOString());
        await new Promise((r) => setTimeout(r, 30));
        return { ok: true };
      },
    });
    const a = await start(daemon({ jobs: [job()] }));
    const b = await start(daemon({ jobs: [job()] }));
    const slots = [1, 2, 3].map((h) => new Date(Date.UTC(2031, 0, 1, h)));
    for (const slot of slots) {
      // Both daemons' timers fire for the slot, at the same moment.
      const queued = await Promise.all([a.kit.scheduler.tick('tick', slot), b.kit.scheduler.tick('tick', slot)]);
      expect(queued.filter(Boolean), 'one of the two enqueues wins').to.have.length(1);
      // Slots are an hour apart in life: this one ends before the next comes (an overlap is
      // the next test's).
      await until(`the run of ${slot.toISOString()}`, async () => (await runsOf('tick')).some((r) => r.slot?.getTime() === slot.getTime() && r.outcome));
    }
    await new Promise((r) => setTimeout(r, 300));
    await Promise.all([a.kit.workers.poll(), b.kit.workers.poll()]);
    const runs = await runsOf('tick');
    expect(runs.map((r) => [r.trigger, r.slot?.toISOString(), r.outcome])).to.deep.equal(slots.map((s) => ['scheduled', s.toISOString(), 'ok']));
    expect(runs[0].details).to.deep.equal({ ok: true });
    expect(started).to.have.length(3);
    expect((await tasksOf(JOB_RUN_TASK)).map((t) => [t.state, t.attempts])).to.deep.equal([['done', 1], ['done', 1], ['done', 1]]);
  });

  it('a job still running when its next tick comes is not started twice: that slot is recorded skipped', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let starts = 0;
    const jobs: KitJob[] = [{ name: 'slow', description: 'blocks', module: 'test', defaultSchedule: '* * * * *', run: async () => (starts++, await gate) }];
    const a = await start(daemon({ jobs }));
    const b = await start(daemon({ jobs }));
    await a.kit.scheduler.tick('slow', new Date(Date.UTC(2031, 0, 1, 0, 0)));
    await until('the first run', async () => (await runsOf('slow')).length === 1);
    // The next minute's slot, ticked by the other daemon while the first run goes on.
    await b.kit.scheduler.tick('slow', new Date(Date.UTC(2031, 0, 1, 0, 1)));
    await until('the second slot handled', async () => (await runsOf('slow')).length === 2);
    expect((await a.kit.control.list())[0].running, 'running, seen from pg_locks').to.equal(true);
    release();
    await until('the first run finished', async () => (await runsOf('slow')).every((r) => r.outcome));
    expect(starts).to.equal(1);
    expect((await runsOf('slow')).map((r) => [r.slot?.toISOString(), r.outcome, r.error])).to.deep.equal([
      ['2031-01-01T00:00:00.000Z', 'ok', null],
      ['2031-01-01T00:01:00.000Z', 'skipped', 'already running (another run holds its lock)'],
    ]);
    // The admin side: a manual run while it runs is refused (and not recorded).
    expect((await a.kit.control.list())[0].running).to.equal(false);
  });

  it('a manual run while the job runs is a conflict; after it, runs and is recorded as manual', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const jobs: KitJob[] = [{ name: 'manual', description: 'blocks', module: 'test', run: async () => gate }];
    const a = daemon({ jobs });
    const b = daemon({ jobs });
    const first = await a.kit.control.trigger('manual');
    await b.kit.control.trigger('manual').then(
      () => expect.fail('a second run started'),
      (err: { code?: string }) => expect(err.code).to.equal('conflict'),
    );
    await b.kit.control.trigger('nope').then(
      () => expect.fail('an unknown job ran'),
      (err: { code?: string }) => expect(err.code).to.equal('not_found'),
    );
    release();
    await until('the run finished', async () => (await runsOf('manual')).every((r) => r.outcome));
    expect((await runsOf('manual')).map((r) => [String(r.id), r.trigger, r.outcome])).to.deep.equal([[first.id, 'manual', 'ok']]);
  });

  it('a queued task survives a restart: stored by one process, run by the next one started', async () => {
    const ran: unknown[] = [];
    const note: QueueTaskDef = { name: 'test.note', maxAttempts: 3, backoffMs: 100, run: async (p) => void ran.push(p) };
    // Like a CLI command or a daemon stopped before its workers got to it: stored, not run.
    const first = daemon({ tasks: [note] });
    await first.queue.enqueue('test.note', { n: 1 });
    await first.stop();
    expect((await tasksOf('test.note')).map((t) => t.state)).to.deep.equal(['pending']);
    await start(daemon({ tasks: [note] }));
    await until('the task ran', async () => (await tasksOf('test.note'))[0].state === 'done');
    expect(ran).to.deep.equal([{ n: 1 }]);
    expect((await tasksOf('test.note'))[0].attempts).to.equal(1);
  });

  it('a task interrupted by shutdown is pending again (attempt not spent), and the next daemon runs it', async () => {
    let calls = 0;
    const sticky: QueueTaskDef = {
      name: 'test.sticky',
      maxAttempts: 1,
      backoffMs: 100,
      run: (_p, signal) => {
        calls++;
        if (calls > 1) return Promise.resolve();
        return new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
      },
    };
    const a = await start(daemon({ tasks: [sticky], graceMs: 100 }));
    await a.queue.enqueue('test.sticky', {});
    await until('it runs', async () => (await tasksOf('test.sticky'))[0].state === 'running');
    await a.stop();
    expect((await tasksOf('test.sticky')).map((t) => [t.state, t.attempts])).to.deep.equal([['pending', 0]]);
    await start(daemon({ tasks: [sticky] }));
    await until('done', async () => (await tasksOf('test.sticky'))[0].state === 'done');
    expect(calls).to.equal(2);
  });

  it('retries with exponential backoff, every attempt recorded, then failed after maxAttempts', async () => {
    const at: number[] = [];
    const flaky: QueueTaskDef = {
      name: 'test.flaky',
      maxAttempts: 3,
      backoffMs: 200,
      run: async () => {
        at.push(Date.now());
        throw new Error(`attempt ${at.length} failed`);
      },
    };
    const a = await start(daemon({ tasks: [flaky] }));
    await a.queue.enqueue('test.flaky', { x: 1 });
    await until('the first attempt recorded', async () => (await tasksOf('test.flaky'))[0].attempts === 1 && (await tasksOf('test.flaky'))[0].state === 'pending');
    expect((await tasksOf('test.flaky'))[0].last_error).to.equal('attempt 1 failed');
    await until('failed', async () => (await tasksOf('test.flaky'))[0].state === 'failed');
    const [t] = await tasksOf('test.flaky');
    expect([t.attempts, t.last_error]).to.deep.equal([3, 'attempt 3 failed']);
    expect(at).to.have.length(3);
    // 200 ms, then 400 ms (doubling); the poll adds up to its interval on top.
    expect(at[1] - at[0]).to.be.at.least(200);
    expect(at[2] - at[1]).to.be.at.least(400);
    // Nothing more happens to a failed task.
    await new Promise((r) => setTimeout(r, 500));
    expect(at).to.have.length(3);
  });

  it('missed runs are caught up once on start (not once per missed slot), and only once across daemons', async () => {
    const now = new Date(Date.UTC(2031, 0, 1, 10, 20));
    const clock = { now: () => now };
    let runs = 0;
    const jobs: KitJob[] = [
      { name: 'hourly', description: 'h', module: 'test', defaultSchedule: '0 * * * *', run: async () => void runs++ },
      // Never ran: nothing to catch up.
      { name: 'fresh', description: 'f', module: 'test', defaultSchedule: '0 * * * *', run: async () => expect.fail('fresh ran') },
      // Ran after its latest slot: nothing missed.
      { name: 'current', description: 'c', module: 'test', defaultSchedule: '0 * * * *', run: async () => expect.fail('current ran') },
      // Missed, but disabled in the config.
      { name: 'off', description: 'o', module: 'test', defaultSchedule: '0 * * * *', run: async () => expect.fail('off ran') },
    ];
    // Down since 05:10: slots 06:00 … 10:00 went by.
    await db('job_runs').insert([
      { job: 'hourly', trigger: 'scheduled', started_at: new Date(Date.UTC(2031, 0, 1, 5, 0)), finished_at: new Date(Date.UTC(2031, 0, 1, 5, 1)), outcome: 'ok', instance: 'old:1', pid: 1 },
      { job: 'current', trigger: 'scheduled', started_at: new Date(Date.UTC(2031, 0, 1, 10, 0, 1)), finished_at: new Date(Date.UTC(2031, 0, 1, 10, 1)), outcome: 'ok', instance: 'old:1', pid: 1 },
      { job: 'off', trigger: 'scheduled', started_at: new Date(Date.UTC(2031, 0, 1, 5, 0)), finished_at: new Date(Date.UTC(2031, 0, 1, 5, 1)), outcome: 'ok', instance: 'old:1', pid: 1 },
    ]);
    const a = daemon({ jobs, clock, overrides: { off: { enabled: false } } });
    const b = daemon({ jobs, clock, overrides: { off: { enabled: false } } });
    // Both start at once; their catch-ups race for the same slot key.
    await Promise.all([start(a), start(b)]);
    await until('the catch-up ran', async () => (await runsOf('hourly')).length === 2 && (await runsOf('hourly')).every((r) => r.outcome));
    await new Promise((r) => setTimeout(r, 300));
    expect(runs).to.equal(1);
    expect((await runsOf('hourly')).slice(1).map((r) => [r.trigger, r.slot?.toISOString(), r.outcome])).to.deep.equal([['catch-up', '2031-01-01T10:00:00.000Z', 'ok']]);
    expect((await tasksOf(JOB_RUN_TASK)).map((t) => t.dedupe_key)).to.deep.equal(['job:hourly@2031-01-01T10:00:00.000Z']);
    // A daemon started later catches up nothing: the last run started after the latest slot.
    expect(await daemon({ jobs, clock, overrides: { off: { enabled: false } } }).kit.scheduler.catchUp()).to.deep.equal([]);
  });

  it('a run that overruns its timeoutMs is aborted and recorded as timeout', async () => {
    const jobs: KitJob[] = [
      {
        name: 'overrun',
        description: 'waits for its signal',
        module: 'test',
        timeoutMs: 150,
        run: (signal) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error))),
      },
    ];
    const a = daemon({ jobs });
    const t0 = Date.now();
    const r = await a.kit.runNow('overrun');
    expect(Date.now() - t0).to.be.at.least(150);
    expect([r.outcome, r.error]).to.deep.equal(['timeout', 'did not finish within 150 ms: timed out after 150 ms']);
    const [row] = await runsOf('overrun');
    expect([row.trigger, row.outcome, row.error]).to.deep.equal(['manual', 'timeout', r.error]);
  });

  it('a failing job is recorded failed with its error; a run left unfinished by a dead process is closed by the next', async () => {
    await db('job_runs').insert({ job: 'broken', trigger: 'scheduled', started_at: new Date(Date.now() - HOUR), instance: 'dead:1', pid: 1 });
    const a = daemon({ jobs: [{ name: 'broken', description: 'fails', module: 'test', run: async () => Promise.reject(new Error('disk on fire')) }] });
    const r = await a.kit.runNow('broken');
    expect([r.outcome, r.error]).to.deep.equal(['failed', 'disk on fire']);
    expect((await runsOf('broken')).map((x) => [x.outcome, x.error])).to.deep.equal([
      ['failed', 'abandoned: the process running it stopped before it finished'],
      ['failed', 'disk on fire'],
    ]);
  });

  it('leaves no advisory lock behind: none in pg_locks after runs of every kind', async () => {
    const a = await start(daemon({ jobs: [{ name: 'quick', description: 'q', module: 'test', defaultSchedule: '* * * * *', run: async () => 1 }] }));
    await a.kit.runNow('quick');
    await a.kit.scheduler.tick('quick', new Date(Date.UTC(2031, 0, 1)));
    await until('the scheduled run', async () => (await runsOf('quick')).filter((r) => r.outcome).length === 2);
    await new Promise((r) => setTimeout(r, 100));
    const locks = await query<{ n: number }>(url, "select count(*)::int as n from pg_locks where locktype = 'advisory' and database = (select oid from pg_database where datname = current_database())");
    expect(locks[0].n).to.equal(0);
    // And no lock connection left open either.
    const conns = await query<{ n: number }>(url, "select count(*)::int as n from pg_stat_activity where application_name = 'sentinel job lock' and datname = current_database()");
    expect(conns[0].n).to.equal(0);
  });

  it('the lock is held on its own connection for the whole run (visible in pg_locks while it runs)', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const a = daemon({ jobs: [{ name: 'held', description: 'h', module: 'test', run: async () => gate }] });
    const run = a.kit.runNow('held');
    await until('running', async () => (await a.kit.control.list())[0].running);
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      const { rows } = await c.query<{ state: string }>("select a.state from pg_locks l join pg_stat_activity a using (pid) where l.locktype = 'advisory' and a.application_name = 'sentinel job lock' and a.datname = current_database()");
      expect(rows.map((r) => r.state)).to.deep.equal(['idle in transaction']);
    } finally {
      await c.end();
    }
    release();
    expect((await run).outcome).to.equal('ok');
  });

  it('a long run survives a server-wide idle_in_transaction_session_timeout (the lock session turns it off)', async () => {
    const dbName = new URL(url).pathname.slice(1);
    await db.raw(`alter database ${dbName} set idle_in_transaction_session_timeout = '200ms'`);
    try {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const a = daemon({ jobs: [{ name: 'long', description: 'l', module: 'test', run: async () => gate }] });
      const run = a.kit.runNow('long');
      await until('running', async () => (await a.kit.control.list())[0].running);
      // Well past the server's limit while the lock session sits idle in its transaction.
      await until('the lock session idle in transaction for over 1 s', async () => {
        const rows = await query<{ idle_ms: number }>(
          url,
          "select extract(epoch from now() - state_change) * 1000 as idle_ms from pg_stat_activity where application_name = 'sentinel job lock' and datname = current_database() and state = 'idle in transaction'",
        );
        return rows.length === 1 && rows[0].idle_ms > 1000;
      });
      release();
      const r = await run;
      expect([r.outcome, r.error]).to.deep.equal(['ok', null]);
    } finally {
      await db.raw(`alter database ${dbName} reset idle_in_transaction_session_timeout`);
    }
  });

  describe('queue workers on their own (a store that can be made to stall or fail)', () => {
    let knex: Knex;
    const workers: QueueWorkers[] = [];
    beforeEach(() => {
      knex = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 4 } });
    });
    afterEach(async () => {
      for (const w of workers.splice(0)) await w.destroy();
      await knex.destroy();
    });
    const workersOn = (store: TaskStore, defs: QueueTaskDef[]) => {
      const w = new QueueWorkers(store, new Map(defs.map((d) => [d.name, d])), { concurrency: 2, pollMs: 60_000, leaseMs: 60_000, keepDoneMs: HOUR, keepFailedMs: HOUR }, 'test:1', silent);
      workers.push(w);
      return w;
    };

    it('a claim fails a task whose lease ran out on its last attempt (max_attempts stored at enqueue) instead of taking it up again', async () => {
      const store = new TaskStore(knex);
      const queue = new PgWorkQueue(store, new Map([['test.stalls', 2]]), silent);
      await queue.enqueue('test.stalls', { n: 1 });
      await queue.enqueue('test.stalls', { n: 2 });
      expect((await tasksOf('test.stalls')).map((t) => (t as unknown as { max_attempts: number }).max_attempts)).to.deep.equal([2, 2]);
      // Both were taken by workers that died: n 1 on its last attempt, n 2 with one left.
      await knex('queue_tasks').where({ task: 'test.stalls' }).update({ state: 'running', locked_by: 'dead:1/x', lease_until: knex.raw("now() - interval '1 second'") });
      await knex('queue_tasks').whereRaw("payload->>'n' = '1'").update({ attempts: 2, last_error: 'attempt 1 failed' });
      await knex('queue_tasks').whereRaw("payload->>'n' = '2'").update({ attempts: 1 });
      const claimed = await store.claim(10, 'me:1/y', 60_000);
      expect(claimed.map((r) => [r.payload, r.attempts])).to.deep.equal([[{ n: 2 }, 2]]);
      const rows = await query<{ payload: { n: number }; state: string; attempts: number; last_error: string | null; locked_by: string | null }>(url, "select * from queue_tasks where task = 'test.stalls' order by payload->>'n'");
      expect(rows.map((r) => [r.payload.n, r.state, r.attempts, r.locked_by])).to.deep.equal([
        [1, 'failed', 2, null],
        [2, 'running', 2, 'me:1/y'],
      ]);
      expect(rows[0].last_error).to.equal('lease expired on its last attempt (its worker died or stalled); before: attempt 1 failed');
      // Nothing left to claim, and a failed task is not due.
      expect(await store.claim(10, 'me:1/z', 60_000)).to.deep.equal([]);
    });

    it('a task whose claim completes after pause() is released (pending, attempt not spent), not started', async () => {
      let claimStarted!: () => void;
      const claiming = new Promise<void>((r) => (claimStarted = r));
      let finishClaim!: () => void;
      const claimGate = new Promise<void>((r) => (finishClaim = r));
      class StallingStore extends TaskStore {
        override async claim(n: number, lockId: string, leaseMs: number): Promise<TaskRow[]> {
          const rows = await super.claim(n, lockId, leaseMs);
          if (rows.length) {
            claimStarted();
            await claimGate;
          }
          return rows;
        }
      }
      const store = new StallingStore(knex);
      let ran = 0;
      const w = workersOn(store, [{ name: 'test.late', maxAttempts: 3, backoffMs: 100, run: async () => void ran++ }]);
      w.start();
      const id = (await store.insert({ task: 'test.late', payload: {} }))!;
      w.wake(id);
      await claiming;
      // The claim is in the database (running, attempt 1) but not yet handed to a worker.
      expect((await tasksOf('test.late')).map((t) => [t.state, t.attempts])).to.deep.equal([['running', 1]]);
      w.pause();
      finishClaim();
      await until('the claim is given back', async () => (await tasksOf('test.late'))[0].state === 'pending');
      await w.idle();
      expect(ran).to.equal(0);
      expect((await tasksOf('test.late')).map((t) => [t.state, t.attempts])).to.deep.equal([['pending', 0]]);
    });

    it('a task that succeeded but whose markDone failed is not re-run as a failed attempt: the row is left to its lease', async () => {
      let markDoneCalls = 0;
      class FlakyRecordStore extends TaskStore {
        override async markDone(_id: string, _lockId: string): Promise<void> {
          markDoneCalls++;
          throw Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' });
        }
      }
      const store = new FlakyRecordStore(knex);
      let ran = 0;
      let finished!: () => void;
      const done = new Promise<void>((r) => (finished = r));
      const w = workersOn(store, [
        {
          name: 'test.once',
          maxAttempts: 3,
          backoffMs: 1,
          run: async () => {
            ran++;
            finished();
          },
        },
      ]);
      w.start();
      w.wake((await store.insert({ task: 'test.once', payload: {} }))!);
      await done;
      await until('the recording was tried', () => markDoneCalls === 1);
      await w.idle();
      // Still held by its claim (not pending for a retry, no error recorded as the task's).
      const [row] = await query<{ state: string; attempts: number; last_error: string | null; lease_until: Date | null }>(url, "select * from queue_tasks where task = 'test.once'");
      expect([row.state, row.attempts, row.last_error]).to.deep.equal(['running', 1, null]);
      expect(row.lease_until!.getTime()).to.be.above(Date.now() + 30_000);
      await w.poll();
      expect(ran).to.equal(1);
    });
  });
});
