// How a message of the event writer becomes rows: each run's consecutive batches merged into one row (their
// frames lie next to each other in the message's buffer, so merging copies nothing), row writes in order.
import type { WireOp } from './event-writer.ts';
import type { RowWrite } from './store.ts';

/** Consecutive batches of one run are merged into rows of about this size (fewer, larger rows). */
const MAX_ROW_BYTES = 256 * 1024;

export interface RowStore {
  appendEvents(runId: string, firstId: number, lastId: number, frames: Buffer): void;
  applyRowWrite(w: RowWrite): void;
}

/** Writes `ops` in order (call it inside one transaction); a row write goes after every batch before it. */
export function writeOps(store: RowStore, ops: WireOp[], frames: Buffer): void {
  const rows = new Map<string, { firstId: number; lastId: number; start: number; end: number }>();
  const put = (runId: string) => {
    const row = rows.get(runId);
    if (!row) return;
    store.appendEvents(runId, row.firstId, row.lastId, frames.subarray(row.start, row.end));
    rows.delete(runId);
  };
  for (const op of ops) {
    if ('row' in op) {
      for (const runId of [...rows.keys()]) put(runId);
      store.applyRowWrite(op.row);
      continue;
    }
    const row = rows.get(op.runId);
    if (row && row.lastId + 1 === op.firstId && row.end === op.start && op.end - row.start <= MAX_ROW_BYTES) {
      row.lastId = op.lastId;
      row.end = op.end;
      continue;
    }
    put(op.runId);
    rows.set(op.runId, { firstId: op.firstId, lastId: op.lastId, start: op.start, end: op.end });
  }
  for (const runId of [...rows.keys()]) put(runId);
}
