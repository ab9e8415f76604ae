// Run history in SQLite (WAL), this instance only (docs/api.md#run-records). Also keeps the instance id,
// so sandboxes labelled by a previous process on the same file can be recognised and reaped, and every
// run's event log (one row holds a batch of a run's SSE frames, exactly as they were sent).
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';

export const RUN_STATUSES = ['running', 'completed', 'error', 'cancelled'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export interface RunRecord {
  id: string;
  prompt: string;
  model: string;
  provider: string;
  sandboxProvider: string;
  sandboxId: string | null;
  status: RunStatus;
  errorCode: string | null;
  error: string | null;
  costUsd: number | null;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  numTurns: number;
  durationSecs: number | null;
  filesCount: number;
  sandboxCount: number;
  startedAt: string;
  completedAt: string | null;
}

/** What a finished run gave back, beyond its row (lib/results.ts fills it). */
export interface KeptResult {
  result: string | null;
  /** Whether the run was asked for structured output; `structuredOutput` is its JSON text (or null). */
  structured: boolean;
  structuredOutput: string | null;
  /** JSON text of `[{code, content}]`. */
  warnings: string;
  lastEventId: number | null;
}

export interface KeptFileInfo {
  path: string;
  size: number;
  sha256: string;
}

/**
 * What a run writes besides its events, in order with them: all of it goes through the event writer's
 * thread (lib/event-writer.ts), the one connection that writes runs, so no two writers wait on each other.
 */
export type RowWrite =
  | { kind: 'insert'; run: Pick<RunRecord, 'id' | 'prompt' | 'model' | 'provider' | 'sandboxProvider' | 'startedAt'> }
  | { kind: 'sandbox'; id: string; sandboxId: string; sandboxCount: number }
  | { kind: 'fileChunk'; id: string; path: string; seq: number; data: Uint8Array }
  | { kind: 'file'; id: string; file: KeptFileInfo }
  | { kind: 'result'; id: string; result: KeptResult }
  | { kind: 'finish'; id: string; end: RunEnd; completedAt: string };

/** A finished run that still holds stored events or files, oldest first (retention walks these). */
export interface KeptRun {
  id: string;
  completedAt: string;
  /** Bytes of its stored events and files; null until retention has measured them. */
  keptBytes: number | null;
}

/** A row of GET /runs: the prompt cut to its first LIST_PROMPT_CHARS characters, with its full length. */
export type RunSummary = RunRecord & { promptChars: number };
export const LIST_PROMPT_CHARS = 500;

export type RunEnd = Pick<
  RunRecord,
  'status' | 'errorCode' | 'error' | 'costUsd' | 'inputTokens' | 'outputTokens' | 'cacheReadTokens' | 'cacheWriteTokens' | 'numTurns' | 'durationSecs' | 'filesCount' | 'sandboxCount'
>;

// Every column but id and prompt, shared by the full row and the list row.
const REST = `model, provider, sandbox_provider AS sandboxProvider, sandbox_id AS sandboxId, status,
  error_code AS errorCode, error, cost_usd AS costUsd, input_tokens AS inputTokens, output_tokens AS outputTokens,
  cache_read_tokens AS cacheReadTokens, cache_write_tokens AS cacheWriteTokens, num_turns AS numTurns,
  duration_secs AS durationSecs, files_count AS filesCount, sandbox_count AS sandboxCount,
  started_at AS startedAt, completed_at AS completedAt`;
const COLUMNS = `id, prompt, ${REST}`;
// SQLite counts characters (code points) in substr() and length() of TEXT.
const LIST_COLUMNS = `id, substr(prompt, 1, ${LIST_PROMPT_CHARS}) AS prompt, length(prompt) AS promptChars, ${REST}`;

export class RunStore {
  readonly instanceId: string;
  private db: Database.Database;
  private stmts;
  private eventStmts;
  private kept;

  /** `busyTimeoutMs` is for the event writer's own thread, which may wait; the main thread must not. */
  constructor(path: string, opts: { busyTimeoutMs?: number } = {}) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL'); // safe with WAL: a crash loses at most the last commits, never corrupts
    // better-sqlite3 waits synchronously: a long busy timeout would freeze the event loop while some other
    // program holds a lock. Writes that lose fail fast and are handled (events and row updates are retried by
    // the event writer; a run that cannot be recorded is refused).
    this.db.pragma(`busy_timeout = ${opts.busyTimeoutMs ?? 50}`);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS runs (
        id TEXT PRIMARY KEY, prompt TEXT NOT NULL, model TEXT NOT NULL, provider TEXT NOT NULL,
        sandbox_provider TEXT NOT NULL, sandbox_id TEXT, status TEXT NOT NULL, error_code TEXT, error TEXT,
        cost_usd REAL, input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0,
        cache_read_tokens INTEGER NOT NULL DEFAULT 0, cache_write_tokens INTEGER NOT NULL DEFAULT 0,
        num_turns INTEGER NOT NULL DEFAULT 0, duration_secs REAL, files_count INTEGER NOT NULL DEFAULT 0,
        sandbox_count INTEGER NOT NULL DEFAULT 0, started_at TEXT NOT NULL, completed_at TEXT
      );
      CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at DESC);
      CREATE INDEX IF NOT EXISTS runs_status ON runs (status, started_at DESC);
    `);
    this.createEventTables();
    const existing = this.db.prepare(`SELECT value FROM meta WHERE key = 'instance_id'`).get() as { value: string } | undefined;
    this.instanceId = existing?.value ?? `inst_${randomBytes(8).toString('hex')}`;
    if (!existing) this.db.prepare(`INSERT INTO meta (key, value) VALUES ('instance_id', ?)`).run(this.instanceId);
    this.kept = this.prepareKept();
    this.stmts = {
      insert: this.db.prepare(
        `INSERT INTO runs (id, prompt, model, provider, sandbox_provider, status, started_at) VALUES (?, ?, ?, ?, ?, 'running', ?)`,
      ),
      sandbox: this.db.prepare(`UPDATE runs SET sandbox_id = COALESCE(sandbox_id, ?), sandbox_count = ? WHERE id = ?`),
      finish: this.db.prepare(
        `UPDATE runs SET status = @status, error_code = @errorCode, error = @error, cost_usd = @costUsd,
          input_tokens = @inputTokens, output_tokens = @outputTokens, cache_read_tokens = @cacheReadTokens,
          cache_write_tokens = @cacheWriteTokens, num_turns = @numTurns, duration_secs = @durationSecs,
          files_count = @filesCount, sandbox_count = @sandboxCount, completed_at = @completedAt
        WHERE id = @id AND status = 'running'`,
      ),
      get: this.db.prepare(`SELECT ${COLUMNS} FROM runs WHERE id = ?`),
      // Prompts are cut in SQL, so a page of runs never carries (or copies into JS) the full prompts.
      list: this.db.prepare(`SELECT ${LIST_COLUMNS} FROM runs ORDER BY started_at DESC, rowid DESC LIMIT ?`),
      listStatus: this.db.prepare(`SELECT ${LIST_COLUMNS} FROM runs WHERE status = ? ORDER BY started_at DESC, rowid DESC LIMIT ?`),
      // The page after a run: the rows that sort after it in the list's own order (started_at, then rowid).
      cursor: this.db.prepare(`SELECT started_at AS startedAt, rowid FROM runs WHERE id = ?`),
      listAfter: this.db.prepare(
        `SELECT ${LIST_COLUMNS} FROM runs WHERE started_at <= @startedAt AND (started_at < @startedAt OR rowid < @rowid)
          AND (@status IS NULL OR status = @status) ORDER BY started_at DESC, rowid DESC LIMIT @limit`,
      ),
      interrupt: this.db.prepare(
        `UPDATE runs SET status = 'error', error_code = 'INTERRUPTED', error = ?, completed_at = ? WHERE status = 'running'`,
      ),
    };
    this.eventStmts = {
      append: this.db.prepare(`INSERT INTO run_events (run_id, first_id, last_id, frames) VALUES (?, ?, ?, ?)`),
      // Batches are contiguous and stored in order, so the rows after a cursor are those ending past it.
      after: this.db.prepare(`SELECT first_id AS firstId, last_id AS lastId, frames FROM run_events WHERE run_id = ? AND last_id > ? ORDER BY last_id`),
      lastId: this.db.prepare(`SELECT COALESCE(MAX(last_id), 0) AS lastId FROM run_events WHERE run_id = ?`),
      running: this.db.prepare(`SELECT id FROM runs WHERE status = 'running'`),
      // For retention: sizes without reading the frames (length() of a blob is in the row header), oldest rows.
      bytes: this.db.prepare(
        `SELECT COUNT(*) AS n, COALESCE(SUM(len), 0) AS bytes, MAX(last_id) AS last
         FROM (SELECT last_id, length(frames) AS len FROM run_events WHERE run_id = ? AND last_id > ? ORDER BY last_id LIMIT ?)`,
      ),
      oldest: this.db.prepare(`SELECT last_id AS lastId, length(frames) AS bytes FROM run_events WHERE run_id = ? ORDER BY last_id LIMIT ?`),
      drop: this.db.prepare(`DELETE FROM run_events WHERE run_id = ? AND last_id = ?`),
    };
  }

  /** The event log: one row per stored batch of one run's SSE frames (ids firstId..lastId, in order). */
  private createEventTables(): void {
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS run_events (
        run_id TEXT NOT NULL, first_id INTEGER NOT NULL, last_id INTEGER NOT NULL, frames BLOB NOT NULL,
        PRIMARY KEY (run_id, last_id)
      );
    `);
  }

  insert(run: Pick<RunRecord, 'id' | 'prompt' | 'model' | 'provider' | 'sandboxProvider' | 'startedAt'>): void {
    this.stmts.insert.run(run.id, run.prompt, run.model, run.provider, run.sandboxProvider, run.startedAt);
  }

  /** Records the primary sandbox's id (first call wins) and how many sandboxes the run has used so far. */
  setSandbox(id: string, sandboxId: string, sandboxCount: number): void {
    this.stmts.sandbox.run(sandboxId, sandboxCount, id);
  }

  /** Closes a running row; a row already closed is left as it is. */
  finish(id: string, end: RunEnd, completedAt: string): void {
    this.stmts.finish.run({ ...end, id, completedAt });
  }

  get(id: string): RunRecord | undefined {
    return this.stmts.get.get(id) as RunRecord | undefined;
  }

  /** Newest first; each prompt cut to LIST_PROMPT_CHARS characters, `promptChars` its full length. */
  list(limit: number, status?: RunStatus): RunSummary[] {
    return (status ? this.stmts.listStatus.all(status, limit) : this.stmts.list.all(limit)) as RunSummary[];
  }

  /** The next page of `list`: the runs listed after the run `before`; null when there is no such run. */
  listBefore(before: string, limit: number, status?: RunStatus): RunSummary[] | null {
    const at = this.stmts.cursor.get(before) as { startedAt: string; rowid: number } | undefined;
    if (!at) return null;
    return this.stmts.listAfter.all({ ...at, status: status ?? null, limit }) as RunSummary[];
  }

  /**
   * At start: rows a dead process left `running` become `error` / `INTERRUPTED`, and when `terminal` is given,
   * each such run's event log gets that terminal event appended (built for the next id), so readers of the
   * log end cleanly. One transaction. Returns how many.
   */
  markInterrupted(now: string, terminal?: (id: number, message: string) => Buffer): number {
    const message = 'the server stopped while this run was in flight';
    return this.db.transaction(() => {
      if (terminal) {
        for (const { id: runId } of this.eventStmts.running.all() as { id: string }[]) {
          const next = (this.eventStmts.lastId.get(runId) as { lastId: number }).lastId + 1;
          this.eventStmts.append.run(runId, next, next, terminal(next, message));
        }
      }
      return this.stmts.interrupt.run(message, now).changes;
    })();
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

  /** Stores one batch of a run's frames (ids firstId..lastId, following the last stored batch). */
  appendEvents(runId: string, firstId: number, lastId: number, frames: Buffer): void {
    this.eventStmts.append.run(runId, firstId, lastId, frames);
  }

  /**
   * Stored batches holding events after `cursor`, in order, read lazily until about `maxBytes` are collected
   * (at least one row), so a long log is never loaded at once.
   */
  readEvents(runId: string, cursor: number, maxBytes: number): { firstId: number; lastId: number; frames: Buffer }[] {
    const out: { firstId: number; lastId: number; frames: Buffer }[] = [];
    let bytes = 0;
    for (const row of this.eventStmts.after.iterate(runId, cursor) as Iterable<{ firstId: number; lastId: number; frames: Buffer }>) {
      out.push(row);
      bytes += row.frames.length;
      if (bytes >= maxBytes) break; // leaving the loop closes the statement's iterator
    }
    return out;
  }

  // ---- Kept results, files and retention (lib/results.ts, lib/retention.ts) ----

  private prepareKept() {
    // The runs column that marks a run whose events and files retention removed (shared with the event log).
    const runColumns = (this.db.prepare(`PRAGMA table_info(runs)`).all() as { name: string }[]).map((c) => c.name);
    if (!runColumns.includes('events_expired')) this.db.exec(`ALTER TABLE runs ADD COLUMN events_expired INTEGER NOT NULL DEFAULT 0`);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS run_results (
        run_id TEXT PRIMARY KEY, result TEXT, structured INTEGER NOT NULL DEFAULT 0, structured_output TEXT,
        warnings TEXT NOT NULL DEFAULT '[]', last_event_id INTEGER, kept_bytes INTEGER
      );
      -- A returned file: its metadata (stays) and its bytes in chunks (removed by retention, then stored = 0).
      -- Chunks keep every statement short: no single write or read of a 10 MiB blob holds the event loop.
      CREATE TABLE IF NOT EXISTS run_files (
        run_id TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL, stored INTEGER NOT NULL DEFAULT 1,
        PRIMARY KEY (run_id, path)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS run_file_chunks (
        run_id TEXT NOT NULL, path TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (run_id, path, seq)
      );
      -- runs marked expired whose events or file bytes are still being removed (survives a crash mid-way)
      CREATE TABLE IF NOT EXISTS retention_purge (run_id TEXT PRIMARY KEY) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS runs_kept ON runs (completed_at, id) WHERE events_expired = 0 AND completed_at IS NOT NULL;
    `);
    return {
      saveResult: this.db.prepare(
        `INSERT INTO run_results (run_id, result, structured, structured_output, warnings, last_event_id)
         VALUES (@runId, @result, @structured, @structuredOutput, @warnings, @lastEventId)
         ON CONFLICT (run_id) DO UPDATE SET result = excluded.result, structured = excluded.structured,
           structured_output = excluded.structured_output, warnings = excluded.warnings, last_event_id = excluded.last_event_id`,
      ),
      result: this.db.prepare(
        `SELECT result, structured, structured_output AS structuredOutput, warnings, last_event_id AS lastEventId FROM run_results WHERE run_id = ?`,
      ),
      saveFile: this.db.prepare(`INSERT OR REPLACE INTO run_files (run_id, path, size, sha256, stored) VALUES (?, ?, ?, ?, 1)`),
      saveChunk: this.db.prepare(`INSERT OR REPLACE INTO run_file_chunks (run_id, path, seq, data) VALUES (?, ?, ?, ?)`),
      files: this.db.prepare(`SELECT path, size, sha256 FROM run_files WHERE run_id = ? ORDER BY path`),
      fileInfo: this.db.prepare(`SELECT path, size, sha256, stored FROM run_files WHERE run_id = ? AND path = ?`),
      fileChunk: this.db.prepare(`SELECT data FROM run_file_chunks WHERE run_id = ? AND path = ? AND seq = ?`),
      expired: this.db.prepare(`SELECT events_expired AS expired FROM runs WHERE id = ?`),
      keptRuns: this.db.prepare(
        `SELECT r.id, r.completed_at AS completedAt, k.kept_bytes AS keptBytes FROM runs r LEFT JOIN run_results k ON k.run_id = r.id
         WHERE r.events_expired = 0 AND r.completed_at IS NOT NULL AND (r.completed_at, r.id) > (?, ?)
         ORDER BY r.completed_at, r.id LIMIT ?`,
      ),
      // The last stored event id is kept before the events go (a run interrupted by a crash has no other).
      setKeptBytes: this.db.prepare(
        `INSERT INTO run_results (run_id, kept_bytes, last_event_id) VALUES (?, ?, ?)
         ON CONFLICT (run_id) DO UPDATE SET kept_bytes = excluded.kept_bytes, last_event_id = COALESCE(excluded.last_event_id, run_results.last_event_id)`,
      ),
      fileBytes: this.db.prepare(`SELECT COALESCE(SUM(size), 0) AS bytes FROM run_files WHERE run_id = ? AND stored = 1`),
      markExpired: this.db.prepare(`UPDATE runs SET events_expired = 1 WHERE id = ? AND completed_at IS NOT NULL AND events_expired = 0`),
      queuePurge: this.db.prepare(`INSERT OR IGNORE INTO retention_purge (run_id) VALUES (?)`),
      pendingPurges: this.db.prepare(`SELECT run_id AS id FROM retention_purge LIMIT ?`),
      chunksOf: this.db.prepare(`SELECT rowid AS rowid, length(data) AS bytes FROM run_file_chunks WHERE run_id = ? LIMIT ?`),
      dropChunk: this.db.prepare(`DELETE FROM run_file_chunks WHERE rowid = ?`),
      filesGone: this.db.prepare(`UPDATE run_files SET stored = 0 WHERE run_id = ? AND stored = 1`),
      purged: this.db.prepare(`DELETE FROM retention_purge WHERE run_id = ?`),
    };
  }

  saveResult(runId: string, r: KeptResult): void {
    this.kept.saveResult.run({ runId, ...r, structured: r.structured ? 1 : 0 });
  }

  keptResult(runId: string): KeptResult | undefined {
    const row = this.kept.result.get(runId) as (Omit<KeptResult, 'structured'> & { structured: number }) | undefined;
    return row && { ...row, structured: row.structured === 1 };
  }

  /** One chunk of a returned file's bytes (`seq` 0, 1, ...); saveFile afterwards makes the file visible. */
  saveFileChunk(runId: string, path: string, seq: number, data: Uint8Array): void {
    this.kept.saveChunk.run(runId, path, seq, data);
  }

  saveFile(runId: string, file: KeptFileInfo): void {
    this.kept.saveFile.run(runId, file.path, file.size, file.sha256);
  }

  files(runId: string): KeptFileInfo[] {
    return this.kept.files.all(runId) as KeptFileInfo[];
  }

  /** A returned file's metadata; `stored` is false once retention removed its bytes. */
  fileInfo(runId: string, path: string): (KeptFileInfo & { stored: boolean }) | undefined {
    const row = this.kept.fileInfo.get(runId, path) as (KeptFileInfo & { stored: number }) | undefined;
    return row && { ...row, stored: row.stored === 1 };
  }

  /** Chunk `seq` of a returned file's bytes, or null past the last one (or once removed). */
  fileChunk(runId: string, path: string, seq: number): Buffer | null {
    return (this.kept.fileChunk.get(runId, path, seq) as { data: Buffer } | undefined)?.data ?? null;
  }

  eventsExpired(runId: string): boolean {
    return (this.kept.expired.get(runId) as { expired: number } | undefined)?.expired === 1;
  }

  /** The highest stored event id of a run, from the event log (null when it has none). */
  storedLastEventId(runId: string): number | null {
    return (this.eventStmts.lastId.get(runId) as { lastId: number }).lastId || null;
  }

  /** Finished runs still holding events or files, ordered by (completedAt, id), after the given key. */
  keptRuns(after: { completedAt: string; id: string }, limit: number): KeptRun[] {
    return this.kept.keptRuns.all(after.completedAt, after.id, limit) as KeptRun[];
  }

  /** Records what finished runs keep (bytes of events and files) and their last stored event id; one transaction. */
  setKeptBytes(runs: { id: string; bytes: number; lastEventId: number | null }[]): void {
    this.db.transaction(() => {
      for (const r of runs) this.kept.setKeptBytes.run(r.id, r.bytes, r.lastEventId);
    })();
  }

  /**
   * Bytes of up to `limit` stored rows of a run's events (each a batch of events) after event id `afterId`;
   * `last` is the last event id counted, null when there are none.
   */
  eventBytes(runId: string, afterId: number, limit: number): { n: number; bytes: number; last: number | null } {
    return this.eventStmts.bytes.get(runId, afterId, limit) as { n: number; bytes: number; last: number | null };
  }

  fileBytes(runId: string): number {
    return (this.kept.fileBytes.get(runId) as { bytes: number }).bytes;
  }

  /**
   * Marks finished runs' events and files expired and queues their removal, in one transaction (readers see
   * a run expired before anything of it is gone). Returns the ids actually marked (not already expired).
   */
  markExpired(runIds: string[]): string[] {
    return this.db.transaction(() => {
      const marked = runIds.filter((id) => this.kept.markExpired.run(id).changes > 0);
      for (const id of marked) this.kept.queuePurge.run(id);
      return marked;
    })();
  }

  /**
   * One bounded step of removing what queued runs stored: at most `maxRows` rows of events and about
   * `maxBytes` of events and file contents (whole rows and chunks), in one transaction. Returns true once the
   * queue is empty.
   */
  purgeStep(maxRows: number, maxBytes: number): boolean {
    return this.db.transaction(() => {
      let rows = 0;
      let bytes = 0;
      for (const { id } of this.kept.pendingPurges.all(100) as { id: string }[]) {
        for (;;) {
          const batch = this.eventStmts.oldest.all(id, 16) as { lastId: number; bytes: number }[];
          if (!batch.length) break;
          for (const r of batch) {
            if (rows >= maxRows || bytes >= maxBytes) return false;
            this.eventStmts.drop.run(id, r.lastId);
            rows++;
            bytes += r.bytes;
          }
        }
        for (;;) {
          const chunks = this.kept.chunksOf.all(id, 16) as { rowid: number; bytes: number }[];
          if (!chunks.length) break;
          for (const c of chunks) {
            if (bytes >= maxBytes) return false;
            this.kept.dropChunk.run(c.rowid);
            bytes += c.bytes;
          }
        }
        this.kept.filesGone.run(id);
        this.kept.purged.run(id);
      }
      return this.kept.pendingPurges.all(1).length === 0;
    })();
  }

  close(): void {
    this.db.close();
  }
}
