// The HTTP API as an OpenAPI 3.1 document (docs/api.md is the prose; docs/api.md#openapi-document).
// The POST /query body schema is generated from the valibot schema the server validates with
// (lib/request.ts), so the two cannot drift; paths, responses and event shapes are written here. An
// operation is included only when the router serves it, so the document never lists a route this server
// does not have; tests/openapi.test.ts checks that every registered route has its operation here.
//
// This file assembles the document; body.ts is the generated body schema, paths.ts the operations,
// schemas.ts the components, parts.ts the builders they share.
import { VERSION } from '../version.ts';
import { queryBodySchema, type SchemaOptions } from './body.ts';
import { errorResponse, str, type Json } from './parts.ts';
import { operations } from './paths.ts';
import { callbackWebhooks, schemas } from './schemas.ts';

export { queryBodySchema, type SchemaOptions };

/** A route as the router holds it: method and itty path (`/runs/:id`, `/runs/:id/files/*`). */
export interface RegisteredRoute {
  method: string;
  path: string;
}

/** `/runs/:id/files/*` and `/runs/:id/files/:path+` -> `/runs/{id}/files/{path}`. */
export function openApiPath(ittyPath: string): string {
  if (ittyPath === '') return '/'; // itty keeps the root route's path as ''
  return ittyPath.replace(/:(\w+)\+?/g, '{$1}').replace(/\/\*$/, '/{path}');
}

/**
 * The document for the routes the router has. `undocumented` lists registered routes without an operation
 * here (HEAD is covered by GET).
 *
 * @example Usage
 * ```ts
 * import { buildOpenApi } from './index.ts';
 * const { document, undocumented } = buildOpenApi([{ method: 'GET', path: '/health' }]);
 * console.log(Object.keys(document.paths as object), undocumented); // [ '/health' ] []
 * ```
 */
export function buildOpenApi(routes: readonly RegisteredRoute[], opts: SchemaOptions = {}): { document: Json; undocumented: RegisteredRoute[] } {
  const wanted = new Map<string, RegisteredRoute>();
  for (const r of routes) {
    const method = r.method.toLowerCase();
    if (method === 'head' || method === 'options' || method === 'all') continue;
    wanted.set(`${method} ${openApiPath(r.path)}`, r);
  }
  const paths: Record<string, Json> = {};
  for (const op of operations()) {
    const key = `${op.method} ${op.path}`;
    if (!wanted.has(key)) continue;
    wanted.delete(key);
    (paths[op.path] ??= {})[op.method] = op.operation;
  }
  const webhooks = callbackWebhooks();
  const document: Json = {
    openapi: '3.1.1',
    info: {
      title: 'Sandcaster',
      version: VERSION,
      summary: 'Runs AI agents in isolated sandboxes and streams every step as Server-Sent Events.',
      description:
        'Every response carries X-Sandcaster-Instance. Errors share one shape (components.schemas.Error; codes in docs/api.md#error-codes). ' +
        'With SANDCASTER_API_KEY unset the API is open and bearerAuth is not required.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    security: [{ bearerAuth: [] }],
    paths,
    ...(webhooks ? { webhooks } : {}),
    components: {
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'SANDCASTER_API_KEY, compared in constant time.' } },
      schemas: schemas(opts),
      responses: {
        InvalidRequest: errorResponse('INVALID_REQUEST: bad JSON or a field breaking the rules; `details` lists each field path and why.'),
        Unauthorized: errorResponse('UNAUTHORIZED: missing or wrong bearer key.', { 'WWW-Authenticate': { schema: { type: 'string', const: 'Bearer realm="sandcaster"' } } }),
        ForbiddenOrigin: errorResponse('FORBIDDEN_ORIGIN: the API is open (no key) and the request came from a foreign Origin or Host; the hint names SANDCASTER_CORS_ORIGINS or SANDCASTER_ALLOWED_HOSTS.'),
        NotFound: errorResponse('NOT_FOUND: no such run (or file) on this instance.'),
      },
      headers: {
        XRunId: { description: 'The run id.', schema: str },
        RetryAfter: { description: 'Seconds to wait before retrying.', schema: { type: 'integer' } },
        Location: { description: 'The run: /runs/<id>.', schema: str },
      },
    },
  };
  return { document, undocumented: [...wanted.values()] };
}
