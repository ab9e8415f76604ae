// What a finished run keeps besides its row and events: its result and returned files (lib/results.ts),
// and retention's side of the store (lib/retention.ts): what each run holds, expiry, and the bounded purge.
import type Database from 'better-sqlite3';
import type { EventRows } from './store-events.ts';

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

/** A finished run that still holds stored events or files, oldest first (retention walks these). */
export interface KeptRun {
  id: string;
  completedAt: string;
  /** Bytes of its stored events and files; null until retention has measured them. */
  keptBytes: number | null;
}

export class KeptRows {
  private readonly stmts;

  constructor(
    private readonly db: Database.Database,
    private readonly events: EventRows,
  ) {
    this.stmts = {
      saveResult: db.prepare(
        `INSERT INTO run_results (run_id, result, structured, structured_output, warnings, last_event_id)
         VALUES (@runId, @result, @structured, @structuredOutput, @warnings, @lastEventId)
         ON CONFLICT (run_id) DO UPDATE SET result = excluded.result, structured = excluded.structured,
           structured_output = excluded.structured_output, warnings = excluded.warnings, last_event_id = excluded.last_event_id`,
      ),
      result: db.prepare(`SELECT result, structured, structured_output AS structuredOutput, warnings, last_event_id AS lastEventId FROM run_results WHERE run_id = ?`),
      saveFile: db.prepare(`INSERT OR REPLACE INTO run_files (run_id, path, size, sha256, stored) VALUES (?, ?, ?, ?, 1)`),
      saveChunk: db.prepare(`INSERT OR REPLACE INTO run_file_chunks (run_id, path, seq, data) VALUES (?, ?, ?, ?)`),
      files: db.prepare(`SELECT path, size, sha256 FROM run_files WHERE run_id = ? ORDER BY path`),
      fileInfo: db.prepare(`SELECT path, size, sha256, stored FROM run_files WHERE run_id = ? AND path = ?`),
      fileChunk: db.prepare(`SELECT data FROM run_file_chunks WHERE run_id = ? AND path = ? AND seq = ?`),
      expired: db.prepare(`SELECT events_expired AS expired FROM runs WHERE id = ?`),
      keptRuns: db.prepare(
        `SELECT r.id, r.completed_at AS completedAt, k.kept_bytes AS keptBytes FROM runs r LEFT JOIN run_results k ON k.run_id = r.id
         WHERE r.events_expired = 0 AND r.completed_at IS NOT NULL AND (r.completed_at, r.id) > (?, ?)
         ORDER BY r.completed_at, r.id LIMIT ?`,
      ),
      // The last stored event id is kept before the events go (a run interrupted by a crash has no other).
      setKeptBytes: db.prepare(
        `INSERT INTO run_results (run_id, kept_bytes, last_event_id) VALUES (?, ?, ?)
         ON CONFLICT (run_id) DO UPDATE SET kept_bytes = excluded.kept_bytes, last_event_id = COALESCE(excluded.last_event_id, run_results.last_event_id)`,
      ),
      fileBytes: db.prepare(`SELECT COALESCE(SUM(size), 0) AS bytes FROM run_files WHERE run_id = ? AND stored = 1`),
      markExpired: db.prepare(`UPDATE runs SET events_expired = 1 WHERE id = ? AND completed_at IS NOT NULL AND events_expired = 0`),
      queuePurge: db.prepare(`INSERT OR IGNORE INTO retention_purge (run_id) VALUES (?)`),
      pendingPurges: db.prepare(`SELECT run_id AS id FROM retention_purge LIMIT ?`),
      chunksOf: db.prepare(`SELECT rowid AS rowid, length(data) AS bytes FROM run_file_chunks WHERE run_id = ? LIMIT ?`),
      dropChunk: db.prepare(`DELETE FROM run_file_chunks WHERE rowid = ?`),
      filesGone: db.prepare(`UPDATE run_files SET stored = 0 WHERE run_id = ? AND stored = 1`),
      purged: db.prepare(`DELETE FROM retention_purge WHERE run_id = ?`),
    };
  }

  saveResult(runId: string, r: KeptResult): void {
    this.stmts.saveResult.run({ runId, ...r, structured: r.structured ? 1 : 0 });
  }

  result(runId: string): KeptResult | undefined {
    const row = this.stmts.result.get(runId) as (Omit<KeptResult, 'structured'> & { structured: number }) | undefined;
    return row && { ...row, structured: row.structured === 1 };
  }

  saveFileChunk(runId: string, path: string, seq: number, data: Uint8Array): void {
    this.stmts.saveChunk.run(runId, path, seq, data);
  }

  saveFile(runId: string, file: KeptFileInfo): void {
    this.stmts.saveFile.run(runId, file.path, file.size, file.sha256);
  }

  files(runId: string): KeptFileInfo[] {
    return this.stmts.files.all(runId) as KeptFileInfo[];
  }

  fileInfo(runId: string, path: string): (KeptFileInfo & { stored: boolean }) | undefined {
    const row = this.stmts.fileInfo.get(runId, path) as (KeptFileInfo & { stored: number }) | undefined;
    return row && { ...row, stored: row.stored === 1 };
  }

  fileChunk(runId: string, path: string, seq: number): Buffer | null {
    return (this.stmts.fileChunk.get(runId, path, seq) as { data: Buffer } | undefined)?.data ?? null;
  }

  eventsExpired(runId: string): boolean {
    return (this.stmts.expired.get(runId) as { expired: number } | undefined)?.expired === 1;
  }

  keptRuns(after: { completedAt: string; id: string }, limit: number): KeptRun[] {
    return this.stmts.keptRuns.all(after.completedAt, after.id, limit) as KeptRun[];
  }

  setKeptBytes(runs: { id: string; bytes: number; lastEventId: number | null }[]): void {
    this.db.transaction(() => {
      for (const r of runs) this.stmts.setKeptBytes.run(r.id, r.bytes, r.lastEventId);
    })();
  }

  fileBytes(runId: string): number {
    return (this.stmts.fileBytes.get(runId) as { bytes: number }).bytes;
  }

  markExpired(runIds: string[]): string[] {
    return this.db.transaction(() => {
      const marked = runIds.filter((id) => this.stmts.markExpired.run(id).changes > 0);
      for (const id of marked) this.stmts.queuePurge.run(id);
      return marked;
    })();
  }

  purgeStep(maxRows: number, maxBytes: number): boolean {
    return this.db.transaction(() => {
      let rows = 0;
      let bytes = 0;
      for (const { id } of this.stmts.pendingPurges.all(100) as { id: string }[]) {
        for (;;) {
          const batch = this.events.oldest(id, 16);
          if (!batch.length) break;
          for (const r of batch) {
            if (rows >= maxRows || bytes >= maxBytes) return false;
            this.events.drop(id, r.lastId);
            rows++;
            bytes += r.bytes;
          }
        }
        for (;;) {
          const chunks = this.stmts.chunksOf.all(id, 16) as { rowid: number; bytes: number }[];
          if (!chunks.length) break;
          for (const c of chunks) {
            if (bytes >= maxBytes) return false;
            this.stmts.dropChunk.run(c.rowid);
            bytes += c.bytes;
          }
        }
        this.stmts.filesGone.run(id);
        this.stmts.purged.run(id);
      }
      return this.stmts.pendingPurges.all(1).length === 0;
    })();
  }
}
