import { once } from 'node:events';
import type { Knex } from 'knex';
import type { PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { withPooledConnection } from '../../db/database.js';
import { CHUNK_WINDOW_MS } from './telemetry-tables.js';
import type { EventIn, LogIn } from './telemetry-types.js';

/** A point's time and value; its series id is in WriteItem.seriesIds, at the same index. */
export interface StoredPoint {
  ts: number;
  value: number;
}

/**
 * One request's share of a group commit. The points and their series ids are parallel arrays, so
 * the request's own point objects are written as they are, without a stored copy of each.
 */
export interface WriteItem {
  orgId: string;
  points: readonly StoredPoint[];
  /** Series id of points[i]; as long as points. */
  seriesIds: readonly number[];
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
 * Streams `chunks` (COPY data of about 64 KiB each: text, or binary for the points) into one COPY
 * with backpressure, so a group commit of tens of thousands of rows never becomes one
 * multi-megabyte string. Should building the data throw, the COPY is abandoned (CopyFail), which
 * leaves the connection able to roll back.
 */
async function copy(client: PoolClient, sql: string, chunks: Iterable<string | Buffer>): Promise<void> {
  const stream = client.query(copyFrom(sql));
  const done = new Promise<void>((resolve, reject) => {
    stream.on('error', reject);
    stream.on('finish', resolve);
  });
  let last: string | Buffer = '';
  try {
    for (const chunk of chunks) {
      if (last.length && !stream.write(last)) await Promise.race([once(stream, 'drain'), done]);
      last = chunk;
    }
  } catch (err) {
    stream.destroy(err as Error);
    await done.catch(() => undefined);
    throw err;
  }
  stream.end(last);
  await done;
}

const CHUNK = 65_536;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** COPY text of one table for every item not skipped, in chunks of about CHUNK characters; `line` formats a row (`iso`: its timestamp). */
function* chunks<T>(items: readonly WriteItem[], skip: ReadonlySet<number>, rowsOf: (item: WriteItem) => readonly T[], line: (org: string, row: T, iso: (ms: number) => string) => string): Generator<string> {
  const iso = isoFormatter();
  let chunk = '';
  for (let n = 0; n < items.length; n++) {
    if (skip.has(n)) continue;
    const org = items[n].orgId;
    const rows = rowsOf(items[n]);
    for (let i = 0; i < rows.length; i++) {
      chunk += line(org, rows[i], iso);
      if (chunk.length >= CHUNK) {
        yield chunk;
        chunk = '';
      }
    }
  }
  if (chunk) yield chunk;
}

// Binary COPY (PostgreSQL's documented format): a signature, flags and header extension length,
// then per row a field count and each field as length + value in network byte order; -1 ends it.
const BINARY_SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const BINARY_HEADER = 19;
const POINT_ROW = 58; // 2 (fields) + 4+16 (uuid) + 4+8 (bigint) + 4+8 (timestamptz) + 4+8 (double)
const TWO_32 = 4_294_967_296;
/** 2000-01-01T00:00:00Z, PostgreSQL's timestamp epoch, in Unix milliseconds. */
const PG_EPOCH_MS = 946_684_800_000;
/** The largest time a JavaScript Date holds (what the text form could write), in milliseconds either side of 1970. */
const MAX_DATE_MS = 8.64e15;

/** The 16 bytes of a uuid in its text form as four 32-bit words; throws for anything else. */
function uuidWords(id: string): [number, number, number, number] {
  if (!UUID.test(id)) throw new Error(`org id ${JSON.stringify(id)} is not a uuid`);
  const hex = id.replaceAll('-', '');
  return [0, 8, 16, 24].map((i) => Number.parseInt(hex.slice(i, i + 8), 16)) as [number, number, number, number];
}

/**
 * One binary COPY row of `points`: the org's uuid, the series id (int8), the time (int8
 * microseconds since 2000-01-01 UTC) and the value (float8). What the text form stored is stored:
 * the time is that of `new Date(ts)` (whole milliseconds, truncated), -0 is written as 0 and every
 * NaN as the one NaN (the text form wrote "0" and "NaN"). No number becomes text and PostgreSQL
 * parses none.
 */
function writePointRow(view: DataView, o: number, org: readonly number[], seriesId: number, ts: number, value: number): void {
  if (!Number.isSafeInteger(seriesId)) throw new Error(`series id ${String(seriesId)} is not an integer`);
  if (typeof ts !== 'number' || !(Math.abs(ts) <= MAX_DATE_MS)) throw new RangeError(`invalid point time ${String(ts)}`);
  if (typeof value !== 'number') throw new TypeError(`point value ${String(value)} is not a number`);
  view.setInt16(o, 4);
  view.setInt32(o + 2, 16);
  view.setUint32(o + 6, org[0]);
  view.setUint32(o + 10, org[1]);
  view.setUint32(o + 14, org[2]);
  view.setUint32(o + 18, org[3]);
  view.setInt32(o + 22, 8);
  const idHigh = Math.floor(seriesId / TWO_32);
  view.setInt32(o + 26, idHigh);
  view.setUint32(o + 30, seriesId - idHigh * TWO_32);
  view.setInt32(o + 34, 8);
  // Microseconds = 1000 × the milliseconds since 2000, in two halves so no product passes 2^53.
  const ms = Math.trunc(ts) - PG_EPOCH_MS;
  const msHigh = Math.floor(ms / TWO_32);
  const lowUs = (ms - msHigh * TWO_32) * 1000;
  const carry = Math.floor(lowUs / TWO_32);
  view.setInt32(o + 38, msHigh * 1000 + carry);
  view.setUint32(o + 42, lowUs - carry * TWO_32);
  view.setInt32(o + 46, 8);
  view.setFloat64(o + 50, value !== value ? NaN : value === 0 ? 0 : value);
}

/**
 * The points' COPY data in PostgreSQL's binary format (the hot path: a row per point), in
 * buffers of about CHUNK bytes, the header in the first and the trailer in the last. The start of
 * every chunk window the points fall in is added to `windows`.
 */
function* pointChunks(items: readonly WriteItem[], skip: ReadonlySet<number>, windows: Set<number>): Generator<Buffer> {
  const rowsPerChunk = Math.floor(CHUNK / POINT_ROW);
  let buf = Buffer.allocUnsafe(BINARY_HEADER + rowsPerChunk * POINT_ROW);
  let view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  BINARY_SIGNATURE.copy(buf, 0);
  view.setInt32(11, 0); // flags
  view.setInt32(15, 0); // header extension length
  let o = BINARY_HEADER;
  for (let n = 0; n < items.length; n++) {
    if (skip.has(n)) continue;
    const { points, seriesIds } = items[n];
    if (seriesIds.length !== points.length) throw new Error(`${points.length} points with ${seriesIds.length} series ids`);
    const org = uuidWords(items[n].orgId);
    // Points of a request share a window or a few: a point within the last one costs two comparisons.
    let from = Infinity;
    let to = -Infinity;
    for (let i = 0; i < points.length; i++) {
      if (o + POINT_ROW > buf.length) {
        yield buf.subarray(0, o);
        buf = Buffer.allocUnsafe(rowsPerChunk * POINT_ROW + 2);
        view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
        o = 0;
      }
      const p = points[i];
      if (!(p.ts >= from && p.ts < to)) {
        from = Math.floor(p.ts / CHUNK_WINDOW_MS) * CHUNK_WINDOW_MS;
        to = from + CHUNK_WINDOW_MS;
        windows.add(from);
      }
      writePointRow(view, o, org, seriesIds[i], p.ts, p.value);
      o += POINT_ROW;
    }
  }
  if (o + 2 > buf.length) {
    yield buf.subarray(0, o);
    buf = Buffer.allocUnsafe(2);
    view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    o = 0;
  }
  view.setInt16(o, -1);
  yield buf.subarray(0, o + 2);
}

const POINTS_COPY = 'copy points (org_id, series_id, ts, value) from stdin (format binary)';
const LOGS_COPY = 'copy logs (org_id, ts, severity_number, severity_text, body, attributes, resource, trace_id, span_id, observed_ts, event_name) from stdin';
const logLine = (org: string, l: LogIn, iso: (ms: number) => string) =>
  `${org}\t${iso(l.ts)}\t${l.severityNumber}\t${text(l.severityText)}\t${text(l.body)}\t${json(l.attributes)}\t${json(l.resource)}\t${text(l.traceId)}\t${text(l.spanId)}\t${
    l.observedTs === null ? '\\N' : new Date(l.observedTs).toISOString() // not iso(): it remembers one value, the rows' ts
  }\t${text(l.eventName)}\n`;
const EVENTS_COPY = 'copy events (org_id, ts, type, title, text, tags) from stdin';
const eventLine = (org: string, e: EventIn, iso: (ms: number) => string) => `${org}\t${iso(e.ts)}\t${text(e.type)}\t${text(e.title)}\t${text(e.text)}\t${json(e.tags)}\n`;

const NO_DUPLICATES: ReadonlySet<number> = new Set<number>();

/**
 * Counts this commit in the claims of compaction runs (point_window_claims) of the windows given
 * (their starts, epoch ms), in the transaction that inserted the points: a run compacting one of
 * them sees the claim changed and does not drop the window with the points unread
 * (CompactionRepository.dropWindow). Without a claim (nearly always) it changes nothing. It must
 * come after the points' COPY, in READ COMMITTED (BEGIN): its own snapshot, taken once the rows are
 * in their window, sees any claim made before a run took its snapshot, and a run that claimed the
 * window later has waited for this transaction (snapshotAfterWriters). Times written in as
 * numbers: it shares a simple query with `commit`.
 */
function markLateWindows(windows: ReadonlySet<number>): string {
  const starts = [...windows].map((w) => {
    if (!Number.isSafeInteger(w)) throw new Error(`window start ${w} is not a time`);
    return `to_timestamp(${w / 1000})`;
  });
  // The claims locked in window order: two commits with late points in the same claimed windows
  // wait for each other instead of deadlocking.
  return (
    'update point_window_claims c set late = c.late + 1 from (select window_start from point_window_claims ' +
    `where window_start in (${starts.join(', ')}) order by window_start for update) l where c.window_start = l.window_start`
  );
}

/**
 * Every group commit runs in READ COMMITTED whatever the server's default_transaction_isolation:
 * markLateWindows must read the claims with a snapshot taken after the COPY routed its rows into
 * their windows, which only a statement-level snapshot gives.
 */
const BEGIN = 'begin isolation level read committed';
const count = (n: number): string => {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`usage count ${n} is not a count`);
  return String(n);
};

/**
 * The usage counters' upsert with its values written in (it shares a simple query with `commit`,
 * which takes no parameters): org ids checked as uuids, counts as integers. Sorted by org so that
 * concurrent commits take the counter rows' locks in one order.
 */
function usageUpsert(usage: Map<string, [number, number, number]>, slot: number): string {
  const rows: string[] = [];
  for (const org of [...usage.keys()].sort()) {
    if (!UUID.test(org)) throw new Error(`org id ${JSON.stringify(org)} is not a uuid`);
    const [p, l, e] = usage.get(org)!;
    rows.push(`('${org}'::uuid, (now() at time zone 'utc')::date, ${count(slot)}, ${count(p)}::bigint, ${count(l)}::bigint, ${count(e)}::bigint)`);
  }
  return (
    `insert into usage_daily (org_id, day, slot, points, logs, events) values ${rows.join(', ')} ` +
    'on conflict (org_id, day, slot) do update set points = usage_daily.points + excluded.points, ' +
    'logs = usage_daily.logs + excluded.logs, events = usage_daily.events + excluded.events'
  );
}

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
    return withPooledConnection<Set<number>, PoolClient>(this.knex, async (client) => {
      // Round trips: `begin` goes with the first statement, and the late-point count of claimed
      // windows and the usage counters with `commit` (several statements in one simple query), so
      // a group commit of points is two of them: `begin; copy …` and `update …; insert …; commit`. After an error in a statement, PostgreSQL skips
      // the rest of its query string (the commit too) and the transaction is rolled back below.
      let begin = `${BEGIN}; `;
      try {
        let duplicates: ReadonlySet<number> = NO_DUPLICATES;
        if (items.some((item) => item.idempotency)) {
          // The keys' statement has parameters (the extended protocol: one statement per message).
          await client.query(BEGIN);
          begin = '';
          duplicates = await this.claimKeys(client, items);
        }
        const usage = new Map<string, [number, number, number]>();
        let points = 0;
        let logs = 0;
        let events = 0;
        for (let n = 0; n < items.length; n++) {
          if (duplicates.has(n)) continue;
          const item = items[n];
          let u = usage.get(item.orgId);
          if (!u) usage.set(item.orgId, (u = [0, 0, 0]));
          u[0] += item.points.length;
          u[1] += item.logs.length;
          u[2] += item.events.length;
          points += item.points.length;
          logs += item.logs.length;
          events += item.events.length;
        }
        const windows = new Set<number>();
        if (points) {
          await copy(client, begin + POINTS_COPY, pointChunks(items, duplicates, windows));
          begin = '';
        }
        if (logs) {
          await copy(client, begin + LOGS_COPY, chunks(items, duplicates, (i) => i.logs, logLine));
          begin = '';
        }
        if (events) {
          await copy(client, begin + EVENTS_COPY, chunks(items, duplicates, (i) => i.events, eventLine));
          begin = '';
        }
        await client.query(`${begin}${windows.size ? `${markLateWindows(windows)}; ` : ''}${usage.size ? `${usageUpsert(usage, slot)}; ` : ''}commit`);
        return duplicates === NO_DUPLICATES ? new Set() : (duplicates as Set<number>);
      } catch (err) {
        await client.query('rollback').catch(() => undefined);
        throw err;
      }
    });
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
