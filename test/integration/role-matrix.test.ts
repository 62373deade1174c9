import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/config/paths.js';
import type { Services } from '../../src/app/build-app.js';
import { SYSTEM_ACTOR } from '../../src/core/actor.js';
import { PERMISSIONS, type ApiKeyScope, type Permission } from '../../src/core/permissions.js';
import type { RouteInfo } from '../../src/http/registry.js';
import { cloneDatabase, dropDatabase } from '../support/db.js';
import { createApiKey, createUser } from '../support/factories.js';
import { ApiClient, expectProblem, fillPath, type Answer } from '../support/http.js';
import { tenantChecksum } from '../support/tenant-checksum.js';
import { addMember, createTenant, type Tenant } from '../support/tenants.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * Role matrix: every mutating endpoint under /organizations/{org} × every org role, plus a
 * superadmin, a non-member, and API keys of every scope. Each call runs in a fresh org that has
 * its own owner besides the caller (last-owner rules never interfere), and must be allowed (the
 * route's success status) or refused exactly as the permission table `PERMISSIONS` says: the least
 * role comes from the table, not from this file. A refused call changes none of the org's rows.
 *
 * Rules from the README beyond one permission per route, encoded in MUTATIONS:
 * - giving the owner role, or changing or removing an owner, also needs `member.manage_owners`;
 * - API keys never create, rotate or revoke keys: those routes take user tokens only (403 for a key);
 * - superadmins may do everything without being members; a non-member gets 404, never 403;
 * - adding a member: superadmins add directly (201); everyone else allowed to manage members
 *   invites by email (202) and may not add by user_id at all (403).
 */

const MANY = { SENTINEL_RATE_LIMITS_API_PER_MINUTE: '100000000', SENTINEL_RATE_LIMITS_LOGIN_PER_MINUTE_PER_IP: '100000000' };

/** README: roles are ordered viewer < editor < admin < owner, a role can do all a lower one can. */
const ROLES = ['viewer', 'editor', 'admin', 'owner'] as const;
type Role = (typeof ROLES)[number];
/** README: scopes imply the narrower ones, admin ⊇ write ⊇ read; ingest stands alone. */
const SCOPE_GRANTS: Record<ApiKeyScope, ApiKeyScope[]> = { ingest: ['ingest'], read: ['read'], write: ['write', 'read'], admin: ['admin', 'write', 'read'] };
const SCOPES = Object.keys(SCOPE_GRANTS) as ApiKeyScope[];

interface Case {
  label: string;
  /** Every permission the call needs (the table decides who holds them). */
  perms: Permission[];
  /** Status when allowed. */
  status: number;
  /** Status for a superadmin, when it differs (they add members directly instead of inviting). */
  superadminStatus?: number;
  /** May make what the call aims at first (a heartbeat to change), as the system actor through `services`. */
  request(org: Tenant, services: Services): { params: Record<string, string>; body?: unknown } | Promise<{ params: Record<string, string>; body?: unknown }>;
}

interface RouteRules {
  cases: Case[];
  /** README: these routes take user tokens only, whatever the key's scopes (a key gets 403). */
  userTokenOnly?: boolean;
}

/** A valid silence (ending tomorrow) and maintenance window (silences and maintenance-windows routes' cases). */
const SILENCE = () => ({ matchers: [{ name: 'service', op: '=~' as const, value: 'db-.*' }], ends_at: new Date(Date.now() + 86_400_000).toISOString(), comment: 'maintenance' });
const WINDOW = { name: 'nightly', matchers: [{ name: 'env', op: '=' as const, value: 'staging' }], weekdays: [1, 2, 3, 4, 5], start: '02:00', end: '04:00', time_zone: 'Europe/Berlin' };

/** A valid alert rule (alert-rules routes' cases). */
const ALERT_RULE = { name: 'cpu', kind: 'threshold', query: { name: 'cpu', agg: 'avg', window: 60 }, op: '>', threshold: 80, interval: 60, severity: 'warning' } as const;

/** A valid notification channel (channel routes' cases). */
const EMAIL_CHANNEL = { name: 'ops', type: 'email', config: { to: ['a@example.test'] } } as const;

/** Every mutating route under /organizations/{org}, keyed by `METHOD path`. */
const MUTATIONS: Record<string, RouteRules> = {
  'POST /organizations/{org}/telemetry': {
    cases: [
      {
        label: 'send telemetry',
        perms: ['telemetry.ingest'],
        status: 202,
        request: (o) => ({ params: { org: o.org.slug }, body: { metrics: [{ name: 'm', value: 1 }], logs: [{ level: 'info', message: 'l' }], events: [{ type: 'e', title: 't' }] } }),
      },
    ],
  },
  'PATCH /organizations/{org}': {
    cases: [
      { label: 'rename and set limits', perms: ['org.update'], status: 200, request: (o) => ({ params: { org: o.org.slug }, body: { name: 'Renamed', limits: { max_series: 1234 } } }) },
    ],
  },
  'DELETE /organizations/{org}': {
    cases: [{ label: 'delete the org', perms: ['org.delete'], status: 204, request: (o) => ({ params: { org: o.org.slug } }) }],
  },
  'POST /organizations/{org}/members': {
    cases: [
      {
        label: 'add a viewer by user_id (superadmins only)',
        perms: ['member.manage'],
        status: 403,
        superadminStatus: 201,
        request: (o) => ({ params: { org: o.org.slug }, body: { user_id: o.outsider.id, role: 'viewer' } }),
      },
      {
        label: 'invite a viewer by email',
        perms: ['member.manage'],
        status: 202,
        superadminStatus: 201,
        request: (o) => ({ params: { org: o.org.slug }, body: { email: o.outsider.email, role: 'viewer' } }),
      },
      {
        label: 'add an owner by email',
        perms: ['member.manage', 'member.manage_owners'],
        status: 202,
        superadminStatus: 201,
        request: (o) => ({ params: { org: o.org.slug }, body: { email: o.outsider.email, role: 'owner' } }),
      },
    ],
  },
  'PATCH /organizations/{org}/members/{user_id}': {
    cases: [
      { label: 'viewer → editor', perms: ['member.manage'], status: 200, request: (o) => ({ params: { org: o.org.slug, user_id: o.viewer.id }, body: { role: 'editor' } }) },
      {
        label: 'viewer → owner',
        perms: ['member.manage', 'member.manage_owners'],
        status: 200,
        request: (o) => ({ params: { org: o.org.slug, user_id: o.viewer.id }, body: { role: 'owner' } }),
      },
      {
        label: 'owner → admin',
        perms: ['member.manage', 'member.manage_owners'],
        status: 200,
        request: (o) => ({ params: { org: o.org.slug, user_id: o.coOwner.id }, body: { role: 'admin' } }),
      },
    ],
  },
  'DELETE /organizations/{org}/members/{user_id}': {
    cases: [
      { label: 'remove a viewer', perms: ['member.manage'], status: 204, request: (o) => ({ params: { org: o.org.slug, user_id: o.viewer.id } }) },
      { label: 'remove an owner', perms: ['member.manage', 'member.manage_owners'], status: 204, request: (o) => ({ params: { org: o.org.slug, user_id: o.coOwner.id } }) },
    ],
  },
  'POST /organizations/{org}/reports': {
    cases: [
      {
        label: "generate yesterday's report",
        perms: ['report.generate'],
        status: 201,
        request: (o) => ({ params: { org: o.org.slug }, body: { kind: 'daily', date: new Date(Date.now() - 86_400_000).toISOString().slice(0, 10) } }),
      },
    ],
  },
  'POST /organizations/{org}/heartbeats': {
    cases: [{ label: 'create a heartbeat', perms: ['alert.write'], status: 201, request: (o) => ({ params: { org: o.org.slug }, body: { name: 'nightly', period: '1h', grace: '5m' } }) }],
  },
  'PATCH /organizations/{org}/heartbeats/{id}': {
    cases: [
      {
        label: 'change a heartbeat',
        perms: ['alert.write'],
        status: 200,
        request: async (o, s) => ({ params: { org: o.org.slug, id: (await s.heartbeats.create(SYSTEM_ACTOR, o.org.slug, { name: 'hb', period: 60, grace: 5 })).id }, body: { period: '2m' } }),
      },
    ],
  },
  'DELETE /organizations/{org}/heartbeats/{id}': {
    cases: [
      {
        label: 'delete a heartbeat',
        perms: ['alert.write'],
        status: 204,
        request: async (o, s) => ({ params: { org: o.org.slug, id: (await s.heartbeats.create(SYSTEM_ACTOR, o.org.slug, { name: 'hb', period: 60, grace: 5 })).id } }),
      },
    ],
  },
  'POST /organizations/{org}/heartbeats/{id}/rotate-token': {
    cases: [
      {
        label: "rotate a heartbeat's token",
        perms: ['alert.write'],
        status: 200,
        request: async (o, s) => ({ params: { org: o.org.slug, id: (await s.heartbeats.create(SYSTEM_ACTOR, o.org.slug, { name: 'hb', period: 60, grace: 5 })).id } }),
      },
    ],
  },
  'POST /organizations/{org}/alert-rules': {
    cases: [{ label: 'create an alert rule', perms: ['alert.write'], status: 201, request: (o) => ({ params: { org: o.org.slug }, body: ALERT_RULE }) }],
  },
  'PATCH /organizations/{org}/alert-rules/{id}': {
    cases: [
      {
        label: 'change an alert rule',
        perms: ['alert.write'],
        status: 200,
        request: async (o, s) => ({ params: { org: o.org.slug, id: (await s.alertRules.create(SYSTEM_ACTOR, o.org.slug, ALERT_RULE)).id }, body: { threshold: 90 } }),
      },
    ],
  },
  'DELETE /organizations/{org}/alert-rules/{id}': {
    cases: [
      {
        label: 'delete an alert rule',
        perms: ['alert.write'],
        status: 204,
        request: async (o, s) => ({ params: { org: o.org.slug, id: (await s.alertRules.create(SYSTEM_ACTOR, o.org.slug, ALERT_RULE)).id } }),
      },
    ],
  },
  'POST /organizations/{org}/alert-rules/{id}/preview': {
    cases: [
      {
        label: 'preview an alert rule (the last hour; writes nothing)',
        perms: ['alert.write'],
        status: 200,
        request: async (o, s) => ({ params: { org: o.org.slug, id: (await s.alertRules.create(SYSTEM_ACTOR, o.org.slug, ALERT_RULE)).id } }),
      },
    ],
  },
  'POST /organizations/{org}/alerts/{id}/ack': {
    cases: [
      {
        label: 'acknowledge a firing alert',
        perms: ['alert.write'],
        status: 200,
        request: async (o, s) => {
          // A no_data rule over a metric the org never sent fires at its first evaluation.
          const rule = await s.alertRules.create(SYSTEM_ACTOR, o.org.slug, { name: 'silent', kind: 'no_data', query: { name: 'never_sent', window: 60 }, interval: 60, severity: 'info' });
          await s.alertEngine.tick(new Date(Date.now() + 120_000));
          const [alert] = (await s.alerts.list(SYSTEM_ACTOR, o.org.slug, { rule_id: rule.id, state: 'firing' })).items;
          return { params: { org: o.org.slug, id: alert.id }, body: { comment: 'on it' } };
        },
      },
    ],
  },
  // Email channels: no URL, so no traffic (mail is not configured here: a test answers ok false).
  'POST /organizations/{org}/silences': {
    cases: [{ label: 'create a silence', perms: ['alert.write'], status: 201, request: (o) => ({ params: { org: o.org.slug }, body: SILENCE() }) }],
  },
  'PATCH /organizations/{org}/silences/{id}': {
    cases: [
      {
        label: 'change a silence',
        perms: ['alert.write'],
        status: 200,
        request: async (o, s) => ({ params: { org: o.org.slug, id: (await s.silences.create(SYSTEM_ACTOR, o.org.slug, SILENCE())).id }, body: { comment: 'longer' } }),
      },
    ],
  },
  'DELETE /organizations/{org}/silences/{id}': {
    cases: [
      {
        label: 'expire a silence',
        perms: ['alert.write'],
        status: 204,
        request: async (o, s) => ({ params: { org: o.org.slug, id: (await s.silences.create(SYSTEM_ACTOR, o.org.slug, SILENCE())).id } }),
      },
    ],
  },
  'POST /organizations/{org}/maintenance-windows': {
    cases: [{ label: 'create a maintenance window', perms: ['alert.write'], status: 201, request: (o) => ({ params: { org: o.org.slug }, body: WINDOW }) }],
  },
  'PATCH /organizations/{org}/maintenance-windows/{id}': {
    cases: [
      {
        label: 'change a maintenance window',
        perms: ['alert.write'],
        status: 200,
        request: async (o, s) => ({ params: { org: o.org.slug, id: (await s.maintenanceWindows.create(SYSTEM_ACTOR, o.org.slug, WINDOW)).id }, body: { end: '05:00' } }),
      },
    ],
  },
  'DELETE /organizations/{org}/maintenance-windows/{id}': {
    cases: [
      {
        label: 'delete a maintenance window',
        perms: ['alert.write'],
        status: 204,
        request: async (o, s) => ({ params: { org: o.org.slug, id: (await s.maintenanceWindows.create(SYSTEM_ACTOR, o.org.slug, WINDOW)).id } }),
      },
    ],
  },
  'POST /organizations/{org}/channels': {
    cases: [{ label: 'create a channel', perms: ['channel.manage'], status: 201, request: (o) => ({ params: { org: o.org.slug }, body: EMAIL_CHANNEL }) }],
  },
  'PATCH /organizations/{org}/channels/{id}': {
    cases: [
      {
        label: 'change a channel',
        perms: ['channel.manage'],
        status: 200,
        request: async (o, s) => ({ params: { org: o.org.slug, id: (await s.channels.create(SYSTEM_ACTOR, o.org.slug, EMAIL_CHANNEL)).id }, body: { config: { to: ['b@example.test'] } } }),
      },
    ],
  },
  'DELETE /organizations/{org}/channels/{id}': {
    cases: [
      {
        label: 'delete a channel',
        perms: ['channel.manage'],
        status: 204,
        request: async (o, s) => ({ params: { org: o.org.slug, id: (await s.channels.create(SYSTEM_ACTOR, o.org.slug, EMAIL_CHANNEL)).id } }),
      },
    ],
  },
  'POST /organizations/{org}/channels/{id}/test': {
    cases: [
      {
        label: 'test a channel',
        perms: ['channel.manage'],
        status: 200,
        request: async (o, s) => ({ params: { org: o.org.slug, id: (await s.channels.create(SYSTEM_ACTOR, o.org.slug, EMAIL_CHANNEL)).id } }),
      },
    ],
  },
  'POST /organizations/{org}/notifications/{id}/resend': {
    cases: [
      {
        label: 'resend a notification',
        perms: ['channel.manage'],
        status: 202,
        request: async (o, s) => {
          const channel = await s.channels.create(SYSTEM_ACTOR, o.org.slug, EMAIL_CHANNEL);
          return { params: { org: o.org.slug, id: (await s.channels.test(SYSTEM_ACTOR, o.org.slug, channel.id)).notification_id } };
        },
      },
    ],
  },
  'POST /organizations/{org}/api-keys': {
    userTokenOnly: true,
    cases: [{ label: 'create a key', perms: ['apikey.manage'], status: 201, request: (o) => ({ params: { org: o.org.slug }, body: { name: 'made', scopes: ['read'] } }) }],
  },
  'DELETE /organizations/{org}/api-keys/{id}': {
    userTokenOnly: true,
    cases: [{ label: 'revoke a key', perms: ['apikey.manage'], status: 204, request: (o) => ({ params: { org: o.org.slug, id: o.key.id } }) }],
  },
  'POST /organizations/{org}/api-keys/{id}/rotate': {
    userTokenOnly: true,
    cases: [{ label: 'rotate a key', perms: ['apikey.manage'], status: 200, request: (o) => ({ params: { org: o.org.slug, id: o.key.id } }) }],
  },
};

const MUTATING = new Set(['post', 'put', 'patch', 'delete']);
const key = (r: RouteInfo) => `${r.method.toUpperCase()} ${r.path}`;

/** The least org role holding every permission in `perms`, per PERMISSIONS. */
function leastRole(perms: Permission[]): Role {
  return perms.map((p) => PERMISSIONS[p].role as Role).reduce((a, b) => (ROLES.indexOf(a) >= ROLES.indexOf(b) ? a : b));
}

/** Whether a key with `scope` holds every permission in `perms`, per PERMISSIONS (null scope: never). */
function scopeAllows(scope: ApiKeyScope, perms: Permission[]): boolean {
  return perms.every((p) => {
    const need = PERMISSIONS[p].scope as ApiKeyScope | null;
    return need !== null && SCOPE_GRANTS[scope].includes(need);
  });
}

type Caller = { kind: 'role'; role: Role } | { kind: 'superadmin' } | { kind: 'non-member' } | { kind: 'key'; scope: ApiKeyScope };

const CALLERS: Caller[] = [
  ...ROLES.map((role) => ({ kind: 'role', role }) as const),
  { kind: 'superadmin' },
  { kind: 'non-member' },
  ...SCOPES.map((scope) => ({ kind: 'key', scope }) as const),
];

const callerName = (c: Caller) => (c.kind === 'role' ? c.role : c.kind === 'key' ? `API key (${c.scope})` : c.kind);

describe('role matrix: every mutating org endpoint × every role, per the permission table', () => {
  let url: string;
  let t: TestApp;
  let api: ApiClient;
  let root: string;
  /** Owner of another org: a member elsewhere, not of the org under test. */
  let stranger: string;

  before(async () => {
    url = await cloneDatabase();
    t = await startTestApp(url, MANY);
    api = t.api.withUserAgent('role-matrix/1.0');
    const su = await createUser(t.app.services, { superadmin: true });
    root = (await api.login(su.email, su.password)).access_token;
    const elsewhere = await createTenant(t.app.services, { slugPrefix: 'elsewhere' });
    stranger = (await api.login(elsewhere.owner.email, elsewhere.owner.password)).access_token;
  });
  after(async () => {
    await t?.stop();
    if (url) await dropDatabase(url);
  });

  it('every mutating route under /organizations/{org} has an entry, and every entry is a registered route', () => {
    const registered = t.app.registry!.routes().filter((r) => MUTATING.has(r.method) && r.path.startsWith('/organizations/{org}'));
    expect(registered.length).to.be.greaterThan(0);
    const missing = registered.map(key).filter((k) => !(k in MUTATIONS));
    expect(missing, 'mutating org routes with no MUTATIONS entry (add one)').to.deep.equal([]);
    const stale = Object.keys(MUTATIONS).filter((k) => !registered.map(key).includes(k));
    expect(stale, 'MUTATIONS entries for routes that are not registered').to.deep.equal([]);
    for (const r of registered) {
      expect(MUTATIONS[key(r)].userTokenOnly ?? false, `${key(r)}: takes user tokens only (README) ⇔ registered with auth 'user'`).to.equal(r.auth === 'user');
    }
  });

  /** A fresh org and a caller in it; the expected status from the permission table. */
  async function arrange(rules: RouteRules, c: Case, caller: Caller): Promise<{ org: Tenant; token: string; expected: number }> {
    const s = t.app.services;
    const org = await createTenant(s, { slugPrefix: 'rm' });
    switch (caller.kind) {
      case 'role': {
        const u = await addMember(s, org, caller.role);
        const token = (await api.login(u.email, u.password)).access_token;
        const allowed = ROLES.indexOf(caller.role) >= ROLES.indexOf(leastRole(c.perms));
        return { org, token, expected: allowed ? c.status : 403 };
      }
      case 'superadmin':
        return { org, token: root, expected: c.superadminStatus ?? c.status };
      case 'non-member':
        return { org, token: stranger, expected: 404 };
      case 'key': {
        const k = await createApiKey(s, org.org.slug, [caller.scope]);
        // The first use records last_used_at; make it now, so that a refused call shows no change.
        await api.call('GET', '/organizations', k.secret);
        const expected = rules.userTokenOnly ? 403 : scopeAllows(caller.scope, c.perms) ? c.status : 403;
        return { org, token: k.secret, expected };
      }
    }
  }

  for (const [route, rules] of Object.entries(MUTATIONS)) {
    const [method, template] = route.split(' ');
    for (const c of rules.cases) {
      it(`${route} (${c.label}): needs ${c.perms.join(' + ')}`, async () => {
        for (const caller of CALLERS) {
          const { org, token, expected } = await arrange(rules, c, caller);
          const req = await c.request(org, t.app.services);
          const label = `${callerName(caller)} ${method} ${fillPath(template, req.params)} (${c.label})`;
          const before = await tenantChecksum(url, org.org.id, org.memberIds);
          const res: Answer = await api.call(method, fillPath(template, req.params), token, req.body);
          if (expected >= 400) {
            expectProblem(res, expected, label);
            expect(await tenantChecksum(url, org.org.id, org.memberIds), `${label}: refused, yet the org's rows changed`).to.deep.equal(before);
          } else {
            expect(res.status, `${label}: ${res.text}`).to.equal(expected);
          }
        }
      });
    }
  }

  it("README's permission table is PERMISSIONS (the table this matrix reads)", () => {
    const readme = readFileSync(join(packageRoot(), 'README.md'), 'utf8');
    const rows = [...readme.matchAll(/^\| `([a-z_]+\.[a-z_]+)` \| (\w+) \| (?:`(\w+)`|—) \|/gm)].map((m) => [m[1], { role: m[2], scope: m[3] ?? null }]);
    expect(Object.fromEntries(rows)).to.deep.equal(PERMISSIONS);
  });
});
