// The warm pool (docker.warmPool, docs/operations.md#warm-pool): hardened, started, labelled, idle sandboxes of
// the default image kept ready, so a run skips create and start. Each is taken once and destroyed after its
// run like any other sandbox, never reused. Refills run in the background, a few at a time, back off while
// the engine fails, and stop for good at close(). Labelled `sandcaster.run=pool`: the reaper of this process
// keeps the ones this pool owns (keeps()), the start-up reaper of the next process removes them after a crash.
import { log } from '../../lib/log.ts';
import type { KeptByName } from './reap.ts';

/** The run label value of a pooled sandbox, from its creation to its removal. */
export const POOL_RUN_LABEL = 'pool';
/** Sandboxes the pool creates at once, so refills never crowd out the runs' own engine calls. */
const FILL_CONCURRENCY = 2;
/**
 * A taken sandbox's slot is refilled once that sandbox is removed or after this long, whichever is first: the
 * create of a refill then does not compete for the engine with a short run's own exec and destroy, and a long
 * run's refill still happens while it waits on its model.
 */
const REFILL_DELAY_MS = 1000;
/** Back-off after a failed create: doubles from the first to the last. */
const BACKOFF_MS = { first: 1000, last: 60_000 };

export interface PoolOps<T> {
  /** A fresh hardened, started, idle sandbox labelled for `instanceId`, named `name`; removes what it made when it fails. */
  build(name: string, instanceId: string, signal: AbortSignal): Promise<T>;
  /** Whether the sandbox still runs (an engine restart or an OOM kill may have ended it). */
  alive(item: T, signal?: AbortSignal): Promise<boolean>;
  remove(name: string): Promise<void>;
  /** A new unique container name. */
  newName(): string;
}

export interface WarmPoolState {
  size: number;
  ready: number;
}

export class WarmPool<T> implements KeptByName {
  private instanceId: string | undefined;
  private idle: { name: string; item: T }[] = [];
  private creating = 0;
  /** Every pooled container this process made and has not seen removed: undefined while idle or being made, else the run that took it. */
  private owned = new Map<string, string | undefined>();
  /** Taken sandboxes whose slot is not refilled yet, with the timer that refills it anyway. */
  private owed = new Map<string, NodeJS.Timeout>();
  private failures = 0;
  private retry: NodeJS.Timeout | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly ac = new AbortController();
  private readonly building = new Set<Promise<void>>();

  constructor(
    readonly size: number,
    private readonly ops: PoolOps<T>,
  ) {}

  /** Starts filling for `instanceId` (the first one asked; later calls do nothing). */
  start(instanceId: string): void {
    if (this.size === 0 || this.closed || this.instanceId !== undefined) return;
    this.instanceId = instanceId;
    this.fill();
  }

  state(): WarmPoolState {
    return { size: this.size, ready: this.idle.length };
  }

  /**
   * A ready sandbox for run `runId`, checked to be running; undefined when none is ready (the caller creates one).
   * Its slot is refilled once it is removed or after REFILL_DELAY_MS. Rejects only with the signal's reason;
   * what it took is then removed.
   */
  async take(instanceId: string, runId: string, signal?: AbortSignal): Promise<{ name: string; item: T } | undefined> {
    while (!this.closed && instanceId === this.instanceId && this.idle.length) {
      const taken = this.idle.shift()!;
      this.owned.set(taken.name, runId);
      this.owe(taken.name);
      let alive: boolean;
      try {
        alive = await this.ops.alive(taken.item, signal);
      } catch (err) {
        if (signal?.aborted) {
          this.repay(taken.name);
          this.discard(taken.name);
          throw signal.reason;
        }
        alive = false;
      }
      if (alive) return taken;
      log.warn('a warm-pool docker sandbox had stopped; removing it and taking another', { runId, container: taken.name });
      this.repay(taken.name);
      this.discard(taken.name);
    }
    return undefined;
  }

  keeps(name: string, keepRunIds: ReadonlySet<string>): boolean {
    if (!this.owned.has(name)) return false;
    const run = this.owned.get(name);
    return run === undefined || keepRunIds.has(run);
  }

  forget(name: string): void {
    this.owned.delete(name);
    this.repay(name);
  }

  /** Stops refills for good and removes every idle sandbox (and those still being made); never rejects. */
  close(): Promise<void> {
    this.closed = true;
    return (this.closing ??= (async () => {
      clearTimeout(this.retry);
      for (const timer of this.owed.values()) clearTimeout(timer);
      this.owed.clear();
      this.ac.abort(new Error('the warm pool is closing'));
      await Promise.allSettled([...this.building]);
      const idle = this.idle;
      this.idle = [];
      await Promise.all(idle.map((i) => this.removeQuietly(i.name)));
    })());
  }

  /** The slot of a taken sandbox: refilled when it is gone (repay) or after REFILL_DELAY_MS. */
  private owe(name: string): void {
    const timer = setTimeout(() => this.repay(name), REFILL_DELAY_MS);
    timer.unref();
    this.owed.set(name, timer);
  }

  private repay(name: string): void {
    const timer = this.owed.get(name);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.owed.delete(name);
    this.fill();
  }

  private discard(name: string): void {
    void this.removeQuietly(name);
  }

  private async removeQuietly(name: string): Promise<void> {
    try {
      await this.ops.remove(name);
      this.owned.delete(name);
    } catch (err) {
      // Still labelled: the periodic reaper (or the next process's start-up reaper) removes it.
      this.owned.set(name, `${POOL_RUN_LABEL}-discarded`);
      log.warn('could not remove a warm-pool docker sandbox; the reaper will retry', { container: name, error: err });
    }
  }

  private fill(): void {
    const instanceId = this.instanceId;
    if (this.closed || instanceId === undefined || this.retry) return;
    while (this.idle.length + this.creating + this.owed.size < this.size && this.creating < FILL_CONCURRENCY) {
      this.creating++;
      const name = this.ops.newName();
      this.owned.set(name, undefined);
      const started = Date.now();
      const done = this.ops.build(name, instanceId, this.ac.signal).then(
        (item) => {
          this.failures = 0;
          if (this.closed) return this.removeQuietly(name);
          this.idle.push({ name, item });
          log.debug('warm-pool docker sandbox ready', { container: name, durationMs: Date.now() - started, ready: this.idle.length });
        },
        (err) => {
          this.owned.delete(name); // build removed what it made; anything left is an ordinary orphan now
          if (this.closed) return;
          const wait = Math.min(BACKOFF_MS.last, BACKOFF_MS.first * 2 ** this.failures++);
          log.warn('could not fill the docker warm pool; retrying later', { error: err, retryInMs: wait });
          clearTimeout(this.retry);
          this.retry = setTimeout(() => {
            this.retry = undefined;
            this.fill();
          }, wait);
          this.retry.unref();
        },
      );
      this.building.add(done);
      void done.finally(() => {
        this.creating--;
        this.building.delete(done);
        this.fill();
      });
    }
  }
}
