import { expect } from 'chai';
import { Registry } from 'prom-client';
import { IngestStatusSchema } from '../../src/core/status.js';
import { newAjv } from '../../src/core/validation.js';
import { HISTORY_SLOTS, IngestStats, SLOT_MS } from '../../src/features/telemetry/ingest-stats.js';

/** The in-memory ingest statistics behind /metrics and the admin status answer's ingest section. */
describe('ingest statistics', () => {
  // A slot boundary, so the test knows which slot each record lands in.
  const T0 = Date.parse('2026-11-30T10:00:00Z');
  let now: number;
  let queue: number;
  let series: number | null;
  let stats: IngestStats;
  let registry: Registry;

  beforeEach(() => {
    now = T0;
    queue = 0;
    series = null;
    registry = new Registry();
    stats = new IngestStats(registry, { queueDepth: () => queue, activeSeries: () => series, now: () => now });
  });

  const valid = newAjv().compile(IngestStatusSchema);
  const status = () => {
    const s = stats.ingestStatus();
    expect(valid(s), JSON.stringify(valid.errors)).to.equal(true);
    return s;
  };

  it('answers zeros and nulls before any traffic, with a full 10-minute history of 10 s slots', () => {
    const s = status();
    expect(s).to.deep.include({ window_seconds: 1, points_per_second: 0, logs_per_second: 0, events_per_second: 0, rejected: [], active_series: null });
    expect(s.writer).to.deep.equal({ queue_depth: 0, batch_rows_avg: null, commit_ms_p99: null });
    expect(s.history).to.have.length(HISTORY_SLOTS);
    expect(s.history.at(-1)!.ts).to.equal(new Date(T0).toISOString());
    expect(s.history[0].ts).to.equal(new Date(T0 - (HISTORY_SLOTS - 1) * SLOT_MS).toISOString());
  });

  it('computes rates over the last minute and never over the time before the start', () => {
    now = T0 + 20_000; // 20 s after the start
    stats.accepted({ metrics: 400, logs: 100, events: 20 });
    const s = status();
    expect(s.window_seconds).to.equal(20);
    expect(s.points_per_second).to.equal(20);
    expect(s.logs_per_second).to.equal(5);
    expect(s.events_per_second).to.equal(1);
    // Later, in a partial second and after the first minute: the rate is per the window the answer names.
    now = T0 + 75_500;
    stats.accepted({ metrics: 7, logs: 0, events: 0 });
    const later = status();
    // The window starts at the slot 50 s before the current one's (T0 + 20 s): 55.5 s, counted 56.
    expect(later.window_seconds).to.equal(56);
    expect(later.points_per_second * later.window_seconds).to.be.closeTo(407, 1e-9);
    // Two minutes later the items are out of the window.
    now = T0 + 140_000;
    expect(status().points_per_second).to.equal(0);
  });

  it('puts each item in its 10 s slot and drops slots older than ten minutes', () => {
    stats.accepted({ metrics: 100, logs: 0, events: 0 }); // slot T0
    now = T0 + SLOT_MS + 5_000;
    stats.accepted({ metrics: 0, logs: 50, events: 0 }); // slot T0+10 s, 5 s into it
    let s = status();
    const byTs = new Map(s.history.map((h) => [h.ts, h]));
    expect(byTs.get(new Date(T0).toISOString())).to.deep.equal({ ts: new Date(T0).toISOString(), points_per_second: 10, logs_per_second: 0 });
    // The current slot's rate is over the 5 s it has run.
    expect(s.history.at(-1)).to.deep.equal({ ts: new Date(T0 + SLOT_MS).toISOString(), points_per_second: 0, logs_per_second: 10 });
    // Ten minutes after the second slot, its ring entry is reused: neither old slot may show.
    now = T0 + (HISTORY_SLOTS + 1) * SLOT_MS;
    stats.accepted({ metrics: 7, logs: 0, events: 0 });
    s = status();
    expect(s.history.every((h) => h.logs_per_second === 0)).to.equal(true);
    expect(s.history.reduce((n, h) => n + h.points_per_second, 0)).to.equal(7); // 7 items over 1 s (the slot just began)
  });

  it('sums refused items by signal and reason since the start, ignoring zero and nonsense counts', () => {
    stats.rejected('metrics', 'rate_limited', 10);
    stats.rejected('logs', 'rate_limited', 3);
    stats.rejected('metrics', 'rate_limited', 5);
    stats.rejected('events', 'outside_time_window', 0);
    stats.rejected('events', 'outside_time_window', Number.NaN);
    stats.rejected('events', 'outside_time_window', -4);
    now = T0 + 3_600_000;
    expect(status().rejected).to.deep.equal([
      { signal: 'logs', reason: 'rate_limited', items: 3 },
      { signal: 'metrics', reason: 'rate_limited', items: 15 },
    ]);
  });

  it('reports the writer: queue depth read when asked, mean rows per commit and a p99 within 10 %', () => {
    queue = 42;
    for (let i = 0; i < 99; i++) stats.committed(10, 0.002);
    stats.committed(1010, 0.5);
    const s = status();
    expect(s.writer.queue_depth).to.equal(42);
    expect(s.writer.batch_rows_avg).to.equal(20);
    // 99 of 100 commits took 2 ms: the 99th percentile is 2 ms (the bucket's bound, at most 10 % above).
    expect(s.writer.commit_ms_p99).to.be.within(2, 2.2);
    stats.committed(1, 0.5);
    stats.committed(1, 0.5);
    expect(status().writer.commit_ms_p99).to.be.within(500, 550);
    // A minute later the commits are out of the window.
    now = T0 + 70_000;
    expect(status().writer).to.deep.equal({ queue_depth: 42, batch_rows_avg: null, commit_ms_p99: null });
  });

  it('survives absurd latencies (huge, zero, negative) inside the schema', () => {
    stats.committed(0, 1e9);
    stats.committed(0, 0);
    stats.committed(0, -1);
    const s = status();
    expect(s.writer.commit_ms_p99).to.be.a('number').and.to.be.greaterThan(100_000);
  });

  it('feeds the Prometheus series from the same calls', async () => {
    series = 17;
    queue = 3;
    stats.accepted({ metrics: 5, logs: 2, events: 0 });
    stats.rejected('logs', 'dropped_outside_time_window', 4);
    stats.committed(7, 0.003);
    const text = await registry.metrics();
    expect(text).to.match(/^sentinel_ingest_items_total\{signal="metrics"\} 5$/m);
    expect(text).to.match(/^sentinel_ingest_items_total\{signal="logs"\} 2$/m);
    expect(text).to.match(/^sentinel_ingest_items_total\{signal="events"\} 0$/m);
    expect(text).to.match(/^sentinel_ingest_rejected_items_total\{signal="logs",reason="dropped_outside_time_window"\} 4$/m);
    expect(text).to.match(/^sentinel_ingest_commit_rows_count 1$/m);
    expect(text).to.match(/^sentinel_ingest_commit_rows_sum 7$/m);
    expect(text).to.match(/^sentinel_ingest_commit_duration_seconds_bucket\{le="0.005"\} 1$/m);
    expect(text).to.match(/^sentinel_ingest_queue_rows 3$/m);
    expect(text).to.match(/^sentinel_series_active 17$/m);
  });
});
