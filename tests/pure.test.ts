// Pure modules, no server, no Docker: SSE framing, text helpers, pricing, structured output, webhook
// signatures, bearer check, globs, request parsing and the run store.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventLogs } from '../lib/event-log.ts';
import { EventStream, type StreamEvent } from '../lib/sse.ts';
import { decodeText, truncateMiddle } from '../lib/text.ts';
import { costOf, findPrice, type Price } from '../lib/pricing.ts';
import { MODEL_ALIASES } from '../lib/models.ts';
import { compileSchema, extractJson, outputFormatSchema, validateOutput } from '../lib/structured.ts';
import { DeliveryLog, verifyE2bSignature } from '../lib/webhook.ts';
import { bearerMatches } from '../lib/auth.ts';
import { globToRegExp } from '../lib/composite.ts';
import { MAX_UPLOAD_BYTES, normaliseUploadPath, parseQuery } from '../lib/request.ts';
import { RunStore, type RunEnd } from '../lib/store.ts';
import * as v from 'valibot';

const tmpRoot = mkdtempSync(join(tmpdir(), 'sandcaster-pure-test-'));
after(() => rmSync(tmpRoot, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------------------
describe('EventStream (docs/api.md#event-stream)', () => {
  async function readAll(stream: ReadableStream<Uint8Array>): Promise<string> {
    const reader = stream.getReader();
    const dec = new TextDecoder();
    let out = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return out + dec.decode();
      out += dec.decode(value, { stream: true });
    }
  }

  /** Splits SSE text into blocks (separated by a blank line), each a list of lines. */
  const blocks = (text: string) => {
    assert.ok(text.endsWith('\n\n'), 'every block ends with a blank line');
    return text.slice(0, -2).split('\n\n').map((b) => b.split('\n'));
  };

  /** A run's log (in-memory database) with one reader from the start. */
  function logWithReader(heartbeatMs: number, onGone: () => void = () => {}) {
    const store = new RunStore(':memory:');
    const logs = new EventLogs(store, ':memory:', { storeEvents: false });
    const log = logs.open('run_x', () => {});
    const es = new EventStream(logs.subscribe('run_x', 0), onGone, heartbeatMs);
    const end = (e: StreamEvent) => void log.end(e, { kind: 'sandbox', id: 'run_x', sandboxId: 'none', sandboxCount: 0 });
    return { log, es, end };
  }

  test('each event is id / event / one-line JSON data, ids 1..n, then the stream closes', async () => {
    const { log, es, end } = logWithReader(60_000);
    const events = [
      { type: 'system', subtype: 'run_started', content: 'starting', runId: 'run_x' },
      { type: 'assistant', subtype: 'delta', content: 'line one\nline two\r\n\n"quoted" \u2028 end' },
      { type: 'tool_result', id: 't1', toolName: 'bash', content: 'a\n\nb\n', isError: false, exitCode: 0, sandbox: 'main' },
    ];
    for (const e of events) assert.equal(log.append(e), true);
    const terminal = { type: 'result', subtype: 'success', content: 'done\nreally' };
    end(terminal);
    const text = await readAll(es.body);
    const parsed = blocks(text);
    const all = [...events, terminal];
    assert.equal(parsed.length, all.length);
    parsed.forEach((lines, i) => {
      assert.equal(lines.length, 3, `block ${i + 1} has exactly three lines: ${JSON.stringify(lines)}`);
      assert.equal(lines[0], `id: ${i + 1}`);
      assert.equal(lines[1], `event: ${all[i]!.type}`);
      assert.match(lines[2]!, /^data: /, `block ${i + 1} ends with its data line`);
      const data = JSON.parse(lines[2]!.slice('data: '.length));
      assert.deepEqual(data, all[i]!);
      assert.equal(data.type, all[i]!.type);
    });
    // No raw line separators inside the data line (a browser EventSource would split on them).
    for (const lines of parsed) assert.doesNotMatch(lines[2]!, /[\r\n]/);
  });

  test('nothing is sent after end()', async () => {
    const { log, es, end } = logWithReader(60_000);
    log.append({ type: 'system', subtype: 'x', content: '' });
    end({ type: 'error', code: 'INTERNAL', content: 'boom' });
    assert.equal(log.isEnded, true);
    assert.equal(log.append({ type: 'assistant', content: 'late' }), false);
    end({ type: 'result', content: 'second terminal' });
    const parsed = blocks(await readAll(es.body));
    assert.equal(parsed.length, 2);
    assert.equal(parsed[1]![1], 'event: error');
  });

  test('a `: ping` comment after silence; it does not use an id', async () => {
    const { es, end } = logWithReader(25);
    // Read while silent until two pings came (polled: a busy machine may delay timers), then end the run.
    const reader = es.body.getReader();
    const dec = new TextDecoder();
    let text = '';
    const until = Date.now() + 5000;
    const alive = setTimeout(() => {}, 5000); // heartbeat timers are unref'd: keep the test process up meanwhile
    while ((text.match(/: ping\n\n/g) ?? []).length < 2 && Date.now() < until) text += dec.decode((await reader.read()).value, { stream: true });
    clearTimeout(alive);
    end({ type: 'result', content: 'ok' });
    for (let r = await reader.read(); !r.done; r = await reader.read()) text += dec.decode(r.value, { stream: true });
    const parsed = blocks(text);
    const pings = parsed.filter((b) => b.length === 1 && b[0] === ': ping');
    assert.ok(pings.length >= 2, `expected pings during silence, got ${JSON.stringify(text)}`);
    const last = parsed.at(-1)!;
    assert.equal(last[0], 'id: 1', 'pings are comments, the first event is still id 1');
    assert.ok(parsed.every((b) => (b.length === 1 && b[0] === ': ping') || b.length === 3), 'only pings and events');
  });

  test('no ping while events keep flowing', async () => {
    const { log, es, end } = logWithReader(300);
    // The spacing is the test: 30 events 15 ms apart outlast the 300 ms heartbeat, which they must keep resetting.
    for (let i = 0; i < 30; i++) {
      log.append({ type: 'assistant', subtype: 'delta', content: String(i) });
      await sleep(15);
    }
    end({ type: 'result', content: 'ok' });
    const text = await readAll(es.body);
    assert.doesNotMatch(text, /: ping/);
    assert.equal(blocks(text).length, 31);
  });

  test('no ping after the stream is closed', async () => {
    const { es, end } = logWithReader(10);
    end({ type: 'result', content: 'ok' });
    await sleep(50); // the wait is the test: five heartbeat intervals in which no ping may come
    const text = await readAll(es.body);
    assert.doesNotMatch(text, /: ping/);
  });

  test('reader cancel (client disconnect) runs the gone callback once and closes the stream; the log goes on', async () => {
    let gone = 0;
    const { log, es, end } = logWithReader(60_000, () => gone++);
    log.append({ type: 'system', subtype: 'x', content: '' });
    const reader = es.body.getReader();
    const first = await reader.read();
    assert.match(new TextDecoder().decode(first.value), /^id: 1\n/);
    await reader.cancel();
    assert.equal(gone, 1);
    assert.equal(es.isClosed, true);
    assert.equal(log.append({ type: 'assistant', content: 'nobody listens' }), true, 'the run does not care who reads');
    assert.doesNotThrow(() => end({ type: 'result', content: 'x' }));
    assert.doesNotThrow(() => es.close());
    assert.equal(gone, 1);
  });
});

// ---------------------------------------------------------------------------------------------------------
describe('truncateMiddle (past 30,000 chars keep the first and last 15,000)', () => {
  test('30,000 characters or fewer are unchanged', () => {
    const exact = 'x'.repeat(30_000);
    assert.equal(truncateMiddle(exact), exact);
    assert.equal(truncateMiddle(''), '');
    assert.equal(truncateMiddle('short\ntext'), 'short\ntext');
  });

  for (const total of [30_001, 30_002, 45_678, 1_000_000]) {
    test(`${total} characters: head, a line naming exactly ${total - 30_000} omitted, tail`, () => {
      const head = 'h'.repeat(15_000);
      const middle = 'm'.repeat(total - 30_000);
      const tail = 't'.repeat(15_000);
      const out = truncateMiddle(head + middle + tail);
      const lines = out.split('\n');
      assert.equal(lines.length, 3);
      assert.equal(lines[0], head);
      assert.equal(lines[1], `[... ${total - 30_000} characters omitted ...]`);
      assert.equal(lines[2], tail);
    });
  }

  test('text with line breaks keeps exactly the first and last 15,000 characters', () => {
    const text = Array.from({ length: 5_000 }, (_, i) => `line ${i}`).join('\n');
    const out = truncateMiddle(text);
    const omitted = text.length - 30_000;
    const marker = `\n[... ${omitted} characters omitted ...]\n`;
    assert.equal(out, text.slice(0, 15_000) + marker + text.slice(-15_000));
  });
});

describe('decodeText', () => {
  const enc = new TextEncoder();
  test('valid UTF-8 without NUL is text', () => {
    const s = 'héllo wörld ✓ 🙂\n\ttabs';
    assert.equal(decodeText(enc.encode(s)), s);
    assert.equal(decodeText(new Uint8Array()), '');
  });
  test('a NUL byte makes it binary', () => {
    assert.equal(decodeText(enc.encode('abc\0def')), null);
    assert.equal(decodeText(Uint8Array.from([0])), null);
  });
  test('invalid UTF-8 is binary', () => {
    assert.equal(decodeText(Uint8Array.from([0xff, 0xfe, 0x41])), null);
    assert.equal(decodeText(Uint8Array.from([0x61, 0xc3])), null, 'truncated multi-byte sequence');
    assert.equal(decodeText(Uint8Array.from([0xed, 0xa0, 0x80])), null, 'encoded surrogate');
  });
});

// ---------------------------------------------------------------------------------------------------------
describe('pricing', () => {
  test('an exact id is known', () => {
    const p = findPrice('claude-sonnet-4-6');
    assert.ok(p, 'claude-sonnet-4-6 has a price');
    assert.ok(p.input > 0 && p.output > 0, `input and output prices are positive; got ${JSON.stringify(p)}`);
  });

  test('a dated variant <id>-YYYYMMDD has the price of the id', () => {
    assert.deepEqual(findPrice('claude-sonnet-4-6-20260101'), findPrice('claude-sonnet-4-6'));
    assert.deepEqual(findPrice('claude-3-5-haiku-20241022'), findPrice('claude-3-5-haiku'));
    assert.notEqual(findPrice('claude-3-5-haiku'), undefined, 'claude-3-5-haiku has a price (so the equality above is not undefined = undefined)');
  });

  test('only an 8-digit date suffix counts', () => {
    assert.equal(findPrice('claude-sonnet-4-6-2026'), undefined);
    assert.equal(findPrice('claude-sonnet-4-6-preview'), undefined);
  });

  test('unknown model → undefined', () => {
    assert.equal(findPrice('my-local-llama'), undefined);
    assert.equal(findPrice(''), undefined);
  });

  test('an override wins over the built-in price, also for dated variants; it can add a model', () => {
    const over: Record<string, Price> = { 'claude-sonnet-4-6': { input: 1, output: 2 }, 'my-local-llama': { input: 0, output: 0 } };
    assert.deepEqual(findPrice('claude-sonnet-4-6', over), { input: 1, output: 2 });
    assert.deepEqual(findPrice('claude-sonnet-4-6-20260101', over), { input: 1, output: 2 });
    assert.deepEqual(findPrice('my-local-llama', over), { input: 0, output: 0 });
    assert.notDeepEqual(findPrice('claude-opus-4-6', over), undefined, 'other models keep their built-in price');
  });

  for (const [alias, id] of Object.entries(MODEL_ALIASES)) {
    test(`alias ${alias} (${id}) has a price`, () => {
      assert.ok(findPrice(id), id);
    });
  }

  test('costOf: hand-computed figure with cache reads and writes', () => {
    // 10,000 input tokens billed in all, of which 2,000 cache reads and 1,000 cache writes: 7,000 plain.
    // 7,000 × $3 + 500 × $15 + 2,000 × $0.30 + 1,000 × $3.75 = 21,000 + 7,500 + 600 + 3,750 = $32,850 per million
    const price: Price = { input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 };
    const cost = costOf({ inputTokens: 10_000, outputTokens: 500, cacheReadTokens: 2_000, cacheWriteTokens: 1_000 }, price);
    assert.ok(Math.abs(cost - 0.03285) < 1e-12, String(cost));
  });

  test('costOf: cache parts without their own rate are billed at the input rate', () => {
    // 1,000,000 input (400,000 of them cache reads) × $2 + 250,000 output × $8 = $2 + $2 = $4
    const cost = costOf({ inputTokens: 1_000_000, outputTokens: 250_000, cacheReadTokens: 400_000, cacheWriteTokens: 0 }, { input: 2, output: 8 });
    assert.ok(Math.abs(cost - 4) < 1e-12, String(cost));
  });

  test('costOf: zero usage costs nothing', () => {
    assert.equal(costOf({ inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 }, { input: 3, output: 15 }), 0);
  });
});

// ---------------------------------------------------------------------------------------------------------
describe('structured output', () => {
  /** The compile outcome without the validator function, so a failure shows the error. */
  const compiled = (schema: Record<string, unknown>) => {
    const c = compileSchema(schema);
    return c.ok ? { ok: true } : { ok: false, error: c.error };
  };
  test('a draft-07 schema compiles and validates', () => {
    const schema = {
      $schema: 'http://json-schema.org/draft-07/schema#',
      type: 'object',
      properties: { name: { type: 'string' }, count: { type: 'integer', minimum: 0 } },
      required: ['name', 'count'],
      additionalProperties: false,
    };
    assert.deepEqual(compiled(schema), { ok: true }, 'the schema compiles');
    assert.equal(validateOutput(schema, { name: 'a', count: 2 }), null);
    assert.notEqual(validateOutput(schema, { name: 'a', count: -1 }), null);
    assert.notEqual(validateOutput(schema, { name: 'a', count: 1, extra: true }), null);
  });

  test('a schema without $schema is accepted (draft-07 style)', () => {
    const schema = { type: 'array', items: { type: 'number' } };
    assert.equal(validateOutput(schema, [1, 2, 3]), null);
    assert.notEqual(validateOutput(schema, [1, 'two']), null);
  });

  test('a 2020-12 schema uses 2020-12 semantics (prefixItems)', () => {
    const schema = {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'array',
      prefixItems: [{ type: 'string' }, { type: 'number' }],
      items: false,
    };
    assert.deepEqual(compiled(schema), { ok: true }, 'the schema compiles');
    assert.equal(validateOutput(schema, ['a', 1]), null);
    assert.notEqual(validateOutput(schema, ['a', 'b']), null, 'second item must be a number');
    assert.notEqual(validateOutput(schema, ['a', 1, 2]), null, 'no items past prefixItems');
  });

  test('a 2019-09 schema uses 2019-09 semantics (dependentRequired)', () => {
    const schema = {
      $schema: 'https://json-schema.org/draft/2019-09/schema',
      type: 'object',
      dependentRequired: { card: ['billing'] },
    };
    assert.equal(validateOutput(schema, { card: 1, billing: 2 }), null);
    assert.notEqual(validateOutput(schema, { card: 1 }), null);
  });

  test('an invalid schema is rejected', () => {
    assert.equal(compileSchema({ type: 'not-a-type' }).ok, false);
    assert.equal(compileSchema({ type: 'object', properties: { a: { minimum: 'zero' } } }).ok, false);
    assert.equal(v.safeParse(outputFormatSchema, { type: 'not-a-type' }).success, false);
    const parsed = parseQuery({ prompt: 'x', outputFormat: { type: 'object', required: 'name' } });
    assert.deepEqual(parsed.ok ? 'accepted' : parsed.issues.map((i) => i.path), ['outputFormat'], 'the query is refused with an issue at outputFormat');
  });

  test('the {type: "json_schema", schema} wrapper is normalised to the schema', () => {
    const schema = { type: 'object', properties: { a: { type: 'number' } } };
    const r = v.safeParse(outputFormatSchema, { type: 'json_schema', schema });
    assert.ok(r.success, `the wrapper is accepted; issues: ${JSON.stringify(r.issues?.map((i) => i.message))}`);
    assert.deepEqual(r.output, schema);
  });

  test('validation error text names the field', () => {
    const schema = { type: 'object', properties: { user: { type: 'object', properties: { age: { type: 'integer' } } } }, required: ['title'] };
    const err = validateOutput(schema, { user: { age: 'old' } });
    assert.ok(err, 'validation fails');
    assert.match(err, /user\/age/);
    assert.match(err, /title/);
  });

  test('validation error text names an unexpected extra field', () => {
    const strict = { type: 'object', properties: { a: { type: 'number' } }, additionalProperties: false };
    assert.match(validateOutput(strict, { a: 1, surprise: 2 }) ?? '', /surprise/);
    const strict2020 = { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object', properties: { a: {} }, unevaluatedProperties: false };
    assert.match(validateOutput(strict2020, { a: 1, leftover: 2 }) ?? '', /leftover/);
  });

  test('extractJson: bare JSON', () => {
    assert.deepEqual(extractJson('{"a": 1}'), { ok: true, value: { a: 1 }, text: '{"a": 1}' });
    const r = extractJson('  \n[1, 2, 3]\n ');
    assert.ok(r.ok, `bare JSON with white space around it is found; ${JSON.stringify(r)}`);
    assert.deepEqual(r.value, [1, 2, 3]);
  });

  test('extractJson: a ```json fence, with text around it', () => {
    const r = extractJson('Here is the result:\n```json\n{"name": "x", "n": [1, 2]}\n```\nAnything else?');
    assert.ok(r.ok, `the fenced JSON is found; ${JSON.stringify(r)}`);
    assert.deepEqual(r.value, { name: 'x', n: [1, 2] });
    assert.equal(r.text, '{"name": "x", "n": [1, 2]}', 'the bare JSON text, fence removed');
  });

  test('extractJson: a bare ``` fence and an uppercase JSON tag', () => {
    const a = extractJson('```\n{"a": true}\n```');
    assert.ok(a.ok, `a bare fence is read; ${JSON.stringify(a)}`);
    assert.deepEqual(a.value, { a: true });
    const b = extractJson('```JSON\n{"b": null}\n```');
    assert.ok(b.ok, `a JSON tag in capitals is read; ${JSON.stringify(b)}`);
    assert.deepEqual(b.value, { b: null });
  });

  test('extractJson: not JSON', () => {
    assert.equal(extractJson('I could not do it.').ok, false);
    assert.equal(extractJson('```json\n{broken\n```').ok, false);
    assert.equal(extractJson('').ok, false);
  });
});

// ---------------------------------------------------------------------------------------------------------
describe('E2B webhook signature (docs/api.md#e2b-webhook)', () => {
  const secret = 'whsec_test_secret';
  // Independent computation: sha256(secret + raw body).
  const sig = (s: string, body: string) => createHash('sha256').update(s + body, 'utf8').digest();
  // A body whose digest contains '+' or '/', so base64url and standard base64 differ.
  let body = '';
  for (let i = 0; ; i++) {
    body = JSON.stringify({ id: `evt_${i}`, type: 'sandbox.lifecycle.killed', sandboxId: 'sbx_1', eventData: { sandbox_metadata: { run: 'run_1' } } });
    const b64 = sig(secret, body).toString('base64');
    if (/[+/]/.test(b64)) break;
  }
  const raw = new TextEncoder().encode(body);
  const url = sig(secret, body).toString('base64url');
  const std = sig(secret, body).toString('base64').replace(/=+$/, '');

  test('the chosen body tells the two encodings apart', () => {
    assert.notEqual(url, std);
    assert.doesNotMatch(url, /=/);
  });

  test('base64url without padding is accepted', () => {
    assert.equal(verifyE2bSignature(secret, raw, url), true);
  });

  test('standard base64 without padding is accepted', () => {
    assert.equal(verifyE2bSignature(secret, raw, std), true);
  });

  test('wrong secret, tampered body, missing or mangled header are rejected', () => {
    assert.equal(verifyE2bSignature('other-secret', raw, url), false);
    assert.equal(verifyE2bSignature(secret, new TextEncoder().encode(body.replace('killed', 'created')), url), false);
    assert.equal(verifyE2bSignature(secret, new TextEncoder().encode(body + ' '), url), false);
    assert.equal(verifyE2bSignature(secret, raw, null), false);
    assert.equal(verifyE2bSignature(secret, raw, ''), false);
    assert.equal(verifyE2bSignature(secret, raw, url.slice(0, -1)), false);
    assert.equal(verifyE2bSignature(secret, raw, url + 'A'), false);
    assert.equal(verifyE2bSignature(secret, raw, sig(secret, body).toString('hex')), false);
    // sha256(body + secret) is not the documented order.
    assert.equal(verifyE2bSignature(secret, raw, createHash('sha256').update(body + secret).digest('base64url')), false);
  });

  test('the raw bytes are what is signed (non-ASCII body)', () => {
    const b = '{"note":"ünïcødé ✓"}';
    assert.equal(verifyE2bSignature(secret, Buffer.from(b, 'utf8'), sig(secret, b).toString('base64url')), true);
  });
});

describe('DeliveryLog', () => {
  test('the first delivery of an id is acted on, repeats are not', () => {
    const log = new DeliveryLog();
    assert.equal(log.firstTime('d1'), true);
    assert.equal(log.firstTime('d1'), false);
    assert.equal(log.firstTime('d2'), true);
    assert.equal(log.firstTime('d1'), false);
    assert.equal(log.firstTime('d2'), false);
  });

  test('bounded: the most recent ids are remembered, the oldest forgotten', () => {
    const log = new DeliveryLog(2);
    for (const id of ['a', 'b', 'c']) assert.equal(log.firstTime(id), true);
    assert.equal(log.firstTime('c'), false);
    assert.equal(log.firstTime('b'), false);
    assert.equal(log.firstTime('a'), true, 'the oldest was dropped to stay within the bound');
  });
});

// ---------------------------------------------------------------------------------------------------------
describe('bearerMatches', () => {
  const key = 'sk-sandcaster-0123456789';
  test('the right key matches', () => {
    assert.equal(bearerMatches(`Bearer ${key}`, key), true);
    assert.equal(bearerMatches(`bearer ${key}`, key), true, 'the scheme is case-insensitive');
    assert.equal(bearerMatches(`Bearer   ${key}  `, key), true);
  });
  test('anything else does not', () => {
    assert.equal(bearerMatches(null, key), false);
    assert.equal(bearerMatches('', key), false);
    assert.equal(bearerMatches('Bearer', key), false);
    assert.equal(bearerMatches('Bearer ', key), false);
    assert.equal(bearerMatches(key, key), false, 'no scheme');
    assert.equal(bearerMatches(`Basic ${key}`, key), false);
    assert.equal(bearerMatches(`Bearer ${key.slice(0, -1)}`, key), false, 'a prefix');
    assert.equal(bearerMatches(`Bearer ${key}x`, key), false, 'longer');
    assert.equal(bearerMatches(`Bearer ${key.toUpperCase()}`, key), false, 'the key is case-sensitive');
  });
  test('an empty key never matches', () => {
    assert.equal(bearerMatches('Bearer ', ''), false);
    assert.equal(bearerMatches(null, ''), false);
  });
});

// ---------------------------------------------------------------------------------------------------------
describe('globToRegExp', () => {
  const matches = (glob: string, path: string) => globToRegExp(glob).test(path);

  test('*.txt: one segment', () => {
    assert.equal(matches('*.txt', 'a.txt'), true, '*.txt matches a.txt');
    assert.equal(matches('*.txt', '.txt'), true, '*.txt matches .txt');
    assert.equal(matches('*.txt', 'dir/a.txt'), false, '*.txt does not match dir/a.txt');
    assert.equal(matches('*.txt', 'a.txt.bak'), false, '*.txt does not match a.txt.bak');
    assert.ok(!matches('*.txt', 'atxt'), 'the dot is literal');
  });

  test('**/*.js: any depth, including none', () => {
    assert.equal(matches('**/*.js', 'x.js'), true, '**/*.js matches x.js');
    assert.equal(matches('**/*.js', 'a/x.js'), true, '**/*.js matches a/x.js');
    assert.equal(matches('**/*.js', 'a/b/c/x.js'), true, '**/*.js matches a/b/c/x.js');
    assert.equal(matches('**/*.js', 'x.jsx'), false, '**/*.js does not match x.jsx');
    assert.equal(matches('**/*.js', 'a/x.json'), false, '**/*.js does not match a/x.json');
  });

  test('a/**: everything under a', () => {
    assert.equal(matches('a/**', 'a/b'), true, 'a/** matches a/b');
    assert.equal(matches('a/**', 'a/b/c.txt'), true, 'a/** matches a/b/c.txt');
    assert.equal(matches('a/**', 'ab/c'), false, 'a/** does not match ab/c');
    assert.equal(matches('a/**', 'b/a/c'), false, 'a/** does not match b/a/c');
  });

  test('?: exactly one character within a segment', () => {
    assert.equal(matches('file?.md', 'file1.md'), true, 'file?.md matches file1.md');
    assert.equal(matches('file?.md', 'file12.md'), false, 'file?.md does not match file12.md');
    assert.equal(matches('file?.md', 'file.md'), false, 'file?.md does not match file.md');
    assert.equal(matches('file?.md', 'file/.md'), false, 'file?.md does not match file/.md');
  });

  test('regex metacharacters are literal', () => {
    assert.equal(matches('a+b(1)[x].txt', 'a+b(1)[x].txt'), true, 'a+b(1)[x].txt matches a+b(1)[x].txt');
    assert.equal(matches('a+b.txt', 'aab.txt'), false, 'a+b.txt does not match aab.txt');
    assert.equal(matches('src/$name^.ts', 'src/$name^.ts'), true, 'src/$name^.ts matches src/$name^.ts');
  });
});

// ---------------------------------------------------------------------------------------------------------
describe('normaliseUploadPath', () => {
  for (const [input, expected] of [
    ['a.txt', 'a.txt'],
    ['dir/sub/a.txt', 'dir/sub/a.txt'],
    ['./a.txt', 'a.txt'],
    ['dir//a.txt', 'dir/a.txt'],
    ['dir/../a.txt', 'a.txt'],
    ['dir\\win.txt', 'dir/win.txt'],
    ['..foo', '..foo'],
  ] as const) {
    test(`${JSON.stringify(input)} → ${expected}`, () => {
      assert.equal(normaliseUploadPath(input), expected);
    });
  }

  for (const input of ['', '/etc/passwd', '\\abs', '..', '../x', 'a/../../x', 'a/b/../../../x', '.', 'dir/', 'a/..', 'x\0y']) {
    test(`${JSON.stringify(input)} is refused`, () => {
      const r = normaliseUploadPath(input);
      assert.equal(typeof r, 'object', `got ${JSON.stringify(r)}`);
      assert.match(typeof r === 'object' ? r.error : '', /\S/, 'the refusal says why');
    });
  }
});

describe('parseQuery', () => {
  const ok = (body: Record<string, unknown>) => {
    const r = parseQuery({ prompt: 'hi', ...body });
    assert.ok(r.ok, JSON.stringify(!r.ok && r.issues));
    return r.value;
  };
  const issues = (body: unknown) => {
    const r = parseQuery(body);
    assert.ok(!r.ok, `expected a 400, got ${JSON.stringify(r.ok && r.value)}`);
    return r.issues;
  };
  /** The body is refused with an issue naming `path` (among others). */
  const issueAt = (body: unknown, path: string | RegExp) => {
    const paths = issues(body).map((i) => i.path);
    assert.ok(paths.some((p) => (typeof path === 'string' ? p === path : path.test(p))), `expected an issue at ${path}; got issues at ${JSON.stringify(paths)}`);
  };

  test('a minimal body', () => {
    const q = ok({});
    assert.equal(q.prompt, 'hi');
    assert.deepEqual(q.files, []);
  });

  test('the body must be an object', () => {
    for (const b of [null, [], 'text', 3]) assert.equal(issues(b)[0]!.path, '(root)');
  });

  test('prompt rules and unknown fields name the field', () => {
    issueAt({}, 'prompt');
    issueAt({ prompt: '' }, 'prompt');
    issueAt({ prompt: ' \n\t ' }, 'prompt');
    issueAt({ prompt: 'x'.repeat(1_000_001) }, 'prompt');
    assert.equal(ok({ prompt: 'x'.repeat(1_000_000) }).prompt.length, 1_000_000, 'a prompt of exactly 1,000,000 characters is accepted');
    issueAt({ prompt: 'x', bogus: 1 }, 'bogus');
    issueAt({ prompt: 'x', maxTurns: 0 }, 'maxTurns');
    issueAt({ prompt: 'x', timeout: 3601 }, 'timeout');
    issueAt({ prompt: 'x', provider: 'mistral' }, 'provider');
  });

  test('object-form files: {"path": "text"}', () => {
    const q = ok({ files: { 'a.txt': 'hello', 'dir/b.md': 'ünï' } });
    assert.deepEqual(
      q.files.map((f) => [f.path, f.bytes.toString('utf8')]),
      [
        ['a.txt', 'hello'],
        ['dir/b.md', 'ünï'],
      ],
    );
    assert.equal(q.files[1]!.bytes.length, Buffer.byteLength('ünï', 'utf8'));
  });

  test('array-form files, utf8 by default, paths normalised', () => {
    const q = ok({ files: [{ path: './x/y.txt', content: 'abc' }, { path: 'z.txt', content: 'é', encoding: 'utf8' }] });
    assert.deepEqual(q.files.map((f) => f.path), ['x/y.txt', 'z.txt']);
    assert.deepEqual([...q.files[1]!.bytes], [0xc3, 0xa9]);
  });

  test('base64 content is decoded byte-exact', () => {
    const bytes = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(1000)]);
    const q = ok({ files: [{ path: 'bin/all.bytes', content: bytes.toString('base64'), encoding: 'base64' }] });
    assert.equal(Buffer.compare(q.files[0]!.bytes, bytes), 0);
  });

  test('invalid base64 names the content field', () => {
    issueAt({ prompt: 'x', files: [{ path: 'a', content: 'not base64!!', encoding: 'base64' }] }, 'files[0].content');
  });

  test('bad paths and duplicates after normalising name the item', () => {
    issueAt({ prompt: 'x', files: [{ path: '../etc/passwd', content: '' }] }, 'files[0].path');
    issueAt({ prompt: 'x', files: [{ path: 'a.txt', content: '1' }, { path: './a.txt', content: '2' }] }, 'files[1].path');
    issueAt({ prompt: 'x', files: { '/abs': 'x' } }, /^files.*path$/);
    issueAt({ prompt: 'x', files: [{ path: 'a', content: 'x', extra: 1 }] }, 'files[0].extra');
    issueAt({ prompt: 'x', files: [{ path: 'a', content: 'x', encoding: 'hex' }] }, 'files[0].encoding');
  });

  test('at most 20 files', () => {
    const files = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`f${i}.txt`, String(i)]));
    assert.equal(ok({ files: files(20) }).files.length, 20);
    issueAt({ prompt: 'x', files: files(21) }, 'files');
  });

  test('at most 10 MiB decoded in total, counted after base64 decoding', () => {
    assert.equal(MAX_UPLOAD_BYTES, 10 * 1024 * 1024);
    const half = 5 * 1024 * 1024;
    // Exactly 10 MiB decoded, sent as ~13.3 MiB of base64: accepted.
    const exact = ok({
      files: [
        { path: 'a.bin', content: Buffer.alloc(half, 1).toString('base64'), encoding: 'base64' },
        { path: 'b.txt', content: 'b'.repeat(half) },
      ],
    });
    assert.equal(exact.files.reduce((n, f) => n + f.bytes.length, 0), 10 * 1024 * 1024);
    // One byte more: refused.
    issueAt({
      prompt: 'x',
      files: [
        { path: 'a.bin', content: Buffer.alloc(half, 1).toString('base64'), encoding: 'base64' },
        { path: 'b.txt', content: 'b'.repeat(half + 1) },
      ],
    }, 'files');
  });
});

// ---------------------------------------------------------------------------------------------------------
describe('RunStore (docs/api.md#run-records)', () => {
  let n = 0;
  const freshPath = () => join(tmpRoot, `store-${++n}`, 'nested', 'runs.db');
  const end = (over: Partial<RunEnd> = {}): RunEnd => ({
    status: 'completed',
    errorCode: null,
    error: null,
    costUsd: 0.0123,
    inputTokens: 100,
    outputTokens: 20,
    cacheReadTokens: 5,
    cacheWriteTokens: 7,
    numTurns: 2,
    durationSecs: 1.5,
    filesCount: 1,
    sandboxCount: 1,
    ...over,
  });
  const run = (id: string, startedAt: string) => ({ id, prompt: `prompt ${id}`, model: 'claude-sonnet-4-6', provider: 'anthropic', sandboxProvider: 'docker', startedAt });

  test('insert creates a running row; the folder is created', () => {
    const path = freshPath();
    const s = new RunStore(path);
    try {
      assert.ok(existsSync(path), `the database file exists at ${path}`);
      s.insert(run('run_a', '2026-01-01T00:00:00.000Z'));
      const r = s.get('run_a');
      assert.ok(r, 'run_a is found right after its insert');
      assert.equal(r.status, 'running');
      assert.equal(r.prompt, 'prompt run_a');
      assert.equal(r.model, 'claude-sonnet-4-6');
      assert.equal(r.provider, 'anthropic');
      assert.equal(r.sandboxProvider, 'docker');
      assert.equal(r.startedAt, '2026-01-01T00:00:00.000Z');
      assert.equal(r.completedAt, null);
      assert.equal(r.sandboxId, null);
      assert.equal(r.costUsd, null);
      assert.equal(r.inputTokens, 0);
      assert.equal(s.get('run_missing'), undefined);
    } finally {
      s.close();
    }
  });

  test('finish records the end; only running rows are closed', () => {
    const s = new RunStore(freshPath());
    try {
      s.insert(run('run_a', '2026-01-01T00:00:00.000Z'));
      s.finish('run_a', end(), '2026-01-01T00:00:05.000Z');
      const r = s.get('run_a')!;
      assert.equal(r.status, 'completed');
      assert.equal(r.completedAt, '2026-01-01T00:00:05.000Z');
      assert.equal(r.costUsd, 0.0123);
      assert.deepEqual([r.inputTokens, r.outputTokens, r.cacheReadTokens, r.cacheWriteTokens, r.numTurns], [100, 20, 5, 7, 2]);
      assert.equal(r.durationSecs, 1.5);
      assert.equal(r.filesCount, 1);
      assert.equal(r.sandboxCount, 1);
      // A second finish (e.g. cancel racing the terminal event) leaves the closed row as it is.
      s.finish('run_a', end({ status: 'cancelled', errorCode: 'X', error: 'late', inputTokens: 999 }), '2026-01-01T00:01:00.000Z');
      const again = s.get('run_a')!;
      assert.equal(again.status, 'completed');
      assert.equal(again.errorCode, null);
      assert.equal(again.inputTokens, 100);
      assert.equal(again.completedAt, '2026-01-01T00:00:05.000Z');
    } finally {
      s.close();
    }
  });

  test('an error end keeps its code and message', () => {
    const s = new RunStore(freshPath());
    try {
      s.insert(run('run_e', '2026-01-01T00:00:00.000Z'));
      s.finish('run_e', end({ status: 'error', errorCode: 'TIMEOUT', error: 'the run took too long', costUsd: null }), '2026-01-01T00:05:00.000Z');
      const r = s.get('run_e')!;
      assert.deepEqual([r.status, r.errorCode, r.error, r.costUsd], ['error', 'TIMEOUT', 'the run took too long', null]);
    } finally {
      s.close();
    }
  });

  test('setSandbox: the first sandbox id wins; the count follows', () => {
    const s = new RunStore(freshPath());
    try {
      s.insert(run('run_s', '2026-01-01T00:00:00.000Z'));
      s.setSandbox('run_s', 'ctr_main', 1);
      s.setSandbox('run_s', 'ctr_secondary', 2);
      const r = s.get('run_s')!;
      assert.equal(r.sandboxId, 'ctr_main');
      assert.equal(r.sandboxCount, 2);
    } finally {
      s.close();
    }
  });

  test('list: newest first, limit, status filter', () => {
    const s = new RunStore(freshPath());
    try {
      // Inserted out of order to show that ordering follows startedAt, not insertion.
      s.insert(run('run_2', '2026-01-02T00:00:00.000Z'));
      s.insert(run('run_1', '2026-01-01T00:00:00.000Z'));
      s.insert(run('run_4', '2026-01-04T00:00:00.000Z'));
      s.insert(run('run_3', '2026-01-03T00:00:00.000Z'));
      s.finish('run_1', end(), '2026-01-01T00:01:00.000Z');
      s.finish('run_3', end(), '2026-01-03T00:01:00.000Z');
      s.finish('run_2', end({ status: 'error', errorCode: 'MODEL_ERROR', error: 'x' }), '2026-01-02T00:01:00.000Z');
      assert.deepEqual(s.list(20).map((r) => r.id), ['run_4', 'run_3', 'run_2', 'run_1']);
      assert.deepEqual(s.list(2).map((r) => r.id), ['run_4', 'run_3']);
      assert.deepEqual(s.list(1).map((r) => r.id), ['run_4']);
      assert.deepEqual(s.list(20, 'completed').map((r) => r.id), ['run_3', 'run_1']);
      assert.deepEqual(s.list(1, 'completed').map((r) => r.id), ['run_3']);
      assert.deepEqual(s.list(20, 'error').map((r) => r.id), ['run_2']);
      assert.deepEqual(s.list(20, 'running').map((r) => r.id), ['run_4']);
      assert.deepEqual(s.list(20, 'cancelled'), []);
    } finally {
      s.close();
    }
  });

  test('list: runs started in the same millisecond, the later insert first', () => {
    const s = new RunStore(freshPath());
    try {
      for (const id of ['run_x', 'run_y', 'run_z']) s.insert(run(id, '2026-01-01T00:00:00.000Z'));
      assert.deepEqual(s.list(20).map((r) => r.id), ['run_z', 'run_y', 'run_x']);
    } finally {
      s.close();
    }
  });

  test('markInterrupted turns running rows into error / INTERRUPTED, leaving closed rows alone', () => {
    const path = freshPath();
    const s = new RunStore(path);
    s.insert(run('run_done', '2026-01-01T00:00:00.000Z'));
    s.finish('run_done', end(), '2026-01-01T00:00:10.000Z');
    s.insert(run('run_left1', '2026-01-01T00:01:00.000Z'));
    s.insert(run('run_left2', '2026-01-01T00:02:00.000Z'));
    s.close(); // the process "dies" with two runs in flight
    const t = new RunStore(path);
    try {
      assert.equal(t.markInterrupted('2026-01-02T00:00:00.000Z'), 2);
      for (const id of ['run_left1', 'run_left2']) {
        const r = t.get(id)!;
        assert.equal(r.status, 'error');
        assert.equal(r.errorCode, 'INTERRUPTED');
        assert.match(r.error ?? '', /\S/, `${id} says why it was interrupted`);
        assert.equal(r.completedAt, '2026-01-02T00:00:00.000Z');
      }
      const done = t.get('run_done')!;
      assert.equal(done.status, 'completed');
      assert.equal(done.errorCode, null);
      assert.equal(done.completedAt, '2026-01-01T00:00:10.000Z');
      assert.equal(t.markInterrupted('2026-01-03T00:00:00.000Z'), 0, 'nothing left running');
      assert.deepEqual(t.list(20, 'running'), []);
    } finally {
      t.close();
    }
  });

  test('the instance id persists across reopening the same file and differs for another file', () => {
    const path = freshPath();
    const a = new RunStore(path);
    const id = a.instanceId;
    a.close();
    assert.match(id, /\S{8,}/);
    const b = new RunStore(path);
    assert.equal(b.instanceId, id);
    b.close();
    const other = new RunStore(freshPath());
    assert.notEqual(other.instanceId, id);
    other.close();
  });
});

describe('edge cases', () => {
  test('extractJson accepts a fence on one line', () => {
    const r = extractJson('here: ```json {"a":1}```');
    assert.ok(r.ok, `a one-line fence is read; ${JSON.stringify(r)}`);
    assert.deepEqual(r.ok && r.value, { a: 1 });
  });

  test('truncateMiddle never splits a surrogate pair', () => {
    const text = 'a'.repeat(14_999) + '😀'.repeat(20_000);
    const out = truncateMiddle(text);
    assert.ok(!out.includes('\uFFFD'), `no replacement character in the truncated text (at ${out.indexOf('\uFFFD')})`);
    assert.ok(!/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(out), 'no lone surrogate');
    const omitted = Number(/\[\.\.\. (\d+) characters omitted \.\.\.\]/.exec(out)![1]);
    const marker = `\n[... ${omitted} characters omitted ...]\n`;
    assert.equal(out.length - marker.length + omitted, text.length, 'kept + omitted = original');
  });
});
