import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { packageRoot } from '../../src/config/paths.js';

/**
 * docs/architecture.md is a newcomer's map, and a map that has drifted from the code is worse than
 * none. Every `src/…`, `test/…` or `migrations/…` path it names must exist, and every code block
 * marked `file=<path>` must stand in that file as written (line by line, leading and trailing
 * blanks aside), so renaming a function or changing a route the page quotes fails this test.
 */

const root = packageRoot();
const doc = readFileSync(join(root, 'docs/architecture.md'), 'utf8');

const norm = (lines: string[]) => lines.map((l) => l.trim()).filter((l) => l !== '');

interface Excerpt {
  file: string;
  lines: string[];
}

function excerpts(markdown: string): Excerpt[] {
  const out: Excerpt[] = [];
  const fence = /^```ts file=(\S+)\n([\s\S]*?)^```$/gm;
  for (const m of markdown.matchAll(fence)) out.push({ file: m[1], lines: norm(m[2].split('\n')) });
  return out;
}

function containsRun(haystack: string[], needle: string[]): boolean {
  for (let i = 0; i + needle.length <= haystack.length; i++) {
    if (needle.every((l, j) => haystack[i + j] === l)) return true;
  }
  return false;
}

describe('docs/architecture.md stays true to the code', () => {
  it('quotes code blocks that stand, as written, in the files they name', () => {
    const blocks = excerpts(doc);
    expect(blocks.length, 'the page quotes real code').to.be.at.least(6);
    for (const b of blocks) {
      const path = join(root, b.file);
      expect(existsSync(path), `${b.file} exists`).to.equal(true);
      const source = norm(readFileSync(path, 'utf8').split('\n'));
      expect(containsRun(source, b.lines), `${b.file} contains:\n${b.lines.join('\n')}`).to.equal(true);
    }
  });

  it('names only paths that exist', () => {
    const paths = new Set([...doc.matchAll(/`((?:src|test|migrations|docs|bench)\/[A-Za-z0-9_./<>-]+?)`/g)].map((m) => m[1]));
    const concrete = [...paths].filter((p) => !p.includes('<'));
    expect(concrete.length).to.be.at.least(15);
    const missing = concrete.filter((p) => !existsSync(join(root, p.replace(/\/$/, ''))));
    expect(missing, 'paths named in the page that do not exist').to.deep.equal([]);
  });

  it('fails on a quote that is not in its file (the check above can fail)', () => {
    const [first] = excerpts(doc);
    const source = norm(readFileSync(join(root, first.file), 'utf8').split('\n'));
    expect(containsRun(source, [...first.lines, 'this line is in no file'])).to.equal(false);
  });
});
