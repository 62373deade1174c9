import { expect } from 'chai';
import { authorize, requireSuperadmin } from '../../src/core/authorize.js';
import { parseDuration } from '../../src/core/duration.js';
import { DomainError } from '../../src/core/errors.js';
import { decodeCursor, encodeCursor, pageLimit, toPage } from '../../src/core/pagination.js';
import { PERMISSIONS, scopeGrants } from '../../src/core/permissions.js';
import { RateLimiter } from '../../src/core/rate-limiter.js';
import { ORG_ROLES } from '../../src/core/roles.js';
import { SecretBox, sha256 } from '../../src/core/secrets.js';

const codeOf = (fn: () => void): string | null => {
  try {
    fn();
    return null;
  } catch (err) {
    return (err as DomainError).code;
  }
};

describe('core', () => {
  describe('RateLimiter', () => {
    it('allows `limit` hits per window, then reports the seconds until reset', () => {
      let now = 1_000_000;
      const rl = new RateLimiter(3, 10_000, () => now);
      expect([1, 2, 3].map(() => rl.hit('a').allowed)).to.deep.equal([true, true, true]);
      const d = rl.hit('a');
      expect(d).to.deep.equal({ allowed: false, limit: 3, remaining: 0, resetSeconds: 10 });
      expect(rl.hit('b').allowed).to.equal(true);
      now += 4_500;
      expect(rl.peek('a').resetSeconds).to.equal(6);
      now += 5_500;
      expect(rl.hit('a')).to.deep.include({ allowed: true, remaining: 2 });
      rl.reset('a');
      expect(rl.peek('a').remaining).to.equal(3);
    });
  });

  describe('permissions', () => {
    it('authorize: not a member → not_found; too low a role → forbidden; enough → ok', () => {
      const user = { kind: 'user' as const, userId: 'u', superadmin: false };
      for (const [perm, { role }] of Object.entries(PERMISSIONS)) {
        const need = ORG_ROLES.indexOf(role);
        expect(codeOf(() => authorize(user, perm as keyof typeof PERMISSIONS, { id: 'o', role: null }))).to.equal('not_found');
        ORG_ROLES.forEach((r, i) => {
          expect(codeOf(() => authorize(user, perm as keyof typeof PERMISSIONS, { id: 'o', role: r })), `${r} ${perm}`).to.equal(i >= need ? null : 'forbidden');
        });
      }
      expect(codeOf(() => authorize({ ...user, superadmin: true }, 'org.delete', { id: 'o', role: null }))).to.equal(null);
      expect(codeOf(() => authorize({ kind: 'system' }, 'org.delete', { id: 'o', role: null }))).to.equal(null);
      expect(codeOf(() => authorize({ kind: 'anonymous' }, 'org.read', { id: 'o', role: 'owner' }))).to.equal('unauthenticated');
    });

    it('API keys: other org → not_found; scopes imply narrower ones; ingest stands alone', () => {
      const key = (scopes: ('ingest' | 'read' | 'write' | 'admin')[]) => ({ kind: 'apikey' as const, keyId: 'k', orgId: 'o', scopes });
      expect(codeOf(() => authorize(key(['admin']), 'org.read', { id: 'other', role: null }))).to.equal('not_found');
      expect(codeOf(() => authorize(key(['ingest']), 'org.read', { id: 'o', role: null }))).to.equal('forbidden');
      expect(codeOf(() => authorize(key(['ingest']), 'telemetry.ingest', { id: 'o', role: null }))).to.equal(null);
      expect(scopeGrants(['admin'], 'telemetry.read')).to.equal(true);
      expect(scopeGrants(['write'], 'apikey.read')).to.equal(false);
      expect(scopeGrants(['admin'], 'telemetry.ingest')).to.equal(false);
      expect(scopeGrants(['admin'], 'org.delete')).to.equal(false);
      expect(codeOf(() => requireSuperadmin(key(['admin'])))).to.equal('forbidden');
    });
  });

  it('SecretBox encrypts with a fresh IV and detects tampering', () => {
    const box = new SecretBox('k1');
    const a = box.seal('JBSWY3DPEHPK3PXP');
    expect(a).to.not.contain('JBSWY3DPEHPK3PXP');
    expect(box.seal('JBSWY3DPEHPK3PXP')).to.not.equal(a);
    expect(box.open(a)).to.equal('JBSWY3DPEHPK3PXP');
    const [iv, tag, data] = a.split('.');
    const flipped = Buffer.from(data, 'base64url');
    flipped[0] ^= 1;
    expect(() => box.open([iv, tag, flipped.toString('base64url')].join('.'))).to.throw();
    expect(() => new SecretBox('k2').open(a)).to.throw();
    expect(sha256('x')).to.have.length(64);
    // Stored API-key and refresh-token hashes must stay what they were: the FIPS 180-2 vector, and
    // a non-ASCII secret hashed as UTF-8.
    expect(sha256('abc')).to.equal('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256('é')).to.equal('4a99557e4033c3539de2eb65472017cad5f9557f7a0625a09f1c3f6e2ba69c4c');
  });

  it('parses durations', () => {
    expect(parseDuration('30s')).to.equal(30_000);
    expect(parseDuration('5m')).to.equal(300_000);
    expect(parseDuration('7d')).to.equal(604_800_000);
    expect(parseDuration('250ms')).to.equal(250);
    expect(parseDuration('90')).to.equal(90_000);
    expect(parseDuration(2)).to.equal(2000);
    expect(parseDuration('soon')).to.equal(null);
    expect(parseDuration('-1s')).to.equal(null);
  });

  it('pages with opaque cursors and rejects bad ones and bad limits', () => {
    const page = toPage(['a', 'b', 'c'], 2, (x) => x);
    expect(page).to.deep.equal({ items: ['a', 'b'], next_cursor: encodeCursor('b') });
    expect(decodeCursor(page.next_cursor!)).to.equal('b');
    expect(toPage(['a'], 2, (x) => x).next_cursor).to.equal(null);
    expect(codeOf(() => decodeCursor('!!'))).to.equal('validation_failed');
    expect(codeOf(() => pageLimit(0))).to.equal('validation_failed');
    expect(codeOf(() => pageLimit(1001))).to.equal('validation_failed');
    expect(pageLimit(undefined)).to.equal(50);
  });
});
