// Hostile clients against a real server process: malformed HTTP, huge and slow bodies, slow headers, too
// many connections, browser-borne requests to an open API, clients that never read their stream. After
// every attack the process is still there and still answering.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHealthProbe } from '../bench/fuzz-http.ts';
import { ConfigError, loadConfig } from '../lib/config.ts';
import { EventLogs } from '../lib/event-log.ts';
import { EventStream, MAX_BUFFERED_BYTES, SlowReaderError } from '../lib/sse.ts';
import { RunStore } from '../lib/store.ts';
import { startFakeAnthropic, type FakeModelServer } from './fixtures/fake-models.ts';
import { spawnServer, type ChildServer } from './helpers/child.ts';
import { exchange, memoryMb, pushBody, type RawResponse } from './helpers/raw-http.ts';
import { readEvents } from './helpers/sse.ts';
import { logLines, startTestServer, waitFor } from './helpers/server.ts';

const KEY = 'hostile-test-api-key-0123456789';
const dir = mkdtempSync(join(tmpdir(), 'sandcaster-hostile-'));
let anthropic: FakeModelServer;
/** No API key: the browser guard is on. Short header and body timeouts, a webhook secret, a fake model. */
let open: ChildServer;
let keyed: ChildServer;
let port: number;

before(async () => {
  anthropic = await startFakeAnthropic();
  open = await spawnServer({
    SANDCASTER_DB: join(dir, 'open.db'),
    SANDCASTER_E2B_WEBHOOK_SECRET: 'whsec-hostile-0123456789',
    SANDCASTER_HEADERS_TIMEOUT_SECONDS: '2',
    SANDCASTER_BODY_TIMEOUT_SECONDS: '2',
    SANDCASTER_ALLOWED_HOSTS: 'sandcaster.internal, api.example:8443',
    SANDCASTER_CORS_ORIGINS: 'https://app.example',
    SANDCASTER_SANDBOX_PROVIDER: 'docker',
    ANTHROPIC_API_KEY: 'sk-ant-hostile-test-key',
    ANTHROPIC_BASE_URL: anthropic.url,
    NODE_OPTIONS: `--import=${join(import.meta.dirname, 'fixtures', 'loop-monitor.mjs')}`,
  });
  port = Number(new URL(open.url).port);
  keyed = await spawnServer({ SANDCASTER_DB: join(dir, 'keyed.db'), SANDCASTER_API_KEY: KEY });
});
after(async () => {
  for (const child of [open, keyed]) {
    child?.proc.kill('SIGTERM');
    await child?.exited;
  }
  await anthropic?.close();
  rmSync(dir, { recursive: true, force: true });
});

const HOST = () => `Host: 127.0.0.1:${port}`;
const get = (path: string, headers: string[] = [HOST()]) => `GET ${path} HTTP/1.1\r\n${[...headers, 'Connection: close'].join('\r\n')}\r\n\r\n`;

/** The one error shape, a final newline, the instance header. */
function assertError(res: RawResponse, status: number, code: string, what: string): { code: string; message: string; hint?: string } {
  assert.equal(res.status, status, `${what}: status ${res.status}, body ${res.body}`);
  assert.ok(res.body.endsWith('}\n'), `${what}: the JSON body ends with a newline: ${JSON.stringify(res.body)}`);
  const body = JSON.parse(res.body);
  assert.equal(body.error?.code, code, `${what}: ${res.body}`);
  assert.equal(typeof body.error.message, 'string', `${what}: message`);
  assert.equal(res.headers['x-sandcaster-instance'], open.instanceId, `${what}: X-Sandcaster-Instance`);
  return body.error;
}

/** The process is alive, answers /health, and logged no error and no uncaught exception. */
async function assertStillServing(child: ChildServer) {
  assert.equal(child.proc.exitCode, null, `the server exited: ${child.stderr}`);
  const res = await child.fetch('/health');
  assert.equal(res.status, 200, 'the server still answers /health');
  await res.body?.cancel();
  const errors = child.logs.filter((l) => l.level === 'error');
  assert.deepEqual(errors, [], 'no error was logged');
  assert.doesNotMatch(child.stderr, /Uncaught|TypeError|URIError/, 'nothing was thrown');
}

describe('malformed HTTP is a 400 with the error shape, never a crash or a 500', () => {
  const cases: [string, () => string, number, string][] = [
    ['a Host with a space', () => get('/runs', ['Host: a b']), 400, 'MALFORMED_REQUEST'],
    ['an empty Host', () => get('/runs', ['Host: ']), 400, 'MALFORMED_REQUEST'],
    ['an unclosed IPv6 Host', () => get('/runs', ['Host: [::1']), 400, 'MALFORMED_REQUEST'],
    ['a Host port past 65535', () => get('/runs', ['Host: 127.0.0.1:99999']), 400, 'MALFORMED_REQUEST'],
    ['two Host headers', () => get('/runs', [HOST(), 'Host: other.example']), 400, 'MALFORMED_REQUEST'],
    ['no Host in HTTP/1.1', () => get('/runs', []), 400, 'MALFORMED_REQUEST'],
    ['the absolute-form target', () => get('http://evil.example/runs'), 400, 'MALFORMED_REQUEST'],
    ['the asterisk-form target', () => `OPTIONS * HTTP/1.1\r\n${HOST()}\r\nConnection: close\r\n\r\n`, 400, 'MALFORMED_REQUEST'],
    ['a fragment in the target', () => get('/runs#x'), 400, 'MALFORMED_REQUEST'],
    ['a truncated escape in the path (/runs/%E0%A4%A)', () => get('/runs/%E0%A4%A'), 400, 'MALFORMED_REQUEST'],
    ['a lone % in the path', () => get('/runs/%'), 400, 'MALFORMED_REQUEST'],
    ['a non-hex escape in the query', () => get('/runs?limit=%zz'), 400, 'MALFORMED_REQUEST'],
    ['overlong UTF-8 in the query', () => get('/runs?status=%C0%AF'), 400, 'MALFORMED_REQUEST'],
    ['a lone surrogate in the path', () => get('/runs/%ED%A0%80'), 400, 'MALFORMED_REQUEST'],
    ['too many query parameters', () => get('/runs?' + 'a=1&'.repeat(3000)), 400, 'MALFORMED_REQUEST'],
    ['a garbage request line', () => 'HELLO THERE\r\n\r\n', 400, 'MALFORMED_REQUEST'],
    ['an unknown method', () => get('/runs').replace('GET', 'FROB'), 400, 'MALFORMED_REQUEST'],
    ['HTTP/2.0 in the request line', () => get('/runs').replace('HTTP/1.1', 'HTTP/2.0'), 400, 'MALFORMED_REQUEST'],
    ['a header name with a space', () => get('/runs', [HOST(), 'Bad Header: 1']), 400, 'MALFORMED_REQUEST'],
    ['a control character in a header value', () => get('/runs', [HOST(), 'X-Ctl: a\x01b']), 400, 'MALFORMED_REQUEST'],
    ['Content-Length and Transfer-Encoding together', () => `POST /query HTTP/1.1\r\n${HOST()}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400, 'MALFORMED_REQUEST'],
    ['a bad chunk size', () => `POST /query HTTP/1.1\r\n${HOST()}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n`, 400, 'MALFORMED_REQUEST'],
    ['headers over 16 KiB', () => get('/runs', [HOST(), 'X-Big: ' + 'v'.repeat(20_000)]), 431, 'HEADERS_TOO_LARGE'],
    ['TRACE', () => get('/runs').replace('GET', 'TRACE'), 501, 'NOT_IMPLEMENTED'],
  ];
  for (const [name, request, status, code] of cases) {
    test(`${name}: ${status} ${code}, connection closed`, async () => {
      const res = await exchange(port, request());
      assertError(res, status, code, name);
      assert.ok(res.closedByServer, `${name}: the server closes the connection after a malformed request`);
    });
  }

  test('the process is still there, answering, with nothing thrown or logged as an error', async () => {
    await assertStillServing(open);
    const bad = open.logs.filter((l) => l.msg === 'request' && l.status === 400);
    assert.ok(bad.length >= cases.length - 3, `each refused request has its log line (${bad.length})`);
  });

  test('path parameters are decoded exactly once', async () => {
    const res = await exchange(port, get('/runs/%2525'));
    const err = assertError(res, 404, 'NOT_FOUND', 'run %25');
    assert.match(err.message, /"%25"/, 'the id is %25, not % (decoded once)');
  });
});

describe('routing: one table, with its hooks', () => {
  test('HEAD works where GET does, headers only', async () => {
    for (const path of ['/health', '/runs']) {
      const res = await exchange(port, get(path).replace('GET', 'HEAD'));
      assert.equal(res.status, 200, `HEAD ${path}`);
      assert.equal(res.body, '', `HEAD ${path} has no body`);
      assert.equal(res.headers['x-sandcaster-instance'], open.instanceId, 'instance header');
    }
    const missing = await exchange(port, get('/runs/run_nope').replace('GET', 'HEAD'));
    assert.equal(missing.status, 404, 'HEAD of an unknown run');
    assert.equal(missing.body, '', 'HEAD of an unknown run has no body');
  });

  test('405 lists the methods of the path in Allow; 404 for unknown paths', async () => {
    const res = await exchange(port, `DELETE /runs HTTP/1.1\r\n${HOST()}\r\nConnection: close\r\n\r\n`);
    assertError(res, 405, 'METHOD_NOT_ALLOWED', 'DELETE /runs');
    assert.equal(res.headers.allow, 'GET, HEAD');
    const post = await exchange(port, get('/query'));
    assertError(post, 405, 'METHOD_NOT_ALLOWED', 'GET /query');
    assert.equal(post.headers.allow, 'POST');
    assertError(await exchange(port, get('/nope')), 404, 'NOT_FOUND', 'GET /nope');
  });

  test('every response carries X-Sandcaster-Instance, including /health, SSE and the parser\'s own errors', async () => {
    const health = await open.fetch('/health');
    assert.equal(health.headers.get('x-sandcaster-instance'), open.instanceId);
    await health.body?.cancel();
    const parserError = await exchange(port, 'NOT HTTP\r\n\r\n');
    assert.equal(parserError.headers['x-sandcaster-instance'], open.instanceId, 'clientError answer');
  });

  test('a handler that throws is a logged 500 INTERNAL with the error shape; the server carries on', async () => {
    const s = await startTestServer();
    try {
      s.app.store.close(); // every query on the run store now throws
      const res = await s.fetch('/runs');
      assert.equal(res.status, 500);
      const text = await res.text();
      assert.ok(text.endsWith('}\n'), 'final newline');
      assert.equal(JSON.parse(text).error.code, 'INTERNAL');
      assert.equal(res.headers.get('x-sandcaster-instance'), s.app.store.instanceId);
      const line = logLines.find((l) => l.msg === 'request failed' && l.path === '/runs');
      assert.ok(line && typeof line.stack === 'string' && line.stack.includes('\n'), `the error is logged with its stack: ${JSON.stringify(line)}`);
      assert.ok(logLines.some((l) => l.msg === 'request' && l.path === '/runs' && l.status === 500), 'and the request has its log line');
      assert.equal((await s.fetch('/health')).status, 200, 'still serving');
    } finally {
      await s.stop();
    }
  });
});

describe('bodies: a byte cap and a time limit before anything else', () => {
  test('a 200 MB unsigned webhook POST (chunked, no Content-Length) is cut off at 1 MiB; memory stays flat', async (t) => {
    const before = memoryMb(open.proc.pid!);
    const head = `POST /webhooks/e2b HTTP/1.1\r\n${HOST()}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`;
    // A client that never stops writing: the server cuts it off (its answer may then be lost to the reset).
    const hostile = await pushBody(port, head, 200 * 1024 * 1024, true, { stopOnAnswer: false });
    assert.ok(hostile.sent < 48 * 1024 * 1024, `the server stopped taking bytes early (${(hostile.sent / 2 ** 20).toFixed(1)} MiB of 200 accepted)`);
    // A client that stops on the answer, as curl does, reads it.
    const r = await pushBody(port, head, 200 * 1024 * 1024, true);
    const afterMem = memoryMb(open.proc.pid!);
    t.diagnostic(`webhook: a client that never stops had ${(hostile.sent / 2 ** 20).toFixed(1)} MiB of 200 taken; one that stops on the answer got ${r.response?.status} after ${r.ms.toFixed(0)} ms; RSS ${before.rss.toFixed(0)} MiB before, peak ${afterMem.peak.toFixed(0)} MiB`);
    assert.ok(r.sent < 48 * 1024 * 1024, `the server stopped taking bytes early (${(r.sent / 2 ** 20).toFixed(1)} MiB of 200 accepted)`);
    assert.equal(r.response?.status, 413, `answered 413: ${JSON.stringify(r.response)}`);
    assert.equal(JSON.parse(r.response!.body).error.code, 'PAYLOAD_TOO_LARGE');
    assert.ok(afterMem.peak - before.rss < 100, `peak RSS grew ${(afterMem.peak - before.rss).toFixed(0)} MiB (from ${before.rss.toFixed(0)} to a peak of ${afterMem.peak.toFixed(0)})`);
    await assertStillServing(open);
  });

  test('200 MB to /query: cut off at 16 MiB (chunked) or at once (declared length); memory stays flat', async (t) => {
    const before = memoryMb(open.proc.pid!);
    const head = (framing: string) => `POST /query HTTP/1.1\r\n${HOST()}\r\nContent-Type: application/json\r\n${framing}\r\n\r\n`;
    const chunked = await pushBody(port, head('Transfer-Encoding: chunked'), 200 * 1024 * 1024, true);
    assert.ok(chunked.sent < 64 * 1024 * 1024, `chunked: ${(chunked.sent / 2 ** 20).toFixed(1)} MiB accepted`);
    assert.equal(chunked.response?.status, 413, `chunked: ${JSON.stringify(chunked.response)}`);
    const declared = await pushBody(port, head(`Content-Length: ${200 * 1024 * 1024}`), 200 * 1024 * 1024, false);
    assert.ok(declared.sent < 48 * 1024 * 1024, `declared: ${(declared.sent / 2 ** 20).toFixed(1)} MiB accepted`);
    assert.equal(declared.response?.status, 413, `declared: ${JSON.stringify(declared.response)}`);
    const afterMem = memoryMb(open.proc.pid!);
    t.diagnostic(`query: chunked ${(chunked.sent / 2 ** 20).toFixed(1)} MiB taken, declared ${(declared.sent / 2 ** 20).toFixed(1)} MiB taken; RSS ${before.rss.toFixed(0)} MiB before, peak ${afterMem.peak.toFixed(0)} MiB`);
    assert.ok(afterMem.peak - before.rss < 100, `peak RSS grew ${(afterMem.peak - before.rss).toFixed(0)} MiB`);
  });

  for (const path of ['/query', '/webhooks/e2b']) {
    test(`a body trickling into ${path} is cut off with 408 REQUEST_TIMEOUT`, async () => {
      const head = `POST ${path} HTTP/1.1\r\n${HOST()}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"prompt":`;
      const res = await exchange(port, head, { more: Array(60).fill('"xxx'), everyMs: 200, waitMs: 10_000 });
      const err = assertError(res, 408, 'REQUEST_TIMEOUT', path);
      assert.match(err.hint ?? '', /SANDCASTER_BODY_TIMEOUT_SECONDS/);
      assert.ok(res.closedByServer && res.ms < 6000, `closed after ${res.ms.toFixed(0)} ms (limit 2 s)`);
    });
  }

  test('a slow body to a route that never reads it is answered and cut off', async () => {
    for (const length of [1000, 10_000_000]) {
      const head = `POST /nope HTTP/1.1\r\n${HOST()}\r\nContent-Length: ${length}\r\n\r\nabc`;
      const res = await exchange(port, head, { more: Array(60).fill('xyz'), everyMs: 200, waitMs: 10_000 });
      assertError(res, 404, 'NOT_FOUND', `length ${length}`);
      assert.ok(res.closedByServer && res.ms < 5000, `length ${length}: closed after ${res.ms.toFixed(0)} ms`);
    }
  });

  test('headers trickling in (slow loris) are cut off with 408', async () => {
    const res = await exchange(port, 'GET /health HTTP/1.1\r\n', { more: Array.from({ length: 60 }, (_, i) => `X-${i}: y\r\n`), everyMs: 200, waitMs: 10_000 });
    assertError(res, 408, 'REQUEST_TIMEOUT', 'slow headers');
    assert.ok(res.closedByServer && res.ms < 6000, `closed after ${res.ms.toFixed(0)} ms (limit 2 s)`);
    const silent = await exchange(port, '', { waitMs: 10_000 });
    assert.ok(silent.closedByServer && silent.ms < 6000, `a connection that sends nothing is closed after ${silent.ms.toFixed(0)} ms`);
  });
});

describe('an open API refuses browser-borne requests (403 FORBIDDEN_ORIGIN)', () => {
  test('a cross-origin form POST (no preflight) starts no run', async () => {
    const body = '{"prompt":"rm -rf everything"}';
    const res = await exchange(
      port,
      `POST /query HTTP/1.1\r\n${HOST()}\r\nOrigin: https://evil.example\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );
    const err = assertError(res, 403, 'FORBIDDEN_ORIGIN', 'form POST');
    assert.match(err.hint ?? '', /SANDCASTER_CORS_ORIGINS/);
    assert.equal(open.logs.filter((l) => l.msg === 'run started').length, 0, 'no run started');
  });

  test('a foreign Host (DNS rebinding) is refused on every path but /health, before 404', async () => {
    for (const path of ['/runs', '/runs/run_x', '/nope']) {
      const err = assertError(await exchange(port, get(path, ['Host: rebind.evil.example'])), 403, 'FORBIDDEN_ORIGIN', `foreign Host on ${path}`);
      assert.match(err.hint ?? '', /SANDCASTER_ALLOWED_HOSTS/);
      assert.match(err.hint ?? '', /rebind\.evil\.example/);
    }
    assertError(await exchange(port, get('/runs', ['Host: api.example'])), 403, 'FORBIDDEN_ORIGIN', 'an allowed name on another port');
    const health = await exchange(port, get('/health', ['Host: rebind.evil.example', 'Origin: https://evil.example']));
    assert.equal(health.status, 200, '/health is exempt');
  });

  test('IP literals, localhost and the allowed names work', async () => {
    const hosts = [`127.0.0.1:${port}`, '127.0.0.1', 'localhost', `localhost:${port}`, `[::1]:${port}`, '10.1.2.3', 'sandcaster.internal', 'SANDCASTER.INTERNAL:1234', 'api.example:8443'];
    for (const host of hosts) {
      const res = await exchange(port, get('/runs', [`Host: ${host}`]));
      assert.equal(res.status, 200, `Host: ${host} -> ${res.status} ${res.body}`);
      assert.equal(res.body, '[]\n');
    }
  });

  test('an origin in SANDCASTER_CORS_ORIGINS passes and gets CORS headers', async () => {
    const res = await exchange(port, get('/runs', [HOST(), 'Origin: https://app.example']));
    assert.equal(res.status, 200);
    assert.equal(res.headers['access-control-allow-origin'], 'https://app.example');
    const pre = await exchange(port, `OPTIONS /query HTTP/1.1\r\n${HOST()}\r\nOrigin: https://app.example\r\nAccess-Control-Request-Method: POST\r\nConnection: close\r\n\r\n`);
    assert.equal(pre.status, 204);
  });

  test('with a key set the guard does not apply: 401 without the key, 200 with it', async () => {
    const kport = Number(new URL(keyed.url).port);
    const foreign = ['Host: rebind.evil.example', 'Origin: https://evil.example'];
    const res = await exchange(kport, get('/runs', foreign));
    assert.equal(res.status, 401, `no key: ${res.body}`);
    assert.equal(JSON.parse(res.body).error.code, 'UNAUTHORIZED');
    const ok = await exchange(kport, get('/runs', [...foreign, `Authorization: Bearer ${KEY}`]));
    assert.equal(ok.status, 200, `with the key: ${ok.body}`);
    const bad = await exchange(kport, get('/runs/%E0', [...foreign]));
    assert.equal(bad.status, 400, 'malformed comes first, even before 401');
  });
});

describe('connections are bounded', () => {
  let capped: ChildServer;
  let cport: number;
  before(async () => {
    capped = await spawnServer({ SANDCASTER_DB: join(dir, 'capped.db'), SANDCASTER_MAX_CONNECTIONS: '8', SANDCASTER_HEADERS_TIMEOUT_SECONDS: '60' });
    cport = Number(new URL(capped.url).port);
  });
  after(async () => {
    capped?.proc.kill('SIGTERM');
    await capped?.exited;
  });

  type Conn = net.Socket & { closed$: Promise<string>; got(): string };
  const connect = () =>
    new Promise<Conn>((resolve) => {
      const s = net.connect(cport, '127.0.0.1') as Conn;
      let got = '';
      s.got = () => got;
      s.on('data', (d) => (got += d));
      s.on('error', () => {});
      s.closed$ = new Promise((r) => s.on('close', () => r(got)));
      s.on('connect', () => resolve(s));
    });

  test('past SANDCASTER_MAX_CONNECTIONS a new connection is closed unanswered; freed slots serve again', async () => {
    const held = await Promise.all(Array.from({ length: 8 }, connect)); // silent: mid-request for the server
    const extra = await connect();
    extra.write(`GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    const got = await Promise.race([extra.closed$, new Promise<string>((r) => setTimeout(() => r('still open'), 3000))]);
    assert.equal(got, '', `the 9th connection is closed without an answer (got ${JSON.stringify(got.slice(0, 80))})`);
    assert.ok(
      await waitFor(() => capped.logs.some((l) => l.level === 'warn' && /connection limit/.test(l.msg) && /SANDCASTER_MAX_CONNECTIONS/.test(l.hint))),
      'the refusal is logged as a warning naming the setting',
    );
    for (const s of held) s.destroy();
    // Raw requests with Connection: close, so no pooled keep-alive socket of ours holds a slot afterwards.
    assert.ok(await waitFor(async () => (await exchange(cport, get('/health', ['Host: 127.0.0.1']))).status === 200, 5000), 'the freed slots serve again');
  });

  test('idle keep-alive sockets give their slots back when the cap is reached', async () => {
    const idle = await Promise.all(Array.from({ length: 8 }, connect));
    for (const s of idle) s.write(`GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`); // keep-alive: stays open after the answer
    assert.ok(await waitFor(() => idle.every((s) => s.got().includes('"status":"ok"')), 5000), 'all eight answered');
    const first = await connect(); // over the cap: dropped, and the idle ones are closed
    await first.closed$;
    const closed = await Promise.all(idle.map((s) => Promise.race([s.closed$.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 3000))])));
    assert.ok(closed.every(Boolean), `every idle keep-alive socket was closed by the server (${closed.filter(Boolean).length}/8)`);
    const res = await exchange(cport, get('/health', ['Host: 127.0.0.1']));
    assert.equal(res.status, 200, 'a new client is served');
  });
});

/** Event-loop stalls the server reported (tests/fixtures/loop-monitor.mjs), since `since` (ms epoch). */
function loopStalls(child: ChildServer, since: number): { at: number; wallMs: number; cpuMs: number }[] {
  return child.stderr
    .split('\n')
    .filter((l) => l.startsWith('{"loopStall"'))
    .map((l) => JSON.parse(l).loopStall)
    .filter((x) => x.at >= since);
}

describe('/health under attack', () => {
  // The attack runs throughout; /health is probed from a worker thread in windows of 3 s, until one window has
  // 90% of its probes under 100 ms and none over 1 s. On shared cores the server can be kept waiting for a CPU
  // whatever it does, so the server reports its own event-loop stalls with the CPU time it used meanwhile:
  // a stall that is its own work (>= 100 ms of CPU) always fails the test; when no window meets the latency
  // bound, the test passes only if stalls show the server was waiting for the machine, not working.
  test('answers in < 100 ms during slow-loris headers and bodies, huge bodies and malformed requests', async (t) => {
    const since = Date.now();
    const stop = { now: false };
    const sockets: net.Socket[] = [];
    // Trickles a byte every 300 ms; when the server cuts it off, comes back.
    const slow = (payload: string) => {
      if (stop.now) return;
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      sockets.push(s);
      s.on('connect', () => s.write(payload));
      const t = setInterval(() => (s.destroyed || stop.now ? clearInterval(t) : s.write('x')), 300);
      s.on('close', () => {
        clearInterval(t);
        slow(payload);
      });
    };
    for (let i = 0; i < 40; i++) slow('GET /health HTTP/1.1\r\nX-Slow: ');
    for (let i = 0; i < 20; i++) slow(`POST /query HTTP/1.1\r\n${HOST()}\r\nContent-Length: 100000\r\n\r\n{"prompt":"`);
    // Huge bodies one at a time with pauses: pumping at full speed would mostly measure this process's own CPU.
    const pause = () => new Promise((r) => setTimeout(r, 300));
    const loops = [
      (async () => {
        for (let i = 0; !stop.now; i++) {
          const path = i % 2 ? '/query' : '/webhooks/e2b';
          await pushBody(port, `POST ${path} HTTP/1.1\r\n${HOST()}\r\nTransfer-Encoding: chunked\r\n\r\n`, 64 * 1024 * 1024, true).then(pause);
        }
      })(),
      ...[0, 1].map(async () => {
        const bad = ['GARBAGE\r\n\r\n', get('/runs/%E0%A4%A'), get('/runs', ['Host: a b']), get('/runs?' + 'a=1&'.repeat(90))];
        for (let i = 0; !stop.now; i++) await exchange(port, bad[i % bad.length]!, { waitMs: 2000 });
      }),
    ];
    const windows: string[] = [];
    let met = false;
    try {
      for (let w = 0; w < 3 && !met; w++) {
        const probe = startHealthProbe(port, 50);
        await new Promise((r) => setTimeout(r, 3000)); // the probe window: what is measured, not a wait for an event
        const health = await probe.stop();
        const fast = health.latencies.filter((ms) => ms < 100).length;
        windows.push(`${health.checks} probes, ${health.failures} failed, ${fast} under 100 ms, max ${health.maxMs.toFixed(1)} ms`);
        assert.equal(health.failures, 0, `every probe is answered: ${windows.join('; ')}`);
        met = health.checks >= 10 && fast >= 0.9 * health.latencies.length && health.maxMs < 1000;
      }
    } finally {
      stop.now = true;
      for (const s of sockets) s.destroy();
      await Promise.all(loops);
    }
    const stalls = loopStalls(open, since);
    const busy = stalls.filter((x) => x.wallMs >= 100 && x.cpuMs >= 100);
    const starved = stalls.filter((x) => x.wallMs >= 100 && x.cpuMs < 100);
    const stallText = `${stalls.length} stalls over 50 ms, ${starved.length} over 100 ms waiting for a CPU, longest ${Math.max(0, ...stalls.map((x) => x.wallMs))} ms`;
    t.diagnostic(`/health windows: ${windows.join('; ')}; server event loop: ${stallText}`);
    assert.deepEqual(busy, [], `the server's own work never held its event loop for 100 ms (${stallText})`);
    assert.ok(met || starved.length > 0, `no window met the bound and the server was not short of CPU: ${windows.join('; ')}; ${stallText}`);
    if (!met) t.diagnostic('latency bound not met: the machine kept the server waiting for a CPU (see the stalls); its own work never blocked');
    await assertStillServing(open);
  });
});

describe('SSE streams', () => {
  test('EventStream: past 4 MiB unread, the reader is dropped (SlowReaderError) and told once; the run goes on', async () => {
    const logs = new EventLogs(new RunStore(':memory:'), ':memory:', { storeEvents: false });
    const log = logs.open('run_x', () => {});
    const gone: string[] = [];
    const es = new EventStream(logs.subscribe('run_x', 0), (why) => gone.push(why), 60_000);
    const reader = es.body.getReader(); // holds the stream, never reads
    const chunk = 'z'.repeat(64 * 1024);
    let sent = 0;
    while (!es.isClosed) {
      log.append({ type: 'assistant', subtype: 'delta', content: chunk });
      sent++;
      await new Promise((r) => setImmediate(r)); // let each tick's batch go out
      assert.ok(sent < 200, `still queueing after ${sent} events of 64 KiB`);
    }
    assert.ok(sent * chunk.length >= MAX_BUFFERED_BYTES, `${sent} events queued before the drop`);
    assert.deepEqual(gone, ['slow'], 'the reader is told once, as for a disconnect');
    await assert.rejects(reader.read(), (e: unknown) => e instanceof SlowReaderError && e.bufferedBytes > MAX_BUFFERED_BYTES);
    assert.equal(log.append({ type: 'assistant', subtype: 'delta', content: 'more' }), true, 'the run goes on');
    await log.end({ type: 'result', content: 'x' }, { kind: 'sandbox', id: 'run_x', sandboxId: 'none', sandboxCount: 0 });
    assert.deepEqual(gone, ['slow']);
  });

  test('a stream outlives the header and body timeouts (2 s each here)', async () => {
    anthropic.setScript([{ text: 'a late answer', delayMs: 5000 }]);
    const res = await fetch(open.url + '/query', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'wait', model: 'haiku' }) });
    const events = await readEvents(res);
    assert.equal(events.at(-1)?.type, 'result', `the run finished: ${JSON.stringify(events.at(-1))}`);
  });

  test('a client that never reads its stream is dropped like a disconnect; memory stays bounded', async (t) => {
    // Every turn: 2 MiB of text and four commands printing ~30 KB each (the tool result cap). Few large
    // turns: the agent resends its history every turn, and that garbage is not what is measured here.
    const text = 'y'.repeat(256 * 1024);
    const command = "head -c 40000 /dev/zero | tr '\\0' z";
    anthropic.setScript(() => ({ text: Array(8).fill(text), toolCalls: [0, 1, 2, 3].map(() => ({ name: 'bash', input: { command } })) }));
    const before = memoryMb(open.proc.pid!);
    const body = JSON.stringify({ prompt: 'flood', model: 'haiku', maxTurns: 200, timeout: 300 });
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.pause(); // never read: the kernel buffers fill, then the server's queue does
    socket.write(`POST /query HTTP/1.1\r\n${HOST()}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    let runId = '';
    assert.ok(
      await waitFor(async () => {
        const runs = await (await open.fetch('/runs')).json();
        runId = runs[0]?.id ?? '';
        return runs[0]?.status === 'cancelled';
      }, 90_000, 500),
      `the run was cancelled (last seen ${runId || 'none'})`,
    );
    const warn = open.logs.find((l) => l.level === 'warn' && l.runId === runId && /stopped reading/.test(l.msg));
    assert.ok(warn, `a warning names the run: ${JSON.stringify(open.logs.filter((l) => l.level === 'warn').slice(-3))}`);
    assert.ok(warn.bufferedBytes > 4 * 1024 * 1024 && warn.bufferedBytes < 8 * 1024 * 1024, `dropped just past 4 MiB queued (${warn.bufferedBytes})`);
    const turns = anthropic.requests.length;
    const mem = memoryMb(open.proc.pid!);
    t.diagnostic(`slow reader: dropped with ${warn.bufferedBytes} bytes queued after ${turns} model turns; RSS ${before.rss.toFixed(0)} MiB before, peak ${mem.peak.toFixed(0)} MiB`);
    assert.ok(mem.peak - before.rss < 100, `peak RSS grew ${(mem.peak - before.rss).toFixed(0)} MiB over ${turns} model turns`);
    // Reading now drains what the kernel held, then finds the connection closed by the server.
    const closed = new Promise<boolean>((r) => socket.once('close', () => r(true)));
    socket.resume();
    assert.ok(await Promise.race([closed, new Promise<boolean>((r) => setTimeout(() => r(false), 10_000))]), 'the server closed the connection');
    await assertStillServing(open);
  });
});

describe('settings', () => {
  const load = (env: Record<string, string>) => loadConfig({}, { SANDCASTER_CONFIG: '', ...env });
  test('defaults: 1024 connections, 15 s for headers, 60 s for a body, no extra hosts', () => {
    const c = load({});
    assert.equal(c.maxConnections, 1024);
    assert.equal(c.headersTimeoutSeconds, 15);
    assert.equal(c.bodyTimeoutSeconds, 60);
    assert.deepEqual(c.allowedHosts, []);
  });
  test('SANDCASTER_ALLOWED_HOSTS: host names, lowercased; anything else names the variable', () => {
    assert.deepEqual(load({ SANDCASTER_ALLOWED_HOSTS: ' API.Example.com, box:8000,, sandcaster_1 ' }).allowedHosts, ['api.example.com', 'box:8000', 'sandcaster_1']);
    for (const bad of ['https://a.example', 'a.example/path', '*.example.com', 'a b']) {
      assert.throws(() => load({ SANDCASTER_ALLOWED_HOSTS: bad }), (e: unknown) => e instanceof ConfigError && /SANDCASTER_ALLOWED_HOSTS/.test(e.message), bad);
    }
  });
  test('sandcaster.json: allowedHosts, maxConnections, headersTimeoutSeconds, bodyTimeoutSeconds; the environment wins', () => {
    const file = join(dir, 'sandcaster.json');
    writeFileSync(file, JSON.stringify({ allowedHosts: ['Box.Internal'], maxConnections: 50, headersTimeoutSeconds: 5, bodyTimeoutSeconds: 7 }));
    const c = load({ SANDCASTER_CONFIG: file });
    assert.deepEqual([c.allowedHosts, c.maxConnections, c.headersTimeoutSeconds, c.bodyTimeoutSeconds], [['box.internal'], 50, 5, 7]);
    const e = load({ SANDCASTER_CONFIG: file, SANDCASTER_ALLOWED_HOSTS: 'other.internal', SANDCASTER_MAX_CONNECTIONS: '60' });
    assert.deepEqual([e.allowedHosts, e.maxConnections], [['other.internal'], 60]);
    writeFileSync(file, JSON.stringify({ allowedHosts: ['http://x'] }));
    assert.throws(() => load({ SANDCASTER_CONFIG: file }), (err: unknown) => err instanceof ConfigError && /allowedHosts/.test(err.message));
  });

  test('bad numbers stop the start with the variable named', () => {
    for (const [name, value] of [['SANDCASTER_MAX_CONNECTIONS', '0'], ['SANDCASTER_HEADERS_TIMEOUT_SECONDS', 'x'], ['SANDCASTER_BODY_TIMEOUT_SECONDS', '-1']]) {
      assert.throws(() => load({ [name!]: value! }), (e: unknown) => e instanceof ConfigError && e.message.includes(name!), name);
    }
  });
});
