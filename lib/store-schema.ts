// The run store's database: one SQLite file in WAL mode, its tables (created when missing, older layouts
// migrated in place), and the instance id kept in it.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { LIST_PROMPT_CHARS } from './store-runs.ts';

// A run's row holds only the first LIST_PROMPT_CHARS characters of its prompt and its length in characters;
// the whole prompt is in run_prompts, read by GET /runs/:id alone. A long TEXT in a row spills into a chain
// of overflow pages that every read of that row (or of a column after it) walks, so the list reading a page
// of rows that held 1M-character prompts read all of them.
const RUN_COLUMNS = `model, provider, sandbox_provider, sandbox_id, status, error_code, error, cost_usd, input_tokens,
  output_tokens, cache_read_tokens, cache_write_tokens, num_turns, duration_secs, files_count, sandbox_count,
  started_at, completed_at, events_expired`;
const RUNS_DDL = `
  CREATE TABLE runs (
    id TEXT PRIMARY KEY, prompt_preview TEXT NOT NULL, prompt_chars INTEGER NOT NULL, model TEXT NOT NULL,
    provider TEXT NOT NULL, sandbox_provider TEXT NOT NULL, sandbox_id TEXT, status TEXT NOT NULL, error_code TEXT,
    error TEXT, cost_usd REAL, input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens INTEGER NOT NULL DEFAULT 0, cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    num_turns INTEGER NOT NULL DEFAULT 0, duration_secs REAL, files_count INTEGER NOT NULL DEFAULT 0,
    sandbox_count INTEGER NOT NULL DEFAULT 0, started_at TEXT NOT NULL, completed_at TEXT,
    -- set once retention removed the run's events and files
    events_expired INTEGER NOT NULL DEFAULT 0
  );`;

/** Opens (creating when missing) the database at `path` with every table the store uses; returns it and the instance id. */
export function openDatabase(path: string, busyTimeoutMs: number): { db: Database.Database; instanceId: string } {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL'); // safe with WAL: a crash loses at most the last commits, never corrupts
  // better-sqlite3 waits synchronously: a long busy timeout would freeze the event loop while some other
  // program holds a lock. Writes that lose fail fast and are handled (events and row updates are retried by
  // the event writer; a run that cannot be recorded is refused).
  db.pragma(`busy_timeout = ${busyTimeoutMs}`);
  db.exec(`
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS run_prompts (run_id TEXT PRIMARY KEY, prompt TEXT NOT NULL);
    -- The event log: one row per stored batch of one run's SSE frames (ids first_id..last_id, in order).
    CREATE TABLE IF NOT EXISTS run_events (
      run_id TEXT NOT NULL, first_id INTEGER NOT NULL, last_id INTEGER NOT NULL, frames BLOB NOT NULL,
      PRIMARY KEY (run_id, last_id)
    );
  `);
  // IMMEDIATE: the event writer's thread opens the same file, and only one of the two may migrate it.
  db.transaction(() => {
    const columns = (db.prepare(`PRAGMA table_info(runs)`).all() as { name: string }[]).map((c) => c.name);
    if (!columns.length) {
      db.exec(RUNS_DDL);
      return;
    }
    // added after the first release
    if (!columns.includes('events_expired')) db.exec(`ALTER TABLE runs ADD COLUMN events_expired INTEGER NOT NULL DEFAULT 0`);
    if (columns.includes('prompt')) movePrompts(db);
  }).immediate();
  db.exec(`
    CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at DESC);
    CREATE INDEX IF NOT EXISTS runs_status ON runs (status, started_at DESC);
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
  const existing = db.prepare(`SELECT value FROM meta WHERE key = 'instance_id'`).get() as { value: string } | undefined;
  const instanceId = existing?.value ?? `inst_${randomBytes(8).toString('hex')}`;
  if (!existing) db.prepare(`INSERT INTO meta (key, value) VALUES ('instance_id', ?)`).run(instanceId);
  return { db, instanceId };
}

/**
 * A runs table of the layout that held whole prompts becomes the current one (call inside a transaction):
 * prompts move to run_prompts, each row keeps its rowid (the list's order among runs started the same
 * millisecond) and gets its preview and length, cut in SQL as the list used to cut them. The indexes are
 * made again afterwards. Once, at the first open by this version; the freed pages stay in the file for reuse.
 */
function movePrompts(db: Database.Database): void {
  db.exec(`
    ALTER TABLE runs RENAME TO runs_with_prompts;
    DROP INDEX IF EXISTS runs_started;
    DROP INDEX IF EXISTS runs_status;
    DROP INDEX IF EXISTS runs_kept;
    ${RUNS_DDL}
    INSERT INTO run_prompts (run_id, prompt) SELECT id, prompt FROM runs_with_prompts;
    INSERT INTO runs (rowid, id, prompt_preview, prompt_chars, ${RUN_COLUMNS})
      SELECT rowid, id, substr(prompt, 1, ${LIST_PROMPT_CHARS}), length(prompt), ${RUN_COLUMNS} FROM runs_with_prompts;
    DROP TABLE runs_with_prompts;
  `);
}
