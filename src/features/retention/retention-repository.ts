import type { Knex } from 'knex';
import { checkedPartitionName, PartitionsRepository, type PartitionInfo } from '../../db/partitions.js';
import { SQLSTATE, sqlState } from '../../db/pg-errors.js';
import { ROW_SPAN_MS, type RetainedTable } from './retained-tables.js';

/** The columns after org_id in each table's index (see the telemetry migration): the order batches walk in. */
const ORDER: Record<RetainedTable, [string, string]> = { points: ['series_id', 'ts'], point_chunks: ['series_id', 'ts'], logs: ['ts', 'id'], events: ['ts', 'id'] };
const TYPE: Record<string, string> = { series_id: 'bigint', id: 'bigint', ts: 'timestamptz' };

/** Where a batch ended: the ORDER columns of its last row, as PostgreSQL's text (exact to the microsecond). */
export type RowKey = [string, string];

export interface DeleteBatch {
  /** Rows the batch selected: fewer than the limit means the org's expired rows are done. */
  seen: number;
  /** Rows it deleted (fewer than seen only when another session deleted some meanwhile). */
  deleted: number;
  last: RowKey | null;
}

/**
 * The retention job's SQL. Every delete here is one bounded batch (`limit` rows) so that no single
 * statement holds row locks or produces WAL for long; the service loops until a batch comes back
 * short. Partition names are checked against our naming scheme and passed as identifier bindings
 * (`??`), never pasted into SQL.
 */
export class RetentionRepository {
  constructor(private readonly knex: Knex) {}

  /** The distinct orgs with rows in one partition (PartitionsRepository.orgsIn). */
  async orgsInPartition(p: PartitionInfo<RetainedTable>): Promise<string[]> {
    return new PartitionsRepository(this.knex, [p.table]).orgsIn(p);
  }

  /**
   * Deletes the next batch of up to `limit` rows of one org in one partition: those with
   * ts < `before`, or all of them when `before` is null (an org that no longer exists).
   *
   * `after` is the key of the previous batch's last row (null at first): the batch starts there in
   * the org_id-leading index instead of at the org's first entry, so the index entries of rows
   * deleted by earlier batches are not walked again and again (a day of one org takes linear,
   * not quadratic, time). `>=` rather than `>`: rows sharing that key which the previous batch
   * did not reach are taken now, and the ones it deleted are invisible to this statement.
   *
   * The DELETE itself matches tuple ids only, so it is a TID scan. That is exact: the batch is
   * read in the same snapshot, telemetry rows are never updated, and a slot reused by a later
   * insert is invisible to that snapshot.
   */
  async deleteOrgRows(p: PartitionInfo<RetainedTable>, orgId: string, before: Date | null, limit: number, after: RowKey | null): Promise<DeleteBatch> {
    const name = checkedPartitionName(p);
    const [k1, k2] = ORDER[p.table];
    const params: Knex.RawBinding[] = [name, orgId];
    let where = 'org_id = ?';
    if (before) {
      where += ' and ts < ?';
      params.push(before);
    }
    if (after) {
      where += ` and (${k1}, ${k2}) >= (?::${TYPE[k1]}, ?::${TYPE[k2]})`;
      params.push(after[0], after[1]);
    }
    params.push(limit, name);
    const { rows } = await this.knex.raw<{ rows: { seen: string; deleted: string; k1: string | null; k2: string | null }[] }>(
      `with batch as materialized (
         select ctid as c, ${k1} as k1, ${k2} as k2 from ?? where ${where} order by ${k1}, ${k2} limit ?
       ), del as (
         delete from ?? where ctid = any(array(select c from batch)) returning 1
       ), last as (
         select k1::text, k2::text from batch order by k1 desc, k2 desc limit 1
       )
       select (select count(*) from batch) as seen, (select count(*) from del) as deleted, last.k1, last.k2
         from (select 1) one left join last on true`,
      params,
    );
    const r = rows[0];
    return { seen: Number(r.seen), deleted: Number(r.deleted), last: r.k1 === null || r.k2 === null ? null : [r.k1, r.k2] };
  }

  /**
   * Drops a whole partition, waiting at most `lockTimeoutMs` for its lock. Dropping a partition
   * locks the parent table exclusively; waiting behind a long query would queue every insert and
   * query of that table behind the DROP, so we give up instead (false) and the next run retries.
   */
  async dropPartition(p: PartitionInfo<RetainedTable>, lockTimeoutMs: number): Promise<boolean> {
    try {
      await this.knex.transaction(async (trx) => {
        await trx.raw(`set local lock_timeout = ${Math.max(1, Math.trunc(lockTimeoutMs))}`);
        await new PartitionsRepository(trx, [p.table]).drop(p);
      });
      return true;
    } catch (err) {
      if (sqlState(err) === SQLSTATE.lockNotAvailable) return false;
      throw err;
    }
  }

  /**
   * Deletes up to `limit` series of one org not seen since `before` and without a point at or
   * after it, in either tier (a chunk counts while retention keeps it: until its whole window
   * has passed `before`), so a series whose last_seen_at lags its newest retained points (the
   * writer refreshes it at most hourly) keeps its name and labels until those points expire too.
   * last_seen_at is checked again on the outer DELETE: a series the writer touched meanwhile
   * is re-evaluated on its new row version and kept.
   */
  async deleteStaleSeries(orgId: string, before: Date, limit: number): Promise<number> {
    const chunksAfter = new Date(before.getTime() - ROW_SPAN_MS.point_chunks);
    const res = await this.knex.raw<{ rowCount: number }>(
      `delete from series where org_id = ? and last_seen_at < ? and id = any(array(
         select s.id from series s
          where s.org_id = ? and s.last_seen_at < ?
            and not exists (select 1 from points p where p.org_id = s.org_id and p.series_id = s.id and p.ts >= ?)
            and not exists (select 1 from point_chunks c where c.org_id = s.org_id and c.series_id = s.id and c.ts > ?)
          limit ?))`,
      [orgId, before, orgId, before, before, chunksAfter, limit],
    );
    return res.rowCount ?? 0;
  }

  /**
   * Deletes up to `limit` stored Idempotency-Key answers created before `before`, across orgs:
   * expiry is the same for every org, and the created_at index serves exactly this scan. Tuple
   * ids only on the outer DELETE, as in deleteOrgRows.
   */
  async deleteIdempotencyKeys(before: Date, limit: number): Promise<number> {
    const res = await this.knex.raw<{ rowCount: number }>(
      'delete from ingest_idempotency where ctid = any(array(select ctid from ingest_idempotency where created_at < ? limit ?))',
      [before, limit],
    );
    return res.rowCount ?? 0;
  }
}
