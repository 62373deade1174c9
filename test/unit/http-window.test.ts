import { expect } from 'chai';
import { HTTP_DURATIONS, HttpWindow } from '../../src/http/http-window.js';

const binOf = (ms: number) => HTTP_DURATIONS.bin(ms);
const binValue = (bin: number) => HTTP_DURATIONS.middle(bin);

/*
 * The HTTP figures of the admin status: the last 60 s in one-second slots, on a pinned clock, so
 * what enters and what leaves the window is exact.
 */
describe('HttpWindow', () => {
  const at = (seconds: number) => 1_800_000_000_000 + seconds * 1000;

  it('counts requests, 4xx and 5xx, and divides by the seconds since it was made while that is under a minute', () => {
    let now = at(0);
    const w = new HttpWindow(() => now);
    expect(w.status(0)).to.deep.equal({ window_seconds: 1, requests_per_second: 0, p50_ms: null, p99_ms: null, status_4xx: 0, status_5xx: 0, in_flight: 0 });
    for (let i = 0; i < 10; i++) w.record(200, 5);
    now = at(9.5);
    w.record(404, 5);
    w.record(429, 5);
    w.record(503, 5);
    const s = w.status(2);
    expect(s.window_seconds).to.equal(10);
    expect(s.requests_per_second).to.equal(1.3);
    expect(s.status_4xx).to.equal(2);
    expect(s.status_5xx).to.equal(1);
    expect(s.in_flight).to.equal(2);
  });

  it('forgets what is older than 60 s, slot by slot, however the ring wraps', () => {
    let now = at(0);
    const w = new HttpWindow(() => now);
    w.record(500, 1);
    now = at(30);
    w.record(200, 1);
    w.record(200, 1);
    now = at(59.9);
    expect(w.status(0)).to.include({ window_seconds: 60, status_5xx: 1, requests_per_second: 3 / 60 });
    now = at(60);
    // Second 0 has left; 30 is in; the slot second 0 used is second 60's now.
    expect(w.status(0)).to.include({ window_seconds: 60, status_5xx: 0, requests_per_second: 2 / 60 });
    w.record(400, 1);
    expect(w.status(0)).to.include({ status_4xx: 1, status_5xx: 0, requests_per_second: 3 / 60 });
    now = at(30 + 60);
    expect(w.status(0)).to.include({ status_4xx: 1, requests_per_second: 1 / 60 });
    now = at(60 + 3600);
    expect(w.status(0)).to.include({ status_4xx: 0, requests_per_second: 0, p50_ms: null, p99_ms: null });
  });

  it('p50 and p99 within the histogram\'s 12.5 % of the true quantiles', () => {
    const now = at(0);
    const w = new HttpWindow(() => now);
    // 1..1000 ms: p50 = 500, p99 = 990.
    for (let ms = 1; ms <= 1000; ms++) w.record(200, ms);
    const s = w.status(0);
    expect(s.p50_ms).to.be.within(500 / 1.125, 500 * 1.125);
    expect(s.p99_ms).to.be.within(990 / 1.125, 990 * 1.125);
  });

  it('odd durations land in the end bins, never outside the histogram', () => {
    for (const ms of [0, -1, Number.NaN, 1e-9]) expect(binOf(ms), String(ms)).to.equal(0);
    for (const ms of [1e12, Number.POSITIVE_INFINITY, Number.MAX_VALUE]) expect(binOf(ms), String(ms)).to.equal(63);
    const w = new HttpWindow(() => at(0));
    w.record(200, Number.NaN);
    w.record(200, Number.POSITIVE_INFINITY);
    const s = w.status(0);
    expect(s.p50_ms).to.equal(binValue(0));
    expect(s.p99_ms).to.equal(Math.round(binValue(63) * 1000) / 1000);
    // Bins grow by 1.25: each value's bin holds it.
    for (const ms of [0.06, 1, 7.3, 250, 9999]) {
      const b = binOf(ms);
      expect(ms, String(ms)).to.be.within(binValue(b) / 1.25, binValue(b) * 1.25);
    }
  });

  it('a negative in-flight count (a bug elsewhere) shows as 0, not as an answer the schema refuses', () => {
    expect(new HttpWindow(() => at(0)).status(-1).in_flight).to.equal(0);
  });
});
