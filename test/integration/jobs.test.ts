import { expect } from 'chai';
import pg from 'pg';
import { cli } from '../support/cli.js';
import { testEnv } from '../support/config.js';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { createOrg, createUser } from '../support/factories.js';
import { expectProblem } from '../support/http.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/*
 * The jobs kit inside the whole app: the modules' real jobs (partitions, retention, backup …),
 * two apps on one database, the admin endpoints through the shared client (answers validated
 * against the OpenAPI document), /metrics, the CLI and the configuration keys.
 */

interface Run {
  id: string;
  job: string;
  trigger: string;
  slot: string | null;
  outcome: string | null;
  error: string | null;
}
interface JobView {
  name: string;
  schedule: string | null;
  enabled: boolean;
  running: boolean;
  last_run: Run | null;
  next_run: string | null;
}

const LOCK = "select pg_advisory_lock(hashtextextended('sentinel:job:' || $1, 0))";

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Holds a job's advisory lock from outside, as a run in another process would. */
async function holdLock(url: string, job: string): Promise<() => Promise<void>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(LOCK, [job]);
  return () => c.end();
}

describe('jobs in the app: two daemons, admin API, metrics', function () {
  this.timeout(60_000);
  let url: string;
  let a: TestApp;
  let b: TestApp;
  let root: string;
  let member: string;
  // A schedule override through the environment, as an operator might set it.
  // (The other jobs disabled, as test/support/config.ts does for every test app: no wall-clock ticks.)
  const env = {
    SENTINEL_JOBS: JSON.stringify({ partitions: { schedule: '7 * * * *' }, retention: {}, backup: { enabled: false }, 'restore-drill': { enabled: false }, 'instance-checks': { enabled: false }, 'daily-report': { enabled: false }, analyze: { enabled: false }, compaction: { enabled: false } }),
  };

  before(async () => {
    url = await cloneDatabase();
    a = await startTestApp(url, env);
    b = await startTestApp(url, env);
    const s = a.app.services;
    const su = await createUser(s, { superadmin: true });
    root = (await a.api.login(su.email, su.password)).access_token;
    const org = await createOrg(s);
    const owner = await createUser(s, { org: org.slug, role: 'owner' });
    member = (await a.api.login(owner.email, owner.password)).access_token;
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    if (url) await dropDatabase(url);
  });

  it('two app instances on one database run a scheduled slot once', async () => {
    const slot = new Date(Date.UTC(2031, 5, 1, 12, 7));
    const queued = await Promise.all([a.app.jobsKit.scheduler.tick('partitions', slot), b.app.jobsKit.scheduler.tick('partitions', slot)]);
    expect(queued.filter(Boolean)).to.have.length(1);
    const runsOfSlot = () => query<{ outcome: string | null; instance: string }>(url, 'select outcome, instance from job_runs where job = $1 and slot = $2', ['partitions', slot]);
    await until('the slot ran', async () => (await runsOfSlot()).some((r) => r.outcome !== null));
    await new Promise((r) => setTimeout(r, 300));
    expect((await runsOfSlot()).map((r) => r.outcome)).to.deep.equal(['ok']);
  });

  it('GET /admin/jobs: every declared job with its effective schedule, enabled, last and next run (superadmins)', async () => {
    const res = await a.api.get<{ items: JobView[] }>('/admin/jobs', root);
    expect(res.status, res.text).to.equal(200);
    const byName = new Map(res.body.items.map((j) => [j.name, j]));
    expect([...byName.keys()]).to.include.members(['partitions', 'retention', 'backup', 'restore-drill', 'daily-report']);
    const partitions = byName.get('partitions')!;
    expect(partitions.schedule, 'jobs.partitions.schedule').to.equal('7 * * * *');
    expect(partitions.next_run).to.match(/^\d{4}-\d\d-\d\dT\d\d:07:00\.000Z$/);
    expect(partitions.last_run?.outcome).to.equal('ok');
    expect(byName.get('retention')!.schedule).to.equal('15 * * * *');
    expect(byName.get('backup')!.schedule).to.equal('0 */6 * * *');
    expect(byName.get('daily-report')!.schedule).to.equal('10 0 * * *');
    const drill = byName.get('restore-drill')!;
    expect([drill.enabled, drill.next_run]).to.deep.equal([false, null]);

    expectProblem(await a.api.get('/admin/jobs', member), 403, 'an org owner');
    expectProblem(await a.api.get('/admin/jobs', null), 401, 'no credentials');
  });

  it('POST /admin/jobs/{name}/run: 202 with the run id, recorded as manual; 404 unknown; 409 while running; 403/401 for others', async () => {
    const res = await a.api.post<{ id: string }>('/admin/jobs/partitions/run', root);
    expect(res.status, res.text).to.equal(202);
    await until('the manual run ended', async () => {
      const [row] = await query<{ outcome: string | null }>(url, 'select outcome from job_runs where id = $1', [res.body.id]);
      return row?.outcome !== null && row?.outcome !== undefined;
    });
    const list = await a.api.get<{ items: JobView[] }>('/admin/jobs', root);
    const last = list.body.items.find((j) => j.name === 'partitions')!.last_run!;
    expect([last.id, last.trigger, last.outcome]).to.deep.equal([res.body.id, 'manual', 'ok']);
    const [audit] = await query<{ action: string; target_id: string }>(url, "select action, target_id from audit_log where action = 'job.run'");
    expect(audit).to.deep.equal({ action: 'job.run', target_id: 'partitions' });

    expectProblem(await a.api.post('/admin/jobs/vacuum/run', root), 404, 'unknown job');
    expectProblem(await a.api.post('/admin/jobs/partitions/run', member), 403, 'an org owner');
    expectProblem(await a.api.post('/admin/jobs/partitions/run', null), 401, 'no credentials');

    // Running elsewhere (another process holds its lock): refused here, and shown as running.
    const release = await holdLock(url, 'retention');
    try {
      expectProblem(await a.api.post('/admin/jobs/retention/run', root), 409, 'running');
      const running = await a.api.get<{ items: JobView[] }>('/admin/jobs', root);
      expect(running.body.items.find((j) => j.name === 'retention')!.running).to.equal(true);
    } finally {
      await release();
    }
    expect((await a.api.post('/admin/jobs/retention/run', root)).status).to.equal(202);
  });

  it('/metrics: per-job last success, duration and failures, and queue tasks by state', async () => {
    const res = await a.api.raw('GET', '/metrics');
    expect(res.status).to.equal(200);
    const value = (series: string) => {
      const line = res.text.split('\n').find((l) => l.startsWith(`${series} `));
      expect(line, `${series} in /metrics`).to.not.equal(undefined);
      return Number(line!.split(' ')[1]);
    };
    const lastSuccess = value('sentinel_job_last_success_timestamp_seconds{job="partitions"}');
    expect(lastSuccess).to.be.within(Date.now() / 1000 - 120, Date.now() / 1000 + 1);
    expect(value('sentinel_job_last_success_timestamp_seconds{job="backup"}'), 'never succeeded').to.equal(0);
    expect(value('sentinel_job_duration_seconds{job="partitions"}')).to.be.at.least(0);
    expect(value('sentinel_job_failures_total{job="partitions"}')).to.equal(0);
    expect(value('sentinel_queue_tasks{state="done"}')).to.be.at.least(1);
    expect(value('sentinel_queue_tasks{state="failed"}')).to.equal(0);
    expect(res.text).to.contain('# TYPE sentinel_job_failures_total counter');
  });

  it('after the runs, no advisory lock is left in pg_locks', async () => {
    await until('runs ended', async () => (await query(url, 'select 1 from job_runs where finished_at is null')).length === 0);
    const [locks] = await query<{ n: number }>(url, "select count(*)::int as n from pg_locks where locktype = 'advisory' and database = (select oid from pg_database where datname = current_database())");
    expect(locks.n).to.equal(0);
  });
});

describe('CLI: jobs list | run | history, and the jobs config keys', function () {
  this.timeout(60_000);
  let url: string;
  let env: Record<string, string>;
  before(async () => {
    url = await cloneDatabase();
    env = { ...testEnv(url), SENTINEL_JOBS: '{}' };
  });
  after(async () => {
    if (url) await dropDatabase(url);
  });

  it('jobs run <name> runs it through the runner (lock, job_runs row with trigger manual); history lists it', async () => {
    const r = await cli(['jobs', 'run', 'partitions', '--json'], env);
    expect(r.code, r.stderr).to.equal(0);
    expect(JSON.parse(r.stdout)).to.have.property('created');
    const h = await cli(['jobs', 'history', '--job', 'partitions', '--json'], env);
    expect(h.code, h.stderr).to.equal(0);
    const runs = JSON.parse(h.stdout) as Run[];
    expect(runs.map((x) => [x.job, x.trigger, x.outcome])).to.deep.equal([['partitions', 'manual', 'ok']]);
    const table = await cli(['jobs', 'history'], env);
    expect(table.stdout.split('\n')[0]).to.match(/^ID +JOB +TRIGGER +STARTED +DURATION +OUTCOME +ERROR$/);
    expect(table.stdout).to.match(/\n\d+ +partitions +manual +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ +\d+\.\ds +ok/);
  });

  it('jobs run exits 1 when the run fails (recorded failed), 4 while the job runs elsewhere, 2 for an unknown job', async () => {
    const [{ n: before }] = await query<{ n: number }>(url, "select count(*)::int as n from job_runs where job = 'partitions'");
    // The partitions the job would create cannot be: their parent table is away.
    for (const { name } of await query<{ name: string }>(url, "select inhrelid::regclass::text as name from pg_inherits where inhparent = 'points'::regclass")) await query(url, `drop table ${name}`);
    await query(url, 'alter table points rename to points_away');
    let r;
    try {
      r = await cli(['jobs', 'run', 'partitions'], env);
    } finally {
      await query(url, 'alter table points_away rename to points');
    }
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/^error: job 'partitions' failed \(run \d+\): .*points/);
    const [last] = await query<{ outcome: string; error: string }>(url, "select outcome, error from job_runs where job = 'partitions' order by id desc limit 1");
    expect(last.outcome).to.equal('failed');
    expect(last.error).to.contain('points');

    const release = await holdLock(url, 'partitions');
    try {
      const busy = await cli(['jobs', 'run', 'partitions'], env);
      expect([busy.code, busy.stderr]).to.deep.equal([4, "error: job 'partitions' is running; try again when it has finished\n"]);
    } finally {
      await release();
    }
    const [{ n: after }] = await query<{ n: number }>(url, "select count(*)::int as n from job_runs where job = 'partitions'");
    expect(after, 'the refused run is not recorded').to.equal(before + 1);

    const unknown = await cli(['jobs', 'run', 'vacuum'], env);
    expect(unknown.code).to.equal(2);
    expect(unknown.stderr).to.match(/^error: unknown job 'vacuum'; use one of: .*partitions/);
    expect((await cli(['jobs', 'history', '--job', 'vacuum'], env)).code).to.equal(2);
  });

  it('jobs list: schedule from the config, enabled, last run, next run', async () => {
    const overridden = { ...env, SENTINEL_JOBS: JSON.stringify({ backup: { schedule: '30 1 * * *', enabled: false } }) };
    const r = await cli(['jobs', 'list', '--json'], overridden);
    expect(r.code, r.stderr).to.equal(0);
    const jobs = JSON.parse(r.stdout) as (JobView & { module: string })[];
    const byName = new Map(jobs.map((j) => [j.name, j]));
    expect(byName.get('backup')).to.include({ schedule: '30 1 * * *', enabled: false, next_run: null, module: 'backups' });
    expect(byName.get('retention')).to.include({ schedule: '15 * * * *', enabled: true });
    expect(byName.get('partitions')!.last_run?.outcome).to.equal('failed');
    const table = await cli(['jobs', 'list'], overridden);
    expect(table.stdout.split('\n')[0]).to.match(/^NAME +SCHEDULE +ENABLED +LAST RUN +NEXT RUN +DESCRIPTION$/);
    expect(table.stdout).to.match(/\nbackup +30 1 \* \* \* +no +- +- +a consistent backup/);
    expect(table.stdout).to.match(/\npartitions +5 \* \* \* \* +yes +\S+ failed +\d{4}-\d\d-\d\dT\d\d:05:00Z +create the day-partitions/);
  });

  it('an invalid cron expression is a configuration error naming jobs.<name>.schedule; an unknown job name too', async () => {
    const bad = await cli(['config', 'check'], { ...env, SENTINEL_JOBS: JSON.stringify({ backup: { schedule: '61 * * * *' } }) });
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.contain('jobs.backup.schedule: "61 * * * *" (from env SENTINEL_JOBS): not a valid cron expression');
    const unknown = await cli(['jobs', 'list'], { ...env, SENTINEL_JOBS: JSON.stringify({ nope: { enabled: false } }) });
    expect(unknown.code).to.equal(2);
    expect(unknown.stderr).to.contain('jobs.nope: unknown job');
    const check = await cli(['config', 'check'], { ...env, SENTINEL_JOBS: JSON.stringify({ nope: { enabled: false } }) });
    expect([check.code, check.stderr]).to.satisfy(([code, err]: [number, string]) => code === 2 && err.includes('jobs.nope: unknown job (from env SENTINEL_JOBS)'));
    const badKey = await cli(['config', 'check'], { ...env, SENTINEL_JOBS: JSON.stringify({ backup: { every: '1h' } }) });
    expect(badKey.code).to.equal(2);
    expect(badKey.stderr).to.contain('jobs.backup.every: unknown key');
  });
});
