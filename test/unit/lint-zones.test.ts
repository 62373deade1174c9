import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';

const root = fileURLToPath(new URL('../../', import.meta.url));
const RULE = 'import-x/no-restricted-paths';

/**
 * The import rule of DESIGN §2 as `npm run lint` applies it (eslint.config.js zones), on small
 * sources placed at paths in the real tree: each case fails the lint exactly when the layout
 * forbids the import.
 */
describe('eslint.config.js import zones', function () {
  this.timeout(60_000);
  const eslint = new ESLint({ cwd: root });

  async function restricted(path: string, source: string): Promise<string[]> {
    const [result] = await eslint.lintText(source, { filePath: `${root}${path}` });
    return result.messages.filter((m) => m.ruleId === RULE).map((m) => m.message);
  }

  it('a feature importing another feature fails, also from its module file', async () => {
    const source = "import { UsersRepository } from '../users/users-repository.js';\nexport const x = UsersRepository;\n";
    for (const path of ['src/features/orgs/lint-fixture.ts', 'src/features/orgs/lint-fixture-module.ts', 'src/features/orgs/lint-fixture-routes.ts']) {
      const errors = await restricted(path, source);
      expect(errors, path).to.have.length(1);
      expect(errors[0]).to.contain('a feature must not import another feature');
    }
  });

  it('a feature importing its own files, core and db passes', async () => {
    const source = [
      "import { OrgsRepository } from './orgs-repository.js';",
      "import { DomainError } from '../../core/errors.js';",
      "import { dayStart } from '../../db/partitions.js';",
      'export const x = [OrgsRepository, DomainError, dayStart];',
      '',
    ].join('\n');
    expect(await restricted('src/features/orgs/lint-fixture.ts', source)).to.deep.equal([]);
  });

  it('only *-routes.ts and *-module.ts import src/http; only *-module.ts imports src/config', async () => {
    const http = "import { API_PREFIX } from '../../http/registry.js';\nexport const x = API_PREFIX;\n";
    const config = "import { LOG_LEVELS } from '../../config/schema.js';\nexport const x = LOG_LEVELS;\n";
    expect(await restricted('src/features/orgs/lint-fixture-service.ts', http)).to.have.length(1);
    expect(await restricted('src/features/orgs/lint-fixture-routes.ts', http)).to.deep.equal([]);
    expect(await restricted('src/features/orgs/lint-fixture-module.ts', http)).to.deep.equal([]);
    expect(await restricted('src/features/orgs/lint-fixture-service.ts', config)).to.have.length(1);
    expect(await restricted('src/features/orgs/lint-fixture-routes.ts', config)).to.have.length(1);
    expect(await restricted('src/features/orgs/lint-fixture-module.ts', config)).to.deep.equal([]);
  });

  it('features and the module contract never import the composition root; kits never import a feature', async () => {
    const app = "import { buildApp } from '../../app/build-app.js';\nexport const x = buildApp;\n";
    expect(await restricted('src/features/orgs/lint-fixture-module.ts', app)).to.have.length(1);
    const feature = "import { orgsModule } from './orgs/orgs-module.js';\nexport const x = orgsModule;\n";
    expect(await restricted('src/features/lint-fixture.ts', feature)).to.have.length(1);
    const fromKit = "import { OrgsRepository } from '../features/orgs/orgs-repository.js';\nexport const x = OrgsRepository;\n";
    for (const kit of ['src/db/lint-fixture.ts', 'src/http/lint-fixture.ts', 'src/core/lint-fixture.ts']) expect(await restricted(kit, fromKit), kit).to.have.length(1);
  });
});

describe('src/cli import graph', () => {
  it('no command file imports program.ts (shared types and usage live in cli/context.ts)', () => {
    const dir = `${root}src/cli/`;
    const importers = readdirSync(dir)
      .filter((f) => f.endsWith('.ts') && f !== 'program.ts')
      .filter((f) => /from '\.\/program\.js'/.test(readFileSync(dir + f, 'utf8')));
    expect(importers).to.deep.equal([]);
  });
});
