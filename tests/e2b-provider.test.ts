// The E2B provider driven through the REAL e2b SDK against the local fake (tests/fixtures/fake-e2b.ts),
// whose sandboxes are Docker containers running real processes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createE2bProvider, E2B_META_INSTANCE, E2B_META_RUN } from '../providers/e2b/index.ts';
import { SandboxError, type Sandbox, type SandboxProvider } from '../lib/sandbox.ts';
import { setLogSink } from '../lib/log.ts';
import { startFakeE2b, type FakeE2b } from './fixtures/fake-e2b.ts';
import { waitFor } from './helpers/wait.ts';

let fake: FakeE2b;
let provider: SandboxProvider;
const logLines: string[] = [];
const made: Sandbox[] = [];

before(async () => {
  setLogSink((line) => logLines.push(line));
  fake = await startFakeE2b();
  Object.assign(process.env, fake.env());
  provider = createE2bProvider({ apiKey: fake.apiKey, template: 'base', allowInternetAccess: false });
});

after(async () => {
  await Promise.allSettled(made.map((s) => s.destroy()));
  await fake?.close();
  setLogSink(null);
  // Only this fake's containers: other test files may run their own fake at the same time.
  const left = execFileSync('docker', ['ps', '-aq', '--filter', `label=${fake.label}`]).toString().trim();
  assert.equal(left, '', 'no fake E2B container may outlive the suite');
});

async function create(runId = 'run_' + Math.random().toString(36).slice(2), extra: Partial<Parameters<SandboxProvider['create']>[0]> = {}) {
  const sbx = await provider.create({ runId, instanceId: 'inst-test', timeoutSecs: 300, ...extra });
  made.push(sbx);
  return sbx;
}

async function rejectsWith(p: Promise<unknown>, code: string, hint?: RegExp): Promise<SandboxError> {
  const err = await p.then(
    () => assert.fail(`expected ${code}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof SandboxError, `expected a SandboxError, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  if (hint) assert.match(err.hint ?? '', hint);
  return err;
}

test('available() reflects the API key without a network call', async () => {
  const before = fake.requests.length;
  assert.equal(await provider.available(), true);
  assert.equal(await createE2bProvider({ template: 'base', allowInternetAccess: false }).available(), false);
  assert.equal(fake.requests.length, before);
});

test('create sends template, metadata, timeout + 60 s, no internet, and no secret', async () => {
  const sbx = await create('run_meta', { timeoutSecs: 120, image: 'custom-tpl' });
  const req = fake.requests.find((r) => r.method === 'POST' && r.path === '/v2/sandboxes' && (r.body as any)?.metadata?.[E2B_META_RUN] === 'run_meta');
  assert.ok(req, 'create request recorded');
  const body = req.body as Record<string, any>;
  assert.equal(body.templateID, 'custom-tpl');
  assert.deepEqual(body.metadata, { [E2B_META_INSTANCE]: 'inst-test', [E2B_META_RUN]: 'run_meta' });
  assert.equal(body.timeout, 180);
  assert.equal(body.allow_internet_access, false);
  assert.equal(body.network?.allowPublicTraffic, false);
  assert.ok(!JSON.stringify(body).includes(fake.apiKey), 'API key must not be in the create body');
  assert.equal(req.headers['x-api-key'], fake.apiKey);
  // Nothing in the sandbox's environment either.
  const env = await sbx.exec('env', { timeoutMs: 10_000 });
  assert.ok(!env.stdout.includes(fake.apiKey), 'API key must not be in the sandbox environment');
  assert.ok(!logLines.join('').includes(fake.apiKey), 'API key must not be logged');
  assert.equal(sbx.provider, 'e2b');
  assert.ok(fake.sandboxes().some((s) => s.id === sbx.id), `sandbox ${sbx.id} is alive at E2B; alive: ${JSON.stringify(fake.sandboxes().map((s) => s.id))}`);
});

test('the default template comes from settings', async () => {
  const sbx = await create('run_default_tpl');
  assert.equal(fake.sandboxes().find((s) => s.id === sbx.id)?.templateId, 'base');
});

test('exec streams stdout and stderr, returns exit codes, runs in /workspace as the default user', async () => {
  const sbx = await create();
  const out: string[] = [];
  const err: string[] = [];
  const r = await sbx.exec('echo out; echo err >&2; pwd; id -u; exit 3', {
    timeoutMs: 10_000,
    onStdout: (c) => out.push(c),
    onStderr: (c) => err.push(c),
  });
  assert.equal(r.exitCode, 3);
  assert.equal(r.timedOut, false);
  assert.equal(r.stdout, 'out\n/workspace\n1000\n');
  assert.equal(r.stderr, 'err\n');
  assert.equal(out.join(''), r.stdout);
  assert.equal(err.join(''), r.stderr);

  // Output arrives while the command still runs.
  let firstAt = 0;
  const t0 = Date.now();
  const slow = await sbx.exec('echo first; sleep 1; echo second', {
    timeoutMs: 10_000,
    onStdout: () => (firstAt ||= Date.now()),
  });
  assert.equal(slow.exitCode, 0);
  assert.equal(slow.stdout, 'first\nsecond\n');
  assert.ok(firstAt - t0 < Date.now() - t0 - 500, 'first chunk must arrive before the command ends');

  const ok = await sbx.exec('true', { timeoutMs: 10_000, cwd: '/tmp' });
  assert.equal(ok.exitCode, 0);
  assert.equal((await sbx.exec('pwd', { timeoutMs: 10_000, cwd: '/tmp' })).stdout, '/tmp\n');
});

test('a timeout kills the command and what it started; the sandbox stays usable', async () => {
  const sbx = await create();
  const t0 = Date.now();
  const r = await sbx.exec('sleep 300 & echo $! > /workspace/bg.pid; echo started; sleep 300', { timeoutMs: 1000 });
  const took = Date.now() - t0;
  assert.equal(r.timedOut, true);
  assert.equal(r.exitCode, null);
  assert.equal(r.stdout, 'started\n');
  assert.ok(took < 6000, `timeout took ${took} ms`);
  const check = await sbx.exec('kill -0 "$(cat /workspace/bg.pid)" 2>/dev/null && echo alive || echo gone; ps -o args | grep -c "[s]leep 300"', { timeoutMs: 10_000 });
  assert.equal(check.stdout, 'gone\n0\n');
  assert.equal((await sbx.exec('echo still here', { timeoutMs: 10_000 })).stdout, 'still here\n');
});

test('aborting an exec kills it and rejects with the reason', async () => {
  const sbx = await create();
  const ac = new AbortController();
  const reason = new Error('client went away');
  const running = sbx.exec('sleep 301 & sleep 300', { timeoutMs: 60_000, signal: ac.signal });
  running.catch(() => undefined); // awaited below, once aborted
  assert.ok(await waitFor(() => fake.processes(sbx.id).some((p) => p.includes('sleep 300')), 10_000), `the command runs before the abort; processes: ${JSON.stringify(fake.processes(sbx.id))}`);
  ac.abort(reason);
  const t0 = Date.now();
  await assert.rejects(running, (e) => e === reason);
  assert.ok(Date.now() - t0 < 6000, `the abort rejects within 6 s, not at the 60 s timeout: took ${Date.now() - t0} ms`);
  const ps = await sbx.exec('ps -o args | grep -c "[s]leep 30[01]"', { timeoutMs: 10_000 });
  assert.equal(ps.stdout, '0\n');
  await assert.rejects(sbx.exec('true', { timeoutMs: 1000, signal: ac.signal }), (e) => e === reason);
});

test('binary files round-trip through nested folders, owned by the sandbox user', async () => {
  const sbx = await create();
  const data = new Uint8Array(70_000).map((_, i) => (i * 7) % 256);
  await sbx.writeFile('/workspace/a/b/c/data.bin', data);
  assert.deepEqual(await sbx.readFile('/workspace/a/b/c/data.bin'), data);
  assert.deepEqual(await sbx.readFile('/workspace/a/b/c/data.bin', { maxBytes: 70_000 }), data);
  await rejectsWith(sbx.readFile('/workspace/a/b/c/data.bin', { maxBytes: 69_999 }), 'FILE_TOO_LARGE');
  const sum = await sbx.exec('wc -c < a/b/c/data.bin; stat -c %u a/b/c/data.bin a/b', { timeoutMs: 10_000 });
  assert.equal(sum.stdout.replace(/ /g, ''), '70000\n1000\n1000\n');
  await sbx.writeFile('/workspace/empty', new Uint8Array());
  assert.equal((await sbx.readFile('/workspace/empty')).length, 0);
  // Written by a command, read through the file API.
  await sbx.exec('printf "\\000\\377x" > made.bin', { timeoutMs: 10_000 });
  assert.deepEqual([...(await sbx.readFile('/workspace/made.bin'))], [0, 255, 120]);
});

test('list is recursive and relative, with types, sizes and mtimes', async () => {
  const sbx = await create();
  const t0 = Date.now();
  await sbx.writeFile('/workspace/top.txt', new TextEncoder().encode('hello'));
  await sbx.writeFile('/workspace/sub/deep/x.txt', new TextEncoder().encode('12345678'));
  const entries = (await sbx.list('/workspace')).sort((a, b) => a.path.localeCompare(b.path));
  assert.deepEqual(
    entries.map((e) => [e.path, e.type]),
    [
      ['sub', 'dir'],
      ['sub/deep', 'dir'],
      ['sub/deep/x.txt', 'file'],
      ['top.txt', 'file'],
    ],
  );
  assert.equal(entries.find((e) => e.path === 'top.txt')?.size, 5);
  assert.equal(entries.find((e) => e.path === 'sub/deep/x.txt')?.size, 8);
  for (const e of entries) assert.ok(Math.abs(e.mtimeMs - t0) < 60_000, `mtime of ${e.path}`);
  assert.deepEqual((await sbx.list('/workspace/sub')).map((e) => e.path).sort(), ['deep', 'deep/x.txt']);
});

test('bad paths are model-visible FILE_NOT_FOUND / IS_A_DIRECTORY, not run-ending errors', async () => {
  const sbx = await create();
  await rejectsWith(sbx.readFile('/workspace/nope.txt'), 'FILE_NOT_FOUND');
  await sbx.exec('mkdir -p d; echo x > f', { timeoutMs: 10_000 });
  await rejectsWith(sbx.readFile('/workspace/d'), 'IS_A_DIRECTORY');
  await rejectsWith(sbx.writeFile('/workspace/d', new Uint8Array([1])), 'IS_A_DIRECTORY');
  await rejectsWith(sbx.writeFile('/workspace/f/under-a-file.txt', new Uint8Array([1])), 'FILE_NOT_FOUND');
  await rejectsWith(sbx.readFile('/workspace/f/x'), 'FILE_NOT_FOUND');
  await rejectsWith(sbx.list('/workspace/missing'), 'FILE_NOT_FOUND');
  await rejectsWith(sbx.list('/workspace/f'), 'FILE_NOT_FOUND');
  assert.equal((await sbx.exec('cat f', { timeoutMs: 10_000 })).stdout, 'x\n', 'the sandbox is unharmed');
});

for (const [status, hint] of [
  [401, /E2B_API_KEY/],
  [429, /rate limit|quota/i],
  [500, /retry/i],
] as const) {
  test(`create answering ${status} is SANDBOX_ERROR with a hint, promptly`, async () => {
    fake.failCreate(status, { code: status, message: `fake ${status}` });
    const before = fake.sandboxes().length;
    const t0 = Date.now();
    const err = await rejectsWith(create(), 'SANDBOX_ERROR', hint);
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
    assert.match(err.message, new RegExp(String(status === 401 ? 'credentials' : status)));
    assert.equal(fake.sandboxes().length, before);
  });
}

test('a 429 with a short Retry-After is retried by the SDK', async () => {
  fake.failCreate(429, { code: 429, message: 'slow down' }, { 'Retry-After': '1' });
  const sbx = await create();
  assert.ok(fake.sandboxes().some((s) => s.id === sbx.id), `sandbox ${sbx.id} is alive at E2B; alive: ${JSON.stringify(fake.sandboxes().map((s) => s.id))}`);
});

test('an unreachable E2B is SANDBOX_ERROR with a network hint', async () => {
  const saved = process.env.E2B_API_URL;
  process.env.E2B_API_URL = 'http://127.0.0.1:9'; // discard port: nothing listens
  try {
    await rejectsWith(create(), 'SANDBOX_ERROR', /network/);
  } finally {
    process.env.E2B_API_URL = saved;
  }
});

test('a sandbox that vanishes mid-run is SANDBOX_LOST, without hanging', async () => {
  const sbx = await create();
  const running = sbx.exec('sleep 300', { timeoutMs: 60_000 });
  running.catch(() => undefined); // it fails while we are still busy vanishing the sandbox
  assert.ok(await waitFor(() => fake.processes(sbx.id).some((p) => p.includes('sleep 300')), 10_000), `the command runs before the sandbox vanishes; processes: ${JSON.stringify(fake.processes(sbx.id))}`);
  const t0 = Date.now();
  await fake.vanish(sbx.id);
  await rejectsWith(running, 'SANDBOX_LOST');
  assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
  await rejectsWith(sbx.readFile('/workspace/x'), 'SANDBOX_LOST');
  await rejectsWith(sbx.writeFile('/workspace/x', new Uint8Array([1])), 'SANDBOX_LOST');
  await rejectsWith(sbx.exec('true', { timeoutMs: 5000 }), 'SANDBOX_LOST');
  await rejectsWith(sbx.list('/workspace'), 'SANDBOX_LOST');
  await sbx.destroy(); // gone already: still no throw
});

test('reap kills only this instance’s sandboxes whose run is not kept', async () => {
  const mk = (instanceId: string, runId: string) => provider.create({ instanceId, runId, timeoutSecs: 60 }).then((s) => (made.push(s), s));
  const [a1, a2, a3, b1] = await Promise.all([mk('inst-A', 'r1'), mk('inst-A', 'r2'), mk('inst-A', 'r3'), mk('inst-B', 'r1')]);
  const n = await provider.reap('inst-A', new Set(['r2']));
  assert.equal(n, 2);
  const aliveIds = new Set(fake.sandboxes().map((s) => s.id));
  assert.ok(!aliveIds.has(a1.id) && !aliveIds.has(a3.id), 'non-kept sandboxes of inst-A are gone');
  assert.ok(aliveIds.has(a2.id), 'kept run survives');
  assert.ok(aliveIds.has(b1.id), 'other instance untouched');
  assert.equal(await provider.reap('inst-A', new Set(['r2'])), 0);
});

test('destroy is idempotent and never throws', async () => {
  const sbx = await create();
  await Promise.all([sbx.destroy(), sbx.destroy()]);
  await sbx.destroy();
  assert.ok(!fake.sandboxes().some((s) => s.id === sbx.id), `sandbox ${sbx.id} is gone at E2B after destroy`);
  assert.equal(fake.requests.filter((r) => r.method === 'DELETE' && r.path === `/sandboxes/${sbx.id}`).length, 1);
  await rejectsWith(sbx.exec('true', { timeoutMs: 5000 }), 'SANDBOX_LOST');
});

test('aborting a create rejects at once and the late sandbox is killed', async () => {
  fake.delayCreate(1000);
  try {
    const ac = new AbortController();
    const reason = new Error('shutdown');
    const p = create('run_abort', { signal: ac.signal });
    p.catch(() => undefined); // awaited below, once aborted
    const createOf = () => fake.requests.find((r) => r.path === '/v2/sandboxes' && (r.body as any)?.metadata?.[E2B_META_RUN] === 'run_abort');
    assert.ok(await waitFor(() => createOf() !== undefined, 5000), 'the create reached E2B before the abort');
    const t0 = Date.now();
    ac.abort(reason);
    await assert.rejects(p, (e) => e === reason);
    assert.ok(Date.now() - t0 < 900, `the abort rejects at once, not when the delayed create answers: took ${Date.now() - t0} ms`);
  } finally {
    fake.delayCreate(0);
  }
  // The sandbox created after the abort is killed once it arrives.
  const killed = () => {
    const id = fake.requests.find((r) => r.path === '/v2/sandboxes' && (r.body as any)?.metadata?.[E2B_META_RUN] === 'run_abort')?.createdId;
    return id !== undefined && fake.requests.some((r) => r.method === 'DELETE' && r.path === `/sandboxes/${id}`) && !fake.sandboxes().some((s) => s.id === id);
  };
  assert.ok(await waitFor(killed, 10_000, 100), 'the sandbox created after the abort is killed once it arrives');
});

test('the fake records no request it could not answer', () => {
  assert.deepEqual(fake.requests.filter((r) => r.unknown).map((r) => `${r.method} ${r.path}`), []);
});
