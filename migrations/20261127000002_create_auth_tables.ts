import type { Knex } from 'knex';

/**
 * Sessions (one row per issued refresh token, grouped in families for reuse detection), API keys,
 * TOTP enrolments and their recovery codes. Every secret is stored only as a hash or encrypted.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('sessions', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('user_id').notNullable().references('users.id').onDelete('CASCADE');
    /** All sessions descended from one login; presenting a spent refresh token revokes the family. */
    t.uuid('family_id').notNullable();
    /** sha256 of the opaque refresh token. */
    t.text('refresh_hash').notNullable().unique();
    t.timestamp('expires_at', { useTz: true }).notNullable();
    /** Set when its refresh token was exchanged for a new one. */
    t.timestamp('rotated_at', { useTz: true });
    t.timestamp('revoked_at', { useTz: true });
    t.text('ip');
    t.text('user_agent');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['user_id']);
    t.index(['family_id']);
  });

  await knex.schema.createTable('api_keys', (t) => {
    t.uuid('org_id').notNullable().references('organizations.id').onDelete('CASCADE');
    t.uuid('id').notNullable().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('name').notNullable();
    /** First characters of the key, for recognising it in lists. */
    t.text('prefix').notNullable();
    /** sha256 of the whole key: keys carry ≥128 random bits, so a fast hash is enough. */
    t.text('secret_hash').notNullable().unique();
    /** After a rotation the previous secret stays valid until previous_valid_until. */
    t.text('previous_secret_hash');
    t.timestamp('previous_valid_until', { useTz: true });
    t.specificType('scopes', 'text[]').notNullable();
    t.timestamp('expires_at', { useTz: true });
    t.timestamp('revoked_at', { useTz: true });
    t.timestamp('last_used_at', { useTz: true });
    t.text('last_ip');
    t.uuid('created_by');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['org_id', 'id']);
    t.unique(['id']);
    t.index(['previous_secret_hash']);
  });

  await knex.schema.createTable('user_totp', (t) => {
    t.uuid('user_id').primary().references('users.id').onDelete('CASCADE');
    /** AES-256-GCM with auth.encryption_key: iv.tag.ciphertext, base64url. */
    t.text('secret_enc').notNullable();
    t.timestamp('enabled_at', { useTz: true });
    /** Last accepted time step: a code is accepted once. */
    t.bigInteger('last_step');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  await knex.schema.createTable('recovery_codes', (t) => {
    t.uuid('user_id').notNullable().references('users.id').onDelete('CASCADE');
    t.text('code_hash').notNullable();
    t.timestamp('used_at', { useTz: true });
    t.primary(['user_id', 'code_hash']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('recovery_codes');
  await knex.schema.dropTable('user_totp');
  await knex.schema.dropTable('api_keys');
  await knex.schema.dropTable('sessions');
}
