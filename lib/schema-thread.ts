// JSON Schema work off the event loop. Compiling a client's schema and validating a model's answer against
// it cost up to schema size x answer size (measured: 46 s for a 20 KB `anyOf` schema over 30,000 items,
// 400 ms just to compile it), so both run in worker threads, each job under a time limit: a job past it has
// its worker terminated (a fresh one starts for the next job) and is answered as too costly.
import { Worker } from 'node:worker_threads';
import { log } from './log.ts';
import type { OutputFormat } from './structured.ts';
import type { FieldIssue } from './validate.ts';

/** Longest a compile or a validation may run. */
export const SCHEMA_TIME_LIMIT_MS = 5000;
/** Worker threads at most; more jobs wait in line. */
const MAX_WORKERS = 2;
/** Heap of one worker; a job past it ends like a timeout. */
const WORKER_HEAP_MB = 256;

export type SchemaJob =
  | { id: number; kind: 'compile'; schema: string; at: string }
  | { id: number; kind: 'validate'; schema: string; at: string; answer: string };
export type SchemaReply = { id: number; issues: FieldIssue[] } | { id: number; error: string | null };

type Outcome = { reply: SchemaReply } | { failed: string };

interface Slot {
  worker: Worker;
  job?: { id: number; done: (o: Outcome) => void; timer: NodeJS.Timeout };
}

const slots = new Set<Slot>();
const waiting: { job: SchemaJob; done: (o: Outcome) => void }[] = [];
let nextId = 1;

function startWorker(): Slot {
  // The entry registers tsx in the thread, then loads lib/schema-worker.ts.
  const worker = new Worker(new URL('./schema-worker.mjs', import.meta.url), {
    resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB },
  });
  const slot: Slot = { worker };
  const finish = (o: Outcome) => {
    const job = slot.job;
    if (!job) return;
    clearTimeout(job.timer);
    slot.job = undefined;
    worker.unref();
    job.done(o);
  };
  worker.on('message', (reply: SchemaReply) => {
    if (slot.job?.id !== reply.id) return;
    finish({ reply });
    pump();
  });
  const gone = (why: string) => {
    if (!slots.delete(slot)) return;
    finish({ failed: why });
    pump();
  };
  worker.on('error', (err) => {
    log.warn('schema thread failed', { error: err });
    gone((err as { code?: string }).code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'ran out of memory' : 'failed');
  });
  worker.on('exit', () => gone('stopped'));
  worker.unref(); // an idle worker never keeps the process alive (after the listeners, which ref it)
  slots.add(slot);
  return slot;
}

function pump(): void {
  while (waiting.length) {
    let slot = [...slots].find((s) => !s.job);
    if (!slot && slots.size < MAX_WORKERS) slot = startWorker();
    if (!slot) return;
    const { job, done } = waiting.shift()!;
    const timer = setTimeout(() => {
      const s = slot!;
      slots.delete(s);
      void s.worker.terminate();
      s.job = undefined;
      done({ failed: `took longer than ${SCHEMA_TIME_LIMIT_MS / 1000} s` });
      pump();
    }, SCHEMA_TIME_LIMIT_MS);
    timer.unref();
    // The time limit counts from here, so it includes a fresh worker's start (about half a second).
    slot.job = { id: job.id, done, timer };
    slot.worker.ref();
    slot.worker.postMessage(job);
  }
}

type Unnumbered<T> = T extends unknown ? Omit<T, 'id'> : never;

function submit(job: Unnumbered<SchemaJob>): Promise<Outcome> {
  return new Promise((done) => {
    waiting.push({ job: { ...job, id: nextId++ } as SchemaJob, done });
    pump();
  });
}

/** The problems that make `schema` unusable as outputFormat (empty when it compiles), named under `at`. */
export async function checkOutputFormat(schema: OutputFormat, at = 'outputFormat'): Promise<FieldIssue[]> {
  const o = await submit({ kind: 'compile', schema: JSON.stringify(schema), at });
  if ('failed' in o) return [{ path: at, message: `is too costly to compile (compiling it ${o.failed})` }];
  return 'issues' in o.reply ? o.reply.issues : [];
}

/** Null when the JSON text `answer` is valid against `schema`, else what is wrong, for the model. */
export async function validateAnswer(schema: OutputFormat, answer: string): Promise<string | null> {
  const o = await submit({ kind: 'validate', schema: JSON.stringify(schema), at: 'outputFormat', answer });
  if ('failed' in o) return `the answer could not be checked against the schema (validating it ${o.failed}); answer with less data`;
  return 'error' in o.reply ? o.reply.error : null;
}
