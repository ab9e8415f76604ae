// Durable runs: every event stored as it is sent, GET /runs/:id/events (replay, then live), onDisconnect,
// detach, cancel, several readers, slow readers, storage failures, shutdown and crash recovery. Real server,
// real Docker sandboxes, the real Anthropic SDK against the fake model server.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { EventLogs } from '../lib/event-log.ts';
import { EventStream, MAX_BUFFERED_BYTES } from '../lib/sse.ts';
import { RunStore } from '../lib/store.ts';
import { startScriptedByPrompt, type FakeTurn, type ScriptedByPrompt } from './fixtures/fake-models.ts';
import { spawnServer, type ChildServer } from './helpers/child.ts';
import { assertContiguousToEnd, assertWellFormedRun, readFrames, type Frame } from './helpers/sse.ts';
import { managedContainers, startTestServer, waitFor, type TestServer } from './helpers/server.ts';

let fake: ScriptedByPrompt;
let s: TestServer;
let dir: string;

before(async () => {
  fake = await startScriptedByPrompt();
  dir = mkdtempSync(join(tmpdir(), 'sandcaster-durable-'));
  s = await startTestServer({ env: modelEnv() });
});
after(async () => {
  await s.stop();
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  assert.ok(await waitFor(async () => (await managedContainers(s.app.store.instanceId)).length === 0, 10_000), 'no sandbox left');
});

function modelEnv() {
  return { ANTHROPIC_API_KEY: 'sk-ant-durable-test-key', ANTHROPIC_BASE_URL: fake.url, SANDCASTER_SANDBOX_PROVIDER: 'docker' };
}

const words = (n: number, tag = 'w') => Array.from({ length: n }, (_, i) => `${tag}${i} `);
const bash = (command: string): FakeTurn => ({ toolCalls: [{ name: 'bash', input: { command } }] });
const json = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

type Fetcher = { fetch(path: string, init?: RequestInit): Promise<Response> };

function openEvents(server: Fetcher, runId: string, cursor: { lastEventId?: number | string; after?: number | string } = {}): Promise<Response> {
  const q = cursor.after !== undefined ? `?after=${encodeURIComponent(String(cursor.after))}` : '';
  return server.fetch(`/runs/${runId}/events${q}`, { headers: cursor.lastEventId !== undefined ? { 'last-event-id': String(cursor.lastEventId) } : {} });
}

async function detach(server: Fetcher, body: object): Promise<string> {
  const res = await server.fetch('/query', json({ model: 'haiku', ...body, detach: true }));
  assert.equal(res.status, 202, `detach answers 202, got ${res.status}: ${await res.clone().text()}`);
  return ((await res.json()) as { runId: string }).runId;
}

const raw = (frames: Frame[]) => frames.map((f) => f.raw).join('');
const row = async (server: Fetcher, id: string) => (await server.fetch(`/runs/${id}`)).json() as Promise<Record<string, any>>;

describe('event log (in-memory database, no sandbox)', () => {
  test('replay from any cursor: stored rows are cut at the cursor, bytes equal to the live stream', async () => {
    const store = new RunStore(':memory:');
    try {
      const logs = new EventLogs(store, ':memory:');
      const log = logs.open('run_a', () => {});
      const text = async (stream: EventStream) => new Response(stream.body).text();
      const live = text(new EventStream(logs.subscribe('run_a', 0)));
      // 3,000 events over many ticks; a few large ones cut their batch early.
      for (let i = 1; i <= 3000; i++) {
        log.append({ type: 'assistant', subtype: 'delta', content: i % 500 === 0 ? 'y'.repeat(300_000) : `d${i}` });
        if (i % 97 === 0) await new Promise((r) => setTimeout(r, 1));
      }
      await log.end({ type: 'result', content: 'ok' }, { kind: 'sandbox', id: 'run_a', sandboxId: 'none', sandboxCount: 0 });
      assert.equal(logs.get('run_a'), undefined, 'an ended log whose events are all stored leaves memory');
      const rows = store.readEvents('run_a', 0, Number.MAX_SAFE_INTEGER);
      assert.ok(rows.length > 5, `stored in several rows: ${rows.length}`);
      assert.equal(rows.at(-1)!.lastId, 3001);
      const full = await live;
      const frames = full.split(/(?<=\n\n)/);
      assert.equal(frames.length, 3001);
      for (const cursor of [0, 1, 96, 97, 98, 499, 500, 1500, 2999, 3000, 3001, 5000]) {
        const got = await text(new EventStream(logs.subscribe('run_a', cursor)));
        assert.equal(got, frames.slice(cursor).join(''), `replay after ${cursor}`);
      }
    } finally {
      store.close();
    }
  });
});

describe('reattach and detach', () => {
  test('a /query client with onDisconnect "continue" drops its stream midway and reattaches with its last id: exactly the rest, in order, one terminal', async () => {
    const tag = fake.script('continue', [
      { text: words(20), toolCalls: [{ name: 'bash', input: { command: 'sleep 1; echo half' } }], deltaDelayMs: 5 },
      { text: words(40, 'x'), deltaDelayMs: 10 },
    ]);
    const res = await s.fetch('/query', json({ prompt: `finish it ${tag}`, model: 'haiku', onDisconnect: 'continue' }));
    const runId = res.headers.get('x-run-id')!;
    const first = await readFrames(res, (f) => f.event === 'tool_use'); // then the client goes away
    assert.equal(first.ended, false);
    first.frames.forEach((f, i) => assert.equal(f.id, i + 1, 'the /query stream counts ids from 1'));
    const last = first.frames.at(-1)!.id;

    const rest = await readFrames(await openEvents(s, runId, { lastEventId: last }));
    assert.equal(rest.ended, true, 'the reattached stream ends after the terminal event');
    const terminal = assertContiguousToEnd(rest.frames, last + 1);
    assert.equal(terminal.event, 'result', `the run went on to its end: ${terminal.raw}`);

    // Together they are the stored log, byte for byte.
    const all = await readFrames(await openEvents(s, runId));
    assert.equal(raw(all.frames), raw([...first.frames, ...rest.frames]));
    assertWellFormedRun(all.frames.map((f) => f.data));
    const r = await row(s, runId);
    assert.equal(r.status, 'completed');
  });

  test('detach: 202 with Location, X-Run-Id and where to read; read from the start and from the middle, while it runs and after it ended', async () => {
    const tag = fake.script('detach', [bash('echo one'), { text: words(40), deltaDelayMs: 25 }]);
    const res = await s.fetch('/query', json({ prompt: `detached ${tag}`, model: 'haiku', detach: true }));
    assert.equal(res.status, 202);
    const body = await res.json();
    const runId: string = body.runId;
    assert.match(runId, new RegExp(`^run_${s.app.store.instanceId.slice(5)}_[0-9a-f]{24}$`), 'the run id embeds the instance id');
    assert.deepEqual(body, { runId, status: 'running', eventsUrl: `/runs/${runId}/events`, runUrl: `/runs/${runId}` });
    assert.equal(res.headers.get('location'), `/runs/${runId}`);
    assert.equal(res.headers.get('x-run-id'), runId);

    const fromStart = readFrames(await openEvents(s, runId));
    // Wait until a few events exist, then read from the middle while the run is still going.
    assert.ok(await waitFor(async () => (await readFrames(await openEvents(s, runId), (_, all) => all.length >= 5)).frames.length >= 5, 20_000), 'five events stored');
    assert.equal((await row(s, runId)).status, 'running', 'still running when the middle reader attaches');
    assert.ok(s.app.runs.get(runId), 'the run is in flight');
    const fromMiddle = readFrames(await openEvents(s, runId, { after: 3 }));
    const [a, b] = await Promise.all([fromStart, fromMiddle]);
    assert.equal(assertContiguousToEnd(a.frames, 1).event, 'result');
    assertContiguousToEnd(b.frames, 4);
    assert.equal(raw(b.frames), raw(a.frames.slice(3)));

    // After the end: the same bytes; Last-Event-ID wins over ?after.
    const c = await readFrames(await openEvents(s, runId));
    const d = await readFrames(await s.fetch(`/runs/${runId}/events?after=1`, { headers: { 'last-event-id': '3' } }));
    assert.equal(raw(c.frames), raw(a.frames));
    assert.equal(raw(d.frames), raw(b.frames));
    assert.equal(d.frames[0]!.id, 4);
    // A cursor at or past the end: an empty stream that ends at once.
    const past = await readFrames(await openEvents(s, runId, { lastEventId: a.frames.length + 10 }));
    assert.deepEqual(past, { frames: [], ended: true });
    assert.equal((await row(s, runId)).status, 'completed');
  });

  test('readers attaching while the run produces events each get every later event exactly once, in order, across the seam (three at once and more)', async () => {
    const tag = fake.script('seam', [{ text: words(400), deltaDelayMs: 4 }]);
    const runId = await detach(s, { prompt: `seam ${tag}` });
    let lastSeen = 0;
    const first = readFrames(await openEvents(s, runId), (f) => {
      lastSeen = f.id;
      return false;
    });
    const readers: Promise<{ cursor: number; live: boolean; frames: Frame[] }>[] = [];
    for (let k = 0; k < 9; k++) {
      assert.ok(await waitFor(() => lastSeen >= (k + 1) * 35, 30_000, 2), `the run reached event ${(k + 1) * 35}`);
      const cursor = [lastSeen, Math.max(0, lastSeen - 9), 0][k % 3]!;
      const live = s.app.runs.get(runId) !== undefined;
      readers.push(readFrames(await openEvents(s, runId, { lastEventId: cursor })).then((r) => ({ cursor, live, ...r })));
    }
    const all = await first;
    assert.equal(assertContiguousToEnd(all.frames, 1).event, 'result');
    const done = await Promise.all(readers);
    assert.ok(done.filter((r) => r.live).length >= 3, `several readers attached while the run was in flight: ${done.filter((r) => r.live).length}`);
    for (const r of done) {
      assertContiguousToEnd(r.frames, r.cursor + 1);
      assert.equal(raw(r.frames), raw(all.frames.slice(r.cursor)), `reader from ${r.cursor} got the log's bytes`);
    }
  });

  test('request fields: detach with onDisconnect "cancel" and bad values are 400 naming the field', async () => {
    for (const [body, path] of [
      [{ detach: true, onDisconnect: 'cancel' }, 'onDisconnect'],
      [{ onDisconnect: 'later' }, 'onDisconnect'],
      [{ detach: 'yes' }, 'detach'],
    ] as const) {
      const res = await s.fetch('/query', json({ prompt: 'x', model: 'haiku', ...body }));
      assert.equal(res.status, 400, JSON.stringify(body));
      const err = (await res.json()).error;
      assert.equal(err.code, 'INVALID_REQUEST');
      assert.ok(err.details.some((d: { path: string }) => d.path === path), `details name ${path}: ${JSON.stringify(err.details)}`);
    }
  });
});

describe('GET /runs/:id/events errors', () => {
  test('bad cursor 400, unknown run 404 (another instance named in the hint), expired events 410', async () => {
    const tag = fake.script('short', [{ text: 'hi' }]);
    const runId = await detach(s, { prompt: `short ${tag}` });
    assert.ok(await waitFor(async () => (await row(s, runId)).status === 'completed', 20_000), 'the run completed');
    for (const bad of ['abc', '-1', '1.5', '1e3', '0x10', '9'.repeat(16)]) {
      const h = await openEvents(s, runId, { lastEventId: bad });
      assert.equal(h.status, 400, `Last-Event-ID ${bad}`);
      assert.match((await h.json()).error.message, /Last-Event-ID/);
      const q = await openEvents(s, runId, { after: bad });
      assert.equal(q.status, 400, `after=${bad}`);
      assert.match((await q.json()).error.message, /after/);
    }
    const empty = await openEvents(s, runId, { after: '' });
    assert.equal(empty.status, 400, 'an empty cursor is not a number');

    const mine = s.app.store.instanceId.slice(5);
    const unknown = await openEvents(s, `run_${mine}_${'0'.repeat(24)}`);
    assert.equal(unknown.status, 404);
    const unknownErr = (await unknown.json()).error;
    assert.equal(unknownErr.code, 'NOT_FOUND');
    assert.equal(unknownErr.hint, undefined, 'a run id of this instance gets no routing hint');
    const other = mine === '0123456789abcdef' ? 'fedcba9876543210' : '0123456789abcdef';
    for (const path of [`/runs/run_${other}_${'1'.repeat(24)}/events`, `/runs/run_${other}_${'1'.repeat(24)}`]) {
      const res = await s.fetch(path);
      assert.equal(res.status, 404, path);
      const err = (await res.json()).error;
      assert.ok(String(err.hint).includes(`inst_${other}`), `the hint names the instance that holds the run: ${err.hint}`);
    }
    const cancelOther = await s.fetch(`/runs/run_${other}_${'1'.repeat(24)}/cancel`, { method: 'POST' });
    assert.equal(cancelOther.status, 404);
    assert.ok(String((await cancelOther.json()).error.hint).includes(`inst_${other}`), 'cancel names the other instance too');

    const db = new Database(join(s.dir, 'runs.db'));
    db.prepare('UPDATE runs SET events_expired = 1 WHERE id = ?').run(runId);
    db.close();
    const gone = await openEvents(s, runId);
    assert.equal(gone.status, 410);
    assert.equal((await gone.json()).error.code, 'EVENTS_EXPIRED');
    assert.equal((await s.fetch(`/runs/${runId}`)).status, 200, 'the row stays');
  });
});

describe('cancel', () => {
  test('a running detached run: 202 cancelling, terminal CANCELLED within 2 s, sandbox gone, row cancelled; then 409; unknown 404', async () => {
    const tag = fake.script('cancel', [bash('echo ready'), { hang: true }]);
    const before = fake.requests.length;
    const runId = await detach(s, { prompt: `cancel me ${tag}` });
    const reader = readFrames(await openEvents(s, runId));
    assert.ok(await waitFor(() => fake.requests.length >= before + 2, 30_000), 'the run is waiting on its second model call');
    assert.equal((await managedContainers(s.app.store.instanceId)).length, 1, 'its sandbox is up');
    const t0 = Date.now();
    const res = await s.fetch(`/runs/${runId}/cancel`, { method: 'POST' });
    assert.equal(res.status, 202);
    assert.deepEqual(await res.json(), { runId, status: 'cancelling' });
    const { frames, ended } = await reader;
    const elapsed = Date.now() - t0;
    assert.ok(ended, 'the reader stream ended');
    const terminal = assertContiguousToEnd(frames, 1);
    assert.equal(terminal.event, 'error');
    assert.equal(terminal.data.code, 'CANCELLED');
    assert.ok(elapsed < 2000, `terminal CANCELLED within 2 s of the cancel, took ${elapsed} ms`);
    assertWellFormedRun(frames.map((f) => f.data)); // sandbox_destroyed before the terminal event
    assert.equal((await managedContainers(s.app.store.instanceId)).length, 0, 'the container is gone when the terminal event is sent');
    const r = await row(s, runId);
    assert.equal(r.status, 'cancelled');
    assert.equal(r.errorCode, 'CANCELLED');

    const again = await s.fetch(`/runs/${runId}/cancel`, { method: 'POST' });
    assert.equal(again.status, 409);
    const err = (await again.json()).error;
    assert.equal(err.code, 'ALREADY_FINISHED');
    assert.match(err.message, /cancelled/, 'the message names the status');
    const unknown = await s.fetch(`/runs/run_${s.app.store.instanceId.slice(5)}_${'0'.repeat(24)}/cancel`, { method: 'POST' });
    assert.equal(unknown.status, 404);
    assert.equal((await s.fetch(`/runs/${runId}/cancel`)).status, 405, 'cancel is POST only');
  });

  test('a /query client that disconnects with the default onDisconnect cancels the run; its log ends with error CANCELLED', async () => {
    const tag = fake.script('hangup', [bash('echo ready'), { hang: true }]);
    const res = await s.fetch('/query', json({ prompt: `hang up ${tag}`, model: 'haiku' }));
    const runId = res.headers.get('x-run-id')!;
    await readFrames(res, (f) => f.event === 'tool_result');
    assert.ok(await waitFor(async () => (await row(s, runId)).status === 'cancelled', 5000), 'the run was cancelled');
    assert.equal((await row(s, runId)).errorCode, 'CANCELLED');
    const log = await readFrames(await openEvents(s, runId));
    const terminal = assertContiguousToEnd(log.frames, 1);
    assert.equal(terminal.data.code, 'CANCELLED');
  });

  test('detached runs count toward SANDCASTER_MAX_CONCURRENT_RUNS', async () => {
    const one = await startTestServer({ env: { ...modelEnv(), SANDCASTER_MAX_CONCURRENT_RUNS: '1' } });
    try {
      const tag = fake.script('limit', [{ hang: true }]);
      const runId = await detach(one, { prompt: `limit ${tag}` });
      const second = await one.fetch('/query', json({ prompt: 'x', model: 'haiku', detach: true }));
      assert.equal(second.status, 429);
      assert.equal((await second.json()).error.code, 'TOO_MANY_RUNS');
      assert.equal((await one.fetch(`/runs/${runId}/cancel`, { method: 'POST' })).status, 202);
      assert.ok(await waitFor(() => one.app.runs.size === 0, 5000), 'the cancelled run left');
    } finally {
      await one.stop();
    }
  });
});

describe('storage failures', () => {
  test('with the database locked, a reader attaching mid-run still gets every event and the terminal one; the row and log are stored once the lock goes', async () => {
    const tag = fake.script('locked', [bash('echo hi'), { text: words(30), deltaDelayMs: 30 }]);
    const runId = await detach(s, { prompt: `locked ${tag}` });
    assert.ok(await waitFor(async () => (await readFrames(await openEvents(s, runId), (f) => f.event === 'tool_result')).frames.some((f) => f.event === 'tool_result'), 30_000), 'the tool ran');
    const lock = new Database(join(s.dir, 'runs.db'));
    lock.exec('BEGIN EXCLUSIVE');
    let locked = true;
    try {
      // Attach now: what the database has, then what only memory holds, then live.
      const { frames, ended } = await readFrames(await openEvents(s, runId));
      assert.ok(ended, 'the stream ended');
      assert.equal(assertContiguousToEnd(frames, 1).event, 'result');
      assert.equal(s.app.store.get(runId)!.status, 'running', 'the row cannot be closed while the lock is held');
      lock.exec('ROLLBACK');
      lock.close();
      locked = false;
      assert.ok(await waitFor(() => s.app.store.get(runId)!.status === 'completed', 5000), `the row is closed once the lock goes: ${s.app.store.get(runId)!.status}`);
      const stored = await readFrames(await openEvents(s, runId));
      assert.equal(raw(stored.frames), raw(frames), 'the stored log is what the reader got');
    } finally {
      if (locked) {
        lock.exec('ROLLBACK');
        lock.close();
      }
    }
  });
});

describe('slow readers', () => {
  test('a reader that never reads is dropped with at most the per-reader bound queued; the run finishes on time', async (t) => {
    const child = await spawnServer({ ...modelEnv(), SANDCASTER_DB: join(dir, 'slow.db') });
    try {
      // 3,000 deltas of 8 KiB: 24 MiB of events, far more than socket buffers and the per-reader bound hold.
      const big = Array.from({ length: 3000 }, () => 'x'.repeat(8192));
      const stalled = fake.script('big-stalled', [{ text: big }]);
      const memory = () => readFileSync(`/proc/${child.proc.pid}/status`, 'utf8').match(/^Vm(RSS|HWM):\s+\d+ kB/gm)?.join(', ').replace(/\s+/g, ' ');

      const runId = await detach(child, { prompt: `big ${stalled}`, timeout: 120 });
      const port = Number(new URL(child.url).port);
      const sock = connect(port, '127.0.0.1');
      sock.pause(); // never reads
      sock.write(`GET /runs/${runId}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
      try {
        assert.ok(await waitFor(async () => (await row(child, runId)).status !== 'running', 60_000), 'the run ended');
        const r = await row(child, runId);
        assert.equal(r.status, 'completed', `the run completed within its timeout: ${r.status} ${r.errorCode}`);
        const drop = child.logs.find((l) => l.msg?.startsWith('client stopped reading its stream') && l.runId === runId);
        assert.ok(drop, 'the stalled reader was dropped');
        // What the server held for that reader when it let go: the bound plus at most one batch, not the 24 MiB.
        assert.ok(drop.bufferedBytes > 0 && drop.bufferedBytes <= MAX_BUFFERED_BYTES + 512 * 1024, `queued for the reader when dropped: ${drop.bufferedBytes} bytes`);
        t.diagnostic(`server memory after the run: ${memory()}`);
      } finally {
        sock.destroy();
      }
      // Its events are all there for a reader that does read.
      const all = await readFrames(await openEvents(child, runId));
      assert.equal(all.frames.filter((f) => f.event === 'assistant').length, 3000);
    } finally {
      child.proc.kill('SIGTERM');
      assert.equal(await child.exited, 0);
    }
  });
});

describe('shutdown and crash', () => {
  test('SIGTERM drains detached runs like streaming ones: one finishes in the grace period, one ends with SHUTDOWN; readers get the terminal event', async () => {
    const db = join(dir, 'drain.db');
    const child = await spawnServer({ ...modelEnv(), SANDCASTER_DB: db, SANDCASTER_SHUTDOWN_GRACE_SECONDS: '3' });
    const quick = fake.script('drain-quick', [bash('sleep 1; echo done'), { text: 'finished' }]);
    const slow = fake.script('drain-slow', [bash('echo started'), { hang: true }]);
    const before = fake.requests.length;
    const quickId = await detach(child, { prompt: `quick ${quick}` });
    const slowId = await detach(child, { prompt: `slow ${slow}` });
    const quickReader = readFrames(await openEvents(child, quickId));
    const slowReader = readFrames(await openEvents(child, slowId));
    assert.ok(await waitFor(async () => (await managedContainers(child.instanceId)).length === 2, 20_000), 'both sandboxes up');
    assert.ok(await waitFor(() => fake.requests.length >= before + 3, 20_000), 'the slow run waits on its second model call');
    child.proc.kill('SIGTERM');
    const q = await quickReader;
    assert.equal(assertContiguousToEnd(q.frames, 1).event, 'result');
    const sl = await slowReader;
    const terminal = assertContiguousToEnd(sl.frames, 1);
    assert.equal(terminal.data.code, 'SHUTDOWN');
    assert.equal(await child.exited, 0);
    assert.equal((await managedContainers(child.instanceId)).length, 0, 'every sandbox destroyed');
    const store = new RunStore(db);
    try {
      assert.equal(store.get(quickId)!.status, 'completed');
      assert.equal(store.get(slowId)!.errorCode, 'SHUTDOWN');
    } finally {
      store.close();
    }
  });

  test('SIGKILL mid-run: the next start closes the row as INTERRUPTED and its stored events stay readable, ending with error INTERRUPTED', async () => {
    const db = join(dir, 'crash.db');
    const tag = fake.script('crash', [bash('echo hi'), { hang: true }]);
    let first: ChildServer | undefined = await spawnServer({ ...modelEnv(), SANDCASTER_DB: db });
    let second: ChildServer | undefined;
    try {
      const runId = await detach(first, { prompt: `crash ${tag}` });
      const seen = await readFrames(await openEvents(first, runId), (f) => f.event === 'tool_result');
      // The events seen were stored (the writer commits within milliseconds); give it a moment by reading again.
      assert.ok(await waitFor(async () => {
        const db2 = new Database(db, { readonly: true });
        try {
          return (db2.prepare('SELECT MAX(last_id) AS n FROM run_events WHERE run_id = ?').get(runId) as { n: number | null }).n! >= seen.frames.length;
        } finally {
          db2.close();
        }
      }, 5000), 'the events seen are in the database');
      first.proc.kill('SIGKILL');
      await first.exited;
      first = undefined;

      second = await spawnServer({ ...modelEnv(), SANDCASTER_DB: db });
      const r = await row(second, runId);
      assert.equal(r.status, 'error');
      assert.equal(r.errorCode, 'INTERRUPTED');
      const log = await readFrames(await openEvents(second, runId));
      assert.ok(log.ended, 'the stream ends');
      const terminal = assertContiguousToEnd(log.frames, 1);
      assert.equal(terminal.event, 'error');
      assert.equal(terminal.data.code, 'INTERRUPTED');
      assert.equal(raw(log.frames.slice(0, seen.frames.length)), raw(seen.frames), 'the events sent before the crash, byte for byte');
      assert.equal((await second.fetch(`/runs/${runId}/cancel`, { method: 'POST' })).status, 409);
      assert.ok(await waitFor(async () => (await managedContainers(second!.instanceId)).length === 0, 20_000), 'the orphaned sandbox is reaped');
    } finally {
      first?.proc.kill('SIGKILL');
      if (second) {
        second.proc.kill('SIGTERM');
        assert.equal(await second.exited, 0);
      }
    }
  });
});
