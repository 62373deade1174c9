import type { Knex } from 'knex';

/** The day-partitioned telemetry tables (see the telemetry migration); shared by ingest and retention. */
export const PARTITIONED_TABLES = ['points', 'logs', 'events'] as const;
export type PartitionedTable = (typeof PARTITIONED_TABLES)[number];

export const DAY_MS = 86_400_000;

/** Start of the UTC day holding `ms`. */
export const dayStart = (ms: number): number => Math.floor(ms / DAY_MS) * DAY_MS;

/** `points_p20261128` for the UTC day starting at `day`. */
export function partitionName(table: PartitionedTable, day: number): string {
  return `${table}_p${new Date(day).toISOString().slice(0, 10).replaceAll('-', '')}`;
}

const NAME = /^(points|logs|events)_p(\d{4})(\d{2})(\d{2})$/;

/** The UTC day a partition name stands for, or null for a name that is not ours. */
export function partitionDay(name: string): number | null {
  const m = NAME.exec(name);
  return m ? Date.UTC(Number(m[2]), Number(m[3]) - 1, Number(m[4])) : null;
}

/** The partition's name, after checking it is exactly ours (it is put into SQL as an identifier). */
export function checkedPartitionName(info: PartitionInfo): string {
  if (partitionName(info.table, info.day) !== info.name) throw new Error(`not a partition name: ${info.name}`);
  return info.name;
}

export interface PartitionInfo {
  table: PartitionedTable;
  name: string;
  /** Start of its UTC day (epoch ms). */
  day: number;
}

export class PartitionsRepository {
  constructor(private readonly knex: Knex) {}

  /**
   * Creates the partitions of `days` that do not exist yet. Safe to run from several processes at
   * once: a partition another session created between our check and our CREATE is fine.
   */
  async ensure(table: PartitionedTable, days: Iterable<number>): Promise<string[]> {
    const created: string[] = [];
    for (const day of new Set([...days].map(dayStart))) {
      const name = partitionName(table, day);
      const from = new Date(day).toISOString();
      const to = new Date(day + DAY_MS).toISOString();
      try {
        const exists = await this.knex.raw<{ rows: unknown[] }>('select 1 from pg_class where relname = ? and relkind = ?', [name, 'r']);
        if (exists.rows.length) continue;
        await this.knex.raw(`create table if not exists ${name} partition of ${table} for values from ('${from}') to ('${to}')`);
        created.push(name);
      } catch (err) {
        // 42P07 duplicate table / 23505 on pg_type: a concurrent creator won the race.
        const code = (err as { code?: string }).code;
        if (code !== '42P07' && code !== '23505') throw err;
      }
    }
    return created;
  }

  async list(table?: PartitionedTable): Promise<PartitionInfo[]> {
    const { rows } = await this.knex.raw<{ rows: { parent: string; name: string }[] }>(
      `select p.relname as parent, c.relname as name
         from pg_inherits i join pg_class c on c.oid = i.inhrelid join pg_class p on p.oid = i.inhparent
        where p.relname = any(?) order by c.relname`,
      [table ? [table] : [...PARTITIONED_TABLES]],
    );
    const out: PartitionInfo[] = [];
    for (const r of rows) {
      const day = partitionDay(r.name);
      if (day !== null) out.push({ table: r.parent as PartitionedTable, name: r.name, day });
    }
    return out;
  }

  async drop(info: PartitionInfo): Promise<void> {
    await this.knex.raw(`drop table if exists ${checkedPartitionName(info)}`);
  }
}
