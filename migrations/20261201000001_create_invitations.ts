import type { Knex } from 'knex';

/**
 * Pending invitations to join an organization (DESIGN §7 "Membership"). An org admin who adds
 * someone by email creates one of these instead of a membership, whether or not a user with that
 * email exists, so the answer tells nothing about other tenants' users; the invitee sees it in
 * GET /auth/invitations and accepts or declines it. Keyed by email (lower-cased), not user id:
 * an invitation for an address that has no account yet is stored the same way.
 * Accepted or declined invitations are deleted (the audit log keeps the history); expired ones
 * are ignored and replaced by the next invitation for the same address.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('invitations', (t) => {
    t.uuid('org_id').notNullable().references('organizations.id').onDelete('CASCADE');
    t.uuid('id').notNullable().defaultTo(knex.raw('gen_random_uuid()'));
    /** Trimmed and lower-cased, as compared with lower(users.email). */
    t.text('email').notNullable();
    t.text('role').notNullable().checkIn(['owner', 'admin', 'editor', 'viewer']);
    /** No foreign key: an invitation stays valid when the admin who sent it is deleted. */
    t.uuid('invited_by');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.primary(['org_id', 'id']);
    // One pending invitation per org and address: inviting again refreshes it.
    t.unique(['org_id', 'email']);
  });
  // The invitee's side (list, accept, decline) looks up by address across orgs.
  await knex.raw('create index invitations_email on invitations (email, id)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('invitations');
}
