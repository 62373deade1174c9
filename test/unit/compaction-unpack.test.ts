import { expect } from 'chai';
import { unpackPoints } from '../../src/features/telemetry/compaction-repository.js';

/**
 * unpackPoints reads what compaction's SELECT packs per point (timestamptz_send: int8 µs since
 * 2000-01-01, then float8send) into epoch-ms times, the microseconds floored as
 * floor(extract(epoch from ts) * 1000) does, and values bit for bit, in (ts, value) order.
 */

const PG_EPOCH_US = 946_684_800_000_000n;

function pack(points: [bigint, number][]): Buffer {
  const b = Buffer.alloc(points.length * 16);
  points.forEach(([usSinceUnix, v], i) => {
    b.writeBigInt64BE(usSinceUnix - PG_EPOCH_US, i * 16);
    b.writeDoubleBE(v, i * 16 + 8);
  });
  return b;
}

/** floor(µs / 1000) in exact integer arithmetic. */
const floorMs = (us: bigint): number => Number(us >= 0n || us % 1000n === 0n ? us / 1000n : us / 1000n - 1n);

describe('compaction: unpackPoints', () => {
  it('floors microseconds to whole milliseconds exactly, before and after 2000 and 1970', () => {
    const us = [
      0n, 1n, 999n, 1000n, -1n, -999n, -1000n, -1001n,
      PG_EPOCH_US - 1n, PG_EPOCH_US, PG_EPOCH_US + 999n,
      1_764_460_800_123_999n, 1_764_460_800_124_000n, 253_402_300_799_999_999n, -62_135_596_800_000_001n,
    ];
    let s = 12345;
    for (let i = 0; i < 2000; i++) {
      s = (s * 1103515245 + 12345) % 2147483648;
      us.push(BigInt(s) * 123_456_789n * (i % 2 ? 1n : -1n) + BigInt(s % 1000));
    }
    us.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const got = unpackPoints('1', us.length, pack(us.map((u) => [u, 1])));
    expect(got.ts).to.deep.equal(us.map(floorMs));
  });

  it('returns values bit for bit (NaN, -0, subnormals)', () => {
    const vs = [-Infinity, -1e300, -5e-324, -0, 0, 5e-324, 1.5, Infinity, NaN];
    const got = unpackPoints('7', vs.length, pack(vs.map((v, i) => [BigInt(i) * 1000n, v])));
    expect(got.seriesId).to.equal('7');
    got.values.forEach((v, i) => expect(Object.is(v, vs[i]), `${i}: ${v}`).to.equal(true));
  });

  it('orders points of the same millisecond by value (NaN last), as ORDER BY ts, value did', () => {
    // In index order (by the stored µs), but the first three fall in one ms once floored.
    const got = unpackPoints('1', 5, pack([[5_000_100n, NaN], [5_000_200n, 3], [5_000_900n, -1], [5_001_000n, 2], [5_001_000n, 1]]));
    expect(got.ts).to.deep.equal([5000, 5000, 5000, 5001, 5001]);
    expect(got.values).to.deep.equal([-1, 3, NaN, 1, 2]);
  });

  it('orders points that arrive out of time order', () => {
    const got = unpackPoints('1', 4, pack([[9_000n, 4], [1_000n, 1], [3_000n, 3], [2_000n, 2]]));
    expect(got.ts).to.deep.equal([1, 2, 3, 9]);
    expect(got.values).to.deep.equal([1, 2, 3, 4]);
  });

  it('reads a buffer that is a slice of a larger one (Buffer.from(base64) may return a piece of a shared pool)', () => {
    const packed = pack([[1_000n, 1], [2_000n, -0], [3_000n, NaN]]);
    const pool = Buffer.concat([Buffer.alloc(40, 0xff), packed, Buffer.alloc(24, 0xee)]);
    const got = unpackPoints('1', 3, pool.subarray(40, 40 + packed.length));
    expect(got.ts).to.deep.equal([1, 2, 3]);
    expect(Object.is(got.values[0], 1) && Object.is(got.values[1], -0) && Number.isNaN(got.values[2])).to.equal(true);
  });

  it('refuses a buffer whose length is not 16 bytes a point', () => {
    expect(() => unpackPoints('1', 2, Buffer.alloc(31))).to.throw(/31 bytes for 2 points/);
  });
});
