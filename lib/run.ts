// One run, start to end (docs/architecture.md#run-lifecycle): record it, create its sandbox, place the uploads, run the agent, send the
// artifacts, destroy every sandbox, then end its event log with exactly one terminal event (stored together
// with the row's final update). Whatever stops it (model error, sandbox loss, timeout, cancel, disconnect,
// shutdown, storage failing for too long) goes through the same `finally`, so no path can skip the destroy.
//
// A run produces events into its log (lib/event-log.ts); it never knows who reads them. The routes turn a
// subscription to that log into an HTTP stream, so a run can outlive the connection that started it.
import { posix } from 'node:path';
import { RunAbort, raceAbort } from './abort.ts';
import { runAgent, type AgentResult } from './agent.ts';
import { collectArtifacts, takeBaseline, type Baseline } from './artifacts.ts';
import { scheduleCallback } from './callbacks.ts';
import { compositeTools } from './composite.ts';
import { Deadline } from './deadline.ts';
import type { AppContext } from './app-context.ts';
import { log } from './log.ts';
import type { MemoryReservation } from './memory-budget.ts';
import { ModelError, emptyUsage, type Usage } from './model.ts';
import type { RunPlan } from './plan.ts';
import { SandboxPool } from './pool.ts';
import { costOf, findPrice } from './pricing.ts';
import { RunResults } from './results.ts';
import { newRunId } from './run-id.ts';
import { SandboxError, WORKSPACE, type SandboxProviderName } from './sandbox.ts';
import type { StreamEvent } from './sse.ts';
import type { RunEnd, RunStatus } from './store.ts';
import { BASE_TOOLS, type ToolContext, type ToolDef } from './tools.ts';

interface Terminal {
  status: RunStatus;
  event: StreamEvent;
  errorCode: string | null;
  error: string | null;
}

/** Maps whatever ended a run to its terminal event and row status. */
function failure(err: unknown, runId: string): Terminal {
  const make = (code: string, content: string, hint?: string, status: RunStatus = 'error'): Terminal => ({
    status,
    event: { type: 'error', code, content, ...(hint ? { hint } : {}) },
    errorCode: code,
    error: content,
  });
  if (err instanceof RunAbort) {
    if (err.code === 'CANCELLED') return make('CANCELLED', err.message, undefined, 'cancelled');
    return make(err.code, err.message, ABORT_HINTS[err.code]);
  }
  if (err instanceof SandboxError) {
    const code = err.code === 'SANDBOX_LOST' ? 'SANDBOX_LOST' : 'SANDBOX_ERROR';
    return make(code, err.message, err.hint);
  }
  if (err instanceof ModelError) return make('MODEL_ERROR', err.message, err.hint);
  log.error('run failed unexpectedly', { runId, error: err, stack: (err as Error)?.stack });
  return make('INTERNAL', 'internal error; see the server log for this run id');
}

const ABORT_HINTS: Partial<Record<RunAbort['code'], string>> = {
  TIMEOUT: 'raise `timeout` (up to 3600 seconds) or ask for less work',
  STORAGE_ERROR: 'check that the disk holding SANDCASTER_DB has space and that no other program holds a lock on it',
};

/** The row of a run that ended without doing anything (its work failed before it could report more). */
const bareEnd = (errorCode: string, error: string): RunEnd => ({
  status: 'error', errorCode, error, costUsd: null, inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0,
  numTurns: 0, durationSecs: null, filesCount: 0, sandboxCount: 0,
});

/** A run in flight, as its starter sees it. */
export interface StartedRun {
  id: string;
  /** Ends the run with `error` CANCELLED (row `cancelled`); a no-op once the run is ending anyway. */
  cancel(message: string): void;
}

export type StartResult = { ok: true; run: StartedRun } | { ok: false; code: 'STORAGE_ERROR'; message: string; hint: string };

/**
 * Records a run and starts it in the background; its events go to its log (`app.events`), readable at once
 * with `app.events.subscribe(run.id, 0)`. Fails only when the run cannot be recorded: then nothing was made.
 * The run holds its place in `app.runs` from the call on (the caller admitted it in this same tick).
 */
export async function startRun(app: AppContext, plan: RunPlan, sandboxProvider: SandboxProviderName, requestId?: string, memory?: MemoryReservation): Promise<StartResult> {
  const runId = newRunId(app.store.instanceId);
  const started = Date.now();
  const controller = new AbortController();
  const signal = controller.signal;
  const sandboxIds = new Set<string>();
  let ended!: () => void;
  const done = new Promise<void>((resolve) => (ended = resolve));
  app.runs.add({ id: runId, controller, sandboxIds, done });

  // The row is written by the writer thread, like everything else a run records, so it is never stuck
  // behind another run's large commit on a second connection.
  const error = await app.events.writer.record({
    kind: 'insert',
    run: { id: runId, prompt: plan.prompt, model: plan.model, provider: plan.provider, sandboxProvider, startedAt: new Date(started).toISOString() },
  });
  if (error !== undefined) {
    // Nothing was created yet: refuse the run rather than run it unrecorded.
    log.error('could not record the run', { runId, error });
    memory?.release();
    ended();
    return {
      ok: false,
      code: 'STORAGE_ERROR',
      message: 'the run could not be recorded in the database',
      hint: 'check that the disk holding SANDCASTER_DB has space and that no other program holds a lock on it',
    };
  }
  const abort = (reason: RunAbort) => {
    if (!signal.aborted) controller.abort(reason);
  };
  const events = app.events.open(runId, () => abort(new RunAbort('STORAGE_ERROR', "the database could not store this run's events (it refused them, or could not keep up); the run was stopped so its log stays bounded in memory")));
  log.info('run started', { runId, model: plan.model, provider: plan.provider, sandboxProvider, requestId });
  app.metrics.runStarted(plan.provider, sandboxProvider);
  events.append({ type: 'system', subtype: 'run_started', content: `run ${runId} started`, runId, model: plan.model, provider: plan.provider, sandboxProvider });

  void execute()
    .catch((err) => {
      log.error('run cleanup failed', { runId, error: err, stack: (err as Error)?.stack });
      // Whatever failed, the log still gets exactly one terminal event (no-op if it already has one).
      const content = 'internal error; see the server log for this run id';
      return events.end({ type: 'error', code: 'INTERNAL', content }, { kind: 'finish', id: runId, end: bareEnd('INTERNAL', content), completedAt: new Date().toISOString() });
    })
    .finally(ended);

  async function execute(): Promise<void> {
    const usage: Usage = emptyUsage();
    let numTurns = 0;
    let filesCount = 0;
    const price = findPrice(plan.model, app.config.pricing);
    const deadline = new Deadline(plan.timeout * 1000, () => controller.abort(new RunAbort('TIMEOUT', `the run exceeded its timeout of ${plan.timeout} seconds`)));
    const kept = new RunResults(Boolean(plan.outputFormat));
    const emit = (e: StreamEvent) => void events.append(kept.see(e));
    const pool = new SandboxPool({
      runId,
      instanceId: app.store.instanceId,
      timeoutSecs: plan.timeout,
      signal,
      provider: (name) => app.registry.sandboxProvider(name),
      emit,
      onCreated: (sandboxId, primaryId, count) => {
        sandboxIds.add(sandboxId); // so a webhook `killed` event for any of them finds this run
        app.events.writer.write({ kind: 'sandbox', id: runId, sandboxId: primaryId, sandboxCount: count }); // in order with the events
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
      // The sandbox is provisioned beside the first model call, not before it (docs/architecture.md#run-lifecycle):
      // a run spends seconds in the model, and the sandbox is only needed once the model asks for a tool. Tool
      // calls wait for it (so `sandbox_created` precedes every tool event), and a failure to provision ends the
      // run at once with its own error, whatever the model is doing.
      const prepared = (async () => {
        const main = await pool.createMain(sandboxProvider);
        const uploads = plan.files.map((f) => ({ path: posix.join(WORKSPACE, f.path), data: f.bytes }));
        if (main.place) await main.place(uploads, { signal });
        else for (const u of uploads) await main.writeFile(u.path, u.data, { signal });
        // A workspace that starts empty needs no listing: the baseline is then nothing but the uploads, which
        // artifacts compare by content anyway.
        const baseline: Baseline = main.startsEmpty ? new Map() : await takeBaseline(main, signal);
        return { main, baseline };
      })();
      prepared.catch((err) => {
        if (!signal.aborted) controller.abort(err);
      });
      const client = await app.registry.modelClient(plan.provider);
      let thinkingLevel = plan.thinkingLevel;
      if (thinkingLevel !== 'none' && !client.supportsThinking(plan.model)) {
        emit({ type: 'warning', code: 'THINKING_UNSUPPORTED', content: `model ${plan.model} has no thinking setting; thinkingLevel ${thinkingLevel} is ignored` });
        thinkingLevel = 'none';
      }
      const result = await raceAbort(
        (async (): Promise<AgentResult> => {
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
            toolsReady: prepared,
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
          const { main, baseline } = await prepared;
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
    if (terminal.event.type === 'result') terminal.event.durationSecs = durationSecs;
    const costUsd = price ? costOf(usage, price) : null;
    const end: RunEnd = { status: terminal.status, errorCode: terminal.errorCode, error: terminal.error, costUsd, ...usage, numTurns, durationSecs, filesCount, sandboxCount: pool.createdCount };
    await kept.save((row) => app.events.writer.write(row), runId, terminal.event); // queued before the row closes: a finished run's record is whole
    const completedAt = new Date().toISOString();
    // The row is closed in the same transaction as the terminal event is stored. A storage failure never costs
    // a reader its terminal event: both wait in memory for the writer's retries, and if the process dies
    // first, the next start closes the row as INTERRUPTED.
    await events.end(terminal.event, { kind: 'finish', id: runId, end, completedAt });
    if (plan.callbackUrl) scheduleCallback(app.config.callbacks, app.store, runId, plan.callbackUrl);
    log.info('run ended', { runId, status: terminal.status, errorCode: terminal.errorCode ?? undefined, numTurns, ...usage, costUsd, durationSecs, sandboxCount: pool.createdCount });
    app.metrics.runEnded({ status: terminal.status, errorCode: terminal.errorCode, durationSecs, model: plan.model, usage, costUsd });
  }

  return {
    ok: true,
    run: { id: runId, cancel: (message) => abort(new RunAbort('CANCELLED', message)) },
  };
}
