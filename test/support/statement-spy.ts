import type { Knex } from 'knex';

/** A statement as a repository sent it: its SQL and parameters. */
export interface Statement {
  sql: string;
  values: unknown[];
}

/**
 * Records every statement sent on the connections of `knex`'s pool into `into` (in order), so a
 * test can EXPLAIN exactly what a repository asked. Wraps each connection's `query` once, when
 * the pool first hands it out.
 */
export function recordStatements(knex: Knex, into: Statement[]): void {
  const client = knex.client as { acquireConnection(): Promise<{ query: (sql: string, values?: unknown[]) => Promise<unknown>; __spied?: boolean }> };
  const acquire = client.acquireConnection.bind(client);
  client.acquireConnection = async () => {
    const conn = await acquire();
    if (!conn.__spied) {
      const query = conn.query.bind(conn);
      conn.query = (sql: string, values?: unknown[]) => {
        into.push({ sql, values: values ?? [] });
        return query(sql, values);
      };
      conn.__spied = true;
    }
    return conn;
  };
}
