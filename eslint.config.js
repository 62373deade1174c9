// @ts-check
import { readdirSync } from 'node:fs';
import tseslint from 'typescript-eslint';
import importX, { createNodeResolver } from 'eslint-plugin-import-x';

const layers = ['core', 'config', 'db', 'http', 'jobs', 'features', 'app', 'cli', 'tui'];
/**
 * DESIGN.md §2: what each layer may import from src/ (besides itself). Features get config only
 * in their *-module.ts (and the shared contract src/features/feature-module.ts): turning the
 * config into constructor options is the module's job, so services and repositories never see it.
 */
const allowed = {
  core: [],
  config: ['core'],
  db: ['core', 'config'],
  http: ['core', 'config'],
  jobs: ['core', 'db'],
  features: ['core', 'db', 'http', 'config'],
  app: layers,
  // The status command draws the terminal dashboard.
  cli: ['app', 'core', 'config', 'tui'],
  tui: ['core'],
};
const zones = Object.entries(allowed).map(([layer, ok]) => ({
  target: `./src/${layer}`,
  from: layers.filter((l) => l !== layer && !ok.includes(l)).map((l) => `./src/${l}`).concat(layer === 'cli' ? [] : ['./src/main.ts']),
  message: `src/${layer} may import only from ${ok.length ? ok.map((l) => `src/${l}`).join(', ') : 'nothing else in src/'} (DESIGN.md §2).`,
}));
// A feature never imports another feature: cross-feature needs arrive as constructor dependencies.
const features = readdirSync(new URL('./src/features', import.meta.url)).filter((f) => !f.includes('.'));
for (const f of features) {
  zones.push({
    target: `./src/features/${f}`,
    from: features.filter((g) => g !== f).map((g) => `./src/features/${g}`),
    message: 'a feature must not import another feature (DESIGN.md §2); take an interface in the constructor.',
  });
}
// The shared module contract beside the feature folders belongs to none of them.
zones.push({
  target: './src/features/*.ts',
  from: features.map((g) => `./src/features/${g}`),
  message: 'src/features/*.ts is the contract between features and the composition root; it imports no feature.',
});
// Services and repositories know neither HTTP nor the config file; a feature's *-routes.ts
// speaks HTTP, and its *-module.ts (the feature's own wiring) may use both.
zones.push({
  target: './src/features/**/!(*-routes|*-module).ts',
  from: ['./src/http'],
  message: "only a feature's *-routes.ts and *-module.ts may import src/http (DESIGN.md §2).",
});
zones.push({
  target: './src/features/**/!(*-module).ts',
  from: ['./src/config'],
  message: "only a feature's *-module.ts reads the config; hand its services options (DESIGN.md §2).",
});
zones.push({ target: './src/main.ts', from: layers.filter((l) => l !== 'cli').map((l) => `./src/${l}`), message: 'main.ts imports only src/cli.' });

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**'] },
  ...tseslint.configs.recommended,
  {
    plugins: { 'import-x': importX },
    settings: {
      // Imports are written with .js and resolve to the .ts sources.
      'import-x/resolver-next': [createNodeResolver({ extensionAlias: { '.js': ['.ts', '.tsx', '.js'] } })],
    },
    rules: {
      'import-x/no-restricted-paths': ['error', { zones }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': [
        'error',
        { selector: "MemberExpression[object.name='process'][property.name='env']", message: 'read the environment only in src/config and src/main.ts (DESIGN.md §2).' },
      ],
    },
  },
  {
    files: ['src/config/**', 'src/main.ts', 'test/**', 'bench/**', 'eslint.config.js'],
    rules: { 'no-restricted-syntax': 'off' },
  },
);
