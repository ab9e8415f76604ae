// The event writer's thread (see lib/event-writer.ts): each message from the main thread is committed as one
// transaction on this thread's own connection, then acknowledged. Here a lock may be waited for (up to 1 s
// per attempt) without freezing anything else.
import { parentPort, workerData } from 'node:worker_threads';
import { writeOps } from './event-rows.ts';
import type { WireMessage, WireReply } from './event-writer.ts';
import { RunStore } from './store.ts';

const store = new RunStore((workerData as { path: string }).path, { busyTimeoutMs: 1000 });
const port = parentPort!;

port.on('message', ({ seq, ops, frames }: WireMessage) => {
  let reply: WireReply;
  try {
    store.transaction(() => writeOps(store, ops, Buffer.from(frames)));
    reply = { seq, ok: true };
  } catch (err) {
    reply = { seq, ok: false, error: (err as Error).message };
  }
  port.postMessage(reply);
});
