// End to end on E2B: a real server, the real model SDKs against fake model servers, the real e2b SDK against
// the local fake E2B (tests/fixtures/fake-e2b.ts), whose sandboxes are Docker containers running real
// processes. Mirrors tests/run-docker.test.ts: a run must behave the same on both providers.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createE2bProvider, E2B_META_INSTANCE, E2B_META_RUN } from '../providers/e2b/index.ts';
import { RunStore } from '../lib/store.ts';
import { startFakeE2b, type FakeE2b } from './fixtures/fake-e2b.ts';
import { startFakeAnthropic, startFakeOpenAI, type FakeModelServer } from './fixtures/fake-models.ts';
import { spawnServer } from './helpers/child.ts';
import { assertWellFormedRun, readEvents, readUntil } from './helpers/sse.ts';
import { managedContainers, startTestServer, waitFor, type TestServer } from './helpers/server.ts';

const ANTHROPIC_KEY = 'sk-ant-secret-do-not-leak-e2b-1234567890';
const OPENAI_KEY = 'sk-openai-secret-do-not-leak-e2b-0987654321';

let fake: FakeE2b;
let anthropic: FakeModelServer;
let openai: FakeModelServer;
let s: TestServer;
let dir: string;

before(async () => {
  fake = await startFakeE2b();
  // The e2b SDK takes its endpoints from the environment of this (the server's) process.
  Object.assign(process.env, fake.env());
  anthropic = await startFakeAnthropic();
  openai = await startFakeOpenAI();
  dir = mkdtempSync(join(tmpdir(), 'sandcaster-run-e2b-'));
  s = await startTestServer({
    env: {
      ANTHROPIC_API_KEY: ANTHROPIC_KEY,
      ANTHROPIC_BASE_URL: anthropic.url,
      OPENAI_API_KEY: OPENAI_KEY,
      OPENAI_BASE_URL: openai.url,
      E2B_API_KEY: fake.apiKey,
      SANDCASTER_SANDBOX_PROVIDER: 'e2b',
    },
  });
});
after(async () => {
  await s?.stop();
  await anthropic?.close();
  await openai?.close();
  const unknown = fake?.requests.filter((r) => r.unknown).map((r) => `${r.method} ${r.path}`);
  await fake?.close();
  rmSync(dir, { recursive: true, force: true });
  assert.deepEqual(unknown, [], 'the SDK made no call the fake could not answer');
});

const ofInstance = (instanceId: string) => fake.sandboxes().filter((x) => x.metadata[E2B_META_INSTANCE] === instanceId);
afterEach(async () => {
  // Every test leaves no sandbox behind, on E2B or on Docker.
  assert.ok(await waitFor(() => ofInstance(s.app.store.instanceId).length === 0, 5000), 'no E2B sandbox left');
  assert.ok(await waitFor(async () => (await managedContainers(s.app.store.instanceId)).length === 0, 5000), 'no container left');
});

const types = (events: Record<string, any>[]) => events.map((e) => (e.type === 'system' ? `system:${e.subtype}` : e.type));
const createRequests = (since = 0) => fake.requests.slice(since).filter((r) => r.method === 'POST' && r.path === '/v2/sandboxes');
const killedIds = () => new Set(fake.requests.filter((r) => r.method === 'DELETE').map((r) => r.path.split('/').pop()));
const row = async (runId: string) => (await s.fetch(`/runs/${runId}`)).json();

describe('a full run per model family on E2B', () => {
  for (const family of ['anthropic', 'openai'] as const) {
    test(`${family}: upload, tool calls in the E2B sandbox, final answer, events in order, run row`, async () => {
      const model = family === 'anthropic' ? anthropic : openai;
      model.setScript([
        { text: ['Let me ', 'look.'], toolCalls: [{ name: 'read_file', input: { path: 'notes/in.txt' } }], usage: { input: 100, output: 20 } },
        { toolCalls: [{ name: 'bash', input: { command: 'cat notes/in.txt | tr a-z A-Z; echo oops >&2; id -u; env; exit 3' } }], usage: { input: 150, output: 10 } },
        { text: 'All done: HELLO', usage: { input: 200, output: 5 } },
      ]);
      const before = model.requests.length;
      const fakeBefore = fake.requests.length;
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
      const destroyed = events.at(-2)!;
      assert.equal(started.runId, runId);
      assert.equal(started.model, family === 'anthropic' ? 'claude-sonnet-4-6' : 'gpt-5-mini');
      assert.equal(started.provider, family);
      assert.equal(started.sandboxProvider, 'e2b');
      assert.equal(created.sandbox, 'main');
      assert.ok(created.sandboxId, 'sandbox_created names the sandbox id');
      assert.equal(destroyed.sandbox, 'main');
      assert.equal(destroyed.sandboxId, created.sandboxId);

      // The sandbox is the one the fake E2B made for this run, with this run's metadata, and it is gone now.
      const creates = createRequests(fakeBefore);
      assert.equal(creates.length, 1, 'one sandbox created');
      const create = creates[0]!;
      assert.equal(create.createdId, created.sandboxId);
      const body = create.body as Record<string, any>;
      assert.equal(body.templateID, 'base');
      assert.deepEqual(body.metadata, { [E2B_META_INSTANCE]: s.app.store.instanceId, [E2B_META_RUN]: runId });
      assert.equal(body.timeout, 300 + 60, 'sandbox lifetime = run timeout + 60 s');
      assert.equal(body.allow_internet_access, false);
      assert.ok(killedIds().has(created.sandboxId), 'the sandbox was killed through the E2B API');
      assert.ok(!fake.sandboxes().some((x) => x.id === created.sandboxId), 'the sandbox is gone');

      const [read, readResult, bash, bashResult] = events.filter((e) => e.type === 'tool_use' || e.type === 'tool_result');
      assert.deepEqual({ ...read, id: undefined }, { type: 'tool_use', id: undefined, toolName: 'read_file', input: { path: 'notes/in.txt' }, sandbox: 'main' });
      assert.equal(readResult!.id, read!.id);
      assert.equal(readResult!.content, 'hello\n');
      assert.equal(readResult!.isError, false);
      assert.equal(readResult!.sandbox, 'main');
      assert.equal('exitCode' in readResult!, false, 'exitCode only for commands');
      assert.equal(bash!.toolName, 'bash');
      assert.equal(bash!.sandbox, 'main');
      assert.equal(bashResult!.id, bash!.id);
      assert.equal(bashResult!.exitCode, 3);
      assert.equal(bashResult!.isError, true);
      assert.match(bashResult!.content, /^HELLO$/m);
      assert.match(bashResult!.content, /\[stderr\]\noops/);
      assert.match(bashResult!.content, /^1000$/m, 'tools run as the non-root sandbox user');
      assert.match(bashResult!.content, /^PATH=/m, 'the env output is there');
      // No secret in the sandbox: not in its environment, not in anything sent to E2B.
      for (const secret of [ANTHROPIC_KEY, OPENAI_KEY, fake.apiKey]) {
        assert.ok(!bashResult!.content.includes(secret), 'no key in the sandbox env');
        assert.ok(!JSON.stringify(body.envVars ?? {}).includes(secret), 'no key in the create request envVars');
        assert.ok(!JSON.stringify(body).includes(secret), 'no key in the create request');
        for (const r of fake.requests.slice(fakeBefore)) assert.ok(!JSON.stringify(r.body ?? null).includes(secret), `no key in ${r.method} ${r.path}`);
      }
      assert.doesNotMatch(bashResult!.content, /ANTHROPIC|OPENAI|E2B_API_KEY/);

      assert.equal(result.type, 'result');
      assert.equal(result.subtype, 'success');
      assert.equal(result.content, 'All done: HELLO');
      assert.equal(result.runId, runId);
      assert.equal(result.model, started.model);
      assert.equal(result.numTurns, 3);
      assert.equal(result.inputTokens, 450);
      assert.equal(result.outputTokens, 35);
      assert.equal(typeof result.costUsd, 'number');
      assert.ok(result.durationSecs > 0, `the result carries a positive duration; got ${result.durationSecs}`);

      // The model saw the tool results, and got the key only in its auth header.
      const reqs = model.requests.slice(before);
      assert.equal(reqs.length, 3);
      assert.ok(JSON.stringify(reqs[2]!.body).includes('HELLO'), 'the bash output went back to the model');
      const authHeader = reqs[0]!.headers.authorization ?? reqs[0]!.headers['x-api-key'];
      assert.ok(String(authHeader).includes(family === 'anthropic' ? ANTHROPIC_KEY : OPENAI_KEY), 'the key is in the auth header');

      const r = await row(runId);
      assert.equal(r.status, 'completed');
      assert.equal(r.model, started.model);
      assert.equal(r.provider, family);
      assert.equal(r.sandboxProvider, 'e2b');
      assert.equal(r.sandboxId, created.sandboxId);
      assert.equal(r.numTurns, 3);
      assert.equal(r.inputTokens, 450);
      assert.equal(r.sandboxCount, 1);
      assert.equal(r.costUsd, result.costUsd);
      assert.equal(r.errorCode, null);
      assert.match(r.startedAt, /^\d{4}-\d\d-\d\dT.*Z$/);
      assert.match(r.completedAt, /^\d{4}-\d\d-\d\dT.*Z$/);
      const list = await (await s.fetch('/runs?limit=1')).json();
      assert.equal(list[0].id, runId, '/runs lists newest first');
    });
  }

  test('the other tools (write, edit, list, read) work on E2B like on Docker', async () => {
    anthropic.setScript([
      { toolCalls: [{ name: 'write_file', input: { path: 'src/a.txt', content: 'one two three' } }] },
      {
        toolCalls: [
          { name: 'edit_file', input: { path: 'src/a.txt', oldText: 'two', newText: '2' } },
          { name: 'edit_file', input: { path: 'src/a.txt', oldText: 'absent', newText: 'x' } },
          { name: 'read_file', input: { path: 'missing.txt' } },
        ],
      },
      { toolCalls: [{ name: 'list_files', input: {} }, { name: 'read_file', input: { path: '/workspace/src/a.txt' } }] },
      { text: 'ok' },
    ]);
    const events = await readEvents(await s.query({ prompt: 'work', model: 'haiku' }));
    assert.equal(assertWellFormedRun(events).type, 'result');
    const uses = events.filter((e) => e.type === 'tool_use');
    const resultOf = (use: Record<string, any>) => events.find((e) => e.type === 'tool_result' && e.id === use.id)!;
    const byTool = (name: string) => uses.filter((u) => u.toolName === name).map(resultOf);
    assert.equal(byTool('write_file')[0]!.isError, false);
    const edits = byTool('edit_file');
    assert.equal(edits[0]!.isError, false);
    assert.equal(edits[1]!.isError, true);
    assert.match(edits[1]!.content, /not found/);
    assert.equal(byTool('read_file')[0]!.isError, true, 'a missing file is a tool error the model sees, not the end of the run');
    assert.match(byTool('list_files')[0]!.content, /src\/a\.txt \(11 bytes\)/);
    assert.equal(byTool('read_file')[1]!.content, 'one 2 three');
    // The edited file is an artifact.
    const files = events.filter((e) => e.type === 'file');
    assert.deepEqual(files, [{ type: 'file', path: 'src/a.txt', size: 11, encoding: 'utf8', content: 'one 2 three' }]);
  });
});

describe('artifacts', () => {
  test('files written by bash come back as file events, binary as base64, exactly as on Docker', async () => {
    const script = () => [
      {
        toolCalls: [
          {
            name: 'bash',
            input: {
              command:
                "mkdir -p out/deep; printf 'report\\n' > out/report.txt; printf '\\000\\001\\377bin' > out/deep/data.bin; " +
                'echo changed >> up/changed.txt; echo hidden > .secret; mkdir -p .cache; echo x > .cache/y; touch up/same.txt',
            },
          },
        ],
      },
      { text: 'made them' },
    ];
    const files = [
      { path: 'up/same.txt', content: 'same\n' },
      { path: 'up/changed.txt', content: 'orig\n' },
      { path: 'up/bytes.bin', content: Buffer.from([0, 1, 2]).toString('base64'), encoding: 'base64' },
    ];
    const expected = [
      { type: 'file', path: 'out/deep/data.bin', size: 6, encoding: 'base64', content: Buffer.from([0, 1, 255, ...Buffer.from('bin')]).toString('base64') },
      { type: 'file', path: 'out/report.txt', size: 7, encoding: 'utf8', content: 'report\n' },
      { type: 'file', path: 'up/changed.txt', size: 13, encoding: 'utf8', content: 'orig\nchanged\n' },
    ];
    const runOn = async (sandboxProvider: 'e2b' | 'docker') => {
      anthropic.setScript(script());
      const res = await s.query({ prompt: 'make files', model: 'haiku', files, sandboxProvider });
      const runId = res.headers.get('x-run-id')!;
      const events = await readEvents(res);
      assert.equal(assertWellFormedRun(events).type, 'result', JSON.stringify(events.at(-1)));
      assert.equal(events[0]!.sandboxProvider, sandboxProvider);
      // Artifacts come after the agent's last words and before the sandbox is destroyed.
      assert.deepEqual(types(events).slice(-6), ['assistant', 'file', 'file', 'file', 'system:sandbox_destroyed', 'result']);
      const r = await row(runId);
      assert.equal(r.filesCount, 3);
      assert.equal(r.sandboxProvider, sandboxProvider);
      return events.filter((e) => e.type === 'file');
    };
    const onE2b = await runOn('e2b');
    assert.deepEqual(onE2b, expected);
    const onDocker = await runOn('docker');
    assert.deepEqual(onDocker, expected, 'Docker gives the same artifacts');
  });
});

describe('E2B failures end the run cleanly', () => {
  for (const [status, hint] of [
    [401, /E2B_API_KEY/],
    [429, /rate limit|quota|retry/i],
    [500, /retry/i],
  ] as const) {
    test(`create answering ${status}: error SANDBOX_ERROR with a hint, promptly; row error`, async () => {
      anthropic.setScript([{ text: 'asked beside the create' }]);
      fake.failCreate(status, { code: status, message: `fake ${status} on create` });
      const t0 = Date.now();
      const res = await s.query({ prompt: 'x', model: 'haiku' });
      const runId = res.headers.get('x-run-id')!;
      const events = await readEvents(res);
      const took = Date.now() - t0;
      const err = assertWellFormedRun(events);
      // The model is asked beside the create, so its first text may stream before the failure ends the run.
      assert.deepEqual(types(events).filter((t) => t !== 'assistant'), ['system:run_started', 'error']);
      assert.equal(events[0]!.sandboxProvider, 'e2b');
      assert.equal(err.code, 'SANDBOX_ERROR');
      assert.match(err.hint ?? '', hint);
      assert.match(err.content, new RegExp(status === 401 ? 'credentials' : String(status)));
      assert.ok(!JSON.stringify(events).includes(fake.apiKey), 'the E2B key is not echoed');
      assert.ok(took < 5000, `ended in ${took} ms`);
      const r = await row(runId);
      assert.equal(r.status, 'error');
      assert.equal(r.errorCode, 'SANDBOX_ERROR');
      assert.equal(r.error, err.content);
      assert.equal(r.sandboxProvider, 'e2b');
      assert.equal(r.sandboxId, null);
      assert.equal(r.sandboxCount, 0);
    });
  }

  test('the sandbox vanishing during a command: error SANDBOX_LOST, no hang, row error', async () => {
    anthropic.setScript([{ toolCalls: [{ name: 'bash', input: { command: 'echo working; sleep 60' } }] }, { text: 'never' }]);
    const res = await s.query({ prompt: 'x', model: 'haiku' });
    const runId = res.headers.get('x-run-id')!;
    let sandboxId = '';
    let vanishedAt = 0;
    const events = await readUntil(res, (e) => {
      if (e.subtype === 'sandbox_created') sandboxId = e.sandboxId;
      if (e.type === 'tool_use') {
        setTimeout(() => {
          vanishedAt = Date.now();
          void fake.vanish(sandboxId);
        }, 1000);
      }
      return e.type === 'result' || e.type === 'error';
    });
    const err = assertWellFormedRun(events);
    assert.ok(vanishedAt > 0, 'the sandbox was made to vanish');
    assert.ok(Date.now() - vanishedAt < 10_000, `ended ${Date.now() - vanishedAt} ms after the sandbox vanished`);
    assert.equal(err.type, 'error');
    assert.equal(err.code, 'SANDBOX_LOST', err.content);
    assert.ok(err.hint, 'a hint says what to do');
    const r = await row(runId);
    assert.equal(r.status, 'error');
    assert.equal(r.errorCode, 'SANDBOX_LOST');
    assert.equal(r.sandboxId, sandboxId);
  });

  test('the sandbox vanishing between turns: the next tool call ends the run with SANDBOX_LOST', async () => {
    anthropic.setScript([
      { toolCalls: [{ name: 'bash', input: { command: 'echo one' } }] },
      { toolCalls: [{ name: 'write_file', input: { path: 'x.txt', content: 'x' } }], delayMs: 1500 },
      { text: 'never' },
    ]);
    const res = await s.query({ prompt: 'x', model: 'haiku' });
    const runId = res.headers.get('x-run-id')!;
    let sandboxId = '';
    const events = await readUntil(res, (e) => {
      if (e.subtype === 'sandbox_created') sandboxId = e.sandboxId;
      if (e.type === 'tool_result') void fake.vanish(sandboxId);
      return e.type === 'result' || e.type === 'error';
    });
    const err = assertWellFormedRun(events);
    assert.equal(err.code, 'SANDBOX_LOST', err.content);
    assert.equal(events.filter((e) => e.type === 'tool_result').length, 1, 'the lost sandbox is not reported as a tool result');
    assert.equal((await row(runId)).errorCode, 'SANDBOX_LOST');
  });
});

describe('crash recovery on E2B', () => {
  test('after SIGKILL mid-run, the next start kills the orphan E2B sandbox and marks the run INTERRUPTED', async () => {
    const db = join(dir, 'crash.db');
    const env = {
      ANTHROPIC_API_KEY: ANTHROPIC_KEY,
      ANTHROPIC_BASE_URL: anthropic.url,
      E2B_API_KEY: fake.apiKey,
      ...fake.env(),
      SANDCASTER_SANDBOX_PROVIDER: 'e2b',
      SANDCASTER_DB: db,
    };
    anthropic.setScript([{ toolCalls: [{ name: 'bash', input: { command: 'echo hi' } }] }, { hang: true }]);
    const first = await spawnServer(env);
    let second: Awaited<ReturnType<typeof spawnServer>> | undefined;
    // A sandbox of another instance on the same E2B account must survive this instance's reaping.
    const bystander = await createE2bProvider({ apiKey: fake.apiKey, template: 'base', allowInternetAccess: false }).create({
      runId: 'run_bystander',
      instanceId: 'inst_someone_else',
      timeoutSecs: 120,
    });
    try {
      const res = await fetch(first.url + '/query', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'x', model: 'haiku' }) });
      const runId = res.headers.get('x-run-id')!;
      const seen = await readUntil(res, (e) => e.type === 'tool_result');
      const sandboxId = seen.find((e) => e.subtype === 'sandbox_created')!.sandboxId;
      assert.equal(seen[0]!.sandboxProvider, 'e2b');
      first.proc.kill('SIGKILL');
      await first.exited;
      const orphan = fake.sandboxes().find((x) => x.id === sandboxId);
      assert.ok(orphan, 'the crash left its E2B sandbox running');
      assert.deepEqual(orphan.metadata, { [E2B_META_INSTANCE]: first.instanceId, [E2B_META_RUN]: runId });

      second = await spawnServer(env);
      assert.equal(second.instanceId, first.instanceId, 'the instance id is kept in the database');
      const r = await (await second.fetch(`/runs/${runId}`)).json();
      assert.equal(r.status, 'error');
      assert.equal(r.errorCode, 'INTERRUPTED');
      assert.equal(r.sandboxProvider, 'e2b');
      assert.equal(r.sandboxId, sandboxId);
      assert.ok(r.completedAt, 'completedAt is set');
      assert.ok(await waitFor(() => !fake.sandboxes().some((x) => x.id === sandboxId), 10_000), 'the orphan was killed at start');
      assert.ok(killedIds().has(sandboxId), 'through the E2B API');
      assert.ok(fake.sandboxes().some((x) => x.id === bystander.id), 'another instance’s sandbox is left alone');
      const child = second;
      assert.ok(await waitFor(() => child.logs.some((l) => l.msg === 'reaped orphaned sandboxes' && l.provider === 'e2b' && l.count === 1), 5000), 'the reaping is logged');
      assert.ok(!JSON.stringify(second.logs).includes(fake.apiKey) && !JSON.stringify(first.logs).includes(fake.apiKey), 'the E2B key is never logged');
    } finally {
      if (first.proc.exitCode === null && first.proc.signalCode === null) first.proc.kill('SIGKILL');
      if (second) {
        second.proc.kill('SIGTERM');
        assert.equal(await second.exited, 0);
      }
      await bystander.destroy();
      const store = new RunStore(db);
      assert.equal(store.list(10, 'running').length, 0, 'no run left running');
      store.close();
    }
  });
});
