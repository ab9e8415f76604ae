// The event log's table (lib/store.ts `run_events`: one row per batch of a run's SSE frames). Tests that need
// stored events without running a model write rows of one event each; the server creates the table, and
// ensureEventsTable does for a database no server has opened yet (same schema; otherwise a no-op).
import type Database from 'better-sqlite3';

export function ensureEventsTable(db: Database.Database): void {
  db.exec(`CREATE TABLE IF NOT EXISTS run_events (
    run_id TEXT NOT NULL, first_id INTEGER NOT NULL, last_id INTEGER NOT NULL, frames BLOB NOT NULL, PRIMARY KEY (run_id, last_id)
  )`);
}

/** Inserts one event as its own row: `.run(runId, id, data)`. */
export const INSERT_EVENT = `INSERT INTO run_events (run_id, first_id, last_id, frames) SELECT r, i, i, d FROM (SELECT ? AS r, ? AS i, ? AS d)`;
