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

/**
 * Records every statement sent on the connections of `knex`'s pool into `into` (in order), so a
 * test can EXPLAIN exactly what a repository asked (a named statement as its text and values).
 * Wraps each connection's `query` once, when the pool first hands it out.
 */
export function recordStatements(knex: Knex, into: Statement[]): void {
  type Query = (sql: string | NamedStatement, values?: unknown[]) => Promise<unknown>;
  const client = knex.client as { acquireConnection(): Promise<{ query: Query; __spied?: boolean }> };
  const acquire = client.acquireConnection.bind(client);
  client.acquireConnection = async () => {
    const conn = await acquire();
    if (!conn.__spied) {
      const query = conn.query.bind(conn);
      conn.query = (sql: string | NamedStatement, values?: unknown[]) => {
        into.push(typeof sql === 'string' ? { sql, values: values ?? [] } : { sql: sql.text, values: sql.values ?? [] });
        return query(sql, values);
      };
      conn.__spied = true;
    }
    return conn;
  };
}
