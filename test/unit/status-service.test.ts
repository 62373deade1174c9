import { expect } from 'chai';
import type { Actor } from '../../src/core/actor.js';
import type { JobStatus } from '../../src/core/jobs.js';
import { DB_SECTIONS_MS, StatusService } from '../../src/features/status/status-service.js';
import type { StatusRepository } from '../../src/features/status/status-repository.js';
import { healthyStatus } from './tui-fixtures.js';

/*
 * The status answer's cost per request: the database-backed sections are assembled at most once
 * per DB_SECTIONS_MS however many callers ask, while the in-memory figures (HTTP, ingest, pools)
 * are read on every request.
 */
describe('StatusService: database-backed sections cached, in-memory figures live', () => {
  const root: Actor = { kind: 'user', userId: 'u1', superadmin: true };

  function service() {
    let now = Date.parse('2026-11-30T10:00:00Z');
    const calls = { server: 0, migrations: 0, alerts: 0, jobs: 0, backups: 0, heartbeats: 0, http: 0, ingest: 0, pools: 0 };
    const fixture = healthyStatus();
    const repo = {
      serverFacts: async () => (calls.server++, { server_version: '17.5', size_bytes: 1 }),
      migrations: async () => (calls.migrations++, { current: null, pending: 0 }),
    } as unknown as StatusRepository;
    const svc = new StatusService(
      repo,
      {
        alerts: { alertsStatus: async () => (calls.alerts++, fixture.alerts) },
        jobs: { list: async () => (calls.jobs++, [] as JobStatus[]) },
        backups: { backupsStatus: async () => (calls.backups++, fixture.backups) },
        heartbeats: { heartbeatsStatus: async () => (calls.heartbeats++, { late: calls.heartbeats, items: [] }) },
        http: { httpStatus: () => (calls.http++, { ...fixture.http, in_flight: calls.http }) },
        ingest: { ingestStatus: () => (calls.ingest++, fixture.ingest) },
        pools: { stats: () => (calls.pools++, [{ name: 'sentinel', max: 10, in_use: calls.pools, idle: 0, waiting: 0 }]) },
      },
      { version: '1.0.0', embedded: false, pid: 1, hostname: 'h', startedAtMs: now - 5000, now: () => now },
    );
    return { svc, calls, advance: (ms: number) => (now += ms) };
  }

  it('ten requests within the period: one read of each database section, every in-memory figure read ten times', async () => {
    const { svc, calls, advance } = service();
    const answers = await Promise.all(Array.from({ length: 5 }, () => svc.status(root)));
    for (let i = 0; i < 5; i++) {
      advance((DB_SECTIONS_MS - 1) / 5);
      answers.push(await svc.status(root));
    }
    expect(calls).to.deep.equal({ server: 1, migrations: 1, alerts: 1, jobs: 1, backups: 1, heartbeats: 1, http: 10, ingest: 10, pools: 10 });
    // Live figures differ per answer; the cached section is the same one.
    expect(answers.map((a) => a.http.in_flight)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(answers.map((a) => a.database.pools[0].in_use)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(new Set(answers.map((a) => a.heartbeats.late))).to.deep.equal(new Set([1]));
  });

  it('once the period has passed, the next request reads the database sections again', async () => {
    const { svc, calls, advance } = service();
    expect((await svc.status(root)).heartbeats.late).to.equal(1);
    advance(DB_SECTIONS_MS);
    expect((await svc.status(root)).heartbeats.late).to.equal(2);
    expect([calls.alerts, calls.jobs, calls.backups, calls.heartbeats]).to.deep.equal([2, 2, 2, 2]);
    // The server facts and migrations keep their own, longer periods.
    expect([calls.server, calls.migrations]).to.deep.equal([1, 1]);
  });

  it('refuses a non-superadmin before reading anything', async () => {
    const { svc, calls } = service();
    let error: unknown;
    await svc.status({ kind: 'user', userId: 'u2', superadmin: false }).catch((e: unknown) => (error = e));
    expect(error).to.be.instanceOf(Error);
    expect(Object.values(calls).every((n) => n === 0)).to.equal(true);
  });
});
