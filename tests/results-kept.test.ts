// The record of a run outlives it (issue 13): GET /runs/:id keeps the answer, structured output, warnings,
// returned files and last event id; GET /runs/:id/files/<path> serves each file's exact bytes; retention
// removes the oldest finished runs' events and files past its limits, never a run in flight.
// Real server, real SDK against the fake model servers, real Docker sandboxes, the real SQLite file.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startFakeAnthropic, startFakeOpenAI, type FakeModelServer } from './fixtures/fake-models.ts';
import { assertWellFormedRun, parseSse, readEvents } from './helpers/sse.ts';
import { attachmentDisposition } from '../lib/download.ts';
import { INSERT_EVENT, ensureEventsTable } from './helpers/events-table.ts';
import { managedContainers, startTestServer, waitFor, type TestServer } from './helpers/server.ts';

let anthropic: FakeModelServer;
let openai: FakeModelServer;

before(async () => {
  anthropic = await startFakeAnthropic();
  openai = await startFakeOpenAI();
});
after(async () => {
  await anthropic.close();
  await openai.close();
});

const modelEnv = () => ({
  ANTHROPIC_API_KEY: 'sk-ant-kept-test-key',
  ANTHROPIC_BASE_URL: anthropic.url,
  OPENAI_API_KEY: 'sk-openai-kept-test-key',
  OPENAI_BASE_URL: openai.url,
  SANDCASTER_SANDBOX_PROVIDER: 'docker',
});

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const OCTAL_ALL_BYTES = Array.from({ length: 256 }, (_, i) => `\\${i.toString(8).padStart(3, '0')}`).join('');
/** A file name with a tab, quotes, a backslash and a control byte: none may reach the header as it is. */
const EVIL_NAME = 'odd\t"name"\\x\x01; filename=evil.exe';

/** Reads a whole /query stream; the data objects and the last event id as sent. */
async function readRun(res: Response): Promise<{ runId: string; events: Record<string, any>[]; lastId: number }> {
  assert.equal(res.status, 200, `expected a stream, got ${res.status}`);
  const { events } = parseSse(await res.text());
  return { runId: res.headers.get('x-run-id')!, events: events.map((e) => e.data), lastId: events.at(-1)!.id };
}

describe('results and files kept', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ env: modelEnv() });
  });
  after(() => s.stop());
  afterEach(async () => {
    assert.ok(await waitFor(async () => (await managedContainers(s.app.store.instanceId)).length === 0, 5000), 'no container left');
  });

  test('every returned file reads back byte for byte, with its headers, after the run; the record lists them', async () => {
    anthropic.setScript([
      {
        toolCalls: [
          { name: 'write_file', input: { path: 'out/report.md', content: '# Report\nünïcödé ✓\n' } },
          { name: 'write_file', input: { path: EVIL_NAME, content: 'odd' } },
          {
            name: 'bash',
            input: {
              command: [
                `mkdir -p out; printf '${OCTAL_ALL_BYTES}' > out/blob.bin`,
                `printf 'accents' > 'résumé ✓.txt'`,
                `printf 'quoted' > 'say "hi"; x=1.csv'`,
              ].join('; '),
            },
          },
        ],
      },
      { text: 'made them' },
    ]);
    const { runId, events, lastId } = await readRun(await s.query({ prompt: 'make files', model: 'haiku' }));
    assert.equal(assertWellFormedRun(events).type, 'result');

    const expected: Record<string, Buffer> = {
      'out/blob.bin': ALL_BYTES,
      'out/report.md': Buffer.from('# Report\nünïcödé ✓\n'),
      'résumé ✓.txt': Buffer.from('accents'),
      'say "hi"; x=1.csv': Buffer.from('quoted'),
      [EVIL_NAME]: Buffer.from('odd'),
    };
    const record = await (await s.fetch(`/runs/${runId}`)).json();
    assert.equal(record.result, 'made them');
    assert.equal(record.lastEventId, lastId, 'lastEventId is the id of the terminal event as streamed');
    assert.equal(record.eventsExpired, false);
    assert.deepEqual(record.warnings, []);
    assert.ok(!('structuredOutput' in record), `no structuredOutput when none was asked for: ${JSON.stringify(record)}`);
    assert.deepEqual(
      record.files,
      Object.keys(expected).sort().map((path) => ({ path, size: expected[path]!.length, sha256: sha256(expected[path]!) })),
    );

    for (const [path, bytes] of Object.entries(expected)) {
      const url = `/runs/${runId}/files/${path.split('/').map(encodeURIComponent).join('/')}`;
      const res = await s.fetch(url);
      assert.equal(res.status, 200, `${JSON.stringify(path)}: ${res.status}`);
      const body = Buffer.from(await res.arrayBuffer());
      assert.ok(body.equals(bytes), `${JSON.stringify(path)}: the bytes match (got ${body.length} bytes)`);
      assert.equal(res.headers.get('content-length'), String(bytes.length));
      assert.equal(res.headers.get('etag'), `"${sha256(bytes)}"`);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      const cd = res.headers.get('content-disposition')!;
      // One quoted string without quotes inside, then at most filename*: nothing a name could add.
      assert.ok(/^attachment; filename="[^"\\\x00-\x1f\x7f]*"(; filename\*=UTF-8''[A-Za-z0-9!#$&+\-.^_`|~%]+)?$/.test(cd), `RFC 6266 shape: ${JSON.stringify(cd)}`);
      assert.match(cd, /^attachment; filename="[\x20-\x7e]*"/, `printable ASCII fallback: ${JSON.stringify(cd)}`);
      assert.ok(!/[\r\n]/.test(cd), 'no line break in Content-Disposition');
      const fallback = /filename="([^"]*)"/.exec(cd)![1]!;
      const star = /filename\*=UTF-8''([^;]*)$/.exec(cd)?.[1];
      const base = path.split('/').at(-1)!;
      if (/^[\x20-\x7e]*$/.test(base) && !/["\\%]/.test(base)) {
        assert.equal(fallback, base);
        assert.equal(star, undefined, 'plain names need no filename*');
      } else {
        assert.equal(decodeURIComponent(star!), base, `filename* carries the exact name: ${cd}`);
      }
    }
    const types = async (p: string) => (await s.fetch(`/runs/${runId}/files/${p}`)).headers.get('content-type');
    assert.equal(await types('out/report.md'), 'text/markdown; charset=utf-8');
    assert.equal(await types('out/blob.bin'), 'application/octet-stream');
    assert.equal(await types(encodeURIComponent('résumé ✓.txt')), 'text/plain; charset=utf-8');
    assert.equal(await types(encodeURIComponent('say "hi"; x=1.csv')), 'text/csv; charset=utf-8');

    // ETag and If-None-Match (strong, weak, list, other).
    const etag = `"${sha256(ALL_BYTES)}"`;
    const cond = (inm: string) => s.fetch(`/runs/${runId}/files/out/blob.bin`, { headers: { 'if-none-match': inm } });
    for (const inm of [etag, `W/${etag}`, `"nope", ${etag}`, '*']) {
      const res = await cond(inm);
      assert.equal(res.status, 304, `If-None-Match ${inm}`);
      assert.equal(res.headers.get('etag'), etag);
      assert.equal((await res.arrayBuffer()).byteLength, 0, '304 has no body');
    }
    const changed = await cond('"0000"');
    assert.equal(changed.status, 200);
    assert.ok(Buffer.from(await changed.arrayBuffer()).equals(ALL_BYTES), 'a different ETag gets the bytes');

    const head = await s.fetch(`/runs/${runId}/files/out/blob.bin`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), '256');
    assert.equal(head.headers.get('etag'), etag);

    // Paths are decoded exactly once and matched exactly; no filesystem behind them.
    assert.equal((await s.fetch(`/runs/${runId}/files/out%2Fblob.bin`)).status, 200, 'an encoded slash is a slash');
    const twice = await s.fetch(`/runs/${runId}/files/out%252Fblob.bin`);
    assert.equal(twice.status, 404, 'decoded once only');
    assert.equal((await twice.json()).error.code, 'NOT_FOUND');
    for (const p of ['out/missing.bin', 'out', 'blob.bin', 'OUT/BLOB.BIN', '..%2F..%2Fetc%2Fpasswd', '%2Fworkspace%2Fout%2Fblob.bin']) {
      const res = await s.fetch(`/runs/${runId}/files/${p}`);
      assert.equal(res.status, 404, `${p}: ${res.status}`);
    }
    const bad = await s.fetch(`/runs/${runId}/files/out/%E0%A4%A`);
    assert.equal(bad.status, 400, 'malformed percent-encoding is 400');
    assert.match((await bad.json()).error.message, /percent-encoding/);
    const unknown = await s.fetch(`/runs/run_nope/files/out/blob.bin`);
    assert.equal(unknown.status, 404);
    assert.match((await unknown.json()).error.message, /run_nope/);
    assert.equal((await s.fetch(`/runs/${runId}/files/out/blob.bin`, { method: 'POST' })).status, 405);
  });

  test('files of several MiB come back whole across stored chunks (binary, and UTF-8 with pairs split at chunk edges)', async () => {
    // 'bb' puts a surrogate pair's first half where a chunk of the decoded text would end.
    const text = 'bb' + 'a\u{1F600}'.repeat(700_000);
    anthropic.setScript([
      { toolCalls: [{ name: 'write_file', input: { path: 'emoji.txt', content: text } }, { name: 'bash', input: { command: 'head -c 3000000 /dev/urandom > big.bin' } }] },
      { text: 'big ones' },
    ]);
    const { runId, events } = await readRun(await s.query({ prompt: 'x', model: 'haiku' }));
    assert.equal(assertWellFormedRun(events).type, 'result');
    const streamed = Buffer.from(events.find((e) => e.type === 'file' && e.path === 'big.bin')!.content, 'base64');
    assert.equal(streamed.length, 3_000_000);
    const expected: Record<string, Buffer> = { 'big.bin': streamed, 'emoji.txt': Buffer.from(text, 'utf8') };
    const record = await (await s.fetch(`/runs/${runId}`)).json();
    for (const [path, bytes] of Object.entries(expected)) {
      assert.deepEqual(record.files.find((f: any) => f.path === path), { path, size: bytes.length, sha256: sha256(bytes) });
      const res = await s.fetch(`/runs/${runId}/files/${path}`);
      assert.equal(res.headers.get('content-length'), String(bytes.length));
      const body = Buffer.from(await res.arrayBuffer());
      assert.ok(body.equals(bytes), `${path}: ${body.length} bytes back, ${bytes.length} expected, sha256 ${sha256(body)}`);
    }
  });

  test('structured output and warnings are kept; a failed run keeps a null result', async () => {
    const schema = { type: 'object', properties: { answer: { type: 'integer' } }, required: ['answer'] };
    anthropic.setScript([{ text: '{"answer": 42}' }]);
    const ok = await readRun(await s.query({ prompt: 'x', model: 'haiku', outputFormat: schema }));
    const okRecord = await (await s.fetch(`/runs/${ok.runId}`)).json();
    assert.equal(okRecord.result, '{"answer": 42}');
    assert.deepEqual(okRecord.structuredOutput, { answer: 42 });
    assert.equal(okRecord.lastEventId, ok.lastId);

    openai.setScript([{ text: 'priced?' }]);
    const warned = await readRun(await s.query({ prompt: 'x', model: 'mystery-model', provider: 'openai' }));
    const warnedRecord = await (await s.fetch(`/runs/${warned.runId}`)).json();
    const streamed = warned.events.filter((e) => e.type === 'warning').map((e) => ({ code: e.code, content: e.content }));
    assert.equal(streamed[0]?.code, 'UNKNOWN_PRICE');
    assert.deepEqual(warnedRecord.warnings, streamed, 'the warnings as streamed');
    assert.deepEqual(warnedRecord.files, []);

    anthropic.setScript([{ text: 'not json' }, { text: 'still not' }, { text: 'nope' }]);
    const failed = await readRun(await s.query({ prompt: 'x', model: 'haiku', outputFormat: schema }));
    assert.equal(assertWellFormedRun(failed.events).type, 'error');
    const failedRecord = await (await s.fetch(`/runs/${failed.runId}`)).json();
    assert.equal(failedRecord.status, 'error');
    assert.equal(failedRecord.result, null);
    assert.ok('structuredOutput' in failedRecord && failedRecord.structuredOutput === null, `asked for, so present and null: ${JSON.stringify(failedRecord.structuredOutput)}`);
    assert.equal(failedRecord.lastEventId, failed.lastId);
  });
});

describe('Content-Disposition for any file name', () => {
  // Names with line breaks never come out of a sandbox listing; the header must be safe for them anyway.
  test('line breaks, quotes, non-ASCII and broken UTF-16 give a valid header naming the file exactly', () => {
    const names = ['a\r\nX-Injected: 1.txt', 'b\rc\u2028d.txt', '"q"; filename=x.exe', 'résumé ✓.pdf', "it's (1)*.txt", '\uD800lone.txt', 'plain-name_1.txt'];
    for (const name of names) {
      const value = attachmentDisposition(`dir/${name}`);
      const headers = new Headers({ 'content-disposition': value }); // throws on CR, LF or NUL
      assert.equal(headers.get('content-disposition'), value, `kept as is: ${JSON.stringify(value)}`);
      assert.ok(/^attachment; filename="[\x20-\x7e]*"(; filename\*=UTF-8''[A-Za-z0-9!#$&+\-.^_`|~%]+)?$/.test(value), `RFC 6266 / 8187 shape: ${JSON.stringify(value)}`);
      const star = /filename\*=UTF-8''(.+)$/.exec(value)?.[1];
      const named = star ? decodeURIComponent(star) : /filename="(.*)"/.exec(value)![1];
      assert.equal(named, name.replace('\uD800', '\uFFFD'), `names the file: ${JSON.stringify(value)}`);
    }
  });
});

describe('retention', () => {
  let s: TestServer;
  let db: Database.Database;
  const dir = mkdtempSync(join(tmpdir(), 'sandcaster-retention-'));
  /** Bytes retention counts for a run: its stored events plus its stored file contents. */
  const storedBytes = (runId: string) =>
    (db.prepare(`SELECT (SELECT COALESCE(SUM(length(frames)), 0) FROM run_events WHERE run_id = ?) + (SELECT COALESCE(SUM(length(data)), 0) FROM run_file_chunks WHERE run_id = ?) AS n`).get(runId, runId) as { n: number }).n;
  const eventCount = (runId: string) => (db.prepare(`SELECT COUNT(*) AS n FROM run_events WHERE run_id = ?`).get(runId) as { n: number }).n;
  const record = async (runId: string) => (await s.fetch(`/runs/${runId}`)).json();

  before(async () => {
    s = await startTestServer({ env: { ...modelEnv(), SANDCASTER_RETENTION_MB: '1' }, dir, retentionIntervalMs: 100 });
    db = new Database(join(dir, 'runs.db'));
    db.pragma('busy_timeout = 2000');
    ensureEventsTable(db);
  });
  after(async () => {
    db.close();
    await s.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A finished run that returned one file of `bytes` random-looking bytes. */
  async function runWithFile(name: string, bytes: number): Promise<string> {
    anthropic.setScript([{ toolCalls: [{ name: 'bash', input: { command: `head -c ${bytes} /dev/urandom > ${name}` } }] }, { text: `made ${name}` }]);
    const { runId, events } = await readRun(await s.query({ prompt: 'x', model: 'haiku' }));
    assert.equal(assertWellFormedRun(events).type, 'result');
    return runId;
  }

  test('past the size limit the oldest finished run loses its events and files first; its row stays; a run in flight is untouched; then age', async () => {
    const a = await runWithFile('a.bin', 100_000);
    const b = await runWithFile('b.bin', 100_000);
    // Give every run stored events, as the event log does (ids far above any the log itself would use).
    const addEvents = db.prepare(INSERT_EVENT);
    for (const id of [a, b]) addEvents.run(id, 1_000_001, JSON.stringify({ type: 'system', note: 'x'.repeat(1000) }));
    assert.ok((await record(a)).eventsExpired === false, 'both kept while under 1 MiB');

    // A run in flight: its model call never answers. It holds more stored bytes than any other run.
    anthropic.setScript([{ hang: true }]);
    const asked = anthropic.requests.length;
    const inFlight = await s.query({ prompt: 'hold', model: 'haiku' });
    const c = inFlight.headers.get('x-run-id')!;
    // Its sandbox is made beside that call: wait for both, so that no event of its own comes after the count below.
    const hasSandboxCreated = () => Boolean(db.prepare(`SELECT 1 FROM run_events WHERE run_id = ? AND CAST(frames AS TEXT) LIKE '%sandbox_created%'`).get(c));
    assert.ok(await waitFor(() => anthropic.requests.length > asked && hasSandboxCreated(), 20_000), 'the run in flight reached its model call and stored sandbox_created');
    const limit = 1024 * 1024;
    const [sizeA, sizeB] = [storedBytes(a), storedBytes(b)];
    assert.ok(sizeA > 100_000 && sizeA + sizeB < limit, `a and b fit: ${sizeA} + ${sizeB}`);
    // Past the limit by half of a's bytes: dropping a (the oldest finished run) is enough, b stays.
    const cBytes = limit - sizeA - sizeB + Math.floor(sizeA / 2);
    for (let i = 0; i * 100_000 < cBytes; i++) addEvents.run(c, 1_000_001 + i, 'c'.repeat(Math.min(100_000, cBytes - i * 100_000)));
    const cEvents = eventCount(c);

    assert.ok(await waitFor(async () => (await record(a)).eventsExpired === true, 10_000), 'the oldest finished run expired');
    const ra = await record(a);
    assert.equal(ra.status, 'completed', 'its row stays');
    assert.equal(ra.result, 'made a.bin', 'its result stays');
    assert.equal(ra.files.length, 1, 'the file list stays (metadata)');
    assert.equal(eventCount(a), 0, 'its events are gone');
    assert.equal(storedBytes(a), 0, 'its file bytes are gone');
    const gone = await s.fetch(`/runs/${a}/files/a.bin`);
    assert.equal(gone.status, 410);
    assert.equal((await gone.json()).error.code, 'EVENTS_EXPIRED');

    const rb = await record(b);
    assert.equal(rb.eventsExpired, false, 'the newer finished run is kept (under the limit once a is gone)');
    assert.equal((await s.fetch(`/runs/${b}/files/b.bin`)).status, 200);
    const rc = await record(c);
    assert.equal(rc.status, 'running');
    assert.equal(rc.eventsExpired, false, 'the run in flight is untouched');
    assert.equal(eventCount(c), cEvents, 'its events are all there');
    assert.ok(rc.lastEventId >= 1_000_001, `lastEventId of a run in flight comes from its stored events: ${rc.lastEventId}`);

    // Age: b finished 31 days ago (the default limit is 30) goes at the next check though under the size limit.
    await inFlight.body!.cancel(); // the run in flight ends (cancelled): its events are now the newest finished
    assert.ok(await waitFor(async () => (await record(c)).status === 'cancelled', 5000), 'c ended');
    db.prepare(`DELETE FROM run_events WHERE run_id = ?`).run(c); // under the size limit again
    db.prepare(`UPDATE runs SET completed_at = ? WHERE id = ?`).run(new Date(Date.now() - 31 * 86_400_000).toISOString(), b);
    assert.ok(await waitFor(async () => (await record(b)).eventsExpired === true, 10_000), 'a run past the age limit expired');
    assert.equal(eventCount(b), 0);
    assert.equal((await s.fetch(`/runs/${b}/files/b.bin`)).status, 410);
    assert.equal((await record(c)).eventsExpired, false, 'a recent run under the limits stays');
  });

  test('checked at start: a server started with SANDCASTER_RETENTION_DAYS=0 expires every finished run', async () => {
    const runs = (db.prepare(`SELECT id FROM runs WHERE events_expired = 0`).all() as { id: string }[]).map((r) => r.id);
    assert.ok(runs.length >= 1, `some run is kept before the restart: ${runs.length}`);
    db.close();
    await s.stop();
    s = await startTestServer({ env: { ...modelEnv(), SANDCASTER_RETENTION_DAYS: '0' }, dir, retentionIntervalMs: 3_600_000 });
    db = new Database(join(dir, 'runs.db'));
    for (const id of runs) assert.ok(await waitFor(async () => (await record(id)).eventsExpired === true, 10_000), `${id} expired at start`);
  });
});
