// What a run gives back, kept after it ends: the final answer, the structured output, the warnings and the
// returned files (their bytes with a sha256), so `GET /runs/:id` and `GET /runs/:id/files/<path>` answer
// long after the stream closed. The run shows each event to a RunResults as it is emitted and saves it
// once, before its row is closed: a client that sees the terminal event can read everything at once.
import { createHash } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { log } from './log.ts';
import type { StreamEvent } from './sse.ts';
import type { KeptFileInfo, RowWrite, RunRecord, RunStore } from './store.ts';

/** Characters of a `file` event's content decoded and stored per turn of the event loop (about 768 KiB). */
const CHUNK_CHARS = 4 * 262_144;

/** Warnings kept per run, and characters kept of each (they are short sentences; this is a bound, not a format). */
const MAX_WARNINGS = 100;
const MAX_WARNING_CHARS = 10_000;

export interface Warning {
  code: string;
  content: string;
}

/** A run as `GET /runs/:id` shows it (and as a completion callback sends it). */
export interface RunView extends RunRecord {
  result: string | null;
  /** Present when the run was asked for structured output: the validated value, or null. */
  structuredOutput?: unknown;
  warnings: Warning[];
  files: KeptFileInfo[];
  lastEventId: number | null;
  eventsExpired: boolean;
}

export class RunResults {
  private warnings: Warning[] = [];
  private fileEvents: StreamEvent[] = [];
  // `run_started` is event 1 and is sent before the run's RunResults exists; ids count every event after it.
  private lastId = 1;

  /** `structured`: the run was asked for structured output (the record then always has the field). */
  constructor(private readonly structured: boolean) {}

  /** Notes one emitted event (returned unchanged, so it can wrap a send). */
  see(e: StreamEvent): StreamEvent {
    this.lastId++;
    if (e.type === 'warning' && this.warnings.length < MAX_WARNINGS) {
      this.warnings.push({ code: String(e.code), content: String(e.content).slice(0, MAX_WARNING_CHARS) });
    } else if (e.type === 'file') this.fileEvents.push(e);
    return e;
  }

  /**
   * Hands the files to `write` (the run's writer, lib/event-writer.ts: stored in order, retried if storage
   * fails), one chunk decoded per turn of the event loop (a file's metadata last, so it is listed only once
   * whole), then the result. Never throws: a failure is logged and costs only the kept record.
   */
  async save(write: (row: RowWrite) => void, runId: string, terminal: StreamEvent | undefined): Promise<void> {
    const lastEventId = terminal ? this.lastId + 1 : this.lastId;
    try {
      for (const e of this.fileEvents) {
        const path = String(e.path);
        const hash = createHash('sha256');
        let size = 0;
        let seq = 0;
        for (const chunk of decodeInChunks(String(e.content), e.encoding === 'base64' ? 'base64' : 'utf8')) {
          hash.update(chunk);
          size += chunk.length;
          write({ kind: 'fileChunk', id: runId, path, seq: seq++, data: chunk });
          await nextTurn();
        }
        write({ kind: 'file', id: runId, file: { path, size, sha256: hash.digest('hex') } });
      }
      const structuredOutput = terminal?.type === 'result' ? terminal.structuredOutput : undefined;
      write({
        kind: 'result',
        id: runId,
        result: {
          result: terminal?.type === 'result' ? String(terminal.content) : null,
          structured: this.structured,
          structuredOutput: this.structured ? JSON.stringify(structuredOutput ?? null) : null,
          warnings: JSON.stringify(this.warnings),
          lastEventId,
        },
      });
    } catch (err) {
      log.error('could not keep the run results', { runId, error: err });
    }
  }
}

/** The bytes of a `file` event's content, a slice at a time (never splitting a base64 quantum or a surrogate pair). */
function* decodeInChunks(content: string, encoding: 'base64' | 'utf8'): Generator<Buffer> {
  for (let start = 0; start < content.length; ) {
    let end = Math.min(content.length, start + CHUNK_CHARS);
    if (encoding === 'utf8' && end < content.length && isHighSurrogate(content.charCodeAt(end - 1))) end--;
    yield Buffer.from(content.slice(start, end), encoding);
    start = end;
  }
}

const isHighSurrogate = (c: number) => c >= 0xd800 && c <= 0xdbff;

/** The full record of a run, or undefined when this instance has no such run. */
export function runView(store: RunStore, id: string): RunView | undefined {
  const run = store.get(id);
  if (!run) return undefined;
  const kept = store.keptResult(id);
  return {
    ...run,
    result: kept?.result ?? null,
    ...(kept?.structured ? { structuredOutput: JSON.parse(kept.structuredOutput ?? 'null') } : {}),
    warnings: kept ? JSON.parse(kept.warnings) : [],
    files: store.files(id),
    // The event log is the truth while it holds the run's events; the kept id outlives them.
    lastEventId: store.storedLastEventId(id) ?? kept?.lastEventId ?? null,
    eventsExpired: store.eventsExpired(id),
  };
}
