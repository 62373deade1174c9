import { expect } from 'chai';
import { pino } from 'pino';
import type { Clock } from '../../src/core/clock.js';
import { CronSchedule } from '../../src/core/cron.js';
import type { JobTrigger } from '../../src/core/jobs.js';
import { Scheduler, type EnqueueSlot, type SchedulerOptions } from '../../src/jobs/scheduler.js';

/*
 * The scheduler's slot logic with an enqueue of the tests' own (the database's side, dedupe by
 * (job, slot), is covered by the jobs kit's integration tests): retries after a failed enqueue,
 * the periodic catch-up, and missed ticks.
 */

const silent = pino({ level: 'silent' });
const outage = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });

/** Rejects when `p` has not settled within `ms` (a hang is the failure these tests look for). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms).unref())]);
}

interface Call {
  job: string;
  slot: string;
  trigger: JobTrigger;
}

function scheduler(o: { schedule?: string; enqueue: EnqueueSlot; clock?: Clock; lastStarts?: () => Promise<Map<string, Date>>; options?: SchedulerOptions }): Scheduler {
  return new Scheduler(
    [{ name: 'j', schedule: new CronSchedule(o.schedule ?? '0 0 1 1 *') }],
    o.enqueue,
    o.lastStarts ?? (async () => new Map()),
    o.clock ?? { now: () => new Date() },
    silent,
    o.options,
  );
}

describe('jobs scheduler: outage retry, periodic catch-up, missed ticks', () => {
  const started: Scheduler[] = [];
  afterEach(() => {
    for (const s of started.splice(0)) s.stop();
  });

  it('retries a slot whose enqueue failed (database away) with backoff until it is queued', async () => {
    const calls: Call[] = [];
    const s = scheduler({
      enqueue: async (job, slot, trigger) => {
        calls.push({ job, slot: slot.toISOString(), trigger });
        if (calls.length <= 3) throw outage();
        return true;
      },
      options: { retryBaseMs: 5, catchUpEveryMs: 3_600_000 },
    });
    s.start();
    started.push(s);
    const slot = new Date(Date.UTC(2031, 0, 1, 0, 0, 0, 400));
    expect(await within(s.tickWithRetry('j', slot), 5000, 'the retried enqueue')).to.equal(true);
    expect(calls).to.deep.equal(Array.from({ length: 4 }, () => ({ job: 'j', slot: '2031-01-01T00:00:00.000Z', trigger: 'scheduled' })));
  });

  it('gives up on a slot once its retry would pass the next slot, and a stop cancels a waiting retry', async () => {
    let calls = 0;
    // Hourly; it is 00:59:59.9 and the retry would come after 01:00.
    const s = scheduler({
      schedule: '0 * * * *',
      clock: { now: () => new Date(Date.UTC(2031, 0, 1, 0, 59, 59, 900)) },
      enqueue: async () => {
        calls++;
        throw outage();
      },
      options: { retryBaseMs: 1000, catchUpEveryMs: 3_600_000 },
    });
    s.start();
    started.push(s);
    expect(await within(s.tickWithRetry('j', new Date(Date.UTC(2031, 0, 1))), 500, 'giving up')).to.equal(false);
    expect(calls).to.equal(1);

    let failed!: () => void;
    const firstFailure = new Promise<void>((r) => (failed = r));
    const t = scheduler({
      enqueue: async () => {
        failed();
        throw outage();
      },
      options: { retryBaseMs: 60_000, catchUpEveryMs: 3_600_000 },
    });
    t.start();
    started.push(t);
    const pending = t.tickWithRetry('j', new Date());
    await firstFailure;
    t.stop();
    expect(await within(pending, 500, 'stop cancelling the retry')).to.equal(false);
  });

  it('runs the catch-up check periodically while up: a slot lost to an outage is queued once the database is back', async () => {
    const calls: Call[] = [];
    let queued!: () => void;
    const caughtUp = new Promise<void>((r) => (queued = r));
    const s = scheduler({
      schedule: '0 * * * *',
      clock: { now: () => new Date(Date.UTC(2031, 0, 1, 10, 20)) },
      // The 10:00 slot was lost: the last run started at 09:00.
      lastStarts: async () => new Map([['j', new Date(Date.UTC(2031, 0, 1, 9, 0, 1))]]),
      enqueue: async (job, slot, trigger) => {
        calls.push({ job, slot: slot.toISOString(), trigger });
        if (calls.length === 1) throw outage();
        queued();
        return true;
      },
      options: { retryBaseMs: 3_600_000, catchUpEveryMs: 10 },
    });
    s.start();
    started.push(s);
    await within(caughtUp, 2000, 'the periodic catch-up');
    expect(calls.map((c) => [c.slot, c.trigger])).to.deep.equal([
      ['2031-01-01T10:00:00.000Z', 'catch-up'],
      ['2031-01-01T10:00:00.000Z', 'catch-up'],
    ]);
  });

  it("node-cron's execution:missed, once per missed slot (a VM paused 10 h), queues only the latest missed slot", async () => {
    const calls: Call[] = [];
    let enqueued!: () => void;
    const first = new Promise<void>((r) => (enqueued = r));
    const s = scheduler({
      schedule: '0 * * * *',
      enqueue: async (job, slot, trigger) => {
        calls.push({ job, slot: slot.toISOString(), trigger });
        enqueued();
        return true;
      },
      options: { catchUpEveryMs: 3_600_000 },
    });
    s.start();
    started.push(s);
    // As node-cron reports them after the pause: ten in one go, oldest first.
    const slots = Array.from({ length: 10 }, (_, i) => new Date(Date.UTC(2031, 0, 1, i)));
    for (const slot of slots) s.missed('j', slot);
    await within(first, 2000, 'the missed slot queued');
    // A later turn of the event loop: everything reported was handled (nothing more queued).
    await new Promise((r) => setImmediate(r));
    expect(calls).to.deep.equal([{ job: 'j', slot: '2031-01-01T09:00:00.000Z', trigger: 'scheduled' }]);
  });
});
