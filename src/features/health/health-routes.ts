import { Type } from '@sinclair/typebox';
import type { ApiRegistry, ReadinessCheck } from '../../http/registry.js';

export interface HealthDeps {
  checks: ReadinessCheck[];
  version: string;
  /** Upper bound per check so /health/ready answers even when a dependency hangs (default 2000). */
  timeoutMs?: number;
}

const RETRY_AFTER_SECONDS = 5;
// Check errors are shown to unauthenticated callers: keep them short.
const MAX_ERROR_LENGTH = 200;

const LiveResponse = Type.Object({
  status: Type.Literal('ok'),
  version: Type.String(),
});

const CheckResult = Type.Object({
  name: Type.String(),
  ok: Type.Boolean(),
  error: Type.Optional(Type.String()),
});

const ReadyResponse = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('not_ready')]),
  checks: Type.Array(CheckResult),
});

type CheckOutcome = { name: string; ok: true } | { name: string; ok: false; error: string };

async function runCheck(check: ReadinessCheck, timeoutMs: number): Promise<CheckOutcome> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    // Invoked inside the race so a check that throws synchronously is a failure, not a 500.
    await Promise.race([Promise.resolve().then(() => check.check()), timeout]);
    return { name: check.name, ok: true };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { name: check.name, ok: false, error: message.slice(0, MAX_ERROR_LENGTH) || 'failed' };
  } finally {
    clearTimeout(timer);
  }
}

export function registerHealthRoutes(registry: ApiRegistry, deps: HealthDeps): void {
  const timeoutMs = deps.timeoutMs ?? 2000;

  registry.route({
    method: 'get',
    path: '/health',
    operationId: 'getHealth',
    summary: 'Liveness: the process is up and serving HTTP',
    tags: ['health'],
    auth: 'none',
    // A busy load balancer or orchestrator must never lock itself out of its probe.
    rateLimit: 'none',
    responses: { 200: { description: 'Alive.', schema: LiveResponse } },
    handler: (ctx) => {
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { status: 'ok', version: deps.version };
    },
  });

  registry.route({
    method: 'get',
    path: '/health/ready',
    operationId: 'getReadiness',
    summary: 'Readiness: every dependency (database, migrations, queue) answers',
    tags: ['health'],
    auth: 'none',
    // A busy load balancer or orchestrator must never lock itself out of its probe.
    rateLimit: 'none',
    responses: {
      200: { description: 'Ready to serve traffic.', schema: ReadyResponse },
      503: { description: 'Not ready; see the failing checks. Carries Retry-After.', schema: ReadyResponse },
    },
    handler: async (ctx) => {
      const checks = await Promise.all(deps.checks.map((c) => runCheck(c, timeoutMs)));
      const failing = checks.filter((c) => !c.ok);
      ctx.set('Cache-Control', 'no-store');
      if (failing.length > 0) {
        ctx.state.log.warn({ failing }, 'readiness check failed');
        ctx.status = 503;
        ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
        ctx.body = { status: 'not_ready', checks };
        return;
      }
      ctx.body = { status: 'ready', checks };
    },
  });
}
