// The model providers, through the real SDK clients, against fake servers speaking the real wire formats.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createClient as createAnthropic } from '../providers/anthropic/index.ts';
import { createClient as createOpenAI } from '../providers/openai/index.ts';
import { ModelError, type Message, type ModelClient, type ToolSpec, type TurnRequest } from '../lib/model.ts';
import { MODEL_PROVIDERS, type ModelProviderName } from '../lib/model-providers.ts';
import { fakeSignature, startFakeAnthropic, startFakeOpenAI, type FakeModelServer } from './fixtures/fake-models.ts';
import { waitFor } from './helpers/wait.ts';

const ANTHROPIC_KEY = 'sk-ant-test-0123456789abcdef-SECRET';
const OPENAI_KEY = 'sk-test-0123456789abcdef-SECRET';

const TOOLS: ToolSpec[] = [
  { name: 'bash', description: 'Run a command', inputSchema: { type: 'object', properties: { command: { type: 'string' } }, required: ['command'] } },
  { name: 'read_file', description: 'Read a file', inputSchema: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] } },
];

function request(over: Partial<TurnRequest> = {}): TurnRequest {
  return {
    model: 'claude-sonnet-4-6',
    system: 'You are terse.',
    messages: [{ role: 'user', content: 'hi' }],
    tools: TOOLS,
    thinkingLevel: 'none',
    signal: new AbortController().signal,
    ...over,
  };
}

/** Records callbacks in order: "text:..." / "think:...". */
function recorder() {
  const events: string[] = [];
  return { events, cb: { onText: (d: string) => events.push(`text:${d}`), onThinking: (d: string) => events.push(`think:${d}`) } };
}

interface ClientOpts {
  provider: ModelProviderName;
  apiKey: string;
  baseURL: string;
  maxRetries?: number;
}
/** A client as the registry builds it: the provider's row comes from the table. */
const createAnthropicClient = (o: ClientOpts) => createAnthropic({ ...o, descriptor: MODEL_PROVIDERS[o.provider] });
const createOpenAIClient = (o: ClientOpts) => createOpenAI({ ...o, descriptor: MODEL_PROVIDERS[o.provider] });

const servers: FakeModelServer[] = [];
async function fake(kind: 'anthropic' | 'openai'): Promise<FakeModelServer> {
  const s = kind === 'anthropic' ? await startFakeAnthropic() : await startFakeOpenAI();
  servers.push(s);
  return s;
}
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

const noKeyIn = (err: ModelError, key: string) => {
  for (const s of [err.message, err.hint ?? '', String(err.stack), String((err.cause as Error | undefined)?.message ?? '')]) {
    assert.ok(!s.includes(key), `the API key leaked into: ${s}`);
  }
};

/** A port nothing listens on. */
async function deadURL(): Promise<string> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

/** Aborts mid-stream after the first text delta; checks the rejection is prompt, carries the reason, and the server saw the close. */
async function checkAbortMidStream(client: ModelClient, server: FakeModelServer, model: string) {
  server.setScript([{ text: ['one', 'two', 'three', 'four'], deltaDelayMs: 400 }]);
  const ac = new AbortController();
  const reason = new Error('client went away');
  const texts: string[] = [];
  let abortedAt = 0;
  const p = client.turn(request({ model, signal: ac.signal }), {
    onText: (d) => {
      texts.push(d);
      if (!abortedAt) {
        abortedAt = Date.now();
        ac.abort(reason);
      }
    },
    onThinking: () => {},
  });
  await assert.rejects(p, (err) => err === reason);
  assert.ok(Date.now() - abortedAt < 200, `rejected ${Date.now() - abortedAt} ms after the abort`);
  await server.waitForAborted(1, 200); // well before the next delta would be due
  assert.deepEqual(texts, ['one'], 'no delta after the abort');
}

async function checkAbortBeforeHeaders(client: ModelClient, server: FakeModelServer, model: string) {
  server.setScript([{ hang: true }]);
  const ac = new AbortController();
  const turn = client.turn(request({ model, signal: ac.signal }), recorder().cb);
  turn.catch(() => undefined); // awaited below, once aborted
  assert.ok(await waitFor(() => server.requests.length === 1, 5000), 'the request reached the server before the abort');
  ac.abort(new Error('timeout'));
  const started = Date.now();
  await assert.rejects(turn, /^Error: timeout$/);
  assert.ok(Date.now() - started < 500, `the abort rejects at once, not when the server answers: took ${Date.now() - started} ms`);
  await server.waitForAborted(1);
}

/** Aborts while the SDK waits to retry a 429 (the openai SDK's back-off sleep ignores the signal). */
async function checkAbortDuringRetry(client: ModelClient, server: FakeModelServer, model: string) {
  // The openai SDK's back-off timer outlives the abort (keeping the test process up that long): keep it short.
  server.setScript([{ error: { status: 429, headers: { 'retry-after': '1' } } }, { text: 'too late' }]);
  const ac = new AbortController();
  const reason = new Error('stop');
  setTimeout(() => ac.abort(reason), 100); // inside the 1 s back-off the 429 asks for
  const started = Date.now();
  await assert.rejects(client.turn(request({ model, signal: ac.signal }), recorder().cb), (err) => err === reason);
  assert.ok(Date.now() - started < 1000, `the abort rejects before the back-off ends: took ${Date.now() - started} ms`);
  // The wait is the test: a retry that ignored the abort would come when the back-off ends.
  assert.equal(await waitFor(() => server.requests.length > 1, 1500), false, `no retry after the abort; ${server.requests.length} requests`);
}

async function checkDroppedStream(client: ModelClient, server: FakeModelServer, model: string) {
  server.setScript([{ text: ['par', 'tial', ' answer'], cutAfter: 4 }]);
  const { events, cb } = recorder();
  const err = await client.turn(request({ model }), cb).catch((e) => e);
  assert.ok(err instanceof ModelError, String(err));
  assert.match(err.message, /connection to \w+ \(127\.0\.0\.1:\d+\) was lost mid-response/);
  assert.ok(events.length >= 1, 'the deltas before the cut were delivered');
}

describe('anthropic provider', () => {
  test('streams text in order, sends the key, sums usage with cache fields, marks cache breakpoints', async () => {
    const server = await fake('anthropic');
    server.setScript([{ text: ['Hel', 'lo', ' world'], usage: { input: 100, output: 42, cacheRead: 1000, cacheWrite: 200 } }]);
    const client = createAnthropicClient({ provider: 'anthropic', apiKey: ANTHROPIC_KEY, baseURL: server.url });
    const { events, cb } = recorder();
    const res = await client.turn(request(), cb);

    assert.deepEqual(events, ['text:Hel', 'text:lo', 'text: world']);
    assert.equal(res.text, 'Hello world');
    assert.equal(res.stopReason, 'end');
    assert.deepEqual(res.toolCalls, []);
    // input = input_tokens + cache creation + cache read; output from message_delta (message_start said 1).
    assert.deepEqual(res.usage, { inputTokens: 1300, outputTokens: 42, cacheReadTokens: 1000, cacheWriteTokens: 200 });

    const r = server.requests[0]!;
    assert.equal(r.path, '/v1/messages');
    // @anthropic-ai/sdk 1.x sends the API key as a Bearer token (0.x used x-api-key).
    assert.equal(r.headers.authorization, `Bearer ${ANTHROPIC_KEY}`);
    assert.match(String(r.headers['anthropic-version']), /^\d{4}-\d\d-\d\d$/, 'the request names the API version');
    assert.equal(r.body.stream, true);
    assert.equal(r.body.model, 'claude-sonnet-4-6');
    assert.equal(r.body.max_tokens, 16384);
    assert.equal(r.body.thinking, undefined);
    assert.deepEqual(r.body.system, [{ type: 'text', text: 'You are terse.', cache_control: { type: 'ephemeral' } }]);
    assert.deepEqual(r.body.tools[1], {
      name: 'read_file',
      description: 'Read a file',
      input_schema: TOOLS[1]!.inputSchema,
      cache_control: { type: 'ephemeral' },
    });
    assert.equal(r.body.tools[0].cache_control, undefined);
    assert.deepEqual(r.body.messages, [{ role: 'user', content: [{ type: 'text', text: 'hi', cache_control: { type: 'ephemeral' } }] }]);
  });

  test('parallel tool calls with fragmented JSON; results go back as tool_result blocks', async () => {
    const server = await fake('anthropic');
    server.setScript([
      {
        text: 'Looking.',
        toolCalls: [
          { id: 'toolu_1', name: 'bash', input: { command: 'ls -la /workspace', timeoutSeconds: 5 } },
          { id: 'toolu_2', name: 'read_file', input: { path: 'notes/a.txt' } },
        ],
      },
      { text: 'Done.' },
    ]);
    const client = createAnthropicClient({ provider: 'anthropic', apiKey: ANTHROPIC_KEY, baseURL: server.url });
    const first = await client.turn(request(), recorder().cb);
    assert.equal(first.stopReason, 'tool_use');
    assert.equal(first.text, 'Looking.');
    assert.deepEqual(first.toolCalls, [
      { id: 'toolu_1', name: 'bash', input: { command: 'ls -la /workspace', timeoutSeconds: 5 } },
      { id: 'toolu_2', name: 'read_file', input: { path: 'notes/a.txt' } },
    ]);

    const messages: Message[] = [
      { role: 'user', content: 'hi' },
      first.message,
      {
        role: 'tool',
        results: [
          { id: 'toolu_1', name: 'bash', content: 'file.txt', isError: false },
          { id: 'toolu_2', name: 'read_file', content: 'no such file', isError: true },
        ],
      },
    ];
    const second = await client.turn(request({ messages }), recorder().cb);
    assert.equal(second.text, 'Done.');

    const sent = server.requests[1]!.body.messages;
    assert.deepEqual(sent[1], {
      role: 'assistant',
      content: [
        { type: 'text', text: 'Looking.' },
        { type: 'tool_use', id: 'toolu_1', name: 'bash', input: { command: 'ls -la /workspace', timeoutSeconds: 5 } },
        { type: 'tool_use', id: 'toolu_2', name: 'read_file', input: { path: 'notes/a.txt' } },
      ],
    });
    assert.deepEqual(sent[2], {
      role: 'user',
      content: [
        { type: 'tool_result', tool_use_id: 'toolu_1', content: 'file.txt' },
        { type: 'tool_result', tool_use_id: 'toolu_2', content: 'no such file', is_error: true, cache_control: { type: 'ephemeral' } },
      ],
    });
    // The previous turn's breakpoint stays where it was, so this request reads what the last one wrote.
    assert.deepEqual(sent[0].content[0].cache_control, { type: 'ephemeral' });
  });

  test('thinking deltas stream, the budget maps from thinkingLevel, the signed block goes back verbatim', async () => {
    const server = await fake('anthropic');
    const thinking = 'The user wants a listing. I will run ls.';
    server.setScript([{ thinking, toolCalls: [{ id: 'toolu_9', name: 'bash', input: { command: 'ls' } }] }, { text: 'ok' }]);
    const client = createAnthropicClient({ provider: 'anthropic', apiKey: ANTHROPIC_KEY, baseURL: server.url });
    const { events, cb } = recorder();
    const first = await client.turn(request({ model: 'claude-haiku-4-5', thinkingLevel: 'medium' }), cb);

    assert.equal(events.map((e) => e.replace(/^think:/, '')).join(''), thinking);
    assert.ok(events.length >= 2 && events.every((e) => e.startsWith('think:')), `the thinking came as two or more thinking deltas and nothing else; got ${JSON.stringify(events)}`);
    const body = server.requests[0]!.body;
    assert.deepEqual(body.thinking, { type: 'enabled', budget_tokens: 8192 });
    assert.equal(body.max_tokens, 16384 + 8192);

    await client.turn(request({ model: 'claude-haiku-4-5', thinkingLevel: 'medium', messages: [
      { role: 'user', content: 'hi' },
      first.message,
      { role: 'tool', results: [{ id: 'toolu_9', name: 'bash', content: 'a b', isError: false }] },
    ] }), recorder().cb);
    const assistant = server.requests[1]!.body.messages[1];
    assert.deepEqual(assistant.content[0], { type: 'thinking', thinking, signature: fakeSignature(thinking) });
    assert.equal(assistant.content[1].type, 'tool_use');
  });

  test('thinkingLevel mapping per model', async () => {
    const server = await fake('anthropic');
    server.setScript(() => ({ text: 'x' }));
    const client = createAnthropicClient({ provider: 'anthropic', apiKey: ANTHROPIC_KEY, baseURL: server.url });
    const body = async (model: string, thinkingLevel: TurnRequest['thinkingLevel']) => {
      await client.turn(request({ model, thinkingLevel }), recorder().cb);
      const b = server.requests.at(-1)!.body;
      return { thinking: b.thinking, max: b.max_tokens, effort: b.output_config?.effort };
    };
    assert.deepEqual(await body('claude-sonnet-4-6', 'low'), { thinking: { type: 'enabled', budget_tokens: 2048 }, max: 18432, effort: undefined });
    assert.deepEqual(await body('claude-3-7-sonnet-latest', 'high'), { thinking: { type: 'enabled', budget_tokens: 24576 }, max: 40960, effort: undefined });
    // Opus 4 can only write 32,000 tokens: max_tokens is clamped yet still above the budget.
    assert.deepEqual(await body('claude-opus-4-20250514', 'high'), { thinking: { type: 'enabled', budget_tokens: 24576 }, max: 32000, effort: undefined });
    // Models that deprecate manual budgets get adaptive thinking with the same effort level.
    assert.deepEqual(await body('claude-opus-4-7', 'high'), { thinking: { type: 'adaptive' }, max: 40960, effort: 'high' });
    assert.deepEqual(await body('claude-sonnet-4-6', 'none'), { thinking: undefined, max: 16384, effort: undefined });
    assert.deepEqual(await body('claude-3-5-haiku-20241022', 'high'), { thinking: undefined, max: 8192, effort: undefined });

    for (const m of ['claude-3-7-sonnet-20250219', 'claude-sonnet-4-20250514', 'claude-opus-4-1', 'claude-haiku-4-5', 'claude-sonnet-4-6', 'claude-opus-4-7']) {
      assert.equal(client.supportsThinking(m), true, m);
    }
    for (const m of ['claude-3-5-sonnet-20241022', 'claude-3-5-haiku-latest', 'claude-3-haiku-20240307', 'gpt-5']) {
      assert.equal(client.supportsThinking(m), false, m);
    }
  });

  test('a 429 is retried by the SDK, then succeeds', async () => {
    const server = await fake('anthropic');
    server.setScript([{ error: { status: 429, headers: { 'retry-after': '0', 'retry-after-ms': '1' } } }, { text: 'after retry' }]);
    const client = createAnthropicClient({ provider: 'anthropic', apiKey: ANTHROPIC_KEY, baseURL: server.url, maxRetries: 1 });
    const res = await client.turn(request(), recorder().cb);
    assert.equal(res.text, 'after retry');
    assert.equal(server.requests.length, 2);
  });

  test('429 and 5xx after retries become ModelErrors with status and hint', async () => {
    const server = await fake('anthropic');
    const h = { 'retry-after-ms': '1' };
    server.setScript([{ error: { status: 429, headers: h } }, { error: { status: 429, headers: h } }]);
    const client = createAnthropicClient({ provider: 'anthropic', apiKey: ANTHROPIC_KEY, baseURL: server.url, maxRetries: 1 });
    const err = await client.turn(request(), recorder().cb).catch((e) => e);
    assert.ok(err instanceof ModelError, `expected a ModelError, got ${String(err)}`);
    assert.equal(err.status, 429);
    assert.match(err.message, /rate limit exceeded after 1 retry/);
    assert.match(err.hint ?? '', /\S/, 'a rate-limit error carries a hint');

    server.setScript(() => ({ error: { status: 529, headers: h } }));
    const err2 = await client.turn(request(), recorder().cb).catch((e) => e);
    assert.ok(err2 instanceof ModelError, `expected a ModelError, got ${String(err2)}`);
    assert.equal(err2.status, 529);
    assert.match(err2.message, /API error 529 after 1 retry/);
    assert.equal(server.requests.length, 4);
  });

  test('401 is a ModelError naming the variable, never the key', async () => {
    const server = await fake('anthropic');
    // Some gateways echo the key back; it must not reach our message.
    server.setScript([{ error: { status: 401, body: { type: 'error', error: { type: 'authentication_error', message: `invalid x-api-key ${ANTHROPIC_KEY}` } } } }]);
    const client = createAnthropicClient({ provider: 'anthropic', apiKey: ANTHROPIC_KEY, baseURL: server.url });
    const err = await client.turn(request(), recorder().cb).catch((e) => e);
    assert.ok(err instanceof ModelError, `expected a ModelError, got ${String(err)}`);
    assert.equal(err.status, 401);
    assert.match(err.message, /authentication failed: check ANTHROPIC_API_KEY/);
    noKeyIn(err, ANTHROPIC_KEY);
    assert.equal(server.requests.length, 1, '401 is not retried');
  });

  test('abort mid-stream rejects at once with the reason and closes the connection', async () => {
    const server = await fake('anthropic');
    const client = createAnthropicClient({ provider: 'anthropic', apiKey: ANTHROPIC_KEY, baseURL: server.url });
    await checkAbortMidStream(client, server, 'claude-sonnet-4-6');
  });

  test('abort before the response starts rejects with the reason', async () => {
    const server = await fake('anthropic');
    const client = createAnthropicClient({ provider: 'anthropic', apiKey: ANTHROPIC_KEY, baseURL: server.url });
    await checkAbortBeforeHeaders(client, server, 'claude-sonnet-4-6');
  });

  test('abort during the retry back-off rejects at once', async () => {
    const server = await fake('anthropic');
    const client = createAnthropicClient({ provider: 'anthropic', apiKey: ANTHROPIC_KEY, baseURL: server.url, maxRetries: 1 });
    await checkAbortDuringRetry(client, server, 'claude-sonnet-4-6');
  });

  test('unparsable tool JSON gives {} and inputError; max_tokens maps', async () => {
    const server = await fake('anthropic');
    server.setScript([{ toolCalls: [{ id: 'toolu_x', name: 'bash', input: '{"command": "echo hi' }], stopReason: 'max_tokens' }]);
    const client = createAnthropicClient({ provider: 'anthropic', apiKey: ANTHROPIC_KEY, baseURL: server.url });
    const res = await client.turn(request(), recorder().cb);
    assert.equal(res.stopReason, 'max_tokens');
    assert.equal(res.toolCalls.length, 1);
    assert.deepEqual(res.toolCalls[0]!.input, {});
    assert.match(res.toolCalls[0]!.inputError ?? '', /not valid JSON/);
  });

  test('a stream cut off mid-response is a ModelError', async () => {
    const server = await fake('anthropic');
    const client = createAnthropicClient({ provider: 'anthropic', apiKey: ANTHROPIC_KEY, baseURL: server.url });
    await checkDroppedStream(client, server, 'claude-sonnet-4-6');
  });

  test('an unreachable server is a ModelError with a hint', async () => {
    const client = createAnthropicClient({ provider: 'anthropic', apiKey: ANTHROPIC_KEY, baseURL: await deadURL(), maxRetries: 0 });
    const err = await client.turn(request(), recorder().cb).catch((e) => e);
    assert.ok(err instanceof ModelError, `expected a ModelError, got ${String(err)}`);
    assert.equal(err.status, undefined);
    assert.match(err.message, /could not reach anthropic at 127\.0\.0\.1:\d+/);
    assert.match(err.hint ?? '', /ANTHROPIC_BASE_URL/);
  });
});

describe('openai provider', () => {
  test('streams text, sends a Bearer key, asks for usage and maps it', async () => {
    const server = await fake('openai');
    server.setScript([{ text: ['A', 'B', 'C'], usage: { input: 500, output: 20, cacheRead: 384 } }]);
    const client = createOpenAIClient({ provider: 'openai', apiKey: OPENAI_KEY, baseURL: server.url });
    const { events, cb } = recorder();
    const res = await client.turn(request({ model: 'gpt-4o', thinkingLevel: 'high' }), cb);

    assert.deepEqual(events, ['text:A', 'text:B', 'text:C']);
    assert.equal(res.text, 'ABC');
    assert.equal(res.stopReason, 'end');
    assert.deepEqual(res.usage, { inputTokens: 500, outputTokens: 20, cacheReadTokens: 384, cacheWriteTokens: 0 });

    const r = server.requests[0]!;
    assert.equal(r.path, '/v1/chat/completions');
    assert.equal(r.headers.authorization, `Bearer ${OPENAI_KEY}`);
    assert.equal(r.body.stream, true);
    assert.deepEqual(r.body.stream_options, { include_usage: true });
    assert.deepEqual(r.body.messages, [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'hi' },
    ]);
    assert.deepEqual(r.body.tools[0], { type: 'function', function: { name: 'bash', description: 'Run a command', parameters: TOOLS[0]!.inputSchema } });
    // gpt-4o has no reasoning setting and gets no output limit.
    assert.equal(r.body.reasoning_effort, undefined);
    assert.equal(r.body.max_tokens, undefined);
    assert.equal(r.body.max_completion_tokens, undefined);
  });

  test('parallel tool calls split over chunks; results go back as tool messages', async () => {
    const server = await fake('openai');
    server.setScript([
      {
        toolCalls: [
          { id: 'call_a', name: 'bash', input: { command: 'cat "a b.txt"' } },
          { id: 'call_b', name: 'read_file', input: { path: 'x/y.md' } },
        ],
      },
      { text: 'fine' },
    ]);
    const client = createOpenAIClient({ provider: 'openai', apiKey: OPENAI_KEY, baseURL: server.url });
    const first = await client.turn(request({ model: 'gpt-4.1' }), recorder().cb);
    assert.equal(first.stopReason, 'tool_use');
    assert.deepEqual(first.toolCalls, [
      { id: 'call_a', name: 'bash', input: { command: 'cat "a b.txt"' } },
      { id: 'call_b', name: 'read_file', input: { path: 'x/y.md' } },
    ]);

    await client.turn(request({ model: 'gpt-4.1', messages: [
      { role: 'user', content: 'hi' },
      first.message,
      { role: 'tool', results: [
        { id: 'call_a', name: 'bash', content: 'hello', isError: false },
        { id: 'call_b', name: 'read_file', content: 'not found', isError: true },
      ] },
    ] }), recorder().cb);
    const sent = server.requests[1]!.body.messages;
    assert.deepEqual(sent.slice(2), [
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_a', type: 'function', function: { name: 'bash', arguments: '{"command":"cat \\"a b.txt\\""}' } },
          { id: 'call_b', type: 'function', function: { name: 'read_file', arguments: '{"path":"x/y.md"}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_a', content: 'hello' },
      { role: 'tool', tool_call_id: 'call_b', content: 'Error: not found' },
    ]);
  });

  test('reasoning deltas (reasoning_content or reasoning) go to onThinking', async () => {
    const server = await fake('openai');
    server.setScript([
      { thinking: 'step one, step two', text: 'answer' },
      { thinking: 'other field', reasoningField: 'reasoning', text: 'answer 2' },
    ]);
    const client = createOpenAIClient({ provider: 'openai', apiKey: OPENAI_KEY, baseURL: server.url });
    for (const [thinking, text] of [['step one, step two', 'answer'], ['other field', 'answer 2']]) {
      const { events, cb } = recorder();
      const res = await client.turn(request({ model: 'deepseek-reasoner' }), cb);
      const think = events.filter((e) => e.startsWith('think:'));
      assert.ok(think.length >= 2, `the reasoning came as two or more thinking deltas; got ${JSON.stringify(events)}`);
      assert.equal(think.map((e) => e.slice(6)).join(''), thinking);
      assert.equal(events.at(-1), `text:${text}`);
      assert.equal(res.text, text);
      assert.equal(res.message.text, text);
    }
  });

  test('thinkingLevel mapping: reasoning_effort, OpenRouter reasoning, max_completion_tokens', async () => {
    const server = await fake('openai');
    server.setScript(() => ({ text: 'x' }));
    const make = (provider: 'openai' | 'google' | 'openrouter') => createOpenAIClient({ provider, apiKey: OPENAI_KEY, baseURL: server.url });
    const body = async (client: ModelClient, model: string, thinkingLevel: TurnRequest['thinkingLevel']) => {
      await client.turn(request({ model, thinkingLevel }), recorder().cb);
      const b = server.requests.at(-1)!.body;
      return { effort: b.reasoning_effort, reasoning: b.reasoning, maxCompletion: b.max_completion_tokens, max: b.max_tokens };
    };
    const openai = make('openai');
    assert.deepEqual(await body(openai, 'gpt-5', 'high'), { effort: 'high', reasoning: undefined, maxCompletion: 16384 + 24576, max: undefined });
    assert.deepEqual(await body(openai, 'o4-mini', 'low'), { effort: 'low', reasoning: undefined, maxCompletion: 16384 + 2048, max: undefined });
    // gpt-oss on a local server: effort yes, but no output limit (its context may be small).
    assert.deepEqual(await body(openai, 'gpt-oss-120b', 'low'), { effort: 'low', reasoning: undefined, maxCompletion: undefined, max: undefined });
    assert.deepEqual(await body(openai, 'gpt-5-mini', 'none'), { effort: undefined, reasoning: undefined, maxCompletion: 16384 + 8192, max: undefined });
    assert.deepEqual(await body(make('google'), 'gemini-2.5-pro', 'medium'), { effort: 'medium', reasoning: undefined, maxCompletion: undefined, max: undefined });
    assert.deepEqual(await body(make('google'), 'gemini-2.0-flash', 'medium'), { effort: undefined, reasoning: undefined, maxCompletion: undefined, max: undefined });
    assert.deepEqual(await body(make('openrouter'), 'openai/gpt-5', 'low'), { effort: undefined, reasoning: { effort: 'low' }, maxCompletion: undefined, max: undefined });

    assert.equal(openai.supportsThinking('gpt-5.4'), true);
    assert.equal(openai.supportsThinking('o3'), true);
    assert.equal(openai.supportsThinking('gpt-4o'), false);
    assert.equal(make('google').supportsThinking('gemini-3.1-pro-preview'), true);
    assert.equal(make('google').supportsThinking('gemini-2.0-flash'), false);
    assert.equal(make('openrouter').supportsThinking('anthropic/claude-sonnet-4.5'), true);
    assert.equal(make('openrouter').supportsThinking('meta-llama/llama-3.3-70b-instruct'), false);
  });

  test('a 429 is retried by the SDK, then succeeds', async () => {
    const server = await fake('openai');
    server.setScript([{ error: { status: 429, headers: { 'retry-after': '0' } } }, { text: 'after retry' }]);
    const client = createOpenAIClient({ provider: 'openai', apiKey: OPENAI_KEY, baseURL: server.url, maxRetries: 1 });
    const res = await client.turn(request({ model: 'gpt-4o' }), recorder().cb);
    assert.equal(res.text, 'after retry');
    assert.equal(server.requests.length, 2);
  });

  test('5xx after retries is a ModelError with status', async () => {
    const server = await fake('openai');
    server.setScript(() => ({ error: { status: 503, headers: { 'retry-after': '0' } } }));
    const client = createOpenAIClient({ provider: 'openai', apiKey: OPENAI_KEY, baseURL: server.url, maxRetries: 2 });
    const err = await client.turn(request({ model: 'gpt-4o' }), recorder().cb).catch((e) => e);
    assert.ok(err instanceof ModelError, `expected a ModelError, got ${String(err)}`);
    assert.equal(err.status, 503);
    assert.match(err.message, /openai API error 503 after 2 retries/);
    assert.equal(server.requests.length, 3);
  });

  test('401 is a ModelError naming the provider variable, never the key', async () => {
    const server = await fake('openai');
    const body = { error: { message: `Incorrect API key provided: ${OPENAI_KEY}.`, type: 'invalid_request_error', param: null, code: 'invalid_api_key' } };
    server.setScript(() => ({ error: { status: 401, body } }));
    for (const [provider, variable] of [['openai', 'OPENAI_API_KEY'], ['google', 'GOOGLE_API_KEY']] as const) {
      const client = createOpenAIClient({ provider, apiKey: OPENAI_KEY, baseURL: server.url });
      const err = await client.turn(request({ model: 'gpt-4o' }), recorder().cb).catch((e) => e);
      assert.ok(err instanceof ModelError, `expected a ModelError, got ${String(err)}`);
      assert.equal(err.status, 401);
      assert.match(err.message, new RegExp(`authentication failed: check ${variable}`));
      noKeyIn(err, OPENAI_KEY);
    }
  });

  test('abort mid-stream rejects at once with the reason and closes the connection', async () => {
    const server = await fake('openai');
    const client = createOpenAIClient({ provider: 'openai', apiKey: OPENAI_KEY, baseURL: server.url });
    await checkAbortMidStream(client, server, 'gpt-4o');
  });

  test('abort before the response starts rejects with the reason', async () => {
    const server = await fake('openai');
    const client = createOpenAIClient({ provider: 'openai', apiKey: OPENAI_KEY, baseURL: server.url });
    await checkAbortBeforeHeaders(client, server, 'gpt-4o');
  });

  test('abort during the retry back-off rejects at once', async () => {
    const server = await fake('openai');
    const client = createOpenAIClient({ provider: 'openai', apiKey: OPENAI_KEY, baseURL: server.url, maxRetries: 1 });
    await checkAbortDuringRetry(client, server, 'gpt-4o');
  });

  test('unparsable tool JSON gives {} and inputError, and goes back verbatim; length maps to max_tokens', async () => {
    const server = await fake('openai');
    const raw = '{"command": "echo hi", ';
    server.setScript([{ toolCalls: [{ id: 'call_z', name: 'bash', input: raw }], stopReason: 'max_tokens' }, { text: 'ok' }]);
    const client = createOpenAIClient({ provider: 'openai', apiKey: OPENAI_KEY, baseURL: server.url });
    const res = await client.turn(request({ model: 'gpt-4o' }), recorder().cb);
    assert.equal(res.stopReason, 'max_tokens');
    assert.deepEqual(res.toolCalls[0]!.input, {});
    assert.match(res.toolCalls[0]!.inputError ?? '', /not valid JSON/);

    await client.turn(request({ model: 'gpt-4o', messages: [
      { role: 'user', content: 'hi' },
      res.message,
      { role: 'tool', results: [{ id: 'call_z', name: 'bash', content: 'bad arguments', isError: true }] },
    ] }), recorder().cb);
    assert.equal(server.requests[1]!.body.messages[2].tool_calls[0].function.arguments, raw);
  });

  test("extra tool-call fields (Gemini's thought signature) are sent back", async () => {
    const server = await fake('openai');
    const extra = { extra_content: { google: { thought_signature: 'c2lnbmF0dXJl' } } };
    server.setScript([{ toolCalls: [{ id: 'fc_1', name: 'bash', input: { command: 'pwd' }, extra }] }, { text: 'ok' }]);
    const client = createOpenAIClient({ provider: 'google', apiKey: OPENAI_KEY, baseURL: server.url });
    const first = await client.turn(request({ model: 'gemini-3.1-pro-preview' }), recorder().cb);
    assert.deepEqual(first.toolCalls, [{ id: 'fc_1', name: 'bash', input: { command: 'pwd' } }]);
    await client.turn(request({ model: 'gemini-3.1-pro-preview', messages: [
      { role: 'user', content: 'hi' },
      first.message,
      { role: 'tool', results: [{ id: 'fc_1', name: 'bash', content: '/workspace', isError: false }] },
    ] }), recorder().cb);
    assert.deepEqual(server.requests[1]!.body.messages[2].tool_calls[0], {
      ...extra,
      id: 'fc_1',
      type: 'function',
      function: { name: 'bash', arguments: '{"command":"pwd"}' },
    });
  });

  test('a stream cut off mid-response is a ModelError', async () => {
    const server = await fake('openai');
    const client = createOpenAIClient({ provider: 'openai', apiKey: OPENAI_KEY, baseURL: server.url });
    await checkDroppedStream(client, server, 'gpt-4o');
  });

  test('an unreachable server is a ModelError with a hint', async () => {
    const client = createOpenAIClient({ provider: 'openrouter', apiKey: OPENAI_KEY, baseURL: await deadURL(), maxRetries: 0 });
    const err = await client.turn(request({ model: 'openai/gpt-4o' }), recorder().cb).catch((e) => e);
    assert.ok(err instanceof ModelError, `expected a ModelError, got ${String(err)}`);
    assert.match(err.message, /could not reach openrouter at 127\.0\.0\.1:\d+/);
    assert.match(err.hint ?? '', /OPENROUTER_BASE_URL/);
  });
});
