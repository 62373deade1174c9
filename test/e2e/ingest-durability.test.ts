import { expect } from 'chai';
import { testEnv } from '../support/config.js';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { runBin, startDaemon, type Daemon } from '../support/daemon.js';
import { ApiClient } from '../support/http.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const POINTS = 200;
const LOGS = 5;

/**
 * Group commit's promise: a 2xx means committed. The daemon is SIGKILLed while several clients
 * send batches; afterwards every batch that got 2xx is complete and no batch is partly stored.
 */
describe('ingest durability: SIGKILL during concurrent batched ingest', function () {
  this.timeout(120_000);
  let url: string;
  let env: Record<string, string>;
  let daemon: Daemon | undefined;

  before(async () => {
    url = await cloneDatabase();
    env = testEnv(url, { SENTINEL_INGEST_POINTS_PER_SECOND: '100000000' });
  });
  after(async () => {
    if (daemon && daemon.proc.exitCode === null) {
      daemon.proc.kill('SIGKILL');
      await daemon.exited;
    }
    await dropDatabase(url);
  });

  it('keeps every acknowledged batch whole and no batch half-written', async () => {
    expect(runBin(['org', 'create', 'dur'], env).code).to.equal(0);
    const created = runBin(['apikey', 'create', '--org', 'dur', '--name', 'k', '--json'], env);
    expect(created.code, created.stderr).to.equal(0);
    const key = (JSON.parse(created.stdout) as { secret: string }).secret;
    daemon = await startDaemon(env, ['serve']);
    const api = new ApiClient(`http://127.0.0.1:${daemon.port}`);

    const CLIENTS = 8;
    const acknowledged = new Set<number>();
    /** Every answer by batch: a batch refused with any other status must not be stored. */
    const answered = new Map<number, number>();
    let next = 0;
    let stop = false;
    const client = async () => {
      while (!stop) {
        const batch = next++;
        const now = Date.now();
        const body = JSON.stringify({
          metrics: Array.from({ length: POINTS }, (_, i) => ({ name: 'dur.value', value: i, ts: now - i, labels: { batch: String(batch), shard: String(i % 10) } })),
          logs: Array.from({ length: LOGS }, (_, i) => ({ level: 'info', message: `batch ${batch} line ${i}`, attributes: { batch: String(batch) } })),
        });
        try {
          const res = await api.post('/telemetry', key, body);
          answered.set(batch, res.status);
          if (res.status === 202) acknowledged.add(batch);
        } catch {
          return; // the daemon is gone
        }
      }
    };
    const clients = Array.from({ length: CLIENTS }, client);
    // Kill once plenty has been acknowledged, with requests certainly in flight.
    const deadline = Date.now() + 30_000;
    while (acknowledged.size < 40 && Date.now() < deadline) await sleep(20);
    daemon.proc.kill('SIGKILL');
    await daemon.exited;
    stop = true;
    await Promise.all(clients);
    expect(acknowledged.size).to.be.at.least(40);

    // A restart serves again on the same database.
    daemon = await startDaemon(env, ['serve']);
    const points = await query<{ batch: string; n: string }>(
      url,
      "select s.labels->>'batch' as batch, count(*) as n from points p join series s on s.org_id = p.org_id and s.id = p.series_id group by 1",
    );
    const logs = await query<{ batch: string; n: string }>(url, "select attributes->>'batch' as batch, count(*) as n from logs group by 1");
    const pointsOf = new Map(points.map((r) => [Number(r.batch), Number(r.n)]));
    const logsOf = new Map(logs.map((r) => [Number(r.batch), Number(r.n)]));
    for (const batch of acknowledged) {
      expect(pointsOf.get(batch), `points of acknowledged batch ${batch}`).to.equal(POINTS);
      expect(logsOf.get(batch), `logs of acknowledged batch ${batch}`).to.equal(LOGS);
    }
    // Stored but never acknowledged: only requests the kill cut off, at most one per client.
    const unacknowledged = [...pointsOf.keys()].filter((b) => !acknowledged.has(b));
    expect(unacknowledged.length, `stored without a 202: ${unacknowledged.join(', ')}`).to.be.at.most(CLIENTS);
    for (const batch of unacknowledged) expect(answered.get(batch), `batch ${batch} was answered ${answered.get(batch)} yet stored`).to.equal(undefined);
    for (const [batch, n] of pointsOf) {
      expect(n, `batch ${batch} is whole or absent`).to.equal(POINTS);
      expect(logsOf.get(batch), `batch ${batch}'s logs are whole`).to.equal(LOGS);
    }
    for (const [batch, n] of logsOf) expect(pointsOf.has(batch) && n === LOGS, `batch ${batch}'s logs without its points`).to.equal(true);
    const res = await new ApiClient(`http://127.0.0.1:${daemon.port}`).post('/telemetry', key, { metrics: [{ name: 'after.restart', value: 1 }] });
    expect(res.status, res.text).to.equal(202);
  });
});
