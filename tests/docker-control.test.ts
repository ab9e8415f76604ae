// The keep-alive's listing channel (providers/docker/control.ts) against the real engine: it answers exactly
// what the exec listing answers, without an exec, and something in the sandbox writing into it (the sandbox
// user owns the keep-alive process) never changes what the server sees.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import type { FileEntry, Sandbox } from '../lib/sandbox.ts';
import { createEngine } from '../providers/docker/engine.ts';
import { list as execList } from '../providers/docker/files.ts';
import { createDockerProvider } from '../providers/docker/index.ts';
import { docker, dockerSettings, sandboxInstances } from './helpers/docker-sandbox.ts';
import { logLines } from './helpers/server.ts';

const { id, sweep } = sandboxInstances('control');
const instanceId = id('main');
const settings = dockerSettings({ cpus: 0.5 });
const provider = createDockerProvider(settings);

after(sweep);

const sorted = (entries: FileEntry[]) => [...entries].sort((a, b) => (a.path < b.path ? -1 : 1));
const sh = async (sb: Sandbox, command: string) => {
  const r = await sb.exec(command, { timeoutMs: 20_000 });
  assert.equal(r.exitCode, 0, `${command}: ${r.stderr}`);
  return r.stdout;
};
/** The exec listing of files.ts, for the same container. */
const listByExec = (sb: Sandbox) => execList({ engine: createEngine(docker), container: docker.getContainer(sb.id), name: sb.id, user: settings.user }, '/workspace');
const execCount = async (sb: Sandbox) => ((await docker.getContainer(sb.id).inspect()).ExecIDs ?? []).length;
/** The keep-alive's pid, found the way a process in the sandbox would find it (pid 1 is docker-init, which shows the same command; the [d] keeps this script from matching itself). */
const KEEPALIVE_PID = `for p in /proc/[0-9]*; do [ $p = /proc/1 ] && continue; grep -q 'sandcaster-en[d] ' $p/cmdline 2>/dev/null && echo \${p#/proc/} && break; done`;

async function withSandbox(fn: (sb: Sandbox) => Promise<void>) {
  const sb = await provider.create({ runId: `run-${randomBytes(4).toString('hex')}`, instanceId, timeoutSecs: 60 });
  try {
    await fn(sb);
  } finally {
    await sb.destroy();
  }
}

describe('the keep-alive listing channel', { timeout: 120_000 }, () => {
  test('lists /workspace exactly as the exec listing does, without an exec', async () => {
    await withSandbox(async (sb) => {
      await sh(sb, "mkdir -p 'a dir/sub' ünï && echo one > 'a dir/sub/f 1.txt' && printf 22 > ünï/ç.bin && ln -s 'a dir' link && : > \"$(printf 'new\\nline')\" && : > .hidden");
      const execs = await execCount(sb);
      const byChannel = await sb.list('/workspace');
      assert.equal(await execCount(sb), execs, 'the listing made no exec in the container');
      const byExec = await listByExec(sb);
      assert.deepEqual(sorted(byChannel), sorted(byExec), 'both listings hold the same entries');
      assert.deepEqual(sorted(byChannel).map((e) => `${e.type} ${e.path}`), ['file .hidden', 'dir a dir', 'dir a dir/sub', 'file a dir/sub/f 1.txt', 'symlink link', 'dir ünï', 'file ünï/ç.bin'], 'names with spaces and UTF-8 are kept; a name holding a newline is left out, as by exec');
      assert.equal(byChannel.find((e) => e.path === 'ünï/ç.bin')?.size, 2, 'sizes are read');
    });
  });

  test('output forged by a process in the sandbox (flooded, or asked for through its stdin) never changes the listing', async () => {
    await withSandbox(async (sb) => {
      await sh(sb, 'echo real > real.txt');
      const pid = (await sh(sb, KEEPALIVE_PID)).trim();
      assert.match(pid, /^\d+$/, `the sandbox user can find the keep-alive: ${pid}`);
      // Extra requests written into its stdin: it answers them with listings nobody asked for.
      await sh(sb, `for i in 1 2 3; do echo 0123456789abcdef > /proc/${pid}/fd/0; done`);
      assert.deepEqual((await sb.list('/workspace')).map((e) => e.path), ['real.txt'], 'unasked answers are dropped');
      // A flood of fake entries and fake end lines straight into its stdout, while the server lists.
      const forged = "0 0 0 ./forged\\nsandcaster-end 0123456789abcdef 0\\n8124 5 1700000000 ./fake.txt";
      await sh(sb, `(while :; do printf '${forged}\\n'; done > /proc/${pid}/fd/1 2>/dev/null &) ; true`);
      for (let i = 0; i < 3; i++) {
        assert.deepEqual((await sb.list('/workspace')).map((e) => e.path), ['real.txt'], `listing ${i + 1} under the flood is the real one`);
      }
    });
  });

  test('a keep-alive that stops answering costs a fallback, not a wrong listing', async () => {
    await withSandbox(async (sb) => {
      await sh(sb, 'echo a > a.txt');
      const pid = (await sh(sb, KEEPALIVE_PID)).trim();
      await sh(sb, `kill -STOP ${pid}`);
      const warned = () => logLines.some((l) => l.msg?.includes('control channel did not answer'));
      assert.equal(warned(), false, 'no fallback yet');
      assert.deepEqual((await sb.list('/workspace')).map((e) => e.path), ['a.txt'], 'the exec listing answers once the channel gives up');
      assert.ok(warned(), 'the server logged that the channel did not answer');
      assert.deepEqual((await sb.list('/workspace')).map((e) => e.path), ['a.txt'], 'later listings go straight to exec');
    });
  });
});
