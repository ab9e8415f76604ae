// The HTTP API as one itty-router table; its hooks hold everything around the routes (docs/api.md#routes).
//
// Answers before a handler runs, in this order (the first that applies wins):
//   400 MALFORMED_REQUEST / 501  what the edge refused (target, percent-encoding, Host, header values)
//   204                          a CORS preflight from an allowed origin (it carries no credentials)
//   401 UNAUTHORIZED             a key is set and the bearer is wrong; every path but /health and /webhooks/e2b
//   403 FORBIDDEN_ORIGIN         no key is set and the request is browser-borne from a foreign origin or host
//                                name. It stands in for the key, so it covers the same paths and can never
//                                meet a 401: with a key set it does not apply.
//   404 NOT_FOUND, 405 METHOD_NOT_ALLOWED (with Allow)   from the same table, after no route answered
// then the handlers' own 413, 415, 400, 503, 429. A thrown error is a logged 500 INTERNAL, never a crash.
// Every response carries X-Sandcaster-Instance, and each request gets one log line.
import { Router } from 'itty-router';
import { bearerMatches, refuseBrowser } from '../lib/auth.ts';
import { BodyLimitError, bodyFailure } from '../lib/body.ts';
import { apiError } from '../lib/http.ts';
import { log } from '../lib/log.ts';
import type { EdgeRequest } from '../lib/node-http.ts';
import type { AppContext } from '../lib/app-context.ts';
import { health } from './health.ts';
import { metrics } from './metrics.ts';
import { query } from './query.ts';
import { cancelRun, runEvents } from './run-events.ts';
import { openapi } from './openapi.ts';
import { getRun, getRunFile, listRuns } from './runs.ts';
import { UI_PATHS, uiAsset } from './ui.ts';
import { e2bWebhook } from './webhooks.ts';

/**
 * Paths with their own check instead of the bearer key (and so without the browser guard). The dashboard's
 * files are static and hold no data; the page asks for the key and sends it on its API calls.
 */
const PUBLIC = new Set(['/health', '/webhooks/e2b', ...UI_PATHS]);

/** What handlers receive: the edge's Request plus itty's `params` (percent-decoded here) and `query`. */
export type ApiRequest = EdgeRequest & { params: Record<string, string>; query: Record<string, string | string[] | undefined>; startedAt: number };

export type Handler = (req: EdgeRequest) => Promise<Response>;

const pathOf = (req: Request) => new URL(req.url).pathname;

export function createHandler(app: AppContext): Handler {
  const { config } = app;

  const refusedAtEdge = (req: ApiRequest) => {
    req.startedAt = performance.now();
    const e = req.edge.error;
    // The connection is closed after a malformed request: what follows it on the socket cannot be trusted.
    return e ? apiError(e.status, e.code, e.message, { hint: e.hint, headers: { connection: 'close' } }) : undefined;
  };

  const preflight = (req: ApiRequest) => {
    const origin = req.headers.get('origin');
    if (req.method === 'OPTIONS' && origin && config.corsOrigins.includes(origin)) return new Response(null, { status: 204, headers: corsHeaders(origin) });
  };

  const requireKey = (req: ApiRequest) => {
    if (!config.apiKey || PUBLIC.has(pathOf(req)) || bearerMatches(req.headers.get('authorization'), config.apiKey)) return;
    return apiError(401, 'UNAUTHORIZED', 'missing or invalid API key', {
      hint: 'send Authorization: Bearer <SANDCASTER_API_KEY>',
      headers: { 'www-authenticate': 'Bearer realm="sandcaster"' },
    });
  };

  const guardOpenApi = (req: ApiRequest) => {
    if (config.apiKey || PUBLIC.has(pathOf(req))) return;
    const refusal = refuseBrowser(req.headers, config);
    if (refusal) return apiError(403, 'FORBIDDEN_ORIGIN', refusal.message, { hint: refusal.hint });
  };

  /** Route params arrive percent-encoded; handlers get them decoded (the edge has already checked the encoding). */
  const decodeParams = (req: ApiRequest) => {
    try {
      for (const [k, v] of Object.entries(req.params)) req.params[k] = decodeURIComponent(v);
    } catch {
      return apiError(400, 'MALFORMED_REQUEST', `the path ${JSON.stringify(pathOf(req))} has malformed percent-encoding`);
    }
  };

  const router = Router<ApiRequest, [AppContext]>({
    before: [refusedAtEdge, preflight, requireKey, guardOpenApi],
    catch: (err, req) => {
      // A body that broke its limits while a handler read it is the client's error, not ours.
      if (err instanceof BodyLimitError) return bodyFailure(err);
      log.error('request failed', { method: req.method, path: pathOf(req), error: err, stack: (err as Error)?.stack });
      return apiError(500, 'INTERNAL', 'internal error; see the server log');
    },
    finally: [(res: Response | undefined, req: ApiRequest) => res ?? noRoute(req), decorate, logRequest],
  });

  /** One row of the table; GET routes answer HEAD too (the adapter then sends the headers only). */
  const route = (methods: ('GET' | 'HEAD' | 'POST')[], path: string, handler: (req: ApiRequest, app: AppContext) => Response | Promise<Response>) => {
    for (const method of methods) router[method.toLowerCase()](path, decodeParams, handler);
  };
  route(['GET', 'HEAD'], '/health', health);
  route(['GET', 'HEAD'], '/metrics', metrics);
  route(['POST'], '/query', query);
  route(['GET', 'HEAD'], '/runs', listRuns);
  route(['GET', 'HEAD'], '/runs/:id', getRun);
  route(['GET', 'HEAD'], '/runs/:id/events', runEvents);
  route(['POST'], '/runs/:id/cancel', cancelRun);
  route(['GET', 'HEAD'], '/runs/:id/files/:path+', getRunFile);
  route(['POST'], '/webhooks/e2b', e2bWebhook);
  route(['GET', 'HEAD'], '/openapi.json', openapi(() => router.routes));
  route(['GET', 'HEAD'], '/', uiAsset);
  route(['GET', 'HEAD'], '/ui/:file', uiAsset);

  /** 404, or 405 with Allow when the path is in the table under other methods. */
  function noRoute(req: ApiRequest): Response {
    const path = pathOf(req);
    const allow = [...new Set(router.routes.filter(([, re]) => re.test(path)).map(([method]) => method))];
    if (allow.length === 0) return apiError(404, 'NOT_FOUND', `no route for ${req.method} ${path.slice(0, 200)}`);
    return apiError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${path.slice(0, 200)}; use ${allow.filter((m) => m !== 'HEAD').join(', ')}`, {
      headers: { allow: allow.join(', ') },
    });
  }

  /** Headers every response carries. Never throws (a throwing `finally` step would skip the log line). */
  function decorate(response: Response, req: ApiRequest): Response {
    const origin = req.headers.get('origin');
    const extra = { 'x-sandcaster-instance': app.store.instanceId, ...(origin && config.corsOrigins.includes(origin) ? corsHeaders(origin) : {}) };
    const set = (res: Response) => {
      for (const [k, v] of Object.entries(extra)) res.headers.set(k, v);
      return res;
    };
    try {
      return set(response);
    } catch {
      return set(new Response(response.body, response)); // a Response with immutable headers: copy it
    }
  }

  function logRequest(res: Response, req: ApiRequest): void {
    const fields = {
      method: req.edge.method,
      path: req.edge.error ? undefined : pathOf(req),
      target: req.edge.error ? req.edge.target.slice(0, 200) : undefined,
      status: res.status,
      durationMs: Math.round((performance.now() - req.startedAt) * 10) / 10,
      requestId: req.headers.get('x-request-id')?.slice(0, 200) ?? undefined,
      runId: res.headers.get('x-run-id') ?? undefined,
    };
    // Bounded label set: the route pattern, never the raw path.
    const matched = fields.path ? router.routes.find(([, re]) => re.test(fields.path!)) : undefined;
    app.metrics.httpRequest(matched ? matched[3] || '/' : 'unmatched', res.status); // itty keeps the root's path as ''
    if ((fields.path === '/health' || fields.path === '/metrics') && res.status < 400) log.debug('request', fields);
    else log.info('request', fields);
  }

  return (req) => router.fetch(req, app) as Promise<Response>;
}

function corsHeaders(origin: string): Record<string, string> {
  return {
    'access-control-allow-origin': origin,
    'access-control-allow-methods': 'GET, POST, OPTIONS',
    'access-control-allow-headers': 'authorization, content-type, x-request-id, last-event-id',
    'access-control-expose-headers': 'x-run-id, x-sandcaster-instance',
    'access-control-max-age': '600',
    vary: 'Origin',
  };
}
