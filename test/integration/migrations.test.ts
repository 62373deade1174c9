import { expect } from 'chai';
import pg from 'pg';
import { cli } from '../support/cli.js';
import { testEnv } from '../support/config.js';
import { dropDatabase, emptyDatabase } from '../support/db.js';

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

    const down = await cli(['migrate', 'rollback', '--all'], env);
    expect(down.code, down.stderr).to.equal(0);
    expect(down.stdout).to.contain('rolled back');
    expect(await tables(url)).to.deep.equal([]);

    expect((await cli(['migrate', 'rollback'], env)).stdout).to.equal('nothing to roll back\n');
    expect((await cli(['migrate', 'latest'], env)).code).to.equal(0);
    expect(await tables(url)).to.deep.equal(first);
    const status = await cli(['migrate', 'status', '--json'], env);
    expect(JSON.parse(status.stdout).pending).to.deep.equal([]);
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
