import { expect } from 'chai';
import { MAX_CACHED_ZONES, activeUntil, cachedZoneCount, isActive, isValidTimeZone, type WindowSchedule } from '../../src/features/alerts/maintenance-windows-schedule.js';

const at = (iso: string) => new Date(iso);
const until = (w: WindowSchedule, iso: string) => activeUntil(w, at(iso))?.toISOString() ?? null;

describe('maintenance windows: when one is open', () => {
  it('a daytime window in UTC: open from start (inclusive) to end (exclusive), on its weekdays only', () => {
    // 2026-12-07 is a Monday.
    const w: WindowSchedule = { weekdays: [1, 3], start: '09:00', end: '17:30', time_zone: 'UTC' };
    expect(isActive(w, at('2026-12-07T08:59:59Z'))).to.equal(false);
    expect(isActive(w, at('2026-12-07T09:00:00Z'))).to.equal(true);
    expect(isActive(w, at('2026-12-07T17:29:59Z'))).to.equal(true);
    expect(isActive(w, at('2026-12-07T17:30:00Z'))).to.equal(false);
    expect(isActive(w, at('2026-12-08T12:00:00Z')), 'Tuesday').to.equal(false);
    expect(isActive(w, at('2026-12-09T12:00:00Z')), 'Wednesday').to.equal(true);
    expect(until(w, '2026-12-07T10:00:00Z')).to.equal('2026-12-07T17:30:00.000Z');
    expect(until(w, '2026-12-08T10:00:00Z')).to.equal(null);
  });

  it('the weekday and time are local to the time zone, not UTC', () => {
    // Monday 00:30 in Tokyo (UTC+9) is Sunday 15:30 UTC.
    const w: WindowSchedule = { weekdays: [1], start: '00:00', end: '01:00', time_zone: 'Asia/Tokyo' };
    expect(isActive(w, at('2026-12-06T15:30:00Z'))).to.equal(true);
    expect(isActive(w, at('2026-12-07T00:30:00Z')), 'Monday 00:30 UTC is Monday 09:30 in Tokyo').to.equal(false);
    expect(until(w, '2026-12-06T15:30:00Z')).to.equal('2026-12-06T16:00:00.000Z');
  });

  it('an end before the start spans midnight: open into the next day, which need not be listed', () => {
    // Friday 22:00 to Saturday 06:00, New York (UTC-5 in December). 2026-12-04 is a Friday.
    const w: WindowSchedule = { weekdays: [5], start: '22:00', end: '06:00', time_zone: 'America/New_York' };
    expect(isActive(w, at('2026-12-05T02:59:00Z')), 'Friday 21:59').to.equal(false);
    expect(isActive(w, at('2026-12-05T03:00:00Z')), 'Friday 22:00').to.equal(true);
    expect(isActive(w, at('2026-12-05T10:59:00Z')), 'Saturday 05:59').to.equal(true);
    expect(isActive(w, at('2026-12-05T11:00:00Z')), 'Saturday 06:00').to.equal(false);
    expect(isActive(w, at('2026-12-06T03:30:00Z')), 'Saturday 22:30: Saturday is not listed').to.equal(false);
    expect(isActive(w, at('2026-12-04T10:00:00Z')), 'Friday 05:00: Thursday night is not listed').to.equal(false);
    expect(until(w, '2026-12-05T03:00:00Z')).to.equal('2026-12-05T11:00:00.000Z');
    expect(until(w, '2026-12-05T08:00:00Z')).to.equal('2026-12-05T11:00:00.000Z');
  });

  it('an end equal to the start is 24 hours', () => {
    const w: WindowSchedule = { weekdays: [7], start: '00:00', end: '00:00', time_zone: 'Europe/Berlin' };
    // Sunday 2026-12-06, Berlin is UTC+1.
    expect(isActive(w, at('2026-12-05T22:59:00Z')), 'Saturday 23:59').to.equal(false);
    expect(isActive(w, at('2026-12-05T23:00:00Z')), 'Sunday 00:00').to.equal(true);
    expect(isActive(w, at('2026-12-06T22:59:00Z')), 'Sunday 23:59').to.equal(true);
    expect(isActive(w, at('2026-12-06T23:00:00Z')), 'Monday 00:00').to.equal(false);
    expect(until(w, '2026-12-06T12:00:00Z')).to.equal('2026-12-06T23:00:00.000Z');
  });

  it('daylight saving: wall-clock times hold across the change (09:00–17:00 local in winter and in summer)', () => {
    const w: WindowSchedule = { weekdays: [1, 2, 3, 4, 5, 6, 7], start: '09:00', end: '17:00', time_zone: 'Europe/Berlin' };
    expect(isActive(w, at('2026-01-15T08:00:00Z')), 'winter, 09:00 CET').to.equal(true);
    expect(isActive(w, at('2026-01-15T07:30:00Z')), 'winter, 08:30 CET').to.equal(false);
    expect(isActive(w, at('2026-07-15T07:00:00Z')), 'summer, 09:00 CEST').to.equal(true);
    expect(isActive(w, at('2026-07-15T15:00:00Z')), 'summer, 17:00 CEST').to.equal(false);
    expect(until(w, '2026-07-15T10:00:00Z')).to.equal('2026-07-15T15:00:00.000Z');
  });

  it('daylight saving: the night the clocks skip an hour, a window ending in it closes at the jump', () => {
    // Berlin, 2026-03-29 (Sunday): 02:00 CET becomes 03:00 CEST at 01:00 UTC.
    const w: WindowSchedule = { weekdays: [7], start: '01:30', end: '02:30', time_zone: 'Europe/Berlin' };
    expect(isActive(w, at('2026-03-29T00:29:00Z')), '01:29 CET').to.equal(false);
    expect(isActive(w, at('2026-03-29T00:40:00Z')), '01:40 CET').to.equal(true);
    expect(isActive(w, at('2026-03-29T01:00:00Z')), '03:00 CEST').to.equal(false);
    expect(until(w, '2026-03-29T00:40:00Z')).to.equal('2026-03-29T01:00:00.000Z');
    // A window wholly inside the skipped hour never opens that night.
    const skipped: WindowSchedule = { weekdays: [7], start: '02:00', end: '03:00', time_zone: 'Europe/Berlin' };
    for (let m = 0; m < 180; m += 5) expect(isActive(skipped, new Date(Date.UTC(2026, 2, 28, 23, 0) + m * 60_000))).to.equal(false);
  });

  it('daylight saving: the night the clocks go back, a window in the repeated hour is open both times', () => {
    // Berlin, 2026-10-25 (Sunday): 03:00 CEST becomes 02:00 CET at 01:00 UTC; 02:00–03:00 local happens twice.
    const w: WindowSchedule = { weekdays: [7], start: '02:00', end: '03:00', time_zone: 'Europe/Berlin' };
    expect(isActive(w, at('2026-10-24T23:59:00Z')), '01:59 CEST').to.equal(false);
    expect(isActive(w, at('2026-10-25T00:30:00Z')), '02:30 CEST').to.equal(true);
    expect(isActive(w, at('2026-10-25T01:30:00Z')), '02:30 CET').to.equal(true);
    expect(isActive(w, at('2026-10-25T02:00:00Z')), '03:00 CET').to.equal(false);
    expect(until(w, '2026-10-25T01:30:00Z')).to.equal('2026-10-25T02:00:00.000Z');
  });

  it('daylight saving in the southern hemisphere and a midnight-spanning window across the change', () => {
    // Sydney: 2026-10-04 (Sunday) 02:00 AEST → 03:00 AEDT. Saturday 23:00 → Sunday 04:00 local.
    const w: WindowSchedule = { weekdays: [6], start: '23:00', end: '04:00', time_zone: 'Australia/Sydney' };
    expect(isActive(w, at('2026-10-03T13:00:00Z')), 'Saturday 23:00 AEST').to.equal(true);
    expect(isActive(w, at('2026-10-03T16:30:00Z')), 'Sunday 03:30 AEDT').to.equal(true);
    expect(isActive(w, at('2026-10-03T17:00:00Z')), 'Sunday 04:00 AEDT').to.equal(false);
    expect(until(w, '2026-10-03T13:00:00Z'), 'four hours of wall clock, four hours less the skipped one').to.equal('2026-10-03T17:00:00.000Z');
  });

  it('time zone names: IANA names and UTC are valid; anything else is not', () => {
    for (const tz of ['UTC', 'Europe/Berlin', 'America/Argentina/Buenos_Aires', 'Etc/GMT+5']) expect(isValidTimeZone(tz), tz).to.equal(true);
    for (const tz of ['', 'Mars/Olympus', 'Europe/Berlin\u0000', '../../etc/passwd', 'x'.repeat(100), 'Europe/ Berlin']) expect(isValidTimeZone(tz), tz).to.equal(false);
  });

  it('the formatter cache: validation caches nothing, spellings of one zone share an entry, the size is bounded', () => {
    const before = cachedZoneCount();
    for (let i = 0; i < 200; i++) isValidTimeZone(i % 2 ? 'Europe/Berlin' : `Mars/Crater${i}`);
    expect(cachedZoneCount(), 'validation').to.equal(before);
    const w = (time_zone: string): WindowSchedule => ({ weekdays: [1, 2, 3, 4, 5, 6, 7], start: '00:00', end: '00:00', time_zone });
    isActive(w('Asia/Tokyo'), at('2026-03-02T12:00:00Z'));
    const one = cachedZoneCount();
    for (const tz of ['asia/tokyo', 'ASIA/TOKYO', 'Asia/TOKYO', 'aSiA/tOkYo']) expect(isActive(w(tz), at('2026-03-02T12:00:00Z')), tz).to.equal(true);
    expect(cachedZoneCount(), 'case spellings').to.equal(one);
    for (const tz of Intl.supportedValuesOf('timeZone').slice(0, MAX_CACHED_ZONES * 3)) isActive(w(tz), at('2026-03-02T12:00:00Z'));
    expect(cachedZoneCount()).to.be.at.most(MAX_CACHED_ZONES);
  });
});
