// Run history in SQLite (WAL), this instance only (docs/api.md#run-records). Also keeps the instance id,
// so sandboxes labelled by a previous process on the same file can be recognised and reaped.
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

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL'); // safe with WAL: a crash loses at most the last commits, never corrupts
    // better-sqlite3 waits synchronously: a long busy timeout would freeze the event loop while some other
    // program holds a lock. Writes that lose fail fast and are handled (lib/run.ts retries the run's row).
    this.db.pragma('busy_timeout = 50');
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
      // Prompts are cut in SQL, so a page of runs never carries (or copies into JS) the full prompts.
      list: this.db.prepare(`SELECT ${LIST_COLUMNS} FROM runs ORDER BY started_at DESC, rowid DESC LIMIT ?`),
      listStatus: this.db.prepare(`SELECT ${LIST_COLUMNS} FROM runs WHERE status = ? ORDER BY started_at DESC, rowid DESC LIMIT ?`),
      interrupt: this.db.prepare(
        `UPDATE runs SET status = 'error', error_code = 'INTERRUPTED', error = 'the server stopped while this run was in flight', completed_at = ? WHERE status = 'running'`,
      ),
    };
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

  /** At start: rows a dead process left `running` become `error` / `INTERRUPTED`. Returns how many. */
  markInterrupted(now: string): number {
    return this.stmts.interrupt.run(now).changes;
  }

  close(): void {
    this.db.close();
  }
}
