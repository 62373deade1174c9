import { expect } from 'chai';
import type { AlertRow } from '../../src/features/alerts/alert-types.js';
import { planFlush, type SuppressionCheck } from '../../src/features/alerts/notification-policy.js';

/** planFlush, the policy's decision for one group at one time, without a database. */

const T0 = Date.parse('2026-12-07T10:00:00Z');
const at = (ms: number) => new Date(T0 + ms);
const S = 1000;
const MIN = 60 * S;
const HOUR = 60 * MIN;

let n = 0;
function alert(over: Partial<AlertRow>): AlertRow {
  n++;
  return {
    id: `a${n}`,
    org_id: 'o',
    source: 'rule',
    source_id: 'r',
    rule_id: 'r',
    fingerprint: `f${n}`,
    group_key: 'g',
    labels: { host: `h${n}` },
    annotations: {},
    state: 'firing',
    value: 1,
    error: null,
    active_at: at(0),
    fired_at: at(0),
    resolved_at: null,
    last_breach_at: at(0),
    last_eval_at: at(0),
    firing_notified_at: null,
    resolved_notified_at: null,
    ack_by: null,
    ack_at: null,
    ack_comment: null,
    ack_expires_at: null,
    created_at: at(0),
    updated_at: at(0),
    ...over,
  };
}

const timers = { group_wait_ms: 30 * S, group_interval_ms: 5 * MIN, repeat_interval_ms: HOUR };
const none: SuppressionCheck = () => null;

describe('notification policy: planFlush', () => {
  it('waits group_wait for the first notification of an episode, then sends every unsuppressed firing alert', () => {
    const g = { ...timers, first_seen_at: at(0), last_notified_at: null };
    const a = alert({});
    expect(planFlush(g, [a], none, at(10 * S))).to.deep.equal({ send: null, nextFlushAt: at(30 * S) });
    const p = planFlush(g, [a], none, at(30 * S));
    expect(p.send?.firing.map((x) => x.id)).to.deep.equal([a.id]);
    expect(p.nextFlushAt, 'the repeat').to.deep.equal(at(30 * S + HOUR));
  });

  it('a notification from an earlier episode neither shortens group_wait nor counts for the repeat', () => {
    const g = { ...timers, first_seen_at: at(0), last_notified_at: at(-2 * HOUR) };
    expect(planFlush(g, [alert({})], none, at(S)).send).to.equal(null);
    expect(planFlush(g, [alert({})], none, at(30 * S)).send).to.not.equal(null);
  });

  it('suppressed alerts are left out and wake the group when the first suppression ends; a wake-up in the past becomes a moment later', () => {
    const g = { ...timers, first_seen_at: at(0), last_notified_at: null };
    const silenced = alert({ labels: { host: 'db' } });
    const check: SuppressionCheck = (a) => (a.labels.host === 'db' ? { until: at(10 * MIN) } : null);
    expect(planFlush(g, [silenced], check, at(MIN))).to.deep.equal({ send: null, nextFlushAt: at(10 * MIN) });
    const ended: SuppressionCheck = () => ({ until: at(MIN) });
    expect(planFlush(g, [silenced], ended, at(MIN)).nextFlushAt).to.deep.equal(at(MIN + S));
    const forever: SuppressionCheck = () => ({ until: null });
    expect(planFlush(g, [silenced], forever, at(MIN))).to.deep.equal({ send: null, nextFlushAt: null });
  });

  it('a resolve of a notified firing is sent once (status then resolved), after group_interval; nothing left: the group sleeps', () => {
    const g = { ...timers, first_seen_at: at(0), last_notified_at: at(30 * S) };
    const r = alert({ state: 'resolved', resolved_at: at(MIN), firing_notified_at: at(30 * S) });
    expect(planFlush(g, [r], none, at(2 * MIN))).to.deep.equal({ send: null, nextFlushAt: at(30 * S + 5 * MIN) });
    const p = planFlush(g, [r], none, at(30 * S + 5 * MIN));
    expect(p.send?.resolved.map((x) => x.id)).to.deep.equal([r.id]);
    expect(p.nextFlushAt).to.equal(null);
    const sent = { ...r, resolved_notified_at: at(30 * S + 5 * MIN) };
    expect(planFlush({ ...g, last_notified_at: at(30 * S + 5 * MIN) }, [sent], none, at(HOUR))).to.deep.equal({ send: null, nextFlushAt: null });
  });

  it('a firing that was never notified (resolved within group_wait, or while silenced) gets no resolve', () => {
    const g = { ...timers, first_seen_at: at(0), last_notified_at: null };
    expect(planFlush(g, [alert({ state: 'resolved', resolved_at: at(10 * S) })], none, at(HOUR))).to.deep.equal({ send: null, nextFlushAt: null });
  });

  it('repeats only while an unsuppressed alert fires', () => {
    const g = { ...timers, first_seen_at: at(0), last_notified_at: at(0) };
    const notified = alert({ firing_notified_at: at(0) });
    expect(planFlush(g, [notified], none, at(HOUR - S))).to.deep.equal({ send: null, nextFlushAt: at(HOUR) });
    expect(planFlush(g, [notified], none, at(HOUR)).send?.firing).to.have.length(1);
    const acked: SuppressionCheck = () => ({ until: at(3 * HOUR) });
    expect(planFlush(g, [notified], acked, at(HOUR))).to.deep.equal({ send: null, nextFlushAt: at(3 * HOUR) });
  });
});
