// The Docker provider on other engines and runtimes, for real (tests/setup-engines.sh starts them): a second
// dockerd with gVisor (runsc, ptrace platform) registered, rootful Podman and rootless Podman through their
// Docker-compatible API. The provider contract runs in full on gVisor and on rootful Podman; the cases below
// are where those engines behave differently from Docker with runc, and what the provider does about it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { statfsSync } from 'node:fs';
import { release } from 'node:os';
import Docker from 'dockerode';
import { setLogSink } from '../lib/log.ts';
import { SandboxError, type DockerSettings, type SandboxProvider } from '../lib/sandbox.ts';
import { createDockerProvider } from '../providers/docker/index.ts';
import { startFakeAnthropic, type FakeModelServer } from './fixtures/fake-models.ts';
import { CONTRACT_BOUNDS, dockerSettings, rejectsWith, runningIn } from './helpers/docker-sandbox.ts';
import { providerContract } from './helpers/provider-contract.ts';
import { startTestServer, waitFor, type TestServer } from './helpers/server.ts';
import { readUntil } from './helpers/sse.ts';

const RUNSC = '/run/sandcaster-runsc/docker.sock';
const PODMAN = '/run/sandcaster-podman/podman.sock';
const ROOTLESS = '/run/sandcaster-podman-rootless/podman.sock';
/** Set by tests/run.mjs when tests/setup-engines.sh could not install or start the engines (never in CI). */
const skip = process.env.SANDCASTER_TEST_ENGINES_SKIP;
const CGROUP_V1 = statfsSync('/sys/fs/cgroup').type !== 0x63677270; // cgroup2's magic number

const settings = (host: string, over: Partial<DockerSettings> = {}): DockerSettings => dockerSettings({ ...CONTRACT_BOUNDS, host: `unix://${host}`, ...over });

const made: { provider: SandboxProvider; instance: string }[] = [];
/** A provider on `host` whose sandboxes this file removes at the end, whatever happens. */
function provider(host: string, over: Partial<DockerSettings> = {}) {
  const p = createDockerProvider(settings(host, over));
  const instance = `test-engines-${randomBytes(4).toString('hex')}`;
  made.push({ provider: p, instance });
  const create = (runId = 'run_engines') => p.create({ runId, instanceId: instance, timeoutSecs: 300 });
  return { p, instance, create };
}

async function containersOf(host: string, instance: string): Promise<number> {
  return (await new Docker({ socketPath: host }).listContainers({ all: true, filters: { label: [`sandcaster.instance=${instance}`] } })).length;
}

before(() => setLogSink(() => {}));
after(async () => {
  for (const { provider: p, instance } of made) await p.reap(instance, new Set()).catch(() => undefined);
  setLogSink(null);
});

// ---------------------------------------------------------------------------------------------------------
providerContract('docker', async () => ({ provider: createDockerProvider(settings(RUNSC, { runtime: 'runsc' })), teardown: async () => {} }), {
  label: 'docker on gVisor (runsc)',
  skip,
});

describe('gVisor (runsc)', { skip, timeout: 300_000 }, () => {
  const engine = new Docker({ socketPath: RUNSC });

  test('sandboxes run under runsc: the engine made them with it, the kernel inside is gVisor, and nproc is the per-sandbox bound', async () => {
    const { p, create } = provider(RUNSC, { runtime: 'runsc', pidsLimit: 50 });
    assert.deepEqual(await p.runtimeStatus!(), { name: 'runsc', registered: true }, 'the doctor sees runsc registered');
    const sb = await create();
    try {
      const info = await engine.getContainer(sb.id).inspect();
      assert.equal(info.HostConfig.Runtime, 'runsc');
      // Under ptrace each sandbox task costs about 8 host pids: the host pids cgroup is only a backstop.
      assert.equal(info.HostConfig.PidsLimit, 50 * 12 + 128);
      assert.deepEqual(
        (info.HostConfig.Ulimits ?? []).map((u) => [u.Name, u.Soft, u.Hard]),
        [
          ['nofile', 4096, 4096],
          ['nproc', 50, 50],
        ],
      );
      const r = await sb.exec('uname -r; ulimit -u', { timeoutMs: 15_000 });
      const [kernel, nproc] = r.stdout.trim().split('\n');
      assert.notEqual(kernel, release(), `gVisor reports its own kernel version, not the host's (${kernel})`);
      assert.equal(nproc, '50');
    } finally {
      await sb.destroy();
    }
  });

  test('forking past the limit fails cleanly inside (RLIMIT_NPROC) and the sandbox survives', async () => {
    const { create } = provider(RUNSC, { runtime: 'runsc', pidsLimit: 24 });
    const sb = await create();
    try {
      const r = await sb.exec('i=0; while [ $i -lt 60 ]; do sleep 8 & i=$((i+1)); done; echo "forked all $i"', { timeoutMs: 30_000 });
      assert.match(r.stderr, /can't fork|resource temporarily unavailable/i, JSON.stringify(r));
      assert.doesNotMatch(r.stdout, /forked all/);
      let alive = '';
      for (let i = 0; i < 60 && alive !== 'alive\n'; i++) {
        alive = (await sb.exec('echo alive', { timeoutMs: 15_000 }).catch((e: Error) => ({ stdout: e.message }))).stdout;
        if (alive !== 'alive\n') await new Promise((res) => setTimeout(res, 500));
      }
      assert.equal(alive, 'alive\n', 'the sandbox works again once the children have exited');
      assert.equal((await engine.getContainer(sb.id).inspect()).State.Running, true);
    } finally {
      await sb.destroy();
    }
  });

  test('past the memory limit the whole sandbox may die: the command ends with SANDBOX_LOST (or is killed, the sandbox alive), never hangs', async () => {
    // Under runc only the allocating process is OOM-killed (exit 137). Under gVisor the host OOM killer hits the
    // sandbox's own kernel, so the sandbox usually dies, and the exec's stream may never end: the provider
    // watches the container while a command runs.
    const { create } = provider(RUNSC, { runtime: 'runsc', memoryMb: 64, diskMb: 64 });
    const sb = await create();
    try {
      const outcome = await sb.exec('head -c 300m /dev/zero | tail; echo "status $?"', { timeoutMs: 60_000 }).then(
        (r) => (r.timedOut ? 'timed out' : r.exitCode === 137 || /status 137/.test(r.stdout) ? 'killed' : `exit ${r.exitCode}: ${r.stdout}${r.stderr}`),
        (e: unknown) => (e instanceof SandboxError ? e.code : String(e)),
      );
      assert.ok(['SANDBOX_LOST', 'killed'].includes(outcome), `outcome: ${outcome}`);
      if (outcome === 'SANDBOX_LOST') await rejectsWith(sb.exec('true', { timeoutMs: 5000 }), 'SANDBOX_LOST', /gone|stopped/);
      else assert.equal((await sb.exec('echo alive', { timeoutMs: 15_000 })).stdout, 'alive\n');
    } finally {
      await sb.destroy();
    }
  });

  describe('a run whose sandbox dies under gVisor ends with SANDBOX_LOST', () => {
    let model: FakeModelServer;
    let s: TestServer;
    before(async () => {
      model = await startFakeAnthropic(() => ({ toolCalls: [{ name: 'bash', input: { command: 'echo started; sleep 100' } }] }));
      s = await startTestServer({
        env: {
          ANTHROPIC_API_KEY: 'sk-ant-engines-test-1234567890',
          ANTHROPIC_BASE_URL: model.url,
          SANDCASTER_SANDBOX_PROVIDER: 'docker',
          DOCKER_HOST: `unix://${RUNSC}`,
          SANDCASTER_DOCKER_RUNTIME: 'runsc',
        },
      });
    });
    after(async () => {
      await s.stop();
      await model.close();
    });

    test('killed mid-command: the stream ends with SANDBOX_LOST, the sandbox is gone', async () => {
      const res = await s.query({ prompt: 'run it', model: 'sonnet', timeout: 300 });
      let kill: Promise<void> | undefined;
      const events = await readUntil(res, (e) => {
        if (e.type === 'tool_use' && !kill) {
          // The sandbox dies from outside while its command runs, as gVisor's does past its memory limit.
          kill = (async () => {
            const [c] = await engine.listContainers({ filters: { label: [`sandcaster.instance=${s.app.store.instanceId}`] } });
            assert.ok(c, 'the run has a running sandbox when its tool call is streamed');
            assert.ok(await waitFor(() => runningIn(c.Id, 'sleep 100', engine), 20_000), 'the command runs in the sandbox before it is killed');
            await engine.getContainer(c.Id).kill();
          })();
          kill.catch(() => undefined); // awaited after the stream ends
        }
        return e.type === 'error' || e.type === 'result';
      });
      await kill;
      const last = events.at(-1)!;
      assert.deepEqual([last.type, last.code], ['error', 'SANDBOX_LOST'], JSON.stringify(last));
      assert.equal(await containersOf(RUNSC, s.app.store.instanceId), 0, 'the dead sandbox is removed');
    });
  });
});

describe('docker.runtime the engine does not know', { timeout: 120_000 }, () => {
  let model: FakeModelServer;
  let s: TestServer;
  before(async () => {
    model = await startFakeAnthropic(() => ({ text: 'never reached' }));
    s = await startTestServer({
      env: { ANTHROPIC_API_KEY: 'sk-ant-engines-test-1234567890', ANTHROPIC_BASE_URL: model.url, SANDCASTER_SANDBOX_PROVIDER: 'docker', SANDCASTER_DOCKER_RUNTIME: 'sandcaster-no-such-runtime' },
    });
  });
  after(async () => {
    await s.stop();
    await model.close();
  });

  test('ends the run with SANDBOX_ERROR whose hint says how to register it (the shared engine, left as it is)', async () => {
    const events = await readUntil(await s.query({ prompt: 'hi', model: 'sonnet' }), (e) => e.type === 'error' || e.type === 'result');
    const last = events.at(-1)!;
    assert.deepEqual([last.type, last.code], ['error', 'SANDBOX_ERROR'], JSON.stringify(last));
    assert.match(last.content, /does not know the runtime sandcaster-no-such-runtime/);
    assert.match(last.hint, /"runtimes": \{"sandcaster-no-such-runtime"/);
    assert.match(last.hint, /daemon\.json/);
    assert.match(last.hint, /SANDCASTER_DOCKER_RUNTIME/);
    const p = createDockerProvider(settings('/var/run/docker.sock', { runtime: 'sandcaster-no-such-runtime', host: undefined }));
    const status = await p.runtimeStatus!();
    assert.deepEqual([status?.name, status?.registered], ['sandcaster-no-such-runtime', false], 'the doctor sees it unregistered');
    assert.match(status?.hint ?? '', /daemon\.json/);
  });
});

// ---------------------------------------------------------------------------------------------------------
providerContract('docker', async () => ({ provider: createDockerProvider(settings(PODMAN)), teardown: async () => {} }), {
  label: 'docker on Podman (rootful)',
  skip,
});

describe('Podman', { skip, timeout: 300_000 }, () => {
  test('rootful: rlimits given, catatonit as init, /workspace a sized tmpfs of the sandbox user, limits applied', async () => {
    const { p, create } = provider(PODMAN);
    assert.match((await p.engineVersion!()) ?? '', /^Podman \d/);
    const sb = await create();
    try {
      const info = await new Docker({ socketPath: PODMAN }).getContainer(sb.id).inspect();
      // memoryMb plus the storage kept in memory (workspace 88, /tmp 32, /dev/shm 8 MiB of diskMb 128).
      assert.deepEqual([info.HostConfig.Memory, info.HostConfig.PidsLimit], [(256 + 88 + 32 + 8) << 20, 128], 'limits as asked');
      const r = await sb.exec("ulimit -n; ulimit -u; tr '\\0\\n' '  ' </proc/1/cmdline; echo; stat -c %u:%g /workspace; df -k /workspace /var/tmp | tail -2 | tr -s ' ' | cut -d' ' -f2; touch /run/x 2>&1", { timeoutMs: 15_000 });
      const [nofile, nproc, init, owner, wsKb, varTmpKb, run] = r.stdout.trim().split('\n');
      // Podman would otherwise ask for 1048576 open files, above this host's hard limit, and fail to start.
      assert.deepEqual([nofile, nproc], ['4096', '16384']);
      assert.match(init!, /^\/run\/podman-init -- /, 'catatonit runs as init (Init: true)');
      assert.equal(owner, '1000:1000');
      // diskMb 128: 88 MiB workspace share, 1 MiB of it to /var/tmp (which Podman would leave unsized).
      assert.deepEqual([wsKb, varTmpKb], [String(87 * 1024), '1024']);
      assert.match(run!, /Permission denied/, '/run is closed to the sandbox user, as under Docker');
      // Uploads go through the archive API into the tmpfs, owned by the sandbox user.
      await sb.place!([{ path: '/workspace/up/in.txt', data: new TextEncoder().encode('uploaded') }]);
      const up = await sb.exec('cat up/in.txt; stat -c %u up/in.txt', { timeoutMs: 15_000 });
      assert.equal(up.stdout, 'uploaded1000\n');
    } finally {
      await sb.destroy();
    }
  });

  test('docker.runtime against Podman is refused: its Docker API ignores the runtime asked for', async () => {
    const { instance, create } = provider(PODMAN, { runtime: 'runsc' });
    const err = await rejectsWith(create(), 'SANDBOX_ERROR', /ignores the runtime/);
    assert.match(err.hint ?? '', /containers\.conf/);
    assert.equal(await containersOf(PODMAN, instance), 0);
  });

  test('rootless on cgroup v1 drops memory, CPU and pids limits: the sandbox is refused, never run unlimited', { skip: CGROUP_V1 ? undefined : 'needs a cgroup v1 host' }, async () => {
    const { instance, create } = provider(ROOTLESS);
    const err = await rejectsWith(create(), 'SANDBOX_ERROR', /did not apply the sandbox's limits: memory .*, CPU .*, pids .*; refusing to run it unlimited/);
    assert.match(err.hint ?? '', /rootful Podman|cgroup v2/);
    assert.equal(await containersOf(ROOTLESS, instance), 0, 'nothing left on the rootless engine');
  });
});
