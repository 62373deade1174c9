import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { AlertsStatusRepository } from '../../src/features/alerts/alerts-status-repository.js';
import { HeartbeatsStatusRepository } from '../../src/features/heartbeats/heartbeats-status-repository.js';
import { cloneDatabase, dropDatabase } from '../support/db.js';
import { planNodes, type PlanNode } from '../support/plans.js';

/*
 * The admin status answer's instance-wide statements on tables of many organizations' rows:
 * each is served by its index (alerts_active_since, heartbeats_late), no sequential scan, and the
 * answer is still right.
 */

describe('admin status statements use their indexes', function () {
  this.timeout(60_000);
  let url: string;
  let knex: Knex;
  const NOW = new Date('2026-11-30T10:00:00Z');

  before(async () => {
    url = await cloneDatabase();
    knex = knexFactory({ client: 'pg', connection: url });
    const orgs = await knex.raw<{ rows: { id: string; slug: string }[] }>(
      `insert into organizations (slug, name) select 'org-' || i, 'Org ' || i from generate_series(1, 50) i returning id, slug`,
    );
    const ids = orgs.rows.map((o) => o.id);
    // 40 000 alerts of which 30 active (20 firing, 10 pending); 20 000 heartbeats of which 25 late (15 down).
    await knex.raw(
      `insert into alerts (org_id, source, source_id, fingerprint, labels, state, active_at, fired_at, updated_at)
       select (?::uuid[])[1 + i % 50], 'rule', 'r' || i, md5(i::text),
              jsonb_build_object('severity', case when i % 2 = 0 then 'critical' else 'warning' end),
              case when i <= 20 then 'firing' when i <= 30 then 'pending' else 'resolved' end,
              ?::timestamptz - i * interval '1 minute', ?::timestamptz - i * interval '1 minute', ?::timestamptz - i * interval '1 minute'
         from generate_series(1, 40000) i`,
      [ids, NOW, NOW, NOW],
    );
    await knex.raw(
      `insert into heartbeats (org_id, name, token_hash, token_sealed, period_ms, grace_ms, state, due_at)
       select (?::uuid[])[1 + i % 50], 'hb-' || i, md5('t' || i), 'x', 60000, 0,
              case when i <= 15 then 'down' else 'up' end,
              case when i <= 25 then ?::timestamptz - i * interval '1 minute' else ?::timestamptz + i * interval '1 minute' end
         from generate_series(1, 20000) i`,
      [ids, NOW, NOW],
    );
    await knex.raw('analyze alerts, heartbeats, organizations');
  });
  after(async () => {
    await knex?.destroy();
    if (url) await dropDatabase(url);
  });

  /** Runs `read` recording its statements, then each statement's plan. */
  async function plans(read: (k: Knex) => Promise<unknown>): Promise<{ sql: string; nodes: PlanNode[] }[]> {
    const seen: { sql: string; bindings: readonly unknown[] }[] = [];
    const onQuery = (q: { sql: string; bindings?: readonly unknown[] }) => seen.push({ sql: q.sql, bindings: q.bindings ?? [] });
    knex.on('query', onQuery);
    try {
      await read(knex);
    } finally {
      knex.removeListener('query', onQuery);
    }
    const out = [];
    for (const q of seen) {
      const { rows } = await knex.raw<{ rows: { 'QUERY PLAN': [{ Plan: PlanNode }] }[] }>(`explain (format json) ${q.sql.replace(/\$\d+/g, '?')}`, q.bindings as Knex.RawBinding[]);
      out.push({ sql: q.sql, nodes: planNodes(rows[0]['QUERY PLAN'][0].Plan) });
    }
    return out;
  }

  it('alerts: both statements read alerts_active_since, neither scans the table', async () => {
    const repo = new AlertsStatusRepository(knex);
    const answer = await repo.alertsStatus();
    expect(answer.firing).to.deep.equal({ critical: 10, error: 0, warning: 10, info: 0 });
    expect(answer.pending).to.deep.equal({ critical: 5, error: 0, warning: 5, info: 0 });
    expect(answer.newest.map((a) => a.rule)).to.deep.equal(Array.from({ length: 10 }, (_, i) => `r${i + 1}`));
    const ps = await plans(() => repo.alertsStatus());
    expect(ps).to.have.length(2);
    for (const p of ps) {
      const onAlerts = p.nodes.filter((n) => n['Relation Name'] === 'alerts');
      expect(onAlerts.map((n) => [n['Node Type'], n['Index Name']]), p.sql).to.satisfy((xs: [string, string][]) => xs.length > 0 && xs.every(([, i]) => i === 'alerts_active_since'));
      expect(p.nodes.filter((n) => n['Node Type'] === 'Seq Scan' && n['Relation Name'] === 'alerts'), p.sql).to.deep.equal([]);
    }
  });

  it('heartbeats: the ten listed and the count read heartbeats_late, neither scans the table', async () => {
    const repo = new HeartbeatsStatusRepository(knex, { now: () => NOW } as never);
    const answer = await repo.heartbeatsStatus();
    expect(answer.late).to.equal(25);
    expect(answer.items.map((h) => h.name)).to.deep.equal(Array.from({ length: 10 }, (_, i) => `hb-${25 - i}`));
    const ps = await plans(() => repo.heartbeatsStatus());
    expect(ps).to.have.length(2);
    for (const p of ps) {
      const onHeartbeats = p.nodes.filter((n) => n['Relation Name'] === 'heartbeats');
      expect(onHeartbeats.map((n) => n['Index Name']), p.sql).to.deep.equal(['heartbeats_late']);
    }
  });
});
