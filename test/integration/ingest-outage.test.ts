import { expect } from 'chai';
import type { EmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { query } from '../support/db.js';
import { startOwnPostgres, type OwnPostgres } from '../support/own-postgres.js';
import { createApiKey, createOrg } from '../support/factories.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** PostgreSQL stopped under ingest: only 202 (stored) or 503 + Retry-After (not stored), never 500. */
describe('ingest while PostgreSQL goes away', function () {
  this.timeout(120_000);
  let own: OwnPostgres;
  let pgServer: EmbeddedPostgres;
  let url: string;
  let t: TestApp;

  before(async () => {
    own = await startOwnPostgres();
    pgServer = own.server;
    url = own.url;
    t = await startTestApp(url, { SENTINEL_DATABASE_CONNECT_TIMEOUT_MS: '1000' });
  });
  after(async () => {
    await t?.stop();
    await own?.remove();
  });

  it('answers 503 with Retry-After for what it could not store and keeps every 202 batch', async () => {
    const org = await createOrg(t.app.services);
    const key = (await createApiKey(t.app.services, org.slug, ['ingest'])).secret;
    const statuses = new Map<number, number>();
    const acknowledged: number[] = [];
    let next = 0;
    let stop = false;
    let missingRetryAfter = 0;
    const client = async () => {
      while (!stop) {
        const batch = next++;
        const res = await t.api.post('/telemetry', key, { metrics: Array.from({ length: 50 }, (_, i) => ({ name: 'outage', value: i, labels: { batch: String(batch) } })) });
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status === 202) acknowledged.push(batch);
        if (res.status === 503 && !res.headers.get('retry-after')) missingRetryAfter++;
        if (res.status === 503) await sleep(50);
      }
    };
    const clients = Array.from({ length: 4 }, client);
    while (acknowledged.length < 20) await sleep(10);
    await pgServer.stop();
    const stoppedAt = Date.now();
    while (!statuses.has(503) && Date.now() - stoppedAt < 10_000) await sleep(20);
    await sleep(500);
    url = await pgServer.start();
    // Until it is back: keep sending, then wait for 202s again.
    const restartedAt = Date.now();
    const before = acknowledged.length;
    while (acknowledged.length < before + 10 && Date.now() - restartedAt < 20_000) await sleep(20);
    stop = true;
    await Promise.all(clients);

    expect([...statuses.keys()].sort(), JSON.stringify([...statuses])).to.deep.equal([202, 503]);
    expect(missingRetryAfter).to.equal(0);
    expect(acknowledged.length).to.be.at.least(before + 10);
    const rows = await query<{ batch: string; n: string }>(
      url,
      "select s.labels->>'batch' as batch, count(*) as n from points p join series s on s.org_id = p.org_id and s.id = p.series_id where p.org_id = $1 group by 1",
      [org.id],
    );
    const stored = new Map(rows.map((r) => [Number(r.batch), Number(r.n)]));
    for (const batch of acknowledged) expect(stored.get(batch), `acknowledged batch ${batch}`).to.equal(50);
    for (const [batch, n] of stored) expect(n, `batch ${batch} whole`).to.equal(50);
  });
});
