import pg from 'pg';

/*
 * Every data table's row count and content checksum, computed by PostgreSQL alone (md5 over the
 * rows' text, sorted), independently of the backup feature's own hasher: a restore that lost,
 * added or changed one row gives a different map.
 */
export async function tableChecksums(url: string): Promise<Map<string, { rows: number; md5: string }>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query("set timezone = 'UTC'");
    const { rows: tables } = await c.query<{ name: string }>(
      `select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = current_schema() and c.relkind in ('r', 'p') and not c.relispartition
          and c.relname not like 'knex\\_migrations%' order by 1`,
    );
    const out = new Map<string, { rows: number; md5: string }>();
    for (const { name } of tables) {
      const r = await c.query<{ rows: number; md5: string | null }>(`select count(*)::int as rows, md5(coalesce(string_agg(t::text, E'\\n' order by t::text), '')) as md5 from "${name}" t`);
      out.set(name, { rows: r.rows[0].rows, md5: r.rows[0].md5 ?? '' });
    }
    return out;
  } finally {
    await c.end();
  }
}
