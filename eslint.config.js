// @ts-check
import { readdirSync } from 'node:fs';
import tseslint from 'typescript-eslint';
import importX, { createNodeResolver } from 'eslint-plugin-import-x';

const layers = ['core', 'config', 'db', 'http', 'jobs', 'features', 'app', 'cli', 'tui'];
/** DESIGN.md §2: what each layer may import from src/ (besides itself). */
const allowed = {
  core: [],
  config: ['core'],
  db: ['core', 'config'],
  http: ['core', 'config'],
  jobs: ['core', 'db'],
  features: ['core', 'db', 'http'],
  app: layers,
  cli: ['app', 'core', 'config'],
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
// Services and repositories do not know about HTTP; only a feature's *-routes.ts does.
zones.push({
  target: './src/features/**/!(*-routes).ts',
  from: ['./src/http'],
  message: "only a feature's *-routes.ts may import src/http (DESIGN.md §2).",
});
zones.push({ target: './src/main.ts', from: layers.filter((l) => l !== 'cli').map((l) => `./src/${l}`), message: 'main.ts imports only src/cli.' });

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**'] },
  ...tseslint.configs.recommended,
  {
    plugins: { 'import-x': importX },
    settings: {
      // Imports are written with .js and resolve to the .ts sources.
      'import-x/resolver-next': [createNodeResolver({ extensionAlias: { '.js': ['.ts', '.js'] } })],
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
