import type { Knex } from 'knex';
import type { ReportData } from './reports-schemas.js';

export interface ReportRow {
  org_id: string;
  id: string;
  kind: string;
  /** YYYY-MM-DD: selected as text (see select), never a JS Date at local midnight. */
  date: string;
  data: ReportData;
  created_at: Date;
}

// `date` as the text PostgreSQL stores.
const COLUMNS = ['org_id', 'id', 'kind', 'date', 'data', 'created_at'] as const;
const select = (knex: Knex) => [...COLUMNS.filter((c) => c !== 'date'), knex.raw(`to_char(date, 'YYYY-MM-DD') as date`)];

/** The stored reports; every method is scoped to one organization. */
export class ReportsRepository {
  constructor(private readonly knex: Knex) {}

  /** Inserts unless the org already has this kind for this date; answers the stored row and whether it is new. */
  async insertOnce(orgId: string, kind: string, date: string, data: ReportData): Promise<{ row: ReportRow; created: boolean }> {
    const inserted = await this.knex('reports')
      .insert({ org_id: orgId, kind, date, data: JSON.stringify(data) })
      .onConflict(['org_id', 'kind', 'date'])
      .ignore()
      .returning(select(this.knex) as string[]);
    if (inserted.length) return { row: inserted[0] as ReportRow, created: true };
    const row = await this.findByDate(orgId, kind, date);
    if (!row) throw new Error(`report ${kind} ${date} neither inserted nor found`);
    return { row, created: false };
  }

  /**
   * Marks the report as being mailed; true for exactly one caller (concurrent job runs), who
   * sends it. `release` undoes it when the hand-over to the mailer failed, so the next run retries.
   */
  async claimMailing(orgId: string, id: string): Promise<boolean> {
    return (await this.knex('reports').where({ org_id: orgId, id }).whereNull('emailed_at').update({ emailed_at: this.knex.fn.now() })) === 1;
  }

  async releaseMailing(orgId: string, id: string): Promise<void> {
    await this.knex('reports').where({ org_id: orgId, id }).update({ emailed_at: null });
  }

  /**
   * The latest date (YYYY-MM-DD) with a report of this kind on or before `onOrBefore`: the org's,
   * or with `orgId` null any org's (the daily job's progress, for an org with none yet).
   */
  async latestDate(orgId: string | null, kind: string, onOrBefore: string): Promise<string | null> {
    const q = this.knex('reports').where({ kind }).andWhere('date', '<=', onOrBefore);
    if (orgId !== null) q.andWhere({ org_id: orgId });
    const row = (await q.first(this.knex.raw(`to_char(max(date), 'YYYY-MM-DD') as date`))) as { date: string | null } | undefined;
    return row?.date ?? null;
  }

  async findByDate(orgId: string, kind: string, date: string): Promise<ReportRow | undefined> {
    return this.knex('reports').where({ org_id: orgId, kind, date }).first(select(this.knex)) as Promise<ReportRow | undefined>;
  }

  async find(orgId: string, id: string): Promise<ReportRow | undefined> {
    return this.knex('reports').where({ org_id: orgId, id }).first(select(this.knex)) as Promise<ReportRow | undefined>;
  }

  /** Newest date first; `after` is the (date, id) of the previous page's last row. */
  async list(orgId: string, limit: number, after?: { date: string; id: string }): Promise<ReportRow[]> {
    const q = this.knex('reports').where({ org_id: orgId }).orderBy([{ column: 'reports.date', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(limit).select(select(this.knex));
    if (after) q.whereRaw('(date, id) < (?::date, ?::uuid)', [after.date, after.id]);
    return q as unknown as Promise<ReportRow[]>;
  }
}
