// The Docker sandbox provider against the real engine and the local busybox test image (tests/setup-docker.sh).
// Every test uses its own instance id; the last hook removes anything left with those labels and checks
// that nothing remains.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Readable } from 'node:stream';
import Docker from 'dockerode';
import { setLogSink } from '../lib/log.ts';
import type { DockerSettings, Sandbox } from '../lib/sandbox.ts';
import { packTar, TarReader, type TarEntry } from '../lib/tar.ts';
import { createDockerProvider } from '../providers/docker/index.ts';
import { startFakeRegistry } from './fixtures/registry.ts';
import { waitFor } from './helpers/wait.ts';
import { docker, dockerSettings, leftovers, ms, rejectsWith, runningIn, sandboxInstances, TEST_IMAGE as IMAGE } from './helpers/docker-sandbox.ts';

const logLines: string[] = [];
setLogSink((line) => void logLines.push(line));

const { id: instanceId, sweep } = sandboxInstances('dp');
/** 0.5 CPU, so the container spec shows a fractional NanoCpus. */
const settings = (over: Partial<DockerSettings> = {}) => dockerSettings({ cpus: 0.5, ...over });

after(sweep);

describe('docker sandbox', { timeout: 120_000 }, () => {
  const instance = instanceId('main');
  const provider = createDockerProvider(settings());
  let sb: Sandbox;
  const run = (command: string, timeoutMs = 10_000) => sb.exec(command, { timeoutMs });

  before(async () => {
    process.env.SANDCASTER_TEST_FAKE_KEY = 'sk-ant-should-never-reach-a-sandbox';
    try {
      sb = await provider.create({ runId: 'run_main', instanceId: instance, timeoutSecs: 300 });
    } finally {
      delete process.env.SANDCASTER_TEST_FAKE_KEY;
    }
  });
  after(() => sb?.destroy());

  test('is created hardened and labelled', async () => {
    const info = await docker.getContainer(sb.id).inspect();
    assert.equal(info.State.Running, true);
    assert.deepEqual(
      { managed: info.Config.Labels['sandcaster.managed'], instance: info.Config.Labels['sandcaster.instance'], run: info.Config.Labels['sandcaster.run'] },
      { managed: 'true', instance, run: 'run_main' },
    );
    const h = info.HostConfig;
    assert.deepEqual(
      { mem: h.Memory, swap: h.MemorySwap, cpus: h.NanoCpus, pids: h.PidsLimit, caps: h.CapDrop, sec: h.SecurityOpt, init: h.Init, net: h.NetworkMode, user: info.Config.User },
      // memoryMb plus diskMb: the tmpfs storage is charged to the container's memory.
      { mem: 128 << 20, swap: 128 << 20, cpus: 5e8, pids: 64, caps: ['ALL'], sec: ['no-new-privileges'], init: true, net: 'none', user: '1000:1000' },
    );
    // Storage: read-only root, /tmp and /dev/shm tmpfs, no log file the sandbox could fill through /proc/1/fd/1.
    assert.deepEqual(
      { ro: h.ReadonlyRootfs, tmp: h.Tmpfs?.['/tmp'], shm: h.ShmSize, log: h.LogConfig?.Type },
      { ro: true, tmp: 'rw,nosuid,nodev,exec,size=16m,mode=1777', shm: 4 << 20, log: 'none' },
    );
    const ws = info.Mounts.find((m) => m.Destination === '/workspace');
    assert.equal(ws?.Type, 'volume');
    const volume = await docker.getVolume(ws!.Name!).inspect();
    assert.equal(volume.Labels?.['sandcaster.instance'], instance);
    assert.deepEqual(volume.Options, { type: 'tmpfs', device: 'tmpfs', o: 'size=44m,uid=1000,gid=1000,mode=0755' });
    for (const e of info.Config.Env ?? []) assert.match(e, /^(PATH|HOME)=/, `unexpected env ${e}`);
  });

  test('limits hold inside the sandbox', async () => {
    const r = await run(`
      if [ -f /sys/fs/cgroup/memory.max ]; then echo "v2 $(cat /sys/fs/cgroup/memory.max) $(cat /sys/fs/cgroup/pids.max) $(cat /sys/fs/cgroup/cpu.max)"
      else echo "v1 $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes) $(cat /sys/fs/cgroup/pids/pids.max) $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"; fi
      echo "net $(ls /sys/class/net | tr '\\n' ' ')"
      echo "dev $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\n' ' ')"
      echo "uid $(id -u) $(id -g)"
      echo "ws $(stat -c '%u:%g' /workspace)"
      touch /workspace/.probe && rm /workspace/.probe && echo "ws writable"
      grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status | tr -s '\\t' ' '
      echo "init $(tr '\\0\\n' '  ' </proc/1/cmdline)"
      env | cut -d= -f1 | sort | tr '\\n' ' '; echo
      env | grep -ciE 'sk-ant|key|token|secret|password' || true`);
    assert.equal(r.exitCode, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    const cg = lines[0]!.split(' ');
    if (cg[0] === 'v2') assert.deepEqual(cg.slice(1), [String(128 << 20), '64', '50000', '100000']);
    else {
      assert.deepEqual(cg.slice(1, 3), [String(128 << 20), '64']);
      assert.equal(Number(cg[3]) / Number(cg[4]), 0.5);
    }
    assert.equal(lines[1]!.trim(), 'net lo');
    assert.equal(lines[2]!.trim(), 'dev lo');
    assert.equal(lines[3], 'uid 1000 1000');
    assert.equal(lines[4], 'ws 1000:1000');
    assert.equal(lines[5], 'ws writable');
    assert.equal(lines[6], 'CapEff: 0000000000000000');
    assert.equal(lines[7], 'CapBnd: 0000000000000000', 'every capability dropped');
    assert.equal(lines[8], 'NoNewPrivs: 1');
    assert.match(lines[9]!, /^init \/sbin\/docker-init /);
    for (const name of lines[10]!.trim().split(' ')) assert.ok(['HOME', 'HOSTNAME', 'OLDPWD', 'PATH', 'PWD', 'SHLVL'].includes(name), `unexpected env var ${name}`);
    assert.equal(lines[11], '0', 'secret-looking env in the sandbox');
  });

  test('allocating past the memory limit is OOM-killed and the sandbox carries on', async () => {
    const r = await run('head -c 300m /dev/zero | tail; echo "status $?"', 30_000);
    assert.match(r.stdout, /status 137/);
    assert.equal((await run('echo alive')).stdout, 'alive\n');
    // The command itself killed is an exit code, not a lost sandbox.
    assert.equal((await run('head -c 300m /dev/zero | tail', 30_000)).exitCode, 137);
    assert.equal((await run('kill -9 $$')).exitCode, 137);
    const swap = await run('cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.swap.max 2>/dev/null');
    if (swap.stdout) assert.match(swap.stdout, new RegExp(`^(${128 << 20}|0)\n$`), 'no swap on top of the memory limit');
  });

  test('forking past the pids limit fails and the sandbox survives', async () => {
    const r = await run('i=0; while [ $i -lt 100 ]; do sleep 2 & i=$((i+1)); done; echo "forked all $i"', 20_000);
    assert.match(r.stderr, /can't fork|resource temporarily unavailable/i);
    assert.doesNotMatch(r.stdout, /forked all/);
    // Once the children it did get have exited, the sandbox works as before.
    let alive = '';
    assert.ok(await waitFor(async () => (alive = (await run('echo alive')).stdout) === 'alive\n', 10_000, 250), `echo works again once the forked children exit; last stdout ${JSON.stringify(alive)}`);
    assert.equal((await docker.getContainer(sb.id).inspect()).State.Running, true);
  });

  test('exec separates and streams stdout and stderr and reports the exit code', async () => {
    const chunks: Array<[string, string, number]> = [];
    const start = performance.now();
    const r = await sb.exec('echo out1; echo err1 >&2; sleep 0.4; printf "out2 \\342\\202"; sleep 0.1; printf "\\254\\n"; exit 7', {
      timeoutMs: 10_000,
      onStdout: (s) => chunks.push(['out', s, ms(start)]),
      onStderr: (s) => chunks.push(['err', s, ms(start)]),
    });
    const took = ms(start);
    assert.deepEqual(r, { stdout: 'out1\nout2 €\n', stderr: 'err1\n', exitCode: 7, timedOut: false });
    assert.equal(chunks.filter((c) => c[0] === 'out').map((c) => c[1]).join(''), r.stdout);
    assert.equal(chunks.filter((c) => c[0] === 'err').map((c) => c[1]).join(''), r.stderr);
    assert.ok(chunks[0]![2] < took - 300, 'the first chunk arrived while the command was still running');
    assert.equal((await run('exit 0')).exitCode, 0);
    assert.equal((await run('false')).exitCode, 1);
    assert.equal((await run('pwd')).stdout, '/workspace\n');
    assert.equal((await sb.exec('pwd', { timeoutMs: 5000, cwd: '/tmp' })).stdout, '/tmp\n');
    const nowhere = await sb.exec('pwd', { timeoutMs: 5000, cwd: '/no/such/dir' });
    assert.notEqual(nowhere.exitCode, 0);
    assert.match(nowhere.stderr, /\/no\/such\/dir/);
    assert.equal((await run(`printf '%s' "it's \\"quoted\\" $((6*7))"`)).stdout, `it's "quoted" 42`);
  });

  test('a timeout kills the whole process group, grandchildren included', async () => {
    const start = performance.now();
    const r = await run(`(sleep 311 &); sh -c 'sleep 312 & wait' & echo started; sleep 313`, 1000);
    assert.ok(ms(start) < 5000, `took ${ms(start)} ms`);
    assert.equal(r.timedOut, true);
    assert.equal(r.exitCode, null);
    assert.equal(r.stdout, 'started\n');
    const ps = await run('ps -o args');
    assert.equal(ps.exitCode, 0);
    assert.doesNotMatch(ps.stdout, /sleep 31[123]/);
  });

  test('aborting kills the command and rejects with the reason', async () => {
    const ac = new AbortController();
    const reason = new Error('run cancelled');
    const running = sb.exec('sleep 321 & sleep 322', { timeoutMs: 30_000, signal: ac.signal });
    running.catch(() => undefined); // awaited below, once aborted
    assert.ok(await waitFor(() => runningIn(sb.id, 'sleep 322'), 10_000), 'the command runs before the abort');
    ac.abort(reason);
    const start = performance.now();
    await assert.rejects(running, (err) => err === reason);
    assert.ok(ms(start) < 5000, `the abort rejects at once, not at the 30 s timeout: took ${Math.round(ms(start))} ms`);
    assert.doesNotMatch((await run('ps -o args')).stdout, /sleep 32[12]/);
    await assert.rejects(sb.exec('true', { timeoutMs: 1000, signal: AbortSignal.abort(reason) }), (err) => err === reason);
  });

  test('a background child that keeps stdout open does not hold the exec past its timeout', async () => {
    const start = performance.now();
    const r = await run('sleep 331 & echo started', 4000);
    assert.ok(ms(start) < 5500, `took ${ms(start)} ms`);
    assert.equal(r.stdout, 'started\n');
    await run('pkill -f "sleep 331"; true');
  });

  test('files round-trip byte for byte, with parent folders owned by the sandbox user', async () => {
    const big = randomBytes(3 * 1024 * 1024 + 17);
    const small = new Uint8Array([0, 255, 10, 13, 0, 0x80]);
    const longDir = `/workspace/deep/${'d'.repeat(90)}/${'e'.repeat(60)}`;
    await sb.writeFile('/workspace/deep/a/b/big.bin', big);
    await sb.writeFile(`${longDir}/small.bin`, small);
    await sb.writeFile('/workspace/empty', new Uint8Array());
    assert.deepEqual(Buffer.from(await sb.readFile('/workspace/deep/a/b/big.bin')), big);
    assert.deepEqual(await sb.readFile(`${longDir}/small.bin`), small);
    const deep = await sb.list('/workspace/deep');
    assert.deepEqual(deep.find((e) => e.path.endsWith('small.bin')), { path: `${longDir.slice('/workspace/deep/'.length)}/small.bin`, type: 'file', size: small.length, mtimeMs: deep.find((e) => e.path.endsWith('small.bin'))!.mtimeMs });
    assert.equal((await sb.readFile('/workspace/empty')).length, 0);
    const owners = await run(`stat -c '%u:%g %a %n' /workspace/deep /workspace/deep/a /workspace/deep/a/b /workspace/deep/a/b/big.bin '${longDir}/small.bin'`);
    for (const line of owners.stdout.trim().split('\n')) assert.match(line, /^1000:1000 /, line);
    assert.equal((await run('md5sum /workspace/deep/a/b/big.bin | cut -d" " -f1')).stdout.trim(), createHash('md5').update(big).digest('hex'));
    // Overwriting works and the sandbox user can change the file afterwards.
    await sb.writeFile('/workspace/deep/a/b/big.bin', new TextEncoder().encode('v2'));
    assert.equal((await run('cat /workspace/deep/a/b/big.bin && echo " more" >> /workspace/deep/a/b/big.bin && cat /workspace/deep/a/b/big.bin')).stdout, 'v2v2 more\n');
    // A folder that already exists keeps its owner and mode.
    await run('mkdir -m 700 /workspace/private');
    await sb.writeFile('/workspace/private/x/y.txt', new TextEncoder().encode('y'));
    assert.equal((await run('stat -c %a /workspace/private')).stdout, '700\n');
  });

  test('file errors have their own codes', async () => {
    await rejectsWith(sb.readFile('/workspace/missing.txt'), 'FILE_NOT_FOUND');
    await rejectsWith(sb.readFile('/workspace/no/such/dir/f'), 'FILE_NOT_FOUND');
    await run('mkdir -p /workspace/adir/sub && head -c 5000 /dev/zero > /workspace/adir/sub/z');
    await rejectsWith(sb.readFile('/workspace/adir'), 'IS_A_DIRECTORY');
    await rejectsWith(sb.writeFile('/workspace/adir', new Uint8Array([1])), 'IS_A_DIRECTORY');
    assert.equal((await run('ls /workspace/adir/sub')).stdout, 'z\n', 'the folder survived');
    await rejectsWith(sb.readFile('/workspace/adir/sub/z', { maxBytes: 4999 }), 'FILE_TOO_LARGE', /too large/);
    assert.equal((await sb.readFile('/workspace/adir/sub/z', { maxBytes: 5000 })).length, 5000);
    await rejectsWith(sb.list('/workspace/nothing-here'), 'FILE_NOT_FOUND');
    await run('ln -s adir/sub /workspace/link && ln -s sub/z /workspace/adir/zlink');
    assert.equal((await sb.readFile('/workspace/adir/zlink')).length, 5000, 'a symlink is followed');
  });

  test('list returns everything under a folder with types, sizes and times', async () => {
    await run('mkdir -p /workspace/tree/a/b && printf 12345 > /workspace/tree/a/b/five && printf x > /workspace/tree/one && ln -s one /workspace/tree/ln && ln /workspace/tree/one /workspace/tree/hard');
    const before = Date.now();
    await sb.writeFile('/workspace/tree/a/new.txt', new TextEncoder().encode('new!'));
    const entries = (await sb.list('/workspace/tree')).sort((a, b) => a.path.localeCompare(b.path));
    assert.deepEqual(
      entries.map((e) => [e.path, e.type, e.size]),
      [
        ['a', 'dir', 0],
        ['a/b', 'dir', 0],
        ['a/b/five', 'file', 5],
        ['a/new.txt', 'file', 4],
        ['hard', 'file', 1],
        ['ln', 'symlink', 0],
        ['one', 'file', 1],
      ],
    );
    const fresh = entries.find((e) => e.path === 'a/new.txt')!;
    assert.ok(Math.abs(fresh.mtimeMs - before) < 5000, `mtime ${fresh.mtimeMs} vs ${before}`);
    assert.deepEqual((await sb.list('/workspace/tree/a/b')).map((e) => e.path), ['five']);
    assert.deepEqual((await sb.list('/workspace/tree/a/b/')).map((e) => e.path), ['five'], 'a trailing slash changes nothing');
    assert.deepEqual((await sb.list('/workspace/link')).map((e) => e.path), ['z'], 'a symlinked folder is followed');
  });
});

describe('docker sandbox lifecycle', { timeout: 120_000 }, () => {
  test('a read-only root still lets tools write /workspace and /tmp', async () => {
    const instance = instanceId('ro');
    const sb = await createDockerProvider(settings()).create({ runId: 'run_ro', instanceId: instance, timeoutSecs: 60 });
    try {
      assert.equal((await docker.getContainer(sb.id).inspect()).HostConfig.ReadonlyRootfs, true, 'read-only is the default');
      const r = await sb.exec('echo a > /workspace/a && echo b > /tmp/b && cat /workspace/a /tmp/b; touch /etc/nope 2>/dev/null || echo "root is read-only"', { timeoutMs: 10_000 });
      assert.equal(r.stdout, 'a\nb\nroot is read-only\n');
      await sb.writeFile('/workspace/sub/f.txt', new TextEncoder().encode('via the file API'));
      assert.equal(new TextDecoder().decode(await sb.readFile('/workspace/sub/f.txt')), 'via the file API');
      await sb.writeFile('/tmp/t/f.txt', new TextEncoder().encode('in /tmp'));
      assert.equal(new TextDecoder().decode(await sb.readFile('/tmp/t/f.txt')), 'in /tmp', 'the file API sees into the /tmp tmpfs');
      assert.deepEqual((await sb.list('/tmp/t')).map((e) => e.path), ['f.txt']);
      assert.equal((await sb.exec('stat -c %u /workspace /workspace/sub/f.txt', { timeoutMs: 5000 })).stdout, '1000\n1000\n');
      await rejectsWith(sb.writeFile('/etc/nope', new Uint8Array([1])), 'PERMISSION_DENIED', /read-only/);
    } finally {
      await sb.destroy();
    }
  });

  test('destroy is idempotent and leaves no container or volume', async () => {
    const instance = instanceId('destroy');
    const sb = await createDockerProvider(settings()).create({ runId: 'run_d', instanceId: instance, timeoutSecs: 60 });
    assert.deepEqual(await leftovers(instance), { containers: 1, volumes: 1 });
    await Promise.all([sb.destroy(), sb.destroy()]);
    await sb.destroy();
    assert.deepEqual(await leftovers(instance), { containers: 0, volumes: 0 });
    await rejectsWith(sb.exec('true', { timeoutMs: 1000 }), 'SANDBOX_LOST');
    await rejectsWith(sb.readFile('/etc/passwd'), 'SANDBOX_LOST');
    await rejectsWith(sb.writeFile('/workspace/x', new Uint8Array([1])), 'SANDBOX_LOST');
  });

  test('a container that dies mid-command is SANDBOX_LOST', async () => {
    const instance = instanceId('died');
    const sb = await createDockerProvider(settings()).create({ runId: 'run_died', instanceId: instance, timeoutSecs: 60 });
    try {
      const running = sb.exec('sleep 30', { timeoutMs: 20_000 });
      running.catch(() => undefined); // awaited below, once the container is killed
      assert.ok(await waitFor(() => runningIn(sb.id, 'sleep 30'), 10_000), 'the command runs in the container before it is killed');
      await docker.getContainer(sb.id).kill();
      const start = performance.now();
      await rejectsWith(running, 'SANDBOX_LOST');
      assert.ok(ms(start) < 5000, `the command fails as soon as its container dies, not at its 20 s timeout: took ${Math.round(ms(start))} ms`);
      await rejectsWith(sb.exec('true', { timeoutMs: 1000 }), 'SANDBOX_LOST');
    } finally {
      await sb.destroy();
    }
  });

  test('a missing image that cannot be pulled is SANDBOX_ERROR with a hint, pulled once, and leaves nothing', async () => {
    const instance = instanceId('pull');
    // A "registry" on 127.0.0.1 that holds each connection for a second and then hangs up, so the pull fails
    // slowly enough for both creates to be waiting on it.
    const registry = net.createServer((c) => void setTimeout(() => c.destroy(), 1000)).listen(0, '127.0.0.1');
    await new Promise((r) => registry.once('listening', r));
    const image = `127.0.0.1:${(registry.address() as net.AddressInfo).port}/sandcaster/missing-${randomBytes(3).toString('hex')}:1`;
    const provider = createDockerProvider(settings({ image }));
    const before = logLines.length;
    const [a, b] = await Promise.all([
      rejectsWith(provider.create({ runId: 'run_p1', instanceId: instance, timeoutSecs: 60 }), 'SANDBOX_ERROR', /could not be pulled/),
      (async () => {
        // The second create starts while the first one's pull is in flight (the registry holds it a second).
        const pulling = () => logLines.slice(before).some((l) => ((x) => x.msg === 'pulling docker image' && x.image === image && !x.status)(JSON.parse(l)));
        assert.ok(await waitFor(pulling, 10_000), 'the first create started pulling the image');
        return rejectsWith(provider.create({ runId: 'run_p2', instanceId: instance, timeoutSecs: 60 }), 'SANDBOX_ERROR', /could not be pulled/);
      })(),
    ]).finally(() => registry.close());
    assert.ok(a.hint?.includes(image) && a.hint.includes('docker pull'), a.hint);
    assert.equal(b.message, a.message);
    const starts = logLines.slice(before).map((l) => JSON.parse(l)).filter((l) => l.msg === 'pulling docker image' && l.image === image && !l.status);
    assert.equal(starts.length, 1, 'one pull for both creates');
    assert.equal(starts[0].level, 'info');
    assert.deepEqual(await leftovers(instance), { containers: 0, volumes: 0 });
  });

  test('a missing image is pulled once, with progress logged, and then used', async () => {
    // A minimal registry on 127.0.0.1 serving the test image (tests/fixtures/registry.ts).
    const registry = await startFakeRegistry(docker, IMAGE);
    const image = registry.image(`pulled-${randomBytes(3).toString('hex')}`);
    const instance = instanceId('pulled');
    const provider = createDockerProvider(settings({ image }));
    const before = logLines.length;
    const sandboxes: Sandbox[] = [];
    try {
      sandboxes.push(...(await Promise.all([1, 2].map((n) => provider.create({ runId: `run_pulled${n}`, instanceId: instance, timeoutSecs: 60 })))));
      for (const sb of sandboxes) assert.equal((await sb.exec('echo pulled', { timeoutMs: 5000 })).stdout, 'pulled\n');
      const lines = logLines.slice(before).map((l) => JSON.parse(l));
      assert.equal(lines.filter((l) => l.level === 'info' && l.msg === 'pulling docker image' && l.image === image && !l.status).length, 1, 'one pull for both creates');
      assert.equal(registry.layerRequests(image), 1, 'the layer was downloaded once');
      const pulled = lines.filter((l) => l.msg === 'pulled docker image' && l.image === image);
      assert.deepEqual(pulled.map((l) => l.level), ['info'], 'the finished pull is logged once, at info');
    } finally {
      await Promise.all(sandboxes.map((sb) => sb.destroy()));
      await registry.close();
      await docker.getImage(image).remove({ force: true }).catch(() => {});
    }
  });

  test('an image without /bin/sh is SANDBOX_ERROR and leaves nothing', async () => {
    const instance = instanceId('nosh');
    const image = `sandcaster-test:nosh-${process.pid}`;
    const [repo, tag] = image.split(':');
    const tar = Readable.from(packTar([{ name: 'hello.txt', type: 'file', mode: 0o644, uid: 0, gid: 0, data: Buffer.from('hi') }]));
    const progress = await docker.importImage(tar as unknown as NodeJS.ReadableStream, { repo, tag });
    await new Promise((resolve, reject) => docker.modem.followProgress(progress, (err: unknown) => (err ? reject(err) : resolve(null))));
    try {
      const err = await rejectsWith(createDockerProvider(settings({ image })).create({ runId: 'run_nosh', instanceId: instance, timeoutSecs: 60 }), 'SANDBOX_ERROR', /\/bin\/sh/);
      assert.match(err.hint ?? '', /docker\.image/);
      assert.deepEqual(await leftovers(instance), { containers: 0, volumes: 0 });
    } finally {
      await docker.getImage(image).remove({ force: true });
    }
  });

  test('aborting a create removes whatever it made', async () => {
    const instance = instanceId('abort');
    const provider = createDockerProvider(settings());
    const reason = new Error('client went away');
    await assert.rejects(provider.create({ runId: 'run_a0', instanceId: instance, timeoutSecs: 60, signal: AbortSignal.abort(reason) }), (e) => e === reason);
    for (const delay of [5, 20, 40, 80]) {
      const ac = new AbortController();
      setTimeout(() => ac.abort(reason), delay);
      const outcome = await provider.create({ runId: `run_a${delay}`, instanceId: instance, timeoutSecs: 60, signal: ac.signal }).then(
        (sb) => sb.destroy().then(() => 'created'),
        (err) => (assert.equal(err, reason), 'aborted'),
      );
      // Either outcome is right (the abort may land after the create finished); what matters is what is left.
      assert.deepEqual(await leftovers(instance), { containers: 0, volumes: 0 }, `after an abort at ${delay} ms`);
    }
  });

  test('reap removes only the sandboxes of this instance whose run is not kept', async () => {
    const instance = instanceId('reap');
    const other = instanceId('reap-other');
    const provider = createDockerProvider(settings());
    const [a, b, c] = await Promise.all(['run_a', 'run_b', 'run_c'].map((runId) => provider.create({ runId, instanceId: instance, timeoutSecs: 60 })));
    const foreign = await provider.create({ runId: 'run_a', instanceId: other, timeoutSecs: 60 });
    await docker.getContainer(c!.id).stop({ t: 0 }); // stopped ones count too
    await docker.createVolume({ Name: `sandcaster-test-orphan-${randomBytes(3).toString('hex')}`, Labels: { 'sandcaster.managed': 'true', 'sandcaster.instance': instance, 'sandcaster.run': 'run_z' } });
    try {
      assert.equal(await provider.reap(instance, new Set(['run_b'])), 2);
      const left = await docker.listContainers({ all: true, filters: { label: [`sandcaster.instance=${instance}`] } });
      assert.deepEqual(left.map((x) => x.Labels['sandcaster.run']), ['run_b']);
      assert.deepEqual(await leftovers(instance), { containers: 1, volumes: 1 });
      assert.deepEqual(await leftovers(other), { containers: 1, volumes: 1 });
      assert.equal((await b!.exec('echo kept', { timeoutMs: 5000 })).stdout, 'kept\n');
      await rejectsWith(a!.exec('true', { timeoutMs: 1000 }), 'SANDBOX_LOST');
      assert.equal(await provider.reap(instance, new Set(['run_b'])), 0);
    } finally {
      await Promise.all([a, b, c, foreign].map((s) => s!.destroy()));
    }
  });
});

describe('docker engine trouble', { timeout: 60_000 }, () => {
  test('DOCKER_HOST at a dead socket: available() is false and create fails fast with a hint', async () => {
    const saved = process.env.DOCKER_HOST;
    process.env.DOCKER_HOST = `unix://${join(tmpdir(), `sandcaster-no-engine-${process.pid}.sock`)}`;
    let provider;
    try {
      provider = createDockerProvider(settings());
    } finally {
      if (saved === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = saved;
    }
    const start = performance.now();
    assert.equal(await provider.available(), false);
    const err = await rejectsWith(provider.create({ runId: 'run_dead', instanceId: instanceId('dead'), timeoutSecs: 60 }), 'SANDBOX_ERROR', /unreachable/);
    assert.match(err.hint ?? '', /DOCKER_HOST/);
    assert.ok(ms(start) < 2000, `took ${ms(start)} ms`);
  });

  test('an engine that never answers: available() is false in about 2 s and calls are bounded', async () => {
    const sock = join(tmpdir(), `sandcaster-hung-${process.pid}.sock`);
    rmSync(sock, { force: true });
    const held: net.Socket[] = [];
    const server = net.createServer((s) => void held.push(s)).listen(sock);
    await new Promise((r) => server.once('listening', r));
    try {
      const provider = createDockerProvider(settings(), { docker: new Docker({ socketPath: sock }), engineTimeoutMs: 1000 });
      let start = performance.now();
      assert.equal(await provider.available(), false);
      assert.ok(ms(start) > 1500 && ms(start) < 3500, `available took ${ms(start)} ms`);
      start = performance.now();
      await rejectsWith(provider.create({ runId: 'run_hung', instanceId: instanceId('hung'), timeoutSecs: 60 }), 'SANDBOX_ERROR', /did not answer/);
      assert.ok(ms(start) < 3000, `create took ${ms(start)} ms`);
    } finally {
      held.forEach((s) => s.destroy());
      server.close();
    }
  });

  test('the engine going away mid-run is SANDBOX_ERROR, never a hang', async () => {
    // A pass-through proxy to the real engine that can be cut.
    const sock = join(tmpdir(), `sandcaster-proxy-${process.pid}.sock`);
    rmSync(sock, { force: true });
    const conns = new Set<net.Socket>();
    const server = net
      .createServer((client) => {
        const upstream = net.connect('/var/run/docker.sock');
        conns.add(client).add(upstream);
        client.pipe(upstream).pipe(client);
        const drop = () => (client.destroy(), upstream.destroy());
        client.on('error', drop).on('close', drop);
        upstream.on('error', drop).on('close', drop);
      })
      .listen(sock);
    await new Promise((r) => server.once('listening', r));
    const instance = instanceId('gone');
    const sb = await createDockerProvider(settings(), { docker: new Docker({ socketPath: sock }) }).create({ runId: 'run_gone', instanceId: instance, timeoutSecs: 60 });
    try {
      assert.equal((await sb.exec('echo via proxy', { timeoutMs: 5000 })).stdout, 'via proxy\n');
      setTimeout(() => {
        server.close();
        conns.forEach((s) => s.destroy());
      }, 300);
      const start = performance.now();
      await rejectsWith(sb.exec('sleep 30', { timeoutMs: 20_000 }), 'SANDBOX_ERROR', /unreachable/);
      assert.ok(ms(start) < 5000, `took ${ms(start)} ms`);
      await rejectsWith(sb.readFile('/etc/passwd'), 'SANDBOX_ERROR', /unreachable/);
      await rejectsWith(sb.list('/workspace'), 'SANDBOX_ERROR');
      await rejectsWith(sb.destroy(), 'SANDBOX_ERROR');
    } finally {
      server.close();
      await createDockerProvider(settings()).reap(instance, new Set());
    }
  });
});

test('tar: what packTar writes, TarReader reads back, in any chunking', () => {
  const long = `${'a'.repeat(120)}/${'b'.repeat(80)}/ünïcödé.bin`;
  const data = randomBytes(1500);
  const archive = Buffer.concat(
    packTar([
      { name: 'dir', type: 'dir', mode: 0o755, uid: 1000, gid: 1000, mtime: 1_700_000_000 },
      { name: long, type: 'file', mode: 0o644, uid: 1000, gid: 1000, mtime: 1_700_000_001, data },
      { name: 'empty', type: 'file', mode: 0o600, uid: 0, gid: 0, data: new Uint8Array() },
    ]),
  );
  assert.equal(archive.length % 512, 0);
  for (const size of [1, 7, 512, 100_000]) {
    const seen: Array<Omit<TarEntry, 'linkname'> & { bytes: number }> = [];
    const bodies: Buffer[] = [];
    const reader = new TarReader({
      entry: (e) => void seen.push({ name: e.name, type: e.type, size: e.size, mode: e.mode, mtimeMs: e.mtimeMs, bytes: 0 }),
      data: (c) => void (bodies.push(Buffer.from(c)), (seen.at(-1)!.bytes += c.length)),
    });
    for (let i = 0; i < archive.length; i += size) reader.write(archive.subarray(i, i + size));
    assert.equal(reader.ended, true);
    assert.deepEqual(seen, [
      { name: 'dir/', type: 'dir', size: 0, mode: 0o755, mtimeMs: 1_700_000_000_000, bytes: 0 },
      { name: long, type: 'file', size: 1500, mode: 0o644, mtimeMs: 1_700_000_001_000, bytes: 1500 },
      { name: 'empty', type: 'file', size: 0, mode: 0o600, mtimeMs: seen[2]!.mtimeMs, bytes: 0 },
    ]);
    assert.deepEqual(Buffer.concat(bodies), data);
  }
});
