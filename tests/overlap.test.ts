// Provisioning beside the first model call (docs/architecture.md#run-lifecycle): the real server, the real
// Anthropic SDK against the fake model, the real Docker provider, with one thing added: its create() waits
// for a gate this test opens, so "the sandbox is still being made" is a state the test controls, not a race.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MODEL_APIS, SANDBOX_MODULES } from '../app.ts';
import { loadConfig } from '../lib/config.ts';
import { createRegistry } from '../lib/registry.ts';
import { SandboxError, type SandboxProvider } from '../lib/sandbox.ts';
import { startServer, type RunningServer } from '../server.ts';
import { startFakeAnthropic, type FakeModelServer } from './fixtures/fake-models.ts';
import { managedContainers, TEST_IMAGE, waitFor } from './helpers/server.ts';
import { assertWellFormedRun, readEvents } from './helpers/sse.ts';

/** What the next create() does once it is called: wait for `open`, then create for real or fail. */
interface Gate {
  called: boolean;
  open(): void;
  fail?: SandboxError;
}
let gate: Gate;
const newGate = (fail?: SandboxError): Gate => {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  const g: Gate & { opened: Promise<void> } = { called: false, open, fail, opened };
  return g;
};

/** The real Docker provider, whose create() first waits for the test's gate. */
const gatedDocker = async () => {
  const real = await SANDBOX_MODULES.docker();
  return {
    createProvider: (settings: Parameters<typeof real.createProvider>[0]): SandboxProvider => {
      const provider = real.createProvider(settings);
      return {
        ...provider,
        async create(o) {
          const g = gate as Gate & { opened: Promise<void> };
          g.called = true;
          await g.opened;
          if (g.fail) throw g.fail;
          return provider.create(o);
        },
      };
    },
  };
};

let fake: FakeModelServer;
let server: RunningServer;
let dir: string;
before(async () => {
  fake = await startFakeAnthropic();
  dir = mkdtempSync(join(tmpdir(), 'sandcaster-overlap-'));
  const env = { ANTHROPIC_API_KEY: 'sk-ant-overlap', ANTHROPIC_BASE_URL: fake.url, SANDCASTER_DB: join(dir, 'runs.db'), SANDCASTER_DOCKER_IMAGE: TEST_IMAGE, SANDCASTER_SANDBOX_PROVIDER: 'docker' };
  const config = loadConfig({ host: '127.0.0.1', port: 0 }, env);
  server = await startServer(config, { registry: (c) => createRegistry(c, { modelApis: MODEL_APIS, sandboxModules: { ...SANDBOX_MODULES, docker: gatedDocker } }) });
});
after(async () => {
  gate?.open();
  await server.shutdown();
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
});

const query = (body: object) => fetch(`${server.url}/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const subtypes = (events: Record<string, any>[]) => events.map((e) => (e.type === 'system' ? e.subtype : e.type));
const noneLeft = async () => assert.ok(await waitFor(async () => (await managedContainers(server.app.store.instanceId)).length === 0), 'every sandbox of the run was removed');

describe('the sandbox is made beside the first model call', () => {
  test('the model is asked while the sandbox is still being created; tool calls wait for it', async () => {
    gate = newGate();
    fake.setScript([{ toolCalls: [{ name: 'bash', input: { command: 'echo made-in-time' } }] }, { text: 'done' }]);
    const before = fake.requests.length;
    const reading = query({ prompt: 'overlap', model: 'haiku' }).then(readEvents);
    try {
      assert.ok(await waitFor(() => gate.called && fake.requests.length > before, 10_000), `the model got its request (${fake.requests.length - before}) while create() was waiting (called: ${gate.called})`);
    } finally {
      gate.open();
    }
    const events = await reading;
    const terminal = assertWellFormedRun(events);
    assert.equal(terminal.type, 'result', JSON.stringify(terminal));
    const order = subtypes(events);
    assert.ok(order.indexOf('sandbox_created') >= 0 && order.indexOf('sandbox_created') < order.indexOf('tool_use'), `sandbox_created comes before the tool call: ${order.join(', ')}`);
    const result = events.find((e) => e.type === 'tool_result');
    assert.match(String(result?.content), /^made-in-time\n/, 'the command ran in the sandbox once it was ready');
    await noneLeft();
  });

  test('a model that answers before the sandbox is ready: the sandbox is still made, reported and destroyed', async () => {
    gate = newGate();
    fake.setScript([{ text: 'no tools needed' }]);
    const before = fake.requests.length;
    const reading = query({ prompt: 'quick', model: 'haiku' }).then(readEvents);
    try {
      assert.ok(await waitFor(() => gate.called && fake.requests.length > before, 10_000), 'the model was asked while create() was waiting');
    } finally {
      gate.open();
    }
    const events = await reading;
    const terminal = assertWellFormedRun(events);
    assert.equal(terminal.type, 'result', JSON.stringify(terminal));
    assert.equal(terminal.content, 'no tools needed');
    const order = subtypes(events);
    assert.deepEqual(order.filter((s) => s.startsWith('sandbox_')), ['sandbox_created', 'sandbox_destroyed'], `the sandbox is reported once made and once destroyed: ${order.join(', ')}`);
    await noneLeft();
  });

  test('a failure to provision ends the run with SANDBOX_ERROR at once, cancelling the model call in flight', async () => {
    gate = newGate(new SandboxError('SANDBOX_ERROR', 'the engine refused the container (test)', 'check the engine'));
    fake.setScript([{ hang: true }]); // the model would never answer: only the sandbox failure can end this run
    const aborted = fake.aborted;
    const before = fake.requests.length;
    const reading = query({ prompt: 'doomed', model: 'haiku' }).then(readEvents);
    assert.ok(await waitFor(() => gate.called && fake.requests.length > before, 10_000), 'the model was asked while create() was waiting');
    gate.open();
    const events = await reading;
    const terminal = assertWellFormedRun(events);
    assert.equal(terminal.type, 'error', JSON.stringify(terminal));
    assert.equal(terminal.code, 'SANDBOX_ERROR');
    assert.match(terminal.content, /engine refused the container/);
    assert.equal(terminal.hint, 'check the engine');
    await fake.waitForAborted(aborted + 1, 5000);
    const row = server.app.store.get(events[0]!.runId);
    assert.equal(row?.errorCode, 'SANDBOX_ERROR', `the stored run has the same error: ${JSON.stringify(row)}`);
    await noneLeft();
  });
});
