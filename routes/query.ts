// POST /query: validate, resolve against the configuration, admit, start the run, and stream its events
// (or, with `detach: true`, answer 202 with where to find them).
import { apiError, invalid, json } from '../lib/http.ts';
import { readJson } from '../lib/body.ts';
import { isPlanError, planRun } from '../lib/plan.ts';
import { parseQuery } from '../lib/request.ts';
import type { AppContext } from '../lib/app-context.ts';
import { startRun } from '../lib/run.ts';
import { checkOutputFormat } from '../lib/schema-thread.ts';
import { EventStream } from '../lib/sse.ts';
import { sseResponse } from './sse.ts';

export const RETRY_AFTER_SECONDS = 5;

export async function query(req: Request, app: AppContext): Promise<Response> {
  const body = await readJson(req);
  if (!body.ok) return body.response;
  const parsed = parseQuery(body.value);
  if (!parsed.ok) return invalid(parsed.issues);
  // Compiled now (off the event loop), so a pattern RE2 cannot run is a 400 here, not a failure at run end.
  const schemaIssues = parsed.value.outputFormat ? await checkOutputFormat(parsed.value.outputFormat) : [];
  if (schemaIssues.length) return invalid(schemaIssues);
  const plan = planRun(parsed.value, app.config);
  if (isPlanError(plan) && plan.status === 400) return invalid(plan.details);
  if (app.runs.draining) return apiError(503, 'DRAINING', 'the server is shutting down; retry on another instance', { headers: { 'retry-after': '1' } });
  if (isPlanError(plan)) return apiError(503, plan.code, plan.message, { hint: plan.hint });
  const sandboxProvider = await app.registry.chooseSandboxProvider(parsed.value.sandboxProvider);
  if (!sandboxProvider) {
    const named = parsed.value.sandboxProvider ?? app.config.defaults.sandboxProvider;
    return apiError(503, 'NOT_CONFIGURED', named ? `the ${named} sandbox provider is not usable` : 'no sandbox provider is usable', {
      hint: named ? app.registry.notUsableHint(named) : app.registry.notUsableHint(),
    });
  }
  const provider = await app.registry.sandboxProvider(sandboxProvider).catch(() => undefined);
  const neededMb = provider?.reservedMemoryMb?.() ?? 0;
  // Checked after every await, so admission and registration happen in the same tick.
  if (app.runs.draining) return apiError(503, 'DRAINING', 'the server is shutting down; retry on another instance', { headers: { 'retry-after': '1' } });
  if (app.runs.full) {
    return apiError(429, 'TOO_MANY_RUNS', `this instance is running its maximum of ${app.runs.maxConcurrent} runs`, {
      hint: 'retry after a few seconds, or raise SANDCASTER_MAX_CONCURRENT_RUNS',
      headers: { 'retry-after': String(RETRY_AFTER_SECONDS) },
    });
  }
  const memory = app.memory.tryReserve(neededMb);
  if (!memory) {
    return apiError(429, 'SANDBOX_MEMORY_FULL', `the sandboxes in flight hold ${app.memory.usedMb} of the ${app.memory.limit} MiB this instance may give them; a new sandbox needs ${neededMb} MiB`, {
      hint: 'retry after a few seconds, lower docker.memoryMb / docker.diskMb, or raise SANDCASTER_MAX_SANDBOX_MEMORY_MB',
      headers: { 'retry-after': String(RETRY_AFTER_SECONDS) },
    });
  }
  const started = await startRun(app, plan, sandboxProvider, req.headers.get('x-request-id') ?? undefined, memory);
  if (!started.ok) return apiError(503, started.code, started.message, { hint: started.hint, headers: { 'retry-after': String(RETRY_AFTER_SECONDS) } });
  const { run } = started;
  if (parsed.value.detach) {
    const runUrl = `/runs/${run.id}`;
    return json(202, { runId: run.id, status: 'running', eventsUrl: `${runUrl}/events`, runUrl }, { location: runUrl, 'x-run-id': run.id });
  }
  const cancelOnDisconnect = (parsed.value.onDisconnect ?? 'cancel') === 'cancel';
  // A reader dropped for not reading counts as a disconnect.
  const stream = new EventStream(app.events.subscribe(run.id, 0), (why) => {
    if (cancelOnDisconnect) run.cancel(why === 'slow' ? 'the client stopped reading its stream' : 'the client disconnected');
  });
  return sseResponse(run.id, stream);
}
