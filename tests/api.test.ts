// The HTTP contract before any stream starts (docs/api.md#errors): auth, 404/405, 413, 415, every 400 case,
// 503s and 429 — through a real server over real HTTP.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './helpers/server.ts';

const KEY = 'test-api-key-0123456789';
let s: TestServer;

before(async () => {
  s = await startTestServer({ env: { SANDCASTER_API_KEY: KEY, ANTHROPIC_API_KEY: 'sk-ant-test-key-abcdef', ANTHROPIC_BASE_URL: 'http://127.0.0.1:9' } });
});
after(() => s.stop());

const auth = { authorization: `Bearer ${KEY}` };

async function errorOf(res: Response) {
  const body = await res.json();
  assert.equal(typeof body.error?.code, 'string', 'error.code');
  assert.equal(typeof body.error?.message, 'string', 'error.message');
  return body.error as { code: string; message: string; details?: { path: string; message: string }[]; hint?: string };
}

describe('auth', () => {
  test('/health needs no key', async () => {
    const res = await s.fetch('/health');
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok', version: '0.1.0' });
  });

  for (const [name, headers] of [
    ['no header', {}],
    ['wrong key', { authorization: 'Bearer nope' }],
    ['key as prefix', { authorization: `Bearer ${KEY.slice(0, -1)}` }],
    ['wrong scheme', { authorization: `Basic ${KEY}` }],
  ] as const) {
    test(`401 with ${name}, on known and unknown paths`, async () => {
      for (const [method, path] of [['GET', '/runs'], ['POST', '/query'], ['GET', '/nope'], ['DELETE', '/runs/x']]) {
        const res = await s.fetch(path!, { method, headers });
        assert.equal(res.status, 401, `${method} ${path}`);
        assert.equal(res.headers.get('www-authenticate')?.startsWith('Bearer'), true);
        assert.equal((await errorOf(res)).code, 'UNAUTHORIZED');
      }
    });
  }

  test('the right key passes', async () => {
    const res = await s.fetch('/runs', { headers: auth });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.ok(Array.isArray(body), `GET /runs answers a list; got ${JSON.stringify(body)}`);
  });
});

describe('routing', () => {
  test('404 for unknown paths, with the error shape', async () => {
    const res = await s.fetch('/nope', { headers: auth });
    assert.equal(res.status, 404);
    assert.equal((await errorOf(res)).code, 'NOT_FOUND');
  });

  test('405 for a known path with the wrong method, with Allow', async () => {
    for (const [method, path] of [['GET', '/query'], ['POST', '/health'], ['DELETE', '/runs'], ['PUT', '/runs/abc']]) {
      const res = await s.fetch(path!, { method, headers: auth });
      assert.equal(res.status, 405, `${method} ${path}`);
      assert.match(res.headers.get('allow') ?? '', /^[A-Z]+(, [A-Z]+)*$/, `${method} ${path}: the 405 lists the allowed methods`);
      assert.equal((await errorOf(res)).code, 'METHOD_NOT_ALLOWED');
    }
  });

  test('/runs/:id of an unknown run is 404', async () => {
    const res = await s.fetch('/runs/run_doesnotexist', { headers: auth });
    assert.equal(res.status, 404);
    assert.equal((await errorOf(res)).code, 'NOT_FOUND');
  });

  test('/runs limit and status are validated', async () => {
    for (const q of ['limit=0', 'limit=201', 'limit=abc', 'limit=', 'limit=1.5', 'status=', 'status=bogus']) {
      const res = await s.fetch(`/runs?${q}`, { headers: auth });
      assert.equal(res.status, 400, q);
      const err = await errorOf(res);
      assert.equal(err.code, 'INVALID_REQUEST');
      assert.equal(err.details?.[0]?.path, q.split('=')[0]);
    }
    for (const q of ['limit=1', 'limit=200', 'status=running', 'status=completed']) {
      assert.equal((await s.fetch(`/runs?${q}`, { headers: auth })).status, 200, q);
    }
  });

  test('webhook route is 404 when no secret is configured', async () => {
    const res = await s.fetch('/webhooks/e2b', { method: 'POST', body: '{}' });
    assert.equal(res.status, 404);
  });
});

describe('POST /query validation', () => {
  const post = (body: string | object, headers: Record<string, string> = {}) =>
    s.fetch('/query', { method: 'POST', headers: { 'content-type': 'application/json', ...auth, ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });

  test('413 past 16 MiB (checked before the media type)', async () => {
    const big = 'x'.repeat(16 * 1024 * 1024 + 10);
    const res = await post(JSON.stringify({ prompt: big }), { 'content-type': 'text/plain' });
    assert.equal(res.status, 413);
    assert.equal((await errorOf(res)).code, 'PAYLOAD_TOO_LARGE');
  });

  test('415 for non-JSON media types; JSON-like ones are accepted', async () => {
    for (const ct of ['text/plain', 'multipart/form-data; boundary=x', 'application/xml']) {
      const res = await post({ prompt: 'hi' }, { 'content-type': ct });
      assert.equal(res.status, 415, ct);
      assert.equal((await errorOf(res)).code, 'UNSUPPORTED_MEDIA_TYPE');
    }
    // These are parsed as JSON: an invalid body then gives 400, proving the media type passed.
    for (const ct of ['application/json', 'application/json; charset=utf-8', 'application/vnd.api+json', 'application/x-www-form-urlencoded']) {
      const res = await post({ nope: 1 }, { 'content-type': ct });
      assert.equal(res.status, 400, ct);
    }
    const res = await s.fetch('/query', { method: 'POST', headers: auth, body: new Blob([JSON.stringify({ nope: 1 })]) });
    assert.equal(res.status, 400, 'no content-type');
  });

  test('400 for bad JSON and non-object bodies', async () => {
    for (const body of ['{', '', '[]', '"text"', 'null', '42']) {
      const res = await post(body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal((await errorOf(res)).code, 'INVALID_REQUEST');
    }
  });

  const cases: [string, object, string][] = [
    ['missing prompt', {}, 'prompt'],
    ['empty prompt', { prompt: '' }, 'prompt'],
    ['whitespace prompt', { prompt: '  \n\t ' }, 'prompt'],
    ['prompt not a string', { prompt: 5 }, 'prompt'],
    ['prompt too long', { prompt: 'x'.repeat(1_000_001) }, 'prompt'],
    ['unknown field', { prompt: 'hi', bogus: true }, 'bogus'],
    ['bad provider', { prompt: 'hi', provider: 'acme' }, 'provider'],
    ['maxTurns 0', { prompt: 'hi', maxTurns: 0 }, 'maxTurns'],
    ['maxTurns 501', { prompt: 'hi', maxTurns: 501 }, 'maxTurns'],
    ['maxTurns fractional', { prompt: 'hi', maxTurns: 1.5 }, 'maxTurns'],
    ['timeout 4', { prompt: 'hi', timeout: 4 }, 'timeout'],
    ['timeout 3601', { prompt: 'hi', timeout: 3601 }, 'timeout'],
    ['timeout as string', { prompt: 'hi', timeout: '60' }, 'timeout'],
    ['files not array/object', { prompt: 'hi', files: 'a.txt' }, 'files'],
    ['file absolute path', { prompt: 'hi', files: [{ path: '/etc/passwd', content: 'x' }] }, 'files[0].path'],
    ['file escaping path', { prompt: 'hi', files: [{ path: 'a/../../x', content: 'x' }] }, 'files[0].path'],
    ['file dot-dot', { prompt: 'hi', files: [{ path: '..', content: 'x' }] }, 'files[0].path'],
    ['file empty path', { prompt: 'hi', files: [{ path: '', content: 'x' }] }, 'files[0].path'],
    ['file duplicate after normalising', { prompt: 'hi', files: [{ path: 'a/b.txt', content: 'x' }, { path: './a//b.txt', content: 'y' }] }, 'files[1].path'],
    ['file bad encoding', { prompt: 'hi', files: [{ path: 'a', content: 'x', encoding: 'hex' }] }, 'files[0].encoding'],
    ['file bad base64', { prompt: 'hi', files: [{ path: 'a', content: '@@@', encoding: 'base64' }] }, 'files[0].content'],
    ['file unknown field', { prompt: 'hi', files: [{ path: 'a', content: 'x', mode: 1 }] }, 'files[0].mode'],
    ['object-form file escaping', { prompt: 'hi', files: { '../x': 'y' } }, 'files.../x.path'],
    ['too many files', { prompt: 'hi', files: Array.from({ length: 21 }, (_, i) => ({ path: `f${i}`, content: '' })) }, 'files'],
    ['files over 10 MiB', { prompt: 'hi', files: [{ path: 'a', content: 'x'.repeat(6 * 1024 * 1024) }, { path: 'b', content: 'x'.repeat(5 * 1024 * 1024) }] }, 'files'],
    ['outputFormat not an object', { prompt: 'hi', outputFormat: 'json' }, 'outputFormat'],
    ['outputFormat invalid schema', { prompt: 'hi', outputFormat: { type: 'nonsense-type' } }, 'outputFormat'],
    ['unknown tool', { prompt: 'hi', allowedTools: ['bash', 'rm_rf'] }, 'allowedTools[1]'],
    ['composite tool without composite', { prompt: 'hi', allowedTools: ['spawn_sandbox'] }, 'allowedTools'],
    ['systemPrompt not string', { prompt: 'hi', systemPrompt: 1 }, 'systemPrompt'],
    ['bad thinkingLevel', { prompt: 'hi', thinkingLevel: 'max' }, 'thinkingLevel'],
    ['bad sandboxProvider', { prompt: 'hi', sandboxProvider: 'firecracker' }, 'sandboxProvider'],
    ['composite maxSandboxes 0', { prompt: 'hi', composite: { maxSandboxes: 0 } }, 'composite.maxSandboxes'],
    ['composite maxTotalSpawns 101', { prompt: 'hi', composite: { maxTotalSpawns: 101 } }, 'composite.maxTotalSpawns'],
    ['composite unknown field', { prompt: 'hi', composite: { bogus: 1 } }, 'composite.bogus'],
    ['composite bad provider', { prompt: 'hi', composite: { allowedProviders: ['x'] } }, 'composite.allowedProviders[0]'],
    ['model empty', { prompt: 'hi', model: '' }, 'model'],
  ];
  for (const [name, body, path] of cases) {
    test(`400: ${name} names ${path}`, async () => {
      const res = await post(body);
      assert.equal(res.status, 400);
      const err = await errorOf(res);
      assert.equal(err.code, 'INVALID_REQUEST');
      assert.ok(err.details?.some((d) => d.path === path), `details ${JSON.stringify(err.details)} name ${path}`);
      assert.ok(err.message.includes(path), 'the message names the field');
    });
  }

  test('several bad fields are all listed', async () => {
    const res = await post({ prompt: '', maxTurns: 0, bogus: 1 });
    const err = await errorOf(res);
    assert.deepEqual(err.details?.map((d) => d.path).sort(), ['bogus', 'maxTurns', 'prompt']);
  });

  test('503 NOT_CONFIGURED names the key to set for a provider without one', async () => {
    const res = await post({ prompt: 'hi', model: 'gpt5' });
    assert.equal(res.status, 503);
    const err = await errorOf(res);
    assert.equal(err.code, 'NOT_CONFIGURED');
    assert.match(err.hint ?? '', /OPENAI_API_KEY/);
  });
});

describe('CORS', () => {
  test('no CORS headers unless the origin is configured', async () => {
    const res = await s.fetch('/health', { headers: { origin: 'https://evil.example' } });
    assert.equal(res.headers.get('access-control-allow-origin'), null);
  });
});
