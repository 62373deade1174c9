import { Type, type TSchema } from '@sinclair/typebox';
import type { Actor, RequestMeta } from '../../core/actor.js';
import type { AuditSink } from '../../core/audit.js';
import type { OrgAccess } from '../../core/authorize.js';
import { conflictOnUnique, notFound } from '../../core/errors.js';
import { isUuid } from '../../core/ids.js';
import { pageLimit, toPage, type Page, type PageRequest, uuidCursor } from '../../core/pagination.js';
import type { SecretBox } from '../../core/secrets.js';
import { compile, validationError, type Validator } from '../../core/validation.js';
import { openSecrets } from './channel-sender.js';
import type { ChannelRow, ChannelsRepository } from './channels-repository.js';
import {
  CreateChannelBody,
  EmailConfig,
  PatchChannelBody,
  SlackConfig,
  SlackPatchConfig,
  WebhookConfig,
  WebhookPatchConfig,
  WRITE_ONLY,
  type Channel,
  type ChannelTestResult,
  type ChannelType,
  type CreateChannelInput,
  type PatchChannelInput,
} from './notifications-schemas.js';
import { checkOutboundUrl, OutboundRefused } from './outbound-guard.js';

/** Runs one test delivery through a channel now and records it (the delivery service's). */
export type ChannelTester = (orgId: string, channel: ChannelRow) => Promise<ChannelTestResult>;

export interface ChannelsDeps {
  repo: ChannelsRepository;
  orgs: OrgAccess;
  audit: AuditSink;
  box: SecretBox;
  /** notifications.allow_private_networks. */
  allowPrivate: boolean;
  test: ChannelTester;
}

type Config = Record<string, unknown>;

// The config of each type checked under body/config, so an error names body/config/url.
const underConfig = (schema: TSchema) => compile(Type.Object({ config: schema }, { additionalProperties: true })) as Validator<{ config: Config }>;
const CREATE: Record<ChannelType, Validator<{ config: Config }>> = {
  webhook: underConfig(WebhookConfig),
  email: underConfig(EmailConfig),
  slack: underConfig(SlackConfig),
};
const PATCH: Record<ChannelType, Validator<{ config: Config }>> = {
  webhook: underConfig(WebhookPatchConfig),
  email: underConfig(EmailConfig),
  slack: underConfig(SlackPatchConfig),
};
const validCreate = compile(CreateChannelBody);
const validPatch = compile(PatchChannelBody);

/** The URL fields the guard checks, per type. */
const URL_FIELDS: Record<ChannelType, string[]> = { webhook: ['url'], email: [], slack: ['webhook_url'] };

/**
 * Notification channels (issue 10 point 5): webhook, email, Slack. Write-only settings (the
 * webhook secret, the Slack URL, which is itself the credential) are sealed with SecretBox and
 * never answered, logged or audited; the answer names which are set. URLs pass the outbound
 * guard when saved (and again at every send).
 */
export class ChannelsService {
  constructor(private readonly d: ChannelsDeps) {}

  present(row: ChannelRow): Channel {
    const secrets = openSecrets(this.d.box, row);
    return {
      id: row.id,
      name: row.name,
      type: row.type,
      config: row.config,
      secrets_set: WRITE_ONLY[row.type].filter((k) => typeof secrets[k] === 'string'),
      created_at: row.created_at.toISOString(),
      updated_at: row.updated_at.toISOString(),
    };
  }

  async list(actor: Actor, slug: string, page: PageRequest = {}): Promise<Page<Channel>> {
    const org = await this.d.orgs.require(actor, slug, 'channel.manage');
    const limit = pageLimit(page.limit);
    const after = uuidCursor(page.cursor);
    const p = toPage(await this.d.repo.list(org.id, limit + 1, after), limit, (r) => r.id);
    return { items: p.items.map((r) => this.present(r)), next_cursor: p.next_cursor };
  }

  async get(actor: Actor, slug: string, id: string): Promise<Channel> {
    const org = await this.d.orgs.require(actor, slug, 'channel.manage');
    return this.present(await this.mustFind(org.id, id));
  }

  async create(actor: Actor, slug: string, input: CreateChannelInput, meta: RequestMeta = {}): Promise<Channel> {
    const org = await this.d.orgs.require(actor, slug, 'channel.manage');
    input = validCreate(input);
    const { config } = CREATE[input.type](input);
    await this.checkUrls(input.type, config);
    const { shown, secrets } = split(input.type, config, {});
    const name = input.name.trim();
    const row = await conflictOnUnique(
      () => this.d.repo.insert(org.id, { name, type: input.type, config: shown, secrets_sealed: this.seal(secrets) }),
      `a channel named '${name}' exists in this organization`,
    );
    await this.audit(actor, 'channel.create', row, meta);
    return this.present(row);
  }

  async update(actor: Actor, slug: string, id: string, input: PatchChannelInput, meta: RequestMeta = {}): Promise<Channel> {
    const org = await this.d.orgs.require(actor, slug, 'channel.manage');
    input = validPatch(input);
    const current = await this.mustFind(org.id, id);
    const patch: Parameters<ChannelsRepository['update']>[2] = {};
    if (input.name !== undefined) patch.name = input.name.trim();
    if (input.config !== undefined) {
      const { config } = PATCH[current.type]({ config: input.config });
      await this.checkUrls(current.type, config);
      const { shown, secrets } = split(current.type, config, openSecrets(this.d.box, current));
      patch.config = shown;
      patch.secrets_sealed = this.seal(secrets);
    }
    const row = await conflictOnUnique(() => this.d.repo.update(org.id, current.id, patch), `a channel named '${patch.name}' exists in this organization`);
    if (!row) throw notFound('channel');
    await this.audit(actor, 'channel.update', row, meta, { changed: Object.keys(input) });
    return this.present(row);
  }

  /** Its queued notifications and their record go with it (cascade). */
  async delete(actor: Actor, slug: string, id: string, meta: RequestMeta = {}): Promise<void> {
    const org = await this.d.orgs.require(actor, slug, 'channel.manage');
    const row = isUuid(id) ? await this.d.repo.delete(org.id, id) : undefined;
    if (!row) throw notFound('channel');
    await this.audit(actor, 'channel.delete', row, meta);
  }

  /** Sends a test message now (one attempt) and answers its outcome; recorded in the delivery log. */
  async test(actor: Actor, slug: string, id: string, meta: RequestMeta = {}): Promise<ChannelTestResult> {
    const org = await this.d.orgs.require(actor, slug, 'channel.manage');
    const channel = await this.mustFind(org.id, id);
    const result = await this.d.test(org.id, channel);
    await this.audit(actor, 'channel.test', channel, meta, { ok: result.ok, notification_id: result.notification_id });
    return result;
  }

  /** ChannelDirectory: the ids among `ids` that are not channels of this org. */
  async missing(orgId: string, ids: string[]): Promise<string[]> {
    const valid = ids.filter(isUuid);
    const found = new Set(await this.d.repo.existing(orgId, valid));
    return ids.filter((i) => !found.has(i));
  }

  private async mustFind(orgId: string, id: string): Promise<ChannelRow> {
    const row = isUuid(id) ? await this.d.repo.find(orgId, id) : undefined;
    if (!row) throw notFound('channel');
    return row;
  }

  private async checkUrls(type: ChannelType, config: Config): Promise<void> {
    for (const field of URL_FIELDS[type]) {
      const url = config[field];
      if (typeof url !== 'string') continue;
      try {
        await checkOutboundUrl(url, this.d.allowPrivate);
      } catch (err) {
        if (err instanceof OutboundRefused) throw validationError([{ path: `body/config/${field}`, message: err.message }]);
        throw err;
      }
    }
  }

  private seal(secrets: Record<string, string>): string | null {
    return Object.keys(secrets).length > 0 ? this.d.box.seal(JSON.stringify(secrets)) : null;
  }

  // Never the secrets: name and type only.
  private async audit(actor: Actor, action: string, row: ChannelRow, meta: RequestMeta, extra: Record<string, unknown> = {}): Promise<void> {
    await this.d.audit.record({ actor, action, orgId: row.org_id, targetType: 'channel', targetId: row.id, details: { name: row.name, type: row.type, ...extra }, ...meta });
  }
}

/**
 * Splits a written config into what may be shown and the write-only fields. A write-only field
 * left out keeps its `stored` value; null removes it (the webhook secret).
 */
function split(type: ChannelType, config: Config, stored: Record<string, string>): { shown: Config; secrets: Record<string, string> } {
  const shown: Config = {};
  const secrets: Record<string, string> = {};
  for (const [k, v] of Object.entries(config)) {
    if (WRITE_ONLY[type].includes(k)) {
      if (typeof v === 'string') secrets[k] = k === 'secret' ? v : v.trim();
    } else shown[k] = k === 'to' ? (v as string[]).map((a) => a.trim()) : typeof v === 'string' ? v.trim() : v;
  }
  for (const k of WRITE_ONLY[type]) if (!(k in config) && stored[k] !== undefined) secrets[k] = stored[k];
  return { shown, secrets };
}
