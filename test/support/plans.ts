import type { Knex } from 'knex';
import { withPooledConnection } from '../../src/db/database.js';
import type { Statement } from './statement-spy.js';

/** A node of an EXPLAIN (FORMAT JSON) plan: the fields tests read. */
export interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'CTE Name'?: string;
  'Subplan Name'?: string;
  'Scan Direction'?: string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  Plans?: PlanNode[];
}

/** The node and every node below it. */
export const planNodes = (n: PlanNode): PlanNode[] => [n, ...(n.Plans ?? []).flatMap(planNodes)];

/**
 * The executed plan (EXPLAIN (ANALYZE, FORMAT JSON)) of a statement as a repository sent it
 * (statement-spy.ts), on a connection of `knex`'s pool: the session settings it runs with there.
 */
export async function explainAnalyzed(knex: Knex, st: Statement): Promise<PlanNode> {
  return withPooledConnection(knex, async (conn) => {
    const { rows } = await conn.query<{ 'QUERY PLAN': { Plan: PlanNode }[] }>(`explain (analyze, format json) ${st.sql}`, st.values);
    return rows[0]['QUERY PLAN'][0].Plan;
  });
}
