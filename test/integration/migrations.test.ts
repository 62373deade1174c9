import { expect } from 'chai';
import pg from 'pg';
import { cli } from '../support/cli.js';
import { testEnv } from '../support/config.js';
import { cloneDatabase, dropDatabase, emptyDatabase, query } from '../support/db.js';
import { PartitionsRepository } from '../../src/db/partitions.js';
import { POINT_WINDOWS } from '../../src/features/telemetry/telemetry-tables.js';
import knexFactory from 'knex';
import { migratorConfig } from '../../src/db/migration-source.js';

async function tables(url: string): Promise<string[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ table_name: string }>("select table_name from information_schema.tables where table_schema = 'public' and table_name not like 'knex_%' order by 1");
    return rows.map((r) => r.table_name);
  } finally {
    await c.end();
  }
}

describe('migrations (sentinel migrate)', () => {
  let url: string;
  let env: Record<string, string>;
  before(async () => {
    url = await emptyDatabase();
    env = testEnv(url);
  });
  after(() => dropDatabase(url));

  it('status lists every migration as pending on an empty database', async () => {
    const r = await cli(['migrate', 'status'], env);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.match(/pending {2}20261127000001_create_identity_tables/);
    expect(r.stdout).to.match(/0 applied, \d+ pending/);
  });

  it('serve refuses to start with pending migrations (exit 1, clear message)', async () => {
    const r = await cli(['serve'], env);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/pending migration\(s\).*sentinel migrate latest.*--migrate/);
  });

  it('latest → rollback --all → latest leaves the same schema', async () => {
    const up = await cli(['migrate', 'latest'], env);
    expect(up.code, up.stderr).to.equal(0);
    expect(up.stdout).to.contain('applied');
    const first = await tables(url);
    expect(first).to.include.members(['organizations', 'users', 'memberships', 'audit_log']);

    const again = await cli(['migrate', 'latest'], env);
    expect(again.stdout).to.equal('already up to date\n');

    const down = await cli(['migrate', 'rollback', '--all', '--yes'], env);
    expect(down.code, down.stderr).to.equal(0);
    expect(down.stdout).to.contain('rolled back');
    expect(await tables(url)).to.deep.equal([]);

    const nothing = await cli(['migrate', 'rollback'], env);
    expect([nothing.code, nothing.stdout]).to.deep.equal([0, 'nothing to roll back\n']);
    expect((await cli(['migrate', 'latest'], env)).code).to.equal(0);
    expect(await tables(url)).to.deep.equal(first);
    const status = await cli(['migrate', 'status', '--json'], env);
    expect(JSON.parse(status.stdout).pending).to.deep.equal([]);
  });

  describe('rollback drops data only when confirmed', () => {
    let db: string;
    let dbEnv: Record<string, string>;
    beforeEach(async () => {
      db = await emptyDatabase();
      dbEnv = testEnv(db);
    });
    afterEach(() => dropDatabase(db));

    /** Apply migrations up to `last`, each in a batch of its own, as successive upgrades do. */
    async function migrateOneBatchEach(last: string): Promise<void> {
      const knex = knexFactory({ client: 'pg', connection: db });
      try {
        for (;;) {
          const [done] = (await knex.migrate.list(migratorConfig())) as [{ name: string }[], unknown[]];
          if (done.some((m) => m.name === last)) break;
          await knex.migrate.up(migratorConfig());
        }
      } finally {
        await knex.destroy();
      }
    }
    /** The indented lines right under a heading of the command's output. */
    const listed = (out: string, heading: RegExp): string[] => {
      const lines = out.split(heading)[1]?.split('\n') ?? [];
      const end = lines.findIndex((l) => !l.startsWith('  '));
      return lines.slice(0, end < 0 ? lines.length : end).map((l) => l.trim());
    };

    it('without --yes: exit 2, prints the migration and the tables it would drop, drops nothing; with --yes drops exactly those', async () => {
      // The telemetry migration: partitioned tables whose partitions go with them.
      const newest = '20261128000001_create_telemetry_tables';
      await migrateOneBatchEach(newest);
      await query(db, "create table points_p20260101 partition of points for values from ('2026-01-01') to ('2026-01-02')");
      const before = await tables(db);

      const preview = await cli(['migrate', 'rollback'], dbEnv);
      expect(preview.code, preview.stderr).to.equal(2);
      expect(preview.stderr).to.match(/not rolled back: back up first.*--yes/);
      expect(listed(preview.stdout, /would roll back 1 migration\(s\):\n/)[0]).to.equal(newest);
      expect(await tables(db)).to.deep.equal(before);
      expect((await query(db, 'select 1 from knex_migrations where name = $1', [newest])).length).to.equal(1);
      const wouldDrop = listed(preview.stdout, /it would drop \d+ table\(s\) and every row in them:\n/);

      const done = await cli(['migrate', 'rollback', '--yes'], dbEnv);
      expect(done.code, done.stderr).to.equal(0);
      expect(done.stdout).to.contain(`rolled back 1 migration(s):\n  ${newest}\n`);
      const after = await tables(db);
      expect(wouldDrop).to.include.members(['points', 'logs', 'events', 'series']);
      // Partitions go with their table and are not listed one by one.
      expect(before).to.include('points_p20260101');
      expect(wouldDrop).to.not.include('points_p20260101');
      expect(before.filter((t) => !after.includes(t) && t !== 'points_p20260101')).to.deep.equal(wouldDrop);
      expect(after).to.not.include('points_p20260101');
      expect(listed(done.stdout, /dropping \d+ table\(s\) and every row in them:\n/)).to.deep.equal(wouldDrop);
    });

    it('the preview gives up on a table in use instead of stalling its users: quick, exit 2, migrations listed, tables not', async () => {
      const newest = '20261128000001_create_telemetry_tables';
      await migrateOneBatchEach(newest);
      const before = await tables(db);
      // Another session (a daemon's query) holding a lock on a table the rollback would drop.
      const holder = new pg.Client({ connectionString: db });
      await holder.connect();
      try {
        await holder.query('begin');
        await holder.query('lock table series in access share mode');
        const started = Date.now();
        const preview = await cli(['migrate', 'rollback'], dbEnv);
        const elapsed = Date.now() - started;
        expect(preview.code, preview.stderr).to.equal(2);
        expect(preview.stderr).to.match(/not rolled back: back up first.*--yes/);
        expect(listed(preview.stdout, /would roll back 1 migration\(s\):\n/)).to.deep.equal([newest]);
        expect(preview.stdout).to.contain('the tables it drops could not be listed (a table it drops is in use');
        expect(preview.stdout).to.not.match(/it would drop/);
        // Waited for the lock a blink, not the 5 s it used to (nor until the holder let go).
        expect(elapsed).to.be.below(2500);
        // The holder was not disturbed, and nothing was dropped.
        expect((await holder.query('select count(*)::int as n from series')).rows).to.deep.equal([{ n: 0 }]);
        await holder.query('commit');
      } finally {
        await holder.end();
      }
      expect(await tables(db)).to.deep.equal(before);
    });

    it('refuses to undo the first batch without --all, even with --yes; --all without --yes only previews', async () => {
      expect((await cli(['migrate', 'latest'], dbEnv)).code).to.equal(0);
      await query(db, "insert into organizations (slug, name) values ('keep', 'Keep me')");
      const before = await tables(db);

      const refused = await cli(['migrate', 'rollback', '--yes'], dbEnv);
      expect(refused.code).to.equal(2);
      expect(refused.stderr).to.contain("the last batch is the first one").and.contain("'sentinel migrate rollback --all --yes'");
      expect(refused.stdout).to.match(/would roll back \d+ migration\(s\) \(including the first batch/);
      expect(await tables(db)).to.deep.equal(before);

      const preview = await cli(['migrate', 'rollback', '--all'], dbEnv);
      expect(preview.code).to.equal(2);
      expect(listed(preview.stdout, /it would drop \d+ table\(s\) and every row in them:\n/)).to.include.members(['organizations', 'users', 'audit_log']);
      expect(await tables(db)).to.deep.equal(before);
      expect(await query(db, "select slug from organizations")).to.deep.equal([{ slug: 'keep' }]);

      const all = await cli(['migrate', 'rollback', '--all', '--yes'], dbEnv);
      expect(all.code, all.stderr).to.equal(0);
      expect(await tables(db)).to.deep.equal([]);
    });
  });

  it('the audit log refuses updates and deletes', async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query("insert into audit_log (actor, action) values ('system', 'test')");
      let error = '';
      await c.query("update audit_log set action = 'x'").catch((e: Error) => (error = e.message));
      expect(error).to.contain('append-only');
      await c.query('delete from audit_log').catch((e: Error) => (error = `${e.message}!`));
      expect(error).to.equal('audit_log is append-only!');
    } finally {
      await c.end();
    }
  });

  it('reports an unreachable database as a failure (exit 1), not a crash', async () => {
    const r = await cli(['migrate', 'status'], testEnv('postgres://nobody@127.0.0.1:1/none', { SENTINEL_DATABASE_CONNECT_TIMEOUT_MS: '500' }));
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/^error: /);
  });
});

describe('rolling back the claims of windows of points (20261214000001)', () => {
  it("merges each day's windows of points back into one day partition, every point kept, the claims gone", async () => {
    const db = await cloneDatabase();
    const knex = knexFactory({ client: 'pg', connection: db, pool: { min: 0, max: 2 } });
    try {
      const day = Date.UTC(2026, 10, 20);
      // Windows of two days, and a whole day made before the split (it stays as it is).
      await new PartitionsRepository(knex, ['points'], [], POINT_WINDOWS).ensure('points', [day, day + 86_400_000]);
      await new PartitionsRepository(knex, ['points']).ensure('points', [day - 86_400_000]);
      await knex.raw(
        `insert into points (org_id, series_id, ts, value)
         select gen_random_uuid(), g % 7, to_timestamp(?::float8 / 1000) + g * interval '97 s', g * 0.5 from generate_series(0, 2 * 86400 / 97 + 880) g`,
        [day - 86_400_000 + 1000],
      );
      await knex('point_window_claims').insert({ window_start: new Date(day) });
      const rows = async () => (await knex.raw<{ rows: { n: string; sum: string }[] }>("select count(*) as n, md5(string_agg(p::text, ',' order by p::text)) as sum from points p")).rows[0];
      const partitions = async () =>
        (await knex.raw<{ rows: { name: string }[] }>("select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = 'points'::regclass order by 1")).rows.map((r) => r.name);
      const before = await rows();
      expect(Number(before.n)).to.be.greaterThan(2 * 86400 / 97);
      expect((await partitions()).filter((n) => n.startsWith('points_p20261120_w'))).to.have.length(12);

      await knex.migrate.down({ ...migratorConfig(), name: '20261214000001_point_window_claims' });

      expect(await rows()).to.deep.equal(before);
      const after = await partitions();
      expect(after.filter((n) => /_w\d\d$/.test(n))).to.deep.equal([]);
      expect(after).to.include.members(['points_p20261119', 'points_p20261120', 'points_p20261121']);
      expect((await knex.raw("select to_regclass('point_window_claims') as t")).rows[0].t).to.equal(null);
    } finally {
      await knex.destroy();
      await dropDatabase(db);
    }
  });
});
