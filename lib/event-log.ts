// Each run's event log: numbers the run's events (1, 2, ...) and frames each one once; the frames of one tick
// form one batch, handed at once to the writer (SQLite) and to every live reader. A reader that attaches
// later (GET /runs/:id/events, or a /query stream) gets the stored batches from the database page by page,
// then the batches not stored yet from memory, then the live ones. Moving from one to the next happens in
// one synchronous step, and batches leave memory only once committed, so no event is missed or repeated.
//
// Batches wait in memory until committed (if storage fails, through the writer's retries), and readers still
// get all of them. Memory for that is bounded: a run whose unstored events pass MAX_UNSTORED_RUN_BYTES (or
// all runs' pass MAX_UNSTORED_TOTAL_BYTES), because the database refuses writes or cannot keep up, is ended
// with STORAGE_ERROR.
import type { RowStore } from './event-rows.ts';
import { EventWriter, type Batch, type BatchOwner } from './event-writer.ts';
import { frameEvent, type EventSource, type LiveSink, type StreamEvent } from './sse.ts';
import type { RowWrite } from './store.ts';

/** A tick's batch is cut early past this size, so stored rows and live chunks stay small. */
const MAX_BATCH_CHARS = 256 * 1024;
/** Replay reads the database in pages of about this size. */
const PAGE_BYTES = 256 * 1024;
/** Above a run's largest burst: its artifacts (25 MiB of files, a third more as base64) come in one tick. */
export const MAX_UNSTORED_RUN_BYTES = 64 * 1024 * 1024;
export const MAX_UNSTORED_TOTAL_BYTES = 256 * 1024 * 1024;
const EMPTY = Buffer.alloc(0);

/** The frames of `batch` after event id `cursor`. */
export function framesAfter(batch: Batch, cursor: number): Buffer {
  if (cursor < batch.firstId) return batch.frames;
  if (cursor >= batch.lastId) return EMPTY;
  // Frames end with a blank line and their data is one line, so "\n\nid: <n>\n" is where frame n starts.
  const at = batch.frames.indexOf(`\n\nid: ${cursor + 1}\n`);
  return at < 0 ? EMPTY : batch.frames.subarray(at + 2);
}

/** How long a run's end waits for its last events and row to be committed before readers get the terminal event. */
const END_WAIT_MS = 2000;

/** The run store (lib/store.ts) as the logs use it on the main thread. */
export interface EventReader extends RowStore {
  readEvents(runId: string, cursor: number, maxBytes: number): Batch[];
  transaction<T>(fn: () => T): T;
}

interface Follower {
  cursor: number;
  sink: LiveSink;
}

export class RunLog implements BatchOwner {
  private lastId = 0;
  private pending = '';
  private pendingFirst = 0;
  /** Batches sent but not yet committed, oldest first. */
  private unstored: Batch[] = [];
  private unstoredBytes = 0;
  private followers = new Set<Follower>();
  private ended = false;
  private overflowed = false;

  constructor(
    readonly runId: string,
    private readonly logs: EventLogs,
    private readonly onOverflow: () => void,
  ) {}

  /** The id of the last event appended. */
  get lastEventId(): number {
    return this.lastId;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** Adds one event; false once the log has ended. */
  append(event: StreamEvent): boolean {
    if (this.ended) return false;
    const id = ++this.lastId;
    if (this.pending === '') {
      this.pendingFirst = id;
      process.nextTick(this.flush);
    }
    this.pending += frameEvent(id, event);
    if (this.pending.length >= MAX_BATCH_CHARS) this.flush();
    return true;
  }

  /**
   * Appends the terminal event and ends the log: `closeRow` (the run row's final update) is committed in the
   * same transaction as the last events, then live readers get the terminal event and their streams close, so
   * a client that saw the terminal event finds the row closed. If storage fails, readers are not kept waiting
   * (the row and events wait for the writer's retries). Only the first call counts.
   */
  async end(terminal: StreamEvent, closeRow: RowWrite): Promise<void> {
    if (this.ended) return;
    this.append(terminal);
    this.ended = true;
    const batch = this.cut();
    this.logs.writer.write(closeRow);
    await this.logs.writer.flush(END_WAIT_MS);
    if (batch) this.fanOut(batch);
    for (const f of this.followers) f.sink.end();
    this.followers.clear();
    if (this.unstored.length === 0) this.logs.settled(this);
  }

  private readonly flush = (): void => {
    const batch = this.cut();
    if (batch) this.fanOut(batch);
  };

  private cut(): Batch | undefined {
    if (this.pending === '') return undefined;
    const batch: Batch = { firstId: this.pendingFirst, lastId: this.lastId, frames: Buffer.from(this.pending) };
    this.pending = '';
    this.unstored.push(batch);
    this.unstoredBytes += batch.frames.length;
    this.logs.writer.enqueue(this, batch);
    this.checkBudget();
    return batch;
  }

  private fanOut(batch: Batch): void {
    for (const f of this.followers) {
      if (batch.lastId <= f.cursor) continue;
      const chunk = framesAfter(batch, f.cursor);
      f.cursor = batch.lastId;
      f.sink.push(chunk);
    }
  }

  stored(batch: Batch): void {
    // The writer commits in order, so this is the oldest unstored batch.
    if (this.unstored[0] === batch) this.unstored.shift();
    else this.unstored = this.unstored.filter((b) => b !== batch);
    this.unstoredBytes -= batch.frames.length;
    if (this.ended && this.unstored.length === 0) this.logs.settled(this);
  }

  storageFailed(): void {
    this.checkBudget();
  }

  private checkBudget(): void {
    if (this.overflowed || this.ended) return;
    if (this.unstoredBytes > MAX_UNSTORED_RUN_BYTES || this.logs.writer.queuedBytes > MAX_UNSTORED_TOTAL_BYTES) {
      this.overflowed = true;
      this.onOverflow();
    }
  }

  /** Unstored frames after `cursor` (up to about `maxBytes`), and the id of the last one. */
  unstoredAfter(cursor: number, maxBytes: number): { chunk: Buffer; lastId: number } | undefined {
    const parts: Buffer[] = [];
    let lastId = cursor;
    let bytes = 0;
    for (const b of this.unstored) {
      if (b.lastId <= lastId) continue;
      const part = framesAfter(b, lastId);
      parts.push(part);
      bytes += part.length;
      lastId = b.lastId;
      if (bytes >= maxBytes) break;
    }
    return parts.length ? { chunk: parts.length === 1 ? parts[0]! : Buffer.concat(parts), lastId } : undefined;
  }

  /** Sends `sink` every event after `cursor` flushed from now on; ends it at once if the log has ended. */
  follow(cursor: number, sink: LiveSink): () => void {
    if (this.ended) {
      sink.end();
      return () => {};
    }
    const f: Follower = { cursor, sink };
    this.followers.add(f);
    return () => this.followers.delete(f);
  }
}

/** The logs of this instance's runs in flight (and of ended runs whose last events are still being stored). */
export class EventLogs {
  readonly writer: EventWriter;
  private logs = new Map<string, RunLog>();
  private readonly reader: EventReader | undefined;

  /**
   * `dbPath` is the database `store` reads (the writer thread opens its own connection to it; an in-memory
   * database is written through `store`). `storeEvents: false` exists for the benchmark that measures what
   * storing costs; production always stores.
   */
  constructor(store: EventReader, dbPath: string, opts: { storeEvents?: boolean } = {}) {
    const storing = opts.storeEvents !== false;
    this.reader = storing ? store : undefined;
    this.writer = new EventWriter(!storing ? undefined : dbPath === ':memory:' ? { local: store } : { path: dbPath });
  }

  /** Starts the log of a new run. `onOverflow` ends the run when storage has failed for too long. */
  open(runId: string, onOverflow: () => void): RunLog {
    const log = new RunLog(runId, this, onOverflow);
    this.logs.set(runId, log);
    return log;
  }

  get(runId: string): RunLog | undefined {
    return this.logs.get(runId);
  }

  /** Runs whose log is here: in flight, or ended with events not yet stored. */
  runIds(): string[] {
    return [...this.logs.keys()];
  }

  /** A reader of `runId`'s events after `cursor`: stored, then unstored, then live while the run is here. */
  subscribe(runId: string, cursor: number): EventSource {
    return new Subscription(this, runId, cursor);
  }

  /** Stored frames after `cursor`, one page. */
  readStored(runId: string, cursor: number): { chunk: Buffer; lastId: number } | undefined {
    if (!this.reader) return undefined;
    const rows = this.reader.readEvents(runId, cursor, PAGE_BYTES);
    if (rows.length === 0) return undefined;
    const parts = rows.map((r, i) => (i === 0 ? framesAfter(r, cursor) : r.frames));
    return { chunk: parts.length === 1 ? parts[0]! : Buffer.concat(parts), lastId: rows.at(-1)!.lastId };
  }

  settled(log: RunLog): void {
    if (this.logs.get(log.runId) === log) this.logs.delete(log.runId);
  }

  /** At shutdown, after every run has ended. */
  close(): Promise<void> {
    return this.writer.close();
  }
}

class Subscription implements EventSource {
  private unfollow: (() => void) | undefined;
  private cancelled = false;

  constructor(
    private readonly logs: EventLogs,
    private readonly runId: string,
    private cursor: number,
  ) {}

  next(sink: LiveSink): Uint8Array | undefined {
    if (this.cancelled) return undefined;
    const page = this.logs.readStored(this.runId, this.cursor) ?? this.logs.get(this.runId)?.unstoredAfter(this.cursor, PAGE_BYTES);
    if (page) {
      this.cursor = page.lastId;
      return page.chunk;
    }
    const log = this.logs.get(this.runId);
    if (log) this.unfollow = log.follow(this.cursor, sink);
    else sink.end(); // not in flight here: the stored log is all there is
    return undefined;
  }

  cancel(): void {
    this.cancelled = true;
    this.unfollow?.();
  }
}
