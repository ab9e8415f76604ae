// The pure stream accumulators of both wire APIs, fed recorded event sequences: no SDK, no network.
// (The modules import SDK types only; the SDK packages are never loaded here.)
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { RawMessageStreamEvent } from '@anthropic-ai/sdk/resources/messages';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { AnthropicAccumulator } from '../providers/anthropic/accumulator.ts';
import { OpenAIAccumulator } from '../providers/openai/accumulator.ts';
import type { StreamAccumulator, StreamDelta } from '../providers/models/accumulator.ts';
import { IncompleteStreamError } from '../providers/models/errors.ts';
import type { TurnResult } from '../lib/model.ts';

/** Feeds every event; returns the deltas as "text:..." / "think:..." and the finished turn. */
function run<E>(acc: StreamAccumulator<E>, events: unknown[]): { deltas: string[]; turn: TurnResult } {
  const deltas: string[] = [];
  for (const ev of events) for (const d of acc.push(ev as E)) deltas.push(show(d));
  return { deltas, turn: acc.finish() };
}
const show = (d: StreamDelta) => `${d.kind === 'text' ? 'text' : 'think'}:${d.text}`;

// ---------------------------------------------------------------- Anthropic Messages

const messageStart = (usage: Record<string, number | null> = {}) => ({
  type: 'message_start',
  message: {
    id: 'msg_01', type: 'message', role: 'assistant', model: 'claude-sonnet-4-6', content: [], stop_reason: null, stop_sequence: null,
    usage: { input_tokens: 25, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, ...usage },
  },
});
const blockStart = (index: number, content_block: Record<string, unknown>) => ({ type: 'content_block_start', index, content_block });
const blockDelta = (index: number, delta: Record<string, unknown>) => ({ type: 'content_block_delta', index, delta });
const blockStop = (index: number) => ({ type: 'content_block_stop', index });
const textDelta = (index: number, text: string) => blockDelta(index, { type: 'text_delta', text });
const jsonDelta = (index: number, partial_json: string) => blockDelta(index, { type: 'input_json_delta', partial_json });
const messageDelta = (stop_reason: string, usage: Record<string, number | null>) => ({
  type: 'message_delta',
  delta: { stop_reason, stop_sequence: null },
  usage: { input_tokens: null, cache_creation_input_tokens: null, cache_read_input_tokens: null, ...usage },
});
const MESSAGE_STOP = { type: 'message_stop' };

const anthropic = (events: unknown[]) => run<RawMessageStreamEvent>(new AnthropicAccumulator(), events);

describe('Anthropic accumulator', () => {
  test('text deltas in order; usage from message_start is replaced by the cumulative message_delta', () => {
    const { deltas, turn } = anthropic([
      messageStart({ input_tokens: 100, cache_creation_input_tokens: 200, cache_read_input_tokens: 1000 }),
      blockStart(0, { type: 'text', text: '' }),
      textDelta(0, 'Hel'),
      textDelta(0, 'lo'),
      { type: 'ping' },
      textDelta(0, ' world'),
      blockStop(0),
      messageDelta('end_turn', { output_tokens: 42 }), // the input figures are null here: they stay
      MESSAGE_STOP,
    ]);
    assert.deepEqual(deltas, ['text:Hel', 'text:lo', 'text: world']);
    assert.equal(turn.text, 'Hello world');
    assert.equal(turn.stopReason, 'end');
    // Every input token billed: input_tokens + cache creation + cache read.
    assert.deepEqual(turn.usage, { inputTokens: 1300, outputTokens: 42, cacheReadTokens: 1000, cacheWriteTokens: 200 });
    assert.deepEqual(turn.message.native, { anthropic: [{ type: 'text', text: 'Hello world' }] });
  });

  test('parallel tool calls with JSON split anywhere (inside strings, escapes, multi-byte characters)', () => {
    const { deltas, turn } = anthropic([
      messageStart(),
      blockStart(0, { type: 'text', text: '' }),
      textDelta(0, 'Looking.'),
      blockStop(0),
      blockStart(1, { type: 'tool_use', id: 'toolu_1', name: 'bash', input: {} }),
      jsonDelta(1, ''),
      jsonDelta(1, '{"comm'),
      jsonDelta(1, 'and": "echo \\"caf'),
      jsonDelta(1, 'é\\" \\u00'),
      jsonDelta(1, 'e9", "timeoutSeconds": 5'),
      jsonDelta(1, '}'),
      blockStop(1),
      blockStart(2, { type: 'tool_use', id: 'toolu_2', name: 'list_files', input: {} }),
      blockStop(2), // no arguments at all
      messageDelta('tool_use', { output_tokens: 80 }),
      MESSAGE_STOP,
    ]);
    assert.deepEqual(deltas, ['text:Looking.'], 'argument fragments are not forwarded as text');
    assert.equal(turn.stopReason, 'tool_use');
    assert.deepEqual(turn.toolCalls, [
      { id: 'toolu_1', name: 'bash', input: { command: 'echo "café" é', timeoutSeconds: 5 } },
      { id: 'toolu_2', name: 'list_files', input: {} },
    ]);
    // The blocks to send back carry the parsed input.
    assert.deepEqual(turn.message.native, {
      anthropic: [
        { type: 'text', text: 'Looking.' },
        { type: 'tool_use', id: 'toolu_1', name: 'bash', input: { command: 'echo "café" é', timeoutSeconds: 5 } },
        { type: 'tool_use', id: 'toolu_2', name: 'list_files', input: {} },
      ],
    });
  });

  test('thinking streams as thinking; the signed block is kept verbatim; redacted thinking is kept', () => {
    const { deltas, turn } = anthropic([
      messageStart(),
      blockStart(0, { type: 'thinking', thinking: '', signature: '' }),
      blockDelta(0, { type: 'thinking_delta', thinking: 'The user wants ' }),
      blockDelta(0, { type: 'thinking_delta', thinking: 'a listing.' }),
      blockDelta(0, { type: 'signature_delta', signature: 'EqQBCgIYAh' }),
      blockDelta(0, { type: 'signature_delta', signature: 'IkB0ZXN0' }),
      blockStop(0),
      blockStart(1, { type: 'redacted_thinking', data: 'opaque' }),
      blockStop(1),
      blockStart(2, { type: 'text', text: '' }),
      textDelta(2, 'ok'),
      blockStop(2),
      messageDelta('end_turn', { output_tokens: 9 }),
      MESSAGE_STOP,
    ]);
    assert.deepEqual(deltas, ['think:The user wants ', 'think:a listing.', 'text:ok']);
    assert.equal(turn.text, 'ok');
    assert.deepEqual(turn.message.native, {
      anthropic: [
        { type: 'thinking', thinking: 'The user wants a listing.', signature: 'EqQBCgIYAhIkB0ZXN0' },
        { type: 'redacted_thinking', data: 'opaque' },
        { type: 'text', text: 'ok' },
      ],
    });
  });

  test('malformed arguments give {} and inputError; a response cut by max_tokens inside a tool block maps to max_tokens', () => {
    const { turn } = anthropic([
      messageStart(),
      blockStart(0, { type: 'tool_use', id: 'toolu_a', name: 'bash', input: {} }),
      jsonDelta(0, '[1, 2]'),
      blockStop(0),
      blockStart(1, { type: 'tool_use', id: 'toolu_b', name: 'bash', input: {} }),
      jsonDelta(1, '{"command": "echo hi'),
      // no content_block_stop: the output limit cut the block off
      messageDelta('max_tokens', { output_tokens: 16384 }),
      MESSAGE_STOP,
    ]);
    assert.equal(turn.stopReason, 'max_tokens');
    assert.equal(turn.toolCalls.length, 2);
    assert.deepEqual(turn.toolCalls.map((c) => c.input), [{}, {}]);
    assert.match(turn.toolCalls[0]!.inputError ?? '', /not a JSON object/);
    assert.match(turn.toolCalls[1]!.inputError ?? '', /not valid JSON/);
  });

  test('empty text blocks, unknown block types and deltas for unknown indexes are left out', () => {
    const { deltas, turn } = anthropic([
      messageStart(),
      blockStart(0, { type: 'text', text: '' }),
      blockStop(0),
      blockStart(1, { type: 'server_tool_use', id: 'srvtoolu_1', name: 'web_search', input: {} }),
      jsonDelta(1, '{"query": "x"}'),
      blockStop(1),
      textDelta(7, 'stray'),
      jsonDelta(8, '{"a": 1}'),
      blockStart(2, { type: 'text', text: 'Done' }),
      blockStop(2),
      messageDelta('end_turn', { output_tokens: 3 }),
      MESSAGE_STOP,
    ]);
    assert.deepEqual(deltas, []);
    assert.deepEqual(turn.toolCalls, []);
    assert.equal(turn.text, 'Done', 'text carried by content_block_start counts');
    assert.deepEqual(turn.message.native, { anthropic: [{ type: 'text', text: 'Done' }] });
  });

  test('a block index far out of range from the wire is just a key (blocks are kept in a Map, not an array)', () => {
    const { turn } = anthropic([
      messageStart(),
      blockStart(2 ** 31, { type: 'text', text: '' }),
      textDelta(2 ** 31, 'far'),
      blockStart(0, { type: 'text', text: 'near ' }),
      messageDelta('end_turn', { output_tokens: 1 }),
      MESSAGE_STOP,
    ]);
    assert.equal(turn.text, 'near far', 'blocks in index order');
  });

  test('a stream without message_stop is incomplete', () => {
    const acc = new AnthropicAccumulator();
    for (const ev of [messageStart(), blockStart(0, { type: 'text', text: '' }), textDelta(0, 'par')]) acc.push(ev as RawMessageStreamEvent);
    assert.throws(() => acc.finish(), (err) => err instanceof IncompleteStreamError && /message_stop/.test(err.message));
  });
});

// ---------------------------------------------------------------- OpenAI Chat Completions

const chunk = (delta: Record<string, unknown>, finish_reason: string | null = null, extra: Record<string, unknown> = {}) => ({
  id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'gpt-4.1',
  choices: [{ index: 0, delta, finish_reason, logprobs: null }],
  ...extra,
});
const usageChunk = (usage: Record<string, unknown>) => ({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'gpt-4.1', choices: [], usage });
const toolDelta = (calls: Record<string, unknown>[]) => chunk({ tool_calls: calls });

const openai = (events: unknown[]) => run<ChatCompletionChunk>(new OpenAIAccumulator(), events);

describe('OpenAI accumulator', () => {
  test('text deltas in order; usage arrives last, in a chunk without choices', () => {
    const { deltas, turn } = openai([
      chunk({ role: 'assistant', content: '' }),
      chunk({ content: 'A' }),
      chunk({ content: 'B' }),
      chunk({ content: 'C' }),
      chunk({}, 'stop'),
      usageChunk({ prompt_tokens: 500, completion_tokens: 20, total_tokens: 520, prompt_tokens_details: { cached_tokens: 384 } }),
    ]);
    assert.deepEqual(deltas, ['text:A', 'text:B', 'text:C']);
    assert.equal(turn.text, 'ABC');
    assert.equal(turn.stopReason, 'end');
    // prompt_tokens already counts the cached tokens.
    assert.deepEqual(turn.usage, { inputTokens: 500, outputTokens: 20, cacheReadTokens: 384, cacheWriteTokens: 0 });
    assert.deepEqual(turn.message.native, { openai: { role: 'assistant', content: 'ABC' } });
  });

  test('usage repeated on every chunk is the running total: the last one wins, never summed', () => {
    const { turn } = openai([
      chunk({ content: 'x' }, null, { usage: { prompt_tokens: 10, completion_tokens: 1 } }),
      chunk({ content: 'y' }, null, { usage: { prompt_tokens: 10, completion_tokens: 2 } }),
      chunk({}, 'stop', { usage: { prompt_tokens: 10, completion_tokens: 3, prompt_cache_hit_tokens: 8 } }),
    ]);
    assert.deepEqual(turn.usage, { inputTokens: 10, outputTokens: 3, cacheReadTokens: 8, cacheWriteTokens: 0 });
  });

  test('interleaved tool calls with JSON split mid-token are put back together by index', () => {
    const { deltas, turn } = openai([
      chunk({ role: 'assistant', content: null }),
      toolDelta([{ index: 0, id: 'call_a', type: 'function', function: { name: 'bash', arguments: '' } }]),
      toolDelta([{ index: 1, id: 'call_b', type: 'function', function: { name: 'read_file', arguments: '{"pa' } }]),
      toolDelta([{ index: 0, function: { arguments: '{"command": "cat \\"a' } }]),
      toolDelta([{ index: 1, function: { arguments: 'th": "x/y.md"}' } }, { index: 0, function: { arguments: ' b.txt\\""}' } }]),
      chunk({}, 'tool_calls'),
    ]);
    assert.deepEqual(deltas, []);
    assert.equal(turn.stopReason, 'tool_use');
    assert.deepEqual(turn.toolCalls, [
      { id: 'call_a', name: 'bash', input: { command: 'cat "a b.txt"' } },
      { id: 'call_b', name: 'read_file', input: { path: 'x/y.md' } },
    ]);
    // The wire message to send back keeps the argument text as streamed; content is null next to tool calls.
    assert.deepEqual(turn.message.native, {
      openai: {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_a', type: 'function', function: { name: 'bash', arguments: '{"command": "cat \\"a b.txt\\""}' } },
          { id: 'call_b', type: 'function', function: { name: 'read_file', arguments: '{"path": "x/y.md"}' } },
        ],
      },
    });
  });

  test('a server without `index`: a new id starts a new call, a fragment without one continues the last', () => {
    const { turn } = openai([
      toolDelta([{ id: 'c1', type: 'function', function: { name: 'bash', arguments: '{"command":' } }]),
      toolDelta([{ function: { arguments: ' "ls"}' } }]),
      toolDelta([{ id: 'c2', type: 'function', function: { name: 'list_files', arguments: '{}' } }]),
      chunk({}, 'tool_calls'),
    ]);
    assert.deepEqual(turn.toolCalls, [
      { id: 'c1', name: 'bash', input: { command: 'ls' } },
      { id: 'c2', name: 'list_files', input: {} },
    ]);
  });

  test('a call without an id gets call_<index>; one without arguments goes back as {}', () => {
    const { turn } = openai([toolDelta([{ index: 3, function: { name: 'list_files' } }]), chunk({}, 'tool_calls')]);
    assert.deepEqual(turn.toolCalls, [{ id: 'call_3', name: 'list_files', input: {} }]);
    const native = turn.message.native as { openai: { tool_calls: unknown[] } };
    assert.deepEqual(native.openai.tool_calls, [{ id: 'call_3', type: 'function', function: { name: 'list_files', arguments: '{}' } }]);
  });

  test('malformed arguments give {} and inputError, go back verbatim; finish_reason length maps to max_tokens', () => {
    const raw = '{"command": "echo hi", ';
    const { turn } = openai([toolDelta([{ index: 0, id: 'call_z', type: 'function', function: { name: 'bash', arguments: raw } }]), chunk({}, 'length')]);
    assert.equal(turn.stopReason, 'max_tokens');
    assert.deepEqual(turn.toolCalls[0]!.input, {});
    assert.match(turn.toolCalls[0]!.inputError ?? '', /not valid JSON/);
    const native = turn.message.native as { openai: { tool_calls: { function: { arguments: string } }[] } };
    assert.equal(native.openai.tool_calls[0]!.function.arguments, raw);
  });

  test('reasoning (reasoning_content or reasoning) streams as thinking before the text of the same chunk', () => {
    const { deltas, turn } = openai([
      chunk({ reasoning_content: 'step one, ' }),
      chunk({ reasoning: 'step two', content: 'answer' }),
      chunk({ reasoning_details: [{ type: 'reasoning.encrypted', data: 'abc' }] }),
      chunk({}, 'stop'),
    ]);
    assert.deepEqual(deltas, ['think:step one, ', 'think:step two', 'text:answer']);
    assert.equal(turn.text, 'answer');
    assert.deepEqual(turn.message.native, {
      openai: { role: 'assistant', content: 'answer', reasoning_details: [{ type: 'reasoning.encrypted', data: 'abc' }] },
    });
  });

  test("extra tool-call fields (Gemini's thought signature) are kept, whichever fragment brings them", () => {
    const extra = { extra_content: { google: { thought_signature: 'c2ln' } } };
    const { turn } = openai([
      toolDelta([{ index: 0, id: 'fc_1', type: 'function', function: { name: 'bash', arguments: '' }, ...extra }]),
      toolDelta([{ index: 0, function: { arguments: '{"command": "pwd"}' }, vendor_note: 'late' }]),
      chunk({}, 'tool_calls'),
    ]);
    assert.deepEqual(turn.toolCalls, [{ id: 'fc_1', name: 'bash', input: { command: 'pwd' } }], 'extra fields stay out of the neutral call');
    const native = turn.message.native as { openai: { tool_calls: unknown[] } };
    assert.deepEqual(native.openai.tool_calls, [
      { ...extra, vendor_note: 'late', id: 'fc_1', type: 'function', function: { name: 'bash', arguments: '{"command": "pwd"}' } },
    ]);
  });

  test('garbage fields (tool_calls not an array, no choices, odd index) are ignored, not thrown', () => {
    const { turn } = openai([
      { id: 'x', object: 'chat.completion.chunk' },
      chunk({ tool_calls: { index: 0 } }),
      chunk({ reasoning_details: 'nope' }),
      toolDelta([{ index: '1', id: 'call_s', function: { name: 'bash', arguments: '{}' } }]),
      chunk({ content: 'ok' }, 'stop'),
    ]);
    assert.equal(turn.text, 'ok');
    assert.deepEqual(turn.toolCalls, [{ id: 'call_s', name: 'bash', input: {} }]);
  });

  test('a stream without finish_reason is incomplete', () => {
    const acc = new OpenAIAccumulator();
    acc.push(chunk({ content: 'par' }) as unknown as ChatCompletionChunk);
    assert.throws(() => acc.finish(), (err) => err instanceof IncompleteStreamError && /finish_reason/.test(err.message));
  });
});
