// The Docker sandbox under attack, against the real engine and the busybox test image: a sandbox that fills
// its storage, plants a sparse terabyte, writes where the sandbox user may not, and a removal that hangs.
// Every test uses its own instance id; the last hook removes what is left with those labels and checks it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import Docker from 'dockerode';
import { collectArtifacts } from '../lib/artifacts.ts';
import { setLogSink } from '../lib/log.ts';
import { SandboxError, type Sandbox } from '../lib/sandbox.ts';
import { packTar } from '../lib/tar.ts';
import { BASE_TOOLS, runTool, type ToolContext } from '../lib/tools.ts';
import { fileFailure, LIST_LIMITS } from '../providers/docker/files.ts';
import { createDockerProvider, storageSplit } from '../providers/docker/index.ts';
import { startFakeAnthropic } from './fixtures/fake-models.ts';
import { docker, dockerSettings, leftovers, ms, rejectsWith, sandboxInstances } from './helpers/docker-sandbox.ts';
import { readEvents } from './helpers/sse.ts';
import { startTestServer } from './helpers/server.ts';

const MiB = 1024 * 1024;
const logLines: Record<string, any>[] = [];
setLogSink((line) => void logLines.push(JSON.parse(line)));

const { id: instanceId, sweep } = sandboxInstances('dh');
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
/** Free bytes of the filesystem that holds the engine's data (images, containers, volumes, logs). */
const hostFree = async () => {
  const s = await statfs('/var/lib/docker');
  return s.bavail * s.bsize;
};

after(sweep);

describe('a hostile sandbox', { timeout: 180_000 }, () => {
  const instance = instanceId('main');
  const provider = createDockerProvider(dockerSettings());
  let sb: Sandbox;
  const run = (command: string, timeoutMs = 30_000) => sb.exec(command, { timeoutMs });

  before(async () => {
    sb = await provider.create({ runId: 'run_hostile', instanceId: instance, timeoutSecs: 300 });
    // Root-owned things in the workspace, put there by the engine (as the image or an operator might):
    // a folder and a file the sandbox user may read but not write, a secret and a folder only root may read.
    const tar = packTar([
      { name: 'rootdir', type: 'dir', mode: 0o755, uid: 0, gid: 0 },
      { name: 'rootdir/owned.txt', type: 'file', mode: 0o644, uid: 0, gid: 0, data: enc('root owns this') },
      { name: 'secret.txt', type: 'file', mode: 0o600, uid: 0, gid: 0, data: enc('top secret') },
      { name: 'private', type: 'dir', mode: 0o700, uid: 0, gid: 0 },
      { name: 'private/inside.txt', type: 'file', mode: 0o644, uid: 0, gid: 0, data: enc('hidden') },
    ]);
    await docker.getContainer(sb.id).putArchive(Readable.from(tar), { path: '/workspace' });
  });
  after(() => sb?.destroy());

  test('file tools have the sandbox user\'s rights: root-owned, read-only and symlinked targets are permission errors', async () => {
    const passwd = dec(await sb.readFile('/etc/passwd'));
    await rejectsWith(sb.writeFile('/etc/hostname', enc('pwned')), 'PERMISSION_DENIED', /read-only/);
    await rejectsWith(sb.writeFile('/etc/passwd', enc('pwned')), 'PERMISSION_DENIED');
    await rejectsWith(sb.writeFile('/bin/sh', enc('pwned')), 'PERMISSION_DENIED');
    await rejectsWith(sb.writeFile('/workspace/rootdir/owned.txt', enc('pwned')), 'PERMISSION_DENIED', /permission denied/);
    await rejectsWith(sb.writeFile('/workspace/rootdir/new.txt', enc('pwned')), 'PERMISSION_DENIED');
    await rejectsWith(sb.writeFile('/workspace/rootdir/sub/new.txt', enc('pwned')), 'PERMISSION_DENIED');
    // Through symlinks the agent made.
    assert.equal((await run('ln -s /etc /workspace/etc-link && ln -s /workspace/rootdir /workspace/l')).exitCode, 0);
    await rejectsWith(sb.writeFile('/workspace/etc-link/passwd', enc('pwned')), 'PERMISSION_DENIED');
    await rejectsWith(sb.writeFile('/workspace/etc-link/new', enc('pwned')), 'PERMISSION_DENIED');
    await rejectsWith(sb.writeFile('/workspace/l/owned.txt', enc('pwned')), 'PERMISSION_DENIED');
    assert.equal(dec(await sb.readFile('/etc/passwd')), passwd, '/etc/passwd unchanged');
    assert.equal(dec(await sb.readFile('/workspace/l/owned.txt')), 'root owns this', 'the root-owned file unchanged, readable through the link');
    const stray = await run('ls /workspace/rootdir; ls /etc | grep -c new || true');
    assert.equal(stray.stdout, 'owned.txt\n0\n', 'nothing was created in root-owned folders');
    // Reading and listing what only root may read.
    await rejectsWith(sb.readFile('/workspace/secret.txt'), 'PERMISSION_DENIED');
    await rejectsWith(sb.readFile('/workspace/private/inside.txt'), 'PERMISSION_DENIED');
    await rejectsWith(sb.list('/workspace/private'), 'PERMISSION_DENIED');
    const all = await sb.list('/workspace');
    assert.ok(all.some((e) => e.path === 'private' && e.type === 'dir') && !all.some((e) => e.path.startsWith('private/')), 'a listing goes on past a folder it cannot read');
    // What the sandbox user creates is theirs.
    await sb.writeFile('/workspace/made/by/tool.txt', enc('mine'));
    await sb.writeFile('/tmp/by-tool.txt', enc('mine too'));
    assert.equal((await run("stat -c '%u:%g %a' /workspace/made /workspace/made/by /workspace/made/by/tool.txt /tmp/by-tool.txt")).stdout, '1000:1000 755\n1000:1000 755\n1000:1000 644\n1000:1000 644\n');
  });

  test('a failing file tool is a tool error the model sees, and the next tool call works', async () => {
    const ctx: ToolContext = { sandbox: () => sb, remainingMs: () => 60_000, signal: new AbortController().signal };
    for (const path of ['/etc/hostname', '/etc/passwd', '/workspace/etc-link/shadow', '/workspace/rootdir/x']) {
      const out = await runTool(BASE_TOOLS.write_file, { path, content: 'pwned' }, ctx);
      assert.equal(out.isError, true, `write_file ${path}: ${out.content}`);
      assert.match(out.content, /permission denied|read-only/i, `write_file ${path}`);
    }
    const read = await runTool(BASE_TOOLS.read_file, { path: 'secret.txt' }, ctx);
    assert.deepEqual([read.isError, /permission denied/.test(read.content)], [true, true], read.content);
    const edit = await runTool(BASE_TOOLS.edit_file, { path: 'rootdir/owned.txt', oldText: 'root', newText: 'me' }, ctx);
    assert.deepEqual([edit.isError, /permission denied/.test(edit.content)], [true, true], edit.content);
    const next = await runTool(BASE_TOOLS.bash, { command: 'echo still here' }, ctx);
    assert.deepEqual([next.isError, next.content], [false, 'still here\n[exit code 0]']);
  });

  test('a sparse terabyte costs a listing and a capped read nothing', async () => {
    assert.equal((await run('truncate -s 1099511627776 /workspace/big && mkdir -p /workspace/out && echo hi > /workspace/out/small.txt')).exitCode, 0);
    let start = performance.now();
    const entries = await sb.list('/workspace');
    assert.ok(ms(start) < 5000, `list took ${ms(start)} ms`);
    assert.equal(entries.find((e) => e.path === 'big')?.size, 1099511627776);
    start = performance.now();
    await rejectsWith(sb.readFile('/workspace/big', { maxBytes: MiB }), 'FILE_TOO_LARGE', /too large/);
    await rejectsWith(sb.readFile('/workspace/big'), 'FILE_TOO_LARGE'); // a default cap even without maxBytes
    assert.ok(ms(start) < 5000, `the capped reads took ${ms(start)} ms`);
    start = performance.now();
    const artifacts = await collectArtifacts(sb, new Map(), []);
    assert.ok(ms(start) < 10_000, `artifact collection took ${ms(start)} ms`);
    assert.ok(artifacts.events.some((e) => e.type === 'file' && e.path === 'out/small.txt'), 'the small file is an artifact');
    assert.ok(artifacts.leftOut.some((s) => s.startsWith('big ')), `the terabyte is left out: ${artifacts.leftOut.join('; ')}`);
    assert.equal((await run('ps -o args | grep -c "[c]at "')).stdout, '0\n', 'no reader left running');
    await run('rm /workspace/big');
  });

  test('a listing stops at its entry cap, quickly, and says so in the log', async () => {
    assert.equal((await run(`mkdir /workspace/lots && cd /workspace/lots && seq ${LIST_LIMITS.entries + 50} | xargs touch && mkdir 'ünï cödé' && touch 'ünï cödé/ok'`, 60_000)).exitCode, 0);
    const before = logLines.length;
    const start = performance.now();
    const entries = await sb.list('/workspace/lots');
    assert.ok(ms(start) < 10_000, `list took ${ms(start)} ms`);
    assert.equal(entries.length, LIST_LIMITS.entries);
    assert.ok(logLines.slice(before).some((l) => l.msg === 'docker sandbox listing cut short' && l.entries === LIST_LIMITS.entries), 'the cut is logged');
    assert.deepEqual((await sb.list('/workspace/lots/ünï cödé')).map((e) => e.path), ['ok'], 'names in UTF-8 with spaces');
    await run('rm -r /workspace/lots', 60_000);
  });

  test('a fifo or a device is refused at once, never read or written without end', async () => {
    assert.equal((await run('mkfifo /workspace/pipe && ln -s /dev/zero /workspace/zero')).exitCode, 0);
    const start = performance.now();
    await rejectsWith(sb.readFile('/workspace/pipe'), 'FILE_NOT_FOUND', /not a regular file/);
    await rejectsWith(sb.writeFile('/workspace/pipe', enc('x')), 'FILE_NOT_FOUND', /not a regular file/);
    await rejectsWith(sb.readFile('/workspace/zero'), 'FILE_NOT_FOUND', /not a regular file/);
    await rejectsWith(sb.readFile('/dev/zero'), 'FILE_NOT_FOUND', /not a regular file/);
    assert.ok(ms(start) < 5000, `took ${ms(start)} ms`);
    const types = new Map((await sb.list('/workspace')).map((e) => [e.path, e.type]));
    assert.deepEqual([types.get('pipe'), types.get('zero')], ['other', 'symlink']);
    await run('rm /workspace/pipe /workspace/zero');
  });

  test('an aborted signal stops file operations with its reason', async () => {
    const reason = new Error('run cancelled');
    const signal = AbortSignal.abort(reason);
    await assert.rejects(sb.readFile('/workspace/out/small.txt', { signal }), (e) => e === reason);
    await assert.rejects(sb.list('/workspace', { signal }), (e) => e === reason);
    await assert.rejects(sb.writeFile('/workspace/aborted.txt', enc('x'), { signal }), (e) => e === reason);
    await rejectsWith(sb.readFile('/workspace/aborted.txt'), 'FILE_NOT_FOUND');
  });

  test('writing past diskMb fails with ENOSPC inside the sandbox, and the host disk pays nothing', async () => {
    const split = storageSplit(64);
    const free = await hostFree();
    const r = await run(
      'for d in /workspace /tmp /dev/shm; do cat /dev/zero > $d/fill; echo "$d $?"; done; ' +
        'echo x > /rootfs-file || echo "root refused"; ' +
        'head -c 32m /dev/zero > /proc/1/fd/1; ' + // the container's own stdout: no log file behind it
        'df -k /workspace /tmp /dev/shm | tail -n 3',
      60_000,
    );
    const freed = free - (await hostFree());
    assert.equal(r.stderr.match(/No space left on device/g)?.length, 3, r.stderr);
    assert.match(r.stderr, /Read-only file system/);
    const lines = r.stdout.trim().split('\n');
    assert.deepEqual(lines.slice(0, 4), ['/workspace 1', '/tmp 1', '/dev/shm 1', 'root refused']);
    const df = lines.slice(4).map((l) => l.trim().split(/\s+/).slice(1, 3).map(Number)); // [size, used] in KiB
    const shares = [split.workspaceMb, split.tmpMb, split.shmMb].map((m) => m * 1024);
    assert.deepEqual(df, shares.map((k) => [k, k]), `each place is full at exactly its share: ${lines.slice(4).join(' | ')}`);
    assert.equal(shares.reduce((a, b) => a + b, 0), 64 * 1024, 'all of it together is diskMb');
    // Other helpers share this disk, so allow a margin; the sandbox itself wrote nothing there.
    assert.ok(freed < (64 + 64) * MiB, `host free space dropped by ${freed} bytes`);
    // The file API says so too, and the sandbox lives on.
    await rejectsWith(sb.writeFile('/workspace/more.txt', enc('more')), 'NO_SPACE', /no space/);
    await rejectsWith(sb.writeFile('/tmp/more.txt', randomBytes(64 * 1024)), 'NO_SPACE');
    assert.equal((await run('rm /workspace/fill /tmp/fill /dev/shm/fill && echo alive')).stdout, 'alive\n');
    await sb.writeFile('/workspace/more.txt', enc('room again'));
    assert.equal(dec(await sb.readFile('/workspace/more.txt')), 'room again');
  });
});

describe('the Docker provider', { timeout: 120_000 }, () => {
  test('reports the memory one sandbox reserves and the engine host\'s memory', async () => {
    const provider = createDockerProvider(dockerSettings({ memoryMb: 100, diskMb: 200 }));
    assert.equal(provider.reservedMemoryMb(), 300, 'memoryMb plus the storage kept in memory');
    const writable = createDockerProvider(dockerSettings({ memoryMb: 100, diskMb: 200, readOnlyRootfs: false }));
    assert.equal(writable.reservedMemoryMb(), 300 - storageSplit(200).tmpMb, 'a writable root layer is on disk, not in memory');
    const info = await docker.info();
    assert.equal(await provider.hostMemoryMb(), Math.floor(info.MemTotal / MiB));
    const dead = createDockerProvider(dockerSettings(), { docker: new Docker({ socketPath: join(tmpdir(), `sandcaster-none-${process.pid}.sock`) }) });
    assert.equal(await dead.hostMemoryMb(), undefined);
    // The reservation is what the container gets.
    const instance = instanceId('mem');
    const sb = await provider.create({ runId: 'run_mem', instanceId: instance, timeoutSecs: 60 });
    try {
      assert.equal((await docker.getContainer(sb.id).inspect()).HostConfig.Memory, 300 * MiB);
    } finally {
      await sb.destroy();
    }
  });

  test('storage shares add up to diskMb', () => {
    for (const diskMb of [32, 64, 100, 1024, 4096, 1_048_576]) {
      const s = storageSplit(diskMb);
      assert.equal(s.workspaceMb + s.tmpMb + s.shmMb, diskMb, `diskMb ${diskMb}`);
      assert.ok(s.workspaceMb >= diskMb / 2 && s.tmpMb >= 1 && s.shmMb >= 1 && s.shmMb <= 64, `shares of ${diskMb}: ${JSON.stringify(s)}`);
    }
    assert.deepEqual(storageSplit(1024), { workspaceMb: 704, tmpMb: 256, shmMb: 64 });
  });

  test('a writable root is bounded by a quota, or the create fails with a hint (never unbounded)', async () => {
    const instance = instanceId('rw');
    const provider = createDockerProvider(dockerSettings({ readOnlyRootfs: false }));
    const outcome = await provider.create({ runId: 'run_rw', instanceId: instance, timeoutSecs: 60 }).then(
      async (sb) => {
        const h = (await docker.getContainer(sb.id).inspect()).HostConfig as { StorageOpt?: Record<string, string> };
        await sb.destroy();
        assert.equal(h.StorageOpt?.size, `${storageSplit(64).tmpMb}M`, 'the root layer has a quota');
        return 'bounded';
      },
      (err) => {
        assert.ok(err instanceof SandboxError && err.code === 'SANDBOX_ERROR', String(err));
        assert.match(err.hint ?? '', /readOnlyRootfs/);
        return 'refused';
      },
    );
    assert.ok(outcome === 'bounded' || outcome === 'refused', outcome);
    assert.deepEqual(await leftovers(instance), { containers: 0, volumes: 0 });
  });

  test('a failed file operation maps to a tool-level code whatever shell or utilities said it', () => {
    const cases: Array<[string, number | null, string, string]> = [
      ['busybox sh, read-only', 2, "/bin/sh: can't create /etc/x: Read-only file system", 'PERMISSION_DENIED'],
      ['dash, permission', 2, 'sh: 1: cannot create /etc/passwd: Permission denied', 'PERMISSION_DENIED'],
      ['bash, permission', 1, 'bash: /etc/passwd: Permission denied', 'PERMISSION_DENIED'],
      ['coreutils mkdir over a file', 1, "mkdir: cannot create directory '/workspace/f': File exists", 'FILE_NOT_FOUND'],
      ['busybox mkdir under a file', 1, "mkdir: can't create directory '/workspace/f/x': Not a directory", 'FILE_NOT_FOUND'],
      ['coreutils cat, missing', 1, 'cat: /workspace/x: No such file or directory', 'FILE_NOT_FOUND'],
      ['full', 1, 'cat: write error: No space left on device', 'NO_SPACE'],
      ['dash without cat', 127, 'sh: 1: exec: cat: not found', 'FILE_ERROR'],
      ['busybox without stat', 127, 'stat: not found', 'FILE_ERROR'],
      ['pids limit reached', 126, 'OCI runtime exec failed: exec failed: unable to start container process', 'FILE_ERROR'],
    ];
    for (const [what, exitCode, stderr, code] of cases) {
      const err = fileFailure('write', '/p', exitCode, stderr, 'mkdir and cat');
      assert.equal(err.code, code, `${what}: ${err.message}`);
    }
    assert.match(fileFailure('read', '/p', 127, 'sh: cat: not found', 'cat').message, /lacks a utility.*cat/);
  });
});

/** A pass-through proxy to the real engine that never answers a DELETE of the containers named in `held`. */
async function holdingProxy(held: Set<string>) {
  const path = join(tmpdir(), `sandcaster-hold-${process.pid}-${randomBytes(3).toString('hex')}.sock`);
  rmSync(path, { force: true });
  const conns = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect('/var/run/docker.sock');
    conns.add(client).add(upstream);
    let holding = false;
    client.on('data', (chunk: Buffer) => {
      const target = /^DELETE (?:\/v[\d.]+)?\/containers\/([^/?\s]+)/m.exec(chunk.toString('latin1'))?.[1];
      if (target && held.has(target)) holding = true;
      if (!holding) upstream.write(chunk);
    });
    upstream.pipe(client);
    const drop = () => (client.destroy(), upstream.destroy());
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((r) => server.listen(path, r));
  return { docker: new Docker({ socketPath: path }), close: () => (server.close(), conns.forEach((s) => s.destroy())) };
}

describe('removal that hangs', { timeout: 120_000 }, () => {
  test('the reaper removes the other orphans when one removal hangs, and destroy is bounded', async () => {
    const instance = instanceId('reap');
    const held = new Set<string>();
    const proxy = await holdingProxy(held);
    const direct = createDockerProvider(dockerSettings());
    const proxied = createDockerProvider(dockerSettings(), { docker: proxy.docker, engineTimeoutMs: 1500, removeTimeoutMs: 3000 });
    try {
      const [a, b, stuck, c] = await Promise.all(['run_a', 'run_b', 'run_stuck', 'run_c'].map((runId) => direct.create({ runId, instanceId: instance, timeoutSecs: 60 })));
      held.add(stuck!.id);
      const before = logLines.length;
      let start = performance.now();
      assert.equal(await proxied.reap(instance, new Set()), 3, 'every orphan but the stuck one');
      assert.ok(ms(start) < 10_000, `reap took ${ms(start)} ms`);
      const left = await docker.listContainers({ all: true, filters: { label: [`sandcaster.instance=${instance}`] } });
      assert.deepEqual(left.map((x) => x.Labels['sandcaster.run']), ['run_stuck']);
      assert.ok(logLines.slice(before).some((l) => l.msg === 'could not reap a docker sandbox; will retry' && l.container === stuck!.id), 'the failure is logged');
      for (const s of [a, b, c]) await rejectsWith(s!.exec('true', { timeoutMs: 5000 }), 'SANDBOX_LOST');

      // destroy of a sandbox whose removal hangs gives up in bounded time; the reaper gets it later.
      const victim = await proxied.create({ runId: 'run_victim', instanceId: instance, timeoutSecs: 60 });
      held.add((await docker.getContainer(victim.id).inspect()).Name.slice(1));
      start = performance.now();
      await rejectsWith(victim.destroy(), 'SANDBOX_ERROR');
      assert.ok(ms(start) < 6000, `destroy took ${ms(start)} ms`);
      // Next round, with the engine answering again, both are gone.
      held.clear();
      assert.equal(await proxied.reap(instance, new Set()), 2);
      assert.deepEqual(await leftovers(instance), { containers: 0, volumes: 0 });
    } finally {
      proxy.close();
    }
  });
});

describe('a run whose file tools are refused', { timeout: 120_000 }, () => {
  test('goes on: each refusal is a tool_result error and the run completes', async () => {
    const model = await startFakeAnthropic([
      {
        toolCalls: [
          { name: 'write_file', input: { path: '/etc/hostname', content: 'pwned' } },
          { name: 'write_file', input: { path: '/etc/passwd', content: 'pwned' } },
          { name: 'bash', input: { command: 'ln -s /etc /workspace/etc-link' } },
        ],
      },
      { toolCalls: [{ name: 'write_file', input: { path: 'etc-link/passwd', content: 'pwned' } }] },
      { toolCalls: [{ name: 'bash', input: { command: "stat -c '%u:%g %n' notes notes/in.txt; cat notes/in.txt; echo carried on" } }] },
      { text: 'done' },
    ]);
    const s = await startTestServer({ env: { ANTHROPIC_API_KEY: 'sk-ant-test-hostile', ANTHROPIC_BASE_URL: model.url, SANDCASTER_SANDBOX_PROVIDER: 'docker' } });
    try {
      const events = await readEvents(await s.query({ prompt: 'try it', model: 'sonnet', files: [{ path: 'notes/in.txt', content: 'uploaded\n' }] }));
      const results = events.filter((e) => e.type === 'tool_result');
      // The calls of one turn run in parallel, so their results may come in any order.
      assert.deepEqual(
        results.map((r) => `${r.toolName} ${r.isError}`).sort(),
        ['bash false', 'bash false', 'write_file true', 'write_file true', 'write_file true'],
        JSON.stringify(results),
      );
      for (const r of results.filter((x) => x.toolName === 'write_file')) assert.match(r.content, /permission denied|read-only/i);
      // Uploads (placed in one archive upload) belong to the sandbox user, folders too.
      assert.match(results.at(-1)!.content, /^1000:1000 notes\n1000:1000 notes\/in.txt\nuploaded\ncarried on\n/);
      const result = events.at(-1)!;
      assert.deepEqual([result.type, result.subtype], ['result', 'success'], JSON.stringify(result));
    } finally {
      await s.stop();
      await model.close();
    }
  });
});
