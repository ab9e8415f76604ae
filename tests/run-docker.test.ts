// End to end: a real server, the real model SDKs against fake model servers, real Docker sandboxes.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createConnection } from 'node:net';
import { startFakeAnthropic, startFakeOpenAI, type FakeModelServer } from './fixtures/fake-models.ts';
import { assertWellFormedRun, readEvents, readUntil } from './helpers/sse.ts';
import { managedContainers, managedVolumes, startTestServer, waitFor, type TestServer } from './helpers/server.ts';

const ANTHROPIC_KEY = 'sk-ant-secret-do-not-leak-1234567890';
const OPENAI_KEY = 'sk-openai-secret-do-not-leak-0987654321';

let anthropic: FakeModelServer;
let openai: FakeModelServer;
let s: TestServer;

before(async () => {
  anthropic = await startFakeAnthropic();
  openai = await startFakeOpenAI();
  s = await startTestServer({
    env: {
      ANTHROPIC_API_KEY: ANTHROPIC_KEY,
      ANTHROPIC_BASE_URL: anthropic.url,
      OPENAI_API_KEY: OPENAI_KEY,
      OPENAI_BASE_URL: openai.url,
      SANDCASTER_SANDBOX_PROVIDER: 'docker',
    },
  });
});
after(async () => {
  await s.stop();
  await anthropic.close();
  await openai.close();
});
afterEach(async () => {
  // Every test leaves no sandbox behind.
  assert.ok(await waitFor(async () => (await managedContainers(s.app.store.instanceId)).length === 0, 5000), 'no container left');
  assert.equal((await managedVolumes(s.app.store.instanceId)).length, 0, 'no workspace volume left');
});

const types = (events: Record<string, any>[]) => events.map((e) => (e.type === 'system' ? `system:${e.subtype}` : e.type));

describe('a full run per model family', () => {
  for (const family of ['anthropic', 'openai'] as const) {
    test(`${family}: upload, tool calls in the sandbox, final answer, events in order, run row`, async () => {
      const fake = family === 'anthropic' ? anthropic : openai;
      fake.setScript([
        { text: ['Let me ', 'look.'], toolCalls: [{ name: 'read_file', input: { path: 'notes/in.txt' } }], usage: { input: 100, output: 20 } },
        { toolCalls: [{ name: 'bash', input: { command: 'cat notes/in.txt | tr a-z A-Z; echo oops >&2; id -u; env; exit 3' } }], usage: { input: 150, output: 10 } },
        { text: 'All done: HELLO', usage: { input: 200, output: 5 } },
      ]);
      const before = fake.requests.length;
      const res = await s.query({
        prompt: 'Shout the file.',
        model: family === 'anthropic' ? 'sonnet' : 'gpt5mini',
        files: [{ path: 'notes/in.txt', content: 'hello\n' }],
      });
      assert.equal(res.headers.get('content-type')?.startsWith('text/event-stream'), true);
      assert.equal(res.headers.get('cache-control'), 'no-cache');
      assert.equal(res.headers.get('x-accel-buffering'), 'no');
      const runId = res.headers.get('x-run-id')!;
      assert.match(runId, /^run_[A-Za-z0-9_-]{16,}$/);
      const events = await readEvents(res);
      const result = assertWellFormedRun(events);

      // The first turn streams beside the sandbox's creation (docs/architecture.md#run-lifecycle): its text may
      // come before or after sandbox_created, which always comes before the first tool call.
      const order = types(events);
      const createdAt = order.indexOf('system:sandbox_created');
      assert.ok(createdAt > 0 && createdAt < order.indexOf('tool_use'), `sandbox_created comes after run_started and before any tool call: ${order.join(', ')}`);
      assert.deepEqual(order.filter((t) => t !== 'system:sandbox_created'), [
        'system:run_started',
        'assistant',
        'assistant',
        'tool_use',
        'tool_result',
        'tool_use',
        'tool_result',
        'assistant',
        'system:sandbox_destroyed',
        'result',
      ]);
      const started = events[0] as any;
      const created = events[createdAt] as any;
      assert.equal(started.runId, runId);
      assert.equal(started.model, family === 'anthropic' ? 'claude-sonnet-4-6' : 'gpt-5-mini');
      assert.equal(started.provider, family);
      assert.equal(started.sandboxProvider, 'docker');
      assert.equal(created.sandbox, 'main');
      assert.match(created.sandboxId ?? '', /^[0-9a-f]{12,}$/, 'sandbox_created carries the container id');

      const [read, readResult, bash, bashResult] = events.filter((e) => e.type === 'tool_use' || e.type === 'tool_result');
      assert.deepEqual({ ...read, id: undefined }, { type: 'tool_use', id: undefined, toolName: 'read_file', input: { path: 'notes/in.txt' }, sandbox: 'main' });
      assert.equal(readResult!.id, read!.id);
      assert.equal(readResult!.content, 'hello\n');
      assert.equal(readResult!.isError, false);
      assert.equal('exitCode' in readResult!, false, 'exitCode only for commands');
      assert.equal(bash!.toolName, 'bash');
      assert.equal(bashResult!.exitCode, 3);
      assert.equal(bashResult!.isError, true);
      assert.match(bashResult!.content, /^HELLO$/m);
      assert.match(bashResult!.content, /\[stderr\]\noops/);
      assert.match(bashResult!.content, /^1000$/m, 'tools run as the non-root sandbox user');
      assert.ok(!bashResult!.content.includes(ANTHROPIC_KEY) && !bashResult!.content.includes(OPENAI_KEY), 'no model key in the sandbox env');

      assert.equal(result.type, 'result');
      assert.equal(result.subtype, 'success');
      assert.equal(result.content, family === 'anthropic' ? 'All done: HELLO' : 'All done: HELLO');
      assert.equal(result.runId, runId);
      assert.equal(result.numTurns, 3);
      assert.equal(result.inputTokens, 450);
      assert.equal(result.outputTokens, 35);
      assert.equal(typeof result.costUsd, 'number');
      assert.ok(result.durationSecs > 0, `the result carries a positive duration; got ${result.durationSecs}`);

      // The model saw the tool results, and got the key only in its auth header.
      const reqs = fake.requests.slice(before);
      assert.equal(reqs.length, 3);
      assert.ok(JSON.stringify(reqs[2]!.body).includes('HELLO'), 'the bash output went back to the model');
      // The Anthropic SDK 1.x sends the key as a Bearer token; OpenAI-style APIs always do.
      const authHeader = reqs[0]!.headers.authorization ?? reqs[0]!.headers['x-api-key'];
      assert.ok(String(authHeader).includes(family === 'anthropic' ? ANTHROPIC_KEY : OPENAI_KEY), `the model request authenticates with the configured ${family} key`);

      const row = await (await s.fetch(`/runs/${runId}`)).json();
      assert.equal(row.status, 'completed');
      assert.equal(row.model, started.model);
      assert.equal(row.provider, family);
      assert.equal(row.sandboxProvider, 'docker');
      assert.equal(row.sandboxId, created.sandboxId);
      assert.equal(row.numTurns, 3);
      assert.equal(row.inputTokens, 450);
      assert.equal(row.sandboxCount, 1);
      assert.equal(row.costUsd, result.costUsd);
      assert.equal(row.errorCode, null);
      assert.match(row.startedAt, /^\d{4}-\d\d-\d\dT.*Z$/);
      assert.match(row.completedAt, /^\d{4}-\d\d-\d\dT.*Z$/);
      const list = await (await s.fetch('/runs?limit=1')).json();
      assert.equal(list[0].id, runId, '/runs lists newest first');
    });
  }
});

describe('tools', () => {
  test('write, edit, list and a failing tool the model sees; parallel calls run in parallel', async () => {
    anthropic.setScript([
      {
        toolCalls: [
          { name: 'write_file', input: { path: 'src/a.txt', content: 'one two three' } },
          // Each waits (up to 10 s) for the other's mark: both finish only if they ran at the same time.
          { name: 'bash', input: { command: 'touch /tmp/a; i=0; while [ ! -e /tmp/b ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; [ -e /tmp/b ] && echo slept' } },
          { name: 'bash', input: { command: 'touch /tmp/b; i=0; while [ ! -e /tmp/a ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; [ -e /tmp/a ] && echo slept-too' } },
        ],
      },
      {
        toolCalls: [
          { name: 'edit_file', input: { path: 'src/a.txt', oldText: 'two', newText: '2' } },
          { name: 'edit_file', input: { path: 'src/a.txt', oldText: 'three', newText: '3' } },
          { name: 'edit_file', input: { path: 'src/a.txt', oldText: 'absent', newText: 'x' } },
          { name: 'read_file', input: { path: 'missing.txt' } },
          { name: 'nonexistent_tool', input: {} },
          { name: 'bash', input: {} },
        ],
      },
      { toolCalls: [{ name: 'list_files', input: {} }, { name: 'read_file', input: { path: '/workspace/src/a.txt' } }] },
      { text: 'ok' },
    ]);
    const events = await readEvents(await s.query({ prompt: 'work', model: 'haiku' }));
    const result = assertWellFormedRun(events);
    assert.equal(result.type, 'result', JSON.stringify(result));
    // Results arrive in completion order; match them to their calls by id.
    const uses = events.filter((e) => e.type === 'tool_use');
    const resultOf = (use: Record<string, any>) => events.find((e) => e.type === 'tool_result' && e.id === use.id)!;
    const byTool = (name: string) => uses.filter((u) => u.toolName === name).map(resultOf);
    assert.equal(byTool('write_file')[0]!.isError, false);
    const edits = byTool('edit_file');
    assert.equal(edits[0]!.isError, false);
    assert.equal(edits[1]!.isError, false, 'two edits of one file in one turn both apply');
    assert.equal(edits[2]!.isError, true);
    assert.match(edits[2]!.content, /not found/);
    assert.equal(byTool('read_file')[0]!.isError, true, 'missing file is a tool error');
    assert.equal(byTool('nonexistent_tool')[0]!.isError, true);
    assert.match(byTool('bash')[2]!.content, /command/, 'invalid input names the field');
    assert.match(byTool('list_files')[0]!.content, /src\/a\.txt \(7 bytes\)/);
    assert.equal(byTool('read_file')[1]!.content, 'one 2 3');
    // The two waits each saw the other's mark, so they ran concurrently.
    const sleeps = byTool('bash').slice(0, 2).map((r) => r.content);
    assert.deepEqual(sleeps.map((c) => c.split('\n')[0]).sort(), ['slept', 'slept-too']);
  });

  test('allowedTools narrows the tools offered to the model', async () => {
    anthropic.setScript([{ text: 'fine' }]);
    const n = anthropic.requests.length;
    const events = await readEvents(await s.query({ prompt: 'x', model: 'haiku', allowedTools: ['read_file'] }));
    assert.equal(assertWellFormedRun(events).type, 'result');
    assert.deepEqual(anthropic.requests[n]!.body.tools.map((t: any) => t.name), ['read_file']);
  });
});

describe('ending a run', () => {
  test('maxTurns: the last requested tools are not run; result subtype max_turns', async () => {
    anthropic.setScript([
      { toolCalls: [{ name: 'bash', input: { command: 'echo 1' } }] },
      { text: 'still going', toolCalls: [{ name: 'bash', input: { command: 'echo 2' } }] },
    ]);
    const res = await s.query({ prompt: 'loop', model: 'haiku', maxTurns: 2 });
    const runId = res.headers.get('x-run-id');
    const events = await readEvents(res);
    const result = assertWellFormedRun(events);
    assert.equal(result.type, 'result');
    assert.equal(result.subtype, 'max_turns');
    assert.equal(result.content, 'still going');
    assert.equal(result.numTurns, 2);
    assert.equal(events.filter((e) => e.type === 'tool_use').length, 1);
    const row = await (await s.fetch(`/runs/${runId}`)).json();
    assert.equal(row.status, 'completed');
  });

  test('a model error ends the run with MODEL_ERROR after the sandbox is destroyed', async () => {
    anthropic.setScript([
      { toolCalls: [{ name: 'bash', input: { command: 'true' } }] },
      { error: { status: 400, body: { type: 'error', error: { type: 'invalid_request_error', message: 'prompt is too long' } } } },
    ]);
    const res = await s.query({ prompt: 'x', model: 'haiku' });
    const runId = res.headers.get('x-run-id');
    const events = await readEvents(res);
    const err = assertWellFormedRun(events);
    assert.equal(err.type, 'error');
    assert.equal(err.code, 'MODEL_ERROR');
    assert.ok(!JSON.stringify(events).includes(ANTHROPIC_KEY), 'the model error streamed to the client does not carry the API key');
    assert.equal(events.at(-2)!.subtype, 'sandbox_destroyed');
    const row = await (await s.fetch(`/runs/${runId}`)).json();
    assert.equal(row.status, 'error');
    assert.equal(row.errorCode, 'MODEL_ERROR');
    assert.equal(row.error, err.content);
    assert.equal(row.numTurns, 1);
  });

  test('timeout: error TIMEOUT, sandbox destroyed, row error', async () => {
    anthropic.setScript([{ toolCalls: [{ name: 'bash', input: { command: 'sleep 60' } }] }, { text: 'never' }]);
    const t0 = Date.now();
    const res = await s.query({ prompt: 'x', model: 'haiku', timeout: 5 });
    const runId = res.headers.get('x-run-id');
    const events = await readEvents(res);
    const err = assertWellFormedRun(events);
    assert.equal(err.code, 'TIMEOUT');
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= 4500 && elapsed < 9000, `ended near the 5 s timeout (${elapsed} ms)`);
    const row = await (await s.fetch(`/runs/${runId}`)).json();
    assert.equal(row.status, 'error');
    assert.equal(row.errorCode, 'TIMEOUT');
  });

  test('a client that hangs up before the response starts still cancels its run', async () => {
    anthropic.setScript([{ hang: true }]);
    const known = new Set(((await (await s.fetch('/runs?limit=200')).json()) as { id: string }[]).map((r) => r.id));
    const { port } = new URL(s.url);
    const body = JSON.stringify({ prompt: 'x', model: 'haiku' });
    // Send the whole request, then close at once: the server learns of it before it answers.
    await new Promise<void>((resolve, reject) => {
      const sock = createConnection(Number(port), '127.0.0.1', () => {
        sock.end(`POST /query HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
        sock.destroy();
        resolve();
      });
      sock.on('error', reject);
    });
    let runId: string | undefined;
    const isNew = (r: { id: string }) => !known.has(r.id);
    assert.ok(await waitFor(async () => (runId = (await (await s.fetch('/runs?limit=200')).json()).find(isNew)?.id) !== undefined, 5000), 'the run was recorded');
    assert.ok(
      await waitFor(async () => (await (await s.fetch(`/runs/${runId}`)).json()).status === 'cancelled', 5000),
      'the run is cancelled, not left running until its timeout',
    );
  });

  test('client disconnect: run cancelled, model request aborted, sandbox gone within 2 s', async () => {
    anthropic.setScript([{ toolCalls: [{ name: 'bash', input: { command: 'echo ready' } }] }, { hang: true }]);
    const abortedBefore = anthropic.aborted;
    const requestsBefore = anthropic.requests.length;
    const ctl = new AbortController();
    const res = await s.fetch('/query', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'x', model: 'haiku' }), signal: ctl.signal });
    const runId = res.headers.get('x-run-id')!;
    // Stay connected past the tool result (reading on would cancel the body: a disconnect of its own).
    const seen = await readUntil(res, (e) => e.type === 'tool_result', { keepOpen: true });
    assert.equal(seen.at(-1)?.type, 'tool_result', `the stream reached the tool result before the client left; got ${JSON.stringify(types(seen))}`);
    // Go away once the model call for turn 2 is hanging.
    assert.ok(await waitFor(() => anthropic.requests.length === requestsBefore + 2, 5000), `the run made its second model call; made ${anthropic.requests.length - requestsBefore}`);
    ctl.abort();
    let left = -1;
    assert.ok(await waitFor(async () => (left = (await managedContainers(s.app.store.instanceId)).length) === 0, 2000), `the sandbox is destroyed within 2 s of the disconnect; ${left} container(s) left`);
    await anthropic.waitForAborted(abortedBefore + 1, 2000);
    let status = '';
    assert.ok(await waitFor(async () => (status = (await (await s.fetch(`/runs/${runId}`)).json()).status) === 'cancelled', 2000), `the run is recorded as cancelled; status ${status}`);
  });
});
