// Reading a run's events over HTTP: an SSE parser, and a follower that picks a dropped stream up again with
// Last-Event-ID (the server sends the rest with no gap and no duplicate) until the terminal event.
import { setTimeout as sleep } from 'node:timers/promises';
import { CliError, EXIT } from './errors.ts';
import { Client, ConnectionError, RefusedError } from './http.ts';

export interface SseMessage {
  id?: string;
  event: string;
  /** The data lines as sent (for this API: one line of JSON). */
  data: string;
}

/** A `file` event holds at most 10 MiB, about 14 MiB as base64 JSON; a longer line is not from our server. */
export const MAX_LINE_CHARS = 64 * 1024 * 1024;

/** Parses a text/event-stream body; comments (`: ping`) are skipped. Ends when the body ends. */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage> {
  const reader = body.pipeThrough(new TextDecoderStream() as unknown as ReadableWritablePair<string, Uint8Array>).getReader();
  let buf = '';
  let scanned = 0;
  let msg: { id?: string; event: string; data: string[] } = { event: 'message', data: [] };
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buf += value;
      let nl: number;
      while ((nl = buf.indexOf('\n', scanned)) >= 0) {
        let line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        scanned = 0;
        if (line.endsWith('\r')) line = line.slice(0, -1);
        if (line === '') {
          if (msg.data.length) yield { id: msg.id, event: msg.event, data: msg.data.join('\n') };
          msg = { event: 'message', data: [] };
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? '' : line.slice(colon + 1);
        if (val.startsWith(' ')) val = val.slice(1);
        if (field === 'id') msg.id = val;
        else if (field === 'event') msg.event = val;
        else if (field === 'data') msg.data.push(val);
      }
      scanned = buf.length;
      if (buf.length > MAX_LINE_CHARS) throw new CliError(EXIT.CONNECTION, `the event stream sent a line of more than ${MAX_LINE_CHARS} characters`);
    }
  } finally {
    reader.cancel().catch(() => {});
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
