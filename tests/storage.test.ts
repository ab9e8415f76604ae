// The database under stress: one process per database file, and storage failures that must never cost a
// client its terminal event or leave a sandbox behind.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startFakeAnthropic, type FakeModelServer } from './fixtures/fake-models.ts';
import { spawnServer } from './helpers/child.ts';
import { assertWellFormedRun, readEvents } from './helpers/sse.ts';
import { managedContainers, startTestServer, waitFor } from './helpers/server.ts';

let fake: FakeModelServer;
let dir: string;
before(async () => {
  fake = await startFakeAnthropic();
  dir = mkdtempSync(join(tmpdir(), 'sandcaster-storage-'));
});
after(async () => {
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
});

const modelEnv = () => ({ ANTHROPIC_API_KEY: 'sk-ant-storage-test-key', ANTHROPIC_BASE_URL: fake.url, SANDCASTER_SANDBOX_PROVIDER: 'docker' });

/** Holds SQLite's write lock on `path` from another connection, as a backup tool or a stray sqlite3 shell would. */
function holdWriteLock(path: string): () => void {
  const db = new Database(path);
  db.exec('BEGIN EXCLUSIVE');
  return () => {
    db.exec('ROLLBACK');
    db.close();
  };
}

describe('one process per database', () => {
  test('a second server on the same file is refused naming the file and the pid; after a SIGKILL the next start recovers', async () => {
    const db = join(dir, 'one.db');
    fake.setScript([{ toolCalls: [{ name: 'bash', input: { command: 'echo started' } }] }, { hang: true }]);
    const requestsBefore = fake.requests.length;
    const first = await spawnServer({ ...modelEnv(), SANDCASTER_DB: db });
    const res = await first.fetch('/query', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'x', model: 'haiku' }) });
    const runId = res.headers.get('x-run-id')!;
    const stream = readEvents(res).catch(() => 'cut'); // kept open: a disconnect would cancel the run
    try {
      assert.ok(await waitFor(() => fake.requests.length >= requestsBefore + 2, 10_000), 'the run reached its second model turn (sandbox made, tool run)');

      await assert.rejects(spawnServer({ ...modelEnv(), SANDCASTER_DB: db }), (err: Error) => {
        assert.match(err.message, /exited \(1\)/, `second server: ${err.message}`);
        assert.ok(err.message.includes(db), `the message names the file: ${err.message}`);
        assert.ok(err.message.includes(`pid ${first.proc.pid}`), `the message names the holder's pid ${first.proc.pid}: ${err.message}`);
        return true;
      });
      // The first server is untouched: its run is still running and its sandbox alive.
      assert.equal((await first.fetch('/health')).status, 200);
      assert.equal((await (await first.fetch(`/runs/${runId}`)).json()).status, 'running');
      assert.equal((await managedContainers(first.instanceId)).length, 1, 'the first server keeps its sandbox');

    } finally {
      first.proc.kill('SIGKILL');
      await first.exited;
    }
    assert.equal(await stream, 'cut', 'the SIGKILL cut the stream');
    const next = await spawnServer({ ...modelEnv(), SANDCASTER_DB: db });
    try {
      const row = await (await next.fetch(`/runs/${runId}`)).json();
      assert.equal(row.status, 'error');
      assert.equal(row.errorCode, 'INTERRUPTED');
      assert.ok(await waitFor(async () => (await managedContainers(first.instanceId)).length === 0, 15_000), 'the dead holder\'s sandbox is reaped');
    } finally {
      next.proc.kill('SIGTERM');
      assert.equal(await next.exited, 0);
    }
  });
});

describe('storage failures', () => {
  test('the database locked when the run ends: the stream still gets its one terminal event, the row is closed once the lock goes', async () => {
    const s = await startTestServer({ env: modelEnv() });
    try {
      fake.setScript([{ toolCalls: [{ name: 'bash', input: { command: 'echo hi' } }] }, { text: 'done', delayMs: 800 }]);
      const res = await s.query({ prompt: 'x', model: 'haiku' });
      const runId = res.headers.get('x-run-id')!;
      const events = readEvents(res);
      assert.ok(await waitFor(() => s.app.runs.size === 1), 'the run is in flight');
      assert.ok(await waitFor(async () => (await managedContainers(s.app.store.instanceId)).length === 1, 10_000), 'sandbox created');
      const release = holdWriteLock(join(s.dir, 'runs.db'));
      let released = false;
      try {
        const all = await events;
        const terminal = assertWellFormedRun(all);
        assert.equal(terminal.type, 'result', `terminal event: ${JSON.stringify(terminal)}`);
        assert.equal(s.app.store.get(runId)!.status, 'running', 'the row could not be closed while locked');
        release();
        released = true;
        assert.ok(await waitFor(() => s.app.store.get(runId)!.status === 'completed', 5000), `row closed after the lock went: ${s.app.store.get(runId)!.status}`);
      } finally {
        if (!released) release();
      }
      assert.equal((await managedContainers(s.app.store.instanceId)).length, 0, 'no sandbox left');
    } finally {
      await s.stop();
    }
  });

  test('the database locked when a run would start: 503 STORAGE_ERROR, nothing created', async () => {
    const s = await startTestServer({ env: modelEnv() });
    const release = holdWriteLock(join(s.dir, 'runs.db'));
    try {
      const res = await s.query({ prompt: 'x', model: 'haiku' });
      assert.equal(res.status, 503);
      const body = await res.json();
      assert.equal(body.error.code, 'STORAGE_ERROR');
      assert.ok(body.error.hint, 'a hint says what to check');
      assert.equal(s.app.runs.size, 0);
      assert.equal((await managedContainers(s.app.store.instanceId)).length, 0);
    } finally {
      release();
      await s.stop();
    }
  });
});
