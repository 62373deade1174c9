import { Type, type Static } from '@sinclair/typebox';
import safeRegex from 'safe-regex2';
import type { ErrorDetail } from '../../core/errors.js';

/*
 * Label matchers of silences and maintenance windows, with Alertmanager's semantics: every
 * matcher must match; a label the alert does not have reads as ""; regexes are anchored at both
 * ends (`^(?:…)$`), so `=~"web-.*"` means the whole value.
 *
 * Regexes run against every firing alert's labels on every flush, so a pattern that backtracks
 * catastrophically would stall the event loop for every tenant. JavaScript has no linear-time
 * engine built in (native RE2 bindings need a compiler or a downloaded binary at install; re2-wasm
 * never frees its fixed 16 MB heap), so a pattern is refused at save time unless its worst case is
 * bounded: at most MAX_REGEX_LENGTH characters; safe-regex2's star-height check (no quantified
 * group that holds a quantifier: `(a+)+`, `(.*a)*`); no repeated group with alternatives
 * (`(a|a)*` is exponential at star height 1); no lookarounds or backreferences (Alertmanager's
 * RE2 has none either); and the product of the repetition counts (an unbounded one counts as a
 * label value's length, 1024) at most two unbounded ones' worth: matching then costs at most
 * about a million steps (`.*.*.*x` on 1024 characters takes half a second; `.*foo.*` 0.05 ms).
 */

export const MATCHER_OPS = ['=', '!=', '=~', '!~'] as const;
export type MatcherOp = (typeof MATCHER_OPS)[number];

/** A regex matcher's pattern, at most this long. */
export const MAX_REGEX_LENGTH = 512;
/** Matchers per silence or maintenance window. */
export const MAX_MATCHERS = 32;

export const MatcherSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z_][A-Za-z0-9_./-]*$', description: 'Label name (alertname, severity, a rule label, a group_by label …).' }),
    op: Type.Union(
      MATCHER_OPS.map((o) => Type.Literal(o)),
      { description: '= equal, != not equal, =~ matches the regex, !~ does not (regexes are anchored: the whole value must match).' },
    ),
    value: Type.String({ maxLength: 1024, description: `Value, or a regex (JavaScript syntax, at most ${MAX_REGEX_LENGTH} characters, no nested quantifiers). A missing label reads as "".` }),
  },
  { additionalProperties: false },
);
export type Matcher = Static<typeof MatcherSchema>;

export const MatchersSchema = Type.Array(MatcherSchema, { minItems: 1, maxItems: MAX_MATCHERS, description: 'All must match an alert’s labels.' });

const isRegexOp = (op: MatcherOp) => op === '=~' || op === '!~';
const anchored = (pattern: string) => `^(?:${pattern})$`;

/**
 * What is wrong with each matcher the schema could not judge (a regex that does not compile or
 * could backtrack catastrophically), as `<base>/<i>/value` paths.
 */
export function matcherErrors(matchers: Matcher[], base: string): ErrorDetail[] {
  const errors: ErrorDetail[] = [];
  matchers.forEach((m, i) => {
    if (!isRegexOp(m.op)) return;
    const path = `${base}/${i}/value`;
    if (m.value.length > MAX_REGEX_LENGTH) {
      errors.push({ path, message: `a regex may be at most ${MAX_REGEX_LENGTH} characters` });
      return;
    }
    try {
      // Alone first: `a)|(b` compiles once wrapped, and would undo the anchoring.
      new RegExp(m.value, 'u');
      new RegExp(anchored(m.value), 'u');
    } catch (err) {
      errors.push({ path, message: `is not a valid regular expression: ${(err as Error).message}` });
      return;
    }
    const costly = !safeRegex(anchored(m.value)) ? 'could backtrack catastrophically (a repeated group holds a repetition); simplify it' : backtrackingRisk(m.value);
    if (costly) errors.push({ path, message: costly });
  });
  return errors;
}

/** Label values are at most this long (telemetry's ingest limit): what an unbounded repetition can take. */
const MAX_INPUT = 1024;
/** The worst-case backtracking paths allowed: two unbounded repetitions' worth. */
const MAX_PATHS = (MAX_INPUT + 1) ** 2;

/**
 * Why `pattern` (one that compiles in unicode mode) could take too long, or null. A scan of its
 * syntax: escapes and character classes are single atoms, groups are tracked for alternatives.
 */
export function backtrackingRisk(pattern: string): string | null {
  const groups: { alt: boolean }[] = [];
  let last: 'none' | 'atom' | 'alt-group' = 'none';
  let paths = 1;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      const n = pattern[i + 1];
      if (/[1-9k]/.test(n)) return 'backreferences are not supported';
      i++;
      if ((n === 'u' || n === 'p' || n === 'P') && pattern[i + 1] === '{') i = pattern.indexOf('}', i);
      last = 'atom';
    } else if (c === '[') {
      for (i++; i < pattern.length && pattern[i] !== ']'; i++) if (pattern[i] === '\\') i++;
      last = 'atom';
    } else if (c === '(') {
      if (/^\(\?<?[=!]/.test(pattern.slice(i, i + 4))) return 'lookarounds are not supported';
      groups.push({ alt: false });
      last = 'none';
    } else if (c === ')') {
      const g = groups.pop();
      if (!g) return 'unbalanced parenthesis';
      // A group holding alternatives anywhere inside makes its enclosing group one too.
      if (g.alt && groups.length > 0) groups[groups.length - 1].alt = true;
      last = g.alt ? 'alt-group' : 'atom';
    } else if (c === '|') {
      if (groups.length > 0) groups[groups.length - 1].alt = true;
      last = 'none';
    } else if (c === '*' || c === '+' || c === '?' || c === '{') {
      let max = c === '?' ? 1 : Infinity;
      if (c === '{') {
        const end = pattern.indexOf('}', i);
        // In unicode mode a `{` that compiled opens a quantifier: {n}, {n,} or {n,m}.
        const m = /^\{(\d+)(,(\d*))?\}$/.exec(pattern.slice(i, end + 1));
        max = !m ? Infinity : m[2] === undefined ? Number(m[1]) : m[3] === '' ? Infinity : Number(m[3]);
        i = end;
      }
      if (pattern[i + 1] === '?') i++; // lazy: the same paths
      if (last === 'alt-group' && max > 1) return 'a repeated group with alternatives (|) can backtrack exponentially; use a character class or repeat it at most once';
      paths *= Math.min(max, MAX_INPUT) + 1;
      if (paths > MAX_PATHS) return 'too many repetitions: each *, + or {n,} multiplies the worst-case matching time (at most two unbounded ones)';
      last = 'none';
    } else {
      last = c === '^' || c === '$' ? 'none' : 'atom';
    }
  }
  return null;
}

/** Whether `matcher` accepts the empty value (an absent label). */
export function matchesEmpty(m: Matcher): boolean {
  return matchOne(m, '');
}

/**
 * Compiled regexes by pattern. Patterns come from stored silences and windows (validated, a few
 * per org), so the cache stays small; it is emptied if it ever grows past a bound.
 */
const compiled = new Map<string, RegExp>();
const MAX_COMPILED = 10_000;

function regexOf(pattern: string): RegExp {
  let re = compiled.get(pattern);
  if (!re) {
    if (compiled.size >= MAX_COMPILED) compiled.clear();
    re = new RegExp(anchored(pattern), 'u');
    compiled.set(pattern, re);
  }
  return re;
}

function matchOne(m: Matcher, value: string): boolean {
  switch (m.op) {
    case '=':
      return value === m.value;
    case '!=':
      return value !== m.value;
    case '=~':
      return regexOf(m.value).test(value);
    case '!~':
      return !regexOf(m.value).test(value);
  }
}

/** Every matcher matches `labels` (a missing label reads as ""). An empty list matches everything. */
export function matches(matchers: readonly Matcher[], labels: Record<string, string>): boolean {
  return matchers.every((m) => matchOne(m, Object.hasOwn(labels, m.name) ? labels[m.name] : ''));
}
