import { expect } from 'chai';
import type { Actor } from '../../src/core/actor.js';
import { registerQueryRoutes } from '../../src/features/telemetry/query-routes.js';
import type { QueryService } from '../../src/features/telemetry/query-service.js';
import { startServer, type RunningServer } from './http-fixtures.js';

/**
 * The routes' side of the contract without a database: what the query strings turn into (arrays
 * for repeatable parameters, attr.<key> collected, coercion) and what the schema refuses.
 */
describe('telemetry query routes', () => {
  let srv: RunningServer;
  const calls: { method: string; org: string; input: unknown }[] = [];
  const record =
    (method: string, answer: unknown) =>
    async (_actor: Actor, org: string, input?: unknown): Promise<unknown> => {
      calls.push({ method, org, input });
      return answer;
    };
  const stub = {
    listMetrics: record('listMetrics', { items: [], next_cursor: null }),
    queryJson: record('queryJson', Buffer.from('{"series":[]}')),
    logs: record('logs', { items: [], next_cursor: null }),
    events: record('events', { items: [], next_cursor: null }),
    usage: record('usage', {}),
  } as unknown as QueryService;

  before(async () => {
    srv = await startServer({
      routes: (r) => {
        r.setAuthenticator((ctx) => {
          ctx.state.actor = { kind: 'system' };
        });
        registerQueryRoutes(r, stub);
      },
    });
  });
  after(() => srv.close());
  beforeEach(() => (calls.length = 0));

  const get = async (path: string) => {
    const res = await fetch(`${srv.url}/api/v1${path}`);
    return { status: res.status, body: (await res.json()) as { errors?: { path: string }[] } };
  };

  it('registers five auth "any" routes tagged telemetry', () => {
    const ours = srv.registry.routes().filter((r) => ['listMetrics', 'queryMetric', 'listLogs', 'listEvents', 'getUsage'].includes(r.operationId));
    expect(ours).to.have.length(5);
    for (const r of ours) expect(r.auth).to.equal('any');
  });

  it('metric query: by and filter arrive as arrays whether given once or repeated', async () => {
    expect((await get('/organizations/acme/metrics/query?name=cpu&by=host&filter=a%3D1&filter=b!~x,c%3Dy&agg=p99')).status).to.equal(200);
    expect(calls[0]).to.deep.equal({ method: 'queryJson', org: 'acme', input: { name: 'cpu', by: ['host'], filter: ['a=1', 'b!~x,c=y'], agg: 'p99' } });
  });

  it('metric query: the JSON text the service wrote is the answer, as application/json with its length', async () => {
    const res = await fetch(`${srv.url}/api/v1/organizations/acme/metrics/query?name=cpu`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.equal('application/json; charset=utf-8');
    expect(res.headers.get('content-length')).to.equal('13');
    expect(await res.text()).to.equal('{"series":[]}');
  });

  it('metric query: name is required, agg is checked, unknown parameters are refused', async () => {
    const missing = await get('/organizations/acme/metrics/query');
    expect(missing.status).to.equal(400);
    expect(missing.body.errors?.map((e) => e.path)).to.include('query/name');
    expect((await get('/organizations/acme/metrics/query?name=cpu&agg=median')).body.errors?.map((e) => e.path)).to.include('query/agg');
    expect((await get('/organizations/acme/metrics/query?name=cpu&bogus=1')).body.errors?.map((e) => e.path)).to.include('query/bogus');
    expect(calls).to.have.length(0);
  });

  it('logs: attr.<key> parameters become the attribute filter; other unknown parameters are refused', async () => {
    expect((await get('/organizations/acme/logs?level=warn&q=50%25&attr.http.status=500&attr.user=a&attr.user=b&limit=5')).status).to.equal(200);
    expect(calls[0].input).to.deep.equal({
      start: undefined,
      end: undefined,
      level: 'warn',
      q: '50%',
      limit: 5,
      cursor: undefined,
      attributes: { 'http.status': ['500'], user: ['a', 'b'] },
    });
    expect((await get('/organizations/acme/logs?attrx=1')).body.errors?.map((e) => e.path)).to.include('query/attrx');
    expect((await get('/organizations/acme/logs?level=loud')).body.errors?.map((e) => e.path)).to.include('query/level');
  });

  it('events: type and tag are arrays; limit is bounded', async () => {
    expect((await get('/organizations/acme/events?tag=deploy&tag=prod&type=release')).status).to.equal(200);
    expect(calls[0].input).to.deep.equal({ tag: ['deploy', 'prod'], type: ['release'] });
    expect((await get('/organizations/acme/events?limit=1001')).status).to.equal(400);
  });

  it('the OpenAPI document describes parameters and response schemas', async () => {
    const doc = (await (await fetch(`${srv.url}/api/v1/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { parameters?: { name: string }[]; responses: Record<string, unknown>; tags?: string[] }>>;
    };
    const q = doc.paths['/organizations/{org}/metrics/query'].get;
    expect(q.tags).to.deep.equal(['telemetry']);
    expect(q.parameters?.map((p) => p.name)).to.include.members(['org', 'name', 'start', 'end', 'step', 'agg', 'by', 'filter']);
    expect(q.responses).to.include.keys('200', '400', '401', '404', '422');
    for (const p of ['/organizations/{org}/metrics', '/organizations/{org}/logs', '/organizations/{org}/events', '/organizations/{org}/usage']) {
      expect(doc.paths[p].get.responses['200'], p).to.have.nested.property('content');
    }
  });
});
