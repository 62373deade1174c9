import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { toStorableRecord, toStorableText } from '../../core/text.js';
import type { SeriesKey, SeriesRepository } from './series-repository.js';
import { NATIVE_META, type SeriesKind, type SeriesMeta } from './telemetry-types.js';

/**
 * Cache entries live this long; a series is looked up again and its last_seen_at refreshed when
 * it comes back. Retention removes series unseen for longer than the org's metrics retention (at
 * least a day), so a cached id always names a series that exists.
 */
const TOUCH_INTERVAL_MS = 3_600_000;
const COUNT_TTL_MS = 60_000;


export interface Resolution {
  /** Series id per input point, or null for a point whose new series was refused. */
  ids: (number | null)[];
  /** Indexes (into the input) of the points refused because their series would pass max_series. */
  refused: number[];
  /**
   * Indexes of the points refused because their name already has series of another kind (a
   * counter `x_count` beside a histogram `x`'s `x_count`), with the kind the name has.
   */
  conflicts: { index: number; name: string; kind: SeriesKind; existing: SeriesKind }[];
}

export interface SeriesPoint {
  name: string;
  labels: Record<string, string>;
  meta?: SeriesMeta;
  /** The data point the row belongs to (PointIn.point); absent: a data point of its own. */
  point?: number;
}

/** A native gauge's descriptor as far as identity goes (its description does not identify). */
const identifiesAsNative = (meta: SeriesMeta): boolean => meta.kind === NATIVE_META.kind && meta.temporality === null && meta.unit === '';

/**
 * The identity of a stream as text: its canonical labels and, unless it is a native gauge (the
 * identity series had before descriptors existed, so their hashes still match), its kind,
 * temporality and unit.
 */
export function seriesIdentity(canon: string, meta: SeriesMeta): string {
  if (identifiesAsNative(meta)) return canon;
  return `${canon}\u0000${meta.kind}\u0000${meta.temporality ?? ''}\u0000${meta.unit}`;
}

/** Canonical form of a label set: keys sorted, so {a,b} and {b,a} are one series. */
export function canonicalLabels(labels: Record<string, string>): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return '{}';
  if (keys.length > 1) keys.sort();
  let out = '{';
  for (let i = 0; i < keys.length; i++) out += (i ? ',' : '') + JSON.stringify(keys[i]) + ':' + JSON.stringify(labels[keys[i]]);
  return out + '}';
}

/**
 * The in-process cache key of a label set: the same for every order of the same labels, distinct
 * for distinct label sets (each key and value is prefixed by its length, so no character of theirs
 * can make two sets collide). Cheaper than canonicalLabels (no JSON escaping, no sort when the
 * keys already come in order, as a client's usually do); canonicalLabels is computed only for
 * series not in the cache.
 */
export function labelsCacheKey(labels: Record<string, string>): string {
  let out = '';
  let prev = '';
  for (const k in labels) {
    if (k < prev) return sortedLabelsKey(labels);
    prev = k;
    const v = labels[k];
    out += `${k.length}:${k}${v.length}:${v}`;
  }
  return out;
}

function sortedLabelsKey(labels: Record<string, string>): string {
  const keys = Object.keys(labels).sort();
  let out = '';
  for (const k of keys) {
    const v = labels[k];
    out += `${k.length}:${k}${v.length}:${v}`;
  }
  return out;
}

/**
 * The cache key of a stream is this head (its org's tag, name and the identifying part of its
 * descriptor) followed by labelsCacheKey of its labels (see seriesIdentity). Short keys hash
 * faster: the org is a small number, not its uuid.
 */
function streamCacheKeyHead(orgTag: number, name: string, meta: SeriesMeta): string {
  const head = `${orgTag}\u0000${name.length}:${name}`;
  if (identifiesAsNative(meta)) return head;
  return `${head}\u0000${meta.kind}\u0000${meta.temporality ?? ''}\u0000${meta.unit.length}:${meta.unit}`;
}

interface Missing {
  at: number[];
  meta: SeriesMeta;
  name: string;
  canon: string;
}

/**
 * A label set seen in one resolve call: the series id it was resolved to, or the entry of the
 * series it waits for; `next` leads, by a further label's key and then its value, to longer sets.
 */
interface LabelNode {
  id?: number;
  missing?: Missing;
  next: Map<string, Map<string, LabelNode>> | null;
}

const newLabelNode = (): LabelNode => ({ id: undefined, missing: undefined, next: null });

/**
 * The node of `labels` under `root`, made if new; null when its keys are not in ascending order
 * (the caller then takes the cache key, which sorts them). In ascending order a set has one path
 * and distinct sets have distinct paths (a path ends at the node of its last label), so a node
 * stands for exactly one label set, whatever the strings hold.
 */
function labelNodeOf(root: LabelNode, labels: Record<string, string>): LabelNode | null {
  let node = root;
  let prev = '';
  for (const k in labels) {
    if (k < prev) return null;
    prev = k;
    const v = labels[k];
    let byKey = node.next;
    if (byKey === null) node.next = byKey = new Map();
    let byValue = byKey.get(k);
    if (byValue === undefined) byKey.set(k, (byValue = new Map()));
    let child = byValue.get(v);
    if (child === undefined) byValue.set(v, (child = newLabelNode()));
    node = child;
  }
  return node;
}

/**
 * Series ids for ingest: an in-process LRU in front of the series table, the org's series
 * limit checked before anything new is created, and last_seen_at refreshed at most hourly.
 * New series of one org are created one request at a time (a per-org chain), so concurrent
 * requests cannot together pass the limit; the count is per process (documented).
 */
export class SeriesStore {
  private readonly cache: LRUCache<string, number>;
  private readonly counts = new Map<string, { n: number; at: number }>();
  private readonly chains = new Map<string, Promise<unknown>>();
  /** A number per organization seen, for short cache keys. */
  private readonly orgTags = new Map<string, number>();

  constructor(
    private readonly repo: SeriesRepository,
    opts: { cacheSize: number },
    private readonly now: () => number = Date.now,
  ) {
    this.cache = new LRUCache({ max: opts.cacheSize, ttl: TOUCH_INTERVAL_MS, updateAgeOnGet: false, perf: { now } });
  }

  /** Series ids in the cache: the series this process wrote to recently. */
  get cachedSeries(): number {
    return this.cache.size;
  }

  /**
   * `atomic` (the native API, all or nothing): when anything is refused, no series is created,
   * since the whole batch will be refused.
   */
  async resolve(orgId: string, points: readonly SeriesPoint[], maxSeries: number, atomic = false): Promise<Resolution> {
    const now = this.now();
    const ids: (number | null)[] = new Array<number | null>(points.length).fill(null);
    /** Cache key → the input indexes needing that series, and what identifies it. */
    const missing = new Map<string, Missing>();
    let orgTag = this.orgTags.get(orgId);
    if (orgTag === undefined) this.orgTags.set(orgId, (orgTag = this.orgTags.size));
    // A batch names each of its series many times (a point per timestamp): the LRU (recency, ttl)
    // is asked once per series of the batch. A point's labels are walked through a tree of the
    // batch's label sets (by key, then value, in the order sent) to the node of that set, which
    // holds what the first point with it was told: no cache key is built for the later ones.
    const seen = new Map<string, number>();
    const trees = new Map<string, LabelNode>();
    // Points of one stream name and descriptor usually come in runs: the key's head and tree are looked up once per run.
    let headName: string | null = null;
    let headMeta: SeriesMeta | null = null;
    let head = '';
    let tree: LabelNode = newLabelNode();
    for (let i = 0; i < points.length; i++) {
      const p = points[i];
      const meta = p.meta ?? NATIVE_META;
      if (p.name !== headName || meta !== headMeta) {
        head = streamCacheKeyHead(orgTag, p.name, meta);
        headName = p.name;
        headMeta = meta;
        let t = trees.get(head);
        if (!t) trees.set(head, (t = newLabelNode()));
        tree = t;
      }
      const node = labelNodeOf(tree, p.labels);
      if (node !== null && node.id !== undefined) {
        ids[i] = node.id;
        continue;
      }
      if (node !== null && node.missing !== undefined) {
        node.missing.at.push(i);
        continue;
      }
      const key = head + labelsCacheKey(p.labels);
      let hit = seen.get(key);
      if (hit === undefined && !missing.has(key) && (hit = this.cache.get(key)) !== undefined) seen.set(key, hit);
      if (hit !== undefined) {
        ids[i] = hit;
        if (node !== null) node.id = hit;
      } else {
        let m = missing.get(key);
        if (m) m.at.push(i);
        // Text PostgreSQL cannot store is replaced here, for series not in the cache: the cache key
        // is that of the labels as sent (distinct label sets that store alike share a series).
        else missing.set(key, (m = { at: [i], meta, name: toStorableText(p.name), canon: canonicalLabels(toStorableRecord(p.labels)) }));
        if (node !== null) node.missing = m;
      }
    }
    const refused: number[] = [];
    const conflicts: Resolution['conflicts'] = [];
    const pointOf = (i: number) => points[i].point ?? -1 - i;
    if (missing.size > 0) await this.serialized(orgId, () => this.load(orgId, missing, pointOf, ids, refused, conflicts, maxSeries, atomic, now));
    return { ids, refused, conflicts };
  }

  private async load(
    orgId: string,
    missing: Map<string, Missing>,
    pointOf: (index: number) => number,
    ids: (number | null)[],
    refused: number[],
    conflicts: Resolution['conflicts'],
    maxSeries: number,
    atomic: boolean,
    now: number,
  ): Promise<void> {
    /**
     * `name \0 hash hex` → the key and its cache keys (several when label sets sent differently,
     * with a NUL and with U+FFFD say, store as one series), and the input indexes needing it.
     */
    const keys = new Map<string, SeriesKey & { cacheKeys: string[]; at: number[] }>();
    for (const [cacheKey, m] of missing) {
      const hash = createHash('sha256').update(seriesIdentity(m.canon, m.meta)).digest();
      const id = `${m.name}\u0000${hash.toString('hex')}`;
      const known = keys.get(id);
      if (known) {
        known.cacheKeys.push(cacheKey);
        known.at.push(...m.at);
      } else keys.set(id, { name: m.name, canon: m.canon, hash, meta: m.meta, cacheKeys: [cacheKey], at: [...m.at] });
    }
    const assign = (rows: { id: number; name: string; labels_hash: Buffer }[]) => {
      for (const r of rows) {
        const id = `${r.name}\u0000${r.labels_hash.toString('hex')}`;
        const k = keys.get(id);
        if (!k) continue;
        for (const cacheKey of k.cacheKeys) this.cache.set(cacheKey, r.id);
        for (const i of k.at) ids[i] = r.id;
        keys.delete(id);
      }
    };
    const found = await this.repo.find(orgId, [...keys.values()]);
    await this.repo.touch(orgId, found.map((r) => r.id));
    assign(found);
    if (keys.size === 0) return;

    // Recounted now and then: retention and other processes change the number too.
    const cached = this.counts.get(orgId);
    const count = cached && now - cached.at < COUNT_TTL_MS ? cached.n : await this.repo.count(orgId);
    // One kind per name: a new series whose name already has series of another kind is refused.
    const kinds = await this.repo.kinds(orgId, [...new Set([...keys.values()].map((k) => k.name))]);
    const fresh: (SeriesKey & { at: number[] })[] = [];
    for (const k of keys.values()) {
      const existing = kinds.get(k.name);
      if (existing === undefined || existing === k.meta.kind) {
        kinds.set(k.name, k.meta.kind);
        fresh.push(k);
      } else {
        for (const index of k.at) conflicts.push({ index, name: k.name, kind: k.meta.kind, existing });
      }
    }
    conflicts.sort((a, b) => a.index - b.index);
    // A data point with a conflicting series creates none of its series (a histogram whose
    // _count is refused leaves no empty _sum or buckets behind).
    const conflicted = new Set(conflicts.map((c) => pointOf(c.index)));
    const candidates = conflicted.size === 0 ? fresh : fresh.filter((k) => !k.at.every((i) => conflicted.has(pointOf(i))));
    const room = Math.max(0, maxSeries - count);
    const allowed = candidates.length <= room ? candidates : wholePoints(candidates, room, (k) => k.at.map(pointOf));
    const created = new Set(allowed);
    for (const k of candidates) if (!created.has(k)) for (const i of k.at) refused.push(i);
    refused.sort((a, b) => a - b);
    if (atomic && (conflicts.length > 0 || refused.length > 0)) return;
    const rows = await this.repo.insertOrGet(orgId, allowed);
    this.counts.set(orgId, { n: count + rows.length, at: cached && now - cached.at < COUNT_TTL_MS ? cached.at : now });
    assign(rows);
  }

  /** Runs `fn` after the org's previous series creation has finished. */
  private serialized<T>(orgId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(orgId) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.chains.set(orgId, tail);
    void tail.then(() => {
      if (this.chains.get(orgId) === tail) this.chains.delete(orgId);
    });
    return run;
  }
}

/**
 * The new series to create when not all fit in `room`: whole data points, in order, as long as
 * all of a data point's series still fit (a histogram point whose buckets would pass the limit
 * creates none of its series, so no empty `_count` or `_sum` takes up room).
 */
function wholePoints<K>(fresh: readonly K[], room: number, pointsOf: (key: K) => number[]): K[] {
  const byPoint = new Map<number, K[]>();
  for (const k of fresh) {
    for (const p of new Set(pointsOf(k))) {
      const list = byPoint.get(p);
      if (list) list.push(k);
      else byPoint.set(p, [k]);
    }
  }
  const admitted = new Set<K>();
  let left = room;
  for (const keys of byPoint.values()) {
    const need = keys.filter((k) => !admitted.has(k));
    if (need.length > left) continue;
    for (const k of need) admitted.add(k);
    left -= need.length;
  }
  return fresh.filter((k) => admitted.has(k));
}
