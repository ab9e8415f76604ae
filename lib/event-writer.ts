// Stores what runs produce: their event batches, and the row writes that must follow them (a run's row is
// closed in the same transaction as its terminal event is stored, so a closed row always has a whole log).
//
// The writing happens on a worker thread with its own SQLite connection (lib/event-writer-worker.ts): storing
// costs about as much CPU per event as everything else the server does for it, and a locked database makes
// a write wait; neither may take time from the event loop. Every COMMIT_MS while anything is queued, the
// queue goes to the worker as one message, committed as one transaction. Readers never wait for it: until a
// batch is acknowledged, it stays in its run's memory (lib/event-log.ts) and readers get it from there.
//
// A failed commit (database locked by another program, disk full) loses nothing: the ops go back to the head
// of the queue and are retried with a backoff. A worker that dies is replaced on the next attempt.
import { Worker } from 'node:worker_threads';
import { writeOps, type RowStore } from './event-rows.ts';
import { sleep } from './abort.ts';
import { log } from './log.ts';
import type { RowWrite } from './store.ts';

export interface Batch {
  firstId: number;
  lastId: number;
  /** The SSE frames of events firstId..lastId, exactly as sent. */
  frames: Buffer;
}

/** Told when one of its batches is durably stored. */
export interface BatchOwner {
  readonly runId: string;
  stored(batch: Batch): void;
  /** Told after a failed commit, so it can check its memory budget. */
  storageFailed(): void;
}

/**
 * What goes to the worker: a batch of one run (its frames at [start, end) of the message's buffer), or a row
 * write. The frames of a message are copied into one buffer that is transferred, not cloned (cloning costs
 * the event loop several times more); each run's batches are laid out next to each other, in order.
 */
export type WireOp = { runId: string; firstId: number; lastId: number; start: number; end: number } | { row: RowWrite };
export interface WireMessage {
  seq: number;
  ops: WireOp[];
  frames: ArrayBuffer;
}
export type WireReply = { seq: number; ok: true } | { seq: number; ok: false; error: string };

/**
 * Where the writer writes: a database file (through the writer thread), the main thread's own connection
 * (an in-memory database cannot be opened by another thread), or nowhere (the benchmark that measures what
 * storing costs).
 */
export type WriterTarget = { path: string } | { local: RowStore & { transaction<T>(fn: () => T): T } } | undefined;

/** `once`: a write tried in one transaction only, told how it went (a run's insert: refused if it fails). */
type Op = { owner: BatchOwner; batch: Batch } | { row: RowWrite; once?: (error: string | undefined) => void };

/** How long ops wait to be sent: a commit costs about as much as a few hundred small events. */
const COMMIT_MS = 10;
/** A message (one transaction) carries about this much at most, so the write lock is never held for long. */
const MAX_MESSAGE_BYTES = 1024 * 1024;
const RETRY_MS = [250, 500, 1000, 2000];
/** Shutdown waits this long for the last commit. */
const CLOSE_WAIT_MS = 5000;

export class EventWriter {
  private queue: Op[] = [];
  private bytes = 0;
  private inFlight: { seq: number; ops: Op[] } | undefined;
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private worker: Worker | undefined;
  private closing = false;
  /** Ops ever queued, and ever settled (committed, or given up once-ops), so flush() knows when its ops are done. */
  private queuedCount = 0;
  private settledCount = 0;
  private waiters = new Set<{ target: number; resolve: () => void }>();

  constructor(private readonly target: WriterTarget) {}

  /** Bytes of frames not yet stored. */
  get queuedBytes(): number {
    return this.bytes;
  }

  /** True while the last commit failed. */
  get failing(): boolean {
    return this.failures > 0;
  }

  enqueue(owner: BatchOwner, batch: Batch): void {
    this.queue.push({ owner, batch });
    this.queuedCount++;
    this.bytes += batch.frames.length;
    this.schedule(COMMIT_MS);
  }

  /** A row write, stored after everything queued before it (in the same transaction as the op before it). */
  write(row: RowWrite): void {
    this.queue.push({ row });
    this.queuedCount++;
    this.schedule(COMMIT_MS);
  }

  /**
   * A write that must be known to have happened before anything else is done (a run's row before the run
   * starts): sent at once, in one transaction, not retried. Resolves with the error when it failed.
   */
  record(row: RowWrite): Promise<string | undefined> {
    return new Promise((resolve) => {
      this.queue.push({ row, once: resolve });
      this.queuedCount++;
      if (!this.inFlight && !this.closing) {
        clearTimeout(this.timer);
        this.timer = undefined;
        this.send();
      }
    });
  }

  /**
   * Sends what is queued now, and resolves once it has been committed, or a commit has failed (retries then
   * go on in the background), or `ms` passed. Used at a run's end, so its row is closed before its readers
   * see the terminal event, without making them wait on a failing database.
   */
  flush(ms: number): Promise<void> {
    const target = this.queuedCount;
    if (this.settledCount >= target || this.failures > 0) return Promise.resolve();
    this.schedule(0);
    return new Promise<void>((resolve) => {
      const waiter = { target, resolve: () => {} };
      const timer = setTimeout(() => waiter.resolve(), ms);
      waiter.resolve = () => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve();
      };
      this.waiters.add(waiter);
    });
  }

  /** At shutdown, after every run has ended: a last commit (bounded), then the worker stops. */
  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    const until = Date.now() + CLOSE_WAIT_MS;
    while ((this.queue.length || this.inFlight) && Date.now() < until) {
      if (!this.inFlight) this.send();
      await sleep(10);
      if (this.failures > 0 && !this.inFlight) break; // the database refuses: what is left is lost
    }
    if (this.queue.length || this.inFlight) {
      log.error('events and run rows could not be stored before exit; the next start closes those runs as INTERRUPTED', { pending: this.queue.length + (this.inFlight?.ops.length ?? 0) });
    }
    await this.worker?.terminate();
    this.worker = undefined;
  }

  private schedule(ms: number): void {
    if (this.closing || this.inFlight) return; // the reply schedules what came meanwhile
    if (this.timer && ms > 0) return;
    this.sendIn(ms);
  }

  /** (Re)arms the one send timer. */
  private sendIn(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.send();
    }, ms);
  }

  /** Sends the head of the queue as one message (one transaction). */
  private send(): void {
    if (this.inFlight || this.queue.length === 0) return;
    let bytes = 0;
    let n = 0;
    while (n < this.queue.length) {
      const op = this.queue[n]!;
      const size = 'batch' in op ? op.batch.frames.length : op.row.kind === 'fileChunk' ? op.row.data.byteLength : 0;
      // Never cut before a run's closing row: it is committed with the terminal event before it.
      const cuttable = !('row' in op && op.row.kind === 'finish');
      if (cuttable && n > 0 && bytes + size > MAX_MESSAGE_BYTES) break;
      bytes += size;
      n++;
    }
    const ops = this.queue.splice(0, n);
    const seq = ++this.seq;
    this.inFlight = { seq, ops };
    const target = this.target;
    if (!target) return void queueMicrotask(() => this.settle({ seq, ok: true }));
    try {
      const message = toWire(seq, ops);
      if ('path' in target) return void this.workerOrStart(target.path).postMessage(message, [message.frames]);
      target.local.transaction(() => writeOps(target.local, message.ops, Buffer.from(message.frames)));
      queueMicrotask(() => this.settle({ seq, ok: true }));
    } catch (err) {
      queueMicrotask(() => this.settle({ seq, ok: false, error: (err as Error).message }));
    }
  }

  private workerOrStart(path: string): Worker {
    if (this.worker) return this.worker;
    // execArgv: [] because an inherited `--import tsx` resolves against the cwd, which may be anywhere; the
    // entry registers tsx itself, resolved from this folder.
    const worker = new Worker(new URL('./event-writer-worker.mjs', import.meta.url), { workerData: { path }, execArgv: [] });
    worker.unref(); // shutdown closes it; it must never keep a process alive by itself
    worker.on('message', (reply: WireReply) => this.settle(reply));
    const lost = (why: string) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      if (this.inFlight) this.settle({ seq: this.inFlight.seq, ok: false, error: `the event writer thread ${why}` });
    };
    worker.on('error', (err) => lost(`failed: ${err.message}`));
    worker.on('exit', (code) => lost(`exited (${code})`));
    this.worker = worker;
    return worker;
  }

  private settle(reply: WireReply): void {
    if (!this.inFlight || this.inFlight.seq !== reply.seq) return;
    const { ops } = this.inFlight;
    this.inFlight = undefined;
    if (reply.ok) {
      for (const op of ops) if ('batch' in op) this.bytes -= op.batch.frames.length;
      if (this.failures > 0) log.info('storage works again; delayed events and run rows are stored', { failedAttempts: this.failures });
      this.failures = 0;
      this.settledCount += ops.length;
      for (const op of ops) {
        if ('batch' in op) op.owner.stored(op.batch);
        else op.once?.(undefined);
      }
      for (const w of [...this.waiters]) if (this.settledCount >= w.target) w.resolve();
      if (this.queue.length) this.schedule(this.waiters.size > 0 || this.bytes >= MAX_MESSAGE_BYTES ? 0 : COMMIT_MS);
    } else {
      // Once-ops are given up and told; everything else goes back to the head of the queue, in order.
      const given = ops.filter((op) => 'row' in op && op.once);
      for (const op of given) if ('row' in op) op.once!(reply.error);
      this.settledCount += given.length;
      this.queue.unshift(...ops.filter((op) => !given.includes(op)));
      this.failed(reply.error, ops);
      for (const w of [...this.waiters]) w.resolve();
    }
  }

  private failed(error: string, ops: Op[]): void {
    this.failures++;
    const delay = RETRY_MS[Math.min(this.failures, RETRY_MS.length) - 1]!;
    // The first failure, then about one line a minute: a locked database must not flood the log.
    if (this.failures === 1 || this.failures % 30 === 0) {
      log.error('could not store events and run rows; kept in memory and retried', { error, failedAttempts: this.failures, pendingBytes: this.bytes, retryMs: delay });
    }
    if (!this.closing) this.sendIn(delay);
    const owners = new Set<BatchOwner>();
    for (const op of ops) if ('owner' in op) owners.add(op.owner);
    for (const owner of owners) owner.storageFailed();
  }
}

function toWire(seq: number, ops: Op[]): WireMessage {
  const byRun = new Map<string, Batch[]>();
  let total = 0;
  for (const op of ops) {
    if ('row' in op) continue;
    const list = byRun.get(op.owner.runId);
    if (list) list.push(op.batch);
    else byRun.set(op.owner.runId, [op.batch]);
    total += op.batch.frames.length;
  }
  const buf = Buffer.allocUnsafeSlow(total); // its own ArrayBuffer, so it can be transferred
  const at = new Map<Batch, number>();
  let offset = 0;
  for (const list of byRun.values()) {
    for (const b of list) {
      at.set(b, offset);
      offset += b.frames.copy(buf, offset);
    }
  }
  const wire = ops.map((op): WireOp => {
    if ('row' in op) return { row: op.row };
    const start = at.get(op.batch)!;
    return { runId: op.owner.runId, firstId: op.batch.firstId, lastId: op.batch.lastId, start, end: start + op.batch.frames.length };
  });
  return { seq, ops: wire, frames: buf.buffer as ArrayBuffer };
}
