// Run history in SQLite (WAL), this instance only (docs/api.md#run-records): the one object the rest of the
// code stores through. Also keeps the instance id, so sandboxes labelled by a previous process on the same
// file can be recognised and reaped, and every run's event log. The database and its tables are in
// store-schema.ts; the queries, one table group each, in store-runs.ts, store-events.ts and store-kept.ts.
import type Database from 'better-sqlite3';
import { EventRows, type StoredBatch } from './store-events.ts';
import { KeptRows, type KeptFileInfo, type KeptResult, type KeptRun } from './store-kept.ts';
import { RunRows, type NewRun, type RunEnd, type RunRecord, type RunStatus, type RunSummary } from './store-runs.ts';
import { openDatabase } from './store-schema.ts';

export { LIST_PROMPT_CHARS, RUN_STATUSES, type NewRun, type RunEnd, type RunRecord, type RunStatus, type RunSummary } from './store-runs.ts';
export type { KeptFileInfo, KeptResult, KeptRun } from './store-kept.ts';

/**
 * What a run writes besides its events, in order with them: all of it goes through the event writer's
 * thread (lib/event-writer.ts), the one connection that writes runs, so no two writers wait on each other.
 */
export type RowWrite =
  | { kind: 'insert'; run: NewRun }
  | { kind: 'sandbox'; id: string; sandboxId: string; sandboxCount: number }
  | { kind: 'fileChunk'; id: string; path: string; seq: number; data: Uint8Array }
  | { kind: 'file'; id: string; file: KeptFileInfo }
  | { kind: 'result'; id: string; result: KeptResult }
  | { kind: 'finish'; id: string; end: RunEnd; completedAt: string };

export class RunStore {
  readonly instanceId: string;
  private readonly db: Database.Database;
  private readonly runs: RunRows;
  private readonly events: EventRows;
  private readonly kept: KeptRows;

  /** `busyTimeoutMs` is for the event writer's own thread, which may wait; the main thread must not. */
  constructor(path: string, opts: { busyTimeoutMs?: number } = {}) {
    const { db, instanceId } = openDatabase(path, opts.busyTimeoutMs ?? 50);
    this.db = db;
    this.instanceId = instanceId;
    this.runs = new RunRows(this.db);
    this.events = new EventRows(this.db);
    this.kept = new KeptRows(this.db, this.events);
  }

  // ---- Runs ----

  insert(run: NewRun): void {
    this.runs.insert(run);
  }

  /** Records the primary sandbox's id (first call wins) and how many sandboxes the run has used so far. */
  setSandbox(id: string, sandboxId: string, sandboxCount: number): void {
    this.runs.setSandbox(id, sandboxId, sandboxCount);
  }

  /** Closes a running row; a row already closed is left as it is. */
  finish(id: string, end: RunEnd, completedAt: string): void {
    this.runs.finish(id, end, completedAt);
  }

  get(id: string): RunRecord | undefined {
    return this.runs.get(id);
  }

  /** Newest first; each prompt cut to LIST_PROMPT_CHARS characters, `promptChars` its full length. */
  list(limit: number, status?: RunStatus): RunSummary[] {
    return this.runs.list(limit, status);
  }

  /** The next page of `list`: the runs listed after the run `before`; null when there is no such run. */
  listBefore(before: string, limit: number, status?: RunStatus): RunSummary[] | null {
    return this.runs.listBefore(before, limit, status);
  }

  /**
   * At start: rows a dead process left `running` become `error` / `INTERRUPTED`, and when `terminal` is given,
   * each such run's event log gets that terminal event appended (built for the next id), so readers of the
   * log end cleanly. One transaction. Returns how many.
   */
  markInterrupted(now: string, terminal?: (id: number, message: string) => Buffer): number {
    const message = 'the server stopped while this run was in flight';
    return this.transaction(() => {
      if (terminal) {
        for (const runId of this.runs.running()) {
          const next = this.events.lastId(runId) + 1;
          this.events.append(runId, next, next, terminal(next, message));
        }
      }
      return this.runs.interrupt(message, now);
    });
  }

  applyRowWrite(w: RowWrite): void {
    switch (w.kind) {
      case 'insert':
        return this.insert(w.run);
      case 'sandbox':
        return this.setSandbox(w.id, w.sandboxId, w.sandboxCount);
      case 'fileChunk': // a Uint8Array once it has crossed to the writer thread
        return this.saveFileChunk(w.id, w.path, w.seq, Buffer.from(w.data.buffer, w.data.byteOffset, w.data.byteLength));
      case 'file':
        return this.saveFile(w.id, w.file);
      case 'result':
        return this.saveResult(w.id, w.result);
      case 'finish':
        return this.finish(w.id, w.end, w.completedAt);
    }
  }

  /** Runs `fn` in one transaction (nested calls join the outer one). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  // ---- Event log ----

  /** Stores one batch of a run's frames (ids firstId..lastId, following the last stored batch). */
  appendEvents(runId: string, firstId: number, lastId: number, frames: Buffer): void {
    this.events.append(runId, firstId, lastId, frames);
  }

  /**
   * Stored batches holding events after `cursor`, in order, read lazily until about `maxBytes` are collected
   * (at least one row), so a long log is never loaded at once.
   */
  readEvents(runId: string, cursor: number, maxBytes: number): StoredBatch[] {
    return this.events.read(runId, cursor, maxBytes);
  }

  /** The highest stored event id of a run, from the event log (null when it has none). */
  storedLastEventId(runId: string): number | null {
    return this.events.lastId(runId) || null;
  }

  // ---- Kept results and files (lib/results.ts) ----

  saveResult(runId: string, r: KeptResult): void {
    this.kept.saveResult(runId, r);
  }

  keptResult(runId: string): KeptResult | undefined {
    return this.kept.result(runId);
  }

  /** One chunk of a returned file's bytes (`seq` 0, 1, ...); saveFile afterwards makes the file visible. */
  saveFileChunk(runId: string, path: string, seq: number, data: Uint8Array): void {
    this.kept.saveFileChunk(runId, path, seq, data);
  }

  saveFile(runId: string, file: KeptFileInfo): void {
    this.kept.saveFile(runId, file);
  }

  files(runId: string): KeptFileInfo[] {
    return this.kept.files(runId);
  }

  /** A returned file's metadata; `stored` is false once retention removed its bytes. */
  fileInfo(runId: string, path: string): (KeptFileInfo & { stored: boolean }) | undefined {
    return this.kept.fileInfo(runId, path);
  }

  /** Chunk `seq` of a returned file's bytes, or null past the last one (or once removed). */
  fileChunk(runId: string, path: string, seq: number): Buffer | null {
    return this.kept.fileChunk(runId, path, seq);
  }

  // ---- Retention (lib/retention.ts) ----

  eventsExpired(runId: string): boolean {
    return this.kept.eventsExpired(runId);
  }

  /** Finished runs still holding events or files, ordered by (completedAt, id), after the given key. */
  keptRuns(after: { completedAt: string; id: string }, limit: number): KeptRun[] {
    return this.kept.keptRuns(after, limit);
  }

  /** Records what finished runs keep (bytes of events and files) and their last stored event id; one transaction. */
  setKeptBytes(runs: { id: string; bytes: number; lastEventId: number | null }[]): void {
    this.kept.setKeptBytes(runs);
  }

  /**
   * Bytes of up to `limit` stored rows of a run's events (each a batch of events) after event id `afterId`;
   * `last` is the last event id counted, null when there are none.
   */
  eventBytes(runId: string, afterId: number, limit: number): { n: number; bytes: number; last: number | null } {
    return this.events.bytes(runId, afterId, limit);
  }

  fileBytes(runId: string): number {
    return this.kept.fileBytes(runId);
  }

  /**
   * Marks finished runs' events and files expired and queues their removal, in one transaction (readers see
   * a run expired before anything of it is gone). Returns the ids actually marked (not already expired).
   */
  markExpired(runIds: string[]): string[] {
    return this.kept.markExpired(runIds);
  }

  /**
   * One bounded step of removing what queued runs stored: at most `maxRows` rows of events and about
   * `maxBytes` of events and file contents (whole rows and chunks), in one transaction. Returns true once the
   * queue is empty.
   */
  purgeStep(maxRows: number, maxBytes: number): boolean {
    return this.kept.purgeStep(maxRows, maxBytes);
  }

  close(): void {
    this.db.close();
  }
}
