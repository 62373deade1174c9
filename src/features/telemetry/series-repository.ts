import type { Knex } from 'knex';
import type { SeriesKind, SeriesMeta } from './telemetry-types.js';

export interface SeriesKey {
  name: string;
  /** Canonical JSON of the labels (keys sorted). */
  canon: string;
  /** sha256 of the stream identity: the canonical labels and the identifying part of `meta` (seriesIdentity). */
  hash: Buffer;
  meta: SeriesMeta;
}

export interface SeriesIdRow {
  id: number;
  name: string;
  labels_hash: Buffer;
}

// bigint arrives as a string unless the process installed an int8 parser.
const asNumber = (r: SeriesIdRow): SeriesIdRow => (typeof r.id === 'number' ? r : { ...r, id: Number(r.id) });

/** SQL of the series table for ingest: lookups and insert-or-get by (org, name, labels hash). */
export class SeriesRepository {
  constructor(private readonly knex: Knex) {}

  async find(orgId: string, keys: readonly SeriesKey[]): Promise<SeriesIdRow[]> {
    if (keys.length === 0) return [];
    const { rows } = await this.knex.raw<{ rows: SeriesIdRow[] }>(
      `select s.id, s.name, s.labels_hash from series s
         join unnest(?::text[], ?::bytea[]) as k(name, hash) on s.name = k.name and s.labels_hash = k.hash
        where s.org_id = ?`,
      [keys.map((k) => k.name), keys.map((k) => k.hash), orgId],
    );
    return rows.map(asNumber);
  }

  /**
   * Inserts the series that do not exist yet and returns the ids of all of them. Rows are
   * inserted in key order so that two sessions creating overlapping sets cannot deadlock; a
   * series another session inserted first is picked up by the second lookup.
   */
  async insertOrGet(orgId: string, keys: readonly SeriesKey[]): Promise<SeriesIdRow[]> {
    if (keys.length === 0) return [];
    const sorted = [...keys].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : Buffer.compare(a.hash, b.hash)));
    const { rows: inserted } = await this.knex.raw<{ rows: SeriesIdRow[] }>(
      `insert into series (org_id, name, labels, labels_hash, kind, temporality, monotonic, unit, description)
       select ?, k.name, k.labels, k.hash, k.kind, k.temporality, k.monotonic, k.unit, k.description
         from unnest(?::text[], ?::jsonb[], ?::bytea[], ?::text[], ?::text[], ?::boolean[], ?::text[], ?::text[])
              with ordinality as k(name, labels, hash, kind, temporality, monotonic, unit, description, n)
        order by k.n
       on conflict (org_id, name, labels_hash) do nothing
       returning id, name, labels_hash`,
      [
        orgId,
        sorted.map((k) => k.name),
        sorted.map((k) => k.canon),
        sorted.map((k) => k.hash),
        sorted.map((k) => k.meta.kind),
        sorted.map((k) => k.meta.temporality) as string[],
        sorted.map((k) => k.meta.monotonic),
        sorted.map((k) => k.meta.unit),
        sorted.map((k) => k.meta.description),
      ],
    );
    inserted.forEach((r, i) => (inserted[i] = asNumber(r)));
    if (inserted.length === keys.length) return inserted;
    const got = new Set(inserted.map((r) => `${r.name}\u0000${r.labels_hash.toString('hex')}`));
    const rest = sorted.filter((k) => !got.has(`${k.name}\u0000${k.hash.toString('hex')}`));
    return [...inserted, ...(await this.find(orgId, rest))];
  }

  /**
   * The kind each of these names already has: the kind of any one of its series (one suffices,
   * since a name's series share one kind; series of kind `unknown`, written before kinds were
   * recorded, say nothing about their name). Names without such series are absent.
   */
  async kinds(orgId: string, names: readonly string[]): Promise<Map<string, SeriesKind>> {
    if (names.length === 0) return new Map();
    const { rows } = await this.knex.raw<{ rows: { name: string; kind: SeriesKind }[] }>(
      `select n.name, s.kind from unnest(?::text[]) as n(name)
         cross join lateral (select kind from series where org_id = ? and name = n.name and kind <> 'unknown' limit 1) s`,
      [[...names], orgId],
    );
    return new Map(rows.map((r) => [r.name, r.kind]));
  }

  async count(orgId: string): Promise<number> {
    const { rows } = await this.knex.raw<{ rows: { n: number }[] }>('select count(*)::int as n from series where org_id = ?', [orgId]);
    return rows[0].n;
  }

  /** Marks series as seen now; retention removes series unseen for longer than the org keeps points. */
  async touch(orgId: string, ids: readonly number[]): Promise<void> {
    if (ids.length === 0) return;
    await this.knex.raw('update series set last_seen_at = now() where org_id = ? and id = any(?::bigint[])', [orgId, [...ids]]);
  }
}
