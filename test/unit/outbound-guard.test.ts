import { expect } from 'chai';
import { checkOutboundUrl, guardedLookup, OutboundRefused, refusalOf } from '../../src/features/notifications/outbound-guard.js';

/** The outbound guard's address classes, without the network (resolution is injected). */
describe('outbound guard', () => {
  const ALWAYS = ['169.254.169.254', '169.254.0.1', 'fe80::1', '::ffff:169.254.169.254', '::ffff:a9fe:a9fe', '64:ff9b::a9fe:a9fe', '2002:a9fe:a9fe::1'];
  const INTERNAL = ['127.0.0.1', '127.8.9.10', '::1', '10.0.0.1', '172.16.5.4', '192.168.1.1', '100.64.0.1', 'fc00::1', 'fd12:3456::1', '0.0.0.0', '::', '224.0.0.1', 'ff02::1', '255.255.255.255', '::ffff:127.0.0.1', '::ffff:10.0.0.1', '240.0.0.1'];
  const PUBLIC = ['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'];

  it('refuses link-local always (cloud metadata, fe80::/10, their IPv4-mapped and embedding forms)', () => {
    for (const a of ALWAYS) {
      expect(refusalOf(a, true), a).to.include({ always: true });
      expect(refusalOf(a, false), a).to.include({ always: true });
    }
  });

  it('refuses loopback, private, shared, ULA, unspecified, multicast, broadcast and reserved unless private networks are allowed', () => {
    for (const a of INTERNAL) {
      expect(refusalOf(a, false), a).to.include({ always: false });
      expect(refusalOf(a, true), a).to.equal(null);
    }
  });

  it('judges IPv4-compatible addresses (::/96, except :: and ::1) by their IPv4 address, as URLs spell them', async () => {
    const resolve = async () => [{ address: '93.184.216.34', family: 4 }];
    const refusal = async (url: string, allowPrivate: boolean) => {
      try {
        await checkOutboundUrl(url, allowPrivate, { resolve });
        return null;
      } catch (err) {
        expect(err, url).to.be.instanceOf(OutboundRefused);
        return (err as Error).message;
      }
    };
    // new URL() turns [::169.254.169.254] into [::a9fe:a9fe], which ipaddr.js alone rates unicast.
    expect(new URL('http://[::169.254.169.254]/').hostname).to.equal('[::a9fe:a9fe]');
    for (const allowPrivate of [false, true]) {
      expect(await refusal('http://[::169.254.169.254]/', allowPrivate), String(allowPrivate)).to.match(/link-local/);
      expect(refusalOf('::a9fe:a9fe', allowPrivate)).to.include({ always: true });
    }
    expect(await refusal('http://[::7f00:1]/', false)).to.match(/loopback/);
    expect(await refusal('http://[::7f00:1]/', true)).to.equal(null);
    expect(refusalOf('::a00:1', false)).to.include({ always: false });
    expect(refusalOf('::c0a8:101', false)).to.include({ always: false });
    expect(refusalOf('::808:808', false)).to.equal(null);
    // :: and ::1 stay IPv6's unspecified and loopback.
    expect(refusalOf('::', false)?.reason).to.match(/unspecified/);
    expect(refusalOf('::1', false)?.reason).to.match(/loopback/);
  });

  it('lets public unicast through', () => {
    for (const a of PUBLIC) expect(refusalOf(a, false), a).to.equal(null);
  });

  it('checks a URL: http(s) only, no credentials, literal addresses and every resolved address', async () => {
    const resolve = async (host: string) => (host === 'mixed.example' ? [{ address: '8.8.8.8', family: 4 }, { address: '10.1.2.3', family: 4 }] : [{ address: '93.184.216.34', family: 4 }]);
    const refused = async (url: string) => {
      try {
        await checkOutboundUrl(url, false, { resolve });
      } catch (err) {
        expect(err, url).to.be.instanceOf(OutboundRefused);
        return (err as Error).message;
      }
      throw new Error(`${url} was not refused`);
    };
    expect(await refused('http://mixed.example/hook')).to.match(/mixed\.example resolves to 10\.1\.2\.3/);
    expect(await refused('http://[fe80::1]/')).to.match(/link-local/);
    // WHATWG URL parsing normalizes the odd spellings of 127.0.0.1 before the check.
    expect(await refused('http://2130706433/')).to.match(/loopback/);
    expect(await refused('http://0x7f.1/')).to.match(/loopback/);
    expect(await refused('file:///etc/passwd')).to.match(/http or https/);
    expect(await refused('http://u:p@example.com/')).to.match(/user name or password/);
    expect(await refused('not a url')).to.match(/absolute/);
    expect((await checkOutboundUrl('https://hooks.example/x', false, { resolve })).host).to.equal('hooks.example');
    const slow = () => new Promise<never>(() => {});
    try {
      await checkOutboundUrl('http://slow.example/', false, { resolve: slow, timeoutMs: 20 });
      expect.fail('not refused');
    } catch (err) {
      expect((err as Error).message).to.match(/could not be resolved \(timed out\)/);
    }
  });

  it('the socket lookup refuses a rebinding answer, for single-address and all-address callers', async () => {
    let answer = '93.184.216.34';
    const lookup = guardedLookup(false, async () => [{ address: answer, family: 4 }]);
    const call = (all: boolean) =>
      new Promise<{ err: Error | null; address: unknown }>((resolve) => lookup('rebind.example', { all }, (err, address) => resolve({ err, address })));
    expect(await call(false)).to.deep.equal({ err: null, address: '93.184.216.34' });
    expect((await call(true)).address).to.deep.equal([{ address: '93.184.216.34', family: 4 }]);
    answer = '169.254.169.254';
    const refused = await call(true);
    expect(refused.err).to.be.instanceOf(OutboundRefused);
    expect(refused.err?.message).to.match(/rebind\.example resolves to 169\.254\.169\.254/);
  });
});
