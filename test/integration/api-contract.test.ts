import { expect } from 'chai';
import { cloneDatabase, dropDatabase } from '../support/db.js';
import { ApiClient } from '../support/http.js';
import type { ValidationFailure } from '../support/observed-answers.js';
import { checkObservedAnswers } from '../support/response-coverage.js';
import { ResponseValidator, operationSchemas, type OpenApiDocument } from '../support/response-schemas.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * The meta-test of the API contract: the document the real app serves compiles with the same
 * ajv the tests validate answers with, it lists every route the app registered, and the answer
 * check the whole suite relies on (test/support/http.ts) does fail on an answer the document
 * does not describe. That every 2xx the suite saw was validated is checked after the run by the
 * root hook in test/support/response-coverage.ts.
 */
describe('the API contract (meta-test)', () => {
  let url: string;
  let t: TestApp;
  let doc: OpenApiDocument;
  let validator: ResponseValidator;

  before(async () => {
    url = await cloneDatabase();
    t = await startTestApp(url);
    const res = await t.api.get<OpenApiDocument>('/openapi.json');
    expect(res.status).to.equal(200);
    doc = res.body;
    validator = new ResponseValidator(doc);
  });
  after(async () => {
    await t?.stop();
    if (url) await dropDatabase(url);
  });

  it("every operation's parameter, request body and response schemas compile (ajv 2020-12, strict, ajv-formats)", () => {
    const failures: string[] = [];
    let compiled = 0;
    for (const o of validator.operations) {
      for (const [label, pointer] of operationSchemas(o)) {
        try {
          validator.compile(pointer);
          compiled++;
        } catch (err) {
          failures.push(`${o.op.operationId} ${label}: ${(err as Error).message}`);
        }
      }
    }
    expect(failures, failures.join('\n')).to.deep.equal([]);
    // Dozens of operations, each with at least a response and its problem answers.
    expect(compiled).to.be.greaterThan(3 * validator.operations.length);
  });

  it('the served document is the registry\'s (the test apps check answers against the latter, read in-process)', () => {
    const own = t.app.registry!.openapi({ title: 'Sentinel API', version: 'test' }) as unknown as OpenApiDocument & { components: unknown };
    expect(doc.paths).to.deep.equal(own.paths);
    expect((doc as unknown as { components: unknown }).components).to.deep.equal(own.components);
    expect(doc.servers).to.deep.equal(own.servers);
  });

  it('every registered route and every externally served operation is in the document, under its operationId', () => {
    const routes = t.app.registry!.routes();
    expect(routes.length).to.be.greaterThan(20);
    const documented = new Map(validator.operations.map((o) => [`${o.method} ${o.path}`, o.op.operationId]));
    const missing = routes.filter((r) => documented.get(`${r.method} ${r.path}`) !== r.operationId).map((r) => `${r.operationId} (${r.method.toUpperCase()} ${r.path})`);
    const external = t.app.registry!.externalOperations().filter((e) => documented.get(`${e.method} ${e.path}`) !== e.operationId).map((e) => e.operationId);
    expect([...missing, ...external], 'routes the document does not list').to.deep.equal([]);
    // And nothing the server does not register: every operation is a route or an external one.
    const served = new Set([...routes.map((r) => r.operationId), ...t.app.registry!.externalOperations().map((e) => e.operationId)]);
    expect(validator.operations.map((o) => o.op.operationId).filter((id) => !served.has(id)), 'documented but not served').to.deep.equal([]);
  });

  describe('the answer check every test goes through can fail', () => {
    const health = { status: 200, contentType: 'application/json; charset=utf-8' };

    it('passes a real answer', async () => {
      const res = await t.api.get('/health');
      expect(validator.check('GET', '/api/v1/health', res)).to.deep.include({ operationId: validator.operationFor('get', '/api/v1/health')!.op.operationId, status: 200, errors: [] });
    });

    it('names the operation, the status and the schema error for a body the schema does not describe', () => {
      const verdict = validator.check('GET', '/api/v1/health', { ...health, text: JSON.stringify({ status: 12, surprise: [] }) });
      expect(verdict?.status).to.equal(200);
      expect(verdict?.errors.join('\n')).to.match(/response 200 application\/json: /);
    });

    it('refuses a content type the response does not declare, and a problem body that is not a Problem', () => {
      expect(validator.check('GET', '/api/v1/health', { ...health, contentType: 'text/plain', text: 'ok' })?.errors.join('\n')).to.match(/content type "text\/plain" is not declared/);
      const problem = validator.check('GET', '/api/v1/organizations', { status: 401, contentType: 'application/problem+json', text: JSON.stringify({ error: 'nope' }) });
      expect(problem?.errors.length, JSON.stringify(problem)).to.be.greaterThan(0);
    });

    it('matches path templates, literal segments first, and leaves paths outside the document alone', () => {
      const org = validator.operationFor('get', '/api/v1/organizations/acme');
      expect(org?.path).to.equal('/organizations/{org}');
      const ok = { responses: { 200: { description: 'x' } } };
      const both = new ResponseValidator({ servers: [{ url: '/api/v1' }], paths: { '/things/{id}': { get: { operationId: 'thing', ...ok } }, '/things/mine': { get: { operationId: 'mine', ...ok } } } });
      expect(both.operationFor('get', '/api/v1/things/mine')?.op.operationId).to.equal('mine');
      expect(both.operationFor('get', '/api/v1/things/7')?.op.operationId).to.equal('thing');
      expect(both.operationFor('get', '/api/v1/things/7/more')).to.equal(null);
      expect(validator.operationFor('post', '/v1/metrics')?.path).to.equal('/v1/metrics');
      expect(validator.check('GET', '/metrics', { status: 200, contentType: 'text/plain', text: '' })).to.equal(null);
      expect(validator.operationFor('delete', '/api/v1/health')).to.equal(null);
    });

    it('the run-level check fails on a recorded validation failure and, on a full run, on an operation never answered with a 2xx', () => {
      const operations = [
        { operationId: 'seen', method: 'get', path: '/a' },
        { operationId: 'refusedOnly', method: 'get', path: '/b' },
      ];
      const answers = new Map([
        ['seen', new Map([[200, 3]])],
        ['refusedOnly', new Map([[403, 1]])],
      ]);
      const gap = checkObservedAnswers({ operations, answers, failures: [] }, true);
      expect(gap.report).to.contain('never answered with a 2xx: refusedOnly (GET /b)');
      expect(gap.problems).to.have.length(1);
      // A partial run (one file) lists its gaps without failing on them.
      expect(checkObservedAnswers({ operations, answers, failures: [] }, false).problems).to.deep.equal([]);
      const failure = { operationId: 'seen', status: 200, request: 'GET /api/v1/a', errors: ['/ must be object'] };
      expect(checkObservedAnswers({ operations, answers, failures: [failure] }, false).problems).to.deep.equal(['seen GET /api/v1/a → 200: / must be object']);
    });

    it('the shared client fails the request with the operation id, and reports it to its recorder', async () => {
      const lying = new ResponseValidator({ ...doc, paths: { ...doc.paths, '/health': { get: { operationId: 'lyingHealth', responses: { 200: { description: 'x', content: { 'application/json': { schema: { type: 'string' } } } } } } } } });
      const failures: ValidationFailure[] = [];
      // Its own recorder: this deliberate failure is not one of the suite's answers.
      const api = new ApiClient(t.baseUrl, 'contract-test/1.0', { validator: lying, recorder: { operations: () => {}, answer: () => {}, failure: (f) => failures.push(f) } });
      let failure: unknown = null;
      await api.get('/health').catch((err: unknown) => (failure = err));
      expect(String(failure)).to.match(/lyingHealth \(GET \/api\/v1\/health\) answered 200/);
      expect(failures.map((f) => [f.operationId, f.status])).to.deep.equal([['lyingHealth', 200]]);
    });
  });
});
