import { expect } from 'chai';
import SwaggerParser from '@apidevtools/swagger-parser';
import { cloneDatabase, dropDatabase } from '../support/db.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/** The composed daemon (buildApp) over HTTP: the contract every later feature plugs into. */
describe('the composed app over HTTP', () => {
  let url: string;
  let t: TestApp;
  before(async () => {
    url = await cloneDatabase();
    t = await startTestApp(url);
  });
  after(async () => {
    await t.stop();
    await dropDatabase(url);
  });

  it('publishes a valid OpenAPI 3.1 document that lists every registered route', async () => {
    const res = await t.api.get('/openapi.json');
    expect(res.status).to.equal(200);
    const doc = res.body as { openapi: string; servers: { url: string }[]; paths: Record<string, Record<string, { operationId: string; responses: object }>> };
    expect(doc.openapi).to.match(/^3\.1\./);
    expect(doc.servers).to.deep.equal([{ url: '/api/v1' }]);
    await SwaggerParser.validate(structuredClone(doc) as never);
    const routes = t.app.registry!.routes();
    expect(routes.length).to.be.greaterThan(0);
    for (const r of routes) {
      const op = doc.paths[r.path]?.[r.method];
      expect(op, `${r.method.toUpperCase()} ${r.path} in the OpenAPI document`).to.be.an('object');
      expect(op.operationId).to.equal(r.operationId);
      expect(Object.keys(op.responses)).to.have.length.greaterThan(0);
    }
  });

  it('exposes Prometheus metrics labelled by route template and status', async () => {
    await t.api.get('/health');
    await t.api.get('/no/such/thing/12345');
    const res = await t.api.raw('GET', '/metrics');
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
    const { text } = res;
    expect(text).to.match(/^# HELP /m);
    expect(text).to.match(/^process_resident_memory_bytes \d+/m);
    expect(text).to.match(/^sentinel_http_request_duration_seconds_bucket\{[^}]*route="\/health"[^}]*status="200"[^}]*\} \d+/m);
    expect(text).to.not.contain('12345');
  });

  it('answers unknown routes with a 404 problem and a request id', async () => {
    const res = await t.api.get('/nope');
    expect(res.status).to.equal(404);
    expect(res.headers.get('content-type')).to.match(/^application\/problem\+json/);
    const body = res.body as { status: number; request_id: string; title: string };
    expect(body.status).to.equal(404);
    expect(body.request_id).to.equal(res.headers.get('x-request-id'));
  });

  it('logs one line per request with its request id, and no Authorization header', async () => {
    const res = await t.api.get('/health', 'snt_never_log_me');
    const id = res.headers.get('x-request-id')!;
    await new Promise((r) => setTimeout(r, 50));
    const lines = t.logs.lines.filter((l) => l.includes(id));
    expect(lines.length).to.be.greaterThan(0);
    expect(t.logs.text).to.not.contain('snt_never_log_me');
  });
});
