import { expect } from 'chai';
import { backtrackingRisk, matcherErrors, matches, matchesEmpty, type Matcher } from '../../src/features/alerts/matchers.js';

const m = (name: string, op: Matcher['op'], value: string): Matcher => ({ name, op, value });

describe('alert matchers', () => {
  describe('matches (Alertmanager semantics)', () => {
    const labels = { alertname: 'HighCPU', host: 'web-12', severity: 'critical' };

    it('= and != compare the whole value; a missing label reads as ""', () => {
      expect(matches([m('host', '=', 'web-12')], labels)).to.equal(true);
      expect(matches([m('host', '=', 'web-1')], labels)).to.equal(false);
      expect(matches([m('host', '!=', 'web-1')], labels)).to.equal(true);
      expect(matches([m('zone', '=', '')], labels)).to.equal(true);
      expect(matches([m('zone', '!=', '')], labels)).to.equal(false);
      expect(matches([m('zone', '!=', 'eu')], labels)).to.equal(true);
    });

    it('regexes are anchored at both ends', () => {
      expect(matches([m('host', '=~', 'web-.*')], labels)).to.equal(true);
      expect(matches([m('host', '=~', 'web')], labels)).to.equal(false);
      expect(matches([m('host', '=~', 'eb-1')], labels)).to.equal(false);
      expect(matches([m('host', '=~', 'db|web-12')], labels), 'alternatives are grouped inside the anchors').to.equal(true);
      expect(matches([m('host', '=~', 'x|web')], labels), '^(?:x|web)$, not ^x|web$').to.equal(false);
      expect(matches([m('host', '!~', 'db-.*')], labels)).to.equal(true);
      expect(matches([m('host', '!~', 'web-\\d+')], labels)).to.equal(false);
      expect(matches([m('zone', '=~', '.*')], labels), 'a missing label matches .*').to.equal(true);
    });

    it('every matcher must match; an empty list matches everything', () => {
      expect(matches([m('host', '=~', 'web-.*'), m('severity', '=', 'critical')], labels)).to.equal(true);
      expect(matches([m('host', '=~', 'web-.*'), m('severity', '=', 'warning')], labels)).to.equal(false);
      expect(matches([], labels)).to.equal(true);
    });

    it('a label named like an Object prototype key is not found on the prototype', () => {
      expect(matches([m('constructor', '=', '')], {})).to.equal(true);
      expect(matches([m('toString', '!=', '')], {})).to.equal(false);
    });

    it('matchesEmpty tells the matchers that would match an alert without the label', () => {
      expect(matchesEmpty(m('host', '=', ''))).to.equal(true);
      expect(matchesEmpty(m('host', '=~', '.*'))).to.equal(true);
      expect(matchesEmpty(m('host', '!=', 'x'))).to.equal(true);
      expect(matchesEmpty(m('host', '=', 'x'))).to.equal(false);
      expect(matchesEmpty(m('host', '=~', '.+'))).to.equal(false);
    });
  });

  describe('matcherErrors (save-time checks of regexes)', () => {
    it('accepts the usual patterns', () => {
      for (const v of ['web-.*', '.*prod.*', '(api|web)-[0-9]+', 'db-\\d+\\.(eu|us)-.*', '[a-z0-9-]+\\.example\\.com', 'a{1,5}b', '(?<env>prod)', 'x?y?z?']) {
        expect(matcherErrors([m('l', '=~', v)], 'body/matchers'), v).to.deep.equal([]);
      }
    });

    it('refuses a pattern that does not compile, and one that would undo the anchoring, naming matchers/<i>/value', () => {
      const errors = matcherErrors([m('a', '=', '(('), m('b', '=~', '(web'), m('c', '!~', 'a)|(b')], 'body/matchers');
      expect(errors.map((e) => e.path)).to.deep.equal(['body/matchers/1/value', 'body/matchers/2/value']);
      expect(errors[0].message).to.match(/not a valid regular expression/);
    });

    it('refuses patterns that backtrack catastrophically: nested repetition, repeated alternatives, too many unbounded repetitions', () => {
      const refused = ['(a+)+', '(.*a)*', '(a|a)*', '(a|ab)+', '((a|b)c)*', '.*.*.*x', 'a.*b.*c.*d', '\\w+\\d+\\w+x', '.{0,1000}.{0,1000}.{0,1000}'];
      for (const v of refused) expect(matcherErrors([m('l', '=~', v)], 'body/matchers'), v).to.have.length(1);
    });

    it('refuses lookarounds and backreferences (as Alertmanager, whose RE2 has none)', () => {
      for (const v of ['(?=a)a', '(?<!x)y', '(a)\\1', '(?<n>a)\\k<n>']) expect(backtrackingRisk(v), v).to.be.a('string');
    });

    it('refuses a pattern over 512 characters', () => {
      expect(matcherErrors([m('l', '=~', 'a'.repeat(513))], 'body/matchers')[0].message).to.match(/at most 512/);
    });

    it('what it accepts runs fast on a worst-case 1024-character label value', () => {
      for (const v of ['.*foo.*', '.*.*x', '(ab)*.*x', '[a-z]+-.*x', '(a|b)?.*x']) {
        expect(matcherErrors([m('l', '=~', v)], 'body/matchers'), v).to.deep.equal([]);
        for (const unit of ['a', 'ab', 'foo', '-']) {
          const input = unit.repeat(1024).slice(0, 1024);
          const t0 = process.hrtime.bigint();
          matches([m('l', '=~', v)], { l: input });
          const ms = Number(process.hrtime.bigint() - t0) / 1e6;
          expect(ms, `${v} on ${unit}×`).to.be.below(100);
        }
      }
    });

    it('character classes and escapes count as one atom', () => {
      expect(backtrackingRisk('[(|)*+]+x')).to.equal(null);
      expect(backtrackingRisk('\\(\\|\\)+x')).to.equal(null);
      expect(backtrackingRisk('\\p{L}+-\\u{1F600}')).to.equal(null);
    });
  });
});
