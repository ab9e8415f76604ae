// Benchmark-only fake Anthropic Messages API (streaming) for the concurrency benchmark. Unlike
// tests/fixtures/fake-models.ts, which builds a turn's events when the request arrives, this one stamps
// each text delta with the time it is written (`ts:<ms>|`, process.hrtime, i.e. CLOCK_MONOTONIC, the same
// clock in every process of the machine), so a client can measure fake-write -> client-read delay.
//
// Script, per request (the turn is the number of assistant messages already in the conversation):
// turns 1..TURNS-1 stream DELTAS text deltas DELTA_MS apart, then one `bash` call of `true`; turn TURNS
// streams DELTAS text deltas and ends the run. Runs as its own process and prints {"url": ...} on stdout.
// Env: TURNS (5), DELTAS (5), DELTA_MS (20).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const TURNS = Number(process.env.TURNS ?? 5);
const DELTAS = Number(process.env.DELTAS ?? 5);
const DELTA_MS = Number(process.env.DELTA_MS ?? 20);

const stampMs = () => (Number(process.hrtime.bigint() / 1000n) / 1000).toFixed(3);
const sse = (type: string, data: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
const usage = { input_tokens: 10, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };

let served = 0;
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const turn = 1 + body.messages.filter((m: { role: string }) => m.role === 'assistant').length;
    const id = served++;
    const last = turn >= TURNS;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'request-id': `req_stamped_${id}` });
    const head =
      sse('message_start', { message: { id: `msg_${id}`, type: 'message', role: 'assistant', model: body.model, content: [], stop_reason: null, stop_sequence: null, usage: { ...usage, output_tokens: 1 } } }) +
      sse('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
    const delta = () => sse('content_block_delta', { index: 0, delta: { type: 'text_delta', text: `ts:${stampMs()}|` } });
    const tail =
      sse('content_block_stop', { index: 0 }) +
      (last
        ? ''
        : sse('content_block_start', { index: 1, content_block: { type: 'tool_use', id: `toolu_${id}`, name: 'bash', input: {} } }) +
          sse('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: '{"command":"true"}' } }) +
          sse('content_block_stop', { index: 1 })) +
      sse('message_delta', { delta: { stop_reason: last ? 'end_turn' : 'tool_use', stop_sequence: null }, usage: { ...usage, output_tokens: 5 } }) +
      sse('message_stop', {});
    let sent = 0;
    const next = () => {
      if (res.destroyed) return;
      const first = sent === 0;
      sent++;
      if (sent === DELTAS) return void res.end((first ? head : '') + delta() + tail);
      res.write((first ? head : '') + delta());
      setTimeout(next, DELTA_MS);
    };
    next();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
