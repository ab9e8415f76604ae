// A small SSE client for tests: reads a /query response into parsed events, checking the framing.
import assert from 'node:assert/strict';

export interface SseEvent {
  id: number;
  event: string;
  data: Record<string, any>;
}

/** Parses a complete SSE text; asserts every event has id/event/data and that data.type matches. */
export function parseSse(text: string): { events: SseEvent[]; pings: number } {
  const events: SseEvent[] = [];
  let pings = 0;
  for (const block of text.split('\n\n')) {
    if (block.trim() === '') continue;
    if (block === ': ping') {
      pings++;
      continue;
    }
    const lines = block.split('\n');
    assert.equal(lines.length, 3, `an event is id, event, data lines: ${JSON.stringify(block)}`);
    const [id, event, data] = lines as [string, string, string];
    assert.match(id, /^id: \d+$/);
    assert.match(event, /^event: [a-z_]+$/);
    assert.match(data, /^data: \{.*\}$/);
    const parsed = JSON.parse(data.slice(6));
    assert.equal(parsed.type, event.slice(7), 'data.type matches the event name');
    events.push({ id: Number(id.slice(4)), event: event.slice(7), data: parsed });
  }
  events.forEach((e, i) => assert.equal(e.id, i + 1, 'event ids count 1, 2, ...'));
  return { events, pings };
}

/** Reads a streamed response to its end and returns the parsed events (data objects). */
export async function readEvents(res: Response): Promise<Record<string, any>[]> {
  assert.equal(res.status, 200, `expected a stream, got ${res.status}`);
  const text = await res.text();
  return parseSse(text).events.map((e) => e.data);
}

/**
 * Reads events as they arrive until `until` returns true; then cancels the body (which closes the
 * connection), or with `keepOpen` only lets go of it, so the test decides when the client goes away.
 * Returns the events read, also when the stream ended first.
 */
export async function readUntil(res: Response, until: (e: Record<string, any>) => boolean, opts: { keepOpen?: boolean } = {}): Promise<Record<string, any>[]> {
  assert.equal(res.status, 200, `expected a stream, got ${res.status}`);
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let buf = '';
  const out: Record<string, any>[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return out;
    buf += dec.decode(value, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = block.split('\n').find((l) => l.startsWith('data: '));
      if (!data) continue;
      const e = JSON.parse(data.slice(6));
      out.push(e);
      if (until(e)) {
        if (opts.keepOpen) reader.releaseLock();
        else await reader.cancel();
        return out;
      }
    }
  }
}

/** The terminal event is last, exactly once, and sandbox_destroyed came before it. */
export function assertWellFormedRun(events: Record<string, any>[]): Record<string, any> {
  assert.ok(events.length >= 2, 'a run has at least run_started and a terminal event');
  assert.equal(events[0]!.type, 'system');
  assert.equal(events[0]!.subtype, 'run_started');
  const terminals = events.filter((e) => e.type === 'result' || e.type === 'error');
  assert.equal(terminals.length, 1, 'exactly one terminal event');
  assert.equal(events.at(-1), terminals[0], 'the terminal event is last');
  const created = events.filter((e) => e.subtype === 'sandbox_created').map((e) => e.sandboxId);
  const destroyed = events.filter((e) => e.subtype === 'sandbox_destroyed').map((e) => e.sandboxId);
  assert.deepEqual([...destroyed].sort(), [...created].sort(), 'every sandbox created was destroyed before the end');
  return terminals[0]!;
}

/** One SSE frame as received: its id, type, parsed data and exact text. */
export interface Frame {
  id: number;
  event: string;
  data: Record<string, any>;
  raw: string;
}

/**
 * Reads frames (pings skipped) as they arrive until the stream ends, or until `until` returns true (then the
 * body is cancelled: the client goes away). `ended` says whether the server closed the stream.
 */
export async function readFrames(res: Response, until?: (f: Frame, all: Frame[]) => boolean): Promise<{ frames: Frame[]; ended: boolean }> {
  assert.equal(res.status, 200, `expected a stream, got ${res.status}`);
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  const frames: Frame[] = [];
  let buf = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { frames, ended: true };
    buf += dec.decode(value, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const raw = buf.slice(0, i + 2);
      buf = buf.slice(i + 2);
      if (raw === ': ping\n\n') continue;
      const m = /^id: (\d+)\nevent: ([a-z_]+)\ndata: (\{.*\})\n\n$/.exec(raw);
      assert.ok(m, `a frame is id, event and one data line: ${JSON.stringify(raw.slice(0, 200))}`);
      const data = JSON.parse(m[3]!);
      assert.equal(data.type, m[2], 'data.type matches the event name');
      const f = { id: Number(m[1]), event: m[2]!, data, raw };
      frames.push(f);
      if (until?.(f, frames)) {
        await reader.cancel();
        return { frames, ended: false };
      }
    }
  }
}

/** Frames carry ids from..from+n-1 in order (no gap, no duplicate), and the last one is the only terminal. */
export function assertContiguousToEnd(frames: Frame[], from: number): Frame {
  frames.forEach((f, i) => assert.equal(f.id, from + i, `event ${i} has id ${from + i}, got ${f.id}`));
  const terminals = frames.filter((f) => f.event === 'result' || f.event === 'error');
  assert.equal(terminals.length, 1, `exactly one terminal event, got ${terminals.map((t) => t.id).join(', ') || 'none'}`);
  assert.equal(frames.at(-1), terminals[0], 'the terminal event is last');
  return terminals[0]!;
}
