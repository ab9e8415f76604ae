// Completion callbacks (issue 13): a finished run's record POSTed to an allow-listed callbackUrl, signed,
// retried with one delivery id, never followed through a redirect, never in the way of the run's stream.
// Real server, fake model server, real Docker sandboxes, and a receiver on 127.0.0.1 (node:http).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, loadConfig } from '../lib/config.ts';
import { startFakeAnthropic, type FakeModelServer } from './fixtures/fake-models.ts';
import { assertWellFormedRun, readEvents } from './helpers/sse.ts';
import { logLines, startTestServer, waitFor, type TestServer } from './helpers/server.ts';

const SECRET = 'whsec-callback-test-0123456789';

interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  answered: boolean;
}

/** A callback receiver: each request is recorded and answered by the next behaviour in the queue (then 200). */
async function startReceiver(): Promise<{ base: string; got: Received[]; answerWith(...b: Behaviour[]): void; close(): Promise<void> }> {
  const got: Received[] = [];
  let queue: Behaviour[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = { path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), answered: false };
      got.push(r);
      const behave = queue.shift() ?? 200;
      if (behave === 'hang') return; // until the client gives up
      r.answered = true;
      if (behave === 'redirect') return void res.writeHead(302, { location: '/elsewhere' }).end('see elsewhere');
      (res as ServerResponse).writeHead(behave, { 'content-type': 'text/plain' }).end('x'.repeat(100_000)); // larger than the server reads
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    got,
    answerWith: (...b) => void (queue = b),
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
type Behaviour = number | 'hang' | 'redirect';

/** Checks `Sandcaster-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` as a receiver would. */
function verify(header: string | string[] | undefined, body: string, secret: string): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(header));
  if (!m) return false;
  const t = Number(m[1]);
  if (Math.abs(Date.now() / 1000 - t) > 300) return false;
  return createHmac('sha256', secret).update(`${m[1]}.${body}`).digest('hex') === m[2];
}

let anthropic: FakeModelServer;
before(async () => {
  anthropic = await startFakeAnthropic();
});
after(() => anthropic.close());

const callbackLogs = (deliveryId: string) => logLines.filter((l) => l.deliveryId === deliveryId);

describe('completion callbacks', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let s: TestServer;
  before(async () => {
    receiver = await startReceiver();
    s = await startTestServer({
      env: {
        ANTHROPIC_API_KEY: 'sk-ant-callback-test-key',
        ANTHROPIC_BASE_URL: anthropic.url,
        SANDCASTER_SANDBOX_PROVIDER: 'docker',
        SANDCASTER_CALLBACK_ALLOWLIST: `https://hooks.example.com/, ${receiver.base}/hooks/`,
        SANDCASTER_CALLBACK_SECRET: SECRET,
      },
      configure: (c) => {
        c.callbacks.retryDelaysMs = [100, 200, 200, 200];
      },
    });
  });
  after(async () => {
    await s.stop();
    await receiver.close();
  });

  test('the finished run is POSTed signed; after two 500s the retry with the same delivery id succeeds', async () => {
    receiver.answerWith(500, 500, 200);
    anthropic.setScript([{ toolCalls: [{ name: 'write_file', input: { path: 'out.txt', content: 'hello' } }] }, { text: 'all done' }]);
    const res = await s.query({ prompt: 'x', model: 'haiku', callbackUrl: `${receiver.base}/hooks/done?token=tok-in-query` });
    const runId = res.headers.get('x-run-id')!;
    assert.equal(assertWellFormedRun(await readEvents(res)).type, 'result');

    assert.ok(await waitFor(() => receiver.got.length >= 3, 10_000), `three deliveries, got ${receiver.got.length}`);
    const ids = receiver.got.map((r) => r.headers['sandcaster-delivery']);
    assert.match(String(ids[0]), /^dlv_[A-Za-z0-9_-]{10,}$/);
    assert.deepEqual(ids, [ids[0], ids[0], ids[0]], 'one delivery id on every retry');
    for (const r of receiver.got) {
      assert.equal(r.path, '/hooks/done?token=tok-in-query');
      assert.equal(r.headers['content-type'], 'application/json');
      assert.ok(verify(r.headers['sandcaster-signature'], r.body, SECRET), `a valid signature: ${r.headers['sandcaster-signature']}`);
      assert.ok(!verify(r.headers['sandcaster-signature'], r.body, `${SECRET}x`), 'which another secret does not verify');
    }
    const body = JSON.parse(receiver.got[2]!.body);
    const record = await (await s.fetch(`/runs/${runId}`)).json();
    assert.deepEqual(body, { type: 'run.finished', ...record }, 'the record as GET /runs/:id shows it, plus type');
    assert.equal(body.status, 'completed');
    assert.equal(body.result, 'all done');
    assert.equal(body.files[0].path, 'out.txt');

    const deliveryId = String(ids[0]);
    assert.ok(await waitFor(() => callbackLogs(deliveryId).some((l) => l.msg === 'callback delivered'), 5000), 'the success is logged');
    const lines = callbackLogs(deliveryId);
    assert.deepEqual(lines.map((l) => [l.msg, l.attempt, l.status]), [
      ['callback failed; retrying', 1, 500],
      ['callback failed; retrying', 2, 500],
      ['callback delivered', 3, 200],
    ]);
    assert.equal(receiver.got.length, 3, 'nothing more after a 2xx');
    for (const l of lines) {
      assert.equal(l.runId, runId);
      assert.equal(l.url, `${receiver.base}/hooks/done`, 'logged without its query string');
    }
    assert.ok(!logLines.some((l) => JSON.stringify(l).includes(SECRET)), 'the secret is never logged');
  });

  test('a callbackUrl outside the allow-list, or not a plain http(s) URL, is 400 naming the field', async () => {
    const port = new URL(receiver.base).port;
    const refused = [
      `${receiver.base}/other`,
      `${receiver.base}/hooks`, // the prefix is /hooks/
      `${receiver.base}/hooks/../admin`, // normalised before matching: /admin
      `http://127.0.0.1:${Number(port) + 1}/hooks/`,
      `https://127.0.0.1:${port}/hooks/`,
      'https://hooks.example.com.evil.test/', // a bare origin in the list cannot match a longer host
      `http://user:pass@127.0.0.1:${port}/hooks/`,
      `ftp://127.0.0.1:${port}/hooks/`,
      'not a url',
      `${receiver.base}/hooks/${'a'.repeat(2048)}`,
      42,
    ];
    for (const callbackUrl of refused) {
      const res = await s.query({ prompt: 'x', model: 'haiku', callbackUrl });
      assert.equal(res.status, 400, `${String(callbackUrl).slice(0, 80)}: ${res.status}`);
      const err = (await res.json()).error;
      assert.equal(err.code, 'INVALID_REQUEST');
      assert.equal(err.details[0].path, 'callbackUrl', `${String(callbackUrl).slice(0, 80)}: ${JSON.stringify(err.details)}`);
    }
    assert.equal(receiver.got.length, 3, 'no delivery for a refused request (the 3 are from the previous test)');
  });

  test('with no allow-list every callbackUrl is refused', async () => {
    const open = await startTestServer({ env: { ANTHROPIC_API_KEY: 'sk-ant-callback-test-key', ANTHROPIC_BASE_URL: anthropic.url } });
    try {
      const res = await open.query({ prompt: 'x', model: 'haiku', callbackUrl: `${receiver.base}/hooks/x` });
      assert.equal(res.status, 400);
      const err = (await res.json()).error;
      assert.equal(err.details[0].path, 'callbackUrl');
      assert.match(err.details[0].message, /SANDCASTER_CALLBACK_ALLOWLIST/);
    } finally {
      await open.stop();
    }
  });
});

describe('a slow or redirecting receiver', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let s: TestServer;
  before(async () => {
    receiver = await startReceiver();
    s = await startTestServer({
      env: {
        ANTHROPIC_API_KEY: 'sk-ant-callback-test-key',
        ANTHROPIC_BASE_URL: anthropic.url,
        SANDCASTER_SANDBOX_PROVIDER: 'docker',
        SANDCASTER_CALLBACK_ALLOWLIST: `${receiver.base}/`,
      },
      configure: (c) => {
        c.callbacks.retryDelaysMs = [100, 100];
        c.callbacks.attemptTimeoutMs = 4000;
      },
    });
  });
  after(async () => {
    await s.stop();
    await receiver.close();
  });

  test('never delays the stream; no answer in time and a redirect are both retried (unsigned: no secret); then given up', async () => {
    receiver.answerWith('hang', 'redirect', 503);
    anthropic.setScript([{ text: 'quick answer' }]);
    const res = await s.query({ prompt: 'x', model: 'haiku', callbackUrl: `${receiver.base}/slow` });
    const events = await readEvents(res);
    assert.equal(assertWellFormedRun(events).content, 'quick answer');
    assert.ok(!JSON.stringify(events).includes('callback') && !JSON.stringify(events).includes(receiver.base), 'the stream says nothing of the callback');
    // The stream has ended; the receiver got (or is about to get) the first delivery and has not answered it.
    assert.ok(await waitFor(() => receiver.got.length >= 1, 5000), 'the first delivery arrived');
    assert.equal(receiver.got[0]!.answered, false, 'the stream ended while the receiver still held the delivery');

    assert.ok(await waitFor(() => receiver.got.length >= 3, 15_000), `retried after the timeout and after the redirect, got ${receiver.got.length}`);
    assert.deepEqual(receiver.got.map((r) => r.path), ['/slow', '/slow', '/slow'], 'the redirect to /elsewhere is not followed');
    const id = receiver.got[0]!.headers['sandcaster-delivery'];
    assert.ok(receiver.got.every((r) => r.headers['sandcaster-delivery'] === id), 'one delivery id');
    assert.ok(receiver.got.every((r) => r.headers['sandcaster-signature'] === undefined), 'no signature without a secret');

    assert.ok(await waitFor(() => callbackLogs(String(id)).some((l) => l.msg === 'callback given up'), 5000), 'giving up is logged');
    const lines = callbackLogs(String(id));
    assert.match(lines[0]!.error, /no answer within 4000 ms/);
    assert.equal(lines[1]!.status, 302);
    assert.deepEqual(lines.at(-1)!, { ...lines.at(-1)!, msg: 'callback given up', level: 'error', attempt: 3, status: 503 });
    assert.equal(receiver.got.length, 3, 'no attempt after giving up');
  });
});

describe('callback and retention configuration', () => {
  const load = (env: Record<string, string>) => loadConfig({}, env);
  const refuses = (env: Record<string, string>, name: string) =>
    assert.throws(() => load(env), (err: unknown) => err instanceof ConfigError && err.field === name, `${JSON.stringify(env)} names ${name}`);

  test('defaults, normalised prefixes, and bad values named', () => {
    const d = load({});
    assert.deepEqual(d.retention, { days: 30, mb: 1024 });
    assert.deepEqual(d.callbacks.allowlist, []);
    assert.equal(d.callbacks.secret, undefined);
    assert.deepEqual(d.callbacks.retryDelaysMs, [1000, 5000, 30_000, 120_000]);
    assert.equal(d.callbacks.attemptTimeoutMs, 10_000);
    const c = load({ SANDCASTER_CALLBACK_ALLOWLIST: ' https://Hooks.Example.com , http://127.0.0.1:9/cb/,,', SANDCASTER_RETENTION_DAYS: '0', SANDCASTER_RETENTION_MB: '5' });
    assert.deepEqual(c.callbacks.allowlist, ['https://hooks.example.com/', 'http://127.0.0.1:9/cb/']);
    assert.deepEqual(c.retention, { days: 0, mb: 5 });
    refuses({ SANDCASTER_RETENTION_DAYS: 'soon' }, 'SANDCASTER_RETENTION_DAYS');
    refuses({ SANDCASTER_RETENTION_DAYS: '-1' }, 'SANDCASTER_RETENTION_DAYS');
    refuses({ SANDCASTER_RETENTION_MB: '1.5' }, 'SANDCASTER_RETENTION_MB');
    refuses({ SANDCASTER_CALLBACK_ALLOWLIST: 'hooks.example.com' }, 'SANDCASTER_CALLBACK_ALLOWLIST');
    refuses({ SANDCASTER_CALLBACK_ALLOWLIST: 'ftp://hooks.example.com/' }, 'SANDCASTER_CALLBACK_ALLOWLIST');
    refuses({ SANDCASTER_CALLBACK_ALLOWLIST: 'https://u:p@hooks.example.com/' }, 'SANDCASTER_CALLBACK_ALLOWLIST');
    refuses({ SANDCASTER_CALLBACK_SECRET: 'short-secret' }, 'SANDCASTER_CALLBACK_SECRET');
    assert.throws(() => load({ SANDCASTER_CALLBACK_SECRET: 'short-secret' }), (err: Error) => !err.message.includes('short-secret'), 'the message never repeats the secret');
  });
});
