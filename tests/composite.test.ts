// Composite runs (docs/api.md#composite-runs, issue 6), end to end: a real server, the real Anthropic SDK against the
// fake model, real Docker sandboxes. The agent spawns, drives, transfers between and kills secondaries; the
// guardrails refuse with tool errors the model sees; request values only tighten sandcaster.json; every
// path out of a run (success, cancel, timeout) destroys the secondaries first, then main.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeAnthropic, type FakeModelServer } from './fixtures/fake-models.ts';
import { assertWellFormedRun, readEvents } from './helpers/sse.ts';
import { runningIn } from './helpers/docker-sandbox.ts';
import { logLines, managedContainers, startTestServer, waitFor, type TestServer } from './helpers/server.ts';

let fake: FakeModelServer;
before(async () => {
  fake = await startFakeAnthropic();
});
after(async () => {
  await fake.close();
});

const BASE_TOOLS = ['bash', 'read_file', 'write_file', 'edit_file', 'list_files'];
const COMPOSITE_TOOLS = ['spawn_sandbox', 'exec_in', 'transfer_files', 'kill_sandbox', 'list_sandboxes'];

/** A server for the enclosing describe, with `config` as its sandcaster.json; each test must leave no container. */
function serverFor(config?: object): () => TestServer {
  let s: TestServer | undefined;
  before(async () => {
    s = await startTestServer({
      env: { ANTHROPIC_API_KEY: 'sk-ant-composite-test-key', ANTHROPIC_BASE_URL: fake.url, SANDCASTER_SANDBOX_PROVIDER: 'docker' },
      config,
    });
  });
  after(async () => {
    await s?.stop();
  });
  afterEach(async () => {
    const left = async () => (await managedContainers(s!.app.store.instanceId)).length === 0;
    assert.ok(await waitFor(left, 5000), 'no container of this instance is left after the test');
  });
  return () => s!;
}

type Ev = Record<string, any>;
const sys = (events: Ev[], subtype: string) => events.filter((e) => e.type === 'system' && e.subtype === subtype);

/** Tool calls in the order the model asked for them, each with its result. */
function calls(events: Ev[]): { use: Ev; result: Ev }[] {
  return events
    .filter((e) => e.type === 'tool_use')
    .map((use) => {
      const results = events.filter((e) => e.type === 'tool_result' && e.id === use.id);
      assert.equal(results.length, 1, `one tool_result for ${use.id} (${use.toolName})`);
      return { use, result: results[0]! };
    });
}

/** The tool_result block the model got back for a call (from the fake's recorded requests). */
function seenByModel(id: string): { is_error?: boolean; content: unknown } {
  // Newest first: call ids repeat across tests, and a later request carries the whole conversation.
  for (const r of [...fake.requests].reverse()) {
    for (const m of r.body?.messages ?? []) {
      if (!Array.isArray(m.content)) continue;
      const block = m.content.find((b: any) => b.type === 'tool_result' && b.tool_use_id === id);
      if (block) return block;
    }
  }
  assert.fail(`the model never saw a result for ${id}`);
}

const contentText = (c: unknown) => (typeof c === 'string' ? c : JSON.stringify(c));

/** Asserts a refused call: a tool error the model saw, whose message matches. */
function assertRefused(call: { use: Ev; result: Ev }, why: RegExp): void {
  assert.equal(call.result.isError, true, `${call.use.toolName} ${JSON.stringify(call.use.input)} is refused: ${call.result.content}`);
  assert.match(call.result.content, why);
  const seen = seenByModel(call.use.id);
  assert.equal(seen.is_error, true, 'the model saw it as an error');
  assert.match(contentText(seen.content), why);
}

function assertOk(call: { use: Ev; result: Ev }): void {
  assert.equal(call.result.isError, false, `${call.use.toolName} ${JSON.stringify(call.use.input)} succeeds: ${call.result.content}`);
}

const spawn = (name: string, extra: object = {}) => ({ name: 'spawn_sandbox', input: { name, ...extra } });
const execIn = (sandbox: string, command: string, extra: object = {}) => ({ name: 'exec_in', input: { sandbox, command, ...extra } });
const kill = (name: string) => ({ name: 'kill_sandbox', input: { name } });

async function row(s: TestServer, runId: string): Promise<Ev> {
  const res = await s.fetch(`/runs/${runId}`);
  assert.equal(res.status, 200);
  return res.json();
}

/** sandbox_destroyed events: every secondary before main, and main right before the terminal event. */
function assertTeardownOrder(events: Ev[]): void {
  const destroyed = sys(events, 'sandbox_destroyed');
  const mainAt = events.findIndex((e) => e.subtype === 'sandbox_destroyed' && e.sandbox === 'main');
  assert.ok(mainAt > 0, 'main was destroyed');
  assert.equal(mainAt, events.length - 2, 'main is destroyed last, just before the terminal event');
  for (const d of destroyed) if (d.sandbox !== 'main') assert.ok(events.indexOf(d) < mainAt, `${d.sandbox} destroyed before main`);
}

describe('composite: the full workflow', () => {
  const server = serverFor({ composite: {} });

  test('spawn two in one turn (concurrently), exec in each, transfer text and binary files, kill, list, teardown order, sandboxCount', async () => {
    const s = server();
    const made = [
      'mkdir -p out/sub',
      "printf 'hello\\nworld\\n' > out/sub/t.txt",
      "printf 'top\\n' > out/top.txt",
      "printf '\\000\\001\\377\\200bin\\r\\n' > out/b.bin",
      "printf 'not me\\n' > out/skip.dat",
      'echo made-in-a',
    ].join(' && ');
    fake.setScript([
      { text: 'Spawning two.', toolCalls: [spawn('a'), spawn('b')] },
      { toolCalls: [execIn('a', made), execIn('b', 'echo in-b; exit 3'), execIn('main', 'echo in-main')] },
      {
        toolCalls: [
          { name: 'transfer_files', input: { from: 'a', to: 'b', paths: ['out/**/*.txt'], destDir: 'in' } },
          { name: 'transfer_files', input: { from: 'a', to: 'b', paths: ['out/b.bin'], destDir: '/workspace/bin' } },
        ],
      },
      {
        toolCalls: [
          execIn('b', 'cat in/out/sub/t.txt'),
          execIn('b', 'od -An -tx1 -v bin/out/b.bin'),
          execIn('b', "stat -c '%u %s %n' in/out/top.txt bin/out/b.bin; ls in/out bin/out; test ! -e in/out/skip.dat && test ! -e bin/out/skip.dat && echo no-skip"),
        ],
      },
      { toolCalls: [kill('a')] },
      { toolCalls: [execIn('a', 'echo still here?'), { name: 'list_sandboxes', input: {} }] },
      { text: 'Done.' },
    ]);
    const res = await s.query({ prompt: 'compose', model: 'haiku' });
    const runId = res.headers.get('x-run-id')!;
    const events = await readEvents(res);
    const terminal = assertWellFormedRun(events);
    assert.equal(terminal.type, 'result', JSON.stringify(terminal));
    assert.equal(terminal.subtype, 'success');
    assert.equal(terminal.content, 'Done.');
    assert.equal(terminal.numTurns, 7);

    const all = calls(events);
    assert.equal(all.length, 13);
    for (const { use, result } of all) {
      assert.equal(typeof use.sandbox, 'string', `tool_use ${use.toolName} names its sandbox`);
      assert.equal(result.sandbox, use.sandbox, `tool_result ${use.toolName} names the same sandbox`);
    }
    const [spawnA, spawnB, execA, execB, execMain, xferGlob, xferPath, catText, odBin, statB, killA, execDead, list] = all as any[];

    // Turn 1: both spawned, each announced by a system event before its tool_result, and concurrently.
    assertOk(spawnA);
    assertOk(spawnB);
    assert.equal(spawnA.use.sandbox, 'a');
    assert.equal(spawnB.use.sandbox, 'b');
    const created = sys(events, 'sandbox_created');
    assert.deepEqual(created.map((e) => e.sandbox).sort(), ['a', 'b', 'main']);
    for (const c of created) assert.match(c.sandboxId, /\S/);
    for (const [call, name] of [[spawnA, 'a'], [spawnB, 'b']] as const) {
      const at = events.findIndex((e) => e.subtype === 'sandbox_created' && e.sandbox === name);
      assert.ok(at < events.indexOf(call.result), `sandbox_created ${name} precedes its spawn result`);
    }
    // Both tool_use events were sent before either sandbox was ready, and the two creations overlapped in time.
    const firstCreated = events.findIndex((e) => e.subtype === 'sandbox_created' && e.sandbox !== 'main');
    assert.ok(events.indexOf(spawnB.use) < firstCreated, `the second spawn's tool_use (event ${events.indexOf(spawnB.use)}) comes before the first secondary sandbox_created (event ${firstCreated})`);
    const interval = (name: string) => {
      const line = logLines.find((l) => l.msg === 'sandbox created' && l.runId === runId && l.sandbox === name);
      assert.ok(line, `a log line for sandbox ${name}`);
      const end = Date.parse(line.time);
      return { start: end - line.durationMs, end };
    };
    const ia = interval('a');
    const ib = interval('b');
    const overlap = Math.min(ia.end, ib.end) - Math.max(ia.start, ib.start);
    assert.ok(overlap > 20, `the two sandboxes were created concurrently (a ${JSON.stringify(ia)}, b ${JSON.stringify(ib)})`);

    // Turn 2: a command in each, exit codes reported, sandbox = the name.
    assert.equal(execA.use.sandbox, 'a');
    assert.equal(execA.result.exitCode, 0);
    assert.match(execA.result.content, /made-in-a/);
    assert.equal(execB.use.sandbox, 'b');
    assert.equal(execB.result.exitCode, 3);
    assert.equal(execB.result.isError, true);
    assert.match(execB.result.content, /^in-b$/m);
    assert.equal(execMain.use.sandbox, 'main');
    assert.equal(execMain.result.exitCode, 0);
    assert.match(execMain.result.content, /^in-main$/m);
    assert.ok(!('exitCode' in spawnA.result), 'exitCode only for commands');

    // Turn 3: transfers by glob and by plain path, relative paths kept under destDir.
    assertOk(xferGlob);
    assertOk(xferPath);
    assert.equal(xferGlob.use.sandbox, 'a', 'a transfer is attributed to its source');
    assert.match(xferGlob.result.content, /2 file/);
    assert.match(xferPath.result.content, /1 file/);

    // Turn 4: read back byte for byte in b.
    assert.equal(catText.result.content, 'hello\nworld\n[exit code 0]');
    const hex = (b: Buffer) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(' ');
    const expected = Buffer.from([0o000, 0o001, 0o377, 0o200, ...Buffer.from('bin\r\n')]);
    assert.equal(odBin.result.exitCode, 0, odBin.result.content);
    assert.equal(odBin.result.content.split('\n')[0].trim().replace(/\s+/g, ' '), hex(expected), 'binary file copied byte-exact');
    assert.equal(statB.result.exitCode, 0, statB.result.content);
    assert.match(statB.result.content, /^1000 4 in\/out\/top\.txt$/m, 'copied files belong to the sandbox user, sizes kept');
    assert.match(statB.result.content, /^1000 9 bin\/out\/b\.bin$/m);
    assert.match(statB.result.content, /^no-skip$/m, 'only the matched files were copied');

    // Turn 5: kill a; its sandbox_destroyed comes with the call.
    assertOk(killA);
    assert.equal(killA.use.sandbox, 'a');
    const destroyedA = events.findIndex((e) => e.subtype === 'sandbox_destroyed' && e.sandbox === 'a');
    assert.ok(destroyedA > events.indexOf(killA.use) && destroyedA < events.indexOf(killA.result), 'a destroyed during the kill call');
    const createdA = created.find((e) => e.sandbox === 'a')!;
    assert.equal(events[destroyedA]!.sandboxId, createdA.sandboxId);

    // Turn 6: a is gone for exec_in; the listing shows main and b.
    assertRefused(execDead, /no sandbox named "a"/);
    assertOk(list);
    assert.equal(list.use.sandbox, 'main');
    const listing = JSON.parse(list.result.content) as Ev[];
    assert.deepEqual(listing.map((m) => m.name).sort(), ['b', 'main']);
    for (const m of listing) {
      assert.equal(m.provider, 'docker');
      assert.equal(m.sandboxId, created.find((e) => e.sandbox === m.name)!.sandboxId);
    }

    // The end: b destroyed, then main, then the result.
    assertTeardownOrder(events);
    assert.deepEqual(
      events.slice(-3).map((e) => `${e.type}:${e.subtype ?? ''}:${e.sandbox ?? ''}`),
      ['system:sandbox_destroyed:b', 'system:sandbox_destroyed:main', 'result:success:'],
    );

    const r = await row(s, runId);
    assert.equal(r.status, 'completed');
    assert.equal(r.sandboxCount, 3, 'primary + 2 secondaries');
    assert.equal(r.sandboxId, created.find((e) => e.sandbox === 'main')!.sandboxId, 'the row keeps the primary sandbox id');
  });
});

describe('composite: transfers', () => {
  const server = serverFor({ composite: {} });

  test('folders and "." copy everything under them; default destDir; size limits per file and per call; copied into main = artifact', async () => {
    const s = server();
    fake.setScript([
      { toolCalls: [spawn('big'), spawn('tiny')] },
      {
        toolCalls: [
          execIn('big', "truncate -s 26M huge.bin && truncate -s 20M m1 m2 m3 && mkdir -p small && printf 'hi\\n' > small/s.txt && echo ok"),
          execIn('tiny', "mkdir -p t/u && printf 'one' > t/u/one && printf 'two' > two && echo ok"),
        ],
      },
      {
        toolCalls: [
          { name: 'transfer_files', input: { from: 'big', to: 'tiny', paths: ['huge.bin'] } },
          { name: 'transfer_files', input: { from: 'big', to: 'tiny', paths: ['m?'] } },
          { name: 'transfer_files', input: { from: 'big', to: 'main', paths: ['small'] } },
          { name: 'transfer_files', input: { from: 'tiny', to: 'big', paths: ['.'], destDir: 'fromtiny' } },
        ],
      },
      { toolCalls: [execIn('big', 'cat fromtiny/t/u/one; echo; cat fromtiny/two; echo'), execIn('tiny', 'ls -A')] },
      { text: 'moved' },
    ]);
    const events = await readEvents(await s.query({ prompt: 'x', model: 'haiku' }));
    const terminal = assertWellFormedRun(events);
    assert.equal(terminal.type, 'result', JSON.stringify(terminal));
    const [, , mkBig, mkTiny, huge, many, small, all, readBig, lsTiny] = calls(events) as any[];
    assert.match(mkBig.result.content, /^ok$/m);
    assert.match(mkTiny.result.content, /^ok$/m);
    assertRefused(huge, /huge\.bin is 27262976 bytes; the limit is 26214400 per file/);
    assertRefused(many, /total 62914560 bytes; the limit is 52428800 per call/);
    assertOk(small);
    assertOk(all);
    assert.match(all.result.content, /2 file/);
    assert.equal(readBig.result.content, 'one\ntwo\n[exit code 0]');
    assert.equal(lsTiny.result.content, 't\ntwo\n[exit code 0]', 'nothing was copied into tiny by the refused calls');
    // small/s.txt landed in main's /workspace (default destDir), so it is an artifact of the run.
    const files = events.filter((e) => e.type === 'file');
    assert.deepEqual(files.map((f) => [f.path, f.content]), [['small/s.txt', 'hi\n']]);
    assertTeardownOrder(events);
  });
});

describe('composite: guardrails refuse with tool errors the model sees', () => {
  const server = serverFor({ composite: { maxSandboxes: 1, maxTotalSpawns: 2, allowedProviders: ['docker'] } });

  test('bad names, disallowed provider and template, killing main, over maxSandboxes, duplicates, traversal, over maxTotalSpawns', async () => {
    const s = server();
    fake.setScript([
      // Refusals while there is room: none of them counts toward maxTotalSpawns.
      {
        toolCalls: [
          spawn('bad name!'),
          spawn('x'.repeat(65)),
          spawn('../up'),
          spawn('p', { provider: 'e2b' }),
          spawn('t', { template: 'alpine:latest' }),
          kill('main'),
          kill('nobody'),
        ],
      },
      // Two in one turn with maxSandboxes 1: exactly the second is refused.
      { toolCalls: [spawn('s1'), spawn('s2')] },
      { toolCalls: [spawn('s1'), execIn('s1', "printf 'x\\n' > f.txt")] },
      {
        toolCalls: [
          { name: 'transfer_files', input: { from: 's1', to: 'main', paths: ['../etc/passwd'] } },
          { name: 'transfer_files', input: { from: 's1', to: 'main', paths: ['/etc/passwd'] } },
          { name: 'transfer_files', input: { from: 's1', to: 'main', paths: ['f.txt'], destDir: '../..' } },
          { name: 'transfer_files', input: { from: 's1', to: 'main', paths: ['sub/../../etc/passwd'] } },
          { name: 'transfer_files', input: { from: 's1', to: 'main', paths: ['f.txt'], destDir: '/etc' } },
          { name: 'transfer_files', input: { from: 's1', to: 'ghost', paths: ['f.txt'] } },
          { name: 'transfer_files', input: { from: 's1', to: 'main', paths: ['nothing-*.txt'] } },
        ],
      },
      { toolCalls: [kill('s1')] },
      { toolCalls: [spawn('s1')] }, // the name is free again; the second spawn of the run
      { toolCalls: [kill('s1')] },
      { toolCalls: [spawn('s3')] }, // a third spawn: over maxTotalSpawns 2
      { toolCalls: [execIn('main', 'ls -A /workspace; echo end')] },
      { text: 'Limits respected.' },
    ]);
    const res = await s.query({ prompt: 'push the limits', model: 'haiku' });
    const runId = res.headers.get('x-run-id')!;
    const events = await readEvents(res);
    const terminal = assertWellFormedRun(events);
    assert.equal(terminal.type, 'result', JSON.stringify(terminal));
    assert.equal(terminal.content, 'Limits respected.');

    const [badChars, tooLong, dotted, e2b, template, killMain, killNobody, s1, s2, dup, write, ...rest] = calls(events) as any[];
    const [upPath, absPath, upDest, sneaky, etcDest, ghost, noMatch, kill1, respawn, kill2, third, check] = rest;
    assertRefused(badChars, /name must be 1-64 characters/);
    assertRefused(tooLong, /name must be 1-64 characters/);
    assertRefused(dotted, /name must be 1-64 characters/);
    assertRefused(e2b, /provider "e2b" is not allowed/);
    assertRefused(template, /template "alpine:latest" is not allowed/);
    assertRefused(killMain, /"main" cannot be killed/);
    assertRefused(killNobody, /no sandbox named "nobody"/);

    assertOk(s1);
    assertRefused(s2, /at most 1 secondary/);
    assertRefused(dup, /already exists/);
    assertOk(write);

    assertRefused(upPath, /outside \/workspace/);
    assertRefused(absPath, /outside \/workspace/);
    assertRefused(upDest, /destDir "\.\.\/\.\." is outside \/workspace/);
    assertRefused(sneaky, /outside \/workspace/);
    assertRefused(etcDest, /destDir "\/etc" is outside \/workspace/);
    assertRefused(ghost, /no sandbox named "ghost"/);
    assertRefused(noMatch, /no file/);

    assertOk(kill1);
    assertOk(respawn);
    assertOk(kill2);
    assertRefused(third, /at most 2 sandboxes in all/);

    // Nothing leaked into main, and main is alive to the end.
    assert.equal(check.result.content, 'end\n[exit code 0]', 'main\'s /workspace is still empty');

    // Only the two real spawns were created: primary + 2.
    assert.deepEqual(sys(events, 'sandbox_created').map((e) => e.sandbox), ['main', 's1', 's1']);
    assertTeardownOrder(events);
    const r = await row(s, runId);
    assert.equal(r.status, 'completed');
    assert.equal(r.sandboxCount, 3);
  });
});

describe('composite: request tightening and clamping', () => {
  const server = serverFor({ composite: { maxSandboxes: 2, maxTotalSpawns: 3 } });

  test('looser request values are clamped with COMPOSITE_CLAMPED warnings; the file limits hold', async () => {
    const s = server();
    fake.setScript([
      { toolCalls: [spawn('x1'), spawn('x2'), spawn('x3')] },
      { toolCalls: [kill('x1')] },
      { toolCalls: [spawn('x4')] },
      { toolCalls: [kill('x2')] },
      { toolCalls: [spawn('x5')] },
      { text: 'clamped' },
    ]);
    const n = fake.requests.length;
    const res = await s.query({ prompt: 'x', model: 'haiku', composite: { maxSandboxes: 5, maxTotalSpawns: 50 } });
    const runId = res.headers.get('x-run-id')!;
    const events = await readEvents(res);
    const terminal = assertWellFormedRun(events);
    assert.equal(terminal.type, 'result', JSON.stringify(terminal));
    const warnings = events.filter((e) => e.type === 'warning' && e.code === 'COMPOSITE_CLAMPED');
    assert.equal(warnings.length, 2, JSON.stringify(warnings));
    assert.match(warnings[0]!.content, /maxSandboxes 5 .* 2/);
    assert.match(warnings[1]!.content, /maxTotalSpawns 50 .* 3/);
    assert.ok(events.indexOf(warnings[0]!) < events.findIndex((e) => e.type === 'tool_use'), 'warnings come before the work');

    const [x1, x2, x3, k1, x4, k2, x5] = calls(events) as any[];
    assertOk(x1);
    assertOk(x2);
    assertRefused(x3, /at most 2 secondary/);
    assertOk(k1);
    assertOk(x4);
    assertOk(k2);
    assertRefused(x5, /at most 3 sandboxes in all/);
    assert.match(fake.requests[n]!.body.tools.find((t: any) => t.name === 'spawn_sandbox').description, /\b2\b.*\b3\b/, 'the tool describes the effective limits');
    assertTeardownOrder(events);
    assert.equal((await row(s, runId)).sandboxCount, 4);
  });

  test('a tighter request applies without a warning', async () => {
    const s = server();
    fake.setScript([{ toolCalls: [spawn('y1'), spawn('y2')] }, { text: 'tight' }]);
    const res = await s.query({ prompt: 'x', model: 'haiku', composite: { maxSandboxes: 1 } });
    const runId = res.headers.get('x-run-id')!;
    const events = await readEvents(res);
    assert.equal(assertWellFormedRun(events).type, 'result');
    assert.equal(events.filter((e) => e.type === 'warning' && e.code === 'COMPOSITE_CLAMPED').length, 0);
    const [y1, y2] = calls(events) as any[];
    assertOk(y1);
    assertRefused(y2, /at most 1 secondary/);
    assert.equal((await row(s, runId)).sandboxCount, 2);
  });

  test('a request allowedProviders outside the file is clamped', async () => {
    const s = server();
    // The file allows every provider; the request narrows to docker, so e2b is refused.
    fake.setScript([{ toolCalls: [spawn('p', { provider: 'e2b' })] }, { text: 'ok' }]);
    const events = await readEvents(await s.query({ prompt: 'x', model: 'haiku', composite: { allowedProviders: ['docker'] } }));
    assert.equal(assertWellFormedRun(events).type, 'result');
    assertRefused(calls(events)[0]!, /provider "e2b" is not allowed/);
  });
});

describe('composite: enabled by the request alone, or not at all', () => {
  const server = serverFor(); // no sandcaster.json composite block

  test('request composite {} offers the tools with the defaults (3 alive, 10 per run); duplicates in one turn are refused', async () => {
    const s = server();
    fake.setScript([{ toolCalls: [spawn('d'), spawn('d'), spawn('e'), spawn('f'), spawn('g')] }, { toolCalls: [{ name: 'list_sandboxes', input: {} }] }, { text: 'defaults' }]);
    const n = fake.requests.length;
    const res = await s.query({ prompt: 'x', model: 'haiku', composite: {} });
    const runId = res.headers.get('x-run-id')!;
    const events = await readEvents(res);
    assert.equal(assertWellFormedRun(events).type, 'result');
    const tools = fake.requests[n]!.body.tools.map((t: any) => t.name);
    assert.deepEqual(tools, [...BASE_TOOLS, ...COMPOSITE_TOOLS]);
    assert.match(fake.requests[n]!.body.tools.find((t: any) => t.name === 'spawn_sandbox').description, /\b3\b.*\b10\b/);
    assert.equal(events.filter((e) => e.type === 'warning').length, 0, 'nothing to clamp');

    const [d, d2, e, f, g, list] = calls(events) as any[];
    assertOk(d);
    assertRefused(d2, /already exists/);
    assertOk(e);
    assertOk(f);
    assertRefused(g, /at most 3 secondary/);
    assert.deepEqual(JSON.parse(list.result.content).map((m: Ev) => m.name).sort(), ['d', 'e', 'f', 'main']);
    assertTeardownOrder(events);
    assert.equal((await row(s, runId)).sandboxCount, 4);
  });

  test('spawning on a provider that is not configured (no E2B key) is a tool error, not the end of the run', async () => {
    const s = server();
    fake.setScript([{ toolCalls: [spawn('cloud', { provider: 'e2b' })] }, { toolCalls: [spawn('local')] }, { text: 'fell back' }]);
    const res = await s.query({ prompt: 'x', model: 'haiku', composite: {} });
    const runId = res.headers.get('x-run-id')!;
    const events = await readEvents(res);
    const terminal = assertWellFormedRun(events);
    assert.equal(terminal.type, 'result', JSON.stringify(terminal));
    const [cloud, local] = calls(events) as any[];
    assertRefused(cloud, /e2b/);
    assertOk(local);
    assert.equal((await row(s, runId)).sandboxCount, 2);
  });

  test('without a composite block anywhere the composite tools are not offered', async () => {
    const s = server();
    fake.setScript([{ toolCalls: [spawn('nope')] }, { text: 'plain' }]);
    const n = fake.requests.length;
    const res = await s.query({ prompt: 'x', model: 'haiku' });
    const runId = res.headers.get('x-run-id')!;
    const events = await readEvents(res);
    assert.equal(assertWellFormedRun(events).type, 'result');
    assert.deepEqual(fake.requests[n]!.body.tools.map((t: any) => t.name), BASE_TOOLS);
    assertRefused(calls(events)[0]!, /unknown tool "spawn_sandbox"/);
    assert.deepEqual(sys(events, 'sandbox_created').map((e) => e.sandbox), ['main']);
    assert.equal((await row(s, runId)).sandboxCount, 1);

    const bad = await s.query({ prompt: 'x', model: 'haiku', allowedTools: ['exec_in'] });
    assert.equal(bad.status, 400, 'composite tools cannot be allowed without composite');
    assert.equal((await bad.json()).error.code, 'INVALID_REQUEST');
  });
});

describe('composite: ending a run with secondaries alive', () => {
  const server = serverFor({ composite: {} });

  test('a client disconnect during a long exec_in leaves no container within 2 s; the row is cancelled', async () => {
    const s = server();
    fake.setScript([{ toolCalls: [spawn('w')] }, { toolCalls: [execIn('w', 'sleep 60'), { name: 'bash', input: { command: 'sleep 60' } }] }, { text: 'never' }]);
    const ctl = new AbortController();
    const res = await s.fetch('/query', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'x', model: 'haiku' }),
      signal: ctl.signal,
    });
    assert.equal(res.status, 200);
    const runId = res.headers.get('x-run-id')!;
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let text = '';
    while (!/"toolName":"exec_in"/.test(text)) {
      const { done, value } = await reader.read();
      assert.ok(!done, 'the stream reached the exec_in call');
      text += dec.decode(value, { stream: true });
    }
    const instance = s.app.store.instanceId;
    const containers = await managedContainers(instance);
    assert.equal(containers.length, 2, 'main and w exist');
    // Go away once both sleeps run inside the sandboxes.
    const sleeping = async () => (await Promise.all(containers.map((c) => runningIn(c.Id, 'sleep 60')))).every(Boolean);
    assert.ok(await waitFor(sleeping, 10_000), 'sleep 60 runs in both sandboxes before the disconnect');
    const t0 = Date.now();
    ctl.abort();
    let left = -1;
    assert.ok(await waitFor(async () => (left = (await managedContainers(instance)).length) === 0, 2000, 25), `every container gone within 2 s of the disconnect; ${left} left`);
    const took = Date.now() - t0;
    assert.ok(took <= 2500, `every container gone within 2 s of the disconnect: took ${took} ms`);
    let status = '';
    assert.ok(await waitFor(async () => (status = (await row(s, runId)).status) !== 'running', 3000), `the run's row is closed after the disconnect; still ${status}`);
    const r = await row(s, runId);
    assert.equal(r.status, 'cancelled');
    assert.equal(r.sandboxCount, 2);
  });

  test('a client disconnect while spawns are still being created leaves no container within 2 s', async () => {
    const s = server();
    fake.setScript([{ toolCalls: [spawn('late1'), spawn('late2')] }, { text: 'never' }]);
    const ctl = new AbortController();
    const res = await s.fetch('/query', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'x', model: 'haiku' }),
      signal: ctl.signal,
    });
    const runId = res.headers.get('x-run-id')!;
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let text = '';
    while (!/"toolName":"spawn_sandbox"/.test(text)) {
      const { done, value } = await reader.read();
      assert.ok(!done, 'the stream reached the spawn call');
      text += dec.decode(value, { stream: true });
    }
    ctl.abort();
    const instance = s.app.store.instanceId;
    assert.ok(await waitFor(async () => (await managedContainers(instance)).length === 0, 2000, 25), 'every container gone within 2 s');
    let status = '';
    assert.ok(await waitFor(async () => (status = (await row(s, runId)).status) !== 'running', 3000), `the run's row is closed after the disconnect; still ${status}`);
    assert.equal((await row(s, runId)).status, 'cancelled');
    // Nothing shows up later either: a creation the engine finishes after the abort reached it is destroyed,
    // not kept. The wait is the test (there is no event for "no container will appear").
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await managedContainers(instance)).length, 0, 'no container appears in the second after the run ended');
  });

  test('the run timeout with secondaries alive ends with TIMEOUT, secondaries destroyed before main, no container left', async () => {
    const s = server();
    fake.setScript([
      { toolCalls: [spawn('w1'), spawn('w2')] },
      { toolCalls: [execIn('w1', 'sleep 60'), execIn('w2', 'sleep 60', { timeoutSeconds: 100 }), { name: 'bash', input: { command: 'sleep 60' } }] },
      { text: 'never' },
    ]);
    const t0 = Date.now();
    const res = await s.query({ prompt: 'x', model: 'haiku', timeout: 8 });
    const runId = res.headers.get('x-run-id')!;
    const events = await readEvents(res);
    const terminal = assertWellFormedRun(events);
    assert.equal(terminal.type, 'error', JSON.stringify(terminal));
    assert.equal(terminal.code, 'TIMEOUT');
    assert.ok(Date.now() - t0 < 20_000, 'the timeout was kept');
    assert.deepEqual(sys(events, 'sandbox_created').map((e) => e.sandbox).sort(), ['main', 'w1', 'w2']);
    assertTeardownOrder(events);
    assert.equal((await managedContainers(s.app.store.instanceId)).length, 0, 'no container left when the stream ends');
    const r = await row(s, runId);
    assert.equal(r.status, 'error');
    assert.equal(r.errorCode, 'TIMEOUT');
    assert.equal(r.sandboxCount, 3);
  });
});
