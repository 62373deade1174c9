import { expect } from 'chai';
import { schedulePeriodMs } from '../../src/features/heartbeats/instance-checks.js';

/** The backup heartbeat's period: the longest gap between consecutive slots of the job's schedule. */
describe("instance checks: a schedule's period", () => {
  const HOUR = 3_600_000;
  const DAY = 24 * HOUR;
  const now = new Date('2026-12-02T10:17:00Z'); // a Wednesday

  it('is the gap of a regular schedule', () => {
    expect(schedulePeriodMs('0 */6 * * *', now)).to.equal(6 * HOUR);
    expect(schedulePeriodMs('* * * * *', now)).to.equal(60_000);
    expect(schedulePeriodMs('0 4 * * 0', now)).to.equal(7 * DAY);
    expect(schedulePeriodMs('*/10 * * * * *', now), 'with seconds').to.equal(10_000);
  });

  it('is the longest gap of an irregular one (a weekday-only backup waits over the weekend)', () => {
    expect(schedulePeriodMs('0 3 * * 1-5', now)).to.equal(3 * DAY);
    expect(schedulePeriodMs('0 1,2 * * *', now)).to.equal(23 * HOUR);
  });
});
