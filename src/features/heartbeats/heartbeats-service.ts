import type { Actor, RequestMeta } from '../../core/actor.js';
import type { AlertSink, ChannelDirectory } from '../../core/alerting.js';
import type { AuditSink } from '../../core/audit.js';
import { authorize, type OrgAccess } from '../../core/authorize.js';
import { systemClock, type Clock } from '../../core/clock.js';
import { parseDuration } from '../../core/duration.js';
import { DomainError, conflictOnUnique, notFound, type ErrorDetail } from '../../core/errors.js';
import { isUuid, randomToken } from '../../core/ids.js';
import { pageLimit, toPage, uuidCursor, type Page, type PageRequest } from '../../core/pagination.js';
import { sha256, type SecretBox } from '../../core/secrets.js';
import type { RateLimitDetails } from '../../core/rate-limiter.js';
import { TokenBuckets } from '../../core/token-bucket.js';
import { compile, validationError } from '../../core/validation.js';
import type { HeartbeatPatch, HeartbeatRow, HeartbeatsRepository } from './heartbeats-repository.js';
import {
  CreateHeartbeatBody,
  MAX_DURATION_MS,
  MIN_DURATION_MS,
  UpdateHeartbeatBody,
  type CreateHeartbeatInput,
  type Heartbeat,
  type PingAnswer,
  type UpdateHeartbeatInput,
} from './heartbeats-schemas.js';
import { isoOrNull } from '../../core/timestamp.js';

export const TOKEN_PREFIX = 'hb_';
/** Pings per second a heartbeat takes, sustained (a cron job pings once a minute at most; a loop gone wild is cut off). */
const PINGS_PER_SECOND = 1;
const validCreate = compile(CreateHeartbeatBody);
/** `hb_` + 32 random bytes (256 bits), base64url. */
const newToken = (): string => TOKEN_PREFIX + randomToken(32);
const validUpdate = compile(UpdateHeartbeatBody);

export interface HeartbeatsDeps {
  repo: HeartbeatsRepository;
  orgs: OrgAccess;
  audit: AuditSink;
  channels: ChannelDirectory;
  alerts: AlertSink;
  box: SecretBox;
  /** Where pings go: alerts.external_url, else http://<http.host>:<http.port>; no trailing slash. */
  baseUrl: string;
  /** Heartbeats claimed per missed check (alerts.batch_size). */
  batchSize: number;
  clock?: Clock;
  log?: { error(obj: object, msg: string): void };
}


/** Whether the actor (already allowed alert.read in `org`) also holds alert.write there. */
function mayWrite(actor: Actor, org: Parameters<typeof authorize>[2]): boolean {
  try {
    authorize(actor, 'alert.write', org);
    return true;
  } catch {
    return false;
  }
}

/**
 * Heartbeats (dead-man's switches, issue 10 point 7): a job pings its heartbeat's URL at least
 * every period; a heartbeat without a ping by last ping + period + grace is missed, goes down
 * and raises an alert through the alerts pipeline (grouped, silenced, acked and delivered like a
 * rule's); the next ping resolves it. The token is the ping's only credential: stored as its
 * sha256 (the lookup) and sealed (so the org's users can read it back), never logged.
 */
export class HeartbeatsService {
  private readonly clock: Clock;
  private readonly buckets: TokenBuckets;

  constructor(private readonly d: HeartbeatsDeps) {
    this.clock = d.clock ?? systemClock;
    this.buckets = new TokenBuckets(() => this.clock.now().getTime());
  }

  async list(actor: Actor, slug: string, page: PageRequest = {}): Promise<Page<Heartbeat>> {
    const org = await this.d.orgs.require(actor, slug, 'alert.read');
    const limit = pageLimit(page.limit);
    const after = uuidCursor(page.cursor);
    const p = toPage(await this.d.repo.list(org.id, limit + 1, after), limit, (r) => r.id);
    const withToken = mayWrite(actor, org);
    return { items: p.items.map((r) => this.present(r, withToken)), next_cursor: p.next_cursor };
  }

  async get(actor: Actor, slug: string, id: string): Promise<Heartbeat> {
    const org = await this.d.orgs.require(actor, slug, 'alert.read');
    const row = isUuid(id) ? await this.d.repo.find(org.id, id) : undefined;
    if (!row) throw notFound('heartbeat');
    return this.present(row, mayWrite(actor, org));
  }

  async create(actor: Actor, slug: string, input: CreateHeartbeatInput, meta: RequestMeta = {}): Promise<Heartbeat> {
    const org = await this.d.orgs.require(actor, slug, 'alert.write');
    input = validCreate(input);
    const fields = await this.fields(org.id, input);
    const token = newToken();
    const now = this.clock.now();
    const row = await this.unique(fields.name!, () =>
      this.d.repo.insert(
        org.id,
        {
          name: fields.name!,
          period_ms: fields.period_ms!,
          grace_ms: fields.grace_ms!,
          channels: fields.channels ?? [],
          labels: fields.labels ?? {},
          severity: fields.severity ?? 'critical',
          ...this.stored(token),
          // Never pinged: missed one period and grace after its creation.
          due_at: new Date(now.getTime() + fields.period_ms! + fields.grace_ms!),
          created_by: actor.kind === 'user' ? actor.userId : null,
        },
        now,
      ),
    );
    await this.record(actor, 'heartbeat.create', row, meta);
    return this.present(row);
  }

  async update(actor: Actor, slug: string, id: string, input: UpdateHeartbeatInput, meta: RequestMeta = {}): Promise<Heartbeat> {
    const org = await this.d.orgs.require(actor, slug, 'alert.write');
    input = validUpdate(input);
    if (!isUuid(id) || !(await this.d.repo.find(org.id, id))) throw notFound('heartbeat');
    const patch = await this.fields(org.id, input);
    const row = await this.unique(patch.name ?? '', () => this.d.repo.update(org.id, id, patch, this.clock.now()));
    if (!row) throw notFound('heartbeat');
    // Its alert group keeps the receiver and channels it was raised with: a down heartbeat would
    // keep paging a removed channel on every repeat.
    if (patch.name !== undefined || patch.channels !== undefined) {
      await this.d.alerts.reconfigure({ orgId: row.org_id, source: 'heartbeat', sourceId: row.id, name: row.name, channelIds: row.channels });
    }
    await this.record(actor, 'heartbeat.update', row, meta);
    return this.present(row);
  }

  /** A new ping token (a leaked one is useless from now on); the heartbeat's state and timing are kept. */
  async rotateToken(actor: Actor, slug: string, id: string, meta: RequestMeta = {}): Promise<Heartbeat> {
    const org = await this.d.orgs.require(actor, slug, 'alert.write');
    const row = isUuid(id) ? await this.d.repo.setToken(org.id, id, this.stored(newToken()), this.clock.now()) : undefined;
    if (!row) throw notFound('heartbeat');
    await this.record(actor, 'heartbeat.rotate_token', row, meta);
    return this.present(row);
  }

  /** A heartbeat deleted while down takes its alert with it (resolved: a resolved notification goes out). */
  async delete(actor: Actor, slug: string, id: string, meta: RequestMeta = {}): Promise<void> {
    const org = await this.d.orgs.require(actor, slug, 'alert.write');
    const row = isUuid(id) ? await this.d.repo.delete(org.id, id) : undefined;
    if (!row) throw notFound('heartbeat');
    await this.record(actor, 'heartbeat.delete', row, meta);
    if (row.state === 'down') await this.d.alerts.resolve({ orgId: row.org_id, source: 'heartbeat', sourceId: row.id, at: this.clock.now() });
  }

  /**
   * POST /heartbeats/{token}: no other credential. An unknown token is one indexed lookup by its
   * hash, like a known one (the token itself is never compared). Each heartbeat takes at most
   * PINGS_PER_SECOND sustained (429 with Retry-After beyond).
   */
  async ping(token: string): Promise<PingAnswer> {
    const hb = await this.d.repo.findByTokenHash(sha256(token));
    if (!hb) throw notFound('heartbeat');
    const d = this.buckets.take(hb.id, PINGS_PER_SECOND, 1);
    if (!d.allowed) {
      throw new DomainError('rate_limited', `more than ${PINGS_PER_SECOND} ping per second for this heartbeat; retry in ${d.retryAfterSeconds} s`, {
        retryAfter: d.retryAfterSeconds,
        rateLimit: { limit: d.limit, remaining: d.remaining, reset: d.retryAfterSeconds, limiter: 'heartbeat_ping' } satisfies RateLimitDetails,
      });
    }
    const at = this.clock.now();
    const pinged = await this.d.repo.ping(hb.org_id, hb.id, at);
    if (!pinged) throw notFound('heartbeat');
    if (pinged.previous === 'down') {
      try {
        await this.d.alerts.resolve({ orgId: hb.org_id, source: 'heartbeat', sourceId: hb.id, at });
      } catch (err) {
        // Down again, so the client's retry (or the next ping) resolves it: never up with its alert still firing.
        await this.d.repo.markDownAgain(hb.org_id, hb.id, at);
        throw err;
      }
    }
    return { ok: true, state: pinged.row.state };
  }

  /**
   * The missed check (the daemon's loop every alerts.tick_ms; tests call it with a pinned time):
   * how many went down. `signal` (the loop's stop) is checked before each batch, so a shutdown
   * never waits for a long backlog; what is left is claimed by the next run or another instance.
   */
  async check(now: Date = this.clock.now(), signal?: AbortSignal): Promise<number> {
    let total = 0;
    for (;;) {
      if (signal?.aborted) return total;
      const n = await this.d.repo.claimMissed(now, this.d.batchSize, async (row) => {
        try {
          await this.d.alerts.raise({
            orgId: row.org_id,
            source: 'heartbeat',
            sourceId: row.id,
            name: row.name,
            severity: row.severity,
            labels: { ...row.labels, heartbeat: row.name },
            annotations: { summary: `no ping since ${row.last_ping_at ? row.last_ping_at.toISOString() : `its creation (${row.created_at.toISOString()})`}` },
            channelIds: row.channels,
            at: now,
          });
          return true;
        } catch (err) {
          this.d.log?.error({ err, heartbeat: row.id, org_id: row.org_id }, 'heartbeat missed, but raising its alert failed; retried next tick');
          return false;
        }
      });
      total += n;
      // A full batch may leave more behind; a batch with failures stops here (next tick retries).
      if (n < this.d.batchSize) return total;
    }
  }

  /** `withToken`: the caller holds alert.write (whoever can only read must not be able to keep a heartbeat up by pinging it). */
  present(r: HeartbeatRow, withToken = true): Heartbeat {
    const token = withToken ? this.d.box.open(r.token_sealed) : null;
    return {
      id: r.id,
      name: r.name,
      period: r.period_ms / 1000,
      grace: r.grace_ms / 1000,
      channels: r.channels,
      labels: r.labels,
      severity: r.severity,
      ...(token === null ? {} : { token, ping_url: `${this.d.baseUrl}/api/v1/heartbeats/${token}` }),
      state: r.state,
      last_ping_at: isoOrNull(r.last_ping_at),
      due_at: r.due_at.toISOString(),
      created_at: r.created_at.toISOString(),
      updated_at: r.updated_at.toISOString(),
    };
  }

  /** The checks the schema cannot state: duration bounds, channels of this org. */
  private async fields(orgId: string, input: UpdateHeartbeatInput): Promise<HeartbeatPatch> {
    const errors: ErrorDetail[] = [];
    const duration = (key: 'period' | 'grace'): number | undefined => {
      const raw = input[key];
      if (raw === undefined) return undefined;
      const ms = parseDuration(raw);
      if (ms === null || ms < MIN_DURATION_MS || ms > MAX_DURATION_MS) {
        errors.push({ path: `body/${key}`, message: 'must be a duration from 1s to 31d' });
        return undefined;
      }
      return ms;
    };
    const patch: HeartbeatPatch = {};
    if (input.name !== undefined) patch.name = input.name.trim();
    const period = duration('period');
    const grace = duration('grace');
    if (period !== undefined) patch.period_ms = period;
    if (grace !== undefined) patch.grace_ms = grace;
    if (input.labels !== undefined) patch.labels = input.labels;
    if (input.severity !== undefined) patch.severity = input.severity;
    if (input.channels !== undefined) {
      const missing = new Set(input.channels.length ? await this.d.channels.missing(orgId, input.channels) : []);
      input.channels.forEach((c, i) => {
        if (missing.has(c)) errors.push({ path: `body/channels/${i}`, message: 'no such channel in this organization' });
      });
      patch.channels = input.channels;
    }
    if (errors.length) throw validationError(errors);
    return patch;
  }

  private stored(token: string): { token_hash: string; token_sealed: string } {
    return { token_hash: sha256(token), token_sealed: this.d.box.seal(token) };
  }

  private unique<T>(name: string, write: () => Promise<T>): Promise<T> {
    return conflictOnUnique(write, `a heartbeat named '${name}' exists in this organization`);
  }

  private async record(actor: Actor, action: string, row: HeartbeatRow, meta: RequestMeta): Promise<void> {
    // Never the token (the audit log is read by more people, for longer).
    await this.d.audit.record({
      actor,
      action,
      orgId: row.org_id,
      targetType: 'heartbeat',
      targetId: row.id,
      details: { name: row.name, period_s: row.period_ms / 1000, grace_s: row.grace_ms / 1000, channels: row.channels, severity: row.severity },
      ...meta,
    });
  }
}
