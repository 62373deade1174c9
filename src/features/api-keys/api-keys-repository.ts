import type { Knex } from 'knex';
import { NO_CACHE, writing, type Cacher } from '../../db/read-cache.js';
import type { ApiKeyScope } from '../../core/permissions.js';

export interface ApiKeyRow {
  org_id: string;
  id: string;
  name: string;
  prefix: string;
  secret_hash: string;
  previous_secret_hash: string | null;
  previous_valid_until: Date | null;
  scopes: ApiKeyScope[];
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
  last_ip: string | null;
  created_by: string | null;
  created_at: Date;
  updated_at: Date;
}

export interface NewApiKey {
  name: string;
  prefix: string;
  secret_hash: string;
  scopes: ApiKeyScope[];
  expires_at: Date | null;
  created_by: string | null;
}

const TABLE = 'api_keys';

/**
 * Every method that touches one org's keys takes `orgId` and puts it in the WHERE clause, so a
 * key id from another org matches nothing. The two exceptions say why in their comments.
 */
export class ApiKeysRepository {
  constructor(
    private readonly knex: Knex,
    private readonly cache: Cacher = NO_CACHE,
  ) {}

  async insert(orgId: string, k: NewApiKey): Promise<ApiKeyRow> {
    return writing(this.cache, async (touch) => {
      touch(TABLE, k.secret_hash); // a lookup of the hash before it existed cached "no such key"
      const [row] = await this.knex<ApiKeyRow>(TABLE)
        .insert({ org_id: orgId, ...k })
        .returning('*');
      return row;
    });
  }

  /** Live (not revoked) keys of one org, oldest first; `afterId` is the keyset cursor. */
  async list(orgId: string, limit: number, afterId?: string): Promise<ApiKeyRow[]> {
    const q = this.knex<ApiKeyRow>(TABLE)
      .where({ org_id: orgId })
      .whereNull('revoked_at')
      .orderBy([{ column: 'created_at' }, { column: 'id' }])
      .limit(limit);
    if (afterId !== undefined) {
      // Compare (created_at, id) against the cursor row in SQL: a timestamp round-tripped through
      // JavaScript loses PostgreSQL's microseconds and would skip or repeat rows.
      q.whereRaw('(created_at, id) > (select c.created_at, c.id from api_keys c where c.org_id = ? and c.id = ?)', [orgId, afterId]);
    }
    return q;
  }

  async findLive(orgId: string, id: string): Promise<ApiKeyRow | undefined> {
    return this.knex<ApiKeyRow>(TABLE).where({ org_id: orgId, id }).whereNull('revoked_at').first();
  }

  /**
   * Only for the operator's CLI (`sentinel apikey revoke <id>`), where the id alone names the
   * key: deliberately not tenant scoped. The service allows it to privileged actors only.
   */
  async findLiveAnyOrg(id: string): Promise<ApiKeyRow | undefined> {
    return this.knex<ApiKeyRow>(TABLE).where({ id }).whereNull('revoked_at').first();
  }

  /**
   * Authentication: the presented key decides the org, so this lookup is by hash across orgs.
   * Matches the current secret or the previous one (the service checks the grace period).
   * Cached (see ReadCache; every write below invalidates): every request with an API key asks.
   * Only found keys are kept: anyone can present made-up keys, and storing each "no such key"
   * would let them evict the entries of real ones.
   */
  async findBySecretHash(hash: string): Promise<ApiKeyRow | undefined> {
    return this.cache.get(
      [TABLE],
      hash,
      () =>
        this.knex<ApiKeyRow>(TABLE)
          .where((w) => w.where({ secret_hash: hash }).orWhere({ previous_secret_hash: hash }))
          .first(),
      (row) => row !== undefined,
    );
  }

  /** Marks the key revoked; returns the row, or undefined when no live key of this org has that id. */
  async revoke(orgId: string, id: string): Promise<ApiKeyRow | undefined> {
    // The whole table: the entries are keyed by hashes this method does not know.
    return writing(this.cache, async (touch) => {
      touch(TABLE);
      const [row] = await this.knex<ApiKeyRow>(TABLE)
        .where({ org_id: orgId, id })
        .whereNull('revoked_at')
        .update({ revoked_at: this.knex.fn.now(), updated_at: this.knex.fn.now() } as never)
        .returning('*');
      return row as ApiKeyRow | undefined;
    });
  }

  /**
   * New secret; the current one becomes the previous one until `previousValidUntil` (null: it
   * stops working at once). Done in one statement so concurrent rotations cannot lose a secret
   * that was already handed out without also invalidating it.
   */
  async rotate(orgId: string, id: string, secret: { prefix: string; secret_hash: string }, previousValidUntil: Date | null): Promise<ApiKeyRow | undefined> {
    return writing(this.cache, async (touch) => {
      touch(TABLE);
      const [row] = await this.knex<ApiKeyRow>(TABLE)
        .where({ org_id: orgId, id })
        .whereNull('revoked_at')
        .update({
          prefix: secret.prefix,
          secret_hash: secret.secret_hash,
          previous_secret_hash: previousValidUntil ? this.knex.ref('secret_hash') : null,
          previous_valid_until: previousValidUntil,
          updated_at: this.knex.fn.now(),
        } as never)
        .returning('*');
      return row as ApiKeyRow | undefined;
    });
  }

  /**
   * Records a use. The condition makes concurrent first uses (or another daemon on the same
   * database) write at most once per interval; updated_at is left alone (it tracks changes).
   */
  async touch(orgId: string, id: string, ip: string | null, at: Date, minIntervalMs: number): Promise<void> {
    await writing(this.cache, async (touch) => {
      touch(TABLE);
      await this.knex(TABLE)
        .where({ org_id: orgId, id })
        .where((w) => w.whereNull('last_used_at').orWhere('last_used_at', '<=', new Date(at.getTime() - minIntervalMs)))
        .update({ last_used_at: at, last_ip: ip });
    });
  }
}
