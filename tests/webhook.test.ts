// POST /webhooks/e2b through a real server (docs/api.md#e2b-webhook): signature per E2B's v1 scheme, computed here
// independently (SHA-256 over the secret followed by the raw body; base64url without padding, standard base64
// without padding accepted too), de-duplication by e2b-delivery-id, and `killed` ending a live E2B run.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { E2B_META_INSTANCE, E2B_META_RUN } from '../providers/e2b/index.ts';
import { startFakeE2b, type FakeE2b } from './fixtures/fake-e2b.ts';
import { startFakeAnthropic, type FakeModelServer } from './fixtures/fake-models.ts';
import { assertWellFormedRun, readUntil } from './helpers/sse.ts';
import { logLines, startTestServer, waitFor, type TestServer } from './helpers/server.ts';

const SECRET = 'whsec-test-' + randomBytes(12).toString('hex');
const API_KEY = 'sandcaster-api-key-' + randomBytes(8).toString('hex');

let fake: FakeE2b;
let anthropic: FakeModelServer;
let s: TestServer;
let plain: TestServer;

before(async () => {
  fake = await startFakeE2b();
  Object.assign(process.env, fake.env()); // the e2b SDK takes its endpoints from the environment
  anthropic = await startFakeAnthropic();
  s = await startTestServer({
    env: {
      ANTHROPIC_API_KEY: 'sk-ant-webhook-test-key',
      ANTHROPIC_BASE_URL: anthropic.url,
      E2B_API_KEY: fake.apiKey,
      SANDCASTER_SANDBOX_PROVIDER: 'e2b',
      SANDCASTER_E2B_WEBHOOK_SECRET: SECRET,
      SANDCASTER_API_KEY: API_KEY,
    },
  });
  // No webhook secret: the endpoint does not exist.
  plain = await startTestServer({ env: { ANTHROPIC_API_KEY: 'sk-ant-webhook-test-key', ANTHROPIC_BASE_URL: anthropic.url, SANDCASTER_API_KEY: API_KEY } });
});
after(async () => {
  await s?.stop();
  await plain?.stop();
  await anthropic?.close();
  await fake?.close();
});

const digest = (secret: string, raw: string | Buffer) => createHash('sha256').update(Buffer.concat([Buffer.from(secret, 'utf8'), Buffer.from(raw)])).digest();
/** E2B's documented form: base64url, no padding. */
const sign = (raw: string | Buffer, secret = SECRET) => digest(secret, raw).toString('base64url');
/** The same digest in standard base64 without padding. */
const signStd = (raw: string | Buffer, secret = SECRET) => digest(secret, raw).toString('base64').replace(/=+$/, '');

function event(type: string, sandboxId: string, meta: Record<string, string> = {}, extra: Record<string, unknown> = {}) {
  return {
    version: 'v2',
    id: 'evt_' + randomBytes(8).toString('hex'),
    type,
    sandboxId,
    eventData: { sandbox_metadata: meta, execution: { started_at: new Date().toISOString() } },
    timestamp: new Date().toISOString(),
    ...extra,
  };
}

async function deliver(server: TestServer, raw: string, headers: Record<string, string | undefined>): Promise<Response> {
  const h: Record<string, string> = { 'content-type': 'application/json' };
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) h[k] = v;
  return server.fetch('/webhooks/e2b', { method: 'POST', headers: h, body: raw });
}

const newDeliveryId = () => 'dlv_' + randomBytes(8).toString('hex');
const logsOf = (deliveryId: string) => logLines.filter((l) => l.deliveryId === deliveryId);

describe('signature', () => {
  test('a valid base64url signature is accepted (2xx, quickly) and the event is logged', async () => {
    const raw = JSON.stringify(event('sandbox.lifecycle.created', 'isbx_unknown_1', { [E2B_META_INSTANCE]: 'inst_x', [E2B_META_RUN]: 'run_x' }));
    const id = newDeliveryId();
    const res = await deliver(s, raw, { 'e2b-signature': sign(raw), 'e2b-delivery-id': id, 'e2b-signature-version': 'v1' });
    assert.ok(res.status >= 200 && res.status < 300, `status ${res.status}: ${await res.clone().text()}`);
    await res.body?.cancel();
    const lines = logsOf(id);
    assert.equal(lines.filter((l) => l.msg === 'e2b webhook').length, 1, 'the event is logged once');
    const line = lines.find((l) => l.msg === 'e2b webhook')!;
    assert.equal(line.type, 'sandbox.lifecycle.created');
    assert.equal(line.sandboxId, 'isbx_unknown_1');
    assert.ok(!JSON.stringify(logLines).includes(SECRET), 'the secret is never logged');
  });

  test('the digest in standard base64 without padding is accepted too', async () => {
    // Find a body whose digest differs between the two alphabets, so the standard form is really tested.
    let raw = '';
    for (let i = 0; ; i++) {
      raw = JSON.stringify(event('sandbox.lifecycle.updated', 'isbx_unknown_2', {}, { nonce: i }));
      if (sign(raw) !== signStd(raw)) break;
    }
    assert.match(signStd(raw), /[+/]/, 'the standard form uses + or /');
    const res = await deliver(s, raw, { 'e2b-signature': signStd(raw), 'e2b-delivery-id': newDeliveryId() });
    assert.ok(res.status >= 200 && res.status < 300, `status ${res.status}`);
    await res.body?.cancel();
  });

  test('an invalid signature is 401 and the event is not acted on', async () => {
    const raw = JSON.stringify(event('sandbox.lifecycle.killed', 'isbx_unknown_3'));
    const other = JSON.stringify(event('sandbox.lifecycle.killed', 'isbx_unknown_4'));
    const forged = [
      sign(raw, 'not-the-secret'), // wrong secret
      sign(other), // signature of another body
      sign(raw + ' '), // body changed by one byte
      digest(SECRET, raw).toString('hex'), // right digest, wrong encoding
      digest(SECRET, raw).toString('base64url').slice(0, -1), // truncated
      'v1,' + sign(raw).slice(3), // garbage of the right length
      '',
    ];
    for (const sig of forged) {
      const id = newDeliveryId();
      const res = await deliver(s, raw, { 'e2b-signature': sig, 'e2b-delivery-id': id });
      assert.equal(res.status, 401, `signature ${JSON.stringify(sig)}`);
      const body = await res.json();
      assert.equal(body.error.code, 'UNAUTHORIZED');
      assert.equal(logsOf(id).filter((l) => l.msg === 'e2b webhook').length, 0, 'not processed');
    }
  });

  test('a missing signature is 401', async () => {
    const raw = JSON.stringify(event('sandbox.lifecycle.killed', 'isbx_unknown_5'));
    const id = newDeliveryId();
    const res = await deliver(s, raw, { 'e2b-delivery-id': id });
    assert.equal(res.status, 401);
    assert.equal((await res.json()).error.code, 'UNAUTHORIZED');
    assert.equal(logsOf(id).filter((l) => l.msg === 'e2b webhook').length, 0, 'not processed');
  });

  test('a malformed JSON body with a valid signature is 400', async () => {
    for (const raw of ['{"type": "sandbox.lifecycle.killed", "sandboxId": ', 'not json at all', '']) {
      const res = await deliver(s, raw, { 'e2b-signature': sign(raw), 'e2b-delivery-id': newDeliveryId() });
      assert.equal(res.status, 400, `body ${JSON.stringify(raw)}`);
      const body = await res.json();
      assert.equal(body.error.code, 'INVALID_REQUEST');
      assert.equal(typeof body.error.message, 'string');
    }
  });

  test('the signature is checked on the raw bytes, whitespace and key order included', async () => {
    const raw = '{ "sandboxId" : "isbx_unknown_6",\n  "type": "sandbox.lifecycle.paused", "unknownField": [1, 2, 3] }';
    const res = await deliver(s, raw, { 'e2b-signature': sign(raw), 'e2b-delivery-id': newDeliveryId() });
    assert.ok(res.status >= 200 && res.status < 300, `status ${res.status}`);
    await res.body?.cancel();
    // Re-serialising changes the bytes, so the same signature no longer matches.
    const reserialised = JSON.stringify(JSON.parse(raw));
    const bad = await deliver(s, reserialised, { 'e2b-signature': sign(raw), 'e2b-delivery-id': newDeliveryId() });
    assert.equal(bad.status, 401);
    await bad.body?.cancel();
  });
});

describe('routing', () => {
  test('404 when no secret is set', async () => {
    const raw = JSON.stringify(event('sandbox.lifecycle.created', 'isbx_unknown_7'));
    const res = await deliver(plain, raw, { 'e2b-signature': sign(raw), 'e2b-delivery-id': newDeliveryId() });
    assert.equal(res.status, 404);
    assert.equal((await res.json()).error.code, 'NOT_FOUND');
    // Even with a bearer token, it is simply not there.
    const withAuth = await plain.fetch('/webhooks/e2b', { method: 'POST', headers: { authorization: `Bearer ${API_KEY}`, 'e2b-signature': sign(raw) }, body: raw });
    assert.equal(withAuth.status, 404);
    await withAuth.body?.cancel();
  });

  test('no bearer auth is needed even when SANDCASTER_API_KEY is set; other routes still need it', async () => {
    const raw = JSON.stringify(event('sandbox.lifecycle.resumed', 'isbx_unknown_8'));
    const res = await deliver(s, raw, { 'e2b-signature': sign(raw), 'e2b-delivery-id': newDeliveryId() });
    assert.ok(res.status >= 200 && res.status < 300, `status ${res.status}`);
    assert.equal(res.headers.get('www-authenticate'), null);
    await res.body?.cancel();
    // A wrong bearer token does not matter either: the signature is this route's check.
    const wrongBearer = await deliver(s, raw, { 'e2b-signature': sign(raw), 'e2b-delivery-id': newDeliveryId(), authorization: 'Bearer nope' });
    assert.ok(wrongBearer.status >= 200 && wrongBearer.status < 300, `status ${wrongBearer.status}`);
    await wrongBearer.body?.cancel();
    const runs = await s.fetch('/runs');
    assert.equal(runs.status, 401, 'the API itself is protected');
    await runs.body?.cancel();
  });
});

describe('delivery handling', () => {
  test('a duplicate delivery is acknowledged 2xx and not acted on twice', async () => {
    const raw = JSON.stringify(event('sandbox.lifecycle.killed', 'isbx_unknown_9', { [E2B_META_INSTANCE]: 'inst_x', [E2B_META_RUN]: 'run_y' }));
    const id = newDeliveryId();
    const first = await deliver(s, raw, { 'e2b-signature': sign(raw), 'e2b-delivery-id': id });
    assert.ok(first.status >= 200 && first.status < 300, `status ${first.status}`);
    await first.body?.cancel();
    for (let i = 0; i < 2; i++) {
      const again = await deliver(s, raw, { 'e2b-signature': sign(raw), 'e2b-delivery-id': id });
      assert.ok(again.status >= 200 && again.status < 300, `redelivery status ${again.status}`);
      await again.body?.cancel();
    }
    const lines = logsOf(id);
    assert.equal(lines.filter((l) => l.msg === 'e2b webhook').length, 1, 'processed once');
    assert.equal(lines.filter((l) => /duplicate/.test(l.msg)).length, 2, 'each redelivery is logged as a duplicate');
  });

  test('`killed` for the sandbox of a run in flight ends it with SANDBOX_LOST; other events do not', async () => {
    anthropic.setScript([{ toolCalls: [{ name: 'bash', input: { command: 'echo started; sleep 60' } }] }, { text: 'never' }]);
    const res = await s.query({ prompt: 'x', model: 'haiku' }, { authorization: `Bearer ${API_KEY}` });
    assert.equal(res.status, 200);
    const runId = res.headers.get('x-run-id')!;
    let sandboxId = '';
    let killedAt = 0;
    const seen: Record<string, any>[] = [];
    let webhooks: Promise<void> | undefined;
    const events = await readUntil(res, (e) => {
      seen.push(e);
      if (e.subtype === 'sandbox_created') sandboxId = e.sandboxId;
      if (e.type === 'tool_use') {
        webhooks = (async () => {
          assert.ok(await waitFor(() => fake.processes(sandboxId).some((p) => p.includes('sleep 60')), 10_000), `the command runs before the webhooks come; processes: ${JSON.stringify(fake.processes(sandboxId))}`);
          const meta = { [E2B_META_INSTANCE]: s.app.store.instanceId, [E2B_META_RUN]: runId };
          // Harmless lifecycle events for the same sandbox leave the run alone.
          for (const type of ['sandbox.lifecycle.updated', 'sandbox.lifecycle.paused', 'sandbox.lifecycle.resumed']) {
            const raw = JSON.stringify(event(type, sandboxId, meta));
            const r = await deliver(s, raw, { 'e2b-signature': sign(raw), 'e2b-delivery-id': newDeliveryId() });
            assert.ok(r.status >= 200 && r.status < 300, `${type}: status ${r.status}`);
            await r.body?.cancel();
          }
          // The wait is the test: a run wrongly ended by those events would be gone by now.
          await new Promise((r) => setTimeout(r, 300));
          assert.ok(s.app.runs.get(runId), 'the run is still in flight after non-kill events');
          assert.ok(!seen.some((x) => x.type === 'error' || x.type === 'result'), 'no terminal event yet');
          const raw = JSON.stringify(event('sandbox.lifecycle.killed', sandboxId, meta));
          killedAt = Date.now();
          const r = await deliver(s, raw, { 'e2b-signature': sign(raw), 'e2b-delivery-id': newDeliveryId() });
          assert.ok(r.status >= 200 && r.status < 300, `killed: status ${r.status}`);
          await r.body?.cancel();
        })();
      }
      return e.type === 'result' || e.type === 'error';
    });
    await webhooks;
    assert.ok(killedAt > 0, 'the killed event was sent');
    assert.ok(Date.now() - killedAt < 5000, `the run ended ${Date.now() - killedAt} ms after the webhook`);
    const err = assertWellFormedRun(events);
    assert.equal(err.type, 'error');
    assert.equal(err.code, 'SANDBOX_LOST');
    assert.match(err.content, new RegExp(sandboxId));
    const row = await (await s.fetch(`/runs/${runId}`, { headers: { authorization: `Bearer ${API_KEY}` } })).json();
    assert.equal(row.status, 'error');
    assert.equal(row.errorCode, 'SANDBOX_LOST');
    assert.equal(row.sandboxId, sandboxId);
    // The fake did not really kill it, so the run's own cleanup must have.
    assert.ok(await waitFor(() => !fake.sandboxes().some((x) => x.id === sandboxId), 5000), 'the sandbox is destroyed');
    assert.ok(logLines.some((l) => l.msg === 'e2b webhook' && l.type === 'sandbox.lifecycle.killed' && l.sandboxId === sandboxId), 'the kill is logged');
  });
});
