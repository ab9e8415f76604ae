// The client CLI (issue 16) as a user runs it: `node bin/sandcaster.js <command>` as a subprocess against a
// real server (real Docker sandboxes, the real Anthropic SDK against the fake model server). Every
// subcommand, every exit code, --out byte for byte, --json line by line, reattach after the connection is
// cut midway (a TCP proxy in front of the server), Ctrl-C, and the terminal rendering under a pseudo-terminal.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCuttingProxy, type CuttingProxy } from './fixtures/cutting-proxy.ts';
import { startScriptedByPrompt, type FakeTurn, type ScriptedByPrompt } from './fixtures/fake-models.ts';
import { parseSse } from './helpers/sse.ts';
import { managedContainers, startTestServer, waitFor, type TestServer } from './helpers/server.ts';

const ROOT = join(import.meta.dirname, '..');
const KEY = 'cli-test-key-0123456789';

let fake: ScriptedByPrompt;
let s: TestServer;
let keyed: TestServer;
let dir: string;

before(async () => {
  fake = await startScriptedByPrompt();
  const env = { ANTHROPIC_API_KEY: 'sk-ant-cli-test-key', ANTHROPIC_BASE_URL: fake.url, SANDCASTER_SANDBOX_PROVIDER: 'docker' };
  s = await startTestServer({ env });
  keyed = await startTestServer({ env: { ...env, SANDCASTER_API_KEY: KEY } });
  dir = mkdtempSync(join(tmpdir(), 'sandcaster-cli-'));
});
after(async () => {
  await s.stop();
  await keyed.stop();
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  assert.ok(await waitFor(async () => (await managedContainers(s.app.store.instanceId)).length === 0, 10_000), 'no sandbox left');
});

interface Done {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

interface Running {
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  done: Promise<Done>;
}

/** Starts `sandcaster <args>` with only the environment given (plus PATH). */
function start(args: string[], opts: { env?: Record<string, string>; input?: string; url?: string } = {}): Running {
  const proc = spawn(process.execPath, [join(ROOT, 'bin/sandcaster.js'), ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH!, SANDCASTER_URL: opts.url ?? s.url, ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d) => (stdout += d));
  proc.stderr!.on('data', (d) => (stderr += d));
  proc.stdin!.end(opts.input ?? '');
  const done = new Promise<Done>((resolve) => proc.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { proc, stdout: () => stdout, stderr: () => stderr, done };
}

const cli = (args: string[], opts?: Parameters<typeof start>[1]) => start(args, opts).done;

/** Every stdout line parsed as JSON (asserting each is one JSON object). */
function jsonLines(out: string): Record<string, any>[] {
  assert.ok(out.endsWith('\n'), `stdout ends with a newline: ${JSON.stringify(out.slice(-80))}`);
  return out
    .slice(0, -1)
    .split('\n')
    .map((line, i) => {
      assert.doesNotThrow(() => JSON.parse(line), `line ${i + 1} is JSON: ${line.slice(0, 200)}`);
      const v = JSON.parse(line);
      assert.equal(typeof v, 'object', `line ${i + 1} is an object`);
      return v;
    });
}

/** The run's events as the server stores them. */
async function storedEvents(server: TestServer, runId: string): Promise<Record<string, any>[]> {
  const res = await server.fetch(`/runs/${runId}/events`, server === keyed ? { headers: { authorization: `Bearer ${KEY}` } } : {});
  assert.equal(res.status, 200, `events of ${runId}: ${res.status}`);
  return parseSse(await res.text()).events.map((e) => e.data);
}

/** Model calls made so far for the script `name`. */

const bash = (command: string): FakeTurn => ({ toolCalls: [{ name: 'bash', input: { command } }] });
const json = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const OCTAL = Array.from({ length: 256 }, (_, i) => `\\${i.toString(8).padStart(3, '0')}`).join('');

async function detach(body: object, server: TestServer = s): Promise<string> {
  const res = await server.fetch('/query', json({ model: 'haiku', ...body, detach: true }));
  assert.equal(res.status, 202, `detach answers 202, got ${res.status}: ${await res.clone().text()}`);
  return ((await res.json()) as { runId: string }).runId;
}

describe('sandcaster run', () => {
  test('--json: one event per line, exactly the stored events; --file uploads; --out gets every returned file byte for byte; exit 0', async () => {
    const upload = join(dir, 'data.csv');
    writeFileSync(upload, 'a,b\n1,2\n');
    const prompt = fake.script('files', [
      { text: 'Looking. ', toolCalls: [{ name: 'bash', input: { command: `cat data.csv; printf '\\302\\233[2J C1 CSI\\n'; mkdir -p out; printf '${OCTAL}' > out/all-bytes.bin` } }] },
      { toolCalls: [{ name: 'write_file', input: { path: 'report.md', content: '# Report\nünïcödé ✓\n' } }] },
      { text: ['All ', 'done.'] },
    ]);
    const out = join(dir, 'out-run');
    const r = await cli(['run', prompt, '--model', 'haiku', '--file', upload, '--out', out, '--json']);
    assert.equal(r.code, 0, `exit 0; stderr: ${r.stderr}`);
    const events = jsonLines(r.stdout);
    assert.equal(events[0]!.subtype, 'run_started');
    assert.equal(events.at(-1)!.type, 'result');
    assert.deepEqual(events, await storedEvents(s, events[0]!.runId), 'stdout holds the stored events, in order, each once');
    // Line for line the server's data lines, with only the C1 control (U+009B, a terminal's CSI) escaped.
    const raw = await (await s.fetch(`/runs/${events[0]!.runId}/events`)).text();
    const dataLines = raw.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6).replace(/\u009b/g, '\\u009b'));
    assert.deepEqual(r.stdout.slice(0, -1).split('\n'), dataLines);
    assert.ok(raw.includes('\u009b[2J') && !r.stdout.includes('\u009b'), 'the raw C1 character never reaches stdout');
    const cat = events.find((e) => e.type === 'tool_result')!;
    assert.match(cat.content, /^a,b\n1,2\n/, 'the uploaded file was in /workspace');
    assert.deepEqual(readdirSync(out).sort(), ['out', 'report.md']);
    assert.deepEqual(readFileSync(join(out, 'out/all-bytes.bin')), ALL_BYTES, 'binary file byte for byte');
    assert.equal(readFileSync(join(out, 'report.md'), 'utf8'), '# Report\nünïcödé ✓\n');
    assert.equal(r.stderr, '', 'nothing on stderr');
  });

  test('piped stdout without --json is JSON lines too; --schema gives structured output; the prompt can come from stdin', async () => {
    const schema = join(dir, 'schema.json');
    writeFileSync(schema, JSON.stringify({ type: 'object', properties: { count: { type: 'integer' } }, required: ['count'] }));
    const prompt = fake.script('schema', [{ text: '{"count": 42}' }]);
    const r = await cli(['run', '-', '--model', 'haiku', '--schema', schema], { input: `${prompt}\nfrom stdin` });
    assert.equal(r.code, 0, `exit 0; stderr: ${r.stderr}`);
    const events = jsonLines(r.stdout);
    const result = events.at(-1)!;
    assert.deepEqual(result.structuredOutput, { count: 42 });
    const row = await (await s.fetch(`/runs/${result.runId}`)).json();
    assert.equal(row.prompt, `${prompt}\nfrom stdin`, 'the prompt was read from stdin');
  });

  test('a run that ends with error exits 1 (and the error event is the last line)', async () => {
    const prompt = fake.script('fails', [{ error: { status: 401, body: { type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } } } }]);
    const r = await cli(['run', prompt, '--model', 'haiku', '--json']);
    assert.equal(r.code, 1, `exit 1; stderr: ${r.stderr}`);
    const last = jsonLines(r.stdout).at(-1)!;
    assert.equal(last.type, 'error');
    assert.equal(last.code, 'MODEL_ERROR');
  });

  test('--detach prints the run id and returns at once; the run goes on and can be followed with logs --follow', async () => {
    const prompt = fake.script('detached', [{ delayMs: 800, text: 'later' }]);
    const r = await cli(['run', prompt, '--model', 'haiku', '--detach', '--json']);
    assert.equal(r.code, 0, `exit 0; stderr: ${r.stderr}`);
    const [accepted] = jsonLines(r.stdout);
    assert.match(accepted!.runId, /^run_/);
    assert.equal(accepted!.status, 'running');
    const follow = await cli(['logs', accepted!.runId, '--follow', '--json']);
    assert.equal(follow.code, 0, `logs --follow exits 0 on result; stderr: ${follow.stderr}`);
    const events = jsonLines(follow.stdout);
    assert.equal(events.at(-1)!.type, 'result');
    assert.equal(events.at(-1)!.content, 'later');
    assert.deepEqual(events, await storedEvents(s, accepted!.runId));
  });

  test('the connection cut midway (a proxy drops it): run reattaches by itself with Last-Event-ID, no gap, no duplicate, exit 0', async () => {
    const proxy: CuttingProxy = await startCuttingProxy(s.url);
    try {
      const prompt = fake.script('cut', [
        { text: ['before ', 'the cut. '], toolCalls: [{ name: 'bash', input: { command: 'echo one' } }] },
        { delayMs: 1500, text: ['after ', 'the ', 'cut.'], deltaDelayMs: 50 },
      ]);
      const run = start(['run', prompt, '--model', 'haiku', '--json'], { url: proxy.url });
      assert.ok(await waitFor(() => run.stdout().includes('"tool_result"'), 20_000), `the run got to its tool result: ${run.stdout()} ${run.stderr()}`);
      assert.ok(proxy.cut() >= 1, 'a connection was cut');
      const r = await run.done;
      assert.equal(r.code, 0, `exit 0; stderr: ${r.stderr}`);
      assert.match(r.stderr, /connection lost/);
      assert.match(r.stderr, /reattached to run_\S+ after event \d+/);
      const events = jsonLines(r.stdout);
      assert.deepEqual(events, await storedEvents(s, events[0]!.runId), 'every event exactly once, in order');
      assert.equal(events.filter((e) => e.type === 'assistant').map((e) => e.content).join(''), 'before the cut. after the cut.');
      assert.ok(proxy.connections >= 2, `reconnected through the proxy (${proxy.connections} connections)`);
    } finally {
      await proxy.close();
    }
  });

  test('Ctrl-C cancels the run: exit 130, the run ends CANCELLED', async () => {
    const prompt = fake.script('interrupt', [bash('echo started'), { hang: true }]);
    const run = start(['run', prompt, '--model', 'haiku', '--json']);
    assert.ok(await waitFor(() => run.stdout().includes('"tool_result"'), 20_000), `the run got going: ${run.stdout()} ${run.stderr()}`);
    run.proc.kill('SIGINT');
    const r = await run.done;
    assert.equal(r.code, 130, `exit 130; stderr: ${r.stderr}`);
    assert.match(r.stderr, /cancelling run_/);
    const runId = jsonLines(r.stdout)[0]!.runId;
    const row = await (await s.fetch(`/runs/${runId}`)).json();
    assert.equal(row.status, 'cancelled');
    assert.equal(row.errorCode, 'CANCELLED');
    assert.equal(jsonLines(r.stdout).at(-1)!.code, 'CANCELLED', 'the CANCELLED error event was shown before leaving');
  });

  test('on a terminal (pseudo-terminal via script(1)): readable, coloured, condensed; escapes from the sandbox are stripped', async () => {
    const prompt = fake.script('tty', [
      { text: 'Let me look.', toolCalls: [{ name: 'bash', input: { command: "printf '\\033]0;pwned\\007\\033[31mred\\nl2\\nl3\\nl4\\nl5\\nl6\\n'" } }] },
      { text: 'Finished.' },
    ]);
    const cmd = [process.execPath, join(ROOT, 'bin/sandcaster.js'), 'run', prompt, '--model', 'haiku'].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const tty = spawn('script', ['-qfec', cmd, '/dev/null'], { cwd: dir, env: { PATH: process.env.PATH!, SANDCASTER_URL: s.url, TERM: 'xterm-256color', COLUMNS: '100' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    tty.stdout.on('data', (d) => (out += d));
    tty.stdin.end();
    const code = await new Promise<number | null>((resolve) => tty.on('close', resolve));
    assert.equal(code, 0, `exit 0 under a pty: ${out}`);
    assert.ok(!out.trimStart().startsWith('{'), `not JSON on a terminal: ${out.slice(0, 200)}`);
    assert.match(out, /Let me look\./);
    assert.match(out, /▸\x1b\[39m \x1b\[1mbash\x1b\[22m printf/, 'the tool call, its name in bold');
    assert.match(out, /\x1b\[32m✓\x1b\[39m exit 0/, 'a green check with the exit code');
    assert.match(out, /… \d+ more/, 'long output condensed');
    assert.match(out, /\x1b\[32m✔ done · 2 turns/, 'the summary line in green');
    assert.ok(!out.includes('\x1b]0;pwned'), 'the title-setting escape from the sandbox did not reach the terminal');
    assert.ok(!out.includes('\x1b[31mred'), 'nor the colour escape');
    assert.ok(out.includes(']0;pwned[31mred'), 'the text around the stripped escapes is still shown');
  });
});

describe('sandcaster runs, logs, cancel, files', () => {
  test('runs: JSON lines when piped, --status and --limit; logs: the stored events, exit 0 for result and 1 for error', async () => {
    const ok = await cli(['run', fake.script('list-ok', [{ text: 'fine' }]), '--model', 'haiku', '--json']);
    const bad = await cli(['run', fake.script('list-bad', [{ error: { status: 400, body: { type: 'error', error: { type: 'invalid_request_error', message: 'nope' } } } }]), '--model', 'haiku', '--json']);
    const okId = jsonLines(ok.stdout)[0]!.runId;
    const badId = jsonLines(bad.stdout)[0]!.runId;
    const all = await cli(['runs', '--limit', '200']);
    assert.equal(all.code, 0, all.stderr);
    const runs = jsonLines(all.stdout);
    assert.deepEqual(runs.slice(0, 2).map((r) => r.id), [badId, okId], 'newest first');
    const errors = jsonLines((await cli(['runs', '--status', 'error'])).stdout);
    assert.ok(errors.length >= 1 && errors.every((r) => r.status === 'error'), `only error runs: ${errors.map((r) => r.status)}`);
    assert.equal(jsonLines((await cli(['runs', '--limit', '1'])).stdout).length, 1);

    const logs = await cli(['logs', okId]);
    assert.equal(logs.code, 0, logs.stderr);
    assert.deepEqual(jsonLines(logs.stdout), await storedEvents(s, okId));
    const badLogs = await cli(['logs', badId, '--json']);
    assert.equal(badLogs.code, 1, 'logs of a failed run exits 1');
    assert.equal(jsonLines(badLogs.stdout).at(-1)!.type, 'error');
  });

  test('logs without --follow on a run in flight: what is stored so far, then exit 0 while it goes on', async () => {
    const id = await detach({ prompt: fake.script('inflight', [bash('echo hi'), { hang: true }]) });
    assert.ok(await waitFor(() => fake.calls('inflight') === 2, 20_000), 'the run reached its second model call (after its tool result)');
    const r = await cli(['logs', id]);
    assert.equal(r.code, 0, r.stderr);
    const shown = jsonLines(r.stdout);
    assert.ok(shown.some((e) => e.type === 'tool_result'), 'the stored events are shown');
    assert.ok(!shown.some((e) => e.type === 'result' || e.type === 'error'), 'no end: the run is still going');
    const c = await cli(['cancel', id]);
    assert.equal(c.code, 0, c.stderr);
    assert.deepEqual(jsonLines(c.stdout), [{ runId: id, status: 'cancelling' }]);
    const follow = await cli(['logs', id, '-f']);
    assert.equal(follow.code, 1, 'it ended with the CANCELLED error');
    assert.equal(jsonLines(follow.stdout).at(-1)!.code, 'CANCELLED');
    const again = await cli(['cancel', id]);
    assert.equal(again.code, 3, 'cancelling a finished run is a refusal');
    assert.match(again.stderr, /409 ALREADY_FINISHED/);
  });

  test('files: lists the returned files; --out downloads them byte for byte (checked against sha256)', async () => {
    const run = await cli(['run', fake.script('dl', [bash(`mkdir -p deep/er; printf '${OCTAL}' > deep/er/bytes.bin; echo text > t.txt`), { text: 'ok' }]), '--model', 'haiku', '--json']);
    assert.equal(run.code, 0, run.stderr);
    const id = jsonLines(run.stdout)[0]!.runId;
    const list = await cli(['files', id]);
    assert.equal(list.code, 0, list.stderr);
    const listed = jsonLines(list.stdout);
    assert.deepEqual(listed.map((f) => f.path), ['deep/er/bytes.bin', 't.txt']);
    assert.equal(listed[0]!.sha256, sha(ALL_BYTES));
    const out = join(dir, 'out-files');
    const dl = await cli(['files', id, '--out', out]);
    assert.equal(dl.code, 0, dl.stderr);
    assert.deepEqual(readFileSync(join(out, 'deep/er/bytes.bin')), ALL_BYTES);
    assert.equal(readFileSync(join(out, 't.txt'), 'utf8'), 'text\n');
    assert.deepEqual(jsonLines(dl.stdout).map((f) => f.savedTo), [join(out, 'deep/er/bytes.bin'), join(out, 't.txt')]);
  });

  test('on a terminal, runs is a table and files a list (script(1))', async () => {
    const cmd = `'${process.execPath}' '${join(ROOT, 'bin/sandcaster.js')}' runs --limit 3`;
    const tty = spawn('script', ['-qfec', cmd, '/dev/null'], { cwd: dir, env: { PATH: process.env.PATH!, SANDCASTER_URL: s.url, NO_COLOR: '1' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    tty.stdout.on('data', (d) => (out += d));
    tty.stdin.end();
    assert.equal(await new Promise((resolve) => tty.on('close', resolve)), 0, out);
    assert.match(out, /^STATUS\s+RUN\s+MODEL\s+COST\s+TOKENS\s+TURNS\s+TIME\s+STARTED\s+PROMPT/m);
    assert.match(out, /^(completed|error|cancelled)\s+run_\S+\s+claude-haiku-4-5/m);
    assert.ok(!out.includes('\x1b['), 'NO_COLOR: no colour codes');
  });
});

describe('exit codes and errors', () => {
  test('2 for usage: no prompt, unknown flag, bad --limit, bad --status, missing --file, --schema not JSON, --out with --detach, bad --url', async () => {
    writeFileSync(join(dir, 'bad.json'), '{nope');
    const cases: [string[], RegExp][] = [
      [['run'], /needs exactly one PROMPT/],
      [['run', 'x', '--bogus'], /Unknown option '--bogus'/],
      [['runs', '--limit', '0'], /--limit must be a whole number from 1 to 200/],
      [['runs', '--status', 'done'], /--status must be one of/],
      [['run', 'x', '--file', join(dir, 'missing.txt')], /--file .*missing\.txt: ENOENT/],
      [['run', 'x', '--schema', join(dir, 'bad.json')], /--schema .* is not JSON/],
      [['run', 'x', '--detach', '--out', 'd'], /--out needs the run to finish here/],
      [['runs', '--url', 'ftp://x'], /--url must be an http\(s\) URL/],
      [['logs', 'a', 'b'], /logs needs exactly one RUN, got 2/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(args);
      assert.equal(r.code, 2, `${args.join(' ')} exits 2; stderr: ${r.stderr}`);
      assert.match(r.stderr, message, `${args.join(' ')}: the message says why`);
      assert.equal(r.stdout, '', `${args.join(' ')}: nothing on stdout`);
    }
    const help = await cli(['run', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Exit codes: 0 .* 1 .* 2 usage; 3 the server\nrefused .* 4 the server could not be reached/s);
  });

  test('3 when the server refuses: wrong or missing key, unknown run, invalid request; the message and hint are the server\'s', async () => {
    const noKey = await cli(['runs'], { url: keyed.url });
    assert.equal(noKey.code, 3, noKey.stderr);
    assert.match(noKey.stderr, /401 UNAUTHORIZED/);
    assert.match(noKey.stderr, /hint: send Authorization: Bearer/);
    const wrong = await cli(['runs', '--key', 'wrong'], { url: keyed.url });
    assert.equal(wrong.code, 3, wrong.stderr);
    const right = await cli(['runs'], { url: keyed.url, env: { SANDCASTER_API_KEY: KEY } });
    assert.equal(right.code, 0, `the key from SANDCASTER_API_KEY works: ${right.stderr}`);
    const unknown = await cli(['logs', 'run_nope']);
    assert.equal(unknown.code, 3);
    assert.match(unknown.stderr, /404 NOT_FOUND/);
    writeFileSync(join(dir, 'not-a-schema.json'), '{"type": 12}');
    const invalid = await cli(['run', 'x', '--schema', join(dir, 'not-a-schema.json')]);
    assert.equal(invalid.code, 3, invalid.stderr);
    assert.match(invalid.stderr, /400 INVALID_REQUEST/);
    assert.equal(invalid.stdout, '');
  });

  test('4 when the server cannot be reached', async () => {
    const closed = await startTestServer({ env: { ANTHROPIC_API_KEY: 'x' } });
    const url = closed.url;
    await closed.stop();
    for (const args of [['runs'], ['run', 'x'], ['logs', 'run_x', '-f']]) {
      const r = await cli(args, { url });
      assert.equal(r.code, 4, `${args.join(' ')}: exit 4; stderr: ${r.stderr}`);
      assert.match(r.stderr, /cannot reach http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/);
    }
    assert.ok(!existsSync(join(dir, 'nothing')), 'nothing written');
  });
});
