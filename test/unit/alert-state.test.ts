import { expect } from 'chai';
import fc from 'fast-check';
import { INITIAL_RECORD, nextState, type Observation, type StateRecord, type Timing } from '../../src/features/alerts/alert-state.js';
import { classify } from '../../src/features/alerts/rule-condition.js';

/** The state machine of one alert instance: every edge, the timers, and hysteresis as a property. */

const T0 = Date.parse('2026-12-01T00:00:00Z');
const at = (s: number) => new Date(T0 + s * 1000);
const NO_WAIT: Timing = { forMs: 0, keepFiringForMs: 0 };

/** Feeds observations (one per second from T0) and returns each step's record. */
function run(obs: [Observation, number | null][], timing: Timing, start: StateRecord | null = null): StateRecord[] {
  const out: StateRecord[] = [];
  let r = start;
  obs.forEach(([o, v], i) => {
    r = nextState(r, o, v, timing, at(i)).record;
    out.push(r);
  });
  return out;
}

describe('alert state machine', () => {
  it('ok + breach with for = 0 fires at once; the transition says ok → firing', () => {
    const step = nextState(null, 'breach', 95, NO_WAIT, at(0));
    expect(step.transition).to.deep.equal({ from: 'ok', to: 'firing' });
    expect(step.record).to.include({ state: 'firing', value: 95 });
    expect(step.record.fired_at).to.deep.equal(at(0));
    expect(step.record.active_at).to.deep.equal(at(0));
    expect(step.record.last_breach_at).to.deep.equal(at(0));
  });

  it('pending is held for `for` before firing; active_at stays at the first breach', () => {
    const timing = { forMs: 60_000, keepFiringForMs: 0 };
    let r = nextState(null, 'breach', 1, timing, at(0));
    expect(r.transition).to.deep.equal({ from: 'ok', to: 'pending' });
    r = nextState(r.record, 'breach', 2, timing, at(59));
    expect(r.transition).to.equal(null);
    expect(r.record.state).to.equal('pending');
    expect(r.record.active_at).to.deep.equal(at(0));
    r = nextState(r.record, 'breach', 3, timing, at(60));
    expect(r.transition).to.deep.equal({ from: 'pending', to: 'firing' });
    expect(r.record.fired_at).to.deep.equal(at(60));
    expect(r.record.active_at).to.deep.equal(at(0));
  });

  it('pending without a breach (recovered, between or vanished) returns to ok and forgets its start', () => {
    const timing = { forMs: 60_000, keepFiringForMs: 0 };
    for (const obs of ['recovered', 'between', 'no_data'] as const) {
      const pending = nextState(null, 'breach', 1, timing, at(0)).record;
      const step = nextState(pending, obs, 0, timing, at(10));
      expect(step.transition, obs).to.deep.equal({ from: 'pending', to: 'ok' });
      expect(step.record.active_at).to.equal(null);
      // A new breach starts the wait again.
      const again = nextState(step.record, 'breach', 1, timing, at(20));
      expect(again.record.state).to.equal('pending');
      expect(again.record.active_at).to.deep.equal(at(20));
    }
  });

  it('firing + recovered resolves at once without keep_firing_for', () => {
    const firing = nextState(null, 'breach', 9, NO_WAIT, at(0)).record;
    const step = nextState(firing, 'recovered', 1, NO_WAIT, at(1));
    expect(step.transition).to.deep.equal({ from: 'firing', to: 'resolved' });
    expect(step.record.resolved_at).to.deep.equal(at(1));
    expect(step.record.fired_at).to.deep.equal(at(0));
    expect(step.record.value).to.equal(1);
  });

  it('keep_firing_for counts from the last breach', () => {
    const timing = { forMs: 0, keepFiringForMs: 30_000 };
    const states = run(
      [
        ['breach', 9],
        ['breach', 9], // last breach at 1 s
        ['recovered', 1],
        ['recovered', 1],
      ],
      timing,
    );
    expect(states.map((s) => s.state)).to.deep.equal(['firing', 'firing', 'firing', 'firing']);
    let r = nextState(states[3], 'recovered', 1, timing, at(30)); // 29 s after the last breach
    expect(r.record.state).to.equal('firing');
    r = nextState(r.record, 'recovered', 1, timing, at(31)); // 30 s
    expect(r.transition).to.deep.equal({ from: 'firing', to: 'resolved' });
    // A vanished instance (no_data) resolves on the same terms.
    const kept = nextState(states[1], 'no_data', null, timing, at(10));
    expect(kept.record.state).to.equal('firing');
    expect(kept.record.value).to.equal(9);
    expect(nextState(kept.record, 'no_data', null, timing, at(31)).record.state).to.equal('resolved');
  });

  it('between keeps a firing alert firing (hysteresis) and is no breach for an ok one', () => {
    const firing = nextState(null, 'breach', 9, NO_WAIT, at(0)).record;
    const step = nextState(firing, 'between', 7, NO_WAIT, at(100));
    expect(step.transition).to.equal(null);
    expect(step.record).to.include({ state: 'firing', value: 7 });
    expect(step.record.last_breach_at).to.deep.equal(at(0));
    expect(nextState(null, 'between', 7, NO_WAIT, at(0)).record.state).to.equal('ok');
  });

  it('error changes nothing: a firing alert neither resolves nor loses its value', () => {
    const firing = nextState(null, 'breach', 9, NO_WAIT, at(0)).record;
    const step = nextState(firing, 'error', null, NO_WAIT, at(100));
    expect(step.transition).to.equal(null);
    expect(step.record).to.deep.equal(firing);
    const pending = nextState(null, 'breach', 9, { forMs: 60_000, keepFiringForMs: 0 }, at(0)).record;
    expect(nextState(pending, 'error', null, NO_WAIT, at(10)).record.state).to.equal('pending');
  });

  it('resolved stays resolved until a new breach, which starts a new episode with fresh ack and notification fields', () => {
    const firing = nextState(null, 'breach', 9, NO_WAIT, at(0)).record;
    const notified: StateRecord = {
      ...nextState(firing, 'recovered', 1, NO_WAIT, at(10)).record,
      firing_notified_at: at(1),
      resolved_notified_at: at(11),
      ack_by: '00000000-0000-4000-8000-000000000001',
      ack_at: at(5),
      ack_comment: 'looking',
      ack_expires_at: at(500),
    };
    const still = nextState(notified, 'recovered', 0, NO_WAIT, at(20));
    expect(still.transition).to.equal(null);
    expect(still.record.resolved_notified_at).to.deep.equal(at(11));
    const refire = nextState(notified, 'breach', 10, NO_WAIT, at(30));
    expect(refire.transition).to.deep.equal({ from: 'resolved', to: 'firing' });
    expect(refire.record).to.include({ firing_notified_at: null, resolved_notified_at: null, resolved_at: null, ack_by: null, ack_at: null, ack_comment: null, ack_expires_at: null });
    expect(refire.record.fired_at).to.deep.equal(at(30));
    // An ack of a firing alert survives further breaches of the same episode.
    const acked = { ...refire.record, ack_by: 'u', ack_at: at(31) };
    expect(nextState(acked, 'breach', 11, NO_WAIT, at(32)).record.ack_by).to.equal('u');
  });

  it('an acknowledgement given while pending still holds when the same episode fires', () => {
    const timing = { forMs: 60_000, keepFiringForMs: 0 };
    const pending = nextState(null, 'breach', 1, timing, at(0)).record;
    const acked: StateRecord = { ...pending, ack_by: 'u1', ack_at: at(10), ack_comment: 'on it', ack_expires_at: null };
    const fired = nextState(acked, 'breach', 2, timing, at(60)).record;
    expect(fired.state).to.equal('firing');
    expect(fired).to.include({ ack_by: 'u1', ack_comment: 'on it' });
    expect(fired.ack_at).to.deep.equal(at(10));
  });

  it('never mutates the record it is given', () => {
    const prev = Object.freeze({ ...INITIAL_RECORD });
    nextState(prev, 'breach', 1, NO_WAIT, at(0));
    expect(prev.state).to.equal('ok');
  });

  describe('properties', () => {
    const rule = { op: '>' as const, threshold: 80, recovery_threshold: 70 };

    it('values oscillating between the threshold and the recovery threshold never resolve a firing alert', () => {
      fc.assert(
        fc.property(
          fc.array(fc.double({ min: 70, max: 80, noNaN: true, minExcluded: true }), { minLength: 1, maxLength: 200 }),
          fc.integer({ min: 0, max: 120_000 }),
          fc.integer({ min: 1, max: 60_000 }),
          (values, keepFiringForMs, stepMs) => {
            const timing = { forMs: 0, keepFiringForMs };
            let r = nextState(null, 'breach', 95, timing, new Date(T0)).record;
            values.forEach((v, i) => {
              const obs = classify(rule, v);
              expect(obs).to.equal('between');
              r = nextState(r, obs, v, timing, new Date(T0 + (i + 1) * stepMs)).record;
              expect(r.state).to.equal('firing');
            });
          },
        ),
      );
    });

    it('any sequence: firing needs a breach at least `for` after the episode began, resolving needs keep_firing_for since the last breach', () => {
      const obsArb = fc.constantFrom<Observation>('breach', 'recovered', 'between', 'no_data', 'error');
      fc.assert(
        fc.property(
          fc.array(fc.tuple(obsArb, fc.integer({ min: 1, max: 30_000 })), { minLength: 1, maxLength: 100 }),
          fc.integer({ min: 0, max: 60_000 }),
          fc.integer({ min: 0, max: 60_000 }),
          (steps, forMs, keepFiringForMs) => {
            const timing = { forMs, keepFiringForMs };
            let r: StateRecord | null = null;
            let t = T0;
            for (const [obs, dt] of steps) {
              t += dt;
              const prev: StateRecord = r ?? INITIAL_RECORD;
              const step = nextState(r, obs, 1, timing, new Date(t));
              const next = step.record;
              if (step.transition?.to === 'firing') {
                expect(obs).to.equal('breach');
                expect(t - next.active_at!.getTime()).to.be.at.least(forMs);
              }
              if (step.transition?.to === 'resolved') {
                expect(prev.state).to.equal('firing');
                expect(obs === 'recovered' || obs === 'no_data').to.equal(true);
                expect(t - prev.last_breach_at!.getTime()).to.be.at.least(keepFiringForMs);
              }
              if (obs === 'error') expect(next).to.deep.equal(prev);
              if (next.state === 'pending' || next.state === 'firing') expect(next.active_at).to.not.equal(null);
              r = next;
            }
          },
        ),
      );
    });
  });
});
