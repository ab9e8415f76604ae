// Server configuration (docs/configuration.md): precedence flag > env > sandcaster.json > built-in default, and
// configuration errors that name the offending field — through loadConfig and through the real CLI.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, DEFAULT_SYSTEM_PROMPT, loadConfig, type Config, type Flags } from '../lib/config.ts';

const ROOT = join(import.meta.dirname, '..');
const root = mkdtempSync(join(tmpdir(), 'sandcaster-config-test-'));
const emptyDir = join(root, 'empty');
let fileCounter = 0;
const originalCwd = process.cwd();

before(() => {
  mkdirSync(emptyDir, { recursive: true });
  // loadConfig looks for ./sandcaster.json by default; run from a folder that has none.
  process.chdir(emptyDir);
});
after(() => {
  process.chdir(originalCwd);
  rmSync(root, { recursive: true, force: true });
});

/** Writes a sandcaster.json (object → JSON, string → raw text) and returns its path. */
function writeConfig(content: unknown): string {
  const path = join(root, `config-${++fileCounter}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

function load(file: unknown | undefined, env: Record<string, string | undefined> = {}, flags: Flags = {}): Config {
  const withFile = file === undefined ? flags : { ...flags, config: writeConfig(file) };
  return loadConfig(withFile, env);
}

/** Asserts loadConfig throws a ConfigError whose message names every given fragment. */
function assertConfigError(fn: () => unknown, ...fragments: string[]): ConfigError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${caught === undefined ? 'no error' : String(caught)}`);
  for (const f of fragments) assert.ok(caught.message.includes(f), `message ${JSON.stringify(caught.message)} should name ${JSON.stringify(f)}`);
  return caught;
}

describe('defaults', () => {
  test('no file, no env, no flags: built-in defaults', () => {
    const c = loadConfig({}, {});
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.port, 8000);
    assert.equal(c.configPath, undefined);
    assert.equal(c.apiKey, undefined);
    assert.equal(c.maxConcurrentRuns, 32);
    assert.equal(c.shutdownGraceSeconds, 30);
    assert.equal(c.logLevel, 'info');
    assert.deepEqual(c.corsOrigins, []);
    assert.equal(c.db, './data/sandcaster.db');
    assert.equal(c.defaults.timeout, 300);
    assert.equal(c.defaults.sandboxProvider, undefined);
    assert.equal(c.defaults.composite, undefined);
    assert.equal(c.sandboxes.e2b.template, 'base');
    assert.equal(c.sandboxes.e2b.allowInternetAccess, false);
    assert.equal(c.sandboxes.e2b.apiKey, undefined);
    assert.deepEqual(
      { memoryMb: c.sandboxes.docker.memoryMb, cpus: c.sandboxes.docker.cpus, pidsLimit: c.sandboxes.docker.pidsLimit, network: c.sandboxes.docker.network, user: c.sandboxes.docker.user, diskMb: c.sandboxes.docker.diskMb, ro: c.sandboxes.docker.readOnlyRootfs },
      { memoryMb: 1024, cpus: 1, pidsLimit: 256, network: 'none', user: '1000:1000', diskMb: 1024, ro: true },
    );
    assert.match(c.sandboxes.docker.image, /\S/, 'a default Docker image is set');
    assert.deepEqual(c.keys, { anthropic: undefined, openai: undefined, google: undefined, openrouter: undefined });
    assert.deepEqual(c.baseUrls, {});
  });

  test('a missing default ./sandcaster.json is fine', () => {
    assert.doesNotThrow(() => loadConfig({}, {}));
  });

  test('./sandcaster.json in the working directory is read when present', () => {
    const dir = join(root, 'with-default');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'sandcaster.json'), JSON.stringify({ port: 9123, maxTurns: 7 }));
    process.chdir(dir);
    try {
      const c = loadConfig({}, {});
      assert.equal(c.port, 9123);
      assert.equal(c.defaults.maxTurns, 7);
      assert.equal(c.configPath, join(dir, 'sandcaster.json'));
    } finally {
      process.chdir(emptyDir);
    }
  });

  test('SANDCASTER_CONFIG selects the file; --config beats it', () => {
    const a = writeConfig({ port: 1001 });
    const b = writeConfig({ port: 1002 });
    assert.equal(loadConfig({}, { SANDCASTER_CONFIG: a }).port, 1001);
    assert.equal(loadConfig({ config: b }, { SANDCASTER_CONFIG: a }).port, 1002);
  });

  test('empty env values count as unset', () => {
    const c = load({ port: 1234, maxConcurrentRuns: 5 }, { PORT: '', SANDCASTER_PORT: '', SANDCASTER_MAX_CONCURRENT_RUNS: '', SANDCASTER_HOST: '  ' });
    assert.equal(c.port, 1234);
    assert.equal(c.maxConcurrentRuns, 5);
    assert.equal(c.host, '127.0.0.1');
  });
});

describe('precedence: flag > env > sandcaster.json > default', () => {
  test('port: --port > SANDCASTER_PORT > PORT > file > 8000', () => {
    const file = { port: 1111 };
    const env = { PORT: '2222', SANDCASTER_PORT: '3333' };
    assert.equal(load(file, env, { port: 4444 }).port, 4444);
    assert.equal(load(file, env).port, 3333);
    assert.equal(load(file, { PORT: '2222' }).port, 2222);
    assert.equal(load(file, {}).port, 1111);
    assert.equal(load({}, {}).port, 8000);
    assert.equal(load(undefined, { PORT: '2222' }).port, 2222);
  });

  test('port 0 from a flag is honoured (not treated as unset)', () => {
    assert.equal(load({ port: 1111 }, { SANDCASTER_PORT: '3333' }, { port: 0 }).port, 0);
  });

  test('host: --host > SANDCASTER_HOST > file > 127.0.0.1', () => {
    const file = { host: 'file.example' };
    assert.equal(load(file, { SANDCASTER_HOST: '0.0.0.0' }, { host: '::1' }).host, '::1');
    assert.equal(load(file, { SANDCASTER_HOST: '0.0.0.0' }).host, '0.0.0.0');
    assert.equal(load(file, {}).host, 'file.example');
    assert.equal(load({}, {}).host, '127.0.0.1');
  });

  test('docker image: SANDCASTER_DOCKER_IMAGE > file', () => {
    const file = { docker: { image: 'from-file:1' } };
    assert.equal(load(file, { SANDCASTER_DOCKER_IMAGE: 'from-env:2' }).sandboxes.docker.image, 'from-env:2');
    assert.equal(load(file, {}).sandboxes.docker.image, 'from-file:1');
  });

  test('docker disk: SANDCASTER_DOCKER_DISK_MB > file > 1024', () => {
    const file = { docker: { diskMb: 300 } };
    assert.equal(load(file, { SANDCASTER_DOCKER_DISK_MB: '2048' }).sandboxes.docker.diskMb, 2048);
    assert.equal(load(file, { SANDCASTER_DOCKER_DISK_MB: '' }).sandboxes.docker.diskMb, 300);
    assert.equal(load({}, {}).sandboxes.docker.diskMb, 1024);
    // Validated even when the file would win nothing: a bad value is an error.
    assertConfigError(() => load(file, { SANDCASTER_DOCKER_DISK_MB: '1g' }), 'SANDCASTER_DOCKER_DISK_MB');
  });

  test('docker settings from the file', () => {
    assert.equal(load({ docker: { readOnlyRootfs: false } }).sandboxes.docker.readOnlyRootfs, false);
    const c = load({ docker: { memoryMb: 512, cpus: 0.5, pidsLimit: 64, network: 'bridge', user: '2000:2000', readOnlyRootfs: true } });
    assert.equal(c.sandboxes.docker.memoryMb, 512);
    assert.equal(c.sandboxes.docker.cpus, 0.5);
    assert.equal(c.sandboxes.docker.pidsLimit, 64);
    assert.equal(c.sandboxes.docker.network, 'bridge');
    assert.equal(c.sandboxes.docker.user, '2000:2000');
    assert.equal(c.sandboxes.docker.readOnlyRootfs, true);
  });

  test('docker runtime, pulls: SANDCASTER_DOCKER_RUNTIME > file > engine default; pullTimeoutSeconds 600; prepull none', () => {
    const d = load({}, {}).sandboxes.docker;
    assert.deepEqual([d.runtime, d.pullTimeoutSeconds, d.prepull], [undefined, 600, []]);
    const file = { docker: { runtime: 'runsc', pullTimeoutSeconds: 30, prepull: ['python:3.12-slim', 'node:22'] } };
    const f = load(file, {}).sandboxes.docker;
    assert.deepEqual([f.runtime, f.pullTimeoutSeconds, f.prepull], ['runsc', 30, ['python:3.12-slim', 'node:22']]);
    assert.equal(load(file, { SANDCASTER_DOCKER_RUNTIME: 'kata-runtime' }).sandboxes.docker.runtime, 'kata-runtime');
    assertConfigError(() => load({}, { SANDCASTER_DOCKER_RUNTIME: 'runsc --platform=kvm' }), 'SANDCASTER_DOCKER_RUNTIME');
    assertConfigError(() => load({ docker: { runtime: '../runc' } }), 'docker.runtime');
    assertConfigError(() => load({ docker: { pullTimeoutSeconds: 0 } }), 'docker.pullTimeoutSeconds');
    assertConfigError(() => load({ docker: { prepull: 'python:3.12-slim' } }), 'docker.prepull');
    assertConfigError(() => load({ docker: { prepull: [''] } }), 'docker.prepull');
  });

  test('e2b template: SANDCASTER_E2B_TEMPLATE > file > base', () => {
    const file = { e2b: { template: 'file-tpl', allowInternetAccess: true } };
    assert.equal(load(file, { SANDCASTER_E2B_TEMPLATE: 'env-tpl' }).sandboxes.e2b.template, 'env-tpl');
    const c = load(file, { E2B_API_KEY: 'e2b_key' });
    assert.equal(c.sandboxes.e2b.template, 'file-tpl');
    assert.equal(c.sandboxes.e2b.allowInternetAccess, true);
    assert.equal(c.sandboxes.e2b.apiKey, 'e2b_key');
    assert.equal(load({}, {}).sandboxes.e2b.template, 'base');
  });

  test('sandbox provider: SANDCASTER_SANDBOX_PROVIDER > file > unset', () => {
    assert.equal(load({ sandboxProvider: 'docker' }, { SANDCASTER_SANDBOX_PROVIDER: 'e2b' }).defaults.sandboxProvider, 'e2b');
    assert.equal(load({ sandboxProvider: 'docker' }, {}).defaults.sandboxProvider, 'docker');
    assert.equal(load({ sandboxProvider: 'e2b' }, {}).defaults.sandboxProvider, 'e2b');
    assert.equal(load({}, {}).defaults.sandboxProvider, undefined);
  });

  test('maxConcurrentRuns: SANDCASTER_MAX_CONCURRENT_RUNS > file > 32', () => {
    assert.equal(load({ maxConcurrentRuns: 7 }, { SANDCASTER_MAX_CONCURRENT_RUNS: '3' }).maxConcurrentRuns, 3);
    assert.equal(load({ maxConcurrentRuns: 7 }, {}).maxConcurrentRuns, 7);
    assert.equal(load({}, {}).maxConcurrentRuns, 32);
  });

  test('shutdownGraceSeconds: SANDCASTER_SHUTDOWN_GRACE_SECONDS > file > 30 (0 allowed)', () => {
    assert.equal(load({ shutdownGraceSeconds: 12 }, { SANDCASTER_SHUTDOWN_GRACE_SECONDS: '0' }).shutdownGraceSeconds, 0);
    assert.equal(load({ shutdownGraceSeconds: 12 }, {}).shutdownGraceSeconds, 12);
    assert.equal(load({}, {}).shutdownGraceSeconds, 30);
  });

  test('logLevel: LOG_LEVEL > file > info', () => {
    assert.equal(load({ logLevel: 'warn' }, { LOG_LEVEL: 'debug' }).logLevel, 'debug');
    assert.equal(load({ logLevel: 'warn' }, {}).logLevel, 'warn');
    assert.equal(load({}, {}).logLevel, 'info');
  });

  test('db: SANDCASTER_DB > file', () => {
    assert.equal(load({ db: '/tmp/file.db' }, { SANDCASTER_DB: '/tmp/env.db' }).db, '/tmp/env.db');
    assert.equal(load({ db: '/tmp/file.db' }, {}).db, '/tmp/file.db');
  });

  test('CORS origins: comma-separated env list, trimmed, empties dropped; env beats file', () => {
    const file = { corsOrigins: ['https://file.example'] };
    assert.deepEqual(load(file, { SANDCASTER_CORS_ORIGINS: ' https://a.example, https://b.example ,,' }).corsOrigins, [
      'https://a.example',
      'https://b.example',
    ]);
    assert.deepEqual(load(file, { SANDCASTER_CORS_ORIGINS: 'https://only.example' }).corsOrigins, ['https://only.example']);
    assert.deepEqual(load(file, {}).corsOrigins, ['https://file.example']);
  });

  test('model keys, base URLs, API key and webhook secret come from the env', () => {
    const c = load(undefined, {
      ANTHROPIC_API_KEY: 'sk-ant',
      OPENROUTER_API_KEY: 'sk-or',
      OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1',
      GOOGLE_BASE_URL: 'https://gateway.example/google',
      SANDCASTER_API_KEY: 'secret-key',
      SANDCASTER_E2B_WEBHOOK_SECRET: 'whsec',
    });
    assert.deepEqual(c.keys, { anthropic: 'sk-ant', openai: undefined, google: undefined, openrouter: 'sk-or' });
    assert.deepEqual(c.baseUrls, { openai: 'http://127.0.0.1:11434/v1', google: 'https://gateway.example/google' });
    assert.equal(c.apiKey, 'secret-key');
    assert.equal(c.webhookSecret, 'whsec');
  });

  test('run defaults from the file', () => {
    const c = load({ model: 'opus', provider: 'anthropic', maxTurns: 9, timeout: 60, thinkingLevel: 'medium', systemPrompt: 'Be brief.', allowedTools: ['bash'] });
    assert.equal(c.defaults.model, 'opus');
    assert.equal(c.defaults.provider, 'anthropic');
    assert.equal(c.defaults.maxTurns, 9);
    assert.equal(c.defaults.timeout, 60);
    assert.equal(c.defaults.thinkingLevel, 'medium');
    assert.equal(c.defaults.systemPrompt, `${DEFAULT_SYSTEM_PROMPT}\n\nBe brief.`, 'the file prompt extends the built-in one (which tells the model about /workspace)');
    assert.deepEqual(c.defaults.allowedTools, ['bash']);
  });

  test('composite block: the documented defaults fill what the file leaves out', () => {
    const c = load({ composite: {} });
    assert.ok(c.defaults.composite, 'an empty composite block still gives composite defaults');
    assert.equal(c.defaults.composite.maxSandboxes, 3);
    assert.equal(c.defaults.composite.maxTotalSpawns, 10);
    // docs/configuration.md#composite-runs: allowedProviders defaults to all *configured* providers.
    assert.deepEqual(c.defaults.composite.allowedProviders, ['docker'], 'no E2B key: docker only');
    const withE2b = load({ composite: {} }, { E2B_API_KEY: 'e2b_0123abcd' });
    assert.deepEqual([...withE2b.defaults.composite!.allowedProviders].sort(), ['docker', 'e2b']);
    const d = load({ composite: { maxSandboxes: 2, maxTotalSpawns: 4, allowedProviders: ['docker'] } });
    assert.equal(d.defaults.composite?.maxSandboxes, 2);
    assert.equal(d.defaults.composite?.maxTotalSpawns, 4);
    assert.deepEqual(d.defaults.composite?.allowedProviders, ['docker']);
  });

  test('pricing overrides from the file', () => {
    const c = load({ pricing: { 'my-model': { input: 1, output: 2, cacheRead: 0.1 } } });
    assert.deepEqual(c.pricing['my-model'], { input: 1, output: 2, cacheRead: 0.1 });
  });
});

describe('errors in sandcaster.json name the field', () => {
  test('unknown top-level key', () => {
    assertConfigError(() => load({ port: 8000, bogusSetting: 1 }), 'bogusSetting');
  });

  test('unknown nested key (docker.bogus, e2b.nope, composite.extra)', () => {
    assertConfigError(() => load({ docker: { image: 'x', bogus: true } }), 'docker.bogus');
    assertConfigError(() => load({ e2b: { nope: 1 } }), 'e2b.nope');
    assertConfigError(() => load({ composite: { extra: 1 } }), 'composite.extra');
  });

  test('wrong types', () => {
    assertConfigError(() => load({ port: '8000' }), 'port');
    assertConfigError(() => load({ maxTurns: 2.5 }), 'maxTurns');
    assertConfigError(() => load({ docker: { memoryMb: '1g' } }), 'docker.memoryMb');
    assertConfigError(() => load({ docker: { readOnlyRootfs: 'yes' } }), 'docker.readOnlyRootfs');
    assertConfigError(() => load({ corsOrigins: 'https://a.example' }), 'corsOrigins');
    assertConfigError(() => load({ logLevel: 'verbose' }), 'logLevel');
    assertConfigError(() => load({ sandboxProvider: 'kubernetes' }), 'sandboxProvider');
    assertConfigError(() => load({ provider: 'mistral' }), 'provider');
    assertConfigError(() => load({ allowedTools: ['bash', 'rm_rf'] }), 'allowedTools');
    assertConfigError(() => load({ docker: { network: 'host' } }), 'docker.network');
    assertConfigError(() => load({ docker: { user: 'root' } }), 'docker.user');
  });

  test('out-of-range numbers', () => {
    assertConfigError(() => load({ port: 70000 }), 'port');
    assertConfigError(() => load({ maxTurns: 0 }), 'maxTurns');
    assertConfigError(() => load({ maxTurns: 501 }), 'maxTurns');
    assertConfigError(() => load({ timeout: 4 }), 'timeout');
    assertConfigError(() => load({ timeout: 3601 }), 'timeout');
    assertConfigError(() => load({ maxConcurrentRuns: 0 }), 'maxConcurrentRuns');
    assertConfigError(() => load({ docker: { diskMb: 31 } }), 'docker.diskMb');
    assertConfigError(() => load({ docker: { diskMb: 64.5 } }), 'docker.diskMb');
    assertConfigError(() => load({ composite: { maxSandboxes: 21 } }), 'composite.maxSandboxes');
    assertConfigError(() => load({ composite: { maxTotalSpawns: 0 } }), 'composite.maxTotalSpawns');
    assertConfigError(() => load({ pricing: { m: { input: -1, output: 1 } } }), 'pricing');
  });

  test('the root and nested blocks must be objects (an array is not one, even empty)', () => {
    assertConfigError(() => load([]));
    assertConfigError(() => load([1, 2]));
    assertConfigError(() => load('"text"'));
    assertConfigError(() => load('null'));
    assertConfigError(() => load({ docker: [] }), 'docker');
    assertConfigError(() => load({ e2b: [] }), 'e2b');
    assertConfigError(() => load({ composite: [] }), 'composite');
  });

  test('invalid JSON names the file', () => {
    const path = writeConfig('{"port": 8000,');
    const err = assertConfigError(() => loadConfig({ config: path }, {}), path);
    assert.match(err.message, /JSON/);
  });

  test('an explicit --config or SANDCASTER_CONFIG file that is missing is an error', () => {
    const missing = join(root, 'does-not-exist.json');
    assertConfigError(() => loadConfig({ config: missing }, {}), 'config', missing);
    assertConfigError(() => loadConfig({}, { SANDCASTER_CONFIG: missing }), 'config', missing);
  });

  test('an invalid outputFormat schema is rejected', () => {
    assertConfigError(() => load({ outputFormat: { type: 'no-such-type' } }), 'outputFormat');
  });
});

describe('errors in the environment name the variable', () => {
  for (const [name, value] of [
    ['SANDCASTER_MAX_CONCURRENT_RUNS', 'abc'],
    ['SANDCASTER_MAX_CONCURRENT_RUNS', '0'],
    ['SANDCASTER_MAX_CONCURRENT_RUNS', '2.5'],
    ['SANDCASTER_MAX_CONCURRENT_RUNS', '-3'],
    ['SANDCASTER_DOCKER_DISK_MB', '16'],
    ['SANDCASTER_DOCKER_DISK_MB', '-64'],
    ['SANDCASTER_DOCKER_DISK_MB', 'big'],
    ['SANDCASTER_SHUTDOWN_GRACE_SECONDS', 'soon'],
    ['SANDCASTER_SHUTDOWN_GRACE_SECONDS', '3601'],
    ['PORT', '99999'],
    ['PORT', 'eighty'],
    ['SANDCASTER_PORT', '65536'],
    ['SANDCASTER_PORT', '12ab'],
  ] as const) {
    test(`${name}=${value}`, () => {
      assertConfigError(() => loadConfig({}, { [name]: value }), name);
    });
  }

  test('SANDCASTER_SANDBOX_PROVIDER must be docker or e2b', () => {
    assertConfigError(() => loadConfig({}, { SANDCASTER_SANDBOX_PROVIDER: 'kubernetes' }), 'SANDCASTER_SANDBOX_PROVIDER');
    assertConfigError(() => loadConfig({}, { SANDCASTER_SANDBOX_PROVIDER: 'Docker' }), 'SANDCASTER_SANDBOX_PROVIDER');
  });

  test('LOG_LEVEL must be a known level', () => {
    assertConfigError(() => loadConfig({}, { LOG_LEVEL: 'verbose' }), 'LOG_LEVEL');
  });

  for (const name of ['ANTHROPIC_BASE_URL', 'OPENAI_BASE_URL', 'GOOGLE_BASE_URL', 'OPENROUTER_BASE_URL']) {
    test(`${name} must be an http(s) URL`, () => {
      assertConfigError(() => loadConfig({}, { [name]: 'not a url' }), name);
      assertConfigError(() => loadConfig({}, { [name]: 'ftp://files.example/v1' }), name);
      assert.doesNotThrow(() => loadConfig({}, { [name]: 'https://proxy.example/v1' }));
    });
  }

  test('an env error wins over a valid file (never half-configured)', () => {
    assertConfigError(() => load({ maxConcurrentRuns: 5 }, { SANDCASTER_MAX_CONCURRENT_RUNS: 'lots' }), 'SANDCASTER_MAX_CONCURRENT_RUNS');
  });
});

// The real CLI, as an operator runs it.
describe('CLI', () => {
  const cleanEnv = (): NodeJS.ProcessEnv => {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (/^(SANDCASTER_|PORT$|LOG_LEVEL$|E2B_|ANTHROPIC_|OPENAI_|GOOGLE_|OPENROUTER_|NODE_TEST)/.test(k)) continue;
      env[k] = v;
    }
    // If a bad configuration were ever accepted, keep any database out of the project folder.
    env.SANDCASTER_DB = join(root, 'cli.db');
    return env;
  };

  function cli(args: string[], env: NodeJS.ProcessEnv = {}, timeout = 20_000): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string; ms: number }> {
    const started = Date.now();
    return new Promise((resolve) => {
      execFile(process.execPath, ['--import', 'tsx', 'server.ts', ...args], { cwd: ROOT, env: { ...cleanEnv(), ...env }, timeout, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
        const e = err as (Error & { code?: number | string; signal?: string }) | null;
        resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, signal: e?.signal ?? null, stdout, stderr, ms: Date.now() - started });
      });
    });
  }

  const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version as string;

  test('--help: exit 0, usage on stdout', async () => {
    const r = await cli(['--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Usage: sandcaster serve/);
    assert.match(r.stdout, /--port/);
    assert.equal(r.stderr, '');
  });

  test('--version prints the package.json version', async () => {
    const r = await cli(['--version']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), version);
  });

  test('an unknown flag exits 2 with usage on stderr', async () => {
    const r = await cli(['--bogus']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /bogus/);
    assert.match(r.stderr, /Usage: sandcaster serve/);
    assert.equal(r.stdout, '');
  });

  test('an unknown command exits 2', async () => {
    const r = await cli(['launch']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /Usage: sandcaster serve/);
  });

  test('--port abc exits 2 with usage on stderr', async () => {
    const r = await cli(['serve', '--port', 'abc']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--port/);
    assert.match(r.stderr, /Usage: sandcaster serve/);
    assert.equal(r.stdout, '');
  });

  test('--port 70000 exits 2', async () => {
    const r = await cli(['serve', '--port', '70000']);
    assert.equal(r.code, 2);
  });

  test('a bad sandcaster.json via --config exits non-zero quickly, naming the field; never listens', async () => {
    const path = writeConfig({ docker: { image: 'x', bogus: true } });
    const r = await cli(['serve', '--config', path, '--port', '0']);
    assert.equal(r.signal, null, 'must exit by itself, not be killed by the timeout');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /docker\.bogus/);
    assert.doesNotMatch(r.stdout, /listening/);
  });

  test('a bad env number exits non-zero naming the variable; never listens', async () => {
    const r = await cli(['serve', '--port', '0'], { SANDCASTER_MAX_CONCURRENT_RUNS: 'abc' });
    assert.equal(r.signal, null);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /SANDCASTER_MAX_CONCURRENT_RUNS/);
    assert.doesNotMatch(r.stdout, /listening/);
  });
});

describe('bad env numbers are errors even when a higher-precedence source wins', () => {
  test('--port with PORT=abc', () => {
    assertConfigError(() => load(undefined, { PORT: 'abc' }, { port: 8080 }), 'PORT');
  });
  test('SANDCASTER_PORT set with PORT=99999', () => {
    assertConfigError(() => load(undefined, { SANDCASTER_PORT: '9000', PORT: '99999' }), 'PORT');
  });
});
