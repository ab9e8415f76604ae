// GET /health: liveness and readiness; never needs auth.
import type { AppContext } from '../lib/app-context.ts';
import { json } from '../lib/http.ts';
import { VERSION } from '../lib/version.ts';

export function health(_req: Request, app: AppContext): Response {
  if (app.runs.draining) return json(503, { status: 'draining', version: VERSION, runsInFlight: app.runs.size });
  const providers = app.registry.loadedSandboxProviders();
  // Images listed in docker.prepull, each pending, done or failed; absent when none are listed.
  const prepull = Object.assign({}, ...providers.map((p) => p.prepullState?.() ?? {}));
  // Warm pools by backend, size and sandboxes ready now; absent when no backend keeps one.
  const warmPool: Record<string, { size: number; ready: number }> = {};
  for (const p of providers) {
    const state = p.warmPoolState?.();
    if (state?.size) warmPool[p.name] = state;
  }
  return json(200, {
    status: 'ok',
    version: VERSION,
    ...(Object.keys(prepull).length ? { prepull } : {}),
    ...(Object.keys(warmPool).length ? { warmPool } : {}),
  });
}
