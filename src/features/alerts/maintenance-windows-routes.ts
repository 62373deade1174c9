import { actorOf, metaOf } from '../../http/context.js';
import { OrgParams, PageQuerySchema, orgParamsWith, pageOf, uuid } from '../../http/schemas.js';
import type { ApiRegistry } from '../../http/registry.js';
import { CreateMaintenanceWindowBody, MaintenanceWindowSchema, UpdateMaintenanceWindowBody } from './maintenance-windows-schemas.js';
import type { MaintenanceWindowsService } from './maintenance-windows-service.js';

const TAGS = ['maintenance-windows'];
const WindowParams = orgParamsWith({ id: uuid('Maintenance window id.') });
const NOT_FOUND = { description: 'No such organization or maintenance window, or not visible to the caller.' };
const FORBIDDEN = { description: "The caller's role or the key's scopes do not allow it." };
const INVALID = { description: 'Invalid input; `errors` names each field (e.g. body/time_zone).' };
const TAKEN = { description: 'Another maintenance window of the organization has that name.' };

/** Reading needs alert.read (viewer, read scope); creating, changing and deleting alert.write (editor, write scope). */
export function registerMaintenanceWindowRoutes(registry: ApiRegistry, windows: MaintenanceWindowsService): void {
  registry.route({
    method: 'get',
    path: '/organizations/{org}/maintenance-windows',
    operationId: 'listMaintenanceWindows',
    summary: 'List recurring maintenance windows, by name, each saying whether it is open now',
    tags: TAGS,
    auth: 'any',
    permission: 'alert.read',
    params: OrgParams,
    query: PageQuerySchema,
    responses: { 200: { description: 'A page of windows.', schema: pageOf(MaintenanceWindowSchema) }, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND },
    handler: async (ctx, { params, query }) => {
      ctx.body = await windows.list(actorOf(ctx), params.org, query);
    },
  });

  registry.route({
    method: 'post',
    path: '/organizations/{org}/maintenance-windows',
    operationId: 'createMaintenanceWindow',
    summary: 'Create a recurring maintenance window: while open, the alerts it matches are not notified',
    tags: TAGS,
    auth: 'any',
    permission: 'alert.write',
    params: OrgParams,
    body: CreateMaintenanceWindowBody,
    responses: { 201: { description: 'The window.', schema: MaintenanceWindowSchema }, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND, 409: TAKEN },
    handler: async (ctx, { params, body }) => {
      ctx.status = 201;
      ctx.body = await windows.create(actorOf(ctx), params.org, body, metaOf(ctx));
    },
  });

  registry.route({
    method: 'get',
    path: '/organizations/{org}/maintenance-windows/{id}',
    operationId: 'getMaintenanceWindow',
    summary: 'One maintenance window',
    tags: TAGS,
    auth: 'any',
    permission: 'alert.read',
    params: WindowParams,
    responses: { 200: { description: 'The window.', schema: MaintenanceWindowSchema }, 403: FORBIDDEN, 404: NOT_FOUND },
    handler: async (ctx, { params }) => {
      ctx.body = await windows.get(actorOf(ctx), params.org, params.id);
    },
  });

  registry.route({
    method: 'patch',
    path: '/organizations/{org}/maintenance-windows/{id}',
    operationId: 'updateMaintenanceWindow',
    summary: 'Change a maintenance window',
    tags: TAGS,
    auth: 'any',
    permission: 'alert.write',
    params: WindowParams,
    body: UpdateMaintenanceWindowBody,
    responses: { 200: { description: 'The window.', schema: MaintenanceWindowSchema }, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND, 409: TAKEN },
    handler: async (ctx, { params, body }) => {
      ctx.body = await windows.update(actorOf(ctx), params.org, params.id, body, metaOf(ctx));
    },
  });

  registry.route({
    method: 'delete',
    path: '/organizations/{org}/maintenance-windows/{id}',
    operationId: 'deleteMaintenanceWindow',
    summary: 'Delete a maintenance window',
    tags: TAGS,
    auth: 'any',
    permission: 'alert.write',
    params: WindowParams,
    responses: { 204: { description: 'Deleted.' }, 403: FORBIDDEN, 404: NOT_FOUND },
    handler: async (ctx, { params }) => {
      await windows.delete(actorOf(ctx), params.org, params.id, metaOf(ctx));
      ctx.status = 204;
    },
  });
}
