import { expect } from 'chai';
import { generate } from 'otplib';
import type { AuthMode, RouteInfo } from '../../src/http/registry.js';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { SYSTEM_ACTOR } from '../../src/core/actor.js';
import { createApiKey, createUser } from '../support/factories.js';
import { ApiClient, expectProblem, fillPath, placeholders, type Answer } from '../support/http.js';
import { tablesWithoutTenantScope, tenantChecksum, TENANT_ROWS } from '../support/tenant-checksum.js';
import { createTenant, type Tenant } from '../support/tenants.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * The cross-tenant matrix, generated from the router's own route table: for every registered
 * route with a path parameter, org A's owner (a plain user) aims a valid request at org B's slug
 * and ids and gets 404 problem+json, and none of B's rows change (checksums computed in SQL before
 * and after). The same requests against the caller's own org succeed (the control), so only
 * tenancy stops them. A route with a path parameter but no entry in CROSS_TENANT fails the suite.
 * API keys: org A's admin-scoped key gets 404 from B's routes, and nothing of B through /auth or
 * /users.
 */

const MANY = { SENTINEL_RATE_LIMITS_API_PER_MINUTE: '100000000', SENTINEL_RATE_LIMITS_LOGIN_PER_MINUTE_PER_IP: '100000000' };

interface Req {
  params?: Record<string, string>;
  query?: Record<string, string>;
  body?: unknown;
}

interface Entry {
  /** Valid requests aimed at tenant `v`'s resources (org B in the sweep, the caller's own org in the control). */
  requests(v: Tenant): Req[];
  /** Who succeeds with exactly these requests against their own tenant, and with which status (invitee: the tenant's outsider). */
  control: { as: 'owner' | 'superadmin' | 'invitee'; status: number };
  /** Makes what `requests` aims at, before the control's and B's requests are built. */
  prepare?(v: Tenant, api: ApiClient): Promise<void>;
}

/** An invitation of each tenant that was prepared, addressed to its outsider. */
const invitations = new Map<string, string>();
const invitationOf = (v: Tenant): string => {
  const id = invitations.get(v.org.id);
  if (!id) throw new Error(`no invitation prepared for ${v.org.slug}`);
  return id;
};
/** The tenant's owner invites its outsider (through the API, as an org owner does). */
async function invite(v: Tenant, api: ApiClient): Promise<void> {
  const token = (await api.login(v.owner.email, v.owner.password)).access_token;
  const res = await api.call<{ id: string }>('POST', `/organizations/${v.org.slug}/members`, token, { email: v.outsider.email, role: 'editor' });
  expect(res.status, res.text).to.equal(202);
  invitations.set(v.org.id, res.body.id);
}

/** A report of each tenant that was prepared (the day before yesterday, UTC). */
const reports = new Map<string, string>();
const reportOf = (v: Tenant): string => {
  const id = reports.get(v.org.id);
  if (!id) throw new Error(`no report prepared for ${v.org.slug}`);
  return id;
};
const daysAgo = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString().slice(0, 10);
/** The tenant's owner generates a report (through the API, as an org admin does). */
async function makeReport(v: Tenant, api: ApiClient): Promise<void> {
  const token = (await api.login(v.owner.email, v.owner.password)).access_token;
  const res = await api.call<{ id: string }>('POST', `/organizations/${v.org.slug}/reports`, token, { date: daysAgo(2) });
  expect(res.status, res.text).to.equal(201);
  reports.set(v.org.id, res.body.id);
}

let lastBackup: string | undefined;
const backupId = (): string => {
  if (!lastBackup) throw new Error('no backup prepared');
  return lastBackup;
};
/** Takes a backup of the whole instance (tenant B's rows among the rest); set once the app runs. */
let takeBackup: (() => Promise<string>) | undefined;
async function backUp(): Promise<void> {
  lastBackup = await takeBackup!();
}

/** What the alerting routes aim at, per tenant that was prepared. */
interface AlertingOf {
  channel: string;
  notification: string;
  rule: string;
  alert: string;
  silence: string;
  window: string;
  heartbeat: string;
}
const alerting = new Map<string, AlertingOf>();
const alertingOf = (v: Tenant): AlertingOf => {
  const x = alerting.get(v.org.id);
  if (!x) throw new Error(`no alerting things prepared for ${v.org.slug}`);
  return x;
};
/** One evaluation tick past every rule's first due time (set once the app runs; no background evaluation in tests). */
let evaluateRules: (() => Promise<unknown>) | undefined;
/**
 * The tenant's owner makes one of each alerting thing through the API: an email channel and a
 * test send of it (a notification and its attempt), a rule that fires on the tenant's own
 * `b.metric` and, after one evaluation, its alert (and notification group), a silence, a
 * maintenance window and a heartbeat. The rule names no channel, so no later tick sends
 * anything of the tenant's while the sweeps run.
 */
async function makeAlerting(v: Tenant, api: ApiClient): Promise<void> {
  if (alerting.has(v.org.id)) return;
  const token = (await api.login(v.owner.email, v.owner.password)).access_token;
  const at = (path: string) => `/organizations/${v.org.slug}${path}`;
  const made = async (path: string, body: unknown): Promise<string> => {
    const res = await api.post<{ id: string }>(at(path), token, body);
    expect(res.status, `${path}: ${res.text}`).to.equal(201);
    return res.body.id;
  };
  const ingested = await api.post(at('/telemetry'), token, { metrics: [{ name: 'b.metric', value: 1, labels: { secret: 'b' } }] });
  expect(ingested.status, ingested.text).to.equal(202);
  const channel = await made('/channels', { name: 'pager', type: 'email', config: { to: ['pager@example.test'] } });
  const sent = await api.post<{ notification_id: string }>(at(`/channels/${channel}/test`), token);
  expect(sent.status, sent.text).to.equal(200);
  const rule = await made('/alert-rules', { name: 'b.metric up', kind: 'threshold', query: { name: 'b.metric', agg: 'max', window: '1h' }, op: '>', threshold: 0, interval: '1m', severity: 'critical' });
  await evaluateRules!();
  const alerts = await api.get<{ items: { id: string; state: string }[] }>(at(`/alerts?rule_id=${rule}`), token);
  expect(alerts.status, alerts.text).to.equal(200);
  const alert = alerts.body.items.find((a) => a.state === 'firing')?.id;
  expect(alert, `a firing alert of ${v.org.slug}: ${alerts.text}`).to.be.a('string');
  const silence = await made('/silences', { matchers: [{ name: 'alertname', op: '=', value: 'deploy' }], ends_at: new Date(Date.now() + 3_600_000).toISOString(), comment: 'deploy' });
  const window = await made('/maintenance-windows', { name: 'nightly', matchers: [{ name: 'severity', op: '=', value: 'info' }], weekdays: [1, 2, 3, 4, 5, 6, 7], start: '02:00', end: '03:00', time_zone: 'UTC' });
  const heartbeat = await made('/heartbeats', { name: 'nightly-backup', period: '1d', grace: '1h' });
  alerting.set(v.org.id, { channel, notification: sent.body.notification_id, rule, alert: alert!, silence, window, heartbeat });
}
const org = (v: Tenant) => ({ org: v.org.slug });
const own = (v: Tenant, thing: keyof AlertingOf) => ({ org: v.org.slug, id: alertingOf(v)[thing] });

/**
 * How to aim each route with a path parameter at a tenant, keyed by `METHOD path`. Every body is
 * one the route accepts (the control proves it), so that only tenancy can refuse it.
 */
/**
 * Routes with a path parameter that names no tenant's resource (say why). The jobs are the
 * instance's and known by name (README, `jobs list`): anyone but a superadmin gets 403, tested
 * in test/integration/jobs.test.ts.
 */
const NOT_TENANT_ROUTES: Record<string, string> = {
  'POST /admin/jobs/{name}/run': 'a job name is public; non-superadmins get 403',
  'POST /heartbeats/{token}': 'the unguessable token is the credential (no other auth): whoever holds it may ping; an unknown token is 404 (heartbeats.test.ts)',
};
const CROSS_TENANT: Record<string, Entry> = {
  'GET /organizations/{org}': { requests: (v) => [{ params: { org: v.org.slug } }], control: { as: 'owner', status: 200 } },
  'PATCH /organizations/{org}': {
    requests: (v) => [{ params: { org: v.org.slug }, body: { name: 'Hijacked', limits: { retention_days: { metrics: 1 }, max_series: 1 } } }],
    control: { as: 'owner', status: 200 },
  },
  'DELETE /organizations/{org}': { requests: (v) => [{ params: { org: v.org.slug } }], control: { as: 'owner', status: 204 } },
  'GET /organizations/{org}/members': { requests: (v) => [{ params: { org: v.org.slug } }], control: { as: 'owner', status: 200 } },
  // Org owners invite (202, the same for every address); adding by user_id is for superadmins
  // (orgs-users-http.test.ts), so it cannot have an owner's control here.
  'POST /organizations/{org}/members': {
    requests: (v) => [
      { params: { org: v.org.slug }, body: { email: v.outsider.email, role: 'owner' } },
      { params: { org: v.org.slug }, body: { email: `nobody-${v.org.slug}@example.test`, role: 'viewer' } },
    ],
    control: { as: 'owner', status: 202 },
  },
  'PATCH /organizations/{org}/members/{user_id}': {
    requests: (v) => [
      { params: { org: v.org.slug, user_id: v.viewer.id }, body: { role: 'owner' } },
      { params: { org: v.org.slug, user_id: v.coOwner.id }, body: { role: 'viewer' } },
    ],
    control: { as: 'owner', status: 200 },
  },
  'DELETE /organizations/{org}/members/{user_id}': {
    requests: (v) => [{ params: { org: v.org.slug, user_id: v.viewer.id } }, { params: { org: v.org.slug, user_id: v.coOwner.id } }],
    control: { as: 'owner', status: 204 },
  },
  'GET /organizations/{org}/audit-log': { requests: (v) => [{ params: { org: v.org.slug } }], control: { as: 'owner', status: 200 } },
  'GET /organizations/{org}/api-keys': { requests: (v) => [{ params: { org: v.org.slug } }], control: { as: 'owner', status: 200 } },
  'POST /organizations/{org}/api-keys': {
    requests: (v) => [{ params: { org: v.org.slug }, body: { name: 'planted', scopes: ['admin'] } }],
    control: { as: 'owner', status: 201 },
  },
  'DELETE /organizations/{org}/api-keys/{id}': { requests: (v) => [{ params: { org: v.org.slug, id: v.key.id } }], control: { as: 'owner', status: 204 } },
  'POST /organizations/{org}/api-keys/{id}/rotate': { requests: (v) => [{ params: { org: v.org.slug, id: v.key.id } }], control: { as: 'owner', status: 200 } },
  'POST /organizations/{org}/telemetry': {
    requests: (v) => [{ params: { org: v.org.slug }, body: { metrics: [{ name: 'planted', value: 1 }], logs: [{ level: 'error', message: 'planted' }], events: [{ type: 'planted', title: 'planted' }] } }],
    control: { as: 'owner', status: 202 },
  },
  'GET /organizations/{org}/metrics': { requests: (v) => [{ params: { org: v.org.slug } }], control: { as: 'owner', status: 200 } },
  'GET /organizations/{org}/metrics/query': {
    requests: (v): Req[] => [
      { params: { org: v.org.slug }, query: { name: 'b.metric' } },
      { params: { org: v.org.slug }, query: { name: 'b.metric', filter: 'secret=~.*', by: 'secret', agg: 'max' } },
    ],
    control: { as: 'owner', status: 200 },
  },
  'GET /organizations/{org}/logs': { requests: (v) => [{ params: { org: v.org.slug }, query: { q: 'b', level: 'trace' } }], control: { as: 'owner', status: 200 } },
  'GET /organizations/{org}/events': { requests: (v) => [{ params: { org: v.org.slug } }], control: { as: 'owner', status: 200 } },
  'GET /organizations/{org}/usage': { requests: (v) => [{ params: { org: v.org.slug } }], control: { as: 'owner', status: 200 } },
  'GET /organizations/{org}/reports': { requests: (v) => [{ params: { org: v.org.slug } }], control: { as: 'owner', status: 200 } },
  'POST /organizations/{org}/reports': { requests: (v) => [{ params: { org: v.org.slug }, body: { kind: 'daily', date: daysAgo(1) } }], control: { as: 'owner', status: 201 } },
  'GET /organizations/{org}/reports/{id}': {
    prepare: makeReport,
    requests: (v): Req[] => [{ params: { org: v.org.slug, id: reportOf(v) } }, { params: { org: v.org.slug, id: reportOf(v) }, query: { format: 'html' } }],
    control: { as: 'owner', status: 200 },
  },
  // Users are instance-wide: "B's users" are B's members. Only superadmins may act on other users.
  'GET /users/{id}': { requests: (v) => [{ params: { id: v.owner.id } }, { params: { id: v.viewer.id } }], control: { as: 'superadmin', status: 200 } },
  'PATCH /users/{id}': {
    requests: (v) => [
      { params: { id: v.owner.id }, body: { name: 'Hijacked' } },
      { params: { id: v.viewer.id }, body: { disabled: true } },
    ],
    control: { as: 'superadmin', status: 200 },
  },
  'DELETE /users/{id}': { requests: (v) => [{ params: { id: v.viewer.id } }, { params: { id: v.coOwner.id } }], control: { as: 'superadmin', status: 204 } },
  // Backups are the instance's: only superadmins see one, anyone else gets 404.
  'POST /admin/backups/{id}/verify': { prepare: backUp, requests: () => [{ params: { id: backupId() } }], control: { as: 'superadmin', status: 200 } },
  // Invitations belong to their invitee: "B's invitation" is B's org inviting B's outsider.
  'POST /auth/invitations/{id}/accept': { prepare: invite, requests: (v) => [{ params: { id: invitationOf(v) } }], control: { as: 'invitee', status: 200 } },
  'POST /auth/invitations/{id}/decline': { prepare: invite, requests: (v) => [{ params: { id: invitationOf(v) } }], control: { as: 'invitee', status: 204 } },
  // Alerting (channels and the delivery log, rules and alerts, silences, maintenance windows, heartbeats).
  'GET /organizations/{org}/channels': { requests: (v) => [{ params: org(v) }], control: { as: 'owner', status: 200 } },
  'POST /organizations/{org}/channels': {
    requests: (v) => [{ params: org(v), body: { name: 'planted', type: 'email', config: { to: ['planted@example.test'] } } }],
    control: { as: 'owner', status: 201 },
  },
  'GET /organizations/{org}/channels/{id}': { prepare: makeAlerting, requests: (v) => [{ params: own(v, 'channel') }], control: { as: 'owner', status: 200 } },
  'PATCH /organizations/{org}/channels/{id}': {
    prepare: makeAlerting,
    requests: (v) => [{ params: own(v, 'channel'), body: { name: 'hijacked', config: { to: ['planted@example.test'] } } }],
    control: { as: 'owner', status: 200 },
  },
  'DELETE /organizations/{org}/channels/{id}': { prepare: makeAlerting, requests: (v) => [{ params: own(v, 'channel') }], control: { as: 'owner', status: 204 } },
  'POST /organizations/{org}/channels/{id}/test': { prepare: makeAlerting, requests: (v) => [{ params: own(v, 'channel') }], control: { as: 'owner', status: 200 } },
  'GET /organizations/{org}/notifications': { requests: (v) => [{ params: org(v) }], control: { as: 'owner', status: 200 } },
  'POST /organizations/{org}/notifications/{id}/resend': { prepare: makeAlerting, requests: (v) => [{ params: own(v, 'notification') }], control: { as: 'owner', status: 202 } },
  'GET /organizations/{org}/alert-rules': { requests: (v) => [{ params: org(v) }], control: { as: 'owner', status: 200 } },
  'POST /organizations/{org}/alert-rules': {
    requests: (v) => [{ params: org(v), body: { name: 'planted', kind: 'threshold', query: { name: 'b.metric', agg: 'avg', window: '5m' }, op: '<', threshold: 1e9, interval: '1m', severity: 'info' } }],
    control: { as: 'owner', status: 201 },
  },
  'GET /organizations/{org}/alert-rules/{id}': { prepare: makeAlerting, requests: (v) => [{ params: own(v, 'rule') }], control: { as: 'owner', status: 200 } },
  'PATCH /organizations/{org}/alert-rules/{id}': {
    prepare: makeAlerting,
    requests: (v) => [{ params: own(v, 'rule'), body: { enabled: false, threshold: 1e9 } }],
    control: { as: 'owner', status: 200 },
  },
  'DELETE /organizations/{org}/alert-rules/{id}': { prepare: makeAlerting, requests: (v) => [{ params: own(v, 'rule') }], control: { as: 'owner', status: 204 } },
  'POST /organizations/{org}/alert-rules/{id}/preview': {
    prepare: makeAlerting,
    requests: (v) => [{ params: own(v, 'rule'), query: { start: String(Date.now() - 3_600_000), end: String(Date.now()) } }],
    control: { as: 'owner', status: 200 },
  },
  'GET /organizations/{org}/alerts': { requests: (v) => [{ params: org(v) }], control: { as: 'owner', status: 200 } },
  'GET /organizations/{org}/alerts/{id}': { prepare: makeAlerting, requests: (v) => [{ params: own(v, 'alert') }], control: { as: 'owner', status: 200 } },
  'POST /organizations/{org}/alerts/{id}/ack': { prepare: makeAlerting, requests: (v) => [{ params: own(v, 'alert'), body: { comment: 'mine now' } }], control: { as: 'owner', status: 200 } },
  'GET /organizations/{org}/silences': { requests: (v) => [{ params: org(v) }], control: { as: 'owner', status: 200 } },
  'POST /organizations/{org}/silences': {
    requests: (v) => [{ params: org(v), body: { matchers: [{ name: 'alertname', op: '=~', value: '.+' }], ends_at: new Date(Date.now() + 86_400_000).toISOString(), comment: 'planted' } }],
    control: { as: 'owner', status: 201 },
  },
  'GET /organizations/{org}/silences/{id}': { prepare: makeAlerting, requests: (v) => [{ params: own(v, 'silence') }], control: { as: 'owner', status: 200 } },
  'PATCH /organizations/{org}/silences/{id}': {
    prepare: makeAlerting,
    requests: (v) => [{ params: own(v, 'silence'), body: { matchers: [{ name: 'alertname', op: '=~', value: '.+' }], comment: 'hijacked' } }],
    control: { as: 'owner', status: 200 },
  },
  'DELETE /organizations/{org}/silences/{id}': { prepare: makeAlerting, requests: (v) => [{ params: own(v, 'silence') }], control: { as: 'owner', status: 204 } },
  'GET /organizations/{org}/maintenance-windows': { requests: (v) => [{ params: org(v) }], control: { as: 'owner', status: 200 } },
  'POST /organizations/{org}/maintenance-windows': {
    requests: (v) => [{ params: org(v), body: { name: 'planted', matchers: [{ name: 'severity', op: '=~', value: '.+' }], weekdays: [1, 2, 3, 4, 5, 6, 7], start: '00:00', end: '00:00', time_zone: 'UTC' } }],
    control: { as: 'owner', status: 201 },
  },
  'GET /organizations/{org}/maintenance-windows/{id}': { prepare: makeAlerting, requests: (v) => [{ params: own(v, 'window') }], control: { as: 'owner', status: 200 } },
  'PATCH /organizations/{org}/maintenance-windows/{id}': {
    prepare: makeAlerting,
    requests: (v) => [{ params: own(v, 'window'), body: { matchers: [{ name: 'severity', op: '=~', value: '.+' }], start: '00:00', end: '00:00' } }],
    control: { as: 'owner', status: 200 },
  },
  'DELETE /organizations/{org}/maintenance-windows/{id}': { prepare: makeAlerting, requests: (v) => [{ params: own(v, 'window') }], control: { as: 'owner', status: 204 } },
  'GET /organizations/{org}/heartbeats': { requests: (v) => [{ params: org(v) }], control: { as: 'owner', status: 200 } },
  'POST /organizations/{org}/heartbeats': { requests: (v) => [{ params: org(v), body: { name: 'planted', period: '1s', grace: '1s' } }], control: { as: 'owner', status: 201 } },
  'GET /organizations/{org}/heartbeats/{id}': { prepare: makeAlerting, requests: (v) => [{ params: own(v, 'heartbeat') }], control: { as: 'owner', status: 200 } },
  'PATCH /organizations/{org}/heartbeats/{id}': {
    prepare: makeAlerting,
    requests: (v) => [{ params: own(v, 'heartbeat'), body: { period: '1s', grace: '1s' } }],
    control: { as: 'owner', status: 200 },
  },
  'DELETE /organizations/{org}/heartbeats/{id}': { prepare: makeAlerting, requests: (v) => [{ params: own(v, 'heartbeat') }], control: { as: 'owner', status: 204 } },
  'POST /organizations/{org}/heartbeats/{id}/rotate-token': { prepare: makeAlerting, requests: (v) => [{ params: own(v, 'heartbeat') }], control: { as: 'owner', status: 200 } },
};

/**
 * Routes under /auth and /users without path parameters, for org A's API key (the ones with
 * parameters use CROSS_TENANT). `key` is A's key secret: presented as a credential everywhere.
 */
const KEY_PROBES: Record<string, (v: Tenant, key: string) => Req> = {
  'POST /auth/login': (v, key) => ({ body: { email: v.owner.email, password: key } }),
  'POST /auth/refresh': (_v, key) => ({ body: { refresh_token: key } }),
  'POST /auth/logout': () => ({}),
  'GET /auth/me': () => ({}),
  'GET /auth/totp': () => ({}),
  'POST /auth/totp/setup': () => ({}),
  'POST /auth/totp/enable': (v) => ({ body: { code: '123456', password: v.owner.password } }),
  'GET /auth/invitations': () => ({}),
  'POST /auth/totp/disable': () => ({ body: { code: '123456' } }),
  'GET /users': (v) => ({ query: { org: v.org.slug } }),
  'POST /users': () => ({ body: { email: 'planted@example.test', password: 'planted-password' } }),
  'POST /users/me/password': (v) => ({ body: { current_password: v.owner.password, new_password: 'planted-password' } }),
};

const key = (r: RouteInfo) => `${r.method.toUpperCase()} ${r.path}`;
const hasParams = (r: RouteInfo) => placeholders(r.path).length > 0;
const tenantScoped = (r: RouteInfo) => hasParams(r) && !(key(r) in NOT_TENANT_ROUTES);

describe('cross-tenant matrix (generated from the route table)', () => {
  let url: string;
  let t: TestApp;
  let api: ApiClient;
  let A: Tenant;
  let B: Tenant;
  let attacker: string;
  let root: string;

  const routes = () => t.app.registry!.routes();

  function target(r: RouteInfo, req: Req): string {
    const qs = req.query ? `?${new URLSearchParams(req.query).toString()}` : '';
    return fillPath(r.path, req.params ?? {}) + qs;
  }

  async function send(r: RouteInfo, req: Req, token: string): Promise<Answer> {
    return api.call(r.method, target(r, req), token, req.body);
  }

  /** Things of B's that no answer to A may contain (ids the caller put in the URL may be echoed). */
  function expectNoDataOf(v: Tenant, res: Answer, label: string): void {
    for (const secret of [v.org.id, v.org.name, v.owner.email, v.coOwner.email, v.viewer.email, v.key.prefix]) {
      expect(res.text, `${label} leaks ${secret}`).to.not.contain(secret);
    }
  }

  const checksum = (v: Tenant) => tenantChecksum(url, v.org.id, v.memberIds);

  before(async () => {
    url = await cloneDatabase();
    t = await startTestApp(url, MANY);
    api = t.api.withUserAgent('tenant-matrix/1.0');
    const s = t.app.services;
    A = await createTenant(s, { slugPrefix: 'a' });
    B = await createTenant(s, { slugPrefix: 'b' });
    attacker = (await api.login(A.owner.email, A.owner.password)).access_token;
    const su = await createUser(s, { superadmin: true });
    root = (await api.login(su.email, su.password)).access_token;

    // Give B a row in every tenant table: sessions for each member, and 2FA (with recovery codes) for its viewer.
    for (const u of [B.owner, B.coOwner, B.viewer]) await api.login(u.email, u.password);
    // And telemetry: series, points, logs, events, usage and an idempotency key.
    await s.telemetry.ingestNative(SYSTEM_ACTOR, B.org.slug, { metrics: [{ name: 'b.metric', value: 1, labels: { secret: 'b' } }], logs: [{ level: 'info', message: 'b log' }], events: [{ type: 'b', title: 'b event' }] }, { idempotencyKey: 'b-batch' });
    // A point old enough to be compacted, and the compaction job's run: B has a chunk too.
    await s.telemetry.ingestNative(SYSTEM_ACTOR, B.org.slug, { metrics: [{ name: 'b.metric', value: 2, ts: Date.now() - 5 * 3_600_000, labels: { secret: 'b' } }] });
    expect((await s.compaction.run()).points_compacted).to.be.greaterThan(0);
    const viewer = (await api.login(B.viewer.email, B.viewer.password)).access_token;
    const setup = await api.call<{ secret: string }>('POST', '/auth/totp/setup', viewer);
    expect(setup.status, setup.text).to.equal(200);
    const enable = await api.call('POST', '/auth/totp/enable', viewer, { code: await generate({ secret: setup.body.secret }), password: B.viewer.password });
    expect(enable.status, enable.text).to.equal(200);
    // And a backup, which the route with a backup id aims at.
    takeBackup = async () => (await s.backups.create(SYSTEM_ACTOR)).id;
    await backUp();
    // And a pending invitation (to B's outsider), which the routes with an invitation id aim at.
    await invite(B, api);
    // And a delivered email in the mail log (this app has no SMTP server: the row is written as the mailer would).
    await query(url, `insert into mail_log (org_id, kind, "to", subject, outcome, attempts, sent_at) values ($1, 'welcome', $2, 'Welcome', 'sent', 1, now())`, [B.org.id, [B.owner.email]]);
    // And a report (which the routes with a report id aim at), and a refused ingest (counted per reason).
    await makeReport(B, api);
    await s.telemetry.ingestNative(SYSTEM_ACTOR, B.org.slug, { metrics: [{ name: 'b.metric', value: 1, ts: Date.now() - 30 * 86_400_000 }] }).then(
      () => expect.fail('an ingest outside the time window was accepted'),
      () => undefined,
    );
    // Refusals are counted in memory and written by a timer: write them now.
    await s.rejections.flush();
    // And one of each alerting thing (channel, notification and attempt, rule, alert and its group, silence, maintenance window, heartbeat).
    evaluateRules = () => s.alertEngine.tick(new Date(Date.now() + 61_000));
    await makeAlerting(B, api);
  });
  after(async () => {
    await t?.stop();
    if (url) await dropDatabase(url);
  });

  it('the checksum covers every table, and B has rows in each', async () => {
    expect(await tablesWithoutTenantScope(url), 'tables with no rule in TENANT_ROWS or NOT_TENANT_DATA').to.deep.equal([]);
    const sums = await checksum(B);
    for (const table of Object.keys(TENANT_ROWS)) expect(Number(sums[table].split(':')[0]), `B's rows in ${table}`).to.be.greaterThan(0);
  });

  it('every registered route with a path parameter has an entry, and every entry is a registered route', () => {
    const registered = routes().filter(tenantScoped).map(key);
    expect(registered.length, 'routes with a path parameter').to.be.greaterThan(0);
    const missing = registered.filter((k) => !(k in CROSS_TENANT));
    expect(missing, 'routes with a path parameter but no CROSS_TENANT entry (add one)').to.deep.equal([]);
    const stale = Object.keys(CROSS_TENANT).filter((k) => !registered.includes(k));
    expect(stale, 'CROSS_TENANT entries for routes that are not registered').to.deep.equal([]);

    const probed = routes().filter((r) => /^\/(auth|users)(\/|$)/.test(r.path) && !hasParams(r)).map(key);
    expect(probed.filter((k) => !(k in KEY_PROBES)), '/auth and /users routes with no KEY_PROBES entry (add one)').to.deep.equal([]);
    expect(Object.keys(KEY_PROBES).filter((k) => !probed.includes(k)), 'KEY_PROBES entries for routes that are not registered').to.deep.equal([]);
  });

  it("the requests are valid: aimed at the caller's own fresh org, each one succeeds (control)", async () => {
    for (const r of routes().filter(tenantScoped)) {
      const entry = CROSS_TENANT[key(r)];
      // One fresh tenant per request: some of them delete what the next would need.
      const count = entry.requests(B).length;
      for (let i = 0; i < count; i++) {
        const own = await createTenant(t.app.services, { slugPrefix: 'c' });
        await entry.prepare?.(own, api);
        const as = { owner: own.owner, invitee: own.outsider, superadmin: null }[entry.control.as];
        const token = as ? (await api.login(as.email, as.password)).access_token : root;
        const res = await send(r, entry.requests(own)[i], token);
        expect(res.status, `control ${key(r)} #${i} as ${entry.control.as}: ${res.text}`).to.equal(entry.control.status);
      }
    }
  });

  it("org A's owner gets 404 problem+json from every such route with org B's slug and ids; none of B's rows change", async () => {
    const before = await checksum(B);
    let calls = 0;
    for (const r of routes().filter(tenantScoped)) {
      for (const req of CROSS_TENANT[key(r)].requests(B)) {
        const label = `A's owner ${r.method.toUpperCase()} ${target(r, req)}`;
        const res = await send(r, req, attacker);
        expectProblem(res, 404, label);
        expectNoDataOf(B, res, label);
        calls++;
      }
    }
    expect(calls).to.be.greaterThan(0);
    expect(await checksum(B)).to.deep.equal(before);
  });

  it("org A's owner with A's own slug and B's ids (member user ids, key ids) gets 404; neither org changes", async () => {
    const before = [await checksum(A), await checksum(B)];
    let calls = 0;
    for (const r of routes().filter((r) => placeholders(r.path).includes('org') && placeholders(r.path).length > 1)) {
      for (const req of CROSS_TENANT[key(r)].requests(B)) {
        const mixed = { ...req, params: { ...req.params, org: A.org.slug } };
        const label = `A's owner ${r.method.toUpperCase()} ${target(r, mixed)}`;
        const res = await send(r, mixed, attacker);
        expectProblem(res, 404, label);
        expectNoDataOf(B, res, label);
        calls++;
      }
    }
    expect(calls).to.be.greaterThan(0);
    expect([await checksum(A), await checksum(B)]).to.deep.equal(before);
  });

  it("org A's admin-scoped API key gets 404 from every `any` route with B's slug and ids; none of B's rows change", async () => {
    const before = await checksum(B);
    const anyRoutes = routes().filter((r) => r.auth === 'any' && hasParams(r));
    expect(anyRoutes.length).to.be.greaterThan(0);
    for (const r of anyRoutes) {
      for (const req of CROSS_TENANT[key(r)].requests(B)) {
        const label = `A's key ${r.method.toUpperCase()} ${target(r, req)}`;
        const res = await send(r, req, A.key.secret);
        expectProblem(res, 404, label);
        expectNoDataOf(B, res, label);
      }
    }
    expect(await checksum(B)).to.deep.equal(before);
  });

  it("org A's API key sees nothing of B through the `any` routes without an org", async () => {
    const before = await checksum(B);
    for (const r of routes().filter((r) => r.auth === 'any' && !hasParams(r))) {
      if (key(r) === 'POST /telemetry') {
        // The key decides the org: naming B in the payload changes nothing of B's.
        const ingestKey = (await createApiKey(t.app.services, A.org.slug, ['ingest'])).secret;
        const res = await api.call(r.method, r.path, ingestKey, { org: B.org.slug, org_id: B.org.id, metrics: [{ name: 'b.metric', value: 666, labels: { secret: 'b' } }] });
        expect(res.status, res.text).to.equal(202);
        continue;
      }
      expect(r.method, `${key(r)}: an org-less \`any\` route that is not a GET needs a case here`).to.equal('get');
      const res = await api.call(r.method, r.path, A.key.secret);
      expect(res.status, `${key(r)}: ${res.text}`).to.equal(200);
      expect(res.text, key(r)).to.not.contain(B.org.slug);
      expectNoDataOf(B, res, `A's key ${key(r)}`);
    }
    expect(await checksum(B)).to.deep.equal(before);
  });

  it("org A's API key reaches nothing of B's through /auth and /users routes (403 on user-only routes, 401, or 404); B unchanged", async () => {
    const before = await checksum(B);
    // user: a key is the wrong kind of credential there (403); none: login/refresh refuse it as a password or refresh token.
    const expected: Record<AuthMode, number> = { user: 403, none: 401, any: 404 };
    for (const r of routes().filter((r) => /^\/(auth|users)(\/|$)/.test(r.path))) {
      const reqs = hasParams(r) ? CROSS_TENANT[key(r)].requests(B) : [KEY_PROBES[key(r)](B, A.key.secret)];
      for (const req of reqs) {
        const label = `A's key ${r.method.toUpperCase()} ${target(r, req)} (auth ${r.auth})`;
        const res = await send(r, req, A.key.secret);
        expectProblem(res, expected[r.auth], label);
        expectNoDataOf(B, res, label);
      }
    }
    expect(await checksum(B)).to.deep.equal(before);
  });
});
