import { isPrivileged, type Actor, type RequestMeta } from '../../core/actor.js';
import type { AuditSink } from '../../core/audit.js';
import type { OrgAccess } from '../../core/authorize.js';
import { systemClock, type Clock } from '../../core/clock.js';
import { DomainError, conflict, notFound } from '../../core/errors.js';
import { isUuid, randomToken } from '../../core/ids.js';
import { pageLimit, toPage, uuidCursor, type Page, type PageRequest } from '../../core/pagination.js';
import { sha256 } from '../../core/secrets.js';
import { compile, validationError } from '../../core/validation.js';
import type { ApiKeyRow, ApiKeysRepository } from './api-keys-repository.js';
import { CreateApiKeyBody, type ApiKey, type ApiKeyWithSecret, type CreateApiKeyInput } from './api-keys-schemas.js';
import { isoOrNull } from '../../core/timestamp.js';

export type { ApiKey, ApiKeyWithSecret, CreateApiKeyInput };

/** Same as the auth feature's API_KEY_PREFIX: the authenticator routes `snt_…` bearer tokens here. */
export const KEY_PREFIX = 'snt_';
/** 24 random bytes = 192 bits, 32 base64url characters. */
export const KEY_RANDOM_BYTES = 24;
/** Characters of the key kept in clear for display (`snt_` + 8): 48 of the 192 bits, the rest stays secret. */
export const DISPLAY_PREFIX_LENGTH = 12;
/** Keys we issue, and longer ones should the format grow; anything else is refused without a query. */
const KEY_SHAPE = /^snt_[A-Za-z0-9_-]{32,128}$/;
/** last_used_at / last_ip are written at most this often per key, so busy keys do not pay an UPDATE per request. */
export const DEFAULT_LAST_USE_INTERVAL_MS = 60_000;
// The route's schema: the CLI gets the same checks and error paths (core/validation).
const validCreate = compile(CreateApiKeyBody);

export interface ApiKeysOptions {
  /** How long the previous secret keeps working after a rotation (config auth.api_key_rotation_grace). */
  rotationGraceMs: number;
  lastUseIntervalMs?: number;
  clock?: Clock;
}


export function toApiKey(r: ApiKeyRow): ApiKey {
  return {
    id: r.id,
    name: r.name,
    prefix: r.prefix,
    scopes: r.scopes,
    expires_at: isoOrNull(r.expires_at),
    last_used_at: isoOrNull(r.last_used_at),
    last_ip: r.last_ip,
    previous_valid_until: r.previous_secret_hash ? isoOrNull(r.previous_valid_until) : null,
    created_by: r.created_by,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
  };
}

function newSecret(): { secret: string; prefix: string; secret_hash: string } {
  const secret = KEY_PREFIX + randomToken(KEY_RANDOM_BYTES);
  return { secret, prefix: secret.slice(0, DISPLAY_PREFIX_LENGTH), secret_hash: sha256(secret) };
}

/**
 * Org API keys. Authorization happens here (through OrgAccess and the permission table), so the
 * HTTP API and the CLI get the same checks. Also the authenticator for `snt_…` bearer tokens.
 */
export class ApiKeysService {
  private readonly graceMs: number;
  private readonly lastUseIntervalMs: number;
  private readonly clock: Clock;
  /** Last-use writes started by this process (keyId → ms), so a burst of first uses writes once. */
  private readonly touched = new Map<string, number>();
  private lastSweep = 0;

  constructor(
    private readonly repo: ApiKeysRepository,
    private readonly orgs: OrgAccess,
    private readonly audit: AuditSink,
    opts: ApiKeysOptions,
  ) {
    this.graceMs = opts.rotationGraceMs;
    this.lastUseIntervalMs = opts.lastUseIntervalMs ?? DEFAULT_LAST_USE_INTERVAL_MS;
    this.clock = opts.clock ?? systemClock;
  }

  async list(actor: Actor, orgSlug: string, page: PageRequest = {}): Promise<Page<ApiKey>> {
    const org = await this.orgs.require(actor, orgSlug, 'apikey.read');
    const limit = pageLimit(page.limit);
    const after = uuidCursor(page.cursor);
    const rows = await this.repo.list(org.id, limit + 1, after);
    const p = toPage(rows, limit, (r) => r.id);
    return { items: p.items.map(toApiKey), next_cursor: p.next_cursor };
  }

  async create(actor: Actor, orgSlug: string, input: CreateApiKeyInput, meta: RequestMeta = {}): Promise<ApiKeyWithSecret> {
    const org = await this.orgs.require(actor, orgSlug, 'apikey.manage');
    input = validCreate(input);
    const name = input.name.trim();
    const scopes = input.scopes ?? ['ingest'];
    const expiresAt = this.futureExpiry(input.expires_at);
    const s = newSecret();
    const row = await this.repo.insert(org.id, {
      name,
      prefix: s.prefix,
      secret_hash: s.secret_hash,
      scopes,
      expires_at: expiresAt,
      created_by: actor.kind === 'user' ? actor.userId : null,
    });
    await this.audit.record({
      actor,
      action: 'apikey.create',
      orgId: org.id,
      targetType: 'api_key',
      targetId: row.id,
      details: { name, prefix: row.prefix, scopes, expires_at: isoOrNull(expiresAt) },
      ...meta,
    });
    return { ...toApiKey(row), secret: s.secret };
  }

  /** A new secret; the old one keeps working for the rotation grace period, then stops. */
  async rotate(actor: Actor, orgSlug: string, id: string, meta: RequestMeta = {}): Promise<ApiKeyWithSecret> {
    const org = await this.orgs.require(actor, orgSlug, 'apikey.manage');
    const current = isUuid(id) ? await this.repo.findLive(org.id, id) : undefined;
    if (!current) throw notFound('API key');
    const now = this.clock.now();
    if (current.expires_at && current.expires_at <= now) throw conflict('this API key has expired; create a new one');
    const s = newSecret();
    const previousValidUntil = this.graceMs > 0 ? new Date(now.getTime() + this.graceMs) : null;
    const row = await this.repo.rotate(org.id, id, s, previousValidUntil);
    if (!row) throw notFound('API key');
    await this.audit.record({
      actor,
      action: 'apikey.rotate',
      orgId: org.id,
      targetType: 'api_key',
      targetId: row.id,
      details: { name: row.name, prefix: row.prefix, previous_prefix: current.prefix, previous_valid_until: isoOrNull(previousValidUntil) },
      ...meta,
    });
    return { ...toApiKey(row), secret: s.secret };
  }

  /** Effective on the key's next request: authentication reads the row every time. */
  async revoke(actor: Actor, orgSlug: string, id: string, meta: RequestMeta = {}): Promise<void> {
    const org = await this.orgs.require(actor, orgSlug, 'apikey.manage');
    const row = isUuid(id) ? await this.repo.revoke(org.id, id) : undefined;
    if (!row) throw notFound('API key');
    await this.recordRevoke(actor, row, meta);
  }

  /** The CLI's `apikey revoke <id>`: the id alone names the key, whatever its org. Operators only. */
  async revokeById(actor: Actor, id: string, meta: RequestMeta = {}): Promise<ApiKey> {
    if (!isPrivileged(actor)) throw new DomainError('forbidden', 'not allowed');
    if (!isUuid(id)) throw new DomainError('bad_request', `invalid API key id '${id}': expected a UUID`);
    const found = await this.repo.findLiveAnyOrg(id);
    const row = found ? await this.repo.revoke(found.org_id, id) : undefined;
    if (!row) throw notFound(`API key '${id}'`);
    await this.recordRevoke(actor, row, meta);
    return toApiKey(row);
  }

  /**
   * ApiKeyAuthenticator: the actor a presented key stands for, or null when it is unknown,
   * revoked, expired, or a previous secret past its grace period.
   */
  async authenticate(secret: string, ip: string | null): Promise<Actor | null> {
    if (!KEY_SHAPE.test(secret)) return null;
    const hash = sha256(secret);
    const row = await this.repo.findBySecretHash(hash);
    if (!row || row.revoked_at) return null;
    const now = this.clock.now();
    if (row.expires_at && row.expires_at <= now) return null;
    if (row.secret_hash !== hash && !(row.previous_valid_until && row.previous_valid_until > now)) return null;
    // Nearly every request finds the last use recorded recently: nothing to wait for then.
    const touch = this.recordUse(row, ip, now);
    if (touch) await touch;
    return { kind: 'apikey', keyId: row.id, orgId: row.org_id, scopes: row.scopes };
  }

  /** The last-use write when one is due (at most one per key per lastUseIntervalMs), else null. */
  private recordUse(row: ApiKeyRow, ip: string | null, now: Date): Promise<void> | null {
    const t = now.getTime();
    const due = (at: number | undefined) => at === undefined || t - at >= this.lastUseIntervalMs;
    if (!due(row.last_used_at?.getTime()) || !due(this.touched.get(row.id))) return null;
    this.touched.set(row.id, t);
    this.sweep(t);
    return this.repo.touch(row.org_id, row.id, ip, now, this.lastUseIntervalMs);
  }

  private sweep(t: number): void {
    if (t - this.lastSweep < this.lastUseIntervalMs) return;
    this.lastSweep = t;
    for (const [id, at] of this.touched) if (t - at >= this.lastUseIntervalMs) this.touched.delete(id);
  }

  private async recordRevoke(actor: Actor, row: ApiKeyRow, meta: RequestMeta): Promise<void> {
    await this.audit.record({
      actor,
      action: 'apikey.revoke',
      orgId: row.org_id,
      targetType: 'api_key',
      targetId: row.id,
      details: { name: row.name, prefix: row.prefix },
      ...meta,
    });
  }

  /** The one rule the schema cannot state: a date-time (checked by the schema) that is still ahead. */
  private futureExpiry(raw: string | undefined): Date | null {
    if (raw === undefined) return null;
    const at = new Date(raw);
    if (at <= this.clock.now()) throw validationError([{ path: 'body/expires_at', message: 'must be in the future' }]);
    return at;
  }
}
