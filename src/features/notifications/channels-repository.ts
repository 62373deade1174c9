import type { Knex } from 'knex';
import type { ChannelType } from './notifications-schemas.js';

export interface ChannelRow {
  org_id: string;
  id: string;
  name: string;
  type: ChannelType;
  /** What may be shown: webhook {url}, email {to}, slack {}. */
  config: Record<string, unknown>;
  /** The write-only fields as JSON sealed with SecretBox; null: none. */
  secrets_sealed: string | null;
  created_at: Date;
  updated_at: Date;
}

const TABLE = 'notification_channels';

/** Notification channels; every method but `findAnyOrg` is scoped to one org. */
export class ChannelsRepository {
  constructor(private readonly knex: Knex) {}

  async insert(orgId: string, c: Pick<ChannelRow, 'name' | 'type' | 'config' | 'secrets_sealed'>): Promise<ChannelRow> {
    const [row] = await this.knex<ChannelRow>(TABLE)
      .insert({ org_id: orgId, name: c.name, type: c.type, config: JSON.stringify(c.config) as never, secrets_sealed: c.secrets_sealed })
      .returning('*');
    return row as ChannelRow;
  }

  async find(orgId: string, id: string): Promise<ChannelRow | undefined> {
    return this.knex<ChannelRow>(TABLE).where({ org_id: orgId, id }).first();
  }

  /** Oldest first; `afterId` is the keyset cursor (the last row of the previous page). */
  async list(orgId: string, limit: number, afterId?: string): Promise<ChannelRow[]> {
    const q = this.knex<ChannelRow>(TABLE)
      .where({ org_id: orgId })
      .orderBy([{ column: 'created_at' }, { column: 'id' }])
      .limit(limit);
    // The cursor row's key is compared in SQL: a timestamp through JavaScript loses microseconds.
    if (afterId !== undefined) q.whereRaw('(created_at, id) > (select c.created_at, c.id from notification_channels c where c.org_id = ? and c.id = ?)', [orgId, afterId]);
    return q;
  }

  async update(orgId: string, id: string, patch: Partial<Pick<ChannelRow, 'name' | 'config' | 'secrets_sealed'>>): Promise<ChannelRow | undefined> {
    const set: Record<string, unknown> = { updated_at: this.knex.fn.now() };
    if (patch.name !== undefined) set.name = patch.name;
    if (patch.config !== undefined) set.config = JSON.stringify(patch.config);
    if (patch.secrets_sealed !== undefined) set.secrets_sealed = patch.secrets_sealed;
    const [row] = await this.knex<ChannelRow>(TABLE).where({ org_id: orgId, id }).update(set).returning('*');
    return row as ChannelRow | undefined;
  }

  async delete(orgId: string, id: string): Promise<ChannelRow | undefined> {
    const [row] = await this.knex<ChannelRow>(TABLE).where({ org_id: orgId, id }).delete().returning('*');
    return row as ChannelRow | undefined;
  }

  /** The ids among `ids` that are channels of this org. */
  async existing(orgId: string, ids: string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    const rows = await this.knex(TABLE).where({ org_id: orgId }).whereIn('id', ids).select<{ id: string }[]>('id');
    return rows.map((r) => r.id);
  }

  /**
   * Not tenant scoped, deliberately: Sentinel's own (instance-level) alerts go to the channels
   * the operator named in alerts.instance_channels, of whatever org. Only the notifier calls it,
   * for a request whose orgId is null.
   */
  async findAnyOrg(ids: string[]): Promise<ChannelRow[]> {
    if (ids.length === 0) return [];
    return this.knex<ChannelRow>(TABLE).whereIn('id', ids);
  }

  async findMany(orgId: string, ids: string[]): Promise<ChannelRow[]> {
    if (ids.length === 0) return [];
    return this.knex<ChannelRow>(TABLE).where({ org_id: orgId }).whereIn('id', ids);
  }
}
