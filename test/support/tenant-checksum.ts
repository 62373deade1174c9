import pg from 'pg';

/**
 * Checksums of every row that belongs to one tenant, computed in SQL, to prove that a request
 * changed nothing of theirs. Per table: the column that ties a row to the tenant, either the org
 * id or one of its members' user ids (users are instance-wide; "the tenant's users" are the
 * members captured before the requests, so a removed membership still counts).
 */
export const TENANT_ROWS: Record<string, { column: string; by: 'org' | 'members' }> = {
  organizations: { column: 'id', by: 'org' },
  memberships: { column: 'org_id', by: 'org' },
  invitations: { column: 'org_id', by: 'org' },
  api_keys: { column: 'org_id', by: 'org' },
  audit_log: { column: 'org_id', by: 'org' },
  users: { column: 'id', by: 'members' },
  sessions: { column: 'user_id', by: 'members' },
  user_totp: { column: 'user_id', by: 'members' },
  recovery_codes: { column: 'user_id', by: 'members' },
  series: { column: 'org_id', by: 'org' },
  points: { column: 'org_id', by: 'org' },
  point_chunks: { column: 'org_id', by: 'org' },
  logs: { column: 'org_id', by: 'org' },
  events: { column: 'org_id', by: 'org' },
  usage_daily: { column: 'org_id', by: 'org' },
  ingest_idempotency: { column: 'org_id', by: 'org' },
  ingest_rejections: { column: 'org_id', by: 'org' },
  reports: { column: 'org_id', by: 'org' },
  mail_log: { column: 'org_id', by: 'org' },
  heartbeats: { column: 'org_id', by: 'org' },
  notification_channels: { column: 'org_id', by: 'org' },
  notifications: { column: 'org_id', by: 'org' },
  notification_attempts: { column: 'org_id', by: 'org' },
  alert_rules: { column: 'org_id', by: 'org' },
  silences: { column: 'org_id', by: 'org' },
  maintenance_windows: { column: 'org_id', by: 'org' },
  // org_id is nullable in these two: a row without one is Sentinel's own (instance-level) alert
  // or its group, which belongs to no tenant (only superadmins and alerts.instance_channels see
  // it); a tenant's rows are exactly those with its org_id.
  alerts: { column: 'org_id', by: 'org' },
  alert_groups: { column: 'org_id', by: 'org' },
};

/** Tables that hold no tenant data (say why when adding one). */
export const NOT_TENANT_DATA: Record<string, string> = {
  knex_migrations: 'migration bookkeeping',
  knex_migrations_lock: 'migration bookkeeping',
  job_runs: "the instance's job runs (no org in them); only superadmins see them",
  queue_tasks: 'the durable queue: work to do, no route serves its rows',
  point_window_claims: "compaction's bookkeeping: the windows of points a run is compacting (no org in them)",
};

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/**
 * Tables of the schema that neither map above mentions: a new table must be scoped here first.
 * Partitions (points_p20261128 …) are covered by their partitioned parent.
 */
export async function tablesWithoutTenantScope(url: string): Promise<string[]> {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{ table_name: string }>(
      `select c.relname as table_name from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = current_schema() and c.relkind in ('r', 'p') and not c.relispartition order by 1`,
    );
    return rows.map((r) => r.table_name).filter((n) => !(n in TENANT_ROWS) && !(n in NOT_TENANT_DATA));
  });
}

/** Per table: `<row count>:<md5 of the rows as JSON, in a fixed order>`. */
export async function tenantChecksum(url: string, orgId: string, userIds: readonly string[]): Promise<Record<string, string>> {
  return withClient(url, async (c) => {
    const out: Record<string, string> = {};
    for (const [table, { column, by }] of Object.entries(TENANT_ROWS)) {
      const where = by === 'org' ? `t.${column} = $1::uuid` : `t.${column} = any($1::uuid[])`;
      // Ordered by the row's own text: deterministic whatever the table's key.
      const { rows } = await c.query<{ n: number; sum: string }>(
        `select count(*)::int as n, md5(coalesce(json_agg(t order by t::text)::text, '')) as sum from ${table} t where ${where}`,
        [by === 'org' ? orgId : [...userIds]],
      );
      out[table] = `${rows[0].n}:${rows[0].sum}`;
    }
    return out;
  });
}
