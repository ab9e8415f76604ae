// Admission by memory: the sandboxes in flight may together hold at most SANDCASTER_MAX_SANDBOX_MEMORY_MB
// (default: the engine's total memory). Real server, real Docker sandboxes, a fake model that holds runs open.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeAnthropic, type FakeModelServer } from './fixtures/fake-models.ts';
import { docker, managedContainers, startTestServer, waitFor } from './helpers/server.ts';
import { assertWellFormedRun, readEvents } from './helpers/sse.ts';
import { MemoryBudget } from '../lib/memory-budget.ts';

let fake: FakeModelServer;
before(async () => {
  fake = await startFakeAnthropic();
});
after(async () => {
  await fake.close();
});

// 64 MiB of processes + 64 MiB of storage kept in memory (a read-only root keeps /tmp in memory too).
const SANDBOX = { memoryMb: 64, diskMb: 64 };
const env = (extra: Record<string, string> = {}) => ({ ANTHROPIC_API_KEY: 'sk-ant-memory-test', ANTHROPIC_BASE_URL: fake.url, SANDCASTER_SANDBOX_PROVIDER: 'docker', ...extra });

describe('MemoryBudget', () => {
  test('reserves until the limit, releases once, and has no limit until one is set', () => {
    const b = new MemoryBudget();
    const big = b.tryReserve(1 << 20);
    assert.ok(big, 'no limit yet: anything fits');
    big.release();
    b.setLimit(100);
    const a = b.tryReserve(60);
    assert.ok(a, '60 of 100 fits');
    assert.equal(b.tryReserve(41), undefined, '60 + 41 > 100');
    const c = b.tryReserve(40);
    assert.ok(c, '60 + 40 = 100 fits');
    a.release();
    a.release(); // twice is harmless
    assert.equal(b.usedMb, 40);
    assert.ok(b.tryReserve(0), 'nothing always fits');
  });
});

describe('admission by memory', () => {
  test('a run whose sandbox would not fit is 429 SANDBOX_MEMORY_FULL before any stream; it fits again once a run ends', async () => {
    const s = await startTestServer({ env: env({ SANDCASTER_MAX_SANDBOX_MEMORY_MB: '200' }), config: { docker: SANDBOX } });
    try {
      fake.setScript([{ toolCalls: [{ name: 'bash', input: { command: 'echo one' } }] }, { text: 'first done', delayMs: 1500 }]);
      const first = await s.query({ prompt: 'hold', model: 'haiku' });
      assert.equal(first.status, 200);
      const firstEvents = readEvents(first);
      assert.ok(await waitFor(() => s.app.memory.usedMb > 0), 'the first run holds its share');
      const held = s.app.memory.usedMb;
      assert.ok(held > 100 && held <= 200, `one sandbox holds more than half the budget: ${held} MiB`);

      const refused = await s.query({ prompt: 'no room', model: 'haiku' });
      assert.equal(refused.status, 429);
      assert.equal(refused.headers.get('retry-after'), '5');
      const body = await refused.json();
      assert.equal(body.error.code, 'SANDBOX_MEMORY_FULL');
      assert.match(body.error.hint, /SANDCASTER_MAX_SANDBOX_MEMORY_MB/);
      assert.equal(s.app.runs.size, 1, 'the refused run was never started');

      assert.equal(assertWellFormedRun(await firstEvents).type, 'result');
      assert.ok(await waitFor(() => s.app.memory.usedMb === 0), `the share is released with the run: ${s.app.memory.usedMb}`);
      fake.setScript([{ text: 'second done' }]);
      const second = await s.query({ prompt: 'room now', model: 'haiku' });
      assert.equal(assertWellFormedRun(await readEvents(second)).content, 'second done');
      assert.equal(s.app.memory.usedMb, 0);
    } finally {
      await s.stop();
    }
  });

  test('a composite spawn that would not fit is a tool error the model sees; the run goes on', async () => {
    const s = await startTestServer({ env: env({ SANDCASTER_MAX_SANDBOX_MEMORY_MB: '200' }), config: { docker: SANDBOX, composite: {} } });
    try {
      fake.setScript([{ toolCalls: [{ name: 'spawn_sandbox', input: { name: 'helper' } }] }, { text: 'carried on' }]);
      const events = await readEvents(await s.query({ prompt: 'spawn', model: 'haiku' }));
      const terminal = assertWellFormedRun(events);
      assert.equal(terminal.type, 'result');
      const spawn = events.find((e) => e.type === 'tool_result' && e.toolName === 'spawn_sandbox');
      assert.equal(spawn?.isError, true);
      assert.match(String(spawn?.content), /not enough sandbox memory/);
      assert.equal(events.filter((e) => e.subtype === 'sandbox_created').length, 1, 'only main was created');
      assert.equal(s.app.memory.usedMb, 0);
      assert.equal((await managedContainers(s.app.store.instanceId)).length, 0);
    } finally {
      await s.stop();
    }
  });

  test('without a setting, the budget is the total memory the Docker engine reports', async () => {
    const s = await startTestServer({ env: env() });
    try {
      const info = await docker.info();
      const expected = Math.floor(Number(info.MemTotal) / (1024 * 1024));
      assert.ok(await waitFor(() => s.app.memory.limit !== undefined), 'the limit is learned after start');
      assert.equal(s.app.memory.limit, expected);
    } finally {
      await s.stop();
    }
  });
});
