import { expect } from 'chai';
import { DomainError } from '../../src/core/errors.js';
import {
  anchorRegex,
  decodeTsIdCursor,
  encodeTsIdCursor,
  escapeLike,
  parseBy,
  parseFilters,
  parseRange,
  parseStep,
  parseTimestamp,
} from '../../src/features/telemetry/query-params.js';

/** Runs fn, insists on a 400 DomainError, returns its first error path and the message. */
function fails(fn: () => unknown): { path: string; message: string } {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(DomainError);
    const e = err as DomainError;
    expect(e.code).to.equal('validation_failed');
    return { path: e.details.errors?.[0]?.path ?? '', message: e.message };
  }
  throw new Error('expected a validation error');
}

describe('telemetry query parameters', () => {
  describe('timestamps', () => {
    it('accepts RFC 3339 with Z, offsets, fractions and epoch milliseconds', () => {
      expect(parseTimestamp('start', '2026-11-28T10:00:00Z')).to.equal(Date.UTC(2026, 10, 28, 10));
      expect(parseTimestamp('start', '2026-11-28T12:00:00+02:00')).to.equal(Date.UTC(2026, 10, 28, 10));
      expect(parseTimestamp('start', '2026-11-28t10:00:00.123456z')).to.equal(Date.UTC(2026, 10, 28, 10) + 123);
      expect(parseTimestamp('start', '1764324000000')).to.equal(1764324000000);
      expect(parseTimestamp('start', 1764324000000)).to.equal(1764324000000);
    });

    it('refuses other shapes and impossible dates, naming the parameter', () => {
      for (const bad of ['yesterday', '2026-11-28', '2026-02-30T00:00:00Z', '2026-11-28T25:00:00Z', '2026-11-28T10:00:00', '12abc', '']) {
        expect(fails(() => parseTimestamp('end', bad)).path, bad).to.equal('query/end');
      }
    });

    it('range: end defaults to now, start to an hour before end; start must be before end', () => {
      const now = Date.UTC(2026, 10, 28, 12);
      expect(parseRange({}, now)).to.deep.equal({ startMs: now - 3_600_000, endMs: now });
      expect(parseRange({ end: String(now - 1000) }, now)).to.deep.equal({ startMs: now - 1000 - 3_600_000, endMs: now - 1000 });
      expect(fails(() => parseRange({ start: String(now), end: String(now) }, now)).path).to.equal('query/start');
      expect(fails(() => parseRange({ start: String(now + 1) }, now)).path).to.equal('query/start');
    });
  });

  describe('step', () => {
    it('takes 30s, 5m, 1h, 250ms or plain seconds; default 60 s', () => {
      expect(parseStep('30s')).to.equal(30_000);
      expect(parseStep('5m')).to.equal(300_000);
      expect(parseStep('1h')).to.equal(3_600_000);
      expect(parseStep('250ms')).to.equal(250);
      expect(parseStep('15')).to.equal(15_000);
      expect(parseStep(undefined)).to.equal(60_000);
    });

    it('refuses zero, negatives and garbage as query/step', () => {
      for (const bad of ['0', '0s', '-5s', 'soon', '5 parsecs']) {
        const f = fails(() => parseStep(bad));
        expect(f.path, bad).to.equal('query/step');
      }
    });
  });

  describe('filters', () => {
    it('parses the four operators, anchoring regexes', () => {
      const m = parseFilters('env=prod,host!=a,region=~eu-.*,dc!~x|y');
      expect(m.map(({ label, op, value }) => ({ label, op, value }))).to.deep.equal([
        { label: 'env', op: '=', value: 'prod' },
        { label: 'host', op: '!=', value: 'a' },
        { label: 'region', op: '=~', value: '^(?:eu-.*)$' },
        { label: 'dc', op: '!~', value: '^(?:x|y)$' },
      ]);
    });

    it('repeated parameters add matchers; commas inside a value or regex stay in it', () => {
      const m = parseFilters(['a=1', 'b=~x{1,3}', 'c=p,q', 'd=']);
      expect(m.map(({ label, op, value }) => [label, op, value])).to.deep.equal([
        ['a', '=', '1'],
        ['b', '=~', '^(?:x{1,3})$'],
        ['c', '=', 'p,q'],
        ['d', '=', ''],
      ]);
    });

    it('a value may contain operators after the first one', () => {
      expect(parseFilters('url=a=b!=c')[0]).to.include({ label: 'url', op: '=', value: 'a=b!=c' });
    });

    it('keeps a leading (?i) working by hoisting it before the anchor', () => {
      expect(anchorRegex('(?i)prod')).to.equal('(?i)^(?:prod)$');
      expect(anchorRegex('a(?i)')).to.equal('^(?:a(?i))$');
    });

    it('refuses malformed matchers, naming them', () => {
      for (const bad of ['env', '=prod', 'env ~ prod', 'a b=c', 'env~prod']) {
        const f = fails(() => parseFilters(bad));
        expect(f.path, bad).to.equal('query/filter');
        expect(f.message, bad).to.contain('malformed filter');
      }
      expect(fails(() => parseFilters(Array.from({ length: 40 }, (_, i) => `l${i}=v`))).message).to.contain('at most');
    });
  });

  describe('by', () => {
    it('splits on commas, trims, drops duplicates and keeps order', () => {
      expect(parseBy('region, host,region')).to.deep.equal(['region', 'host']);
      expect(parseBy(['a', 'b,c'])).to.deep.equal(['a', 'b', 'c']);
      expect(parseBy(undefined)).to.deep.equal([]);
    });

    it('refuses names with matcher syntax', () => {
      expect(fails(() => parseBy('a=b')).path).to.equal('query/by');
    });
  });

  describe('cursors and LIKE escaping', () => {
    it('round-trips (ts µs, id) and refuses tampered cursors', () => {
      const c = encodeTsIdCursor({ tsUs: '1764324000123456', id: '42' });
      expect(decodeTsIdCursor(c)).to.deep.equal({ tsUs: '1764324000123456', id: '42' });
      expect(decodeTsIdCursor(undefined)).to.equal(undefined);
      expect(fails(() => decodeTsIdCursor(Buffer.from('x:1').toString('base64url'))).path).to.equal('query/cursor');
      expect(fails(() => decodeTsIdCursor('!!')).path).to.equal('query/cursor');
    });

    it('escapes %, _ and backslash', () => {
      expect(escapeLike('50%_a\\b')).to.equal('50\\%\\_a\\\\b');
    });
  });
});
