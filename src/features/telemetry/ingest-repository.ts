import { once } from 'node:events';
import type { Knex } from 'knex';
import type { PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { EventIn, LogIn } from './telemetry-types.js';

export interface StoredPoint {
  seriesId: number;
  ts: number;
  value: number;
}

/** One request's share of a group commit. */
export interface WriteItem {
  orgId: string;
  points: StoredPoint[];
  logs: LogIn[];
  events: EventIn[];
  idempotency?: { key: string; hash: Buffer; response: unknown };
}

// COPY text format: backslash, tab, newline and carriage return are escaped; \N is NULL.
const SPECIAL = /[\\\t\n\r]/;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };
function text(v: string | null): string {
  if (v === null) return '\\N';
  return SPECIAL.test(v) ? v.replace(/[\\\t\n\r]/g, (c) => ESCAPES[c]) : v;
}
/** RFC 3339 of epoch ms; a batch repeats a few timestamps across many series, so the last one is remembered. */
function isoFormatter(): (ms: number) => string {
  let lastMs = NaN;
  let lastIso = '';
  return (ms) => (ms === lastMs ? lastIso : ((lastMs = ms), (lastIso = new Date(ms).toISOString())));
}
// jsonb refuses \u0000 and lone surrogates (which JSON.stringify writes as \udXXX escapes); an
// escape is one only after an even number of backslashes.
const BAD_ESCAPE = /(?<!\\)((?:\\\\)*)\\u(?:0000|d[89a-f][0-9a-f]{2})/gi;
function json(v: unknown): string {
  const s = JSON.stringify(v);
  return text(s.includes('\\u') ? s.replace(BAD_ESCAPE, '$1\\ufffd') : s);
}

/**
 * Streams `lines` into one COPY in chunks of about 64 KiB (with backpressure): a group commit of
 * tens of thousands of rows never becomes one multi-megabyte string.
 */
async function copy(client: PoolClient, sql: string, lines: Iterable<string>): Promise<void> {
  const stream = client.query(copyFrom(sql));
  const done = new Promise<void>((resolve, reject) => {
    stream.on('error', reject);
    stream.on('finish', resolve);
  });
  let chunk = '';
  for (const line of lines) {
    chunk += line;
    if (chunk.length >= CHUNK) {
      const more = stream.write(chunk);
      chunk = '';
      if (!more) await Promise.race([once(stream, 'drain'), done]);
    }
  }
  stream.end(chunk);
  await done;
}

const CHUNK = 65_536;

/** COPY lines of one table for every item not skipped; `iso` formats a row's timestamp. */
function* lines<T>(items: readonly WriteItem[], skip: Set<number>, rowsOf: (item: WriteItem) => readonly T[], line: (org: string, row: T, iso: (ms: number) => string) => string): Generator<string> {
  const iso = isoFormatter();
  for (let n = 0; n < items.length; n++) {
    if (skip.has(n)) continue;
    for (const row of rowsOf(items[n])) yield line(items[n].orgId, row, iso);
  }
}

const POINTS_COPY = 'copy points (org_id, series_id, ts, value) from stdin';
const pointLine = (org: string, p: StoredPoint, iso: (ms: number) => string) => `${org}\t${p.seriesId}\t${iso(p.ts)}\t${p.value}\n`;
const LOGS_COPY = 'copy logs (org_id, ts, severity_number, severity_text, body, attributes, resource, trace_id, span_id, observed_ts, event_name) from stdin';
const logLine = (org: string, l: LogIn, iso: (ms: number) => string) =>
  `${org}\t${iso(l.ts)}\t${l.severityNumber}\t${text(l.severityText)}\t${text(l.body)}\t${json(l.attributes)}\t${json(l.resource)}\t${text(l.traceId)}\t${text(l.spanId)}\t${
    l.observedTs === null ? '\\N' : new Date(l.observedTs).toISOString() // not iso(): it remembers one value, the rows' ts
  }\t${text(l.eventName)}\n`;
const EVENTS_COPY = 'copy events (org_id, ts, type, title, text, tags) from stdin';
const eventLine = (org: string, e: EventIn, iso: (ms: number) => string) => `${org}\t${iso(e.ts)}\t${text(e.type)}\t${text(e.title)}\t${text(e.text)}\t${json(e.tags)}\n`;

/**
 * The SQL of a group commit: every request of the group in one transaction — idempotency keys
 * first (a key another transaction already stored excludes its request), then one COPY per
 * table, then the usage counters. Nothing is visible, and no request is answered, before COMMIT.
 */
export class IngestRepository {
  constructor(private readonly knex: Knex) {}

  /**
   * Returns the indexes of items not written because their idempotency key was already stored.
   * `slot` (the writer connection) picks the usage counter row, so concurrent commits never wait
   * on each other's counters.
   */
  async commit(items: readonly WriteItem[], slot = 0): Promise<Set<number>> {
    const client = (await this.knex.client.acquireConnection()) as PoolClient;
    try {
      await client.query('begin');
      try {
        const duplicates = await this.claimKeys(client, items);
        const usage = new Map<string, [number, number, number]>();
        items.forEach((item, n) => {
          if (duplicates.has(n)) return;
          const u = usage.get(item.orgId) ?? [0, 0, 0];
          u[0] += item.points.length;
          u[1] += item.logs.length;
          u[2] += item.events.length;
          usage.set(item.orgId, u);
        });
        const total = (i: number) => [...usage.values()].reduce((sum, u) => sum + u[i], 0);
        if (total(0)) await copy(client, POINTS_COPY, lines(items, duplicates, (i) => i.points, pointLine));
        if (total(1)) await copy(client, LOGS_COPY, lines(items, duplicates, (i) => i.logs, logLine));
        if (total(2)) await copy(client, EVENTS_COPY, lines(items, duplicates, (i) => i.events, eventLine));
        if (usage.size) {
          // Sorted by org so that concurrent commits take the counter rows' locks in one order.
          const orgs = [...usage.keys()].sort();
          await client.query(
            `insert into usage_daily (org_id, day, slot, points, logs, events)
             select o, (now() at time zone 'utc')::date, $5, p, l, e from unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[]) as u(o, p, l, e)
             on conflict (org_id, day, slot) do update set points = usage_daily.points + excluded.points,
               logs = usage_daily.logs + excluded.logs, events = usage_daily.events + excluded.events`,
            [orgs, orgs.map((o) => usage.get(o)![0]), orgs.map((o) => usage.get(o)![1]), orgs.map((o) => usage.get(o)![2]), slot],
          );
        }
        await client.query('commit');
        return duplicates;
      } catch (err) {
        await client.query('rollback').catch(() => undefined);
        throw err;
      }
    } finally {
      await this.knex.client.releaseConnection(client);
    }
  }

  private async claimKeys(client: PoolClient, items: readonly WriteItem[]): Promise<Set<number>> {
    const keyed = items.map((item, n) => ({ item, n })).filter((x) => x.item.idempotency);
    const duplicates = new Set<number>();
    if (keyed.length === 0) return duplicates;
    const { rows } = await client.query<{ org_id: string; key: string }>(
      `insert into ingest_idempotency (org_id, key, request_hash, response)
       select * from unnest($1::uuid[], $2::text[], $3::bytea[], $4::jsonb[])
       on conflict (org_id, key) do nothing returning org_id, key`,
      [
        keyed.map((x) => x.item.orgId),
        keyed.map((x) => x.item.idempotency!.key),
        keyed.map((x) => x.item.idempotency!.hash),
        keyed.map((x) => JSON.stringify(x.item.idempotency!.response)),
      ],
    );
    const claimed = new Set(rows.map((r) => `${r.org_id}\u0000${r.key}`));
    for (const { item, n } of keyed) if (!claimed.has(`${item.orgId}\u0000${item.idempotency!.key}`)) duplicates.add(n);
    return duplicates;
  }

  async storedAnswer(orgId: string, key: string): Promise<{ hash: Buffer; response: unknown } | undefined> {
    const row = await this.knex('ingest_idempotency').where({ org_id: orgId, key }).first<{ request_hash: Buffer; response: unknown } | undefined>('request_hash', 'response');
    return row ? { hash: row.request_hash, response: row.response } : undefined;
  }
}
