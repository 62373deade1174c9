import { actorOf } from '../../http/context.js';
import type { ApiRegistry } from '../../http/registry.js';
import { OrgParams, PageQuerySchema, orgParamsWith, pageOf, uuid } from '../../http/schemas.js';
import { DownloadQuery, GenerateReportBody, ReportDataSchema, ReportSchema } from './reports-schemas.js';
import type { ReportsService } from './reports-service.js';

const TAGS = ['reports'];
const NOT_FOUND = { description: 'No such organization or report (or not yours).' };
// The HTML report styles itself inline and has no scripts: the API's CSP plus inline styles only.
const HTML_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

export function registerReportRoutes(registry: ApiRegistry, reports: ReportsService): void {
  registry.route({
    method: 'get',
    path: '/organizations/{org}/reports',
    operationId: 'listReports',
    summary: "The organization's reports, newest day first (viewers and above; API keys with the read scope)",
    tags: TAGS,
    auth: 'any',
    permission: 'report.read',
    params: OrgParams,
    query: PageQuerySchema,
    responses: { 200: { description: 'One page of reports.', schema: pageOf(ReportSchema) }, 403: { description: 'Role or scope too low.' }, 404: NOT_FOUND },
    handler: async (ctx, { params, query }) => {
      ctx.body = await reports.list(actorOf(ctx), params.org, query);
    },
  });

  registry.route({
    method: 'post',
    path: '/organizations/{org}/reports',
    operationId: 'generateReport',
    summary: 'Generate the report of a UTC day that has ended (admins and owners; API keys with the admin scope)',
    description: 'One report per organization, kind and day: when it exists already, the stored one is answered with 200.',
    tags: TAGS,
    auth: 'any',
    permission: 'report.generate',
    params: OrgParams,
    body: GenerateReportBody,
    responses: {
      201: { description: 'Generated and stored.', schema: ReportSchema },
      200: { description: 'It existed already: the stored report.', schema: ReportSchema },
      403: { description: 'Role or scope too low.' },
      404: NOT_FOUND,
    },
    handler: async (ctx, { params, body }) => {
      const { report, created } = await reports.generate(actorOf(ctx), params.org, body ?? {});
      ctx.status = created ? 201 : 200;
      ctx.body = report;
    },
  });

  registry.route({
    method: 'get',
    path: '/organizations/{org}/reports/{id}',
    operationId: 'downloadReport',
    summary: 'Download a report as JSON (its data), CSV or a self-contained HTML page (viewers and above; API keys with the read scope)',
    tags: TAGS,
    auth: 'any',
    permission: 'report.read',
    params: orgParamsWith({ id: uuid('The report id.') }),
    query: DownloadQuery,
    responses: {
      200: { description: 'The report in the asked format (Content-Disposition names the file).', schema: ReportDataSchema, alsoContentTypes: ['text/csv', 'text/html'] },
      403: { description: 'Role or scope too low.' },
      404: NOT_FOUND,
    },
    handler: async (ctx, { params, query }) => {
      const r = await reports.download(actorOf(ctx), params.org, params.id, query.format);
      ctx.type = r.contentType;
      ctx.set('Content-Disposition', `attachment; filename="${r.filename}"`);
      if (query.format === 'html') ctx.set('Content-Security-Policy', HTML_CSP);
      ctx.body = r.body;
    },
  });
}
