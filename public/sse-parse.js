// The text/event-stream parser shared by the dashboard (public/sse.js) and the CLI (cli/sse.ts): plain
// JavaScript with no browser or Node API beyond web streams, so both load this one file.

/**
 * @typedef {{ id?: string, event: string, data: string }} SseMessage
 */

/** A line longer than this is not from our server: a `file` event holds at most 10 MiB (about 14 MiB as base64 JSON). */
export const MAX_LINE_CHARS = 64 * 1024 * 1024;

/** Thrown by readSse when the stream sends a line past MAX_LINE_CHARS. */
export class SseLineTooLong extends Error {
  constructor() {
    super(`the event stream sent a line of more than ${MAX_LINE_CHARS} characters`);
    this.name = 'SseLineTooLong';
  }
}

/**
 * Parses a text/event-stream body into messages; comments (`: ping`) are skipped. Ends when the body ends.
 *
 * @example
 * for await (const msg of readSse(res.body)) console.log(msg.id, msg.event, JSON.parse(msg.data));
 *
 * @param {ReadableStream<Uint8Array>} body
 * @returns {AsyncGenerator<SseMessage>}
 */
export async function* readSse(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let scanned = 0;
  /** @type {{ id?: string, event: string, data: string[] }} */
  let msg = { id: undefined, event: 'message', data: [] };
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buf += value;
      let nl;
      // Scan only what is new: a 10 MiB `file` event arrives in many chunks on one line.
      while ((nl = buf.indexOf('\n', scanned)) >= 0) {
        let line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        scanned = 0;
        if (line.endsWith('\r')) line = line.slice(0, -1);
        if (line === '') {
          if (msg.data.length) yield { id: msg.id, event: msg.event, data: msg.data.join('\n') };
          msg = { id: undefined, event: 'message', data: [] };
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'id') msg.id = value;
        else if (field === 'event') msg.event = value;
        else if (field === 'data') msg.data.push(value);
      }
      scanned = buf.length;
      if (buf.length > MAX_LINE_CHARS) throw new SseLineTooLong();
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}
