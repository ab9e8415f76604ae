// GET /runs and GET /runs/:id: this instance's run history.
import type { AppContext } from '../lib/run.ts';
import { invalid, json } from '../lib/http.ts';
import { RUN_STATUSES, type RunStatus } from '../lib/store.ts';
import { runNotFound } from './run-events.ts';

export function listRuns(req: Request, app: AppContext): Response {
  const q = new URL(req.url).searchParams;
  const rawLimit = q.get('limit');
  let limit = 20;
  if (rawLimit !== null) {
    if (!/^\d+$/.test(rawLimit) || Number(rawLimit) < 1 || Number(rawLimit) > 200) {
      return invalid([{ path: 'limit', message: `must be a whole number from 1 to 200, got ${JSON.stringify(rawLimit)}` }]);
    }
    limit = Number(rawLimit);
  }
  const status = q.get('status');
  if (status !== null && !RUN_STATUSES.includes(status as RunStatus)) {
    return invalid([{ path: 'status', message: `must be one of ${RUN_STATUSES.join(', ')}, got ${JSON.stringify(status)}` }]);
  }
  return json(200, app.store.list(limit, (status as RunStatus | null) ?? undefined));
}

export function getRun(req: Request & { params?: Record<string, string> }, app: AppContext): Response {
  const id = req.params?.id ?? ''; // percent-decoded by the router
  const run = app.store.get(id);
  return run ? json(200, run) : runNotFound(app, id);
}
