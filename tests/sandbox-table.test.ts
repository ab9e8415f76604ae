// A sandbox backend is one row plus one module: a row added from outside lib/ (here an in-memory "memfs"
// backend) has its sandcaster.json block and env read, is chosen by name, is loaded by the registry through
// its module, and serves a whole run through the HTTP server, with no other edit anywhere. No Docker needed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as v from 'valibot';
import { MODEL_APIS, SANDBOX_MODULES } from '../app.ts';
import { ConfigError, loadConfig, type Config } from '../lib/config.ts';
import { envStr } from '../lib/config-parse.ts';
import { createRegistry } from '../lib/registry.ts';
import { SANDBOX_PROVIDERS, type SandboxProviderDescriptor } from '../lib/sandbox-providers.ts';
import type { ExecResult, FileEntry, Sandbox, SandboxProvider } from '../lib/sandbox.ts';
import { startServer } from '../server.ts';
import { startFakeAnthropic, type FakeModelServer } from './fixtures/fake-models.ts';
import { logLines } from './helpers/server.ts';
import { assertWellFormedRun, readEvents } from './helpers/sse.ts';

interface MemSettings {
  greeting: string;
  token?: string;
}

/** A sandbox whose files live in a Map and whose only command is `echo`. */
class MemSandbox implements Sandbox {
  readonly provider = 'memfs';
  readonly files = new Map<string, Uint8Array>();
  constructor(readonly id: string, private readonly greeting: string) {}
  async exec(command: string): Promise<ExecResult> {
    const m = /^echo (.*)$/.exec(command);
    return m ? { stdout: `${this.greeting} ${m[1]}\n`, stderr: '', exitCode: 0, timedOut: false } : { stdout: '', stderr: 'only echo\n', exitCode: 127, timedOut: false };
  }
  async writeFile(path: string, data: Uint8Array) {
    this.files.set(path, data);
  }
  async readFile(path: string) {
    const f = this.files.get(path);
    if (!f) throw new Error(`no ${path}`);
    return f;
  }
  async list(): Promise<FileEntry[]> {
    return [...this.files].map(([path, data]) => ({ path: path.replace(/^\/workspace\//, ''), type: 'file' as const, size: data.length, mtimeMs: 0 }));
  }
  async destroy() {}
}

const created: MemSandbox[] = [];
const MEMFS: SandboxProviderDescriptor<MemSettings> = {
  fileSchema: v.strictObject({ greeting: v.optional(v.string()) }),
  settings: (file, env) => ({ greeting: (file?.greeting as string | undefined) ?? 'hello', token: envStr(env, 'MEMFS_TOKEN') }),
  envVars: ['MEMFS_TOKEN'],
  configured: () => true,
  auto: 'never',
  trustExplicitChoice: false,
  notUsableHint: 'memfs is always usable',
  secrets: (s) => [s.token],
};
const TABLE = { ...SANDBOX_PROVIDERS, memfs: MEMFS };
const memfsModule = async () => ({
  createProvider: (s: MemSettings): SandboxProvider => ({
    name: 'memfs',
    defaultImage: 'mem',
    available: async () => true,
    create: async () => {
      const sb = new MemSandbox(`mem_${created.length + 1}`, s.greeting);
      created.push(sb);
      return sb;
    },
    reap: async () => 0,
  }),
});

const root = mkdtempSync(join(tmpdir(), 'sandcaster-sandbox-table-'));
let fake: FakeModelServer;
let n = 0;
before(async () => {
  mkdirSync(join(root, 'empty'));
  fake = await startFakeAnthropic();
});
after(async () => {
  await fake.close();
  rmSync(root, { recursive: true, force: true });
});

function config(env: Record<string, string>, file?: object): Config {
  const path = join(root, `sandcaster-${++n}.json`);
  writeFileSync(path, JSON.stringify(file ?? {}));
  return loadConfig({ config: path }, env, { sandboxProviders: TABLE });
}

describe('a sandbox provider added as one row', () => {
  test('its sandcaster.json block and env vars are read and validated under its name', () => {
    const c = config({ MEMFS_TOKEN: 't0k' }, { memfs: { greeting: 'hi' }, sandboxProvider: 'memfs' });
    assert.deepEqual(c.sandboxes.memfs, { greeting: 'hi', token: 't0k' });
    assert.equal(c.defaults.sandboxProvider, 'memfs');
    assert.deepEqual(c.defaults.configuredSandboxProviders, ['docker', 'memfs'], 'e2b needs a key; docker and memfs are configured');
    assert.throws(() => config({}, { memfs: { greeting: 3 } }), (e: Error) => e instanceof ConfigError && /memfs\.greeting/.test(e.message));
    assert.throws(() => config({}, { sandboxProvider: 'nope' }), (e: Error) => e instanceof ConfigError && /sandboxProvider.*memfs/.test(e.message));
    // Without the row, its block is an unknown key.
    assert.throws(() => loadConfig({ config: join(root, `sandcaster-${n}.json`) }, {}), (e: Error) => e instanceof ConfigError, 'the built-in table does not know memfs');
  });

  test('the registry chooses and loads it only by name, and refuses names with no row', async () => {
    const c = config({});
    const registry = createRegistry(c, { modelApis: MODEL_APIS, sandboxModules: { ...SANDBOX_MODULES, memfs: memfsModule } });
    assert.equal(await registry.chooseSandboxProvider('memfs'), 'memfs');
    assert.equal(await registry.chooseSandboxProvider('nope'), undefined);
    await assert.rejects(registry.sandboxProvider('nope'), /unknown sandbox provider nope/);
    assert.equal((await registry.sandboxProvider('memfs')).name, 'memfs');
    assert.equal(registry.notUsableHint('memfs'), 'memfs is always usable');
  });

  test('a whole run through the HTTP server uses it, and its secret is never logged', async () => {
    fake.setScript([{ toolCalls: [{ name: 'bash', input: { command: 'echo from-the-row' } }] }, { text: 'done' }]);
    const dir = mkdtempSync(join(root, 'server-'));
    const env = { ANTHROPIC_API_KEY: 'sk-ant-table-test', ANTHROPIC_BASE_URL: fake.url, SANDCASTER_DB: join(dir, 'runs.db'), SANDCASTER_SANDBOX_PROVIDER: 'memfs', MEMFS_TOKEN: 'memfs-secret-DO-NOT-LEAK' };
    const c = loadConfig({ host: '127.0.0.1', port: 0 }, env, { sandboxProviders: TABLE });
    const server = await startServer(c, { registry: (cfg) => createRegistry(cfg, { modelApis: MODEL_APIS, sandboxModules: { ...SANDBOX_MODULES, memfs: memfsModule } }) });
    try {
      const res = await fetch(`${server.url}/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'go', model: 'haiku' }) });
      const events = await readEvents(res);
      const terminal = assertWellFormedRun(events);
      assert.equal(terminal.type, 'result', JSON.stringify(terminal));
      assert.equal(events[0]!.sandboxProvider, 'memfs');
      const toolResult = events.find((e) => e.type === 'tool_result');
      assert.match(String(toolResult?.content), /hello from-the-row/, `the command ran in the memfs sandbox: ${toolResult?.content}`);
      const bad = await fetch(`${server.url}/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'go', model: 'haiku', sandboxProvider: 'nope' }) });
      assert.equal(bad.status, 400);
      assert.equal((await bad.json()).error.details[0].path, 'sandboxProvider');
      logLines.push({ msg: 'probe', token: 'memfs-secret-DO-NOT-LEAK' }); // proves the check below can fail
      assert.ok(JSON.stringify(logLines.pop()).includes('memfs-secret'), 'the probe line holds the secret');
    } finally {
      await server.shutdown();
    }
    assert.ok(logLines.length > 0 && !JSON.stringify(logLines).includes('memfs-secret-DO-NOT-LEAK'), 'the row’s secret never reaches the log');
  });
});
