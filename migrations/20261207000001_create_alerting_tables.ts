import type { Knex } from 'knex';

/**
 * Alerting (DESIGN §6 Alerts and Heartbeats, §7; issue 10): notification channels, the
 * notification outbox and its delivery attempts, alert rules, alert instances and their
 * notification groups, silences, maintenance windows, heartbeats.
 *
 * Tenant tables lead their keys with org_id (DESIGN §3). The exceptions hold Sentinel's own
 * (instance-level) alerts, which belong to no org: `alerts` and `alert_groups` are keyed by id
 * with org_id nullable, and what is read per org goes through indexes that lead with org_id.
 * An org's rows go with it (cascade).
 */
export async function up(knex: Knex): Promise<void> {
  const now = knex.fn.now();
  const uuidPk = () => knex.raw('gen_random_uuid()');

  await knex.schema.createTable('notification_channels', (t) => {
    t.uuid('org_id').notNullable().references('organizations.id').onDelete('CASCADE');
    t.uuid('id').notNullable().defaultTo(uuidPk());
    t.text('name').notNullable();
    t.text('type').notNullable().checkIn(['webhook', 'email', 'slack']);
    /** What may be shown: webhook {url}, email {to}, slack {} (its URL is a secret). */
    t.jsonb('config').notNullable();
    /** Write-only settings (webhook secret, Slack webhook URL) as JSON sealed with AES-256-GCM (core/secrets.ts SecretBox); null: none. */
    t.text('secrets_sealed');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(now);
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(now);
    t.primary(['org_id', 'id']);
    t.unique(['org_id', 'name']);
    t.unique(['id']);
  });

  // The outbox: one row per (notification, channel), stored before delivery is queued.
  await knex.schema.createTable('notifications', (t) => {
    t.uuid('org_id').notNullable().references('organizations.id').onDelete('CASCADE');
    t.uuid('id').notNullable().defaultTo(uuidPk());
    t.uuid('channel_id').notNullable();
    t.text('dedup_key').notNullable();
    t.text('group_key').notNullable();
    t.uuid('rule_id');
    t.text('status').notNullable().checkIn(['firing', 'resolved', 'test']);
    /** The v4 payload (without the signature); email and Slack render from it. */
    t.jsonb('payload').notNullable();
    t.text('state').notNullable().checkIn(['queued', 'sent', 'retrying', 'failed']);
    t.integer('attempts').notNullable().defaultTo(0);
    t.text('last_error');
    t.integer('last_status_code');
    t.uuid('resend_of');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(now);
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(now);
    t.timestamp('sent_at', { useTz: true });
    t.primary(['org_id', 'id']);
    t.unique(['org_id', 'channel_id', 'dedup_key']);
    t.foreign(['org_id', 'channel_id']).references(['org_id', 'id']).inTable('notification_channels').onDelete('CASCADE');
  });
  await knex.raw('create index notifications_org_created on notifications (org_id, created_at desc, id desc)');
  await knex.raw("create index notifications_pending on notifications (created_at) where state in ('queued', 'retrying')");

  await knex.schema.createTable('notification_attempts', (t) => {
    t.uuid('org_id').notNullable();
    t.uuid('notification_id').notNullable();
    t.integer('attempt').notNullable();
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(now);
    t.text('outcome').notNullable().checkIn(['sent', 'retrying', 'failed']);
    t.integer('status_code');
    t.text('error');
    t.integer('latency_ms').notNullable();
    t.primary(['org_id', 'notification_id', 'attempt']);
    t.foreign(['org_id', 'notification_id']).references(['org_id', 'id']).inTable('notifications').onDelete('CASCADE');
  });

  await knex.schema.createTable('alert_rules', (t) => {
    t.uuid('org_id').notNullable().references('organizations.id').onDelete('CASCADE');
    t.uuid('id').notNullable().defaultTo(uuidPk());
    t.text('name').notNullable();
    t.text('kind').notNullable().checkIn(['threshold', 'no_data', 'log_count', 'rate_of_change']);
    t.jsonb('query').notNullable();
    t.text('op');
    t.double('threshold');
    t.double('recovery_threshold');
    t.integer('interval_ms').notNullable();
    t.integer('for_ms').notNullable().defaultTo(0);
    t.integer('keep_firing_for_ms').notNullable().defaultTo(0);
    t.text('severity').notNullable();
    t.jsonb('labels').notNullable().defaultTo('{}');
    t.jsonb('annotations').notNullable().defaultTo('{}');
    t.specificType('channels', 'uuid[]').notNullable().defaultTo('{}');
    t.specificType('group_by', 'text[]').notNullable().defaultTo('{}');
    t.integer('group_wait_ms').notNullable();
    t.integer('group_interval_ms').notNullable();
    t.integer('repeat_interval_ms').notNullable();
    t.boolean('enabled').notNullable().defaultTo(true);
    /** When an evaluator should next take it (claimed with FOR UPDATE SKIP LOCKED and moved on by one interval). */
    t.timestamp('next_eval_at', { useTz: true }).notNullable().defaultTo(now);
    t.timestamp('last_eval_at', { useTz: true });
    t.text('last_error');
    t.uuid('created_by');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(now);
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(now);
    t.primary(['org_id', 'id']);
    t.unique(['org_id', 'name']);
    t.unique(['id']);
  });
  await knex.raw('create index alert_rules_due on alert_rules (next_eval_at) where enabled');

  // One row per alert instance: a rule's per-group (by) instance, a heartbeat, an instance check.
  await knex.schema.createTable('alerts', (t) => {
    t.uuid('id').primary().defaultTo(uuidPk());
    t.uuid('org_id').references('organizations.id').onDelete('CASCADE');
    t.text('source').notNullable().checkIn(['rule', 'heartbeat', 'instance']);
    /** The rule's or heartbeat's id, or the instance check's name. */
    t.text('source_id').notNullable();
    /** Null once its rule is deleted (source_id keeps the id): the resolved notification still goes out. */
    t.uuid('rule_id').references('alert_rules.id').onDelete('SET NULL');
    /** sha256 of the alert's identifying labels (hex, 16 chars as Alertmanager's are). */
    t.text('fingerprint').notNullable();
    /** Its notification group (alert-types.ts groupKeyOf of its source and group_by labels): the notification policy reads a group's alerts by it. */
    t.text('group_key');
    t.jsonb('labels').notNullable();
    t.jsonb('annotations').notNullable().defaultTo('{}');
    t.text('state').notNullable().checkIn(['ok', 'pending', 'firing', 'resolved', 'no_data', 'error']);
    t.double('value');
    t.text('error');
    /** Since when the condition holds (pending or firing). */
    t.timestamp('active_at', { useTz: true });
    t.timestamp('fired_at', { useTz: true });
    t.timestamp('resolved_at', { useTz: true });
    /** Last time the condition held (keep_firing_for counts from it). */
    t.timestamp('last_breach_at', { useTz: true });
    t.timestamp('last_eval_at', { useTz: true });
    /** When the current firing episode was last notified (null: not yet); resolved_notified_at likewise for its resolve. */
    t.timestamp('firing_notified_at', { useTz: true });
    t.timestamp('resolved_notified_at', { useTz: true });
    t.uuid('ack_by');
    t.timestamp('ack_at', { useTz: true });
    t.text('ack_comment');
    t.timestamp('ack_expires_at', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(now);
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(now);
  });
  await knex.raw("create unique index alerts_identity on alerts (coalesce(org_id, '00000000-0000-0000-0000-000000000000'::uuid), source, source_id, fingerprint)");
  await knex.raw('create index alerts_org_state on alerts (org_id, state, updated_at desc)');
  await knex.raw('create index alerts_group on alerts (group_key) where group_key is not null');

  // Notification groups: one per rule (or heartbeat, instance check) and group_by values.
  await knex.schema.createTable('alert_groups', (t) => {
    t.uuid('id').primary().defaultTo(uuidPk());
    t.uuid('org_id').references('organizations.id').onDelete('CASCADE');
    t.text('group_key').notNullable().unique();
    t.text('source').notNullable();
    t.text('source_id').notNullable();
    t.jsonb('group_labels').notNullable().defaultTo('{}');
    /** The source's notification settings, snapshotted at each touch (features/alerts/alert-types.ts GroupSettings). */
    t.text('receiver').notNullable();
    t.specificType('channels', 'uuid[]').notNullable().defaultTo('{}');
    t.integer('group_wait_ms').notNullable();
    t.integer('group_interval_ms').notNullable();
    t.integer('repeat_interval_ms').notNullable();
    /** Bumped by each notification sent: the dedup key of the next one (a crash between dispatch and commit resends the same key). */
    t.integer('seq').notNullable().defaultTo(0);
    t.timestamp('first_seen_at', { useTz: true });
    t.timestamp('last_notified_at', { useTz: true });
    /** When the group should be looked at again (group_wait, group_interval, repeat_interval, a silence's end); null: nothing pending. */
    t.timestamp('next_flush_at', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(now);
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(now);
  });
  await knex.raw('create index alert_groups_due on alert_groups (next_flush_at) where next_flush_at is not null');
  await knex.raw('create index alert_groups_org on alert_groups (org_id)');

  await knex.schema.createTable('silences', (t) => {
    t.uuid('org_id').notNullable().references('organizations.id').onDelete('CASCADE');
    t.uuid('id').notNullable().defaultTo(uuidPk());
    t.jsonb('matchers').notNullable();
    t.timestamp('starts_at', { useTz: true }).notNullable();
    t.timestamp('ends_at', { useTz: true }).notNullable();
    t.uuid('created_by');
    t.text('comment').notNullable().defaultTo('');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(now);
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(now);
    t.primary(['org_id', 'id']);
  });
  await knex.raw('create index silences_org_ends on silences (org_id, ends_at)');

  await knex.schema.createTable('maintenance_windows', (t) => {
    t.uuid('org_id').notNullable().references('organizations.id').onDelete('CASCADE');
    t.uuid('id').notNullable().defaultTo(uuidPk());
    t.text('name').notNullable();
    t.jsonb('matchers').notNullable();
    /** ISO weekdays, 1 = Monday … 7 = Sunday. */
    t.specificType('weekdays', 'smallint[]').notNullable();
    /** "HH:MM" local time in time_zone; end before start spans midnight. */
    t.text('start_time').notNullable();
    t.text('end_time').notNullable();
    t.text('time_zone').notNullable();
    t.uuid('created_by');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(now);
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(now);
    t.primary(['org_id', 'id']);
    t.unique(['org_id', 'name']);
  });

  await knex.schema.createTable('heartbeats', (t) => {
    t.uuid('org_id').notNullable().references('organizations.id').onDelete('CASCADE');
    t.uuid('id').notNullable().defaultTo(uuidPk());
    t.text('name').notNullable();
    /** sha256 of the ping token (the lookup); the token itself sealed (shown to the org's users, never logged). */
    t.text('token_hash').notNullable().unique();
    t.text('token_sealed').notNullable();
    // bigint: 31 days in ms is past int4 (and so is period + grace).
    t.bigInteger('period_ms').notNullable();
    t.bigInteger('grace_ms').notNullable();
    t.specificType('channels', 'uuid[]').notNullable().defaultTo('{}');
    t.jsonb('labels').notNullable().defaultTo('{}');
    t.text('severity').notNullable().defaultTo('critical');
    /** new: never pinged; up; down: missed (its alert fires). */
    t.text('state').notNullable().checkIn(['new', 'up', 'down']).defaultTo('new');
    t.timestamp('last_ping_at', { useTz: true });
    /** last ping (or creation) + period + grace: when it is missed. */
    t.timestamp('due_at', { useTz: true }).notNullable();
    t.uuid('created_by');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(now);
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(now);
    t.primary(['org_id', 'id']);
    t.unique(['org_id', 'name']);
    t.unique(['id']);
  });
  await knex.raw("create index heartbeats_due on heartbeats (due_at) where state <> 'down'");
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ['heartbeats', 'maintenance_windows', 'silences', 'alert_groups', 'alerts', 'alert_rules', 'notification_attempts', 'notifications', 'notification_channels']) {
    await knex.schema.dropTableIfExists(table);
  }
}
