import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { configKeys } from '../../src/config/loader.js';
import { packageRoot } from '../../src/config/paths.js';

describe('README', () => {
  const readme = readFileSync(join(packageRoot(), 'README.md'), 'utf8');

  it('documents every configuration key', () => {
    const missing = configKeys().map((k) => k.path).filter((p) => !readme.includes(`\`${p}\``));
    expect(missing).to.deep.equal([]);
  });

  it('gives the two commands that CI and a fresh machine use', () => {
    expect(readme).to.contain('npm ci && npm start');
    expect(readme).to.contain('npm test');
    expect(readFileSync(join(packageRoot(), '.ci', 'run'), 'utf8')).to.contain('npm test');
  });
});
