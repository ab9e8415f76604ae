// The runs in flight on this instance: admission (concurrency cap, draining), abort by id or sandbox,
// and the set of run ids the reaper must leave alone.
import { settledWithin, type RunAbort } from './abort.ts';

export interface ActiveRun {
  id: string;
  controller: AbortController;
  sandboxIds: Set<string>;
  /** Settles when the run has destroyed its sandboxes and closed its row. */
  done: Promise<void>;
}

export class RunManager {
  private active = new Map<string, ActiveRun>();
  draining = false;

  constructor(readonly maxConcurrent: number) {}

  get size(): number {
    return this.active.size;
  }

  get full(): boolean {
    return this.active.size >= this.maxConcurrent;
  }

  /** Registers a run; the caller checked `full` and `draining` in the same tick. */
  add(run: ActiveRun): void {
    this.active.set(run.id, run);
    run.done.finally(() => this.active.delete(run.id));
  }

  runIds(): Set<string> {
    return new Set(this.active.keys());
  }

  findBySandboxId(sandboxId: string): ActiveRun | undefined {
    for (const run of this.active.values()) if (run.sandboxIds.has(sandboxId)) return run;
    return undefined;
  }

  get(id: string): ActiveRun | undefined {
    return this.active.get(id);
  }

  abortAll(reason: RunAbort): void {
    for (const run of this.active.values()) run.controller.abort(reason);
  }

  /** Resolves true when every run has finished, false if `ms` passed first. */
  waitIdle(ms: number): Promise<boolean> {
    return settledWithin(Promise.allSettled([...this.active.values()].map((r) => r.done)), ms);
  }
}
