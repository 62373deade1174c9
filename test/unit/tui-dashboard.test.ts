import { expect } from 'chai';
import { render } from 'ink-testing-library';
import { createElement as h } from 'react';
import type { AdminStatus } from '../../src/core/status.js';
import { Dashboard, rowHeights, StatusApp, type DashboardProps, type View } from '../../src/tui/dashboard.js';
import { formatClock, formatDuration, formatRelative, sparkline } from '../../src/tui/format.js';
import { PANELS } from '../../src/tui/panels.js';
import type { FetchResult } from '../../src/tui/status-client.js';
import { failedJobStatus, firingStatus, healthyStatus, NOW } from './tui-fixtures.js';

/**
 * Frames of the status screen, rendered by ink into a fake terminal (ink-testing-library) from
 * fixture answers of GET /api/v1/admin/status. Every expectation is text derived from the
 * fixture's values.
 */

const URL_ = 'http://127.0.0.1:8080';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const plain = (s: string) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
/** Terminal cells of a line: every glyph the screen uses is one cell wide. */
const cells = (s: string) => [...plain(s)].length;

function frame(view: View, over: Partial<DashboardProps> = {}): string {
  const r = render(h(Dashboard, { url: URL_, view, focus: 0, help: false, columns: 100, rows: 30, now: NOW, intervalMs: 1000, ...over }));
  const f = plain(r.lastFrame() ?? '');
  r.unmount();
  return f;
}
const ok = (status: AdminStatus): View => ({ kind: 'ok', status, fetchedAt: NOW });
const lineWith = (f: string, text: string) => f.split('\n').find((l) => l.includes(text)) ?? '';

async function until(what: string, fn: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe('status dashboard frames', () => {
  it('a healthy daemon: header, HTTP, ingest with its sparkline, quiet alerts, jobs, verified backup, no late heartbeat', () => {
    const s = healthyStatus();
    const f = frame(ok(s));
    expect(f).to.contain(`Sentinel ${s.version} · up ${formatDuration(s.uptime_seconds)} · pid ${s.pid} · ${s.hostname}`);
    expect(f).to.contain('up 3h 12m');
    expect(f).to.contain('db embedded PostgreSQL 17.5 · 48 MiB · pools sentinel 3/10, sentinel-query 1/5');
    expect(f).to.contain('req/s 37.5 · p50 4.2 ms · p99 87 ms');
    expect(f).to.contain('4xx 12 · 5xx 0');
    expect(f).to.contain('pts/s 1.5k · logs/s 48 · events/s 0.5');
    expect(f).to.contain('queue 17 · batch 230 · commit 6.5 ms');
    expect(f).to.contain('rejected since start 0 (none)');
    // The history rises from 0 to 1100 points/s: the sparkline climbs from the lowest bar to the highest.
    const spark = /pts ([▁▂▃▄▅▆▇█]+)/.exec(f)?.[1] ?? '';
    expect(spark).to.have.length(s.ingest.history.length);
    expect(spark[0]).to.equal('▁');
    expect(spark.at(-1)).to.equal('█');
    expect(spark).to.equal(sparkline(s.ingest.history.map((p) => p.points_per_second), 100));
    expect(f).to.contain('firing 0');
    expect(f).to.contain('no firing or pending alerts');
    expect(f).to.contain('2 jobs · 0 failed');
    expect(lineWith(f, '✓ backup')).to.contain('ok 3h ago · next in 20h');
    expect(lineWith(f, '✓ retention')).to.contain('ok 4m ago · next in 10m');
    expect(f).to.contain('newest 4h ago · 12.5 MiB');
    expect(f).to.contain('verified 1h ago');
    expect(f).to.contain('none late');
    for (const t of ['HTTP', 'Ingest', 'Alerts', 'Jobs', 'Backups', 'Heartbeats']) expect(f).to.match(new RegExp(`─ (▶ )?${t} ─|═ ▶ ${t} ═`));
    expect(f).to.contain(`updated ${formatClock(NOW)} · ${URL_}`);
  });

  it('refused items are a count since the daemon started, labelled so beside the per-second rates', () => {
    const s = healthyStatus();
    s.ingest.rejected = [
      { signal: 'logs', reason: 'rate_limited', items: 200 },
      { signal: 'metrics', reason: 'outside_time_window', items: 1000 },
    ];
    expect(frame(ok(s), { focus: 0 })).to.contain('rejected since start 1200');
    const focused = frame(ok(s), { focus: 1 });
    expect(focused).to.contain('rejected since start 1200');
    expect(focused).to.contain('metrics outside_time_window: 1000');
  });

  it('firing alerts: counts by severity and the newest, firing and pending told apart', () => {
    const f = frame(ok(firingStatus()), { focus: 2 });
    expect(f).to.contain('firing 2 (critical 1, warning 1)');
    expect(f).to.contain('pending 1 (info 1)');
    expect(f).to.contain('● critical acme/cpu-high 3m');
    expect(f).to.contain('● warning acme/disk-filling 15m');
    expect(f).to.contain('○ info globex/slow-queries 30s');
    expect(f).not.to.contain('no firing or pending alerts');
    // Focused, each alert with a summary shows it under it; unfocused, not.
    const lines = f.split('\n');
    expect(lines[lines.findIndex((l) => l.includes('acme/cpu-high')) + 1]).to.contain('    cpu above 95%');
    expect(frame(ok(firingStatus()), { focus: 0 })).not.to.contain('cpu above 95%');
  });

  it('a failed job comes first with its error; a late heartbeat is named', () => {
    const s = failedJobStatus();
    const f = frame(ok(s), { focus: 3 });
    expect(f).to.contain('3 jobs · 1 failed');
    const lines = f.split('\n');
    const failed = lines.findIndex((l) => l.includes('✗ compaction'));
    expect(failed).to.be.greaterThan(-1);
    expect(lines[failed]).to.contain(`failed ${formatRelative(s.jobs[2].last_run!.finished_at, NOW, true)} · next in 3m`);
    expect(lines[failed + 1]).to.contain('disk full');
    expect(failed).to.be.lessThan(lines.findIndex((l) => l.includes('✓ backup')));
    expect(f).to.contain('late 1');
    expect(f).to.contain('acme/nightly-etl due 1h ago');
  });

  it('an unreachable daemon: a screen saying so and retrying, no stack trace', () => {
    const f = frame({ kind: 'unreachable', reason: 'ECONNREFUSED', since: NOW, attemptAt: NOW + 4000 }, { columns: 120, rows: 30 });
    expect(f.replace(/\s*\n\s*│?\s*/g, ' ')).to.contain(`cannot reach Sentinel at ${URL_}: ECONNREFUSED — retrying every 1 s`);
    expect(f).to.contain('Sentinel unreachable');
    expect(f).to.contain('unreachable for 4 s');
    expect(f).not.to.match(/Error|\bat .*\.js:\d+/);
    // Nothing of a dashboard that is not there.
    expect(f).not.to.contain('req/s');
  });

  it('401/403 and an answer that is not a status each get their own screen', () => {
    const denied = frame({ kind: 'denied', reason: '403 Forbidden: superadmin only' }, { deniedHint: 'The token was minted from /x/secrets/jwt_secret' });
    expect(denied).to.contain('Not authorized');
    expect(denied).to.contain('403 Forbidden: superadmin only');
    expect(denied).to.contain('The token was minted from /x/secrets/jwt_secret');
    const failed = frame({ kind: 'failed', reason: 'HTTP 500: boom' });
    expect(failed).to.contain('Unexpected answer');
    expect(failed).to.contain('HTTP 500: boom');
  });

  for (const [what, status, focus] of [
    ['healthy', healthyStatus(), 0],
    ['firing alerts, alerts focused', firingStatus(), 2],
    ['failed job, jobs focused', failedJobStatus(), 3],
    ['heartbeats focused', failedJobStatus(), 5],
  ] as const) {
    it(`an 80×24 terminal (${what}): at most 80 columns and 24 rows, every panel and the figures that matter shown`, () => {
      const f = frame(ok(status), { columns: 80, rows: 24, focus });
      const lines = f.split('\n');
      expect(lines.length).to.be.at.most(24);
      for (const l of lines) expect(cells(l), l).to.be.at.most(80);
      for (const t of ['HTTP', 'Ingest', 'Alerts', 'Jobs', 'Backups', 'Heartbeats']) expect(f).to.contain(` ${t} `);
      expect(f).to.contain(`Sentinel ${status.version}`);
      expect(f).to.contain('4xx 12 · 5xx 0');
      expect(f).to.contain('pts/s 1.5k');
      expect(f).to.contain(`firing ${status.alerts.newest.filter((a) => a.state === 'firing').length}`);
      expect(f).to.contain('q quit');
    });
  }

  it('the failed job and the firing alert stay visible in the compact layout even when their panel is not focused', () => {
    const s = failedJobStatus();
    s.alerts = firingStatus().alerts;
    const f = frame(ok(s), { columns: 80, rows: 24, focus: 0 });
    expect(f).to.contain('✗ compaction');
    expect(f).to.contain('● critical acme/cpu-high');
  });

  it('row heights: each row at least 6, the focused row served first, the whole height used', () => {
    expect(rowHeights([4, 9, 12], 1, 20)).to.deep.equal([6, 8, 6]);
    expect(rowHeights([4, 9, 12], 2, 20)).to.deep.equal([6, 6, 8]);
    expect(rowHeights([4, 9, 12], 0, 26)).to.deep.equal([6, 9, 11]);
    expect(rowHeights([4, 9, 7], 0, 40)).to.deep.equal([6 + 40 - 6 - 9 - 7, 9, 7]);
    for (const [needs, focus, height] of [
      [[3, 3, 3], 0, 20],
      [[30, 30], 1, 26],
      [[1, 50, 1], 2, 46],
    ] as const) {
      const hs = rowHeights([...needs], focus, height);
      expect(hs.reduce((a, b) => a + b, 0)).to.equal(height);
      for (const x of hs) expect(x).to.be.at.least(6);
    }
  });

  it('below 80×24: a message instead of a broken layout', () => {
    for (const [columns, rows] of [
      [79, 24],
      [80, 23],
      [40, 10],
    ]) {
      const f = frame(ok(healthyStatus()), { columns, rows });
      expect(f).to.contain(`Terminal too small: ${columns}×${rows}`);
      expect(f).to.contain('at least 80×24');
      expect(f).not.to.contain('req/s');
    }
  });

  it('jobs: disabled, never run and running ones each say so; a disabled job still shows its failed manual run', () => {
    const s = healthyStatus();
    const base = s.jobs[0];
    s.jobs = [
      { ...base, name: 'reports', enabled: false, last_run: null, next_run: null },
      { ...base, name: 'restore-drill', enabled: false, next_run: null, last_run: { ...base.last_run!, outcome: 'failed', error: 'no complete backup\nto drill' } },
      { ...base, name: 'compaction', running: true, last_run: { ...base.last_run!, started_at: new Date(NOW - 42_000).toISOString(), finished_at: null, outcome: null } },
      { ...base, name: 'retention', last_run: null },
    ];
    const f = frame(ok(s), { focus: 3 });
    expect(lineWith(f, 'reports')).to.match(/ {2}reports +never run · disabled/);
    expect(lineWith(f, '✗ restore-drill')).to.contain('failed 3h ago · disabled');
    expect(f).to.contain('no complete backup to drill');
    expect(lineWith(f, '… compaction')).to.contain('running since 42s');
    expect(lineWith(f, 'retention')).to.contain('never run · next in 20h');
    expect(f).to.contain('4 jobs · 1 failed');
  });

  it('text from the daemon cannot drive the terminal: escape sequences, control characters and bidi overrides are neutralized', () => {
    const s = firingStatus();
    s.hostname = 'mon\u001b]0;pwned\u0007-01';
    s.alerts.newest[0].rule = 'cpu\u202ehgih';
    s.alerts.newest[0].summary = 'clear\u001b[2J\u001b[Hscreen\u009b31m\u0000nul';
    const f = frame(ok(s), { focus: 2 });
    expect(f).not.to.match(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/);
    expect(f).to.contain('mon ]0;pwned -01');
    expect(f).to.contain('● critical acme/cpuhgih 3m');
    expect(f).to.contain('clear [2J [Hscreen 31m nul');
  });

  it('a panel with more lines than room says how many are hidden', () => {
    const s = healthyStatus();
    s.jobs = Array.from({ length: 12 }, (_, i) => ({ ...s.jobs[0], name: `job-${i}` }));
    const f = frame(ok(s), { columns: 80, rows: 24, focus: 0 });
    const more = /… (\d+) more \(tab to expand\)/.exec(f);
    expect(more, f).to.not.equal(null);
    const shown = (f.match(/✓ job-\d+/g) ?? []).length;
    expect(shown + Number(more![1])).to.equal(12);
  });
});

describe('status dashboard behaviour (StatusApp)', () => {
  function app(results: FetchResult[] | (() => FetchResult), props: { intervalMs?: number; columns?: number; rows?: number } = {}) {
    let calls = 0;
    const fetchStatus = async () => {
      const r = typeof results === 'function' ? results() : results[Math.min(calls, results.length - 1)];
      calls++;
      return r;
    };
    const r = render(
      h(StatusApp, { url: URL_, fetchStatus, intervalMs: props.intervalMs ?? 60_000, size: { columns: props.columns ?? 100, rows: props.rows ?? 30 }, now: () => NOW }),
    );
    return { ...r, frame: () => plain(r.lastFrame() ?? ''), calls: () => calls };
  }
  const okResult = (status = healthyStatus()): FetchResult => ({ ok: true, status });

  it('tab moves the focus (and shift+tab back); the focused panel is marked and expanded', async () => {
    const a = app([okResult()]);
    await until('first frame', () => a.frame().includes('req/s'));
    expect(a.frame()).to.contain('▶ HTTP');
    // Ingest unfocused: its log sparkline and active series are in the expanded part only.
    expect(a.frame()).not.to.contain('active series');
    a.stdin.write('\t');
    await until('focus on Ingest', () => a.frame().includes('▶ Ingest'));
    expect(a.frame()).not.to.contain('▶ HTTP');
    expect(a.frame()).to.contain('active series 9876');
    a.stdin.write('\t');
    await until('focus on Alerts', () => a.frame().includes('▶ Alerts'));
    a.stdin.write('\x1b[Z'); // shift+tab
    await until('focus back on Ingest', () => a.frame().includes('▶ Ingest'));
    for (let i = 0; i < 5; i++) a.stdin.write('\t');
    await until('focus wrapped round to HTTP', () => a.frame().includes('▶ HTTP'));
    // Two tabs typed ahead reach the app as one string: both count.
    a.stdin.write('\t\t');
    await until('focus two panels on', () => a.frame().includes('▶ Alerts'));
    a.unmount();
  });

  it('after the focus moves on, each panel still starts right under its title (no layout left over from the focused style)', async () => {
    const a = app([okResult()], { columns: 80, rows: 24 });
    await until('first frame', () => a.frame().includes('req/s'));
    const under = (title: string) => {
      const lines = a.frame().split('\n');
      const i = lines.findIndex((l) => l.includes(` ${title} `));
      return lines[i + 1] ?? '';
    };
    for (let i = 0; i < PANELS.length; i++) {
      a.stdin.write('\t');
      await until(`focus on ${PANELS[(i + 1) % PANELS.length].title}`, () => a.frame().includes(`▶ ${PANELS[(i + 1) % PANELS.length].title}`));
      expect(under('HTTP'), a.frame()).to.match(/^[│║]req\/s 37\.5 · p50 4\.2 ms · p99 87 ms +[│║]/);
      expect(under('Ingest'), a.frame()).to.contain('pts/s 1.5k');
      expect(under('Jobs'), a.frame()).to.contain('2 jobs · 0 failed');
      expect(under('Alerts'), a.frame()).to.contain('firing 0');
      expect(a.frame().split('\n').find((l) => l.includes('4xx'))).to.match(/[│║]4xx 12 · 5xx 0 +[│║]/);
    }
    a.unmount();
  });

  it('? shows the help over the panels and ? (or Esc) hides it', async () => {
    const a = app([okResult()]);
    await until('first frame', () => a.frame().includes('req/s'));
    a.stdin.write('?');
    await until('help', () => a.frame().includes('Help'));
    expect(a.frame()).to.contain('tab / shift+tab');
    expect(a.frame()).not.to.contain('req/s');
    a.stdin.write('?');
    await until('help hidden', () => a.frame().includes('req/s'));
    a.stdin.write('?');
    await until('help again', () => !a.frame().includes('req/s'));
    a.stdin.write('\x1b');
    await until('help hidden by Esc', () => a.frame().includes('req/s'));
    a.unmount();
  });

  it('q exits: polling stops and the app lets go of stdin', async () => {
    const a = app(() => okResult(), { intervalMs: 20 });
    await until('polling', () => a.calls() >= 2);
    expect(a.stdin.listenerCount('readable')).to.be.greaterThan(0);
    a.stdin.write('q');
    await until('stdin released', () => a.stdin.listenerCount('readable') === 0);
    const after = a.calls();
    await sleep(120);
    expect(a.calls()).to.be.at.most(after + 1);
  });

  it('r refreshes now, without waiting for the interval', async () => {
    const s1 = healthyStatus();
    const s2 = healthyStatus();
    s2.http.requests_per_second = 999;
    const a = app([okResult(s1), okResult(s2)]);
    await until('first frame', () => a.frame().includes('req/s 37.5'));
    expect(a.calls()).to.equal(1);
    a.stdin.write('r');
    await until('second answer shown', () => a.frame().includes('req/s 999'));
    expect(a.calls()).to.equal(2);
    a.unmount();
  });

  it('unreachable, then back: the retry screen gives way to the dashboard by itself', async () => {
    let up = false;
    const a = app(() => (up ? okResult() : { ok: false, kind: 'unreachable', reason: 'ECONNREFUSED' }), { intervalMs: 20 });
    await until('unreachable screen', () => a.frame().includes('Sentinel unreachable'));
    expect(a.frame()).to.contain('ECONNREFUSED');
    up = true;
    await until('dashboard', () => a.frame().includes('req/s 37.5'));
    a.unmount();
  });

  it('keys other than the documented ones change nothing', async () => {
    const a = app([okResult()]);
    await until('first frame', () => a.frame().includes('req/s'));
    const before = a.frame();
    for (const k of ['x', '\0', 'Q', '\x1b[A', '💥', 'a'.repeat(10_000)]) a.stdin.write(k);
    await sleep(50);
    expect(a.frame()).to.equal(before);
    expect(a.calls()).to.equal(1);
    a.unmount();
  });
});
