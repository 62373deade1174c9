import type { Knex } from 'knex';

/*
 * Day partitions of range-partitioned tables: naming, creating ahead, listing, dropping. Which
 * tables are partitioned is the owning feature's knowledge (telemetry's points, logs, events):
 * it hands its list to the repository, so this kit never names a feature's table.
 */

export const DAY_MS = 86_400_000;

/** Start of the UTC day holding `ms`. */
export const dayStart = (ms: number): number => Math.floor(ms / DAY_MS) * DAY_MS;

/** `points_p20261128` for the UTC day starting at `day`. */
export function partitionName(table: string, day: number): string {
  return `${table}_p${new Date(day).toISOString().slice(0, 10).replaceAll('-', '')}`;
}

const NAME = /^[a-z][a-z0-9_]*_p(\d{4})(\d{2})(\d{2})$/;

/** The UTC day a partition name stands for, or null for a name that is not ours. */
export function partitionDay(name: string): number | null {
  const m = NAME.exec(name);
  return m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : null;
}

/** The partition's name, after checking it is exactly ours (it is put into SQL as an identifier). */
export function checkedPartitionName(info: PartitionInfo): string {
  if (partitionName(info.table, info.day) !== info.name) throw new Error(`not a partition name: ${info.name}`);
  return info.name;
}

export interface PartitionInfo<T extends string = string> {
  table: T;
  name: string;
  /** Start of its UTC day (epoch ms). */
  day: number;
}

/** `T`: the names of the partitioned tables this repository manages. */
export class PartitionsRepository<T extends string = string> {
  constructor(
    private readonly knex: Knex,
    private readonly tables: readonly T[],
  ) {}

  /** The partitioned tables this repository manages. */
  get partitionedTables(): readonly T[] {
    return this.tables;
  }

  /**
   * Creates the partitions of `days` that do not exist yet. Safe to run from several processes at
   * once: a partition another session created between our check and our CREATE is fine.
   */
  async ensure(table: T, days: Iterable<number>): Promise<string[]> {
    if (!this.tables.includes(table)) throw new Error(`not a partitioned table of this repository: ${table}`);
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

  async list(table?: T): Promise<PartitionInfo<T>[]> {
    const { rows } = await this.knex.raw<{ rows: { parent: string; name: string }[] }>(
      `select p.relname as parent, c.relname as name
         from pg_inherits i join pg_class c on c.oid = i.inhrelid join pg_class p on p.oid = i.inhparent
        where p.relname = any(?) order by c.relname`,
      [table ? [table] : [...this.tables]],
    );
    const out: PartitionInfo<T>[] = [];
    for (const r of rows) {
      const day = partitionDay(r.name);
      if (day !== null && partitionName(r.parent, day) === r.name) out.push({ table: r.parent as T, name: r.name, day });
    }
    return out;
  }

  async drop(info: PartitionInfo): Promise<void> {
    await this.knex.raw(`drop table if exists ${checkedPartitionName(info)}`);
  }
}
