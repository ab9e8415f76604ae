// `sandcaster doctor`, the same checks at `serve` start, `sandcaster wait`, the listen-failure message, and
// what a new user pastes from the README. The CLI runs as a real subprocess against the real Docker engine,
// a fake E2B control plane driven by the real e2b SDK, and real servers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_SYSTEM_PROMPT, loadConfig } from '../lib/config.ts';
import { lockDatabase } from '../lib/db-lock.ts';
import { checkDatabase, checkDockerEngine, checkDockerRuntime, checkModelKeys, runChecks, type DockerProbe } from '../lib/doctor.ts';
import { startServer } from '../server.ts';
import { startFakeE2b, type FakeE2b } from './fixtures/fake-e2b.ts';
import { spawnServer } from './helpers/child.ts';
import { TEST_IMAGE, waitFor } from './helpers/server.ts';

const ROOT = join(import.meta.dirname, '..');
let dir: string;
let e2b: FakeE2b;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sandcaster-doctor-'));
  e2b = await startFakeE2b();
});
after(async () => {
  await e2b.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The environment of a fresh shell: nothing of ours leaks in from the test runner. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(SANDCASTER_|PORT$|LOG_LEVEL$|E2B_|ANTHROPIC_|OPENAI_|GOOGLE_|OPENROUTER_|DOCKER_HOST$|NODE_TEST)/.test(k)) env[k] = v;
  }
  return env;
}

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: NodeJS.ProcessEnv, timeout = 30_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'server.ts', ...args], { cwd: ROOT, env: { ...cleanEnv(), ...env }, timeout, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number | string }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, stdout, stderr });
    });
  });
}

/** doctor's lines by check name; every line must be `<status> <name>: <found>[. Fix: <what>]`. */
function lines(stdout: string): Map<string, { status: string; text: string }> {
  const out = new Map<string, { status: string; text: string }>();
  assert.ok(stdout.endsWith('\n'), `output ends with a newline: ${JSON.stringify(stdout)}`);
  for (const line of stdout.slice(0, -1).split('\n')) {
    const m = /^(ok  |warn|FAIL) ([a-z0-9 ]+): (.+)$/.exec(line);
    assert.ok(m, `a well-formed check line: ${JSON.stringify(line)}`);
    assert.ok(!out.has(m[2]!), `one line per check: ${m[2]}`);
    out.set(m[2]!, { status: m[1]!.trim(), text: m[3]! });
  }
  return out;
}

const freePort = async (): Promise<number> => {
  const srv = createNetServer().listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
};

describe('doctor checks with injected probes', () => {
  const engine = (over: Partial<DockerProbe> = {}): DockerProbe => ({
    where: 'unix:///test.sock',
    version: async () => ({ version: '27.0.1', apiVersion: '1.46' }),
    hasImage: async () => true,
    runtimes: async () => ['runc'],
    ...over,
  });
  const refused = async (): Promise<never> => {
    throw Object.assign(new Error('connect ECONNREFUSED /test.sock'), { code: 'ECONNREFUSED' });
  };

  test('an unreachable engine fails where runs use Docker and only warns where they use E2B', async () => {
    const dockerRuns = await checkDockerEngine(loadConfig({}, {}), engine({ version: refused }));
    assert.equal(dockerRuns.status, 'FAIL');
    assert.match(dockerRuns.found, /ECONNREFUSED/);
    assert.match(dockerRuns.fix ?? '', /DOCKER_HOST/);
    const e2bRuns = await checkDockerEngine(loadConfig({}, { E2B_API_KEY: 'e2b_x' }), engine({ version: refused }));
    assert.equal(e2bRuns.status, 'warn', e2bRuns.found);
  });

  test('an engine that never answers is a FAIL, not a hang', async () => {
    const c = await checkDockerEngine(loadConfig({}, {}), engine({ version: () => new Promise(() => {}) }));
    assert.equal(c.status, 'FAIL');
    assert.match(c.found, /no answer within/);
  });

  test('a configured runtime the engine does not know fails with how to register it', async () => {
    const missing = await checkDockerRuntime('runsc', engine());
    assert.equal(missing.status, 'FAIL');
    assert.match(missing.found, /runsc.*runc/);
    assert.match(missing.fix ?? '', /daemon\.json/);
    assert.equal((await checkDockerRuntime('runsc', engine({ runtimes: async () => ['runc', 'runsc'] }))).status, 'ok');
  });

  test('docker.prepull: images already on the host pass; missing ones are a warning naming them', async () => {
    const config = loadConfig({}, { ANTHROPIC_API_KEY: 'k', SANDCASTER_DB: ':memory:' });
    const withPrepull = { ...config, sandboxes: { ...config.sandboxes, docker: { ...config.sandboxes.docker, prepull: ['have:1', 'lack:2'] } } };
    const present = (image: string) => Promise.resolve(image === 'have:1');
    const checks = await runChecks(withPrepull, { docker: engine({ hasImage: present }), e2b: async () => {} }, { database: false });
    const pre = checks.find((c) => c.name === 'docker prepull');
    assert.equal(pre?.status, 'warn', JSON.stringify(pre));
    assert.match(pre?.found ?? '', /lack:2/);
    assert.doesNotMatch(pre?.found ?? '', /have:1/);
    const all = await runChecks(withPrepull, { docker: engine({ hasImage: async () => true }), e2b: async () => {} }, { database: false });
    assert.equal(all.find((c) => c.name === 'docker prepull')?.status, 'ok');
    const none = await runChecks(config, { docker: engine({ hasImage: async () => true }), e2b: async () => {} }, { database: false });
    assert.ok(!none.some((c) => c.name === 'docker prepull'), 'no prepull line without docker.prepull');
  });

  test('the image and runtime are looked at only when the engine answers; the runtime only when set', async () => {
    const config = loadConfig({}, { ANTHROPIC_API_KEY: 'k', SANDCASTER_DB: ':memory:' });
    const probes = { docker: engine({ version: refused }), e2b: async () => {} };
    const names = (await runChecks(config, probes, { database: true })).map((c) => c.name);
    assert.ok(!names.includes('docker image') && !names.includes('docker runtime'), names.join(', '));
    const up = (await runChecks(config, { ...probes, docker: engine({ hasImage: async () => false }) }, { database: false })).map((c) => `${c.status} ${c.name}`);
    assert.ok(up.includes('warn docker image') && !up.some((n) => n.endsWith('runtime')) && !up.some((n) => n.endsWith('database')), up.join(', '));
    const withRuntime = { ...config, sandboxes: { ...config.sandboxes, docker: { ...config.sandboxes.docker, runtime: 'runsc' } } };
    assert.ok((await runChecks(withRuntime, probes, { database: false })).every((c) => c.name !== 'docker runtime'), 'not with the engine down');
    const rt = (await runChecks(withRuntime, { ...probes, docker: engine() }, { database: false })).find((c) => c.name === 'docker runtime');
    assert.equal(rt?.status, 'FAIL', JSON.stringify(rt));
  });

  test('model keys: a line per provider; missing is a warning unless it is the configured one or there is none at all', () => {
    const some = checkModelKeys(loadConfig({}, { ANTHROPIC_API_KEY: 'k' }));
    assert.deepEqual(some.map((c) => `${c.status} ${c.name}`), ['ok model key anthropic', 'warn model key openai', 'warn model key google', 'warn model key openrouter']);
    writeFileSync(join(dir, 'openai.json'), JSON.stringify({ model: 'gpt5' }));
    const configured = checkModelKeys(loadConfig({ config: join(dir, 'openai.json') }, { ANTHROPIC_API_KEY: 'k' }));
    assert.equal(configured.find((c) => c.name === 'model key openai')?.status, 'FAIL', 'the configured default model needs its key');
    const none = checkModelKeys(loadConfig({}, {}));
    assert.equal(none.at(-1)?.status, 'FAIL');
    assert.match(none.at(-1)?.fix ?? '', /ANTHROPIC_API_KEY/);
  });

  test('database: locked by a live holder, or not a usable path, fails; a fresh path passes', () => {
    const db = join(dir, 'held', 'runs.db');
    assert.equal(checkDatabase(loadConfig({}, { SANDCASTER_DB: db })).status, 'ok', 'folder to be created');
    const lock = lockDatabase(db);
    try {
      const c = checkDatabase(loadConfig({}, { SANDCASTER_DB: db }));
      assert.equal(c.status, 'FAIL');
      assert.match(c.found, new RegExp(`pid ${process.pid}`));
    } finally {
      lock.release();
    }
    assert.equal(checkDatabase(loadConfig({}, { SANDCASTER_DB: db })).status, 'ok', 'free again');
    writeFileSync(join(dir, 'a-file'), 'x');
    assert.equal(checkDatabase(loadConfig({}, { SANDCASTER_DB: join(dir, 'a-file', 'runs.db') })).status, 'FAIL', 'a file where the folder should be');
  });
});

describe('sandcaster doctor (subprocess)', () => {
  test('a working setup: every check passes, exit 0', async () => {
    const r = await cli(['doctor'], {
      ANTHROPIC_API_KEY: 'sk-ant-doctor-1234567890',
      E2B_API_KEY: e2b.apiKey,
      ...e2b.env(),
      SANDCASTER_DOCKER_IMAGE: TEST_IMAGE,
      SANDCASTER_DB: join(dir, 'working', 'runs.db'),
    });
    const got = lines(r.stdout);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const name of ['config', 'docker engine', 'docker image', 'e2b', 'model key anthropic', 'database']) assert.equal(got.get(name)?.status, 'ok', `${name}: ${got.get(name)?.text}`);
    assert.match(got.get('docker engine')!.text, /^Docker \S+ \(API \d+\.\d+\)/);
    assert.ok(![...got.values()].some((l) => l.status === 'FAIL'), r.stdout);
    assert.ok(e2b.requests.some((q) => q.method === 'GET' && q.path === '/v2/sandboxes'), 'E2B was asked, with the key');
    assert.ok(!r.stdout.includes(e2b.apiKey) && !r.stdout.includes('sk-ant-doctor'), 'no key is printed');
  });

  test('a broken setup: one FAIL line per problem with a fix, exit 1', async () => {
    const db = join(dir, 'broken.db');
    const holder = await spawnServer({ SANDCASTER_DB: db });
    try {
      const r = await cli(['doctor'], {
        SANDCASTER_SANDBOX_PROVIDER: 'docker',
        DOCKER_HOST: 'unix:///nonexistent/docker.sock',
        E2B_API_KEY: 'e2b_0000000000000000000000000000000000000000',
        ...e2b.env(),
        SANDCASTER_DB: db,
      });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const got = lines(r.stdout);
      assert.equal(got.get('config')?.status, 'ok');
      const fail = (name: string, found: RegExp, fix: RegExp) => {
        const l = got.get(name);
        assert.equal(l?.status, 'FAIL', `${name}: ${l?.text}`);
        const [what, how] = l!.text.split('. Fix: ');
        assert.match(what!, found);
        assert.match(how ?? '', fix, `${name} says what to do`);
      };
      fail('docker engine', /nonexistent\/docker\.sock/, /DOCKER_HOST/);
      fail('e2b', /E2B refused E2B_API_KEY/, /E2B_API_KEY/);
      fail('model keys', /no model provider has a key/, /ANTHROPIC_API_KEY/);
      fail('database', new RegExp(`pid ${holder.proc.pid}`), /stop the other server/);
      assert.ok(!got.has('docker image'), 'no image line while the engine is unreachable');
    } finally {
      holder.proc.kill('SIGTERM');
      await holder.exited;
    }
  });

  test('a bad sandcaster.json: a FAIL line naming the field, exit 1', async () => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ maxTurns: 0 }));
    const r = await cli(['doctor', '--config', file], { SANDCASTER_DB: join(dir, 'bad-config.db') });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const got = lines(r.stdout);
    assert.equal(got.get('config')?.status, 'FAIL');
    assert.match(got.get('config')!.text, /maxTurns/);
  });

  test('flags of another command exit 2', async () => {
    const r = await cli(['doctor', '--port', '1'], {});
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--port does not apply to doctor/);
  });
});

describe('serve', () => {
  test('runs the checks at start and logs each failure as a warning, still serving', async () => {
    const child = await spawnServer({
      SANDCASTER_DB: join(dir, 'serve-checks.db'),
      SANDCASTER_SANDBOX_PROVIDER: 'docker',
      DOCKER_HOST: 'unix:///nonexistent/docker.sock',
      ANTHROPIC_API_KEY: 'sk-ant-serve-1234567890',
    });
    try {
      const failed = () => child.logs.filter((l) => l.msg === 'startup check failed');
      assert.ok(await waitFor(() => failed().length > 0, 15_000), `a warning is logged: ${JSON.stringify(child.logs.map((l) => l.msg))}`);
      const docker = failed().find((l) => l.check === 'docker engine');
      assert.ok(docker && docker.level === 'warn' && /DOCKER_HOST/.test(docker.fix), JSON.stringify(failed()));
      assert.ok(!failed().some((l) => l.check === 'model keys' || l.check === 'database'), 'only real failures (the server holds its own database)');
      assert.equal((await child.fetch('/health')).status, 200, 'the server still serves');
    } finally {
      child.proc.kill('SIGTERM');
      assert.equal(await child.exited, 0);
    }
  });

  test('a port in use gives a sentence that says what to do, exit 1', async () => {
    const blocker = createNetServer().listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    const { port } = blocker.address() as AddressInfo;
    try {
      const r = await cli(['serve', '--host', '127.0.0.1', '--port', String(port)], { SANDCASTER_DB: join(dir, 'inuse.db') });
      assert.equal(r.code, 1);
      assert.equal(r.stderr, `sandcaster: cannot start: port ${port} on 127.0.0.1 is in use; stop the other server or pass --port\n`);
    } finally {
      blocker.close();
    }
  });
});

describe('sandcaster wait', () => {
  test('exits 0 once /health answers 200: not on a refused connection, not on a 503', async () => {
    const port = await freePort();
    let polls = 0;
    const placeholder = createHttpServer((_req, res) => {
      polls++;
      res.writeHead(503).end('{"status":"draining"}');
    }).listen(port, '127.0.0.1');
    await once(placeholder, 'listening');
    const proc = spawn(process.execPath, ['--import', 'tsx', 'server.ts', 'wait', '--timeout', '60'], { cwd: ROOT, env: { ...cleanEnv(), SANDCASTER_PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    proc.stderr!.on('data', (d) => (stderr += d));
    const exited = once(proc, 'exit');
    let server: Awaited<ReturnType<typeof startServer>> | undefined;
    try {
      assert.ok(await waitFor(() => polls >= 2, 20_000), `wait polls (${polls})`);
      assert.equal(proc.exitCode, null, 'a 503 is not ready');
      await new Promise((r) => placeholder.close(r));
      server = await startServer(loadConfig({ host: '127.0.0.1', port }, { SANDCASTER_DB: join(dir, 'wait.db') }));
      const [code] = await exited;
      assert.equal(code, 0, stderr);
      assert.match(stderr, /is ready/);
    } finally {
      if (proc.exitCode === null) proc.kill('SIGKILL');
      placeholder.close();
      await server?.shutdown();
    }
  });

  test('exits 1 naming the URL and what it saw when nothing answers in time', async () => {
    const port = await freePort();
    const r = await cli(['wait', '--url', `http://127.0.0.1:${port}`, '--timeout', '1'], {});
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${port} is not ready after 1 s \\(last: ECONNREFUSED\\)`));
  });
});

describe('the README, as a new user pastes it', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

  test('every sandcaster.json sample (README, docs/configuration.md) loads as written, and the full one starts a server', async () => {
    const jsonBlocks = (md: string) => [...md.matchAll(/^```json\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
    const reference = jsonBlocks(readFileSync(join(ROOT, 'docs', 'configuration.md'), 'utf8'));
    const blocks = [...jsonBlocks(readme), ...reference];
    assert.ok(blocks.length >= 4 && reference.length >= 1, `found ${blocks.length} json blocks`);
    const full = blocks.find((b) => b.includes('"docker"') && b.includes('"systemPrompt"'));
    assert.ok(full, 'the full sample is there');
    blocks.forEach((b, i) => {
      const file = join(dir, `readme-${i}.json`);
      writeFileSync(file, b);
      assert.doesNotThrow(() => loadConfig({ config: file }, {}), `sample ${i} loads:\n${b}`);
    });
    writeFileSync(join(dir, 'readme-full.json'), full);
    const config = loadConfig({ config: join(dir, 'readme-full.json'), port: 0 }, { SANDCASTER_DB: join(dir, 'readme.db') });
    assert.ok(config.defaults.systemPrompt.startsWith(DEFAULT_SYSTEM_PROMPT), 'a configured systemPrompt extends the built-in one');
    const server = await startServer(config);
    try {
      assert.equal((await fetch(server.url + '/health')).status, 200);
    } finally {
      await server.shutdown();
    }
  });

  test('`npm start --silent` (what the README says to run when reading the log) writes only JSON lines to stdout', async () => {
    const proc = spawn('npm', ['start', '--silent', '--', '--host', '127.0.0.1', '--port', '0'], {
      cwd: ROOT,
      env: { ...cleanEnv(), SANDCASTER_DB: join(dir, 'npm-start.db') },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group, so the server under npm is stopped with it
    });
    let stdout = '';
    proc.stdout!.on('data', (d) => (stdout += d));
    const exited = once(proc, 'exit');
    try {
      assert.ok(await waitFor(() => stdout.includes('"msg":"listening"'), 30_000), `listening: ${stdout}`);
      for (const line of stdout.trim().split('\n')) assert.doesNotThrow(() => JSON.parse(line), `a JSON line: ${line}`);
    } finally {
      process.kill(-proc.pid!, 'SIGTERM');
      await exited;
    }
  });
});
