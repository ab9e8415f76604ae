// GET /health: liveness and readiness; never needs auth.
import type { AppContext } from '../lib/app-context.ts';
import { json } from '../lib/http.ts';
import { VERSION } from '../lib/version.ts';

export function health(_req: Request, app: AppContext): Response {
  if (app.runs.draining) return json(503, { status: 'draining', version: VERSION, runsInFlight: app.runs.size });
  // Images listed in docker.prepull, each pending, done or failed; absent when none are listed.
  const prepull = Object.assign({}, ...app.registry.loadedSandboxProviders().map((p) => p.prepullState?.() ?? {}));
  return json(200, { status: 'ok', version: VERSION, ...(Object.keys(prepull).length ? { prepull } : {}) });
}
