import { expect } from 'chai';
import { rmSync } from 'node:fs';
import pg from 'pg';
import { pino } from 'pino';
import { postgresTunables } from '../../src/config/postgres-environment.js';
import { EmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { tempDataDir } from '../support/own-postgres.js';

/**
 * The thresholds' effect (no page faults per statement in the reads connections' backends) needs a
 * database in the state bench:prometheus leaves and is measured there (docs/benchmarks.md, "Page
 * faults in PostgreSQL's backends"); this test shows that the server runs with them.
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

  it('starts the server with them in its environment', async function () {
    const expected = postgresTunables(process.env, process.arch);
    if (expected === undefined) this.skip(); // a 32-bit machine, or the environment's own MALLOC_*_THRESHOLD_: nothing to add
    // The postmaster's environment as exec'd (backends are forked from it and keep its malloc
    // settings; their own /proc environ holds their process title). Read by the server itself, which
    // runs as the postmaster's user: the test's user may not read another user's /proc/<pid>/environ.
    const { rows } = await client.query<{ environ: Buffer }>(
      `select pg_read_binary_file('/proc/' || split_part(pg_read_file('postmaster.pid'), chr(10), 1) || '/environ') as environ`,
    );
    const entries = rows[0].environ.toString('utf8').split('\0');
    const at = entries.findIndex((e) => e.startsWith('GLIBC_TUNABLES='));
    expect(at, "GLIBC_TUNABLES in the server's environment").to.be.at.least(0);
    // glibc may cut the value at its colons in place: the pieces that follow (tunable names all
    // start with "glibc.") are the rest of the value.
    let end = at + 1;
    while (end < entries.length && entries[end].startsWith('glibc.')) end++;
    const pairs = [entries[at].slice('GLIBC_TUNABLES='.length), ...entries.slice(at + 1, end)].join(':').split(':');
    for (const pair of expected!.split(':')) expect(pairs).to.include(pair);
  });
});
