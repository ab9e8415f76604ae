// Writes what runs produce to SQLite in one transaction per tick: every run's event batches of that tick,
// and the row writes that must follow them (a run's row is closed in the same transaction as its terminal
// event, so a closed row always has a complete log).
//
// A failed commit (database locked by another program, disk full) loses nothing: the queue is kept, in order,
// and retried with a backoff, so the event loop is blocked by at most one failed attempt (the 50 ms busy
// timeout) every couple of seconds however many runs are writing. Runs keep streaming from memory meanwhile.
import { log } from './log.ts';

export interface Batch {
  firstId: number;
  lastId: number;
  /** The SSE frames of events firstId..lastId, exactly as sent. */
  frames: Buffer;
}

/** What the writer needs from the run store (lib/store.ts). */
export interface EventStore {
  transaction<T>(fn: () => T): T;
  appendEvents(runId: string, firstId: number, lastId: number, frames: Buffer): void;
}

/** Told when one of its batches is durably stored. */
export interface BatchOwner {
  readonly runId: string;
  stored(batch: Batch): void;
  /** Told after a failed commit, so it can check its memory budget. */
  storageFailed(): void;
}

type Op = { owner: BatchOwner; batch: Batch } | { write: () => void };

const RETRY_MS = [250, 500, 1000, 2000];

export class EventWriter {
  private queue: Op[] = [];
  private bytes = 0;
  private scheduled = false;
  private retry: NodeJS.Timeout | undefined;
  private failures = 0;

  /** `store` undefined: events are not stored (benchmarks only, to measure what storing costs). */
  constructor(private readonly store: EventStore | undefined) {}

  /** Bytes of frames waiting to be stored. */
  get queuedBytes(): number {
    return this.bytes;
  }

  /** True while the last commit failed (the queue then only grows until a retry succeeds). */
  get failing(): boolean {
    return this.failures > 0;
  }

  enqueue(owner: BatchOwner, batch: Batch): void {
    this.queue.push({ owner, batch });
    this.bytes += batch.frames.length;
    this.schedule();
  }

  /** A row write that must be stored after everything queued before it (retried with it on failure). */
  write(fn: () => void): void {
    this.queue.push({ write: fn });
    this.schedule();
  }

  /** Commits now unless a retry is pending (then the retry will). Returns whether everything is stored. */
  flush(): boolean {
    if (this.retry) return false;
    return this.commit();
  }

  /** At shutdown: one last attempt; what still cannot be stored is lost, and the next start closes those runs. */
  close(): void {
    clearTimeout(this.retry);
    this.retry = undefined;
    if (!this.commit() && this.queue.length) log.error('events and run rows could not be stored before exit', { pending: this.queue.length });
  }

  private schedule(): void {
    if (this.scheduled || this.retry) return;
    this.scheduled = true;
    process.nextTick(this.commitTick);
  }

  private readonly commitTick = (): void => {
    this.scheduled = false;
    if (!this.retry) this.commit();
  };

  private commit(): boolean {
    if (this.queue.length === 0) return true;
    const ops = this.queue;
    if (this.store) {
      const store = this.store;
      try {
        store.transaction(() => {
          for (const op of ops) {
            if ('write' in op) op.write();
            else store.appendEvents(op.owner.runId, op.batch.firstId, op.batch.lastId, op.batch.frames);
          }
        });
      } catch (err) {
        this.failed(err, ops);
        return false;
      }
    }
    this.queue = [];
    this.bytes = 0;
    if (this.failures > 0) log.info('storage works again; delayed events and run rows are stored', { failedAttempts: this.failures, stored: ops.length });
    this.failures = 0;
    for (const op of ops) if ('batch' in op) op.owner.stored(op.batch);
    return true;
  }

  private failed(err: unknown, ops: Op[]): void {
    this.failures++;
    const delay = RETRY_MS[Math.min(this.failures, RETRY_MS.length) - 1]!;
    // First failure, then one line a minute or so: a locked database must not flood the log.
    if (this.failures === 1 || this.failures % 30 === 0) {
      log.error('could not store events and run rows; kept in memory and retried', { error: err, failedAttempts: this.failures, pending: ops.length, pendingBytes: this.bytes, retryMs: delay });
    }
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.commit();
    }, delay);
    this.retry.unref(); // shutdown makes its own last attempt (close)
    const owners = new Set<BatchOwner>();
    for (const op of ops) if ('owner' in op) owners.add(op.owner);
    for (const owner of owners) owner.storageFailed();
  }
}
