import { expect } from 'chai';
import { Cached } from '../../src/core/cached.js';

describe('Cached', () => {
  it('loads once per ttl, and callers meanwhile share the load in progress', async () => {
    let now = 0;
    let loads = 0;
    const c = new Cached(1000, async () => ++loads, () => now);
    expect(await Promise.all([c.get(), c.get(), c.get()])).to.deep.equal([1, 1, 1]);
    now = 999;
    expect(await c.get()).to.equal(1);
    now = 1000;
    expect(await c.get()).to.equal(2);
    expect(loads).to.equal(2);
  });

  it('never overlaps loads: a load slower than the ttl is shared until it settles, and the ttl counts from then', async () => {
    let now = 0;
    let loads = 0;
    let finish: (v: number) => void = () => undefined;
    const c = new Cached(1000, () => new Promise<number>((resolve) => { loads++; finish = resolve; }), () => now);
    const first = c.get();
    now = 5000; // the load has taken five ttls so far
    const second = c.get();
    expect(loads).to.equal(1);
    finish(7);
    expect(await Promise.all([first, second])).to.deep.equal([7, 7]);
    now = 5999;
    expect(await c.get()).to.equal(7);
    expect(loads).to.equal(1);
    now = 6000;
    void c.get();
    expect(loads).to.equal(2);
  });

  it('does not keep a failed load: the next call tries again', async () => {
    let fail = true;
    const c = new Cached(60_000, async () => {
      if (fail) throw new Error('database away');
      return 'ok';
    }, () => 0);
    await c.get().then(
      () => expect.fail('a failed load answered'),
      (err: Error) => expect(err.message).to.equal('database away'),
    );
    fail = false;
    expect(await c.get()).to.equal('ok');
  });
});
