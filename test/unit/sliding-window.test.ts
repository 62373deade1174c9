import { expect } from 'chai';
import { addCounts, LogBuckets, SlotRing } from '../../src/core/sliding-window.js';

describe('LogBuckets (fixed log-scale histogram)', () => {
  const b = new LogBuckets({ first: 1, ratio: 2, bins: 8 });

  it('bins by bound: bin 0 up to first, bin i up to first·ratio^i, the last one everything beyond', () => {
    expect([0.5, 1, 1.01, 2, 2.01, 4, 100, 128, 129, 1e9].map((v) => b.bin(v))).to.deep.equal([0, 0, 1, 1, 2, 2, 7, 7, 7, 7]);
    expect([0, -3, Number.NaN].map((v) => b.bin(v))).to.deep.equal([0, 0, 0]);
    expect(b.bin(Number.POSITIVE_INFINITY)).to.equal(7);
    expect([0, 1, 3].map((i) => b.upper(i))).to.deep.equal([1, 2, 8]);
    expect(b.middle(0)).to.equal(1);
    expect(b.middle(3)).to.be.closeTo(4 * Math.SQRT2, 1e-12);
  });

  it('a quantile: the rank-th value\'s bin, as its middle or its upper bound; null when empty', () => {
    const c = b.counts();
    expect(b.quantile(c, 0.5, 'upper')).to.equal(null);
    // 90 values in bin 1 (≤ 2), 10 in bin 4 (≤ 16).
    c[1] = 90;
    c[4] = 10;
    expect(b.quantile(c, 0.5, 'upper')).to.equal(2);
    expect(b.quantile(c, 0.9, 'upper')).to.equal(2);
    expect(b.quantile(c, 0.91, 'upper')).to.equal(16);
    expect(b.quantile(c, 0.99, 'middle')).to.equal(Math.round(8 * Math.SQRT2 * 1000) / 1000);
    // q 0 is the smallest value's bin, not "before the first".
    expect(b.quantile(c, 0, 'upper')).to.equal(2);
  });

  it('merges counts bin by bin, and refuses a layout that would not grow', () => {
    const a = b.counts();
    const x = b.counts();
    a[2] = 1;
    x[2] = 2;
    x[7] = 5;
    addCounts(a, x);
    expect([...a]).to.deep.equal([0, 0, 3, 0, 0, 0, 0, 5]);
    expect(() => new LogBuckets({ first: 1, ratio: 1, bins: 8 })).to.throw(RangeError);
    expect(() => new LogBuckets({ first: 0, ratio: 2, bins: 8 })).to.throw(RangeError);
    expect(() => new LogBuckets({ first: 1, ratio: 2, bins: 1.5 })).to.throw(RangeError);
  });
});

describe('SlotRing (the last N time slots)', () => {
  let now = 0;
  let made = 0;
  const ring = () =>
    new SlotRing<{ n: number }>({
      slotMs: 10,
      slots: 3,
      make: () => (made++, { n: 0 }),
      reset: (f) => (f.n = 0),
      now: () => now,
    });

  it('adds to the slot now is in; reads back only the slots it still holds', () => {
    now = 0;
    made = 0;
    const r = ring();
    r.current().n += 1;
    now = 9;
    r.current().n += 1;
    now = 10;
    r.current().n += 5;
    expect([r.slotOf(0), r.slotOf(9), r.slotOf(10), r.slotOf(-1)]).to.deep.equal([0, 0, 1, -1]);
    expect([r.at(0)?.n, r.at(1)?.n, r.at(2)]).to.deep.equal([2, 5, undefined]);
    // Slot 3 reuses slot 0's entry: emptied first, and slot 0 is gone, not read as slot 3's.
    now = 30;
    expect(r.current().n).to.equal(0);
    r.current().n += 4;
    expect([r.at(0), r.at(1)?.n, r.at(3)?.n]).to.deep.equal([undefined, 5, 4]);
    // Entries are reused, not made again: one per ring place.
    for (const t of [40, 50, 60, 70, 80]) {
      now = t;
      r.current();
    }
    expect(made).to.equal(3);
    // A slot far in the past or the future is not one the ring holds.
    expect([r.at(-2), r.at(3), r.at(11)]).to.deep.equal([undefined, undefined, undefined]);
    expect(r.at(8)?.n).to.equal(0);
  });

  it('works before the epoch too (negative slot numbers)', () => {
    now = -25;
    const r = ring();
    r.current().n = 9;
    expect(r.slotOf(-25)).to.equal(-3);
    expect(r.at(-3)?.n).to.equal(9);
    expect(r.at(0)).to.equal(undefined);
  });
});
