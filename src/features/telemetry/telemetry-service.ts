import { createHash } from 'node:crypto';
import { toStorableRecord, toStorableText } from '../../core/text.js';
import type { Actor } from '../../core/actor.js';
import { authorize, type OrgAccess } from '../../core/authorize.js';
import { DomainError, notFound, type ErrorDetail } from '../../core/errors.js';
import type { RateLimitDetails } from '../../core/rate-limiter.js';
import type { TokenBuckets } from '../../core/token-bucket.js';
import type { GroupCommitWriter } from './group-commit-writer.js';
import type { IngestRepository, StoredPoint, WriteItem } from './ingest-repository.js';
import { nativeBatch } from './native-batch.js';
import type { RejectionReason } from './rejection-counter.js';
import type { SeriesStore } from './series-store.js';
import { effectiveLimits, type LimitDefaults, type OrgDirectory } from './telemetry-limits-source.js';
import { INGEST_LIMITS } from './telemetry-limits.js';
import type { Accepted, TelemetryBodyT } from './telemetry-schemas.js';
import { SIGNALS, type Signal } from '../../core/signals.js';
import type { Counts, IngestOptions, IngestResult, LogIn, EventIn, PointIn, TelemetryBatch, TelemetryIngest } from './telemetry-types.js';

export interface TelemetryServiceDeps {
  orgs: OrgAccess;
  directory: OrgDirectory;
  series: SeriesStore;
  writer: GroupCommitWriter;
  repo: IngestRepository;
  buckets: TokenBuckets;
  limitDefaults: LimitDefaults;
  maxAgeMs: number;
  maxFutureMs: number;
  /** Counts refused ingest per reason (the daily report shows them); never changes an answer. */
  rejections?: { record(orgId: string, reason: RejectionReason, items: number): void };
  /** In-memory ingest statistics (/metrics, the admin status): items stored and refused per signal. */
  stats?: { accepted(counts: Counts): void; rejected(signal: Signal, reason: RejectionReason, items: number): void };
  now?: () => number;
}

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

// PostgreSQL text cannot hold NUL, and jsonb refuses lone surrogates: both are replaced, not refused
// (metric names and labels by the series store, for series it does not know yet).
const clean = toStorableText;

const zero = (): Counts => ({ metrics: 0, logs: 0, events: 0 });
const total = (items: Partial<Counts>): number => (items.metrics ?? 0) + (items.logs ?? 0) + (items.events ?? 0);

/**
 * Ingest (DESIGN §7): resolve the org from the credential, check the batch (time window, series
 * limit) and the org's rate, hand it to the group-commit writer, and answer only after commit.
 * Native batches are all or nothing; OTLP (partial mode) drops what cannot be stored and counts it.
 */
export class TelemetryService implements TelemetryIngest {
  private readonly now: () => number;
  private readonly inFlightKeys = new Map<string, Promise<Accepted>>();

  constructor(private readonly d: TelemetryServiceDeps) {
    this.now = d.now ?? Date.now;
  }

  /** POST /telemetry and /organizations/{org}/telemetry. */
  async ingestNative(actor: Actor, orgSlug: string | null, body: TelemetryBodyT, opts: { idempotencyKey?: string } = {}): Promise<Accepted> {
    const total = (body.metrics?.length ?? 0) + (body.logs?.length ?? 0) + (body.events?.length ?? 0);
    if (total > INGEST_LIMITS.maxItems) {
      const err = new DomainError('payload_too_large', `the batch holds ${total} items; at most ${INGEST_LIMITS.maxItems} per request`);
      // Checked before the org is resolved (cheapest first); counted only for a caller that may ingest there.
      const orgId = await this.orgOf(actor, orgSlug).catch(() => null);
      if (orgId !== null) this.refused(orgId, 'too_many_items', bodyCounts(body));
      throw err;
    }
    const orgId = await this.orgOf(actor, orgSlug);
    const { batch, errors } = nativeBatch(body, this.now());
    if (errors.length) {
      this.refused(orgId, 'invalid_items', bodyCounts(body));
      throw new DomainError('validation_failed', 'request validation failed', { errors });
    }
    const key = opts.idempotencyKey;
    if (key === undefined) return { accepted: (await this.store(orgId, batch, { partial: false })).accepted };

    if (!IDEMPOTENCY_KEY.test(key)) throw new DomainError('validation_failed', 'invalid Idempotency-Key', { errors: [{ path: 'header/idempotency-key', message: 'must be 1–255 printable ASCII characters' }] });
    const hash = createHash('sha256').update(JSON.stringify(body)).digest();
    const slot = `${orgId}\u0000${key}`;
    // The same key already in flight in this process: wait for that answer instead of racing it.
    const running = this.inFlightKeys.get(slot);
    if (running) {
      await running.catch(() => undefined);
      return this.ingestNative(actor, orgSlug, body, opts);
    }
    const work = (async (): Promise<Accepted> => {
      const stored = await this.d.repo.storedAnswer(orgId, key);
      if (stored) return this.replay(stored, hash);
      const accepted = { accepted: batchCounts(batch) };
      const result = await this.store(orgId, batch, { partial: false }, { key, hash, response: accepted });
      if (result.duplicate) {
        const first = await this.d.repo.storedAnswer(orgId, key);
        if (!first) throw new DomainError('unavailable', 'the first answer for this Idempotency-Key is not readable yet; retry', { retryAfter: 1 });
        return this.replay(first, hash);
      }
      return accepted;
    })();
    this.inFlightKeys.set(slot, work);
    try {
      return await work;
    } finally {
      this.inFlightKeys.delete(slot);
    }
  }

  /** The OTLP adapters' entry point (and the native one's core). */
  async ingest(actor: Actor, orgSlug: string | null, batch: TelemetryBatch, opts: IngestOptions): Promise<IngestResult> {
    const orgId = await this.orgOf(actor, orgSlug);
    const { accepted, rejected, messages } = await this.store(orgId, batch, opts);
    return { accepted, rejected, messages };
  }

  // Synchronous: counted in memory and written later, so a refusal never waits on the database.
  private refused(orgId: string, reason: RejectionReason, items: Partial<Counts>): void {
    this.d.rejections?.record(orgId, reason, total(items));
    if (this.d.stats) for (const signal of SIGNALS) this.d.stats.rejected(signal, reason, items[signal] ?? 0);
  }

  private replay(stored: { hash: Buffer; response: unknown }, hash: Buffer): Accepted {
    if (!stored.hash.equals(hash)) throw new DomainError('conflict', 'this Idempotency-Key was used with a different body');
    return stored.response as Accepted;
  }

  private async orgOf(actor: Actor, orgSlug: string | null): Promise<string> {
    if (orgSlug !== null) return (await this.d.orgs.require(actor, orgSlug, 'telemetry.ingest')).id;
    if (actor.kind !== 'apikey') {
      if (actor.kind === 'anonymous') throw new DomainError('unauthenticated', 'authentication required');
      throw new DomainError('bad_request', 'only API keys decide the organization by themselves; with a user token use POST /organizations/{org}/telemetry');
    }
    authorize(actor, 'telemetry.ingest', { id: actor.orgId, role: null });
    return actor.orgId;
  }

  private async store(
    orgId: string,
    input: TelemetryBatch,
    opts: IngestOptions,
    idempotency?: WriteItem['idempotency'],
  ): Promise<IngestResult & { duplicate: boolean }> {
    const overrides = await this.d.directory.overrides(orgId);
    if (!overrides) throw notFound('organization');
    const limits = effectiveLimits(overrides, this.d.limitDefaults);
    // What the OTLP decoder dropped never reaches the checks below, so it is counted only here.
    if (opts.decoded) {
      if (total(opts.decoded.invalid)) this.refused(orgId, 'dropped_invalid_items', opts.decoded.invalid);
      if (total(opts.decoded.tooMany)) this.refused(orgId, 'dropped_too_many_items', opts.decoded.tooMany);
    }
    const rejected = zero();
    const messages: string[] = [];
    const errors: ErrorDetail[] = [];
    // The data point each metric row belongs to (an OTLP histogram point is several rows): rows
    // are dropped by data point, and rejections count data points.
    // Built only when something is dropped: the common batch never needs it.
    let keys: Map<PointIn, number> | null = null;
    const pointOf = (p: PointIn): number => (keys ??= new Map(input.points.map((q, i) => [q, q.point ?? -1 - i]))).get(p)!;
    const droppedPoints = new Set<number>();
    const refuse = (signal: keyof Counts, path: string, message: string, point?: PointIn) => {
      if (point) droppedPoints.add(pointOf(point));
      else rejected[signal]++;
      errors.push({ path: `body/${signal}/${path}`, message });
    };

    // The time window keeps one client from creating partitions for arbitrary days.
    const now = this.now();
    const oldest = now - this.d.maxAgeMs;
    const newest = now + this.d.maxFutureMs;
    const inWindow = <T extends { ts: number }>(items: T[], signal: keyof Counts): T[] => {
      // The common batch is wholly inside the window: kept as it is, no copy.
      let n = 0;
      while (n < items.length && items[n].ts >= oldest && items[n].ts <= newest) n++;
      if (n === items.length) return items;
      return items.filter((item, i) => {
        if (item.ts >= oldest && item.ts <= newest) return true;
        refuse(signal, `${i}/ts`, item.ts < oldest ? 'is older than ingest.max_age allows' : 'is further in the future than ingest.max_future allows', signal === 'metrics' ? (item as unknown as PointIn) : undefined);
        return false;
      });
    };
    let points: PointIn[] = inWindow(input.points, 'metrics');
    const logs: LogIn[] = inWindow(input.logs, 'logs');
    const events: EventIn[] = inWindow(input.events, 'events');
    rejected.metrics += droppedPoints.size;
    const outside = rejected.metrics + rejected.logs + rejected.events;
    if (outside) this.refused(orgId, opts.partial ? 'dropped_outside_time_window' : 'outside_time_window', rejected);
    if (errors.length && !opts.partial) throw new DomainError('validation_failed', 'request validation failed', { errors });
    if (outside) messages.push(`${outside} item(s) outside the accepted time window`);
    // The other rows of a data point with a row outside the window go too (its rows share one time, so this is rare).
    if (droppedPoints.size) points = points.filter((p) => !droppedPoints.has(pointOf(p)));

    const cost = points.length + logs.length + events.length;
    const decision = this.d.buckets.take(orgId, limits.ingest_points_per_second, cost);
    if (!decision.allowed) {
      this.refused(orgId, 'rate_limited', { metrics: points.length, logs: logs.length, events: events.length });
      throw new DomainError('rate_limited', `ingest rate limit of ${limits.ingest_points_per_second} items per second exceeded; retry in ${decision.retryAfterSeconds} s`, {
        retryAfter: decision.retryAfterSeconds,
        rateLimit: { limit: decision.limit, remaining: decision.remaining, reset: decision.retryAfterSeconds, limiter: 'ingest' } satisfies RateLimitDetails,
      });
    }

    const { ids, refused, conflicts } = await this.d.series.resolve(orgId, points, limits.max_series, !opts.partial);
    const pathOf = (i: number) => `body/metrics/${input.points.indexOf(points[i])}/name`;
    if (conflicts.length) {
      const conflictMessage = (c: (typeof conflicts)[number]) => `metric "${c.name.slice(0, 100)}" has series of kind ${c.existing}; a ${c.kind} of the same name is refused`;
      if (!opts.partial) {
        this.refused(orgId, 'kind_conflict', { metrics: conflicts.length });
        throw new DomainError('validation_failed', 'the batch mixes kinds under one metric name', {
          errors: conflicts.slice(0, 100).map((c) => ({ path: pathOf(c.index), message: conflictMessage(c) })),
        });
      }
      const byMessage = new Map<string, Set<number>>();
      for (const c of conflicts) {
        const m = conflictMessage(c);
        const set = byMessage.get(m) ?? new Set<number>();
        set.add(pointOf(points[c.index]));
        byMessage.set(m, set);
      }
      let n = 0;
      for (const [m, set] of byMessage) {
        for (const k of set) droppedPoints.add(k);
        n += set.size;
        if (messages.length < 10) messages.push(`${set.size} data point(s) rejected: ${m}`);
      }
      this.refused(orgId, 'dropped_kind_conflict', { metrics: n });
    }
    if (refused.length) {
      const message = `would create a new series beyond the organization's limit of ${limits.max_series} series`;
      if (!opts.partial) {
        this.refused(orgId, 'series_limit', { metrics: refused.length });
        throw new DomainError('validation_failed', `the batch would pass the organization's limit of ${limits.max_series} series`, {
          errors: refused.slice(0, 100).map((i) => ({ path: pathOf(i), message })),
        });
      }
      const limited = new Set(refused.map((i) => pointOf(points[i])).filter((k) => !droppedPoints.has(k)));
      for (const k of limited) droppedPoints.add(k);
      if (limited.size) {
        this.refused(orgId, 'dropped_series_limit', { metrics: limited.size });
        messages.push(`${limited.size} data point(s) refused: ${message}`);
      }
    }
    // A data point is stored whole or not at all: a histogram whose bucket series was refused loses its _count and _sum too.
    rejected.metrics = droppedPoints.size;
    // The common batch (every series known or created, nothing dropped) is written as it came:
    // its point objects and the resolved ids, no copy per point.
    let stored: StoredPoint[] = points;
    let seriesIds = ids as number[];
    if (droppedPoints.size > 0 || ids.includes(null)) {
      stored = [];
      seriesIds = [];
      for (let i = 0; i < points.length; i++) {
        const id = ids[i];
        if (id !== null && (droppedPoints.size === 0 || !droppedPoints.has(pointOf(points[i])))) {
          stored.push(points[i]);
          seriesIds.push(id);
        }
      }
    }
    const item: WriteItem = {
      orgId,
      points: stored,
      seriesIds,
      logs: logs.map((l) => ({
        ...l,
        severityText: clean(l.severityText),
        body: clean(l.body),
        attributes: toStorableRecord(l.attributes),
        resource: toStorableRecord(l.resource),
        eventName: l.eventName === null ? null : clean(l.eventName),
      })),
      events: events.map((e) => ({ ...e, type: clean(e.type), title: clean(e.title), text: e.text === null ? null : clean(e.text), tags: e.tags.map(clean) })),
      idempotency,
    };
    const outcome = await this.d.writer.write(item);
    const accepted = { metrics: stored.length, logs: item.logs.length, events: item.events.length };
    // A duplicate (an Idempotency-Key already stored) wrote nothing.
    if (outcome !== 'duplicate') this.d.stats?.accepted(accepted);
    return { accepted, rejected, messages, duplicate: outcome === 'duplicate' };
  }
}

function bodyCounts(body: TelemetryBodyT): Counts {
  return { metrics: body.metrics?.length ?? 0, logs: body.logs?.length ?? 0, events: body.events?.length ?? 0 };
}

function batchCounts(b: TelemetryBatch): Counts {
  return { metrics: b.points.length, logs: b.logs.length, events: b.events.length };
}
