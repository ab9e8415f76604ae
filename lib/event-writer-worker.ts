// The event writer's thread (see lib/event-writer.ts): each message from the main thread is committed as one
// transaction on this thread's own connection, then acknowledged. Here a lock may be waited for (up to 1 s
// per attempt) without freezing anything else.
import { parentPort, workerData } from 'node:worker_threads';
import type { WireMessage, WireOp, WireReply } from './event-writer.ts';
import { RunStore } from './store.ts';

/** Consecutive batches of one run are merged into rows of about this size (fewer, larger rows). */
const MAX_ROW_BYTES = 256 * 1024;

const store = new RunStore((workerData as { path: string }).path, { busyTimeoutMs: 1000 });
const port = parentPort!;

port.on('message', ({ seq, ops, frames }: WireMessage) => {
  let reply: WireReply;
  try {
    store.transaction(() => writeAll(ops, Buffer.from(frames)));
    reply = { seq, ok: true };
  } catch (err) {
    reply = { seq, ok: false, error: (err as Error).message };
  }
  port.postMessage(reply);
});

/**
 * Writes `ops` in order; a row write goes after every batch before it. Consecutive batches of one run lie next
 * to each other in `frames`, so they are merged into one row without copying.
 */
function writeAll(ops: WireOp[], frames: Buffer): void {
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
