// The sandbox provider contract (lib/sandbox.ts): one suite every backend must pass, whatever engine or runtime
// is under it. tests/provider-contract.test.ts runs it against Docker and the fake E2B; tests/engines.test.ts
// against Docker with gVisor (runsc) and against Podman. Every case asserts the product-level behaviour, not a
// provider's quirks.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { SandboxError, type CreateOptions, type Sandbox, type SandboxProvider, type SandboxProviderName } from '../../lib/sandbox.ts';

export interface Harness {
  provider: SandboxProvider;
  teardown(): Promise<void>;
}

const T = { timeoutMs: 15_000 };
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** Settles with `p`, or fails the test when `p` has not settled after `ms` (a hang is a contract failure). */
function within<V>(p: Promise<V>, ms: number, what: string): Promise<V> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms)));
  return Promise.race([p, hang]).finally(() => clearTimeout(timer));
}

async function rejectsWithCode(p: Promise<unknown>, codes: string[], what: string): Promise<SandboxError> {
  const err = await within(
    p.then(
      () => assert.fail(`${what}: expected a SandboxError ${codes.join('/')}, but it succeeded`),
      (e: unknown) => e,
    ),
    30_000,
    what,
  );
  assert.ok(err instanceof SandboxError, `${what}: expected a SandboxError, got ${String(err)}`);
  assert.ok(codes.includes(err.code), `${what}: expected ${codes.join('/')}, got ${err.code}: ${err.message}`);
  return err;
}

/**
 * The shared contract: every provider must pass every case. `label` names the suite when one provider runs on
 * several engines (default: the provider's name); `skip` skips it, saying why.
 */
export function providerContract(name: SandboxProviderName, setup: () => Promise<Harness>, opts: { label?: string; skip?: string } = {}): void {
  const label = opts.label ?? name;
  describe(`sandbox provider contract: ${label}`, { skip: opts.skip }, () => {
    let h: Harness;
    const made: Sandbox[] = [];
    const instanceId = `inst_contract_${label.replace(/[^a-z0-9]/gi, '')}_${randomBytes(4).toString('hex')}`;

    before(async () => {
      h = await setup();
    });
    afterEach(async () => {
      await Promise.allSettled(made.splice(0).map((s) => s.destroy()));
    });
    after(async () => {
      // Whatever a failed case left behind of this instance.
      for (const inst of [instanceId, `${instanceId}_reap`, `${instanceId}_other`]) await h?.provider.reap(inst, new Set()).catch(() => undefined);
      await h?.teardown();
    });

    async function create(extra: Partial<CreateOptions> = {}): Promise<Sandbox> {
      const sbx = await within(
        h.provider.create({ runId: `run_contract_${randomBytes(6).toString('hex')}`, instanceId, timeoutSecs: 300, ...extra }),
        60_000,
        'create',
      );
      made.push(sbx);
      return sbx;
    }

    test('create: an available provider makes a sandbox with an id', async () => {
      assert.equal(h.provider.name, name);
      assert.equal(await h.provider.available(), true);
      const sbx = await create();
      assert.equal(sbx.provider, name);
      assert.equal(typeof sbx.id, 'string');
      assert.ok(sbx.id.length > 0, 'a non-empty id');
      assert.equal((await sbx.exec('echo alive', T)).stdout, 'alive\n');
    });

    test('exec: stdout and stderr kept apart; exit codes 0 and 3; a missing command is 127', async () => {
      const sbx = await create();
      const r = await sbx.exec('echo out1; echo err1 >&2; echo out2; echo err2 >&2; exit 3', T);
      assert.deepEqual(r, { stdout: 'out1\nout2\n', stderr: 'err1\nerr2\n', exitCode: 3, timedOut: false });
      const ok = await sbx.exec('true', T);
      assert.deepEqual(ok, { stdout: '', stderr: '', exitCode: 0, timedOut: false });
      const missing = await sbx.exec('definitely-not-a-command-xyz --flag', T);
      assert.equal(missing.exitCode, 127);
      assert.equal(missing.timedOut, false);
      assert.equal(missing.stdout, '');
      assert.match(missing.stderr, /definitely-not-a-command-xyz/);
      assert.match(missing.stderr, /not found/);
      // Output that is large and multi-byte arrives whole and correctly decoded, whatever the chunking.
      const big = await sbx.exec("head -c 300000 /dev/zero | tr '\\000' a; i=0; while [ $i -lt 3000 ]; do printf 'é€😀'; i=$((i+1)); done", T);
      assert.equal(big.exitCode, 0);
      assert.equal(big.stdout.length, 300000 + 3000 * 'é€😀'.length);
      assert.equal(big.stdout.slice(0, 300000), 'a'.repeat(300000));
      assert.equal(big.stdout.slice(300000), 'é€😀'.repeat(3000));
    });

    test('exec: output streams to the callbacks while the command runs', async () => {
      const sbx = await create();
      const out: string[] = [];
      const err: string[] = [];
      let firstOutAt = 0;
      let firstErrAt = 0;
      const t0 = Date.now();
      const r = await sbx.exec('echo first; echo warn >&2; sleep 1.5; echo second; echo warn2 >&2', {
        ...T,
        onStdout: (c) => {
          firstOutAt ||= Date.now();
          out.push(c);
        },
        onStderr: (c) => {
          firstErrAt ||= Date.now();
          err.push(c);
        },
      });
      const end = Date.now();
      assert.equal(r.exitCode, 0);
      assert.equal(r.stdout, 'first\nsecond\n');
      assert.equal(r.stderr, 'warn\nwarn2\n');
      assert.equal(out.join(''), r.stdout, 'the callbacks saw exactly the stdout');
      assert.equal(err.join(''), r.stderr, 'the callbacks saw exactly the stderr');
      assert.ok(firstOutAt > 0 && end - firstOutAt >= 1000, `first stdout chunk ${firstOutAt - t0} ms after start, command ended at ${end - t0} ms`);
      assert.ok(firstErrAt > 0 && end - firstErrAt >= 1000, `first stderr chunk ${firstErrAt - t0} ms after start, command ended at ${end - t0} ms`);
    });

    test('exec: the working directory is /workspace unless cwd says otherwise', async () => {
      const sbx = await create();
      assert.equal((await sbx.exec('pwd', T)).stdout, '/workspace\n');
      assert.equal((await sbx.exec('pwd', { ...T, cwd: '/tmp' })).stdout, '/tmp\n');
      assert.equal((await sbx.exec('pwd', T)).stdout, '/workspace\n', 'a cwd does not stick');
      // The sandbox user can write its workspace.
      const w = await sbx.exec('echo hi > w.txt && cat w.txt', T);
      assert.deepEqual([w.exitCode, w.stdout], [0, 'hi\n']);
    });

    test('exec: a timeout kills the command and what it started; the next exec works', async () => {
      const sbx = await create();
      const t0 = Date.now();
      const r = await within(
        sbx.exec('sleep 300 & echo $! > /workspace/bg.pid; echo started; sleep 300; echo never; touch /workspace/ran-on', { timeoutMs: 1000 }),
        20_000,
        'exec with a 1 s timeout',
      );
      const took = Date.now() - t0;
      assert.equal(r.timedOut, true);
      assert.equal(r.exitCode, null);
      assert.equal(r.stdout, 'started\n', 'output before the timeout is kept');
      assert.ok(took >= 900, `returned before the timeout (${took} ms)`);
      assert.ok(took < 5000, `a 1 s timeout took ${took} ms`);
      const check = await sbx.exec('kill -0 "$(cat /workspace/bg.pid)" 2>/dev/null && echo alive || echo gone; ps -o args | grep -c "[s]leep 300"', T);
      assert.equal(check.stdout, 'gone\n0\n', 'the backgrounded child and the foreground sleep are gone');
      await new Promise((r) => setTimeout(r, 300));
      await rejectsWithCode(sbx.readFile('/workspace/ran-on'), ['FILE_NOT_FOUND'], 'the command went on past its timeout');
      assert.deepEqual(await sbx.exec('echo still here', T), { stdout: 'still here\n', stderr: '', exitCode: 0, timedOut: false });
    });

    test('exec: aborting the signal kills the command and rejects with the signal reason', async () => {
      const sbx = await create();
      const ac = new AbortController();
      const reason = new Error('the run was cancelled');
      setTimeout(() => ac.abort(reason), 500);
      const t0 = Date.now();
      await within(
        assert.rejects(sbx.exec('sleep 311 & sleep 310', { timeoutMs: 60_000, signal: ac.signal }), (e) => e === reason),
        20_000,
        'aborted exec',
      );
      const took = Date.now() - t0;
      assert.ok(took < 5000, `abort took ${took} ms to reject`);
      // "Aborting kills the command like a timeout": nothing it started survives.
      let left = '';
      for (let i = 0; i < 20; i++) {
        left = (await sbx.exec('ps -o args | grep -c "[s]leep 31[01]"', T)).stdout;
        if (left === '0\n') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(left, '0\n', 'the aborted command and its child are killed');
      // Already aborted: rejects at once with the same reason, runs nothing.
      await assert.rejects(sbx.exec('echo ran > /workspace/ran', { ...T, signal: ac.signal }), (e) => e === reason);
      await rejectsWithCode(sbx.readFile('/workspace/ran'), ['FILE_NOT_FOUND'], 'read of a file an aborted exec must not have written');
      assert.equal((await sbx.exec('echo usable', T)).stdout, 'usable\n');
    });

    test('files: binary round trip of all 256 byte values, parents created, owned by the sandbox user', async () => {
      const sbx = await create();
      const all = new Uint8Array(256 * 40).map((_, i) => i % 256);
      await sbx.writeFile('/workspace/deep/er/still/all.bin', all);
      assert.deepEqual(await sbx.readFile('/workspace/deep/er/still/all.bin'), all);
      const size = await sbx.exec('wc -c < deep/er/still/all.bin; od -An -tu1 -N4 -j254 deep/er/still/all.bin', T);
      assert.deepEqual(size.stdout.split(/\s+/).filter(Boolean), ['10240', '254', '255', '0', '1']);
      const empty = new Uint8Array();
      await sbx.writeFile('/workspace/empty.bin', empty);
      assert.deepEqual(await sbx.readFile('/workspace/empty.bin'), empty);
      // Overwrite replaces the whole content.
      await sbx.writeFile('/workspace/deep/er/still/all.bin', enc('short'));
      assert.equal(dec(await sbx.readFile('/workspace/deep/er/still/all.bin')), 'short');
      // Written files and the folders made for them belong to the user commands run as, so tools can change them.
      const owner = await sbx.exec('id -u; stat -c %u deep deep/er/still deep/er/still/all.bin; echo more >> deep/er/still/all.bin && rm -r deep && echo changed', T);
      const [uid, ...owners] = owner.stdout.trim().split('\n');
      assert.deepEqual(owners, [uid, uid, uid, 'changed'], owner.stdout + owner.stderr);
    });

    test('files: FILE_NOT_FOUND, IS_A_DIRECTORY and FILE_TOO_LARGE', async () => {
      const sbx = await create();
      await rejectsWithCode(sbx.readFile('/workspace/nope.txt'), ['FILE_NOT_FOUND'], 'missing file');
      await rejectsWithCode(sbx.readFile('/workspace/no/such/dir/x'), ['FILE_NOT_FOUND'], 'missing parent');
      await sbx.exec('mkdir -p adir/sub && echo x > adir/sub/f', T);
      await rejectsWithCode(sbx.readFile('/workspace/adir'), ['IS_A_DIRECTORY'], 'a folder');
      await rejectsWithCode(sbx.readFile('/workspace'), ['IS_A_DIRECTORY'], 'the workspace itself');
      const data = new Uint8Array(5000).fill(7);
      await sbx.writeFile('/workspace/five-k.bin', data);
      await rejectsWithCode(sbx.readFile('/workspace/five-k.bin', { maxBytes: 4999 }), ['FILE_TOO_LARGE'], 'one byte over maxBytes');
      await rejectsWithCode(sbx.readFile('/workspace/five-k.bin', { maxBytes: 10 }), ['FILE_TOO_LARGE'], 'far over maxBytes');
      assert.deepEqual(await sbx.readFile('/workspace/five-k.bin', { maxBytes: 5000 }), data, 'exactly maxBytes is fine');
      assert.equal((await sbx.exec('cat adir/sub/f', T)).stdout, 'x\n', 'file errors leave the sandbox unharmed');
    });

    test('files: list is recursive, relative, with types and sizes', async () => {
      const sbx = await create();
      assert.deepEqual(await sbx.list('/workspace'), [], 'a new workspace is empty');
      const t0 = Date.now();
      await sbx.writeFile('/workspace/top.txt', enc('hello'));
      await sbx.writeFile('/workspace/sub/deep/x.bin', new Uint8Array(1234));
      await sbx.exec('mkdir -p emptydir sub/also && printf 123 > sub/also/y.txt', T);
      const entries = (await sbx.list('/workspace')).sort((a, b) => a.path.localeCompare(b.path));
      assert.deepEqual(
        entries.map((e) => [e.path, e.type]),
        [
          ['emptydir', 'dir'],
          ['sub', 'dir'],
          ['sub/also', 'dir'],
          ['sub/also/y.txt', 'file'],
          ['sub/deep', 'dir'],
          ['sub/deep/x.bin', 'file'],
          ['top.txt', 'file'],
        ],
      );
      const size = (p: string) => entries.find((e) => e.path === p)?.size;
      assert.equal(size('top.txt'), 5);
      assert.equal(size('sub/deep/x.bin'), 1234);
      assert.equal(size('sub/also/y.txt'), 3);
      for (const e of entries) {
        assert.ok(!e.path.startsWith('/') && !e.path.startsWith('./') && !e.path.endsWith('/'), `relative path: ${e.path}`);
        assert.ok(Math.abs(e.mtimeMs - t0) < 60_000, `mtime of ${e.path}: ${e.mtimeMs} vs ${t0}`);
      }
      assert.deepEqual(
        (await sbx.list('/workspace/sub')).map((e) => e.path).sort(),
        ['also', 'also/y.txt', 'deep', 'deep/x.bin'],
        'relative to the listed folder',
      );
      await rejectsWithCode(sbx.list('/workspace/missing'), ['FILE_NOT_FOUND'], 'listing a missing folder');
    });

    test('files: what exec writes the file API sees, and the other way round', async () => {
      const sbx = await create();
      await sbx.exec("mkdir -p made/by && printf 'from exec\\000\\377' > made/by/exec.bin", T);
      assert.deepEqual([...(await sbx.readFile('/workspace/made/by/exec.bin'))], [...enc('from exec'), 0, 255]);
      assert.ok((await sbx.list('/workspace')).some((e) => e.path === 'made/by/exec.bin' && e.type === 'file' && e.size === 11), 'list shows the file exec made');

      await sbx.writeFile('/workspace/from/api.txt', enc('from the api\n'));
      const r = await sbx.exec('cat from/api.txt; ls from', T);
      assert.equal(r.stdout, 'from the api\napi.txt\n');
      // Changed by exec after a writeFile: the file API sees the new content and size.
      await sbx.exec('echo appended >> from/api.txt', T);
      assert.equal(dec(await sbx.readFile('/workspace/from/api.txt')), 'from the api\nappended\n');
      assert.equal((await sbx.list('/workspace/from')).find((e) => e.path === 'api.txt')?.size, 22);
      await sbx.exec('rm from/api.txt', T);
      await rejectsWithCode(sbx.readFile('/workspace/from/api.txt'), ['FILE_NOT_FOUND'], 'a file exec removed');
    });

    test('files: an aborted signal stops readFile, writeFile and list with its reason', async () => {
      const sbx = await create();
      await sbx.writeFile('/workspace/kept.txt', enc('kept'));
      const reason = new Error('the run ended');
      const signal = AbortSignal.abort(reason);
      await within(assert.rejects(sbx.readFile('/workspace/kept.txt', { signal }), (e) => e === reason), 20_000, 'aborted readFile');
      await within(assert.rejects(sbx.list('/workspace', { signal }), (e) => e === reason), 20_000, 'aborted list');
      await within(assert.rejects(sbx.writeFile('/workspace/not-written.txt', enc('x'), { signal }), (e) => e === reason), 20_000, 'aborted writeFile');
      await rejectsWithCode(sbx.readFile('/workspace/not-written.txt'), ['FILE_NOT_FOUND'], 'a write whose signal was already aborted');
      assert.equal(dec(await sbx.readFile('/workspace/kept.txt')), 'kept', 'the sandbox is unharmed');
    });

    test('destroy is idempotent; using a destroyed sandbox rejects with a SandboxError, never hangs', async () => {
      const sbx = await create();
      await within(Promise.all([sbx.destroy(), sbx.destroy()]), 30_000, 'concurrent destroys');
      await within(sbx.destroy(), 30_000, 'a third destroy');
      await rejectsWithCode(sbx.exec('true', { timeoutMs: 5000 }), ['SANDBOX_LOST', 'SANDBOX_ERROR'], 'exec after destroy');
      await rejectsWithCode(sbx.readFile('/workspace/x'), ['SANDBOX_LOST', 'SANDBOX_ERROR'], 'readFile after destroy');
      await rejectsWithCode(sbx.writeFile('/workspace/x', enc('x')), ['SANDBOX_LOST', 'SANDBOX_ERROR'], 'writeFile after destroy');
      await rejectsWithCode(sbx.list('/workspace'), ['SANDBOX_LOST', 'SANDBOX_ERROR'], 'list after destroy');
    });

    test('reap destroys only the sandboxes of that instance whose run is not kept', async () => {
      const mine = `${instanceId}_reap`;
      const other = `${instanceId}_other`;
      const mk = (inst: string, runId: string) => create({ instanceId: inst, runId });
      const [a1, a2, a3, b1] = await Promise.all([mk(mine, 'run_r1'), mk(mine, 'run_r2'), mk(mine, 'run_r3'), mk(other, 'run_r1')]);
      assert.equal(await within(h.provider.reap(mine, new Set(['run_r2'])), 60_000, 'reap'), 2);
      await rejectsWithCode(a1!.exec('true', { timeoutMs: 5000 }), ['SANDBOX_LOST', 'SANDBOX_ERROR'], 'exec in a reaped sandbox');
      await rejectsWithCode(a3!.exec('true', { timeoutMs: 5000 }), ['SANDBOX_LOST', 'SANDBOX_ERROR'], 'exec in a reaped sandbox');
      assert.equal((await a2!.exec('echo kept', T)).stdout, 'kept\n', 'the kept run keeps its sandbox');
      assert.equal((await b1!.exec('echo other', T)).stdout, 'other\n', 'another instance is left alone');
      assert.equal(await h.provider.reap(mine, new Set(['run_r2'])), 0, 'nothing left to reap');
      assert.equal(await h.provider.reap(other, new Set()), 1, 'the other instance has its one');
      await rejectsWithCode(b1!.exec('true', { timeoutMs: 5000 }), ['SANDBOX_LOST', 'SANDBOX_ERROR'], 'exec in a reaped sandbox');
    });
  });
}
