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

export type RunEnd = Pick<
  RunRecord,
  'status' | 'errorCode' | 'error' | 'costUsd' | 'inputTokens' | 'outputTokens' | 'cacheReadTokens' | 'cacheWriteTokens' | 'numTurns' | 'durationSecs' | 'filesCount' | 'sandboxCount'
>;

/** A row write that follows a run's events (made by the event writer, in the same transaction as them). */
export type RowWrite =
  | { kind: 'sandbox'; id: string; sandboxId: string; sandboxCount: number }
  | { kind: 'finish'; id: string; end: RunEnd; completedAt: string };

const COLUMNS = `id, prompt, model, provider, sandbox_provider AS sandboxProvider, sandbox_id AS sandboxId, status,
  error_code AS errorCode, error, cost_usd AS costUsd, input_tokens AS inputTokens, output_tokens AS outputTokens,
  cache_read_tokens AS cacheReadTokens, cache_write_tokens AS cacheWriteTokens, num_turns AS numTurns,
  duration_secs AS durationSecs, files_count AS filesCount, sandbox_count AS sandboxCount,
  started_at AS startedAt, completed_at AS completedAt`;

export class RunStore {
  readonly instanceId: string;
  private db: Database.Database;
  private stmts;
  private eventStmts;

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
      list: this.db.prepare(`SELECT ${COLUMNS} FROM runs ORDER BY started_at DESC, rowid DESC LIMIT ?`),
      listStatus: this.db.prepare(`SELECT ${COLUMNS} FROM runs WHERE status = ? ORDER BY started_at DESC, rowid DESC LIMIT ?`),
      interrupt: this.db.prepare(
        `UPDATE runs SET status = 'error', error_code = 'INTERRUPTED', error = ?, completed_at = ? WHERE status = 'running'`,
      ),
    };
    this.eventStmts = {
      append: this.db.prepare(`INSERT INTO run_events (run_id, first_id, last_id, frames) VALUES (?, ?, ?, ?)`),
      // Batches are contiguous and stored in order, so the rows after a cursor are those ending past it.
      after: this.db.prepare(`SELECT first_id AS firstId, last_id AS lastId, frames FROM run_events WHERE run_id = ? AND last_id > ? ORDER BY last_id`),
      lastId: this.db.prepare(`SELECT COALESCE(MAX(last_id), 0) AS lastId FROM run_events WHERE run_id = ?`),
      expired: this.db.prepare(`SELECT events_expired AS expired FROM runs WHERE id = ?`),
      running: this.db.prepare(`SELECT id FROM runs WHERE status = 'running'`),
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
    // Set by retention when a finished run's events are removed; the row itself stays.
    const columns = this.db.prepare(`PRAGMA table_info(runs)`).all() as { name: string }[];
    if (!columns.some((c) => c.name === 'events_expired')) this.db.exec(`ALTER TABLE runs ADD COLUMN events_expired INTEGER NOT NULL DEFAULT 0`);
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

  list(limit: number, status?: RunStatus): RunRecord[] {
    return (status ? this.stmts.listStatus.all(status, limit) : this.stmts.list.all(limit)) as RunRecord[];
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
    if (w.kind === 'sandbox') this.setSandbox(w.id, w.sandboxId, w.sandboxCount);
    else this.finish(w.id, w.end, w.completedAt);
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

  /** Whether retention removed this run's events. */
  eventsExpired(id: string): boolean {
    return (this.eventStmts.expired.get(id) as { expired: number } | undefined)?.expired === 1;
  }

  close(): void {
    this.db.close();
  }
}
