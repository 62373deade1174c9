import { expect } from 'chai';
import { nativeBatch } from '../../src/features/telemetry/native-batch.js';
import type { TelemetryBodyT } from '../../src/features/telemetry/telemetry-schemas.js';

describe('nativeBatch (the native body as a batch)', () => {
  it('takes an item with epoch milliseconds and labels as its point, makes a point of any other, and leaves the body as it was', () => {
    const now = Date.UTC(2026, 10, 30, 12);
    const body: TelemetryBodyT = {
      metrics: [
        { name: 'a', value: 1, ts: now - 1, labels: { host: 'h' } },
        { name: 'a', value: 2, labels: { host: 'h' } },
        { name: 'a', value: 3, ts: now - 2 },
        { name: 'a', value: 4, ts: '2026-11-30T11:00:00Z', labels: {} },
      ],
    };
    const before = JSON.stringify(body);
    const { batch, errors } = nativeBatch(body, now);
    expect(errors).to.deep.equal([]);
    expect(batch.points[0]).to.equal(body.metrics![0]);
    expect(batch.points.slice(1).every((p, i) => p !== body.metrics![i + 1])).to.equal(true);
    expect(batch.points).to.deep.equal([
      { name: 'a', value: 1, ts: now - 1, labels: { host: 'h' } },
      { name: 'a', labels: { host: 'h' }, ts: now, value: 2 },
      { name: 'a', labels: {}, ts: now - 2, value: 3 },
      { name: 'a', labels: {}, ts: Date.UTC(2026, 10, 30, 11), value: 4 },
    ]);
    expect(JSON.stringify(body)).to.equal(before);
  });

  it('names each item whose time it cannot read', () => {
    const { errors } = nativeBatch({ metrics: [{ name: 'a', value: 1, ts: 'yesterday', labels: {} }, { name: 'a', value: 1, ts: 2 ** 60 }] }, 0);
    expect(errors.map((e) => e.path)).to.deep.equal(['body/metrics/0/ts', 'body/metrics/1/ts']);
  });
});
