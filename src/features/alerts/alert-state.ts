import type { AlertRow, AlertState } from './alert-types.js';

/*
 * The state machine of one alert instance, pure: (previous record, observation, timing, now) →
 * next record and its transition. The evaluator, the preview and the tests run the same code.
 *
 *   ok / resolved ──breach──▶ pending ──held for `for`──▶ firing ──recovered, keep_firing_for
 *        ▲                      │ (firing at once when for = 0)        past since last breach──▶ resolved
 *        └──────── no breach ───┘
 *
 * Observations:
 * - breach: the condition holds (past the threshold).
 * - recovered: past the recovery threshold (or, without one, no longer past the threshold).
 * - between: in the hysteresis band (no longer past the threshold, not yet past the recovery
 *   threshold). A firing alert keeps firing; for any other state it is simply not a breach (a
 *   pending alert needs the condition to hold for the whole of `for`, so it returns to ok).
 * - no_data: the instance no longer answers (its group vanished): like recovered (a firing one
 *   resolves once keep_firing_for has passed; it does not flap back and forth with gaps).
 * - error: the query failed; nothing is known, so nothing changes (no flapping resolve).
 */

export type Observation = 'breach' | 'recovered' | 'between' | 'no_data' | 'error';

/** The parts of an alerts row the state machine decides. */
export type StateRecord = Pick<
  AlertRow,
  | 'state'
  | 'value'
  | 'active_at'
  | 'fired_at'
  | 'resolved_at'
  | 'last_breach_at'
  | 'firing_notified_at'
  | 'resolved_notified_at'
  | 'ack_by'
  | 'ack_at'
  | 'ack_comment'
  | 'ack_expires_at'
>;

export interface Timing {
  forMs: number;
  keepFiringForMs: number;
}

export interface Transition {
  from: AlertState;
  to: AlertState;
}

export interface Step {
  record: StateRecord;
  /** null: the state did not change. */
  transition: Transition | null;
}

/** The record of an instance never seen before. */
export const INITIAL_RECORD: Readonly<StateRecord> = Object.freeze({
  state: 'ok',
  value: null,
  active_at: null,
  fired_at: null,
  resolved_at: null,
  last_breach_at: null,
  firing_notified_at: null,
  resolved_notified_at: null,
  ack_by: null,
  ack_at: null,
  ack_comment: null,
  ack_expires_at: null,
});

/** Firing: notified afresh (an acknowledgement given while it was pending still applies). */
function fire(r: StateRecord, now: Date): StateRecord {
  return { ...r, state: 'firing', fired_at: now, resolved_at: null, firing_notified_at: null, resolved_notified_at: null };
}

/** A new episode (from ok or resolved): any acknowledgement of an earlier one no longer applies. */
const NO_ACK = { ack_by: null, ack_at: null, ack_comment: null, ack_expires_at: null } as const;

export function nextState(prev: StateRecord | null, obs: Observation, value: number | null, timing: Timing, now: Date): Step {
  const from = prev ?? INITIAL_RECORD;
  if (obs === 'error') return { record: { ...from }, transition: null };
  const r: StateRecord = { ...from, value: value ?? from.value };
  let next: StateRecord;
  if (obs === 'breach') {
    r.last_breach_at = now;
    if (from.state === 'firing') next = r;
    else if (from.state === 'pending') {
      const since = from.active_at ?? now;
      next = now.getTime() - since.getTime() >= timing.forMs ? fire(r, now) : r;
    } else {
      // ok, resolved (or a row left in no_data/error): a new episode starts.
      const pending: StateRecord = { ...r, ...NO_ACK, state: 'pending', active_at: now };
      next = timing.forMs <= 0 ? fire(pending, now) : pending;
    }
  } else if (from.state === 'firing') {
    const lastBreach = from.last_breach_at ?? from.fired_at ?? now;
    const kept = now.getTime() - lastBreach.getTime() < timing.keepFiringForMs;
    next = obs === 'between' || kept ? r : { ...r, state: 'resolved', resolved_at: now, active_at: null };
  } else if (from.state === 'resolved') {
    next = r;
  } else {
    // pending without a breach, or ok: ok.
    next = { ...r, state: 'ok', active_at: null };
  }
  return { record: next, transition: next.state === from.state ? null : { from: from.state, to: next.state } };
}
