// One run, start to end (docs/architecture.md#run-lifecycle): record it, create its sandbox, place the uploads, run the
// agent, send the artifacts, destroy every sandbox, then send exactly one terminal event and close the row.
// Whatever stops it (model error, sandbox loss, timeout, disconnect, shutdown) goes through the same
// `finally`, so no path can skip the destroy.
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { RunAbort, raceAbort } from './abort.ts';
import { runAgent, type AgentResult } from './agent.ts';
import { collectArtifacts, takeBaseline } from './artifacts.ts';
import { scheduleCallback } from './callbacks.ts';
import { compositeTools } from './composite.ts';
import { Deadline } from './deadline.ts';
import type { Config } from './config.ts';
import type { RunManager } from './inflight.ts';
import { log } from './log.ts';
import type { Metrics } from './metrics.ts';
import type { MemoryBudget, MemoryReservation } from './memory-budget.ts';
import { ModelError, emptyUsage, type Usage } from './model.ts';
import type { RunPlan } from './plan.ts';
import { SandboxPool } from './pool.ts';
import { costOf, findPrice } from './pricing.ts';
import type { Registry } from './registry.ts';
import { RunResults } from './results.ts';
import { SandboxError, WORKSPACE, type SandboxProviderName } from './sandbox.ts';
import { EventStream, type StreamEvent } from './sse.ts';
import type { RunEnd, RunStatus, RunStore } from './store.ts';
import { apiError } from './http.ts';
import { BASE_TOOLS, type ToolContext, type ToolDef } from './tools.ts';

export interface AppContext {
  config: Config;
  store: RunStore;
  registry: Registry;
  runs: RunManager;
  metrics: Metrics;
  memory: MemoryBudget;
}

export const newRunId = () => `run_${randomBytes(12).toString('base64url')}`;

interface Terminal {
  status: RunStatus;
  event?: StreamEvent;
  errorCode: string | null;
  error: string | null;
}

/** Maps whatever ended a run to its terminal event and row status. */
function failure(err: unknown, runId: string): Terminal {
  const make = (code: string, content: string, hint?: string): Terminal => ({
    status: 'error',
    event: { type: 'error', code, content, ...(hint ? { hint } : {}) },
    errorCode: code,
    error: content,
  });
  if (err instanceof RunAbort) {
    if (err.code === 'CANCELLED') return { status: 'cancelled', errorCode: null, error: err.message };
    return make(err.code, err.message, err.code === 'TIMEOUT' ? 'raise `timeout` (up to 3600 seconds) or ask for less work' : undefined);
  }
  if (err instanceof SandboxError) {
    const code = err.code === 'SANDBOX_LOST' ? 'SANDBOX_LOST' : 'SANDBOX_ERROR';
    return make(code, err.message, err.hint);
  }
  if (err instanceof ModelError) return make('MODEL_ERROR', err.message, err.hint);
  log.error('run failed unexpectedly', { runId, error: err, stack: (err as Error)?.stack });
  return make('INTERNAL', 'internal error; see the server log for this run id');
}

/** Runs a store write; a failure is logged and reported as false, never thrown into the run. */
function storeSafely(runId: string, what: string, write: () => void): boolean {
  try {
    write();
    return true;
  } catch (err) {
    log.error(`could not ${what}`, { runId, error: err });
    return false;
  }
}

const FINISH_RETRY_MS = [1000, 5000, 30_000];

function retryFinish(app: AppContext, runId: string, end: RunEnd, completedAt: string, attempt = 0): void {
  const delay = FINISH_RETRY_MS[attempt];
  if (delay === undefined) return void log.error('gave up closing the run row; the next start marks it INTERRUPTED', { runId });
  setTimeout(() => {
    if (!storeSafely(runId, 'close the run row (retry)', () => app.store.finish(runId, end, completedAt))) retryFinish(app, runId, end, completedAt, attempt + 1);
  }, delay).unref();
}

/** Starts a run in the background and returns its SSE response at once. */
export function startRun(app: AppContext, plan: RunPlan, sandboxProvider: SandboxProviderName, requestId?: string, memory?: MemoryReservation): Response {
  const runId = newRunId();
  const started = Date.now();
  const controller = new AbortController();
  const signal = controller.signal;
  const stream = new EventStream(() => controller.abort(new RunAbort('CANCELLED', 'the client disconnected')));
  const sandboxIds = new Set<string>();

  try {
    app.store.insert({ id: runId, prompt: plan.prompt, model: plan.model, provider: plan.provider, sandboxProvider, startedAt: new Date(started).toISOString() });
  } catch (err) {
    // Nothing was created yet: refuse the run rather than run it unrecorded.
    log.error('could not record the run', { runId, error: err });
    stream.close();
    memory?.release();
    return apiError(503, 'STORAGE_ERROR', 'the run could not be recorded in the database', {
      hint: 'check that the disk holding SANDCASTER_DB has space and that no other program holds a lock on it',
      headers: { 'retry-after': '5' },
    });
  }
  log.info('run started', { runId, model: plan.model, provider: plan.provider, sandboxProvider, requestId });
  app.metrics.runStarted(plan.provider, sandboxProvider);
  stream.send({ type: 'system', subtype: 'run_started', content: `run ${runId} started`, runId, model: plan.model, provider: plan.provider, sandboxProvider });

  const done = execute().catch((err) => {
    log.error('run cleanup failed', { runId, error: err, stack: (err as Error)?.stack });
    // Whatever failed, the stream still gets exactly one terminal event (no-op if it already has one).
    stream.end({ type: 'error', code: 'INTERNAL', content: 'internal error; see the server log for this run id' });
  });
  app.runs.add({ id: runId, controller, sandboxIds, done });

  async function execute(): Promise<void> {
    const usage: Usage = emptyUsage();
    let numTurns = 0;
    let filesCount = 0;
    const price = findPrice(plan.model, app.config.pricing);
    const deadline = new Deadline(plan.timeout * 1000, () => controller.abort(new RunAbort('TIMEOUT', `the run exceeded its timeout of ${plan.timeout} seconds`)));
    const kept = new RunResults(Boolean(plan.outputFormat));
    const emit = (e: StreamEvent) => void stream.send(kept.see(e));
    const pool = new SandboxPool({
      runId,
      instanceId: app.store.instanceId,
      timeoutSecs: plan.timeout,
      signal,
      provider: (name) => app.registry.sandboxProvider(name),
      emit,
      onCreated: (sandboxId, primaryId, count) => {
        sandboxIds.add(sandboxId); // so a webhook `killed` event for any of them finds this run
        storeSafely(runId, 'record the sandbox', () => app.store.setSandbox(runId, primaryId, count));
      },
      composite: plan.composite,
      metrics: app.metrics,
      memory: app.memory,
      mainReservation: memory,
      pauseTimeout: () => deadline.pause(), // an image pull has its own bound, apart from the run's timeout
    });

    for (const w of plan.warnings) emit({ type: 'warning', ...w });
    if (!price) emit({ type: 'warning', code: 'UNKNOWN_PRICE', content: `no price is known for model ${plan.model}; costUsd will be null (add it under "pricing" in sandcaster.json)` });

    let terminal: Terminal;
    try {
      const client = await app.registry.modelClient(plan.provider);
      let thinkingLevel = plan.thinkingLevel;
      if (thinkingLevel !== 'none' && !client.supportsThinking(plan.model)) {
        emit({ type: 'warning', code: 'THINKING_UNSUPPORTED', content: `model ${plan.model} has no thinking setting; thinkingLevel ${thinkingLevel} is ignored` });
        thinkingLevel = 'none';
      }
      const result = await raceAbort(
        (async (): Promise<AgentResult> => {
          const main = await pool.createMain(sandboxProvider);
          const uploads = plan.files.map((f) => ({ path: posix.join(WORKSPACE, f.path), data: f.bytes }));
          if (main.place) await main.place(uploads, { signal });
          else for (const u of uploads) await main.writeFile(u.path, u.data, { signal });
          const baseline = await takeBaseline(main);
          const ctx: ToolContext = {
            sandbox: (name) => pool.get(name),
            remainingMs: () => deadline.remainingMs(),
            signal,
          };
          const tools: ToolDef[] = plan.toolNames.flatMap((n) => (n in BASE_TOOLS ? [BASE_TOOLS[n as keyof typeof BASE_TOOLS]] : []));
          if (plan.composite) {
            tools.push(...compositeTools(pool, plan.composite, sandboxProvider).filter((t) => plan.toolNames.includes(t.spec.name)));
          }
          const agentResult = await runAgent({
            runId,
            client,
            model: plan.model,
            system: plan.system,
            prompt: plan.prompt,
            tools,
            maxTurns: plan.maxTurns,
            thinkingLevel,
            outputFormat: plan.outputFormat,
            ctx,
            emit,
            onUsage: (u, turns) => {
              Object.assign(usage, u);
              numTurns = turns;
            },
          });
          const artifacts = await collectArtifacts(main, baseline, plan.files, signal);
          for (const e of artifacts.events) emit(e);
          filesCount = artifacts.events.length;
          if (artifacts.leftOut.length) emit({ type: 'warning', code: 'ARTIFACTS_LEFT_OUT', content: `files left out: ${artifacts.leftOut.join('; ')}` });
          return agentResult;
        })(),
        signal,
      );
      const costUsd = price ? costOf(usage, price) : null;
      terminal = {
        status: 'completed',
        errorCode: null,
        error: null,
        event: {
          type: 'result',
          subtype: result.subtype,
          content: result.content,
          ...(plan.outputFormat && result.subtype === 'success' ? { structuredOutput: result.structuredOutput } : {}),
          runId,
          model: plan.model,
          numTurns,
          ...usage,
          costUsd,
          durationSecs: 0,
        },
      };
    } catch (err) {
      terminal = failure(signal.aborted && !(err instanceof RunAbort) ? signal.reason : err, runId);
    } finally {
      deadline.stop();
    }
    // Stop anything still running in the sandboxes (tool calls racing the abort) before destroying them.
    if (!signal.aborted) controller.abort(new RunAbort('CANCELLED', 'the run ended'));
    await pool.destroyAll();

    const durationSecs = Math.round((Date.now() - started) / 10) / 100;
    if (terminal.event?.type === 'result') terminal.event.durationSecs = durationSecs;
    const costUsd = price ? costOf(usage, price) : null;
    const end = { status: terminal.status, errorCode: terminal.errorCode, error: terminal.error, costUsd, ...usage, numTurns, durationSecs, filesCount, sandboxCount: pool.createdCount };
    await kept.save(app.store, runId, terminal.event); // before the row closes: a finished run's record is whole
    const completedAt = new Date().toISOString();
    // A storage failure must not cost the client its terminal event: the row is retried in the background,
    // and if every try fails the next start closes it as INTERRUPTED.
    if (!storeSafely(runId, 'close the run row', () => app.store.finish(runId, end, completedAt))) retryFinish(app, runId, end, completedAt);
    if (plan.callbackUrl) scheduleCallback(app.config.callbacks, app.store, runId, plan.callbackUrl);
    log.info('run ended', { runId, status: terminal.status, errorCode: terminal.errorCode ?? undefined, numTurns, ...usage, costUsd, durationSecs, sandboxCount: pool.createdCount });
    app.metrics.runEnded({ status: terminal.status, errorCode: terminal.errorCode, durationSecs, model: plan.model, usage, costUsd });
    if (terminal.event) stream.end(terminal.event);
    else stream.close();
  }

  return new Response(stream.body, {
    status: 200,
    headers: {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
      'x-run-id': runId,
    },
  });
}
