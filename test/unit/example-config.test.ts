import { expect } from 'chai';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/loader.js';
import { packageRoot } from '../../src/config/paths.js';

describe('config/sentinel.example.json', () => {
  it('is a valid configuration file', () => {
    const file = join(packageRoot(), 'config', 'sentinel.example.json');
    const { config, sources } = loadConfig({ file, env: {} });
    expect(config.http.trust_proxy).to.equal(true);
    expect(sources['http.trust_proxy']).to.equal(`file ${file}`);
  });
});
