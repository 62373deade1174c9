import { expect } from 'chai';
import { ConfigError, loadConfig } from '../../src/config/loader.js';

const refusal = (env: Record<string, string>): string[] => {
  try {
    loadConfig({ env });
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return ((err as ConfigError).details.errors ?? []).map((e) => `${e.path}: ${e.message}`);
  }
  throw new Error('the configuration was accepted');
};

describe('config: ingest.flush_min_items', () => {
  it('defaults to 500 and takes a whole number of at least 1', () => {
    expect(loadConfig({ env: {} }).config.ingest.flush_min_items).to.equal(500);
    const { config, sources } = loadConfig({ env: { SENTINEL_INGEST_FLUSH_MIN_ITEMS: '1' } });
    expect(config.ingest.flush_min_items).to.equal(1);
    expect(sources['ingest.flush_min_items']).to.equal('env SENTINEL_INGEST_FLUSH_MIN_ITEMS');
  });

  for (const [value, message] of [
    ['0', '0 (from env SENTINEL_INGEST_FLUSH_MIN_ITEMS): must be >= 1'],
    ['-20', '-20 (from env SENTINEL_INGEST_FLUSH_MIN_ITEMS): must be >= 1'],
    ['2.5', '2.5 (from env SENTINEL_INGEST_FLUSH_MIN_ITEMS): must be integer'],
    ['many', '"many" (from env SENTINEL_INGEST_FLUSH_MIN_ITEMS): must be integer'],
  ]) {
    it(`refuses ${value}, naming the key, the value and where it came from`, () => {
      expect(refusal({ SENTINEL_INGEST_FLUSH_MIN_ITEMS: value })).to.deep.equal([`ingest.flush_min_items: ${message}`]);
    });
  }
});
