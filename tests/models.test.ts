// Model aliases, provider detection and run planning (docs/api.md#request-body): request > sandcaster.json >
// built-in defaults, NOT_CONFIGURED without a key, composite tightening, allowedTools narrowing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_SYSTEM_PROMPT, loadConfig, type Config } from '../lib/config.ts';
import { MODEL_ALIASES, resolveAlias } from '../lib/models.ts';
import { providerForModel } from '../lib/model-providers.ts';
import { isPlanError, planRun, resolveComposite, type PlanError, type RunPlan, type Warning } from '../lib/plan.ts';
import { findPrice } from '../lib/pricing.ts';
import { parseQuery, type QueryRequest } from '../lib/request.ts';

const root = mkdtempSync(join(tmpdir(), 'sandcaster-models-test-'));
const originalCwd = process.cwd();
let n = 0;

before(() => {
  const empty = join(root, 'empty');
  mkdirSync(empty);
  process.chdir(empty); // no ./sandcaster.json picked up by accident
});
after(() => {
  process.chdir(originalCwd);
  rmSync(root, { recursive: true, force: true });
});

const BASE_TOOLS = ['bash', 'read_file', 'write_file', 'edit_file', 'list_files'];
const COMPOSITE_TOOLS = ['spawn_sandbox', 'exec_in', 'transfer_files', 'kill_sandbox', 'list_sandboxes'];

const KEYS = {
  anthropic: { ANTHROPIC_API_KEY: 'sk-ant-test' },
  openai: { OPENAI_API_KEY: 'sk-openai-test' },
  google: { GOOGLE_API_KEY: 'google-test' },
  openrouter: { OPENROUTER_API_KEY: 'sk-or-test' },
};
const ALL_KEYS = { ...KEYS.anthropic, ...KEYS.openai, ...KEYS.google, ...KEYS.openrouter };

function config(env: Record<string, string>, file?: object): Config {
  if (!file) return loadConfig({}, env);
  const path = join(root, `sandcaster-${++n}.json`);
  writeFileSync(path, JSON.stringify(file));
  return loadConfig({ config: path }, env);
}

function request(body: Record<string, unknown>): QueryRequest {
  const parsed = parseQuery({ prompt: 'do the thing', ...body });
  assert.ok(parsed.ok, `request should parse: ${JSON.stringify(!parsed.ok && parsed.issues)}`);
  return parsed.value;
}

function plan(body: Record<string, unknown>, env: Record<string, string>, file?: object): RunPlan {
  const p = planRun(request(body), config(env, file));
  assert.ok(!isPlanError(p), `expected a plan, got ${JSON.stringify(p)}`);
  return p;
}

function planError(body: Record<string, unknown>, env: Record<string, string>, file?: object): PlanError {
  const p = planRun(request(body), config(env, file));
  assert.ok(isPlanError(p), `expected an error, got a plan for ${(p as RunPlan).provider}/${(p as RunPlan).model}`);
  return p;
}

describe('aliases (docs/api.md#request-body)', () => {
  const spec: Record<string, string> = {
    sonnet: 'claude-sonnet-4-6',
    opus: 'claude-opus-4-6',
    haiku: 'claude-haiku-4-5',
    gpt5: 'gpt-5.4',
    gpt5mini: 'gpt-5-mini',
    gemini: 'gemini-3.1-pro-preview',
  };
  for (const [alias, id] of Object.entries(spec)) {
    test(`${alias} → ${id}`, () => {
      assert.equal(resolveAlias(alias), id);
    });
  }

  test('exactly the documented aliases exist', () => {
    assert.deepEqual(Object.keys(MODEL_ALIASES).sort(), Object.keys(spec).sort());
  });

  test('a full id passes through unchanged', () => {
    for (const id of ['claude-sonnet-4-6', 'gpt-4o', 'my-local-model', 'meta-llama/llama-3.3-70b-instruct']) assert.equal(resolveAlias(id), id);
  });
});

describe('provider from the model id', () => {
  const cases: [string, string | undefined][] = [
    ['claude-sonnet-4-6', 'anthropic'],
    ['claude-3-5-haiku-20241022', 'anthropic'],
    ['gpt-4o', 'openai'],
    ['gpt-5.4', 'openai'],
    ['o1', 'openai'],
    ['o1-mini', 'openai'],
    ['o3', 'openai'],
    ['o3-mini', 'openai'],
    ['o4-mini', 'openai'],
    ['chatgpt-4o-latest', 'openai'],
    ['gemini-2.5-flash', 'google'],
    ['gemini-3.1-pro-preview', 'google'],
    ['anthropic/claude-sonnet-4.6', 'openrouter'],
    ['openai/gpt-4o', 'openrouter'],
    ['google/gemini-2.5-pro', 'openrouter'],
    ['meta-llama/llama-3.3-70b-instruct', 'openrouter'],
    ['llama3.1', undefined],
    ['mistral-large', undefined],
  ];
  for (const [model, provider] of cases) {
    test(`${model} → ${provider ?? '(none)'}`, () => {
      assert.equal(providerForModel(model), provider);
    });
  }

  test('every alias target maps to its family', () => {
    assert.equal(providerForModel(resolveAlias('sonnet')), 'anthropic');
    assert.equal(providerForModel(resolveAlias('gpt5mini')), 'openai');
    assert.equal(providerForModel(resolveAlias('gemini')), 'google');
  });
});

describe('planRun: model and provider', () => {
  test('default provider is the first key set, in the order Anthropic, OpenAI, Google, OpenRouter', () => {
    assert.equal(plan({}, ALL_KEYS).provider, 'anthropic');
    assert.equal(plan({}, { ...KEYS.openai, ...KEYS.google, ...KEYS.openrouter }).provider, 'openai');
    assert.equal(plan({}, { ...KEYS.openrouter, ...KEYS.google }).provider, 'google');
    assert.equal(plan({}, KEYS.openrouter).provider, 'openrouter');
  });

  for (const provider of ['anthropic', 'openai', 'google', 'openrouter'] as const) {
    test(`with only ${provider} configured and no model, that provider's default model is used`, () => {
      const p = plan({}, KEYS[provider]);
      assert.equal(p.provider, provider);
      assert.match(p.model, /\S/, `${provider} has a default model`);
      // The default model belongs to that provider's family (OpenRouter ids are vendor/model).
      assert.equal(providerForModel(p.model), provider);
      // ...and is a model whose cost we can report (OpenRouter prices vary by route).
      if (provider !== 'openrouter') assert.ok(findPrice(p.model), `${p.model} should have a price`);
    });
  }

  test('alias in the request is resolved; its family picks the provider', () => {
    const p = plan({ model: 'haiku' }, ALL_KEYS);
    assert.equal(p.model, 'claude-haiku-4-5');
    assert.equal(p.provider, 'anthropic');
    const q = plan({ model: 'gemini' }, ALL_KEYS);
    assert.equal(q.model, 'gemini-3.1-pro-preview');
    assert.equal(q.provider, 'google');
    const r = plan({ model: 'meta-llama/llama-3.3-70b-instruct' }, ALL_KEYS);
    assert.equal(r.provider, 'openrouter');
  });

  test('the model family beats key order', () => {
    const p = plan({ model: 'gpt-4o' }, ALL_KEYS);
    assert.equal(p.provider, 'openai');
    assert.equal(p.model, 'gpt-4o');
  });

  test('explicit provider wins over the model family', () => {
    const p = plan({ model: 'claude-sonnet-4-6', provider: 'openrouter' }, ALL_KEYS);
    assert.equal(p.provider, 'openrouter');
    assert.equal(p.model, 'claude-sonnet-4-6');
  });

  test('an unknown model id with no provider falls back to the first key set', () => {
    const p = plan({ model: 'llama3.1' }, { ...KEYS.openai, ...KEYS.google });
    assert.equal(p.provider, 'openai');
    assert.equal(p.model, 'llama3.1');
  });

  test('config model and provider are defaults; the request model overrides them', () => {
    const file = { model: 'opus' };
    const p = plan({}, ALL_KEYS, file);
    assert.equal(p.model, 'claude-opus-4-6');
    assert.equal(p.provider, 'anthropic');
    const q = plan({ model: 'haiku' }, ALL_KEYS, file);
    assert.equal(q.model, 'claude-haiku-4-5');
    const r = plan({ model: 'gpt5mini' }, ALL_KEYS, { model: 'opus', provider: 'anthropic' });
    assert.equal(r.model, 'gpt-5-mini');
    assert.equal(r.provider, 'openai');
  });

  test('config provider applies to a config model without a known family (e.g. a local OpenAI-compatible server)', () => {
    const p = plan({}, { ...KEYS.anthropic, ...KEYS.openai, OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1' }, { provider: 'openai', model: 'llama3.1' });
    assert.equal(p.provider, 'openai');
    assert.equal(p.model, 'llama3.1');
  });

  test('config provider alone picks that provider and its default model', () => {
    const p = plan({}, ALL_KEYS, { provider: 'google' });
    assert.equal(p.provider, 'google');
    assert.equal(providerForModel(p.model), 'google');
  });

  test('NOT_CONFIGURED when no model key is set', () => {
    const e = planError({}, {});
    assert.equal(e.status, 503);
    assert.equal('code' in e ? e.code : e, 'NOT_CONFIGURED');
    assert.match(e.hint, /ANTHROPIC_API_KEY/);
  });

  test('NOT_CONFIGURED when the chosen provider lacks a key; the hint names its variable', () => {
    for (const [body, variable] of [
      [{ model: 'gemini' }, 'GOOGLE_API_KEY'],
      [{ model: 'gpt5' }, 'OPENAI_API_KEY'],
      [{ model: 'sonnet', provider: 'openrouter' }, 'OPENROUTER_API_KEY'],
    ] as const) {
      const e = planError(body, KEYS.anthropic);
      assert.equal(e.status, 503);
      assert.equal('code' in e ? e.code : e, 'NOT_CONFIGURED');
      assert.ok(e.hint.includes(variable), `${e.hint} should name ${variable}`);
    }
    const e = planError({ model: 'opus' }, KEYS.openai);
    assert.match('hint' in e ? e.hint : JSON.stringify(e), /ANTHROPIC_API_KEY/, 'the hint names the missing key');
  });
});

describe('planRun: request values override config defaults', () => {
  test('built-in defaults without a file: timeout 300, configured system prompt only', () => {
    const p = plan({}, KEYS.anthropic);
    assert.equal(p.timeout, 300);
    assert.equal(p.system, DEFAULT_SYSTEM_PROMPT);
    assert.equal(p.thinkingLevel, 'none');
    assert.equal(p.prompt, 'do the thing');
    assert.equal(p.outputFormat, undefined);
    assert.equal(p.composite, undefined);
    assert.deepEqual(p.warnings, []);
    assert.ok(p.maxTurns >= 1 && p.maxTurns <= 500, `the default maxTurns is within 1..500; got ${p.maxTurns}`);
  });

  const file = { maxTurns: 12, timeout: 120, thinkingLevel: 'low', systemPrompt: 'CONFIGURED PROMPT' };

  test('file values apply when the request says nothing', () => {
    const p = plan({}, KEYS.anthropic, file);
    assert.equal(p.maxTurns, 12);
    assert.equal(p.timeout, 120);
    assert.equal(p.thinkingLevel, 'low');
    assert.equal(p.system, `${DEFAULT_SYSTEM_PROMPT}\n\nCONFIGURED PROMPT`, 'built-in first, then the configured text');
  });

  test('request values win, field by field', () => {
    const p = plan({ maxTurns: 3, thinkingLevel: 'high' }, KEYS.anthropic, file);
    assert.equal(p.maxTurns, 3);
    assert.equal(p.thinkingLevel, 'high');
    assert.equal(p.timeout, 120, 'timeout not in the request: the file value');
    const q = plan({ timeout: 30, thinkingLevel: 'none' }, KEYS.anthropic, file);
    assert.equal(q.timeout, 30);
    assert.equal(q.thinkingLevel, 'none');
    assert.equal(q.maxTurns, 12);
  });

  test('the request systemPrompt is appended to the configured one', () => {
    const p = plan({ systemPrompt: 'REQUEST PROMPT' }, KEYS.anthropic, file);
    assert.ok(p.system.startsWith(`${DEFAULT_SYSTEM_PROMPT}\n\nCONFIGURED PROMPT`), p.system);
    assert.ok(p.system.endsWith('REQUEST PROMPT'), p.system);
    assert.ok(p.system.length > 'CONFIGURED PROMPT'.length + 'REQUEST PROMPT'.length, 'separated, not glued');
    const q = plan({ systemPrompt: 'REQUEST PROMPT' }, KEYS.anthropic);
    assert.equal(q.system.slice(0, DEFAULT_SYSTEM_PROMPT.length), DEFAULT_SYSTEM_PROMPT, 'the default prompt comes first');
    assert.equal(q.system.slice(-'REQUEST PROMPT'.length), 'REQUEST PROMPT', "the request's prompt comes last");
  });

  test('outputFormat: request over file; the json_schema wrapper is unwrapped', () => {
    const fileSchema = { type: 'object', properties: { a: { type: 'string' } } };
    const reqSchema = { type: 'object', properties: { b: { type: 'number' } }, required: ['b'] };
    assert.deepEqual(plan({}, KEYS.anthropic, { outputFormat: fileSchema }).outputFormat, fileSchema);
    assert.deepEqual(plan({ outputFormat: reqSchema }, KEYS.anthropic, { outputFormat: fileSchema }).outputFormat, reqSchema);
    assert.deepEqual(plan({ outputFormat: { type: 'json_schema', schema: reqSchema } }, KEYS.anthropic).outputFormat, reqSchema);
  });

  test('uploads are carried into the plan', () => {
    const p = plan({ files: { 'a.txt': 'hello' } }, KEYS.anthropic);
    assert.equal(p.files.length, 1);
    assert.equal(p.files[0]!.path, 'a.txt');
    assert.equal(p.files[0]!.bytes.toString('utf8'), 'hello');
  });
});

describe('planRun: tools', () => {
  test('without allowedTools: the five base tools, no composite tools', () => {
    assert.deepEqual([...plan({}, KEYS.anthropic).toolNames].sort(), [...BASE_TOOLS].sort());
  });

  test('with composite enabled (file or request) the composite tools are added', () => {
    const viaFile = plan({}, KEYS.anthropic, { composite: {} }).toolNames;
    assert.deepEqual([...viaFile].sort(), [...BASE_TOOLS, ...COMPOSITE_TOOLS].sort());
    const viaRequest = plan({ composite: { maxSandboxes: 1 } }, KEYS.anthropic).toolNames;
    assert.deepEqual([...viaRequest].sort(), [...BASE_TOOLS, ...COMPOSITE_TOOLS].sort());
  });

  test('allowedTools narrows the set', () => {
    assert.deepEqual([...plan({ allowedTools: ['read_file', 'bash'] }, KEYS.anthropic).toolNames].sort(), ['bash', 'read_file']);
    assert.deepEqual(plan({ allowedTools: ['list_files'] }, KEYS.anthropic, { composite: {} }).toolNames, ['list_files']);
  });

  test('config allowedTools is the default; the request overrides it', () => {
    assert.deepEqual(plan({}, KEYS.anthropic, { allowedTools: ['bash'] }).toolNames, ['bash']);
    assert.deepEqual(plan({ allowedTools: ['read_file'] }, KEYS.anthropic, { allowedTools: ['bash'] }).toolNames, ['read_file']);
  });

  test('an unknown tool name is a request error', () => {
    const parsed = parseQuery({ prompt: 'x', allowedTools: ['bash', 'format_disk'] });
    assert.equal(parsed.ok, false);
    const paths = parsed.ok ? [] : parsed.issues.map((i) => i.path);
    assert.ok(paths.some((p) => p.startsWith('allowedTools')), `an issue names allowedTools; got issues at ${JSON.stringify(paths)}`);
  });

  test('a composite tool without composite enabled is a 400 on allowedTools', () => {
    const e = planError({ allowedTools: ['bash', 'spawn_sandbox'] }, KEYS.anthropic);
    assert.equal(e.status, 400);
    assert.ok('details' in e, `the error carries details; got ${JSON.stringify(e)}`);
    assert.equal(e.details[0]!.path, 'allowedTools');
    assert.match(e.details[0]!.message, /spawn_sandbox/);
  });
});

describe('composite: the request can only tighten', () => {
  const file = { maxSandboxes: 2, maxTotalSpawns: 5, allowedProviders: ['docker' as const], allowedTemplates: ['img:a'] };

  test('no composite anywhere: disabled', () => {
    assert.equal(resolveComposite(undefined, undefined, [], ['docker', 'e2b']), undefined);
  });

  test('file only: the file block as is, no warnings', () => {
    const w: Warning[] = [];
    assert.deepEqual(resolveComposite(file, undefined, w, ['docker', 'e2b']), file);
    assert.deepEqual(w, []);
  });

  test('tighter request values are used without a warning', () => {
    const w: Warning[] = [];
    const out = resolveComposite(file, { maxSandboxes: 1, maxTotalSpawns: 3, allowedProviders: ['docker'], allowedTemplates: ['img:a'] }, w, ['docker', 'e2b']);
    assert.deepEqual(out, { maxSandboxes: 1, maxTotalSpawns: 3, allowedProviders: ['docker'], allowedTemplates: ['img:a'] });
    assert.deepEqual(w, []);
  });

  test('looser request values are clamped, each with a warning naming the field', () => {
    const w: Warning[] = [];
    const out = resolveComposite(file, { maxSandboxes: 10, maxTotalSpawns: 50, allowedProviders: ['docker', 'e2b'], allowedTemplates: ['img:a', 'img:evil'] }, w, ['docker', 'e2b']);
    assert.deepEqual(out, { maxSandboxes: 2, maxTotalSpawns: 5, allowedProviders: ['docker'], allowedTemplates: ['img:a'] });
    assert.equal(w.length, 4);
    for (const field of ['maxSandboxes', 'maxTotalSpawns', 'allowedProviders', 'allowedTemplates']) {
      assert.ok(w.some((x) => x.content.includes(field)), `a warning about ${field}`);
    }
    for (const x of w) assert.match(String(x.code), /^[A-Z_]+$/, `warning codes are UPPER_SNAKE: ${JSON.stringify(x)}`);
    assert.ok(w.some((x) => x.content.includes('e2b')), `a warning names the dropped provider e2b; got ${JSON.stringify(w.map((x) => x.content))}`);
    assert.ok(w.some((x) => x.content.includes('img:evil')), `a warning names the dropped template img:evil; got ${JSON.stringify(w.map((x) => x.content))}`);
  });

  test('only the looser field warns', () => {
    const w: Warning[] = [];
    const out = resolveComposite(file, { maxSandboxes: 1, maxTotalSpawns: 99 }, w, ['docker', 'e2b']);
    assert.equal(out?.maxSandboxes, 1);
    assert.equal(out?.maxTotalSpawns, 5);
    assert.equal(w.length, 1);
    assert.match(w[0]!.content, /maxTotalSpawns/);
  });

  test('request only: enabled, bounded by the documented defaults (3 alive, 10 spawns, all providers)', () => {
    const w: Warning[] = [];
    const out = resolveComposite(undefined, { maxSandboxes: 20, maxTotalSpawns: 4 }, w, ['docker', 'e2b']);
    assert.equal(out?.maxSandboxes, 3);
    assert.equal(out?.maxTotalSpawns, 4);
    assert.deepEqual([...(out?.allowedProviders ?? [])].sort(), ['docker', 'e2b']);
    assert.equal(w.length, 1);
    assert.match(w[0]!.content, /maxSandboxes/);
  });

  test('planRun carries the clamped composite and its warnings', () => {
    const p = plan({ composite: { maxSandboxes: 9 } }, KEYS.anthropic, { composite: { maxSandboxes: 2 } });
    assert.equal(p.composite?.maxSandboxes, 2);
    assert.equal(p.composite?.maxTotalSpawns, 10);
    assert.equal(p.warnings.length, 1);
    assert.match(p.warnings[0]!.content, /maxSandboxes/);
  });

  test('a composite value outside the schema range is a request error, not a clamp', () => {
    const parsed = parseQuery({ prompt: 'x', composite: { maxSandboxes: 21 } });
    assert.deepEqual(parsed.ok ? 'accepted' : parsed.issues.map((i) => i.path), ['composite.maxSandboxes'], 'refused with an issue at composite.maxSandboxes');
    const arr = parseQuery({ prompt: 'x', composite: [] });
    assert.ok(!arr.ok && arr.issues.some((i) => i.path === 'composite'), 'an array is not a composite block');
  });
});

describe('planRun: configured model vs requested provider', () => {
  test('a request naming another provider without a model gets that provider’s default, not the configured model', () => {
    const p = plan({ provider: 'openai' }, ALL_KEYS, { model: 'opus' });
    assert.equal(p.provider, 'openai');
    assert.equal(providerForModel(p.model), 'openai');
  });

  test('the configured model applies when it fits the requested provider', () => {
    assert.equal(plan({ provider: 'anthropic' }, ALL_KEYS, { model: 'opus' }).model, 'claude-opus-4-6');
  });
});
