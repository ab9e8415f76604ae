// GET /openapi.json: the API as an OpenAPI 3.1 document (docs/api.md#openapi-document), built from the
// router's own table so it lists exactly the routes this server serves.
import { json } from '../lib/http.ts';
import { log } from '../lib/log.ts';
import { buildOpenApi } from '../lib/openapi/index.ts';
import type { AppContext } from '../lib/app-context.ts';

/** What the router holds per route: [method, pattern, handlers, path]. */
type RouteTable = readonly (readonly [method: string, match: RegExp, handlers: unknown, path?: string])[];

/** `routes` is read on the first request, when every route is registered; the document is built once. */
export function openapi(routes: () => RouteTable): (req: Request, app: AppContext) => Response {
  let document: object | undefined;
  return (_req, app) => {
    if (!document) {
      const registered = routes().flatMap(([method, , , path]) => (path === undefined ? [] : [{ method, path }]));
      const built = buildOpenApi(registered, { sandboxProviders: Object.keys(app.config.sandboxProviders) });
      if (built.undocumented.length) log.warn('routes missing from the OpenAPI document', { routes: built.undocumented.map((r) => `${r.method} ${r.path}`) });
      document = built.document;
    }
    return json(200, document);
  };
}
