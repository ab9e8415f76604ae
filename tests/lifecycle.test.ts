// Lifecycle guarantees with injected faults (docs/architecture.md#shutdown-and-reaping; issue 4): graceful shutdown, crash
// recovery, the reaper, load limits, command timeouts, and the Docker engine missing or going away.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFakeAnthropic, type FakeModelServer } from './fixtures/fake-models.ts';
import { spawnServer } from './helpers/child.ts';
import { assertWellFormedRun, readEvents, readUntil } from './helpers/sse.ts';
import { docker, managedContainers, managedVolumes, startTestServer, waitFor, TEST_IMAGE } from './helpers/server.ts';
import { createDockerProvider } from '../providers/docker/index.ts';
import { RunStore } from '../lib/store.ts';

let fake: FakeModelServer;
let dir: string;
before(async () => {
  fake = await startFakeAnthropic();
  dir = mkdtempSync(join(tmpdir(), 'sandcaster-lifecycle-'));
});
after(async () => {
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
});

const modelEnv = () => ({ ANTHROPIC_API_KEY: 'sk-ant-lifecycle-test-key', ANTHROPIC_BASE_URL: fake.url, SANDCASTER_SANDBOX_PROVIDER: 'docker' });
const post = (url: string, body: object, signal?: AbortSignal) =>
  fetch(url + '/query', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal });

describe('graceful shutdown (SIGTERM)', () => {
  test('drains: health 503, new queries 503 DRAINING, runs past the grace end with SHUTDOWN, sandboxes destroyed, exit 0', async () => {
    const db = join(dir, 'shutdown.db');
    fake.setScript([{ toolCalls: [{ name: 'bash', input: { command: 'echo started' } }] }, { hang: true }]);
    const child = await spawnServer({ ...modelEnv(), SANDCASTER_DB: db, SANDCASTER_SHUTDOWN_GRACE_SECONDS: '2' });
    const requestsBefore = fake.requests.length;
    const res = await post(child.url, { prompt: 'x', model: 'haiku' });
    const runId = res.headers.get('x-run-id')!;
    const reader = readEvents(res);
    assert.ok(await waitFor(async () => (await managedContainers(child.instanceId)).length === 1, 10_000), 'sandbox running');
    // SIGTERM once the run waits on its (hanging) second model call, past its tool call.
    assert.ok(await waitFor(() => fake.requests.length === requestsBefore + 2, 10_000), `the run made its second model call; made ${fake.requests.length - requestsBefore}`);
    const t0 = Date.now();
    child.proc.kill('SIGTERM');
    let health = 0;
    assert.ok(await waitFor(async () => (health = (await child.fetch('/health')).status) === 503, 2000), `/health answers 503 within 2 s of SIGTERM; got ${health}`);
    assert.equal((await (await child.fetch('/health')).json()).status, 'draining');
    const refused = await post(child.url, { prompt: 'y', model: 'haiku' });
    assert.equal(refused.status, 503);
    assert.equal((await refused.json()).error.code, 'DRAINING');

    const events = await reader;
    const err = assertWellFormedRun(events);
    assert.equal(err.code, 'SHUTDOWN');
    assert.ok(Date.now() - t0 >= 1500, 'runs got the grace period first');
    assert.equal(await child.exited, 0);
    assert.equal((await managedContainers(child.instanceId)).length, 0);
    const store = new RunStore(db);
    const row = store.get(runId)!;
    store.close();
    assert.equal(row.status, 'error');
    assert.equal(row.errorCode, 'SHUTDOWN');
    assert.ok(child.logs.some((l) => l.msg === 'draining'), `a 'draining' line is logged; messages: ${JSON.stringify(child.logs.map((l) => l.msg))}`);
  });

  test('a run that finishes within the grace period completes normally', async () => {
    fake.setScript([{ toolCalls: [{ name: 'bash', input: { command: 'sleep 1; echo done' } }] }, { text: 'finished' }]);
    const child = await spawnServer({ ...modelEnv(), SANDCASTER_DB: join(dir, 'grace.db'), SANDCASTER_SHUTDOWN_GRACE_SECONDS: '20' });
    const res = await post(child.url, { prompt: 'x', model: 'haiku' });
    const reader = readEvents(res);
    assert.ok(await waitFor(async () => (await managedContainers(child.instanceId)).length === 1, 10_000), 'the run has its sandbox before SIGINT');
    child.proc.kill('SIGINT');
    const result = assertWellFormedRun(await reader);
    assert.equal(result.type, 'result');
    assert.equal(result.content, 'finished');
    assert.equal(await child.exited, 0);
  });
});

describe('crash recovery', () => {
  test('after SIGKILL mid-run, the next start marks the run INTERRUPTED and removes its container', async () => {
    const db = join(dir, 'crash.db');
    fake.setScript([{ toolCalls: [{ name: 'bash', input: { command: 'echo hi' } }] }, { hang: true }]);
    const first = await spawnServer({ ...modelEnv(), SANDCASTER_DB: db });
    const res = await post(first.url, { prompt: 'x', model: 'haiku' });
    const runId = res.headers.get('x-run-id')!;
    await readUntil(res, (e) => e.type === 'tool_result');
    first.proc.kill('SIGKILL');
    await first.exited;
    assert.equal((await managedContainers(first.instanceId)).length, 1, 'the crash left its container');

    const second = await spawnServer({ ...modelEnv(), SANDCASTER_DB: db });
    try {
      assert.equal(second.instanceId, first.instanceId, 'the instance id is kept in the database');
      const row = await (await second.fetch(`/runs/${runId}`)).json();
      assert.equal(row.status, 'error');
      assert.equal(row.errorCode, 'INTERRUPTED');
      assert.match(row.completedAt ?? '', /^\d{4}-\d\d-\d\dT/, 'the interrupted run has a completion time');
      assert.ok(await waitFor(async () => (await managedContainers(first.instanceId)).length === 0, 10_000), 'reaped at start');
    } finally {
      second.proc.kill('SIGTERM');
      assert.equal(await second.exited, 0);
    }
  });

  test('the periodic reaper removes containers of this instance that belong to no run in flight', async () => {
    const s = await startTestServer({ env: modelEnv(), reapIntervalMs: 300 });
    try {
      const orphan = await docker.createContainer({
        Image: TEST_IMAGE,
        Cmd: ['/bin/busybox', 'sleep', '300'],
        Labels: { 'sandcaster.managed': 'true', 'sandcaster.instance': s.app.store.instanceId, 'sandcaster.run': 'run_gone' },
        HostConfig: { NetworkMode: 'none' },
      });
      // The reaper runs every 300 ms here and may remove the orphan before it even starts (409): fine.
      await orphan.start().catch(() => {});
      const other = await docker.createContainer({
        Image: TEST_IMAGE,
        Cmd: ['/bin/busybox', 'sleep', '300'],
        Labels: { 'sandcaster.managed': 'true', 'sandcaster.instance': 'inst_someone_else', 'sandcaster.run': 'run_x' },
        HostConfig: { NetworkMode: 'none' },
      });
      try {
        assert.ok(await waitFor(async () => (await managedContainers(s.app.store.instanceId)).length === 0, 10_000), 'orphan reaped');
        assert.equal((await managedContainers('inst_someone_else')).length, 1, 'another instance’s container is left alone');
      } finally {
        await other.remove({ force: true });
      }
    } finally {
      await s.stop();
    }
  });
});

describe('load limits', () => {
  test('429 TOO_MANY_RUNS with Retry-After past SANDCASTER_MAX_CONCURRENT_RUNS', async () => {
    const s = await startTestServer({ env: { ...modelEnv(), SANDCASTER_MAX_CONCURRENT_RUNS: '1' } });
    try {
      fake.setScript([{ hang: true }]);
      const ctl = new AbortController();
      const first = await s.fetch('/query', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'x', model: 'haiku' }), signal: ctl.signal });
      assert.equal(first.status, 200);
      const second = await s.query({ prompt: 'y', model: 'haiku' });
      assert.equal(second.status, 429);
      assert.ok(Number(second.headers.get('retry-after')) > 0, `the 429 says when to retry; Retry-After: ${second.headers.get('retry-after')}`);
      assert.equal((await second.json()).error.code, 'TOO_MANY_RUNS');
      ctl.abort();
      assert.ok(await waitFor(() => s.app.runs.size === 0, 5000), `the first run ends once its client leaves; ${s.app.runs.size} in flight`);
    } finally {
      await s.stop();
    }
  });
});

describe('commands', () => {
  test('bash timeoutSeconds kills the whole process group; the sandbox stays usable', async () => {
    const s = await startTestServer({ env: modelEnv() });
    try {
      fake.setScript([
        { toolCalls: [{ name: 'bash', input: { command: 'sleep 100 & sleep 100; echo never', timeoutSeconds: 1 } }] },
        { toolCalls: [{ name: 'bash', input: { command: 'ps -o pid,args | grep "sleep 100" | grep -v grep | wc -l' } }] },
        { text: 'ok' },
      ]);
      const events = await readEvents(await s.query({ prompt: 'x', model: 'haiku' }));
      assert.equal(assertWellFormedRun(events).type, 'result');
      const [timedOut, check] = events.filter((e) => e.type === 'tool_result');
      assert.equal(timedOut!.isError, true);
      assert.match(timedOut!.content, /timed out after 1s/);
      assert.doesNotMatch(timedOut!.content, /never/);
      assert.equal(check!.isError, false);
      assert.match(check!.content, /^0$/m, 'no sleep survived the timeout');
    } finally {
      await s.stop();
    }
  });
});

/** A unix-socket proxy in front of the real engine, so a test can make "the engine" vanish. */
async function engineProxy(path: string): Promise<{ server: Server; kill(): void }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = createConnection('/var/run/docker.sock');
    sockets.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((r) => server.listen(path, r));
  return {
    server,
    kill() {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

describe('Docker engine faults', () => {
  test('engine unreachable: SANDBOX_ERROR with a hint, quickly, no hang', async () => {
    const s = await startTestServer({ env: { ...modelEnv(), DOCKER_HOST: `unix://${join(dir, 'no-engine.sock')}` } });
    try {
      fake.setScript([{ text: 'unused' }]);
      const t0 = Date.now();
      const events = await readEvents(await s.query({ prompt: 'x', model: 'haiku' }));
      const err = assertWellFormedRun(events);
      assert.equal(err.code, 'SANDBOX_ERROR');
      assert.ok(err.hint, 'a hint says what to do');
      assert.ok(Date.now() - t0 < 15_000, `the run fails within 15 s, not hanging on the engine: took ${Date.now() - t0} ms`);
    } finally {
      await s.stop();
    }
  });

  test('image missing and not pullable: SANDBOX_ERROR naming the image, nothing left', async () => {
    const s = await startTestServer({ env: { ...modelEnv(), SANDCASTER_DOCKER_IMAGE: 'sandcaster-missing-image:nope' } });
    try {
      fake.setScript([{ text: 'unused' }]);
      const events = await readEvents(await s.query({ prompt: 'x', model: 'haiku' }));
      const err = assertWellFormedRun(events);
      assert.equal(err.code, 'SANDBOX_ERROR');
      assert.match(`${err.content} ${err.hint}`, /sandcaster-missing-image:nope/);
      assert.equal((await managedContainers(s.app.store.instanceId)).length, 0);
    } finally {
      await s.stop();
    }
  });

  test('engine going away mid-run ends the run with a sandbox error, never a hang', async () => {
    const sock = join(dir, 'proxy.sock');
    const proxy = await engineProxy(sock);
    const s = await startTestServer({ env: { ...modelEnv(), DOCKER_HOST: `unix://${sock}` } });
    try {
      fake.setScript([
        { toolCalls: [{ name: 'bash', input: { command: 'echo one' } }] },
        { toolCalls: [{ name: 'bash', input: { command: 'echo two' } }], delayMs: 500 },
        { text: 'unreachable' },
      ]);
      const res = await s.query({ prompt: 'x', model: 'haiku' });
      const events: Record<string, any>[] = [];
      const all = readUntil(res, (e) => {
        events.push(e);
        if (e.type === 'tool_result') proxy.kill();
        return e.type === 'result' || e.type === 'error';
      });
      const t0 = Date.now();
      const got = await all;
      const last = got.at(-1)!;
      assert.equal(last.type, 'error');
      assert.match(last.code, /^SANDBOX_(ERROR|LOST)$/);
      assert.ok(Date.now() - t0 < 30_000, `the run ends within 30 s of losing the engine: took ${Date.now() - t0} ms`);
    } finally {
      await s.stop();
      try {
        unlinkSync(sock);
      } catch {}
      // The container and its workspace volume outlived the engine connection; the reaper of a later start
      // would remove them. Here the provider's own reaper does it, on the real engine.
      const removed = await createDockerProvider({ ...s.app.config.sandboxes.docker, host: undefined }).reap(s.app.store.instanceId, new Set());
      assert.ok(removed >= 1, 'the orphaned sandbox was reaped');
      assert.equal((await managedContainers(s.app.store.instanceId)).length, 0, 'no container left');
      assert.equal((await managedVolumes(s.app.store.instanceId)).length, 0, 'no volume left');
    }
  });
});
