// The event log's table, as the branch that adds the event log defines it. Tests create it where the server
// does not yet, so retention can be exercised against stored events; where it exists this changes nothing.
import type Database from 'better-sqlite3';

export function ensureEventsTable(db: Database.Database): void {
  db.exec(`CREATE TABLE IF NOT EXISTS events (run_id TEXT NOT NULL, id INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (run_id, id)) WITHOUT ROWID`);
}
