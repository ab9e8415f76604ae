// The stored event log of runs: one row per batch of one run's SSE frames, exactly as they were sent
// (ids firstId..lastId; batches are contiguous and stored in order).
import type Database from 'better-sqlite3';

export interface StoredBatch {
  firstId: number;
  lastId: number;
  frames: Buffer;
}

export class EventRows {
  private readonly stmts;

  constructor(db: Database.Database) {
    this.stmts = {
      append: db.prepare(`INSERT INTO run_events (run_id, first_id, last_id, frames) VALUES (?, ?, ?, ?)`),
      // Batches are contiguous and stored in order, so the rows after a cursor are those ending past it.
      after: db.prepare(`SELECT first_id AS firstId, last_id AS lastId, frames FROM run_events WHERE run_id = ? AND last_id > ? ORDER BY last_id`),
      lastId: db.prepare(`SELECT COALESCE(MAX(last_id), 0) AS lastId FROM run_events WHERE run_id = ?`),
      // For retention: sizes without reading the frames (length() of a blob is in the row header), oldest rows.
      bytes: db.prepare(
        `SELECT COUNT(*) AS n, COALESCE(SUM(len), 0) AS bytes, MAX(last_id) AS last
         FROM (SELECT last_id, length(frames) AS len FROM run_events WHERE run_id = ? AND last_id > ? ORDER BY last_id LIMIT ?)`,
      ),
      oldest: db.prepare(`SELECT last_id AS lastId, length(frames) AS bytes FROM run_events WHERE run_id = ? ORDER BY last_id LIMIT ?`),
      drop: db.prepare(`DELETE FROM run_events WHERE run_id = ? AND last_id = ?`),
    };
  }

  append(runId: string, firstId: number, lastId: number, frames: Buffer): void {
    this.stmts.append.run(runId, firstId, lastId, frames);
  }

  /** Batches after `cursor`, read lazily until about `maxBytes` are collected (at least one row). */
  read(runId: string, cursor: number, maxBytes: number): StoredBatch[] {
    const out: StoredBatch[] = [];
    let bytes = 0;
    for (const row of this.stmts.after.iterate(runId, cursor) as Iterable<StoredBatch>) {
      out.push(row);
      bytes += row.frames.length;
      if (bytes >= maxBytes) break; // leaving the loop closes the statement's iterator
    }
    return out;
  }

  /** The highest stored event id of a run; 0 when it has none. */
  lastId(runId: string): number {
    return (this.stmts.lastId.get(runId) as { lastId: number }).lastId;
  }

  bytes(runId: string, afterId: number, limit: number): { n: number; bytes: number; last: number | null } {
    return this.stmts.bytes.get(runId, afterId, limit) as { n: number; bytes: number; last: number | null };
  }

  /** The oldest `limit` batches of a run: their last id and size. */
  oldest(runId: string, limit: number): { lastId: number; bytes: number }[] {
    return this.stmts.oldest.all(runId, limit) as { lastId: number; bytes: number }[];
  }

  drop(runId: string, lastId: number): void {
    this.stmts.drop.run(runId, lastId);
  }
}
