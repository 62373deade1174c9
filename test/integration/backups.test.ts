import { readdirSync, readFileSync, statSync, truncateSync, unlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'chai';
import pg from 'pg';
import { Value } from '@sinclair/typebox/value';
import { SYSTEM_ACTOR } from '../../src/core/actor.js';
import { JOB_LOCK_SQL } from '../../src/jobs/job-runner.js';
import { PruneReportSchema, RestoreReportSchema, type BackupSummary, type PruneReport, type VerifyReport } from '../../src/features/backups/backups-schemas.js';
import { cli } from '../support/cli.js';
import { testEnv } from '../support/config.js';
import { cloneDatabase, dropDatabase, emptyDatabase, holdingLock, query } from '../support/db.js';
import { createApiKey, createOrg, createUser } from '../support/factories.js';
import { tableChecksums } from '../support/table-checksums.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { scratchDir } from '../support/scratch.js';

const NOW = Date.now();

describe('backups', function () {
  this.timeout(120_000);
  let url: string;
  let dir: string;
  let t: TestApp;
  let root: string;
  let rootUser: { email: string; password: string };
  let ingestKey: string;
  const scratch: string[] = [];
  const env = (extra: Record<string, string> = {}) => testEnv(url, { SENTINEL_BACKUPS_DIR: dir, SENTINEL_LOG_LEVEL: 'warn', ...extra });
  const fresh = async () => {
    const u = await emptyDatabase();
    scratch.push(u);
    return u;
  };

  before(async () => {
    url = await cloneDatabase();
    dir = scratchDir('sentinel-backups-');
    t = await startTestApp(url, { SENTINEL_BACKUPS_DIR: dir });
    const s = t.app.services;
    const admin = await createUser(s, { superadmin: true });
    rootUser = admin;
    root = (await t.api.login(admin.email, admin.password)).access_token;
    const org = await createOrg(s);
    await createUser(s, { org: org.slug, role: 'editor' });
    ingestKey = (await createApiKey(s, org.slug)).secret;
    // Telemetry through the API, so the day-partitions, series, usage and idempotency rows exist.
    for (let day = 0; day < 3; day++) {
      const ts = NOW - day * 86_400_000;
      const res = await t.api.post('/telemetry', ingestKey, {
        metrics: Array.from({ length: 20 }, (_, i) => ({ name: 'cpu', value: i + 0.25, ts: ts - i * 1000, labels: { host: `h${i % 4}`, note: "tab\there \\ 'q' \u00e9" } })),
        logs: [{ ts, level: 'error', message: 'line one\nline two', attributes: { k: 'v' } }],
        events: [{ ts, type: 'deploy', title: 'v1', text: 'multi\nline', tags: ['a', 'b'] }],
      }, { 'idempotency-key': `k-${day}` });
      expect(res.status, res.text).to.equal(202);
    }
  });

  after(async () => {
    await t?.stop();
    for (const u of scratch) await dropDatabase(u);
    await dropDatabase(url);
  });

  it('round trip: created over HTTP, listed, verified; restored into a fresh empty database every table has equal rows and content', async () => {
    const created = await t.api.post<BackupSummary>('/admin/backups', root);
    expect(created.status, created.text).to.equal(201);
    const id = created.body.id;
    expect(created.body.status).to.equal('complete');
    expect(statSync(join(dir, id)).mode & 0o777).to.equal(0o700);
    for (const f of readdirSync(join(dir, id))) expect(statSync(join(dir, id, f)).mode & 0o777, f).to.equal(0o600);
    const manifest = JSON.parse(readFileSync(join(dir, id, 'manifest.json'), 'utf8'));
    expect(manifest.schema_version).to.equal((await query<{ n: string }>(url, 'select max(name) as n from knex_migrations'))[0].n);
    expect(JSON.stringify(manifest)).not.to.contain(t.app.config.auth.encryption_key);

    const listed = await t.api.get<{ items: BackupSummary[] }>('/admin/backups', root);
    expect(listed.status).to.equal(200);
    expect(listed.body.items.map((b) => b.id)).to.include(id);

    const verified = await t.api.post<VerifyReport>(`/admin/backups/${id}/verify`, root);
    expect(verified.status, verified.text).to.equal(200);
    expect(verified.body.ok, verified.text).to.equal(true);
    // The scratch database is gone afterwards.
    expect(await query(url, "select 1 from pg_database where datname like 'sentinel_verify_%'")).to.have.length(0);

    const source = await tableChecksums(url);
    for (const table of ['organizations', 'users', 'memberships', 'api_keys', 'sessions', 'audit_log', 'series', 'points', 'logs', 'events', 'usage_daily', 'ingest_idempotency'])
      expect(source.get(table)?.rows, `rows in ${table}`).to.be.greaterThan(0);

    const target = await fresh();
    const r = await cli(['backup', 'restore', id, '--yes', '--database-url', target], env());
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.contain(`restored backup ${id}`);
    // Another data_dir, so another generated encryption key: the operator is told.
    expect(r.stderr).to.contain('2FA secrets will not decrypt');
    // The backup's own job run (POST /admin/backups is a manual run of the backup job) was under way
    // in its snapshot: the restore closes it as skipped (see the in-flight test below).
    const restored = await tableChecksums(target);
    expect(restored.get('job_runs')).not.to.deep.equal(source.get('job_runs'));
    restored.delete('job_runs');
    source.delete('job_runs');
    expect(restored).to.deep.equal(source);
    // Sequences carry on after the restored rows.
    const [{ max }] = await query<{ max: number }>(target, 'select max(id)::int as max from series');
    const [{ next }] = await query<{ next: number }>(target, "select nextval(pg_get_serial_sequence('series', 'id'))::int as next");
    expect(next).to.be.greaterThan(max);
  });

  it('restore without --yes prints the plan and exits 2; a non-empty target (the daemon\'s own database) is refused with 4', async () => {
    const b = await t.app.services.backups.create(SYSTEM_ACTOR);
    const dry = await cli(['backup', 'restore', b.id], env());
    expect(dry.code).to.equal(2);
    expect(dry.stdout).to.contain(`would restore backup ${b.id}`);
    const own = await cli(['backup', 'restore', b.id, '--yes'], env());
    expect(own.code, own.stderr).to.equal(4);
    expect(own.stderr).to.contain('not empty');
    const missing = await cli(['backup', 'verify', '20000101T000000000Z-000000'], env());
    expect(missing.code).to.equal(3);
  });

  it('a backup taken while ingest runs restores one consistent snapshot', async () => {
    const PER = 40;
    const acked = new Set<number>();
    let stop = false;
    let n = 0;
    const writer = async () => {
      while (!stop) {
        const i = n++;
        const res = await t.api.post('/telemetry', ingestKey, {
          metrics: Array.from({ length: PER }, (_, k) => ({ name: 'load', value: k, ts: NOW - k * 10, labels: { req: String(i) } })),
        });
        expect(res.status, res.text).to.equal(202);
        acked.add(i);
      }
    };
    const writers = [writer(), writer(), writer()];
    await new Promise((r) => setTimeout(r, 300));
    const ackedBefore = new Set(acked);
    const b = await t.app.services.backups.create(SYSTEM_ACTOR);
    await new Promise((r) => setTimeout(r, 200));
    stop = true;
    await Promise.all(writers);
    expect(ackedBefore.size).to.be.greaterThan(0);

    const target = await fresh();
    const r = await cli(['backup', 'restore', b.id, '--yes', '--database-url', target], env());
    expect(r.code, r.stderr).to.equal(0);
    // Every request is all in or all out (each was one commit), everything acknowledged before
    // the backup started is in, no point lost its series, and the usage counters (written in the
    // same commits) count exactly the points restored.
    const perReq = await query<{ req: string; n: number }>(target, "select s.labels->>'req' as req, count(p.*)::int as n from series s join points p on p.series_id = s.id and p.org_id = s.org_id where s.name = 'load' group by 1");
    for (const row of perReq) expect(row.n, `request ${row.req}`).to.equal(PER);
    const present = new Set(perReq.map((x) => Number(x.req)));
    for (const i of ackedBefore) expect(present.has(i), `request ${i} acknowledged before the backup`).to.equal(true);
    const [{ orphans }] = await query<{ orphans: number }>(target, 'select count(*)::int as orphans from points p where not exists (select 1 from series s where s.id = p.series_id)');
    expect(orphans).to.equal(0);
    const [{ points, usage }] = await query<{ points: number; usage: number }>(target, 'select (select count(*)::int from points) as points, (select sum(points)::int from usage_daily) as usage');
    expect(usage).to.equal(points);
  });

  describe('damage is detected by verify and restore', () => {
    const cases: [string, (path: string, manifest: { tables: { file: string; bytes: number }[] }) => void, RegExp][] = [
      ['a truncated file', (p, m) => truncateSync(join(p, 'points.copy.gz'), m.tables.find((x) => x.file === 'points.copy.gz')!.bytes - 10), /points\.copy\.gz has \d+ bytes/],
      [
        'one flipped byte',
        (p) => {
          const f = join(p, 'users.copy.gz');
          const buf = readFileSync(f);
          buf[Math.floor(buf.length / 2)] ^= 0x01;
          writeFileSync(f, buf);
        },
        /users\.copy\.gz checksum mismatch/,
      ],
      ['a missing file', (p) => unlinkSync(join(p, 'series.copy.gz')), /series\.copy\.gz is missing/],
      [
        'a manifest from a newer schema',
        (p) => {
          const f = join(p, 'manifest.json');
          writeFileSync(f, JSON.stringify({ ...JSON.parse(readFileSync(f, 'utf8')), schema_version: '29991231000000_from_the_future' }));
        },
        /newer schema \(29991231000000_from_the_future\)/,
      ],
      [
        'a manifest whose partition bound smuggles in SQL',
        (p) => {
          const f = join(p, 'manifest.json');
          const m = JSON.parse(readFileSync(f, 'utf8')) as { tables: { name: string; partitions: { bound: string }[] }[] };
          const points = m.tables.find((x) => x.name === 'points')!;
          points.partitions[0].bound = `${points.partitions[0].bound}; drop table users`;
          writeFileSync(f, JSON.stringify(m));
        },
        /unexpected partition bound/,
      ],
      [
        'a manifest whose file entry leads out of the backup (path traversal)',
        (p) => {
          const f = join(p, 'manifest.json');
          const m = JSON.parse(readFileSync(f, 'utf8')) as { tables: { name: string; file: string }[] };
          m.tables.find((x) => x.name === 'users')!.file = '../../etc/passwd';
          writeFileSync(f, JSON.stringify(m));
        },
        /users: file "\.\.\/\.\.\/etc\/passwd" is not "users\.copy\.gz"/,
      ],
    ];
    for (const [what, damage, message] of cases) {
      it(what, async () => {
        const b = await t.app.services.backups.create(SYSTEM_ACTOR);
        const path = join(dir, b.id);
        damage(path, JSON.parse(readFileSync(join(path, 'manifest.json'), 'utf8')));
        const v = await cli(['backup', 'verify', b.id], env());
        expect(v.code, v.stderr).to.equal(1);
        expect(v.stderr).to.match(message);
        const target = await fresh();
        const r = await cli(['backup', 'restore', b.id, '--yes', '--database-url', target], env());
        expect(r.code, r.stdout).to.be.oneOf([1, 4]);
        expect(r.stderr).to.match(message);
        // Nothing was loaded.
        const [{ n }] = await query<{ n: number }>(target, "select count(*)::int as n from pg_class where relname = 'organizations'");
        expect(n).to.equal(0);
      });
    }
  });

  it('failure is loud: an unwritable backups.dir fails the CLI (exit 1) and the HTTP call, counts the failure, lists nothing as good', async () => {
    const base = scratchDir('sentinel-bad-');
    // Tests run as root, which ignores permissions: a directory below a regular file cannot be made by anyone.
    writeFileSync(join(base, 'file'), 'x');
    const bad = join(base, 'file', 'backups');
    const r = await cli(['backup', 'create'], { ...env(), SENTINEL_BACKUPS_DIR: bad });
    expect(r.code).to.equal(1);
    expect(r.stderr).to.contain('backup failed');
    const other = await startTestApp(url, { SENTINEL_BACKUPS_DIR: bad });
    try {
      // Its own data_dir, so its own JWT key: log in there.
      const token = (await other.api.login(rootUser.email, rootUser.password)).access_token;
      const res = await other.api.post('/admin/backups', token);
      expect(res.status).to.equal(500);
      const metrics = await other.api.raw('GET', '/metrics');
      expect(metrics.text).to.match(/^sentinel_backup_failures_total 1$/m);
      expect(metrics.text).to.match(/^sentinel_backup_last_success_timestamp_seconds 0$/m);
      expect(metrics.text).to.match(/^sentinel_backup_age_seconds \+Inf$/m);
    } finally {
      await other.stop();
    }
  });

  it('failure is loud: a filesystem that fills up mid-backup leaves no backup and no temporary directory', async function () {
    const mnt = scratchDir('sentinel-full-');
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt], { stdio: 'pipe' });
    } catch (err) {
      console.warn(`    (cannot mount a tmpfs to fill up: ${(err as Error).message.split('\n')[0]}; the unwritable-directory test above covers the failure path)`);
      this.skip();
    }
    try {
      // Room for the directory and a few small files, not for the points.
      execFileSync('dd', ['if=/dev/zero', `of=${join(mnt, 'filler')}`, 'bs=4k', 'count=62'], { stdio: 'pipe' });
      const res = await t.api.post('/telemetry', ingestKey, {
        metrics: Array.from({ length: 5000 }, (_, i) => ({ name: 'fill', value: Math.random(), ts: NOW - i, labels: { r: String(Math.random()) } })),
      });
      expect(res.status, res.text).to.equal(202);
      const r = await cli(['backup', 'create'], { ...env(), SENTINEL_BACKUPS_DIR: join(mnt, 'backups') });
      expect(r.code).to.equal(1);
      expect(r.stderr).to.match(/backup failed: .*(ENOSPC|no space)/i);
      expect(readdirSync(join(mnt, 'backups'))).to.deep.equal([]);
      const list = await cli(['backup', 'list', '--json'], { ...env(), SENTINEL_BACKUPS_DIR: join(mnt, 'backups') });
      expect(JSON.parse(list.stdout)).to.deep.equal([]);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });

  it('/metrics shows the newest backup\'s time, size and age', async () => {
    const b = await t.app.services.backups.create(SYSTEM_ACTOR);
    const res = await t.api.raw('GET', '/metrics');
    const at = Number(/^sentinel_backup_last_success_timestamp_seconds (\S+)$/m.exec(res.text)?.[1]);
    expect(at * 1000).to.be.closeTo(Date.parse((await t.app.services.backups.list(SYSTEM_ACTOR))[0].finished_at!), 1);
    expect(Number(/^sentinel_backup_size_bytes (\S+)$/m.exec(res.text)?.[1])).to.equal(b.bytes);
    expect(Number(/^sentinel_backup_age_seconds (\S+)$/m.exec(res.text)?.[1])).to.be.within(0, 60);
  });

  it('the backup and restore-drill jobs: a backup then a good drill; a drill on a damaged newest backup fails and is counted', async () => {
    const job = (name: string) => t.app.jobs.get(name)!;
    const made = (await job('backup').run(new AbortController().signal)) as BackupSummary;
    expect(made.status).to.equal('complete');
    const drilled = (await job('restore-drill').run(new AbortController().signal)) as VerifyReport;
    expect(drilled).to.include({ id: made.id, ok: true });
    unlinkSync(join(dir, made.id, 'logs.copy.gz'));
    let failed: unknown;
    await job('restore-drill')
      .run(new AbortController().signal)
      .catch((err: unknown) => (failed = err));
    expect((failed as Error)?.message).to.match(new RegExp(`restore drill: backup ${made.id} failed verification: logs\\.copy\\.gz is missing`));
    const metrics = await t.api.raw('GET', '/metrics');
    expect(metrics.text).to.match(/^sentinel_restore_drill_failures_total 1$/m);
    // The same through the CLI: a failed drill exits non-zero.
    const r = await cli(['jobs', 'run', 'restore-drill'], env());
    expect(r.code).to.equal(1);
  });

  it('prune keeps backups.keep newest complete backups, never the newest good one, and removes crashed writes', async () => {
    const pdir = scratchDir('sentinel-prune-');
    const penv = { ...env(), SENTINEL_BACKUPS_DIR: pdir, SENTINEL_BACKUPS_KEEP: '2' };
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      // A manual backup is a run of the backup job, which prunes after it: keep all three meanwhile.
      const r = await cli(['backup', 'create', '--json'], { ...penv, SENTINEL_BACKUPS_KEEP: '3' });
      expect(r.code, r.stderr).to.equal(0);
      ids.push((JSON.parse(r.stdout) as BackupSummary).id);
    }
    mkdirSync(join(pdir, '.tmp-20200101T000000000Z-abcdef'));
    // A scratch database of a verify killed a day ago, and one of a verify running now.
    const dayAgo = Math.floor(Date.now() / 1000) - 86_400;
    const stale = `sentinel_verify_${dayAgo}_${Math.random().toString(16).slice(2, 10)}`;
    const current = `sentinel_verify_${Math.floor(Date.now() / 1000)}_${Math.random().toString(16).slice(2, 10)}`;
    await query(url, `create database ${stale}`);
    await query(url, `create database ${current}`);
    // A damaged backup newer than every good one: kept for the operator, never counted as good.
    const damagedId = '29990101T000000000Z-dddddd';
    mkdirSync(join(pdir, damagedId));
    const r = await cli(['backup', 'prune', '--json'], penv);
    expect(r.code, r.stderr).to.equal(0);
    const report = JSON.parse(r.stdout) as unknown as PruneReport;
    expect([...Value.Errors(PruneReportSchema, report)].map((e) => `${e.path}: ${e.message}`), 'prune --json matches its schema').to.deep.equal([]);
    expect(report.kept).to.deep.equal([ids[2], ids[1]]);
    expect(report.removed).to.deep.equal([ids[0]]);
    expect(report.temporaries_removed).to.deep.equal(['.tmp-20200101T000000000Z-abcdef']);
    expect(report.scratch_databases_dropped).to.deep.equal([stale]);
    expect((await query<{ n: string }>(url, "select datname as n from pg_database where datname like 'sentinel_verify_%'")).map((r) => r.n)).to.deep.equal([current]);
    await query(url, `drop database ${current}`);
    expect(readdirSync(pdir).sort()).to.deep.equal([ids[1], ids[2], damagedId].sort());
    const list = await cli(['backup', 'list', '--json'], penv);
    expect((JSON.parse(list.stdout) as BackupSummary[]).map((b) => [b.id, b.status])).to.deep.equal([
      [damagedId, 'damaged'],
      [ids[2], 'complete'],
      [ids[1], 'complete'],
    ]);
  });

  it('restore settles the in-flight work the backup caught: jobs.run tasks deleted, running tasks pending again, unfinished runs closed as skipped', async () => {
    // Not due and leased far ahead, so the test daemon's workers leave them alone meanwhile.
    const later = "now() + interval '1 day'";
    await query(url, `insert into queue_tasks (task, payload, state, locked_by, lease_until, next_attempt_at, dedupe_key) values
      ('jobs.run', '{"job":"backup"}', 'running', 'elsewhere', ${later}, ${later}, 'test:inflight-job-running'),
      ('jobs.run', '{"job":"retention"}', 'pending', null, null, ${later}, 'test:inflight-job-pending'),
      ('mail.send', '{"id":"x"}', 'running', 'elsewhere', ${later}, ${later}, 'test:inflight-mail-running'),
      ('mail.send', '{"id":"y"}', 'done', null, null, ${later}, 'test:inflight-mail-done')`);
    await query(url, "insert into job_runs (job, trigger, instance, pid) values ('backup', 'scheduled', 'elsewhere:1', 1)");
    let b: BackupSummary;
    try {
      b = await t.app.services.backups.create(SYSTEM_ACTOR);
    } finally {
      await query(url, "delete from queue_tasks where dedupe_key like 'test:inflight-%'");
      await query(url, "delete from job_runs where instance = 'elsewhere:1'");
    }
    const target = await fresh();
    const r = await cli(['backup', 'restore', b.id, '--yes', '--json', '--database-url', target], env());
    expect(r.code, r.stderr).to.equal(0);
    const report = JSON.parse(r.stdout) as unknown;
    expect([...Value.Errors(RestoreReportSchema, report)].map((e) => `${e.path}: ${e.message}`), 'restore --json matches its schema').to.deep.equal([]);
    const tasks = await query<{ dedupe_key: string; state: string; locked_by: string | null }>(
      target,
      "select dedupe_key, state, locked_by from queue_tasks where dedupe_key like 'test:inflight-%' order by dedupe_key",
    );
    expect(tasks).to.deep.equal([
      { dedupe_key: 'test:inflight-mail-done', state: 'done', locked_by: null },
      { dedupe_key: 'test:inflight-mail-running', state: 'pending', locked_by: null },
    ]);
    const runs = await query<{ outcome: string; error: string; finished: boolean }>(target, "select outcome, error, finished_at is not null as finished from job_runs where instance = 'elsewhere:1'");
    expect(runs).to.deep.equal([{ outcome: 'skipped', error: 'in flight when the backup was taken', finished: true }]);
    expect(await query(target, 'select 1 from job_runs where outcome is null')).to.have.length(0);
  });

  it('an aborted backup (the job signal) stops while it waits for a lock: rejects with the reason, lists nothing new, leaves no .tmp- directory and no session', async () => {
    const before = readdirSync(dir).sort();
    // A table is locked exclusively: the backup waits for it before its snapshot (it locks every
    // table it reads first), its directory begun, nothing written yet.
    const locker = await holdingLock(url, 'lock table users in access exclusive mode');
    try {
      const controller = new AbortController();
      const created = t.app.services.backups.create(SYSTEM_ACTOR, controller.signal);
      created.catch(() => undefined);
      const sessions = () => query<{ wait: string | null }>(url, "select wait_event_type as wait from pg_stat_activity where application_name = 'sentinel-backup'");
      for (let i = 0; i < 200 && !(await sessions()).some((s) => s.wait === 'Lock'); i++) await new Promise((r) => setTimeout(r, 25));
      expect((await sessions()).map((s) => s.wait)).to.include('Lock');
      const tmp = readdirSync(dir).find((n) => n.startsWith('.tmp-') && !before.includes(n));
      expect(tmp, 'the backup\'s directory is begun').to.be.a('string');
      // Waiting before its snapshot: no table written yet.
      expect(readdirSync(join(dir, tmp!))).to.deep.equal([]);
      controller.abort(new Error('test abort'));
      let err: unknown;
      await created.catch((e: unknown) => (err = e));
      expect((err as Error)?.message).to.equal('test abort');
      expect(readdirSync(dir).sort()).to.deep.equal(before);
      // Ended while the lock is still held: terminated, not left waiting behind it.
      for (let i = 0; i < 40 && (await sessions()).length; i++) await new Promise((r) => setTimeout(r, 25));
      expect(await sessions()).to.have.length(0);
    } finally {
      await locker.release();
    }
  });

  it("a table an extension owns (pg_depend 'e', like PostGIS's spatial_ref_sys) is left out, so the backup restores", async function () {
    // No extension with a table of its own is available everywhere: a table made a member of plpgsql
    // (installed in every database) stands for one. That needs the extension's owner (a superuser).
    await query(url, 'create table ext_owned_demo (id int primary key, v text)');
    try {
      await query(url, "insert into ext_owned_demo values (1, 'the extension''s row')");
      try {
        await query(url, 'alter extension plpgsql add table ext_owned_demo');
      } catch (err) {
        console.warn(`    (cannot make a table an extension member: ${(err as Error).message})`);
        this.skip();
      }
      const b = await t.app.services.backups.create(SYSTEM_ACTOR);
      const manifest = JSON.parse(readFileSync(join(dir, b.id, 'manifest.json'), 'utf8')) as { tables: { name: string }[] };
      expect(manifest.tables.map((x) => x.name)).not.to.include('ext_owned_demo');
      expect(manifest.tables.map((x) => x.name)).to.include('users');
      const target = await fresh();
      const r = await cli(['backup', 'restore', b.id, '--yes', '--database-url', target], env());
      expect(r.code, r.stderr).to.equal(0);
    } finally {
      await query(url, 'alter extension plpgsql drop table ext_owned_demo').catch(() => undefined);
      await query(url, 'drop table ext_owned_demo');
    }
  });

  it("a manual backup (HTTP, CLI) takes the backup job's lock: refused with 409 / exit 4 while a backup runs, recorded as a manual run otherwise", async () => {
    const before = readdirSync(dir).sort();
    // Another process's run of the job: its lock held on a connection of its own.
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query(`select pg_advisory_lock(${JOB_LOCK_SQL})`, ['backup']);
      const res = await t.api.post('/admin/backups', root);
      expect(res.status, res.text).to.equal(409);
      const r = await cli(['backup', 'create'], env());
      expect(r.code, r.stderr).to.equal(4);
      expect(readdirSync(dir).sort()).to.deep.equal(before);
    } finally {
      await holder.end();
    }
    const res = await t.api.post<BackupSummary>('/admin/backups', root);
    expect(res.status, res.text).to.equal(201);
    const runs = await query<{ trigger: string; outcome: string; id: string }>(url, "select trigger, outcome, details->>'id' as id from job_runs where job = 'backup' order by started_at desc limit 1");
    expect(runs).to.deep.equal([{ trigger: 'manual', outcome: 'ok', id: res.body.id }]);
  });

  it('an aborted verify (the restore-drill job signal) rejects with the reason and drops its scratch database', async () => {
    const b = await t.app.services.backups.create(SYSTEM_ACTOR);
    const scratchDbs = () => query<{ n: string }>(url, "select datname as n from pg_database where datname like 'sentinel_verify_%'");
    const controller = new AbortController();
    const verifying = t.app.services.backups.verify(SYSTEM_ACTOR, b.id, controller.signal);
    verifying.catch(() => undefined);
    // Aborted once its scratch database exists: mid-way through the trial restore.
    for (let i = 0; i < 400 && !(await scratchDbs()).length; i++) await new Promise((r) => setTimeout(r, 5));
    expect(await scratchDbs()).to.have.length(1);
    controller.abort(new Error('drill aborted'));
    let err: unknown;
    await verifying.catch((e: unknown) => (err = e));
    expect((err as Error)?.message).to.equal('drill aborted');
    expect(await scratchDbs()).to.have.length(0);
  });
});
