import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
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
 * A statement sent prepared is prepared again under a name of its own and explained by EXPLAIN
 * EXECUTE with its values as literals, so the plan is the one the session's plan_cache_mode makes
 * of a prepared statement (a generic plan under force_generic_plan), not a plan for the values.
 */
export async function explainAnalyzed(knex: Knex, st: Statement): Promise<PlanNode> {
  type Conn = {
    query(sql: string | { name: string; text: string; values: unknown[] }, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
    escapeLiteral(s: string): string;
  };
  const client = knex.client as { acquireConnection(): Promise<Conn>; releaseConnection(c: unknown): Promise<void> };
  const conn = await client.acquireConnection();
  const planOf = (rows: Record<string, unknown>[]) => (rows[0]['QUERY PLAN'] as { Plan: PlanNode }[])[0].Plan;
  try {
    if (!st.prepared) return planOf((await conn.query(`explain (analyze, format json) ${st.sql}`, st.values)).rows);
    const name = `explained_${randomUUID().replaceAll('-', '')}`;
    await conn.query({ name, text: st.sql, values: st.values });
    try {
      // (EXECUTE takes no bind parameters: the values as literals, each typed by the statement's parameter.)
      const args = st.values.map((v) => (v === null || v === undefined ? 'null' : conn.escapeLiteral(valueText(v))));
      return planOf((await conn.query(`explain (analyze, format json) execute ${name}${args.length ? `(${args.join(', ')})` : ''}`)).rows);
    } finally {
      await conn.query(`deallocate ${name}`);
    }
  } finally {
    await client.releaseConnection(conn);
  }
}

/** A parameter's text as node-postgres sends it (the kinds statements here pass: text, numbers, times, arrays, bytes). */
function valueText(v: unknown): string {
  if (v instanceof Date) return v.toISOString();
  if (Buffer.isBuffer(v)) return `\\x${v.toString('hex')}`;
  if (Array.isArray(v)) return `{${v.map((x) => (x === null || x === undefined ? 'NULL' : `"${valueText(x).replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`)).join(',')}}`;
  return String(v);
}
