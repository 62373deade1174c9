import { SYSTEM_ACTOR } from '../src/core/actor.js';
import { randomToken } from '../src/core/ids.js';
import type { Services } from '../src/app/build-app.js';

export interface DemoSeed {
  org: string;
  admin: { email: string; password: string };
  viewer: { email: string; password: string };
}

/** Demo org `demo` with an owner and a viewer. Passwords are generated and returned once. */
export async function seedDemo(services: Services): Promise<DemoSeed> {
  const org = await services.orgs.create(SYSTEM_ACTOR, { slug: 'demo', name: 'Demo' });
  const admin = { email: 'admin@demo.local', password: randomToken(18) };
  const viewer = { email: 'viewer@demo.local', password: randomToken(18) };
  await services.users.create(SYSTEM_ACTOR, { ...admin, name: 'Demo Admin', org: org.slug, role: 'owner' });
  await services.users.create(SYSTEM_ACTOR, { ...viewer, name: 'Demo Viewer', org: org.slug, role: 'viewer' });
  return { org: org.slug, admin, viewer };
}
