// How the run store lays out prompts: the runs table keeps a preview and the length, the whole prompt lives
// in run_prompts, so listing runs never reads one. Databases of the older layouts (whole prompts in runs)
// are migrated when opened, and read back whole.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { RunStore, type RunRecord } from '../lib/store.ts';
import { promptPreview } from '../lib/store-runs.ts';

const tmpRoot = mkdtempSync(join(tmpdir(), 'sandcaster-store-layout-'));
after(() => rmSync(tmpRoot, { recursive: true, force: true }));
let n = 0;
const freshPath = () => join(tmpRoot, `db-${++n}.db`);

const overflowPages = (path: string, table: string): number => {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare(`SELECT COUNT(*) AS n FROM dbstat WHERE name = ? AND pagetype = 'overflow'`).get(table) as { n: number }).n;
  } finally {
    db.close();
  }
};

describe('prompt preview', () => {
  test('the preview and length count characters exactly as SQLite substr() and length() do', () => {
    const db = new Database(':memory:');
    const cases = [
      '',
      'short',
      'a'.repeat(500),
      'a'.repeat(501),
      'a'.repeat(499) + '😀' + 'tail', // a surrogate pair on the 500th character
      'a'.repeat(498) + '😀😀😀',
      'é'.repeat(700),
      'a\uD800b', // lone high surrogate
      'a'.repeat(499) + '\uD800' + 'b',
      '\uD800\uE000'.repeat(300), // a lone high surrogate before a character past the surrogates
      '\uDC00'.repeat(600), // lone low surrogates
      'x'.repeat(1_000_000) + '😀'.repeat(10),
    ];
    const sql = db.prepare(`SELECT substr(@t, 1, 500) AS preview, length(@t) AS chars`);
    const roundTrip = db.prepare(`SELECT ? AS v`);
    for (const text of cases) {
      const want = sql.get({ t: text }) as { preview: string; chars: number };
      const got = promptPreview(text);
      const label = `${text.slice(0, 12)}... (${text.length} UTF-16 units)`;
      assert.equal(got.chars, want.chars, `${label}: length in characters`);
      // Compared as SQLite stores it (a lone surrogate is stored as in the prompt's own column).
      assert.equal((roundTrip.get(got.preview) as { v: string }).v, want.preview, `${label}: preview`);
    }
    db.close();
  });
});

describe('runs and their prompts', () => {
  test('a page of runs with 100,000-character prompts: the runs table has no overflow page; get has the whole prompt', () => {
    const path = freshPath();
    const s = new RunStore(path);
    const prompt = (i: number) => `${i}:` + 'p'.repeat(100_000) + '😀';
    for (let i = 0; i < 20; i++) s.insert({ id: `run_${i}`, prompt: prompt(i), model: 'm', provider: 'anthropic', sandboxProvider: 'docker', startedAt: new Date(1e12 + i).toISOString() });
    const page = s.list(20);
    assert.deepEqual(page.map((r) => r.id), Array.from({ length: 20 }, (_, i) => `run_${19 - i}`));
    for (const r of page) {
      const i = Number(r.id.slice(4));
      assert.equal(r.prompt, prompt(i).slice(0, 500), `${r.id}: the first 500 characters`);
      assert.equal(r.promptChars, prompt(i).length - 1, `${r.id}: the length in characters (the emoji is one)`);
    }
    assert.equal(s.get('run_7')!.prompt, prompt(7), 'GET /runs/:id reads the whole prompt');
    s.close();
    // The list reads runs alone: rows without overflow pages cost what a short prompt costs.
    assert.equal(overflowPages(path, 'runs'), 0, 'no row of runs spills into overflow pages');
    assert.ok(overflowPages(path, 'run_prompts') >= 20 * 24, 'the prompts are in run_prompts');
  });
});

// The runs table of the first release, then the events_expired column and the tables added after it.
const FIRST_RELEASE = `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE runs (
    id TEXT PRIMARY KEY, prompt TEXT NOT NULL, model TEXT NOT NULL, provider TEXT NOT NULL,
    sandbox_provider TEXT NOT NULL, sandbox_id TEXT, status TEXT NOT NULL, error_code TEXT, error TEXT,
    cost_usd REAL, input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens INTEGER NOT NULL DEFAULT 0, cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    num_turns INTEGER NOT NULL DEFAULT 0, duration_secs REAL, files_count INTEGER NOT NULL DEFAULT 0,
    sandbox_count INTEGER NOT NULL DEFAULT 0, started_at TEXT NOT NULL, completed_at TEXT
  );
  CREATE INDEX runs_started ON runs (started_at DESC);
  CREATE INDEX runs_status ON runs (status, started_at DESC);
  INSERT INTO meta (key, value) VALUES ('instance_id', 'inst_0123456789abcdef');`;
const WITH_EXPIRY = `${FIRST_RELEASE}
  ALTER TABLE runs ADD COLUMN events_expired INTEGER NOT NULL DEFAULT 0;
  CREATE TABLE run_events (
    run_id TEXT NOT NULL, first_id INTEGER NOT NULL, last_id INTEGER NOT NULL, frames BLOB NOT NULL, PRIMARY KEY (run_id, last_id)
  );
  CREATE TABLE run_results (
    run_id TEXT PRIMARY KEY, result TEXT, structured INTEGER NOT NULL DEFAULT 0, structured_output TEXT,
    warnings TEXT NOT NULL DEFAULT '[]', last_event_id INTEGER, kept_bytes INTEGER
  );
  CREATE INDEX runs_kept ON runs (completed_at, id) WHERE events_expired = 0 AND completed_at IS NOT NULL;`;

const base = { model: 'claude-sonnet-4-6', provider: 'anthropic', sandboxProvider: 'docker', sandboxId: null, errorCode: null, error: null, costUsd: null };
const zero = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, numTurns: 0, durationSecs: null, filesCount: 0, sandboxCount: 0 };
const OLD_RUNS: RunRecord[] = [
  {
    ...base, id: 'run_done', prompt: 'fix the build', status: 'completed', sandboxId: 'ctr_1', costUsd: 0.25, inputTokens: 100, outputTokens: 20,
    cacheReadTokens: 5, cacheWriteTokens: 7, numTurns: 3, durationSecs: 4.5, filesCount: 2, sandboxCount: 1,
    startedAt: '2026-01-01T00:00:00.000Z', completedAt: '2026-01-01T00:00:04.500Z',
  },
  { ...base, ...zero, id: 'run_failed', prompt: 'é'.repeat(800), status: 'error', errorCode: 'TIMEOUT', error: 'too long', startedAt: '2026-01-02T00:00:00.000Z', completedAt: '2026-01-02T00:10:00.000Z' },
  // Two runs started in the same millisecond: the later insert is listed first (by rowid), before and after.
  { ...base, ...zero, id: 'run_big', prompt: 'x'.repeat(1_000_000) + '😀'.repeat(5), status: 'running', startedAt: '2026-01-03T00:00:00.000Z', completedAt: null },
  { ...base, ...zero, id: 'run_pair', prompt: 'a'.repeat(499) + '😀' + 'rest', status: 'running', startedAt: '2026-01-03T00:00:00.000Z', completedAt: null },
];
const OLD_COLUMNS = ['id', 'prompt', 'model', 'provider', 'sandbox_provider', 'sandbox_id', 'status', 'error_code', 'error', 'cost_usd', 'input_tokens', 'output_tokens', 'cache_read_tokens', 'cache_write_tokens', 'num_turns', 'duration_secs', 'files_count', 'sandbox_count', 'started_at', 'completed_at'];
const FIELDS: (keyof RunRecord)[] = ['id', 'prompt', 'model', 'provider', 'sandboxProvider', 'sandboxId', 'status', 'errorCode', 'error', 'costUsd', 'inputTokens', 'outputTokens', 'cacheReadTokens', 'cacheWriteTokens', 'numTurns', 'durationSecs', 'filesCount', 'sandboxCount', 'startedAt', 'completedAt'];

function writeOldDatabase(path: string, ddl: string): void {
  const db = new Database(path);
  db.exec(ddl);
  const insert = db.prepare(`INSERT INTO runs (${OLD_COLUMNS.join(', ')}) VALUES (${OLD_COLUMNS.map(() => '?').join(', ')})`);
  for (const r of OLD_RUNS) insert.run(...FIELDS.map((f) => r[f]));
  db.close();
}

for (const [layout, ddl] of [['the first release', FIRST_RELEASE], ['the layout with events_expired', WITH_EXPIRY]] as const) {
  describe(`a database of ${layout} (whole prompts in runs)`, () => {
    test('is migrated when opened: every run reads back whole, the list keeps its order and previews', () => {
      const path = freshPath();
      writeOldDatabase(path, ddl);
      if (ddl === WITH_EXPIRY) {
        const db = new Database(path);
        db.prepare(`UPDATE runs SET events_expired = 1 WHERE id = 'run_failed'`).run();
        db.prepare(`INSERT INTO run_events (run_id, first_id, last_id, frames) VALUES ('run_done', 1, 2, ?)`).run(Buffer.from('id: 1\n\nid: 2\n\n'));
        db.close();
      }
      const s = new RunStore(path);
      try {
        assert.equal(s.instanceId, 'inst_0123456789abcdef', 'the instance id is kept');
        for (const want of OLD_RUNS) assert.deepEqual(s.get(want.id), want, `${want.id} reads back whole`);
        const page = s.list(10);
        assert.deepEqual(page.map((r) => r.id), ['run_pair', 'run_big', 'run_failed', 'run_done'], 'newest first; same millisecond: the later insert first');
        for (const r of page) {
          const old = OLD_RUNS.find((o) => o.id === r.id)!;
          assert.equal(r.prompt, [...old.prompt].slice(0, 500).join(''), `${r.id}: the first 500 characters`);
          assert.equal(r.promptChars, [...old.prompt].length, `${r.id}: the length in characters`);
          assert.deepEqual({ ...r, prompt: old.prompt, promptChars: undefined }, { ...old, promptChars: undefined }, `${r.id}: every other column`);
        }
        assert.deepEqual(s.listBefore('run_big', 10)!.map((r) => r.id), ['run_failed', 'run_done'], 'the cursor follows the kept rowids');
        assert.deepEqual(s.list(10, 'running').map((r) => r.id), ['run_pair', 'run_big'], 'the status index is back');
        assert.equal(s.eventsExpired('run_failed'), ddl === WITH_EXPIRY, 'events_expired is carried over');
        assert.deepEqual(s.keptRuns({ completedAt: '', id: '' }, 10).map((r) => r.id), ddl === WITH_EXPIRY ? ['run_done'] : ['run_done', 'run_failed'], 'retention sees the same runs');
        if (ddl === WITH_EXPIRY) assert.equal(s.readEvents('run_done', 0, 1 << 20)[0]?.frames.toString(), 'id: 1\n\nid: 2\n\n', 'the event log is untouched');
        s.insert({ id: 'run_new', prompt: 'after the move', model: 'm', provider: 'anthropic', sandboxProvider: 'docker', startedAt: '2026-01-04T00:00:00.000Z' });
        assert.equal(s.get('run_new')?.prompt, 'after the move', 'new runs are stored in the new layout');
      } finally {
        s.close();
      }
      const db = new Database(path, { readonly: true });
      const columns = (db.prepare(`PRAGMA table_info(runs)`).all() as { name: string }[]).map((c) => c.name);
      const indexes = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'runs' AND sql IS NOT NULL ORDER BY name`).all() as { name: string }[]).map((r) => r.name);
      const tables = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'runs%'`).all() as { name: string }[]).map((r) => r.name);
      db.close();
      assert.ok(!columns.includes('prompt') && columns.includes('prompt_preview') && columns.includes('prompt_chars'), `runs holds a preview and a length, not the prompt: ${columns}`);
      assert.deepEqual(indexes, ['runs_kept', 'runs_started', 'runs_status']);
      assert.deepEqual(tables, ['runs'], 'the old table is gone');
      assert.equal(overflowPages(path, 'runs'), 0, 'the migrated runs table has no overflow page');
      // Opened again: nothing left to migrate, nothing changed.
      const again = new RunStore(path);
      try {
        for (const want of OLD_RUNS) assert.deepEqual(again.get(want.id), want, `${want.id} still whole after a second open`);
        assert.equal(again.list(10).length, 5);
      } finally {
        again.close();
      }
    });
  });
}
