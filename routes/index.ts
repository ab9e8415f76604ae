// The HTTP API: auth, CORS, routing, 404/405, and one log line per request (SPEC section 3).
import { Router } from 'itty-router';
import { bearerMatches } from '../lib/auth.ts';
import { apiError } from '../lib/http.ts';
import { log } from '../lib/log.ts';
import type { AppContext } from '../lib/run.ts';
import { health } from './health.ts';
import { query } from './query.ts';
import { cancelRun, runEvents } from './run-events.ts';
import { getRun, listRuns } from './runs.ts';
import { e2bWebhook } from './webhooks.ts';

const PUBLIC = new Set(['/health', '/webhooks/e2b']);

/** Paths and the methods they answer; anything else on a known path is 405. */
const ROUTES: [RegExp, string[]][] = [
  [/^\/health$/, ['GET', 'HEAD']],
  [/^\/query$/, ['POST']],
  [/^\/runs$/, ['GET', 'HEAD']],
  [/^\/runs\/[^/]+$/, ['GET', 'HEAD']],
  [/^\/runs\/[^/]+\/events$/, ['GET', 'HEAD']],
  [/^\/runs\/[^/]+\/cancel$/, ['POST']],
  [/^\/webhooks\/e2b$/, ['POST']],
];

export type Handler = (req: Request) => Promise<Response>;

export function createHandler(app: AppContext): Handler {
  const router = Router<Request & { params?: Record<string, string> }, [AppContext]>();
  router
    .get('/health', health)
    .post('/query', query)
    .get('/runs', listRuns)
    .get('/runs/:id', getRun)
    .get('/runs/:id/events', runEvents)
    .post('/runs/:id/cancel', cancelRun)
    .post('/webhooks/e2b', e2bWebhook);

  async function route(req: Request, path: string): Promise<Response> {
    if (!PUBLIC.has(path) && app.config.apiKey && !bearerMatches(req.headers.get('authorization'), app.config.apiKey)) {
      return apiError(401, 'UNAUTHORIZED', 'missing or invalid API key', {
        hint: 'send Authorization: Bearer <SANDCASTER_API_KEY>',
        headers: { 'www-authenticate': 'Bearer realm="sandcaster"' },
      });
    }
    const known = ROUTES.find(([re]) => re.test(path));
    if (!known) return apiError(404, 'NOT_FOUND', `no route for ${req.method} ${path}`);
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    if (!known[1].includes(method)) {
      return apiError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${path}; use ${known[1].filter((m) => m !== 'HEAD').join(', ')}`, {
        headers: { allow: known[1].join(', ') },
      });
    }
    const forRouter = req.method === 'HEAD' ? new Request(req.url, { method: 'GET', headers: req.headers }) : req;
    return (await router.fetch(forRouter, app)) ?? apiError(404, 'NOT_FOUND', `no route for ${req.method} ${path}`);
  }

  return async (req) => {
    const started = performance.now();
    const path = new URL(req.url).pathname;
    const origin = req.headers.get('origin');
    const cors = origin && app.config.corsOrigins.includes(origin) ? corsHeaders(origin) : undefined;
    let res: Response;
    if (cors && req.method === 'OPTIONS') res = new Response(null, { status: 204, headers: cors });
    else {
      try {
        res = await route(req, path);
      } catch (err) {
        log.error('request failed', { method: req.method, path, error: err, stack: (err as Error)?.stack });
        res = apiError(500, 'INTERNAL', 'internal error');
      }
      if (cors) for (const [k, v] of Object.entries(cors)) res.headers.set(k, v);
    }
    const fields = {
      method: req.method,
      path,
      status: res.status,
      durationMs: Math.round((performance.now() - started) * 10) / 10,
      requestId: req.headers.get('x-request-id') ?? undefined,
      runId: res.headers.get('x-run-id') ?? undefined,
    };
    if (path === '/health') log.debug('request', fields);
    else log.info('request', fields);
    return res;
  };
}

function corsHeaders(origin: string): Record<string, string> {
  return {
    'access-control-allow-origin': origin,
    'access-control-allow-methods': 'GET, POST, OPTIONS',
    'access-control-allow-headers': 'authorization, content-type, x-request-id',
    'access-control-expose-headers': 'x-run-id',
    'access-control-max-age': '600',
    vary: 'Origin',
  };
}
