import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { runBin, startDaemon, type Daemon } from '../support/daemon.js';
import { ApiClient } from '../support/http.js';
import { WebhookReceiver } from '../support/webhook-receiver.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const uniq = () => randomBytes(3).toString('hex');

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

/**
 * Scaling out: two `sentinel serve` (the compiled binary) on one PostgreSQL, each with its own
 * data_dir and port, sharing the secrets (auth.jwt_secret, auth.encryption_key) as every instance
 * of one deployment must. The API answers on both with the same token; a job scheduled every
 * second runs once per slot; an alert notifies once, and resolves once.
 */
describe('two sentinel serve instances on one database', function () {
  this.timeout(120_000);
  let url: string;
  let dir: string;
  let A: Daemon;
  let B: Daemon;
  const hook = new WebhookReceiver();
  let token: string;
  const org = `two-${uniq()}`;
  const email = `owner-${uniq()}@example.test`;
  const password = `pw-${uniq()}-${uniq()}-${uniq()}`;
  const api = (d: Daemon) => new ApiClient(`http://127.0.0.1:${d.port}`);

  before(async () => {
    url = await cloneDatabase();
    dir = mkdtempSync(join(tmpdir(), 'sentinel-two-'));
    await hook.start();
    const shared = {
      SENTINEL_DATABASE_URL: url,
      SENTINEL_HTTP_PORT: '0',
      SENTINEL_AUTH_BCRYPT_ROUNDS: '4',
      SENTINEL_AUTH_JWT_SECRET: randomBytes(32).toString('hex'),
      SENTINEL_AUTH_ENCRYPTION_KEY: randomBytes(32).toString('hex'),
      SENTINEL_RATE_LIMITS_API_PER_MINUTE: '100000',
      SENTINEL_ALERTS_ENABLED: 'true',
      SENTINEL_ALERTS_TICK_MS: '100',
      SENTINEL_NOTIFICATIONS_ALLOW_PRIVATE_NETWORKS: 'true',
      SENTINEL_QUEUE_POLL_INTERVAL_MS: '200',
      // The schedulers' tick lines (job slot queued / already queued) are debug lines.
      SENTINEL_LOG_LEVEL: 'debug',
      // Every second (cron with seconds first): a slot both instances' schedulers tick on.
      SENTINEL_JOBS: JSON.stringify({ partitions: { schedule: '* * * * * *' } }),
    };
    const created = runBin(['org', 'create', org], { SENTINEL_DATABASE_URL: url, SENTINEL_DATA_DIR: join(dir, 'cli') });
    expect(created.code, created.stderr).to.equal(0);
    const user = runBin(['user', 'create', email, '--password-stdin', '--org', org, '--role', 'owner'], { SENTINEL_DATABASE_URL: url, SENTINEL_DATA_DIR: join(dir, 'cli'), SENTINEL_AUTH_BCRYPT_ROUNDS: '4' }, `${password}\n`);
    expect(user.code, user.stderr).to.equal(0);
    [A, B] = await Promise.all([
      startDaemon({ ...shared, SENTINEL_DATA_DIR: join(dir, 'a') }, ['serve']),
      startDaemon({ ...shared, SENTINEL_DATA_DIR: join(dir, 'b') }, ['serve']),
    ]);
  });

  after(async () => {
    for (const d of [A, B]) {
      if (d && d.proc.exitCode === null && d.proc.signalCode === null) {
        d.proc.kill('SIGTERM');
        await d.exited;
      }
    }
    await hook.stop();
    rmSync(dir, { recursive: true, force: true });
    if (url) await dropDatabase(url);
  });

  it('each listens on its own port; a token from a login on one works on the other', async () => {
    expect(A.port).to.not.equal(B.port);
    token = (await api(A).login(email, password)).access_token;
    for (const d of [A, B]) {
      const res = await api(d).get<{ slug: string }>(`/organizations/${org}`, token);
      expect(res.status, res.text).to.equal(200);
      expect(res.body.slug).to.equal(org);
    }
    // Written through one, read through the other.
    const made = await api(B).post<{ id: string }>(`/organizations/${org}/channels`, token, { name: 'written-on-b', type: 'webhook', config: { url: hook.url } });
    expect(made.status, made.text).to.equal(201);
    const seen = await api(A).get<{ items: { id: string; name: string }[] }>(`/organizations/${org}/channels`, token);
    expect(seen.body.items.map((c) => c.name)).to.deep.equal(['written-on-b']);
    // Not any token: a wrong one is refused by both.
    for (const d of [A, B]) expect((await api(d).get(`/organizations/${org}`, `${token}x`)).status).to.equal(401);
  });

  it('a job scheduled every second runs once per slot, though both instances tick', async () => {
    const runs = async () =>
      query<{ slot: Date; n: string; outcomes: string[]; pids: number[] }>(
        url,
        "select slot, count(*) as n, array_agg(outcome) as outcomes, array_agg(pid) as pids from job_runs where job = 'partitions' and trigger = 'scheduled' group by slot order by slot",
      );
    await until('seven scheduled slots of partitions', async () => ((await runs()).length >= 7 ? true : undefined));
    // Let the last slots finish.
    await sleep(1500);
    const slots = await runs();
    expect(slots.filter((s) => Number(s.n) !== 1), JSON.stringify(slots)).to.deep.equal([]);
    expect(slots.flatMap((s) => s.outcomes).filter((o) => o !== 'ok' && o !== null), JSON.stringify(slots)).to.deep.equal([]);
    // Run by these two daemons, no one else.
    expect(slots.flatMap((s) => s.pids).filter((pid) => pid !== A.proc.pid && pid !== B.proc.pid)).to.deep.equal([]);
    // Both schedulers ticked on the slots (debug lines), and each slot was queued by exactly one of them.
    const ticks = (d: Daemon) =>
      d
        .stdout()
        .split('\n')
        .filter((l) => l.includes('"job":"partitions"') && /"msg":"job slot (already )?queued"/.test(l))
        .map((l) => JSON.parse(l) as { slot: string; queued: boolean });
    // Slots from the moment both were ready (the later one's scheduler may start a slot late).
    const readyAt = (d: Daemon) => Date.parse((JSON.parse(d.stdout().split('\n').find((l) => l.includes('"msg":"ready"'))!) as { time: string }).time);
    const bothUp = Math.max(readyAt(A), readyAt(B));
    const ranSlots = slots.map((s) => new Date(s.slot).toISOString()).filter((slot) => Date.parse(slot) > bothUp);
    expect(ranSlots.length, JSON.stringify(slots)).to.be.at.least(4);
    // Whoever queued a slot logged it; logs reach stdout within a second (buffered).
    const queuedBy = (slot: string) => [...ticks(A), ...ticks(B)].filter((t) => t.slot === slot && t.queued);
    await until('the "job slot queued" line of every slot that ran', () => (ranSlots.every((slot) => queuedBy(slot).length > 0) ? true : undefined), 5000);
    for (const slot of ranSlots) {
      // Each scheduler ticks a slot at most once (a loaded machine may make one miss a slot), and exactly one queued it.
      expect(ticks(A).filter((t) => t.slot === slot), `A's ticks on ${slot}`).to.have.length.at.most(1);
      expect(ticks(B).filter((t) => t.slot === slot), `B's ticks on ${slot}`).to.have.length.at.most(1);
      expect(queuedBy(slot), `the ticks that queued ${slot}`).to.have.length(1);
    }
    // The two schedulers did compete: on some slots both ticked, one finding it already queued.
    const both = ranSlots.filter((slot) => ticks(A).some((t) => t.slot === slot) && ticks(B).some((t) => t.slot === slot));
    expect(both.length, `slots both ticked on; A ticked ${JSON.stringify(ticks(A).map((t) => t.slot))}, B ${JSON.stringify(ticks(B).map((t) => t.slot))}`).to.be.at.least(1);
    // No slot queued twice.
    const queued = await query<{ dedupe_key: string; n: string }>(url, "select dedupe_key, count(*) as n from queue_tasks where dedupe_key like 'job:partitions@%' group by dedupe_key having count(*) > 1");
    expect(queued).to.deep.equal([]);
  });

  it('an alert rule notifies once when it fires and once when it resolves, with alert evaluation on in both instances', async () => {
    const receiver = `two-${uniq()}`;
    const channel = await api(A).post<{ id: string }>(`/organizations/${org}/channels`, token, { name: receiver, type: 'webhook', config: { url: hook.url } });
    expect(channel.status, channel.text).to.equal(201);
    const rule = await api(B).post<{ id: string }>(`/organizations/${org}/alert-rules`, token, {
      name: receiver,
      kind: 'threshold',
      query: { name: 'two.cpu', agg: 'max', window: '2s' },
      op: '>',
      threshold: 90,
      recovery_threshold: 70,
      interval: 1,
      for: 0,
      group_wait: 0,
      group_interval: 1,
      repeat_interval: '1h',
      severity: 'critical',
      channels: [channel.body.id],
    });
    expect(rule.status, rule.text).to.equal(201);

    let value = 99;
    let stop = false;
    let n = 0;
    // Points through both instances in turn, five a second.
    const feeding = (async () => {
      while (!stop) {
        const res = await api(n++ % 2 ? A : B).post(`/organizations/${org}/telemetry`, token, { metrics: [{ name: 'two.cpu', value, ts: Date.now() }] });
        expect(res.status, res.text).to.equal(202);
        await sleep(200);
      }
    })();
    try {
      const of = (status: 'firing' | 'resolved') => hook.of(receiver, status);
      await until('the firing notification', () => (of('firing').length ? true : undefined));
      // Several evaluation intervals on both instances.
      await sleep(4000);
      expect(of('firing')).to.have.length(1);
      value = 10;
      await until('the resolved notification', () => (of('resolved').length ? true : undefined));
      await sleep(4000);
      expect(of('firing')).to.have.length(1);
      expect(of('resolved')).to.have.length(1);
      // And the deliveries the API lists: one per notification, through either instance.
      for (const d of [A, B]) {
        const res = await api(d).get<{ items: { status: string; state: string }[] }>(`/organizations/${org}/notifications?rule_id=${rule.body.id}`, token);
        expect(res.status, res.text).to.equal(200);
        expect(res.body.items.map((i) => i.status).sort()).to.deep.equal(['firing', 'resolved']);
      }
    } finally {
      stop = true;
      await feeding;
    }
  });

  it('both stop cleanly on SIGTERM', async () => {
    A.proc.kill('SIGTERM');
    B.proc.kill('SIGTERM');
    const [a, b] = await Promise.all([A.exited, B.exited]);
    expect([a.code, b.code]).to.deep.equal([0, 0]);
  });
});
