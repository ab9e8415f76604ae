// Reading a run's events over HTTP: an SSE parser, and a follower that picks a dropped stream up again with
// Last-Event-ID (the server sends the rest with no gap and no duplicate) until the terminal event.
import { setTimeout as sleep } from 'node:timers/promises';
import { CliError, EXIT } from './errors.ts';
import { Client, ConnectionError, RefusedError } from './http.ts';
import { readSse as parse, SseLineTooLong, type SseMessage } from '../public/sse-parse.js';

export type { SseMessage };

/** The shared parser (public/sse-parse.js), its one failure given the CLI's exit code. */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage> {
  try {
    yield* parse(body);
  } catch (err) {
    if (err instanceof SseLineTooLong) throw new CliError(EXIT.CONNECTION, err.message);
    throw err;
  }
}


export type RunEvent = Record<string, any> & { type: string };

export const isTerminal = (e: RunEvent) => e.type === 'result' || e.type === 'error';

function parseEvent(msg: SseMessage): RunEvent {
  try {
    const e = JSON.parse(msg.data);
    if (e && typeof e === 'object' && typeof e.type === 'string') return e;
  } catch {
    /* below */
  }
  throw new CliError(EXIT.CONNECTION, `event ${msg.id ?? '?'} is not a JSON object with a type: ${JSON.stringify(msg.data.slice(0, 100))}`);
}

export interface FollowOptions {
  client: Client;
  runId: string;
  /** The id of the last event already seen (0: from the start). */
  after?: number;
  /** A response already streaming this run's events (POST /query). */
  first?: Response;
  /** Stop after this event id even if the run goes on (`logs` without --follow). */
  until?: number;
  /** How long to keep trying to reattach after a drop before giving up (exit 4). */
  reattachForMs?: number;
  signal?: AbortSignal;
  onEvent(event: RunEvent, id: number, data: string): void | Promise<void>;
  /** A drop, and each retry; `attached` once the stream is back. */
  onReconnect?(info: { lastEventId: number; attempt: number; attached: boolean; error?: string }): void;
}

export interface FollowResult {
  terminal: RunEvent | null;
  lastEventId: number;
}

/**
 * Reads the run's events to its terminal event, reattaching after drops. Without a terminal event it ends
 * when the stream ends and the run is no longer running (a run whose client disconnected sends none), or
 * at `until`, or when `signal` aborts. A refusal on reattach (404, 410, 401) is thrown as it is.
 */
export async function followRun(o: FollowOptions): Promise<FollowResult> {
  let after = o.after ?? 0;
  let res = o.first;
  let attempt = 0;
  let dropSince = 0;
  const window = o.reattachForMs ?? 60_000;
  for (;;) {
    if (o.signal?.aborted) return { terminal: null, lastEventId: after };
    if (o.until !== undefined && after >= o.until) return { terminal: null, lastEventId: after };
    let failure: string | undefined;
    try {
      if (!res) {
        res = await o.client.request(Client.runPath(o.runId, 'events'), { headers: { 'last-event-id': String(after) }, signal: o.signal });
        if (attempt > 0) o.onReconnect?.({ lastEventId: after, attempt, attached: true });
      }
      attempt = 0;
      for await (const msg of readSse(res.body!)) {
        const id = Number(msg.id);
        if (Number.isInteger(id) && id <= after) continue; // never twice
        if (Number.isInteger(id)) after = id;
        const event = parseEvent(msg);
        await o.onEvent(event, after, msg.data);
        if (isTerminal(event)) return { terminal: event, lastEventId: after };
        if (o.until !== undefined && after >= o.until) return { terminal: null, lastEventId: after };
      }
      if (o.signal?.aborted) return { terminal: null, lastEventId: after };
      // The stream closed without a terminal event: the run ended that way, or the connection was cut.
      const run = await o.client.json(Client.runPath(o.runId), { signal: o.signal });
      if (run.status !== 'running') return { terminal: null, lastEventId: after };
      failure = 'the stream closed before the run ended';
    } catch (err) {
      if (o.signal?.aborted) return { terminal: null, lastEventId: after };
      if (err instanceof RefusedError && err.status < 500) throw err;
      if (err instanceof CliError && !(err instanceof ConnectionError) && !(err instanceof RefusedError)) throw err;
      failure = err instanceof CliError ? err.message : `the stream broke: ${(err as Error)?.message ?? err}`;
    }
    res = undefined;
    if (attempt === 0) dropSince = Date.now();
    if (Date.now() - dropSince > window) {
      throw new CliError(EXIT.CONNECTION, `lost the event stream of ${o.runId} after event ${after} and could not reattach for ${Math.round(window / 1000)} s (${failure})`, `the run may still be going: sandcaster logs ${o.runId} --follow`);
    }
    attempt++;
    o.onReconnect?.({ lastEventId: after, attempt, attached: false, error: failure });
    await sleep(Math.min(250 * 2 ** (attempt - 1), 5000), undefined, { signal: o.signal }).catch(() => {});
  }
}
