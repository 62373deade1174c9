/**
 * The Prometheus text exposition format (0.0.4) read properly: families with their HELP and
 * TYPE, samples with their labels (escapes undone) and values (+Inf, -Inf and NaN included). A
 * line that is none of these throws, naming it, so a malformed scrape fails the test that reads it.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: string;
  help: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
/** Sample names a family of this type owns beside its own. */
const SUFFIXES: Record<string, string[]> = { histogram: ['_bucket', '_sum', '_count'], summary: ['_sum', '_count'] };

/** As Prometheus reads it (Go's ParseFloat): Inf, Infinity and NaN in any case (prom-client writes NaN as `Nan`). */
function parseValue(text: string, line: string): number {
  const special = /^([-+]?)(inf|infinity)$/i.exec(text);
  if (special) return special[1] === '-' ? -Infinity : Infinity;
  if (/^nan$/i.test(text)) return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`not a sample value: ${JSON.stringify(text)} in ${JSON.stringify(line)}`);
  return Number(text);
}

function unescapeHelp(text: string): string {
  return text.replace(/\\(\\|n)/g, (_, c: string) => (c === 'n' ? '\n' : '\\'));
}

function parseSample(line: string): Sample {
  const name = NAME.exec(line)?.[0];
  if (!name) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
  let i = name.length;
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    i++;
    for (;;) {
      if (line[i] === '}') {
        i++;
        break;
      }
      const label = LABEL_NAME.exec(line.slice(i))?.[0];
      if (!label || line[i + label.length] !== '=' || line[i + label.length + 1] !== '"') throw new Error(`bad label at ${i} in ${JSON.stringify(line)}`);
      i += label.length + 2;
      let value = '';
      for (;;) {
        const c = line[i++];
        if (c === undefined) throw new Error(`unterminated label value in ${JSON.stringify(line)}`);
        if (c === '"') break;
        if (c === '\\') {
          const e = line[i++];
          if (e === 'n') value += '\n';
          else if (e === '\\' || e === '"') value += e;
          else throw new Error(`bad escape \\${e} in ${JSON.stringify(line)}`);
        } else value += c;
      }
      if (label in labels) throw new Error(`label ${label} twice in ${JSON.stringify(line)}`);
      labels[label] = value;
      if (line[i] === ',') i++;
      else if (line[i] !== '}') throw new Error(`expected , or } at ${i} in ${JSON.stringify(line)}`);
    }
  }
  if (line[i] !== ' ') throw new Error(`expected a space before the value in ${JSON.stringify(line)}`);
  const rest = line.slice(i + 1).trim().split(/\s+/);
  if (rest.length > 2) throw new Error(`trailing text in ${JSON.stringify(line)}`);
  return { name, labels, value: parseValue(rest[0], line) };
}

export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { name, type: 'untyped', help: '', samples: [] }));
    return f;
  };
  const owner = (sample: string): Family => {
    const direct = families.get(sample);
    if (direct) return direct;
    for (const f of families.values()) {
      if ((SUFFIXES[f.type] ?? []).some((s) => sample === f.name + s)) return f;
    }
    return family(sample);
  };
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*)(?: (.*))?$/.exec(line);
    if (meta) {
      const f = family(meta[2]);
      if (meta[1] === 'HELP') f.help = unescapeHelp(meta[3] ?? '');
      else f.type = meta[3] ?? '';
      continue;
    }
    if (line.startsWith('#')) continue;
    const sample = parseSample(line);
    owner(sample.name).samples.push(sample);
  }
  return families;
}

/** The value of the one sample of `name` whose labels include `labels`; undefined when there is none, throws when several match. */
export function sampleValue(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  const matches: Sample[] = [];
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) matches.push(s);
    }
  }
  if (matches.length > 1) throw new Error(`${matches.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return matches[0]?.value;
}
