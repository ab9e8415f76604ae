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

/** Reads events as they arrive until `until` returns true; then cancels the body. */
export async function readUntil(res: Response, until: (e: Record<string, any>) => boolean): Promise<Record<string, any>[]> {
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
        await reader.cancel();
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
