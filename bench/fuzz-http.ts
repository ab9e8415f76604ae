// Bounded HTTP fuzzing of a real Sandcaster server over raw sockets: malformed request lines, targets,
// percent-encodings, headers and bodies, slow headers and bodies, huge bodies, half-closed sockets and
// pipelines, from a seeded generator, for a fixed time and request count. Meanwhile /health is probed on
// fresh connections. Prints what it sent, the statuses it got, the worst /health latency, and whether the
// server survived; exits 1 if the server died, /health ever failed, or any answer was a 5xx.
// Loopback only. Not part of `npm run bench`; tests/fuzz-http.test.ts runs a short version in `npm test`.
//
// Run: node --import tsx bench/fuzz-http.ts [--seconds 20] [--requests 20000] [--concurrency 16] [--seed N]
//        [--kinds huge-body,header,...] [--url http://127.0.0.1:PORT]   (default: spawn server.ts --port 0)
import net from 'node:net';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';

export const KINDS = ['request-line', 'target', 'encoding', 'header', 'body', 'slow-headers', 'slow-body', 'huge-body', 'half-close', 'pipeline'] as const;
export type Kind = (typeof KINDS)[number];

export interface FuzzOptions {
  /** Base URL of the server; must be loopback. */
  url: string;
  seconds: number;
  /** Stop after this many requests (connections opened by the fuzzer), whichever comes first. */
  requests: number;
  concurrency: number;
  seed: number;
  /** How long a slow or huge case may last, ms (keep it above the server's header/body timeouts to see them fire). */
  caseMs?: number;
  /** Bytes a huge-body case may push at most. */
  hugeBytes?: number;
  /** Only these kinds (default: all). */
  kinds?: readonly Kind[];
}

export interface FuzzReport {
  sent: Record<Kind, number>;
  /** Status code (or "none": connection closed without an answer) -> count. */
  statuses: Record<string, number>;
  /** Statuses per kind, for reading the report. */
  byKind: Record<Kind, Record<string, number>>;
  healthChecks: number;
  healthFailures: number;
  maxHealthMs: number;
  /** Largest number of bytes one huge-body case got the server to take before it stopped reading. */
  maxHugeBytesSent: number;
  /** Answers that were a 5xx other than 501 (TRACE and the like) and 503 (NOT_CONFIGURED, DRAINING). */
  serverErrors: number;
  elapsedMs: number;
}

// ---------- seeded randomness ----------

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const int = (r: Rand, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
const randomBytes = (r: Rand, n: number) => Buffer.from(Array.from({ length: n }, () => int(r, 0, 255)));

// ---------- cases ----------

/** What one case does on its socket. */
interface Case {
  /** Bytes to write at once. */
  head: Buffer;
  /** Then: trickle bytes slowly, push a huge body, or half-close. */
  then?: { trickle: Buffer; everyMs: number } | { huge: 'chunked' | 'length' } | { halfClose: true };
}

const PATHS = ['/health', '/runs', '/runs/run_x', '/query', '/webhooks/e2b', '/nope', '/'];
const METHODS = ['GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE'];

function requestText(method: string, target: string, headers: string[], body = ''): Buffer {
  return Buffer.from(`${method} ${target} HTTP/1.1\r\n${headers.map((h) => h + '\r\n').join('')}\r\n${body}`, 'latin1');
}

function makeCase(kind: Kind, r: Rand, host: string): Case {
  const H = `Host: ${host}`;
  switch (kind) {
    case 'request-line': {
      const line = pick(r, [
        'GET',
        'GET /',
        'GET / HTTP/1.1 extra',
        'GET / HTTP/2.0',
        'GET / HTTP/1.12',
        ' / HTTP/1.1',
        'GET  / HTTP/1.1',
        'get / HTTP/1.1',
        'G\x00T / HTTP/1.1',
        'GET /\x7f HTTP/1.1',
        'GET /\x01 HTTP/1.1',
        'X'.repeat(int(r, 1, 5000)) + ' / HTTP/1.1',
        randomBytes(r, int(r, 1, 200)).toString('latin1'),
        'GET / HTTP/1.1\n', // bare LF
      ]);
      return { head: Buffer.from(`${line}\r\n${H}\r\n\r\n`, 'latin1') };
    }
    case 'target': {
      const target = pick(r, [
        '*',
        'http://evil.example/runs',
        'https://127.0.0.1/runs',
        'evil.example:443',
        '//runs',
        '/runs/../../etc/passwd',
        '/runs#frag',
        '/\\runs',
        '/runs/' + 'a'.repeat(int(r, 100, 12000)),
        '/%2e%2e/%2e%2e/health',
        '/runs/%00',
        '/runs?limit=1&limit=2',
        '/runs?' + 'a=1&'.repeat(int(r, 10, 2000)),
        '/runs/\xe9\xff',
        '/health?\xff',
      ]);
      return { head: requestText(pick(r, METHODS), target, [H, 'Connection: close']) };
    }
    case 'encoding': {
      const frags = ['%', '%Z', '%ZZ', '%E0%A4%A', '%C0%AF', '%FF', '%ED%A0%80', '%F4%90%80%80', '%00', '%25', '%2F', '+', '%u0041', '%%', '%2', 'ok'];
      const piece = () => Array.from({ length: int(r, 1, 6) }, () => pick(r, frags)).join('');
      const target = pick(r, [`/runs/${piece()}`, `/runs?limit=${piece()}`, `/runs?status=${piece()}&x=${piece()}`, `/${piece()}`, `/health?${piece()}`]);
      return { head: requestText('GET', target, [H, 'Connection: close']) };
    }
    case 'header': {
      const variants: string[][] = [
        ['Host: a b'],
        ['Host: '],
        ['Host: [::1'],
        [`Host: 127.0.0.1:99999`],
        ['Host: \xe9vil.example'],
        ['Host: ' + 'h'.repeat(int(r, 200, 3000))],
        [H, 'Host: other.example'],
        [],
        [H, 'X-Bad\x01Name: 1'],
        [H, 'X-Ctl: a\x01b'],
        [H, 'X-Fold: a\r\n b'],
        [H, 'Bad Header: 1'],
        [H, ': empty-name'],
        [H, 'Content-Length: -1'],
        [H, 'Content-Length: abc'],
        [H, 'Content-Length: 5', 'Content-Length: 6'],
        [H, 'Content-Length: 5', 'Transfer-Encoding: chunked'],
        [H, 'Transfer-Encoding: gzip'],
        [H, ...Array.from({ length: int(r, 50, 300) }, (_, i) => `X-Many-${i}: ${i}`)],
        [H, 'X-Huge: ' + 'v'.repeat(int(r, 16 * 1024, 40 * 1024))],
        [H, 'Origin: https://evil.example'],
        [H, 'Origin: null'],
        ['Host: evil.example'],
        ['Host: localhost'],
        [H, 'Authorization: Bearer ' + 'k'.repeat(int(r, 1, 8000))],
      ];
      return { head: requestText(pick(r, METHODS), pick(r, PATHS), [...pick(r, variants), 'Connection: close']) };
    }
    case 'body': {
      const body = pick(r, [
        () => randomBytes(r, int(r, 0, 4000)),
        () => Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1]),
        () => Buffer.from('['.repeat(int(r, 1000, 200_000))),
        () => Buffer.from('{"prompt":'.repeat(int(r, 1, 5000))),
        () => Buffer.from('{"prompt": 1e999, "maxTurns": -0}'),
        () => Buffer.from('{"prompt":"hi","files":' + '[{"path":"a","content":"x"},'.repeat(100) + ']}'),
        () => Buffer.from('{"type":"sandbox.lifecycle.killed","sandboxId":"x"}'),
        () => Buffer.from('{"__proto__":{"polluted":true},"prompt":"x"}'),
        () => Buffer.from('\ufeff{"prompt":"hi"}'),
      ])();
      const path = pick(r, ['/query', '/webhooks/e2b', '/runs', '/nope']);
      const ct = pick(r, ['application/json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', '', 'application/json; charset=utf-16']);
      const framing = r() < 0.7 ? 'length' : r() < 0.5 ? 'chunked' : 'bad-chunked';
      const headers = [H, 'Connection: close', ...(ct ? [`Content-Type: ${ct}`] : [])];
      if (framing === 'length') return { head: Buffer.concat([requestText('POST', path, [...headers, `Content-Length: ${body.length}`]), body]) };
      const chunked = framing === 'chunked'
        ? Buffer.concat([Buffer.from(body.length.toString(16) + '\r\n'), body, Buffer.from('\r\n0\r\n\r\n')])
        : Buffer.from(pick(r, ['zz\r\nabc\r\n0\r\n\r\n', 'ffffffffffffffffff\r\n', '5\r\nabc\r\n', '3;ext=' + 'e'.repeat(5000) + '\r\nabc\r\n0\r\n\r\n', '-1\r\n']), 'latin1');
      return { head: Buffer.concat([requestText('POST', path, [...headers, 'Transfer-Encoding: chunked']), chunked]) };
    }
    case 'slow-headers': {
      const full = requestText('GET', '/health', [H, 'X-Slow: ' + 'z'.repeat(200)]);
      return { head: full.subarray(0, 20), then: { trickle: full.subarray(20, full.length - 4), everyMs: int(r, 100, 400) } };
    }
    case 'slow-body': {
      const path = pick(r, ['/query', '/webhooks/e2b', '/nope', '/runs']);
      const length = int(r, 100, 100_000);
      return { head: requestText('POST', path, [H, 'Content-Type: application/json', `Content-Length: ${length}`], '{"prompt":"'), then: { trickle: Buffer.from('x'.repeat(500)), everyMs: int(r, 100, 400) } };
    }
    case 'huge-body': {
      const path = pick(r, ['/query', '/webhooks/e2b', '/nope']);
      const framing = r() < 0.5 ? 'chunked' : 'length';
      const headers = [H, 'Content-Type: application/json', framing === 'chunked' ? 'Transfer-Encoding: chunked' : `Content-Length: ${200 * 1024 * 1024}`];
      return { head: requestText('POST', path, headers), then: { huge: framing } };
    }
    case 'half-close': {
      const full = requestText(pick(r, ['GET', 'POST']), pick(r, PATHS), [H, 'Content-Length: 10'], '{"prompt":');
      return { head: full.subarray(0, int(r, 0, full.length)), then: { halfClose: true } };
    }
    case 'pipeline': {
      const one = requestText('GET', '/health', [H]);
      const bad = pick(r, [requestText('GET', '/runs/%E0', [H]), Buffer.from('NOPE\r\n\r\n'), requestText('GET', '/runs', ['Host: a b'])]);
      const n = int(r, 5, 60);
      const parts = Array.from({ length: n }, (_, i) => (i === Math.floor(n / 2) ? bad : one));
      return { head: Buffer.concat([...parts, requestText('GET', '/health', [H, 'Connection: close'])]) };
    }
  }
}

// ---------- running one case ----------

const STATUS = /HTTP\/1\.[01] (\d{3}) /g;

/** Runs one case on a fresh socket; resolves with the statuses seen and the bytes a huge body got out. */
function runCase(port: number, c: Case, caseMs: number, hugeBytes: number): Promise<{ statuses: string[]; hugeSent: number }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    let hugeSent = 0;
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(deadline);
      socket.destroy();
      const statuses = [...received.matchAll(STATUS)].map((m) => m[1]!);
      resolve({ statuses: statuses.length ? statuses : ['none'], hugeSent });
    };
    const deadline = setTimeout(finish, caseMs);
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      if (received.length < 1_000_000) received += d;
    });
    socket.on('error', () => {});
    socket.on('close', finish);
    socket.on('connect', () => {
      socket.write(c.head);
      const then = c.then;
      if (!then) return;
      if ('halfClose' in then) return void socket.end();
      if ('trickle' in then) {
        let i = 0;
        const step = () => {
          if (done || socket.destroyed) return;
          if (i >= then.trickle.length) return; // stop sending; wait for the server's verdict or the deadline
          socket.write(then.trickle.subarray(i, i + 3));
          i += 3;
          timer = setTimeout(step, then.everyMs);
        };
        timer = setTimeout(step, then.everyMs);
        return;
      }
      const chunk = Buffer.alloc(64 * 1024, 'x');
      const framed = then.huge === 'chunked' ? Buffer.concat([Buffer.from(chunk.length.toString(16) + '\r\n'), chunk, Buffer.from('\r\n')]) : chunk;
      const pump = () => {
        while (!done && !socket.destroyed && hugeSent < hugeBytes) {
          hugeSent += chunk.length;
          if (!socket.write(framed)) return void socket.once('drain', pump);
        }
      };
      pump();
    });
  });
}

// ---------- /health probe ----------

/**
 * Probes /health every `everyMs` on fresh connections from a worker thread, so the fuzzer's own busy event
 * loop does not count as server latency. `stop()` resolves with the checks, failures and worst latency.
 */
export function startHealthProbe(port: number, everyMs = 100): { stop(): Promise<{ checks: number; failures: number; maxMs: number; latencies: number[] }> } {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const { request } = require('node:http');
    const out = { checks: 0, failures: 0, maxMs: 0, latencies: [] };
    let running = true;
    parentPort.on('message', () => { running = false; });
    const probe = () => new Promise((resolve) => {
      const t0 = performance.now();
      let settled = false;
      const done = (ok) => { if (settled) return; settled = true; resolve(ok ? performance.now() - t0 : null); };
      const req = request({ host: '127.0.0.1', port: workerData.port, path: '/health', agent: false, timeout: 2000 }, (res) => {
        res.resume();
        res.on('end', () => done(res.statusCode === 200));
        res.on('close', () => done(false));
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => done(false));
      req.end();
    });
    (async () => {
      do {
        const ms = await probe();
        out.checks++;
        if (ms === null) out.failures++;
        else { out.maxMs = Math.max(out.maxMs, ms); out.latencies.push(ms); }
        await new Promise((r) => setTimeout(r, workerData.everyMs));
      } while (running);
      parentPort.postMessage(out);
    })();
  `;
  const worker = new Worker(code, { eval: true, workerData: { port, everyMs } });
  const result = new Promise<{ checks: number; failures: number; maxMs: number; latencies: number[] }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  return {
    async stop() {
      worker.postMessage('stop');
      const r = await result;
      await worker.terminate();
      return r;
    },
  };
}

// ---------- the run ----------

export async function fuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const u = new URL(opts.url);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)) throw new Error(`fuzz only targets loopback, not ${u.hostname}`);
  const port = Number(u.port);
  const host = `127.0.0.1:${port}`;
  const caseMs = opts.caseMs ?? 3000;
  const hugeBytes = opts.hugeBytes ?? 64 * 1024 * 1024;
  const r = rng(opts.seed);
  const report: FuzzReport = {
    sent: Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<Kind, number>,
    statuses: {},
    byKind: Object.fromEntries(KINDS.map((k) => [k, {}])) as Record<Kind, Record<string, number>>,
    healthChecks: 0,
    healthFailures: 0,
    maxHealthMs: 0,
    maxHugeBytesSent: 0,
    serverErrors: 0,
    elapsedMs: 0,
  };
  const t0 = performance.now();
  const until = t0 + opts.seconds * 1000;
  let started = 0;

  // Warm-up, not counted: one case of each kind and a few /health calls, so the first-use cost of each
  // code path (compilation) is not reported as latency under attack.
  const used = opts.kinds ?? KINDS;
  await Promise.all(used.map((k) => runCase(port, makeCase(k, r, host), 300, 1024 * 1024)));
  const warm = startHealthProbe(port, 10);
  await new Promise((res) => setTimeout(res, 200));
  await warm.stop();

  const probe = startHealthProbe(port);

  // Slow and huge cases are rarer: each one holds a worker for up to caseMs.
  const weights = ([
    ['request-line', 3], ['target', 3], ['encoding', 3], ['header', 4], ['body', 4],
    ['slow-headers', 1], ['slow-body', 1], ['huge-body', 1], ['half-close', 2], ['pipeline', 1],
  ] as [Kind, number][]).filter(([k]) => !opts.kinds || opts.kinds.includes(k));
  const total = weights.reduce((a, [, w]) => a + w, 0);
  const nextKind = (): Kind => {
    let x = r() * total;
    for (const [k, w] of weights) if ((x -= w) < 0) return k;
    return 'body';
  };

  const worker = async () => {
    while (performance.now() < until && started < opts.requests) {
      started++;
      const kind = nextKind();
      const c = makeCase(kind, r, host);
      report.sent[kind]++;
      const { statuses, hugeSent } = await runCase(port, c, caseMs, hugeBytes);
      report.maxHugeBytesSent = Math.max(report.maxHugeBytesSent, hugeSent);
      for (const s of statuses) {
        report.statuses[s] = (report.statuses[s] ?? 0) + 1;
        report.byKind[kind][s] = (report.byKind[kind][s] ?? 0) + 1;
        if (s.startsWith('5') && s !== '501' && s !== '503') report.serverErrors++;
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  // The probe's last check comes after the storm.
  const health = await probe.stop();
  report.healthChecks = health.checks;
  report.healthFailures = health.failures;
  report.maxHealthMs = health.maxMs;
  report.elapsedMs = performance.now() - t0;
  return report;
}

export function formatReport(rep: FuzzReport, survived: boolean): string {
  const lines = [
    `sent (${Object.values(rep.sent).reduce((a, b) => a + b, 0)} requests in ${(rep.elapsedMs / 1000).toFixed(1)} s):`,
    ...KINDS.map((k) => `  ${k.padEnd(13)} ${String(rep.sent[k]).padStart(6)}   ${Object.entries(rep.byKind[k]).sort().map(([s, n]) => `${s}:${n}`).join(' ')}`),
    `statuses: ${Object.entries(rep.statuses).sort().map(([s, n]) => `${s}:${n}`).join(' ')}`,
    `largest huge body pushed before the server stopped reading: ${(rep.maxHugeBytesSent / 1024 / 1024).toFixed(1)} MiB`,
    `/health: ${rep.healthChecks} checks, ${rep.healthFailures} failed, max ${rep.maxHealthMs.toFixed(1)} ms`,
    `5xx other than 501/503: ${rep.serverErrors}`,
    `server survived: ${survived ? 'yes' : 'NO'}`,
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '20' },
      requests: { type: 'string', default: '20000' },
      concurrency: { type: 'string', default: '16' },
      seed: { type: 'string' },
      url: { type: 'string' },
      kinds: { type: 'string' },
    },
  });
  const num = (name: string, v: string, min: number, max: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) {
      process.stderr.write(`fuzz-http: --${name} must be a whole number from ${min} to ${max}\n`);
      process.exit(2);
    }
    return n;
  };
  const seconds = num('seconds', values.seconds!, 1, 3600);
  const requests = num('requests', values.requests!, 1, 10_000_000);
  const concurrency = num('concurrency', values.concurrency!, 1, 256);
  const kinds = values.kinds?.split(',') as Kind[] | undefined;
  const unknown = kinds?.filter((k) => !KINDS.includes(k));
  if (unknown?.length) {
    process.stderr.write(`fuzz-http: unknown kind ${unknown.join(', ')}; known: ${KINDS.join(' ')}\n`);
    process.exit(2);
  }
  const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : num('seed', values.seed, 0, 2 ** 31);

  const { startServerChild } = await import('./lib.ts');
  const child = values.url
    ? undefined
    : await startServerChild({ env: { SANDCASTER_E2B_WEBHOOK_SECRET: 'whsec-fuzz-0123456789', SANDCASTER_HEADERS_TIMEOUT_SECONDS: '2', SANDCASTER_BODY_TIMEOUT_SECONDS: '2' } });
  const url = values.url ?? child!.url;
  console.log(`fuzzing ${url} for ${seconds} s or ${requests} requests, ${concurrency} at a time, seed ${seed}`);
  let report: FuzzReport;
  try {
    report = await fuzz({ url, seconds, requests, concurrency, seed, kinds });
  } catch (err) {
    console.error(`fuzz-http: ${(err as Error).message}`);
    await child?.stop();
    process.exit(1);
  }
  const alive = child ? child.proc.exitCode === null && child.proc.signalCode === null : true;
  const survived = alive && report.healthFailures === 0;
  console.log(formatReport(report, survived));
  if (child?.problems.length) console.log(`server warnings/errors: ${child.problems.length}; first: ${JSON.stringify(child.problems[0])}`);
  await child?.stop();
  process.exit(survived && report.serverErrors === 0 ? 0 : 1);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
