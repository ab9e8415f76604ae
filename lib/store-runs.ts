// The runs table: one row per run (docs/api.md#run-records), inserted when the run starts and closed once
// when it ends; the list of GET /runs, newest first, paged by cursor.
import type Database from 'better-sqlite3';

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

/** What a run's row holds when it starts. */
export type NewRun = Pick<RunRecord, 'id' | 'prompt' | 'model' | 'provider' | 'sandboxProvider' | 'startedAt'>;

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
// The list reads the runs table alone: the whole prompts are in run_prompts (see lib/store-schema.ts).
const LIST_COLUMNS = `id, prompt_preview AS prompt, prompt_chars AS promptChars, ${REST}`;

/**
 * The first LIST_PROMPT_CHARS characters of a prompt and its length, both in code points as SQLite's substr()
 * and length() count them (the list cut them in SQL before, and the migration still does): a pair of UTF-16
 * surrogates is one character, and so is a lone surrogate.
 */
export function promptPreview(prompt: string): { preview: string; chars: number } {
  let chars = 0;
  let end = prompt.length;
  for (let i = 0; i < prompt.length; i++) {
    if (chars === LIST_PROMPT_CHARS) end = Math.min(end, i);
    const c = prompt.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < prompt.length) {
      const d = prompt.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    chars++;
  }
  return { preview: prompt.slice(0, end), chars };
}

export class RunRows {
  private readonly stmts;

  constructor(private readonly db: Database.Database) {
    this.stmts = {
      insert: db.prepare(
        `INSERT INTO runs (id, prompt_preview, prompt_chars, model, provider, sandbox_provider, status, started_at) VALUES (?, ?, ?, ?, ?, ?, 'running', ?)`,
      ),
      insertPrompt: db.prepare(`INSERT INTO run_prompts (run_id, prompt) VALUES (?, ?)`),
      sandbox: db.prepare(`UPDATE runs SET sandbox_id = COALESCE(sandbox_id, ?), sandbox_count = ? WHERE id = ?`),
      finish: db.prepare(
        `UPDATE runs SET status = @status, error_code = @errorCode, error = @error, cost_usd = @costUsd,
          input_tokens = @inputTokens, output_tokens = @outputTokens, cache_read_tokens = @cacheReadTokens,
          cache_write_tokens = @cacheWriteTokens, num_turns = @numTurns, duration_secs = @durationSecs,
          files_count = @filesCount, sandbox_count = @sandboxCount, completed_at = @completedAt
        WHERE id = @id AND status = 'running'`,
      ),
      // The preview stands in should a prompt row be missing: the run stays readable.
      get: db.prepare(`SELECT id, COALESCE(p.prompt, prompt_preview) AS prompt, ${REST} FROM runs LEFT JOIN run_prompts p ON p.run_id = id WHERE id = ?`),
      list: db.prepare(`SELECT ${LIST_COLUMNS} FROM runs ORDER BY started_at DESC, rowid DESC LIMIT ?`),
      listStatus: db.prepare(`SELECT ${LIST_COLUMNS} FROM runs WHERE status = ? ORDER BY started_at DESC, rowid DESC LIMIT ?`),
      // The page after a run: the rows that sort after it in the list's own order (started_at, then rowid).
      cursor: db.prepare(`SELECT started_at AS startedAt, rowid FROM runs WHERE id = ?`),
      listAfter: db.prepare(
        `SELECT ${LIST_COLUMNS} FROM runs WHERE started_at <= @startedAt AND (started_at < @startedAt OR rowid < @rowid)
          AND (@status IS NULL OR status = @status) ORDER BY started_at DESC, rowid DESC LIMIT @limit`,
      ),
      running: db.prepare(`SELECT id FROM runs WHERE status = 'running'`),
      interrupt: db.prepare(`UPDATE runs SET status = 'error', error_code = 'INTERRUPTED', error = ?, completed_at = ? WHERE status = 'running'`),
    };
  }

  insert(run: NewRun): void {
    const { preview, chars } = promptPreview(run.prompt);
    this.db.transaction(() => {
      this.stmts.insert.run(run.id, preview, chars, run.model, run.provider, run.sandboxProvider, run.startedAt);
      this.stmts.insertPrompt.run(run.id, run.prompt);
    })();
  }

  setSandbox(id: string, sandboxId: string, sandboxCount: number): void {
    this.stmts.sandbox.run(sandboxId, sandboxCount, id);
  }

  finish(id: string, end: RunEnd, completedAt: string): void {
    this.stmts.finish.run({ ...end, id, completedAt });
  }

  get(id: string): RunRecord | undefined {
    return this.stmts.get.get(id) as RunRecord | undefined;
  }

  list(limit: number, status?: RunStatus): RunSummary[] {
    return (status ? this.stmts.listStatus.all(status, limit) : this.stmts.list.all(limit)) as RunSummary[];
  }

  listBefore(before: string, limit: number, status?: RunStatus): RunSummary[] | null {
    const at = this.stmts.cursor.get(before) as { startedAt: string; rowid: number } | undefined;
    if (!at) return null;
    return this.stmts.listAfter.all({ ...at, status: status ?? null, limit }) as RunSummary[];
  }

  /** Ids of the rows still `running`. */
  running(): string[] {
    return (this.stmts.running.all() as { id: string }[]).map((r) => r.id);
  }

  /** Every `running` row becomes `error` / `INTERRUPTED`; returns how many. */
  interrupt(message: string, now: string): number {
    return this.stmts.interrupt.run(message, now).changes;
  }
}
