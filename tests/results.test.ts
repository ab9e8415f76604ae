// What a run gives back (issue 3): artifacts as `file` events, structured output, cost and tokens, thinking.
// Real server, real SDKs against the fake model servers, real Docker sandboxes.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startFakeAnthropic, startFakeOpenAI, type FakeModelServer } from './fixtures/fake-models.ts';
import { assertWellFormedRun, readEvents } from './helpers/sse.ts';
import { managedContainers, managedVolumes, startTestServer, waitFor, type TestServer } from './helpers/server.ts';

let anthropic: FakeModelServer;
let openai: FakeModelServer;
let s: TestServer;

before(async () => {
  anthropic = await startFakeAnthropic();
  openai = await startFakeOpenAI();
  s = await startTestServer({
    env: {
      ANTHROPIC_API_KEY: 'sk-ant-results-test-key',
      ANTHROPIC_BASE_URL: anthropic.url,
      OPENAI_API_KEY: 'sk-openai-results-test-key',
      OPENAI_BASE_URL: openai.url,
      SANDCASTER_SANDBOX_PROVIDER: 'docker',
    },
    config: { pricing: { 'local-llama': { input: 1, output: 2 } } },
  });
});
after(async () => {
  await s.stop();
  await anthropic.close();
  await openai.close();
});
afterEach(async () => {
  assert.ok(await waitFor(async () => (await managedContainers(s.app.store.instanceId)).length === 0, 5000), 'no container left');
  assert.equal((await managedVolumes(s.app.store.instanceId)).length, 0, 'no workspace volume left');
});

const files = (events: Record<string, any>[]) => events.filter((e) => e.type === 'file');
const row = async (res: Response) => (await s.fetch(`/runs/${res.headers.get('x-run-id')}`)).json();

describe('artifacts', () => {
  test('text from write_file and binary from bash come back exactly; hidden and unchanged files do not', async () => {
    // Every byte value except none missing: printf with octal escapes for 0..255.
    const octal = Array.from({ length: 256 }, (_, i) => `\\${i.toString(8).padStart(3, '0')}`).join('');
    anthropic.setScript([
      {
        toolCalls: [
          { name: 'write_file', input: { path: 'out/report.md', content: '# Report\nünïcödé ✓\n' } },
          { name: 'bash', input: { command: `mkdir -p out; printf '${octal}' > out/blob.bin; echo secret > .env; mkdir -p .git && echo x > .git/config; printf same > same-size.txt` } },
        ],
      },
      { text: 'made them' },
    ]);
    const res = await s.query({
      prompt: 'make files',
      model: 'haiku',
      files: [
        { path: 'kept.txt', content: 'unchanged upload' },
        { path: 'same-size.txt', content: 'SAME' },
      ],
    });
    const events = await readEvents(res);
    const result = assertWellFormedRun(events);
    assert.equal(result.type, 'result');
    const out = files(events);
    assert.deepEqual(out.map((f) => f.path), ['out/blob.bin', 'out/report.md', 'same-size.txt'], 'sorted; hidden and unchanged uploads skipped');
    const [blob, report, same] = [out[0]!, out[1]!, out[2]!];
    assert.equal(report.encoding, 'utf8');
    assert.equal(report.content, '# Report\nünïcödé ✓\n');
    assert.equal(report.size, Buffer.byteLength('# Report\nünïcödé ✓\n'));
    assert.equal(blob.encoding, 'base64');
    assert.deepEqual(Buffer.from(blob.content, 'base64'), Buffer.from(Array.from({ length: 256 }, (_, i) => i)));
    assert.equal(blob.size, 256);
    assert.equal(same.content, 'same', 'a changed upload is sent even when its size is unchanged');
    // file events come before the sandbox is destroyed and before the result.
    const lastFile = events.lastIndexOf(out.at(-1)!);
    const destroyed = events.findIndex((e) => e.subtype === 'sandbox_destroyed');
    assert.ok(lastFile < destroyed, `the last file event (${lastFile}) comes before sandbox_destroyed (${destroyed})`);
    assert.equal((await row(res)).filesCount, 3);
  });

  test('a changed upload is echoed back; a base64 upload round-trips byte for byte', async () => {
    const blob = randomBytes(4096);
    anthropic.setScript([
      { toolCalls: [{ name: 'bash', input: { command: 'echo more >> notes.txt; cat data.bin | md5sum; wc -c < data.bin' } }] },
      { text: 'ok' },
    ]);
    const events = await readEvents(
      await s.query({
        prompt: 'x',
        model: 'haiku',
        files: [
          { path: 'notes.txt', content: 'first\n' },
          { path: 'data.bin', content: blob.toString('base64'), encoding: 'base64' },
        ],
      }),
    );
    assertWellFormedRun(events);
    const md5 = (await import('node:crypto')).createHash('md5').update(blob).digest('hex');
    const bash = events.find((e) => e.type === 'tool_result')!;
    assert.match(bash.content, new RegExp(md5));
    assert.match(bash.content, /^4096$/m);
    assert.deepEqual(files(events).map((f) => [f.path, f.content]), [['notes.txt', 'first\nmore\n']]);
  });

  test('limits: at most 20 files, 10 MiB each, 25 MiB in all; a warning names what was left out', async () => {
    anthropic.setScript([
      {
        toolCalls: [
          {
            name: 'bash',
            input: {
              command: [
                'for i in $(seq -w 1 22); do echo $i > small-$i.txt; done',
                'mkdir -p big; head -c 11534336 /dev/zero | tr "\\0" b > big/over-10mib.txt',
              ].join('; '),
            },
          },
        ],
      },
      { text: 'ok' },
    ]);
    const events = await readEvents(await s.query({ prompt: 'x', model: 'haiku' }));
    assertWellFormedRun(events);
    const out = files(events);
    assert.equal(out.length, 20);
    const warning = events.find((e) => e.type === 'warning' && e.code === 'ARTIFACTS_LEFT_OUT');
    assert.ok(warning, 'a warning names what was left out');
    assert.match(warning.content, /big\/over-10mib\.txt/);
    assert.match(warning.content, /per-file limit/);
    const sent = new Set(out.map((f) => f.path));
    const leftSmall = Array.from({ length: 22 }, (_, i) => `small-${String(i + 1).padStart(2, '0')}.txt`).filter((p) => !sent.has(p));
    assert.equal(leftSmall.length, 2);
    for (const p of leftSmall) assert.match(warning.content, new RegExp(p.replace('.', '\\.')));

    anthropic.setScript([
      { toolCalls: [{ name: 'bash', input: { command: 'for n in 1 2 3; do head -c 9437184 /dev/zero | tr "\\0" a > part$n.txt; done' } }] },
      { text: 'ok' },
    ]);
    const events2 = await readEvents(await s.query({ prompt: 'x', model: 'haiku' }));
    assertWellFormedRun(events2);
    assert.deepEqual(files(events2).map((f) => f.path), ['part1.txt', 'part2.txt']);
    assert.equal(files(events2)[0]!.size, 9437184);
    const w2 = events2.find((e) => e.type === 'warning' && e.code === 'ARTIFACTS_LEFT_OUT');
    assert.match(w2!.content, /part3\.txt.*total limit/);
  });
});

describe('structured output', () => {
  const schema = { type: 'object', properties: { answer: { type: 'integer' } }, required: ['answer'], additionalProperties: false };

  test('a fenced JSON answer validates; result.content is the bare JSON, structuredOutput the value', async () => {
    anthropic.setScript([{ text: 'Here you go:\n```json\n{"answer": 42}\n```' }]);
    const events = await readEvents(await s.query({ prompt: 'x', model: 'haiku', outputFormat: schema }));
    const result = assertWellFormedRun(events);
    assert.equal(result.subtype, 'success');
    assert.equal(result.content, '{"answer": 42}');
    assert.deepEqual(result.structuredOutput, { answer: 42 });
  });

  test('the structured_output tool is offered and its input is the answer (wrapped form of outputFormat)', async () => {
    openai.setScript([{ toolCalls: [{ name: 'structured_output', input: { answer: 7 } }] }]);
    const n = openai.requests.length;
    const events = await readEvents(await s.query({ prompt: 'x', model: 'gpt5mini', outputFormat: { type: 'json_schema', schema } }));
    const result = assertWellFormedRun(events);
    assert.deepEqual(result.structuredOutput, { answer: 7 });
    assert.equal(result.content, '{"answer":7}');
    const offered = openai.requests[n]!.body.tools.map((t: any) => t.function.name);
    assert.ok(offered.includes('structured_output'), `the structured_output tool is offered to the model; offered ${JSON.stringify(offered)}`);
  });

  test('an invalid answer is sent back with the errors and corrected on the next try', async () => {
    anthropic.setScript([{ text: '{"answer": "forty-two"}' }, { text: '{"answer": 42}' }]);
    const n = anthropic.requests.length;
    const events = await readEvents(await s.query({ prompt: 'x', model: 'haiku', outputFormat: schema }));
    const result = assertWellFormedRun(events);
    assert.equal(result.type, 'result');
    assert.deepEqual(result.structuredOutput, { answer: 42 });
    assert.equal(result.numTurns, 2);
    const feedback = JSON.stringify(anthropic.requests[n + 1]!.body.messages.at(-1));
    assert.match(feedback, /answer must be integer/);
  });

  test('invalid three times (two retries) ends with MODEL_ERROR saying the output did not match', async () => {
    anthropic.setScript([{ text: 'not json' }, { text: '{"answer": 1.5}' }, { text: '{"answer": 1, "extra": true}' }, { text: '{"answer": 1}' }]);
    const res = await s.query({ prompt: 'x', model: 'haiku', outputFormat: schema });
    const events = await readEvents(res);
    const err = assertWellFormedRun(events);
    assert.equal(err.type, 'error');
    assert.equal(err.code, 'MODEL_ERROR');
    assert.match(err.content, /did not match/);
    assert.match(err.content, /extra/);
    const r = await row(res);
    assert.equal(r.numTurns, 3, 'three answers in all');
    assert.equal(r.status, 'error');
  });
});

describe('cost and tokens', () => {
  test('usage is summed over turns (cache included) and the cost matches a hand-computed figure', async () => {
    anthropic.setScript([
      { toolCalls: [{ name: 'bash', input: { command: 'true' } }], usage: { input: 1000, output: 200, cacheWrite: 500 } },
      { text: 'done', usage: { input: 100, output: 50, cacheRead: 500 } },
    ]);
    const res = await s.query({ prompt: 'x', model: 'sonnet' });
    const result = assertWellFormedRun(await readEvents(res));
    // claude-sonnet-4-6: $3 input, $15 output, $0.30 cache read, $3.75 cache write per million tokens.
    // (1100 * 3 + 250 * 15 + 500 * 0.30 + 500 * 3.75) / 1e6 = 0.009075
    assert.equal(result.inputTokens, 2100, 'input + cache write + cache read');
    assert.equal(result.outputTokens, 250);
    assert.equal(result.cacheReadTokens, 500);
    assert.equal(result.cacheWriteTokens, 500);
    assert.equal(result.costUsd, 0.009075);
    const r = await row(res);
    assert.deepEqual([r.inputTokens, r.outputTokens, r.cacheReadTokens, r.cacheWriteTokens, r.costUsd], [2100, 250, 500, 500, 0.009075]);
    const listed = (await (await s.fetch('/runs?limit=1')).json())[0];
    assert.equal(listed.costUsd, 0.009075);
  });

  test('OpenAI-style usage: prompt_tokens include the cached part', async () => {
    openai.setScript([{ text: 'hi', usage: { input: 1000, output: 100, cacheRead: 400 } }]);
    const result = assertWellFormedRun(await readEvents(await s.query({ prompt: 'x', model: 'gpt5mini' })));
    assert.equal(result.inputTokens, 1000);
    assert.equal(result.cacheReadTokens, 400);
    // gpt-5-mini: $0.25 input, $2 output, $0.025 cached: (600*0.25 + 400*0.025 + 100*2) / 1e6
    assert.equal(result.costUsd, 0.00036);
  });

  test('a price from sandcaster.json pricing is used; an unknown model gives null and a warning', async () => {
    openai.setScript([{ text: 'a', usage: { input: 1_000_000, output: 1_000_000 } }]);
    const priced = assertWellFormedRun(await readEvents(await s.query({ prompt: 'x', model: 'local-llama', provider: 'openai' })));
    assert.equal(priced.costUsd, 3);

    openai.setScript([{ text: 'b', usage: { input: 10, output: 10 } }]);
    const res = await s.query({ prompt: 'x', model: 'mystery-model', provider: 'openai' });
    const events = await readEvents(res);
    const result = assertWellFormedRun(events);
    assert.equal(result.costUsd, null);
    const w = events.find((e) => e.type === 'warning');
    assert.equal(w?.code, 'UNKNOWN_PRICE');
    assert.match(w.content, /mystery-model/);
    assert.equal((await row(res)).costUsd, null);
  });
});

describe('thinking', () => {
  test('Anthropic: thinkingLevel maps to a budget and thinking deltas stream as thinking events', async () => {
    anthropic.setScript([{ thinking: 'Let me think about it.', text: 'answer' }]);
    const n = anthropic.requests.length;
    const events = await readEvents(await s.query({ prompt: 'x', model: 'claude-sonnet-4-5', thinkingLevel: 'medium' }));
    assert.equal(assertWellFormedRun(events).content, 'answer');
    const thinking = events.filter((e) => e.type === 'thinking').map((e) => e.content).join('');
    assert.equal(thinking, 'Let me think about it.');
    assert.deepEqual(anthropic.requests[n]!.body.thinking, { type: 'enabled', budget_tokens: 8192 });
  });

  test('OpenAI: thinkingLevel is reasoning_effort of the same name', async () => {
    openai.setScript([{ thinking: 'pondering', text: 'ok' }]);
    const n = openai.requests.length;
    const events = await readEvents(await s.query({ prompt: 'x', model: 'gpt-5-mini', thinkingLevel: 'high' }));
    assertWellFormedRun(events);
    assert.equal(openai.requests[n]!.body.reasoning_effort, 'high');
    assert.equal(events.filter((e) => e.type === 'thinking').map((e) => e.content).join(''), 'pondering');
  });

  test('a model without a thinking setting ignores it with a warning', async () => {
    openai.setScript([{ text: 'ok' }]);
    const n = openai.requests.length;
    const events = await readEvents(await s.query({ prompt: 'x', model: 'gpt-4o', thinkingLevel: 'low' }));
    assertWellFormedRun(events);
    const w = events.find((e) => e.type === 'warning' && e.code === 'THINKING_UNSUPPORTED');
    assert.ok(w, `a THINKING_UNSUPPORTED warning is streamed; got ${JSON.stringify(events.filter((e) => e.type === 'warning'))}`);
    assert.equal(openai.requests[n]!.body.reasoning_effort, undefined);
  });
});
