import { expect } from 'chai';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { EmbeddedPostgres, POSTGRES_MALLOC_TUNABLES, postgresTunables } from '../../src/db/embedded-postgres.js';
import { tempDataDir } from '../support/own-postgres.js';

/**
 * The tunables' effect (no page faults per statement in the reads connections' backends) needs a
 * database in the state bench:prometheus leaves and is measured there (docs/benchmarks.md, "Page
 * faults in PostgreSQL's backends"); these tests show that the server runs with them.
 */
describe('embedded PostgreSQL: glibc malloc tunables', function () {
  this.timeout(120_000);
  let dir: string;
  let server: EmbeddedPostgres;
  let client: pg.Client;

  before(async () => {
    dir = tempDataDir();
    server = new EmbeddedPostgres({ dataDir: dir, port: 0, osUser: 'sentinel', logger: pino({ level: 'silent' }) });
    client = new pg.Client(await server.start());
    await client.connect();
  });

  after(async () => {
    await client?.end().catch(() => undefined);
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('adds the thresholds to GLIBC_TUNABLES unless the environment sets one of them', () => {
    expect(postgresTunables(undefined)).to.equal(POSTGRES_MALLOC_TUNABLES);
    expect(postgresTunables('')).to.equal(POSTGRES_MALLOC_TUNABLES);
    expect(postgresTunables('glibc.malloc.arena_max=2')).to.equal(`glibc.malloc.arena_max=2:${POSTGRES_MALLOC_TUNABLES}`);
    expect(postgresTunables('glibc.malloc.trim_threshold=1048576')).to.equal('glibc.malloc.trim_threshold=1048576');
    expect(postgresTunables('glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=65536')).to.equal('glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=65536');
    // A key that only ends like one of the two is not one of them.
    expect(postgresTunables('glibc.malloc.xmmap_threshold=1')).to.equal(`glibc.malloc.xmmap_threshold=1:${POSTGRES_MALLOC_TUNABLES}`);
  });

  it('starts the server with them in its environment', async () => {
    // The postmaster (backends are forked from it and keep its malloc settings). Its environment as
    // exec'd: glibc may cut GLIBC_TUNABLES at its colons in place, so the pairs are compared one by one.
    const postmaster = Number(readFileSync(join(server.pgdata, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const environ = readFileSync(`/proc/${postmaster}/environ`, 'utf8');
    const start = environ.indexOf('GLIBC_TUNABLES=');
    expect(start, 'GLIBC_TUNABLES in the server\'s environment').to.be.at.least(0);
    const pairs = environ.slice(start + 'GLIBC_TUNABLES='.length).split(/[\0:]/);
    for (const pair of postgresTunables(process.env.GLIBC_TUNABLES).split(':')) expect(pairs).to.include(pair);
    // And it serves.
    expect((await client.query<{ one: number }>('select 1 as one')).rows[0].one).to.equal(1);
  });
});
