// GET /runs/:id/events (a run's stored events, then the live ones while it runs here) and
// POST /runs/:id/cancel. Readers never affect the run: a reader that goes away is simply forgotten.
import { RunAbort } from '../lib/abort.ts';
import { apiError, invalid, json } from '../lib/http.ts';
import type { AppContext } from '../lib/app-context.ts';
import { instanceOfRunId } from '../lib/run-id.ts';
import { EventStream } from '../lib/sse.ts';
import { sseResponse } from './sse.ts';

type RunRequest = Request & { params?: Record<string, string> };

/** 404 for a run this instance does not hold; the hint names the instance that does, when the id says. */
export function runNotFound(app: AppContext, id: string): Response {
  const shown = JSON.stringify(id.slice(0, 200));
  const owner = instanceOfRunId(id);
  if (owner && owner !== app.store.instanceId) {
    return apiError(404, 'NOT_FOUND', `no run with id ${shown} on this instance (${app.store.instanceId})`, {
      hint: `this run belongs to instance ${owner}: send requests for /runs/${id}/… to that instance (route on the id, see README "Reattach, detach and cancel")`,
    });
  }
  return apiError(404, 'NOT_FOUND', `no run with id ${shown} on this instance`);
}

const CURSOR = /^\d{1,15}$/; // up to 15 digits: a whole number that stays exact as a JS number

/** The cursor: the Last-Event-ID header, else ?after=N, else 0 (everything). */
function cursorOf(req: Request): number | Response {
  const header = req.headers.get('last-event-id');
  const after = header === null ? new URL(req.url).searchParams.get('after') : null;
  const [raw, field] = header !== null ? [header, 'Last-Event-ID'] : after !== null ? [after, 'after'] : ['0', 'after'];
  if (!CURSOR.test(raw)) return invalid([{ path: field, message: `must be a whole number >= 0 (the id of the last event seen), got ${JSON.stringify(raw.slice(0, 40))}` }]);
  return Number(raw);
}

export function runEvents(req: RunRequest, app: AppContext): Response {
  const id = req.params?.id ?? '';
  const run = app.store.get(id);
  if (!run) return runNotFound(app, id);
  const cursor = cursorOf(req);
  if (cursor instanceof Response) return cursor;
  if (app.store.eventsExpired(id)) {
    return apiError(410, 'EVENTS_EXPIRED', `the events of run ${id} were removed by retention; the run record is still at /runs/${id}`, {
      hint: 'raise SANDCASTER_RETENTION_DAYS or SANDCASTER_RETENTION_MB to keep events longer',
    });
  }
  // A reader that goes away, or is dropped for not reading (the HTTP adapter logs that), is simply forgotten.
  return sseResponse(id, new EventStream(app.events.subscribe(id, cursor)));
}

export function cancelRun(req: RunRequest, app: AppContext): Response {
  const id = req.params?.id ?? '';
  const active = app.runs.get(id);
  if (active) {
    if (!active.controller.signal.aborted) active.controller.abort(new RunAbort('CANCELLED', 'the run was cancelled (POST /runs/:id/cancel)'));
    return json(202, { runId: id, status: 'cancelling' });
  }
  const run = app.store.get(id);
  if (!run) return runNotFound(app, id);
  return apiError(409, 'ALREADY_FINISHED', `run ${id} has already finished with status ${run.status}${run.errorCode ? ` (${run.errorCode})` : ''}`, {
    hint: `its record is at /runs/${id} and its events at /runs/${id}/events`,
  });
}
