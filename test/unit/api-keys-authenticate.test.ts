import { expect } from 'chai';
import { sha256 } from '../../src/core/secrets.js';
import type { ApiKeysRepository, ApiKeyRow } from '../../src/features/api-keys/api-keys-repository.js';
import { ApiKeysService } from '../../src/features/api-keys/api-keys-service.js';

const SECRET = `snt_${'A'.repeat(43)}`;
const T0 = Date.UTC(2026, 10, 30, 12);

/** A repository holding one key, whose last-use writes wait until the test lets them finish. */
function fakeRepo(lastUsedAt: Date | null) {
  const row = { id: 'k1', org_id: 'o1', secret_hash: sha256(SECRET), previous_secret_hash: null, previous_valid_until: null, revoked_at: null, expires_at: null, last_used_at: lastUsedAt, scopes: ['read'] };
  const writes: { finish: () => void; fail: (err: Error) => void }[] = [];
  const repo = {
    findBySecretHash: async (hash: string) => (hash === row.secret_hash ? (row as unknown as ApiKeyRow) : undefined),
    touch: () => new Promise<void>((finish, fail) => writes.push({ finish, fail })),
  };
  const svc = new ApiKeysService(repo as unknown as ApiKeysRepository, {} as never, {} as never, { rotationGraceMs: 1000, lastUseIntervalMs: 60_000, clock: { now: () => new Date(T0) } });
  return { svc, writes };
}

const settled = async (p: Promise<unknown>) => {
  let done = false;
  void p.then(() => (done = true), () => (done = true));
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
  return done;
};

describe('ApiKeysService.authenticate: the last-use write', () => {
  it('answers after the due last-use write, and fails when it fails', async () => {
    const { svc, writes } = fakeRepo(null);
    const first = svc.authenticate(SECRET, '10.0.0.1');
    expect(await settled(first), 'waits for the write').to.equal(false);
    expect(writes).to.have.length(1);
    writes[0].finish();
    expect(await first).to.deep.include({ kind: 'apikey', keyId: 'k1', orgId: 'o1' });

    const { svc: other, writes: failing } = fakeRepo(null);
    const refused = other.authenticate(SECRET, '10.0.0.1');
    await settled(refused);
    failing[0].fail(new Error('database gone'));
    let err: unknown;
    await refused.catch((e: unknown) => (err = e));
    expect((err as Error | undefined)?.message).to.equal('database gone');
  });

  it('writes nothing and waits for nothing when the key was used within the interval', async () => {
    const { svc, writes } = fakeRepo(new Date(T0 - 30_000));
    expect(await svc.authenticate(SECRET, '10.0.0.1')).to.deep.include({ kind: 'apikey', keyId: 'k1' });
    expect(writes).to.have.length(0);
    expect(await svc.authenticate(`snt_${'B'.repeat(43)}`, '10.0.0.1')).to.equal(null);
  });
});
