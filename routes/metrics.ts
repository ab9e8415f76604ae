// GET /metrics: this instance's Prometheus metrics (same auth as the rest of the API).
import type { AppContext } from '../lib/app-context.ts';

export function metrics(_req: Request, app: AppContext): Response {
  const warmPools: Record<string, number> = {};
  for (const p of app.registry.loadedSandboxProviders()) {
    const state = p.warmPoolState?.();
    if (state?.size) warmPools[p.name] = state.ready;
  }
  return new Response(app.metrics.render(warmPools), { status: 200, headers: { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' } });
}
