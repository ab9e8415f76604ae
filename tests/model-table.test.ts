// A model provider is one row: a row added from outside lib/ (here, an OpenAI-compatible "acme" server)
// has its key and base URL read, is chosen by model id or key, is loaded by the registry through its
// wire API, and serves a whole run through the HTTP server — with no other edit anywhere.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MODEL_APIS, createAppRegistry } from '../app.ts';
import { ConfigError, loadConfig, type Config } from '../lib/config.ts';
import { ModelError } from '../lib/model.ts';
import { MODEL_PROVIDERS, type ModelProviderDescriptor, type ModelProviderTable } from '../lib/model-providers.ts';
import { isPlanError, planRun, type PlanError, type RunPlan } from '../lib/plan.ts';
import { parseQuery } from '../lib/request.ts';
import { startServer } from '../server.ts';
import { startFakeOpenAI, type FakeModelServer } from './fixtures/fake-models.ts';
import { TEST_IMAGE, logLines } from './helpers/server.ts';
import { assertWellFormedRun, readEvents } from './helpers/sse.ts';

const ACME_KEY = 'acme-secret-key-0123456789-DO-NOT-LEAK';

const ACME: ModelProviderDescriptor = {
  api: 'openai-chat',
  keyEnv: 'ACME_API_KEY',
  baseUrlEnv: 'ACME_BASE_URL',
  endpoint: 'http://127.0.0.1:9/v1', // never used: every test sets ACME_BASE_URL
  defaultModel: 'acme-large',
  modelIds: /^acme-/,
  auto: true,
  keyHint: 'ask the Acme admin for one',
};
const TABLE: ModelProviderTable = { ...MODEL_PROVIDERS, acme: ACME };

const root = mkdtempSync(join(tmpdir(), 'sandcaster-model-table-'));
const originalCwd = process.cwd();
let fake: FakeModelServer;
let n = 0;

before(async () => {
  mkdirSync(join(root, 'empty'));
  process.chdir(join(root, 'empty')); // no ./sandcaster.json picked up by accident
  fake = await startFakeOpenAI();
});
after(async () => {
  process.chdir(originalCwd);
  await fake.close();
  rmSync(root, { recursive: true, force: true });
});

function config(env: Record<string, string>, file?: object, table: ModelProviderTable = TABLE): Config {
  if (!file) return loadConfig({}, env, { modelProviders: table });
  const path = join(root, `sandcaster-${++n}.json`);
  writeFileSync(path, JSON.stringify(file));
  return loadConfig({ config: path }, env, { modelProviders: table });
}

function plan(body: Record<string, unknown>, cfg: Config): RunPlan | PlanError {
  const parsed = parseQuery({ prompt: 'do it', ...body });
  assert.ok(parsed.ok, `request should parse: ${JSON.stringify(!parsed.ok && parsed.issues)}`);
  return planRun(parsed.value, cfg);
}

describe('a provider added as one row', () => {
  test('every built-in row names a wire API that app.ts loads', () => {
    for (const [name, row] of Object.entries(MODEL_PROVIDERS)) {
      assert.ok(Object.hasOwn(MODEL_APIS, row.api), `${name} speaks ${row.api}, which app.ts does not load`);
    }
  });

  test("config reads the row's key and base URL through the variables it names", () => {
    const c = config({ ACME_API_KEY: ACME_KEY, ACME_BASE_URL: fake.url, OPENAI_API_KEY: 'sk-o' });
    assert.equal(c.keys.acme, ACME_KEY);
    assert.equal(c.baseUrls.acme, fake.url);
    assert.equal(c.keys.openai, 'sk-o', 'the built-in rows are read as before');
    assert.throws(() => config({ ACME_BASE_URL: 'ftp://acme.example' }), (err) => err instanceof ConfigError && err.message.includes('ACME_BASE_URL'));
    // The built-in table has no such row, so nothing reads these variables there.
    const builtin = config({ ACME_API_KEY: ACME_KEY }, undefined, MODEL_PROVIDERS);
    assert.equal(Object.hasOwn(builtin.keys, 'acme'), false, 'no acme key without the acme row');
  });

  test('the row is chosen by model id, by key in table order, and from sandcaster.json', () => {
    const byId = plan({ model: 'acme-small' }, config({ ACME_API_KEY: ACME_KEY, ANTHROPIC_API_KEY: 'sk-a' }));
    assert.ok(!isPlanError(byId) && byId.provider === 'acme' && byId.model === 'acme-small', JSON.stringify(byId));
    // Only its key set and no model: the row's default model.
    const byKey = plan({}, config({ ACME_API_KEY: ACME_KEY }));
    assert.ok(!isPlanError(byKey) && byKey.provider === 'acme' && byKey.model === 'acme-large', JSON.stringify(byKey));
    // Built-in rows come first in the table, so their keys win the automatic choice.
    const first = plan({}, config({ ACME_API_KEY: ACME_KEY, OPENAI_API_KEY: 'sk-o' }));
    assert.ok(!isPlanError(first) && first.provider === 'openai', JSON.stringify(first));
    const fromFile = plan({}, config({ ACME_API_KEY: ACME_KEY, OPENAI_API_KEY: 'sk-o' }, { provider: 'acme' }));
    assert.ok(!isPlanError(fromFile) && fromFile.provider === 'acme', JSON.stringify(fromFile));
    assert.throws(() => config({}, { provider: 'bogus' }), (err) => err instanceof ConfigError && /provider/.test(err.message) && /acme/.test(err.message));
  });

  test('a row with auto: false is used only when named', () => {
    const table = { ...MODEL_PROVIDERS, acme: { ...ACME, auto: false } };
    const none = plan({}, config({ ACME_API_KEY: ACME_KEY }, undefined, table));
    assert.ok(isPlanError(none) && none.status === 503, JSON.stringify(none));
    const named = plan({ model: 'acme-small' }, config({ ACME_API_KEY: ACME_KEY }, undefined, table));
    assert.ok(!isPlanError(named) && named.provider === 'acme', JSON.stringify(named));
  });

  test('without its key: NOT_CONFIGURED naming its variable and hint', () => {
    const e = plan({ model: 'acme-small' }, config({ ANTHROPIC_API_KEY: 'sk-a' }));
    assert.ok(isPlanError(e) && e.status === 503, JSON.stringify(e));
    assert.ok('hint' in e && e.hint.includes('ACME_API_KEY') && e.hint.includes('Acme admin'), JSON.stringify(e));
  });

  test("the registry loads the row's wire API; the client talks to its endpoint and names its variables", async () => {
    fake.setScript([{ text: ['hello ', 'from acme'] }, { error: { status: 401 } }]);
    const seen = fake.requests.length;
    const registry = createAppRegistry(config({ ACME_API_KEY: ACME_KEY, ACME_BASE_URL: fake.url }));
    const client = await registry.modelClient('acme');
    assert.equal(await registry.modelClient('acme'), client, 'one client per provider');
    const turn = () =>
      client.turn(
        { model: 'acme-small', system: '', messages: [{ role: 'user', content: 'hi' }], tools: [], thinkingLevel: 'none', signal: new AbortController().signal },
        { onText: () => {}, onThinking: () => {} },
      );
    const res = await turn();
    assert.equal(res.text, 'hello from acme');
    assert.equal(fake.requests[seen]!.headers.authorization, `Bearer ${ACME_KEY}`);
    assert.equal(fake.requests[seen]!.body.model, 'acme-small');
    const err = await turn().catch((e) => e);
    assert.ok(err instanceof ModelError && /authentication failed: check ACME_API_KEY/.test(err.message), String(err));
    assert.match(err.hint ?? '', /ACME_API_KEY \(ask the Acme admin/);
    await assert.rejects(createAppRegistry(config({})).modelClient('acme'), /no API key for acme \(ACME_API_KEY\)/);
  });

  test('a whole run through the HTTP server (real Docker sandbox) uses the row, and its key is never logged', async () => {
    fake.setScript([
      { toolCalls: [{ id: 'call_1', name: 'bash', input: { command: 'echo acme-was-here' } }] },
      { text: 'done', usage: { input: 50, output: 5 } },
    ]);
    const dir = mkdtempSync(join(root, 'server-'));
    const env = { ACME_API_KEY: ACME_KEY, ACME_BASE_URL: fake.url, SANDCASTER_DB: join(dir, 'runs.db'), SANDCASTER_DOCKER_IMAGE: TEST_IMAGE, SANDCASTER_SANDBOX_PROVIDER: 'docker', LOG_LEVEL: 'debug' };
    const server = await startServer(loadConfig({ host: "127.0.0.1", port: 0 }, env, { modelProviders: TABLE }));
    try {
      const res = await fetch(`${server.url}/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'go', model: 'acme-small' }) });
      if (res.status !== 200) assert.fail(`expected a stream, got ${res.status}: ${await res.text()}`);
      const events = await readEvents(res);
      const result = assertWellFormedRun(events);
      const started = events.find((e) => e.type === 'system' && e.subtype === 'run_started');
      assert.equal(started?.provider, 'acme');
      assert.equal(result.type, 'result', JSON.stringify(result));
      assert.equal(result.content, 'done');
      const toolResult = events.find((e) => e.type === 'tool_result');
      assert.match(String(toolResult?.content), /acme-was-here/);
      const sentBack = (fake.requests.at(-1)!.body.messages as { role: string; content: string }[]).find((m) => m.role === 'tool');
      assert.match(String(sentBack?.content), /acme-was-here/, 'the tool result went back to the acme server');
    } finally {
      await server.shutdown();
    }
    assert.ok(!JSON.stringify(logLines).includes(ACME_KEY), 'the new row’s key is redacted from the logs');
  });
});
