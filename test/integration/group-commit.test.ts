import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { createLogger } from '../../src/app/logger.js';
import { DomainError } from '../../src/core/errors.js';
import { PartitionsRepository } from '../../src/db/partitions.js';
import { GroupCommitWriter } from '../../src/features/telemetry/group-commit-writer.js';
import { IngestRepository, type WriteItem } from '../../src/features/telemetry/ingest-repository.js';
import { TELEMETRY_TABLES } from '../../src/features/telemetry/telemetry-tables.js';
import { LogCapture } from '../support/capture.js';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';

/**
 * The real repository, except that one org's points carry a series id PostgreSQL refuses
 * (`1.5` into a bigint column: SQLSTATE 22P02, a data exception) — the stand-in for a value
 * that validation let through. The COPY and its failure are PostgreSQL's own.
 */
class PoisonedRepository extends IngestRepository {
  readonly commits: number[] = [];
  constructor(
    knex: Knex,
    private readonly poisonedOrg: string,
  ) {
    super(knex);
  }
  override commit(items: readonly WriteItem[], slot = 0): Promise<Set<number>> {
    this.commits.push(items.length);
    const poisoned = items.map((i) => (i.orgId === this.poisonedOrg ? { ...i, points: i.points.map((p) => ({ ...p, seriesId: p.seriesId + 0.5 })) } : i));
    return super.commit(poisoned, slot);
  }
}

describe('group commit: a value PostgreSQL refuses in a shared commit', function () {
  this.timeout(60_000);
  let url: string;
  let knex: Knex;
  let orgA: string;
  let orgB: string;

  before(async () => {
    url = await cloneDatabase();
    knex = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 4 } });
    [{ id: orgA }, { id: orgB }] = await query<{ id: string }>(url, "insert into organizations (slug, name) values ('gc-a', 'A'), ('gc-b', 'B') returning id");
  });
  after(async () => {
    await knex?.destroy();
    if (url) await dropDatabase(url);
  });

  it('fails only the request at fault; the others of its group are stored, and the failure is logged at error', async () => {
    const logs = new LogCapture();
    const repo = new PoisonedRepository(knex, orgB);
    // One connection and a long gathering window: the three writes below form one group.
    const writer = new GroupCommitWriter(repo, new PartitionsRepository(knex, TELEMETRY_TABLES), { flushIntervalMs: 200, maxFlushItems: 1000, connections: 1 }, createLogger('info', logs));
    const ts = Date.now();
    const item = (orgId: string, value: number): WriteItem => ({ orgId, points: [{ seriesId: 7, ts, value }], logs: [], events: [] });
    const outcomes = await Promise.allSettled([writer.write(item(orgA, 1)), writer.write(item(orgB, 2)), writer.write(item(orgA, 3))]);
    await writer.stop();

    expect(repo.commits[0], 'the three requests were merged into one commit').to.equal(3);
    expect(outcomes.map((o) => o.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[0] as PromiseFulfilledResult<string>).value).to.equal('stored');
    expect((outcomes[2] as PromiseFulfilledResult<string>).value).to.equal('stored');
    // The culprit, committed alone, gets the backstop's answer for its own value.
    const refused = (outcomes[1] as PromiseRejectedResult).reason as DomainError;
    expect(refused).to.be.instanceOf(DomainError);
    expect(refused.code).to.equal('bad_request');

    const stored = await query<{ org_id: string; value: number }>(url, 'select org_id, value from points where series_id = 7 order by value');
    expect(stored).to.deep.equal([
      { org_id: orgA, value: 1 },
      { org_id: orgA, value: 3 },
    ]);
    const usage = await query<{ org_id: string; points: number }>(url, 'select org_id, sum(points)::int as points from usage_daily group by org_id');
    expect(usage).to.deep.equal([{ org_id: orgA, points: 2 }]);

    const errors = logs.lines.map((l) => JSON.parse(l) as { level: string; msg: string; requests?: number; sqlstate?: string }).filter((l) => l.level === 'error');
    expect(errors.find((l) => l.requests === 3), JSON.stringify(errors)).to.include({ sqlstate: '22P02' });
    expect(errors.some((l) => l.requests === 1), 'the culprit alone is logged too').to.equal(true);
  });
});
