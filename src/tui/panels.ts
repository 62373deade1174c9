import { SEVERITIES, type AdminStatus, type JobStatusLine } from '../core/status.js';
import { formatBytes, formatCount, formatDuration, formatMs, formatRate, formatRelative, sparkline, terminalSafe } from './format.js';

/*
 * What each panel says, as plain lines: the layout (dashboard.tsx) decides how many fit. The
 * first lines are the ones that matter in a compact 80×24 screen; an expanded (focused) panel
 * shows the rest.
 */

export const PANELS = [
  { id: 'http', title: 'HTTP' },
  { id: 'ingest', title: 'Ingest' },
  { id: 'alerts', title: 'Alerts' },
  { id: 'jobs', title: 'Jobs' },
  { id: 'backups', title: 'Backups' },
  { id: 'heartbeats', title: 'Heartbeats' },
] as const;
export type PanelId = (typeof PANELS)[number]['id'];

export type Tone = 'normal' | 'good' | 'warn' | 'bad' | 'dim';
export interface Line {
  text: string;
  tone?: Tone;
}

const line = (text: string, tone: Tone = 'normal'): Line => ({ text: terminalSafe(text), tone });

function bySeverity(counts: Record<(typeof SEVERITIES)[number], number>): string {
  const parts = SEVERITIES.filter((s) => counts[s] > 0).map((s) => `${s} ${counts[s]}`);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

const total = (counts: Record<(typeof SEVERITIES)[number], number>) => SEVERITIES.reduce((n, s) => n + counts[s], 0);

function httpLines(s: AdminStatus): Line[] {
  const h = s.http;
  return [
    line(`req/s ${formatRate(h.requests_per_second)} · p50 ${formatMs(h.p50_ms)} · p99 ${formatMs(h.p99_ms)}`),
    line(`4xx ${formatCount(h.status_4xx)} · 5xx ${formatCount(h.status_5xx)}`, h.status_5xx > 0 ? 'bad' : h.status_4xx > 0 ? 'warn' : 'normal'),
    line(`in flight ${h.in_flight}`),
    line(`over the last ${formatDuration(h.window_seconds)}`, 'dim'),
  ];
}

function ingestLines(s: AdminStatus, width: number, expanded: boolean): Line[] {
  const g = s.ingest;
  const rejected = g.rejected.reduce((n, r) => n + r.items, 0);
  const spark = (label: string, pick: (p: AdminStatus['ingest']['history'][number]) => number) =>
    line(`${label} ${sparkline(g.history.map(pick), Math.max(1, width - label.length - 1))}`, 'good');
  const out: Line[] = [
    line(`pts/s ${formatRate(g.points_per_second)} · logs/s ${formatRate(g.logs_per_second)} · events/s ${formatRate(g.events_per_second)}`),
    spark('pts', (p) => p.points_per_second),
    line(`queue ${formatCount(g.writer.queue_depth)} · batch ${g.writer.batch_rows_avg === null ? '-' : formatRate(g.writer.batch_rows_avg)} · commit ${formatMs(g.writer.commit_ms_p99)}`),
    // A count since the daemon started (not a rate like the figures above): said so.
    line(`rejected since start ${formatCount(rejected)}${rejected ? '' : ' (none)'}`, rejected > 0 ? 'warn' : 'normal'),
  ];
  if (expanded) {
    out.push(spark('log', (p) => p.logs_per_second));
    for (const r of g.rejected) out.push(line(`  ${r.signal} ${r.reason}: ${formatCount(r.items)}`, 'warn'));
    out.push(line(`active series ${g.active_series === null ? '-' : formatCount(g.active_series)} · commit p99 ${formatMs(g.writer.commit_ms_p99)}`));
    out.push(line(`rates over the last ${formatDuration(g.window_seconds)}, history ${formatDuration(g.history.length * 10)}`, 'dim'));
  }
  return out;
}

function alertLines(s: AdminStatus, now: number, expanded: boolean): Line[] {
  const a = s.alerts;
  const firing = total(a.firing);
  const pending = total(a.pending);
  const out: Line[] = [line(`firing ${firing}${bySeverity(a.firing)}`, firing > 0 ? 'bad' : 'good'), line(`pending ${pending}${bySeverity(a.pending)}`, pending > 0 ? 'warn' : 'normal')];
  if (a.newest.length === 0) out.push(line('no firing or pending alerts', 'dim'));
  for (const x of a.newest) {
    // ● firing, ○ pending (the two lines above name them); the age is how long it has been so.
    out.push(line(`${x.state === 'firing' ? '●' : '○'} ${x.severity} ${x.org}/${x.rule} ${formatRelative(x.since, now, true).replace(/ ago$/, '')}`, x.state === 'firing' ? 'bad' : 'warn'));
    if (expanded && x.summary) out.push(line(`    ${x.summary.replace(/\s+/g, ' ')}`, 'dim'));
  }
  return out;
}

/** Failed first, then running, then the rest in the daemon's order: what needs a look comes first. */
function jobRank(j: JobStatusLine): number {
  const o = j.last_run?.outcome;
  if (o === 'failed' || o === 'timeout') return 0;
  if (j.running) return 1;
  return 2;
}

function jobLine(j: JobStatusLine, now: number, width: number): Line[] {
  const name = j.name.padEnd(Math.min(18, Math.max(10, Math.floor(width / 3))));
  const rel = (iso: string | null) => formatRelative(iso, now, true);
  if (j.running) return [line(`… ${name} running since ${rel(j.last_run?.started_at ?? null).replace(/ ago$/, '')}`, 'warn')];
  // A disabled job still shows how its last (manual) run went.
  const next = !j.enabled ? ' · disabled' : j.next_run ? ` · next ${rel(j.next_run)}` : '';
  const r = j.last_run;
  if (!r) return [line(`  ${name} never run${next}`, j.enabled ? 'normal' : 'dim')];
  const when = rel(r.finished_at ?? r.started_at);
  if (r.outcome === 'failed' || r.outcome === 'timeout') {
    const out = [line(`✗ ${name} ${r.outcome} ${when}${next}`, 'bad')];
    if (r.error) out.push(line(`    ${r.error.replace(/\s+/g, ' ')}`, 'bad'));
    return out;
  }
  return [line(`${r.outcome === 'ok' ? '✓' : ' '} ${name} ${r.outcome ?? '?'} ${when}${next}`, r.outcome === 'ok' && j.enabled ? 'normal' : 'dim')];
}

function jobLines(s: AdminStatus, now: number, width: number): Line[] {
  if (s.jobs.length === 0) return [line('no jobs', 'dim')];
  const failed = s.jobs.filter((j) => jobRank(j) === 0).length;
  const sorted = s.jobs.map((j, i) => ({ j, i })).sort((a, b) => jobRank(a.j) - jobRank(b.j) || a.i - b.i);
  return [line(`${s.jobs.length} jobs · ${failed} failed`, failed ? 'bad' : 'good'), ...sorted.flatMap(({ j }) => jobLine(j, now, width))];
}

function backupLines(s: AdminStatus, now: number): Line[] {
  const b = s.backups;
  const n = b.newest;
  if (!n) return [line('no backups yet', 'warn'), line(`${b.count} backups`, 'dim')];
  const verified =
    n.verified_at === null ? line('not verified', 'warn') : n.verify_ok === false ? line(`verify FAILED ${formatRelative(n.verified_at, now)}`, 'bad') : line(`verified ${formatRelative(n.verified_at, now)}`, 'good');
  return [line(`newest ${formatRelative(n.created_at, now)} · ${formatBytes(n.size_bytes)}`), verified, line(`${b.count} backups · ${n.id}`, 'dim')];
}

function heartbeatLines(s: AdminStatus, now: number): Line[] {
  const h = s.heartbeats;
  const out: Line[] = [line(h.late ? `late ${h.late}` : 'none late', h.late ? 'bad' : 'good')];
  for (const i of h.items) out.push(line(`${i.org}/${i.name} due ${formatRelative(i.due_at, now, true)}`, 'bad'));
  return out;
}

export function panelLines(id: PanelId, s: AdminStatus, now: number, width: number, expanded: boolean): Line[] {
  switch (id) {
    case 'http':
      return httpLines(s);
    case 'ingest':
      return ingestLines(s, width, expanded);
    case 'alerts':
      return alertLines(s, now, expanded);
    case 'jobs':
      return jobLines(s, now, width);
    case 'backups':
      return backupLines(s, now);
    case 'heartbeats':
      return heartbeatLines(s, now);
  }
}

/** The two header lines: the daemon, then its database. */
export function headerLines(s: AdminStatus): [string, string] {
  const d = s.database;
  const waiting = d.pools.reduce((n, p) => n + p.waiting, 0);
  const pools = d.pools.map((p) => `${p.name} ${p.in_use}/${p.max}`).join(', ');
  const migrations = d.migrations.pending ? ` · ${d.migrations.pending} migrations pending` : '';
  return [
    terminalSafe(`Sentinel ${s.version} · up ${formatDuration(s.uptime_seconds)} · pid ${s.pid} · ${s.hostname}`),
    terminalSafe(`db ${d.mode} PostgreSQL ${d.server_version} · ${formatBytes(d.size_bytes)}${migrations} · pools ${pools}${waiting ? ` · ${waiting} waiting` : ''}`),
  ];
}
