// The Docker warm pool (docker.warmPool; docs/operations.md#warm-pool) against the real engine and a real
// server: runs take pooled sandboxes that existed before the request, the pool refills, no two runs share a
// container or see each other's files, the reaper keeps the pool of this process and removes a crashed
// one's, shutdown leaves nothing, a bad setting is refused at start.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../lib/config.ts';
import { ConfigError } from '../lib/config-parse.ts';
import { setLogSink } from '../lib/log.ts';
import type { DockerSettings } from '../lib/sandbox.ts';
import { createDockerProvider } from '../providers/docker/index.ts';
import { startFakeAnthropic, type FakeModelServer, type Script } from './fixtures/fake-models.ts';
import { spawnServer } from './helpers/child.ts';
import { dockerSettings } from './helpers/docker-sandbox.ts';
import { assertWellFormedRun, readEvents } from './helpers/sse.ts';
import { docker, logLines, managedContainers, managedVolumes, startTestServer, waitFor, type TestServer } from './helpers/server.ts';

const ROOT = join(import.meta.dirname, '..');
let fake: FakeModelServer;
let dir: string;
before(async () => {
  fake = await startFakeAnthropic();
  dir = mkdtempSync(join(tmpdir(), 'sandcaster-warm-pool-'));
});
after(async () => {
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
});

const modelEnv = () => ({ ANTHROPIC_API_KEY: 'sk-ant-warm-pool-test-key', ANTHROPIC_BASE_URL: fake.url, SANDCASTER_SANDBOX_PROVIDER: 'docker' });

/** Every request: one `bash` call running `command`, then (once its result is in the conversation) a final answer. */
const oneCommand =
  (command: string): Script =>
  (body) => {
    const last = body.messages?.at(-1);
    const answered = Array.isArray(last?.content) && last.content.some((c: { type?: string }) => c.type === 'tool_result');
    return answered ? { text: 'done' } : { toolCalls: [{ name: 'bash', input: { command } }] };
  };

/** Containers of this instance that are pooled (labelled run=pool), by id. */
async function pooledIds(instanceId: string): Promise<Set<string>> {
  return new Set((await managedContainers(instanceId)).filter((c) => c.Labels['sandcaster.run'] === 'pool').map((c) => c.Id));
}

async function warmPool(s: { fetch(path: string): Promise<Response> }): Promise<{ size: number; ready: number } | undefined> {
  return (await (await s.fetch('/health')).json()).warmPool?.docker;
}

/** One run; its sandbox id and the bash tool's result (stdout, then `[exit code 0]`). */
async function run(s: TestServer, body: object = { prompt: 'x', model: 'haiku' }): Promise<{ sandboxId: string; stdout: string; runId: string }> {
  const res = await s.query(body);
  const runId = res.headers.get('x-run-id')!;
  const events = await readEvents(res);
  const end = assertWellFormedRun(events);
  assert.equal(end.type, 'result', JSON.stringify(end));
  const created = events.find((e) => e.type === 'system' && e.subtype === 'sandbox_created');
  const result = events.find((e) => e.type === 'tool_result');
  assert.ok(created && result, `a sandbox_created and a tool_result event: ${JSON.stringify(events.map((e) => e.type))}`);
  assert.equal(result.exitCode, 0, result.content);
  return { sandboxId: created.sandboxId, stdout: result.content, runId };
}

describe('a server with a warm pool of 2', { timeout: 180_000 }, () => {
  let s: TestServer;
  let instance: string;
  before(async () => {
    // The periodic reaper runs every 200 ms here, so every step below also shows it leaves the pool alone.
    s = await startTestServer({ env: { ...modelEnv(), SANDCASTER_DOCKER_WARM_POOL: '2' }, reapIntervalMs: 200 });
    instance = s.app.store.instanceId;
  });
  after(() => s.stop());

  test('fills at start: /health and /metrics show it, two started pooled sandboxes exist', async () => {
    assert.ok(await waitFor(async () => (await warmPool(s))?.ready === 2, 30_000), `the pool fills to 2 (health: ${JSON.stringify(await warmPool(s))})`);
    assert.deepEqual(await warmPool(s), { size: 2, ready: 2 });
    const pooled = (await managedContainers(instance)).filter((c) => c.Labels['sandcaster.run'] === 'pool');
    assert.deepEqual(pooled.map((c) => c.State), ['running', 'running']);
    assert.match(await (await s.fetch('/metrics')).text(), /^sandcaster_warm_pool_ready\{provider="docker"\} 2$/m);
  });

  test('a run takes a sandbox that existed before the request; the pool refills; the next run sees nothing of it', async () => {
    assert.ok(await waitFor(async () => (await warmPool(s))?.ready === 2, 30_000), 'the pool is full');
    const before = await pooledIds(instance);
    fake.setScript(oneCommand('ls -A /workspace; echo secret > /workspace/run1.txt; echo secret > /tmp/run1.txt'));
    const first = await run(s);
    assert.ok(before.has(first.sandboxId), `the run's sandbox ${first.sandboxId} was one of the pooled ${[...before].join(', ')}`);
    assert.equal(first.stdout, '[exit code 0]', 'a pooled sandbox starts with an empty /workspace');
    const row = await (await s.fetch(`/runs/${first.runId}`)).json();
    assert.equal(row.sandboxId, first.sandboxId, 'the run row names the pooled sandbox');
    assert.ok(
      logLines.some((l) => l.msg === 'docker sandbox taken from the warm pool' && l.runId === first.runId),
      'the take is logged with the run id',
    );

    assert.ok(await waitFor(async () => (await warmPool(s))?.ready === 2, 30_000), 'the pool refills to 2');
    const ids = new Set((await managedContainers(instance)).map((c) => c.Id));
    assert.ok(!ids.has(first.sandboxId), 'the taken sandbox was destroyed after its run, not put back');

    fake.setScript(oneCommand('ls -A /tmp /workspace'));
    const second = await run(s);
    assert.notEqual(second.sandboxId, first.sandboxId);
    assert.equal(second.stdout, '/tmp:\n\n/workspace:\n[exit code 0]', 'nothing of the first run is visible');
  });

  test('concurrent runs past the pool size never share a container; uploads land in a pooled one', async () => {
    assert.ok(await waitFor(async () => (await warmPool(s))?.ready === 2, 30_000), 'the pool is full');
    fake.setScript(oneCommand('ls -A /workspace; cat /workspace/in.txt 2>/dev/null; echo mine > /workspace/mine.txt'));
    const body = { prompt: 'x', model: 'haiku', files: [{ path: 'in.txt', content: 'uploaded\n' }] };
    const runs = await Promise.all([1, 2, 3, 4].map(() => run(s, body)));
    assert.equal(new Set(runs.map((r) => r.sandboxId)).size, 4, 'four runs, four containers');
    for (const r of runs) assert.equal(r.stdout, 'in.txt\nuploaded\n[exit code 0]', 'each run sees its own upload and nothing else');
  });

  test('a pooled sandbox that stopped is not handed out', async () => {
    assert.ok(await waitFor(async () => (await warmPool(s))?.ready === 2, 30_000), 'the pool is full');
    const dead = await pooledIds(instance);
    await Promise.all([...dead].map((id) => docker.getContainer(id).kill()));
    fake.setScript(oneCommand('echo alive'));
    const r = await run(s);
    assert.equal(r.stdout, 'alive\n[exit code 0]');
    assert.ok(!dead.has(r.sandboxId), 'the run got a fresh sandbox, not a stopped one');
    const gone = async () => !(await managedContainers(instance)).some((c) => dead.has(c.Id));
    assert.ok(await waitFor(gone, 10_000), 'the stopped ones are removed');
  });

  test('shutdown destroys the pool: no container or volume of the instance is left', async () => {
    assert.ok(await waitFor(async () => (await warmPool(s))?.ready === 2, 30_000), 'the pool is full');
    await s.stop();
    assert.ok(!logLines.some((l) => l.msg === 'reaped docker sandboxes' && l.instanceId === instance), 'the periodic reaper never removed a sandbox of the pool');
    assert.equal((await managedContainers(instance)).length, 0, 'no container left');
    assert.equal((await managedVolumes(instance)).length, 0, 'no volume left');
  });
});

describe('crashes and reaping', { timeout: 120_000 }, () => {
  test("the start-up reaper removes a crashed process's pooled sandboxes", async () => {
    const db = join(dir, 'crash.db');
    const first = await spawnServer({ ...modelEnv(), SANDCASTER_DB: db, SANDCASTER_DOCKER_WARM_POOL: '2' });
    assert.ok(await waitFor(async () => (await warmPool(first))?.ready === 2, 30_000), 'the first process filled its pool');
    first.proc.kill('SIGKILL');
    await first.exited;
    const orphans = await pooledIds(first.instanceId);
    assert.equal(orphans.size, 2, 'the crash left its pooled sandboxes');

    const second = await startTestServer({ env: { ...modelEnv(), SANDCASTER_DB: db, SANDCASTER_DOCKER_WARM_POOL: '1' } });
    try {
      assert.equal(second.app.store.instanceId, first.instanceId, 'the same instance');
      assert.ok(await waitFor(async () => (await warmPool(second))?.ready === 1, 30_000), 'the second process fills its own pool');
      const now = await pooledIds(first.instanceId);
      assert.ok(![...orphans].some((id) => now.has(id)), 'the crashed process’s pooled sandboxes are gone');
      assert.equal(now.size, 1, 'only the new pool is left');
    } finally {
      await second.stop();
    }
    assert.equal((await managedContainers(first.instanceId)).length + (await managedVolumes(first.instanceId)).length, 0, 'nothing left');
  });

  test('the reaper keeps idle pooled sandboxes and a taken one while its run is in flight', async () => {
    const instance = `test-wp-reap-${process.pid}-${randomBytes(3).toString('hex')}`;
    const provider = createDockerProvider(settings({ warmPool: 1 }));
    try {
      assert.equal(await provider.reap(instance, new Set()), 0); // starts the pool
      assert.ok(await waitFor(() => provider.warmPoolState!().ready === 1, 30_000), 'the pool fills');
      const sb = await provider.create({ runId: 'run_x', instanceId: instance, timeoutSecs: 60 });
      assert.ok(await waitFor(() => provider.warmPoolState!().ready === 1, 30_000), 'the pool refills');
      assert.equal(await provider.reap(instance, new Set(['run_x'])), 0, 'nothing reaped while run_x is in flight');
      assert.equal((await sb.exec('echo kept', { timeoutMs: 5000 })).stdout, 'kept\n');
      assert.equal(await provider.reap(instance, new Set()), 1, 'the taken sandbox of a run that ended is an orphan');
      assert.equal((await pooledIds(instance)).size, 1, 'the idle pooled sandbox is kept');
      await sb.destroy();
    } finally {
      await provider.close!();
    }
    assert.equal((await managedContainers(instance)).length + (await managedVolumes(instance)).length, 0, 'close leaves nothing');
    const after = await provider.create({ runId: 'run_y', instanceId: instance, timeoutSecs: 60 });
    await after.destroy();
    assert.deepEqual(provider.warmPoolState!(), { size: 1, ready: 0 }, 'a closed pool is never refilled');
  });

  test('an engine that fails: refills back off and never crash the process; close still resolves', async () => {
    const seen: Record<string, any>[] = [];
    setLogSink((line) => {
      const l = JSON.parse(line);
      logLines.push(l);
      if (l.msg === 'could not fill the docker warm pool; retrying later') seen.push(l);
    });
    const provider = createDockerProvider(settings({ warmPool: 2, host: `unix://${join(dir, 'no-engine.sock')}` }), { engineTimeoutMs: 1000 });
    const instance = `test-wp-down-${process.pid}`;
    try {
      await assert.rejects(provider.create({ runId: 'run_down', instanceId: instance, timeoutSecs: 60 }), /unreachable/);
      assert.ok(await waitFor(() => seen.length >= 3, 15_000), `three failed fills logged (${seen.length})`);
      const waits = seen.map((l) => l.retryInMs);
      assert.ok(waits.at(-1) > waits[0], `the retry wait grows: ${waits.join(', ')}`);
      assert.deepEqual(provider.warmPoolState!(), { size: 2, ready: 0 });
    } finally {
      await provider.close!();
      setLogSink((line) => void logLines.push(JSON.parse(line)));
    }
  });
});

describe('docker.warmPool / SANDCASTER_DOCKER_WARM_POOL', () => {
  test('default 0, env over file, and no pool in /health when 0', async () => {
    assert.equal(loadConfig({}, {}).sandboxes.docker.warmPool, 0);
    const file = join(dir, 'wp.json');
    writeFileSync(file, JSON.stringify({ docker: { warmPool: 3 } }));
    assert.equal(loadConfig({}, { SANDCASTER_CONFIG: file }).sandboxes.docker.warmPool, 3);
    assert.equal(loadConfig({}, { SANDCASTER_CONFIG: file, SANDCASTER_DOCKER_WARM_POOL: '5' }).sandboxes.docker.warmPool, 5);
    assert.throws(() => loadConfig({}, { SANDCASTER_CONFIG: file, SANDCASTER_DOCKER_WARM_POOL: '1.5' }), (e) => e instanceof ConfigError && /SANDCASTER_DOCKER_WARM_POOL/.test(e.message));
    writeFileSync(file, JSON.stringify({ docker: { warmPool: -1 } }));
    assert.throws(() => loadConfig({}, { SANDCASTER_CONFIG: file }), (e) => e instanceof ConfigError && /docker\.warmPool/.test(e.message));
    const s = await startTestServer({ env: modelEnv() });
    try {
      assert.equal((await (await s.fetch('/health')).json()).warmPool, undefined, 'absent when the pool is 0');
    } finally {
      await s.stop();
    }
  });

  for (const bad of ['-1', 'abc']) {
    test(`SANDCASTER_DOCKER_WARM_POOL=${bad} is refused at start, naming the variable`, async () => {
      const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          ['--import', 'tsx', 'server.ts', 'serve', '--host', '127.0.0.1', '--port', '0'],
          { cwd: ROOT, timeout: 30_000, env: { PATH: process.env.PATH!, SANDCASTER_DB: join(dir, 'bad.db'), SANDCASTER_DOCKER_WARM_POOL: bad } },
          (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
        );
      });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /SANDCASTER_DOCKER_WARM_POOL/);
      assert.doesNotMatch(r.stdout, /listening/);
    });
  }
});

function settings(over: Partial<DockerSettings> = {}): DockerSettings {
  return dockerSettings({ cpus: 0.5, ...over });
}
