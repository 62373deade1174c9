import type { Knex } from 'knex';

/** A statement as a repository sent it: its SQL and parameters. */
export interface Statement {
  sql: string;
  values: unknown[];
}

/** A statement node-postgres runs prepared under a name: `{ name, text, values }`. */
interface NamedStatement {
  name: string;
  text: string;
  values?: unknown[];
}

/** What a pooled connection's `query` receives: SQL text, or a statement prepared under a name. */
export type SentStatement = string | NamedStatement;

/** A statement as sent, as its SQL text and parameters (a named one's text and values). */
export const asStatement = (sql: SentStatement, values?: unknown[]): Statement =>
  typeof sql === 'string' ? { sql, values: values ?? [] } : { sql: sql.text, values: sql.values ?? [] };

/**
 * Records every statement sent on the connections of `knex`'s pool into `into` (in order), so a
 * test can EXPLAIN exactly what a repository asked (a named statement as its text and values).
 * Wraps each connection's `query` once, when the pool first hands it out.
 */
export function recordStatements(knex: Knex, into: Statement[]): void {
  type Query = (sql: SentStatement, values?: unknown[]) => Promise<unknown>;
  const client = knex.client as { acquireConnection(): Promise<{ query: Query; __spied?: boolean }> };
  const acquire = client.acquireConnection.bind(client);
  client.acquireConnection = async () => {
    const conn = await acquire();
    if (!conn.__spied) {
      const query = conn.query.bind(conn);
      conn.query = (sql: SentStatement, values?: unknown[]) => {
        into.push(asStatement(sql, values));
        return query(sql, values);
      };
      conn.__spied = true;
    }
    return conn;
  };
}
