// Reading a run's events. EventSource cannot send the key header, so the stream is read with fetch() and
// parsed here; a dropped connection is picked up again with Last-Event-ID, with no gap and no duplicate.
import { api, ApiError, getJson } from './api.js';
import { sleep } from './dom.js';
import { readSse } from './sse-parse.js';

export const isTerminal = (e) => e.type === 'result' || e.type === 'error';

/**
 * Follows a run to its end: `first` (a /query response already streaming) or GET /runs/:id/events from
 * `after`, reattaching after a drop. `onEvent(data, id)` gets each event once, in order; `onState` gets
 * 'live' | 'reconnecting' | 'ended'. Resolves with the terminal event, or null when the run ended without
 * one (a run cancelled by its client's disconnect) or the signal aborted. 404 and 410 are thrown.
 */
export async function followRun(runId, { after = 0, first, signal, onEvent, onState }) {
  let res = first;
  let delay = 500;
  for (;;) {
    if (signal.aborted) return null;
    try {
      res ??= await api(`/runs/${encodeURIComponent(runId)}/events`, { headers: { 'last-event-id': String(after) }, signal });
      onState('live');
      for await (const msg of readSse(res.body)) {
        if (signal.aborted) return null;
        const id = Number(msg.id);
        if (Number.isInteger(id) && id <= after) continue; // never twice
        if (Number.isInteger(id)) after = id;
        const data = JSON.parse(msg.data);
        onEvent(data, after);
        delay = 500;
        if (isTerminal(data)) {
          onState('ended');
          return data;
        }
      }
      // The stream closed without a terminal event: finished that way, or the connection was cut.
      const run = await getJson(`/runs/${encodeURIComponent(runId)}`, { signal });
      if (run.status !== 'running') {
        onState('ended');
        return null;
      }
    } catch (err) {
      if (signal.aborted) return null;
      if (err instanceof ApiError && (err.status === 404 || err.status === 410 || err.status === 400)) throw err;
    }
    res = undefined;
    onState('reconnecting');
    await sleep(delay, signal);
    delay = Math.min(delay * 2, 5000);
  }
}
