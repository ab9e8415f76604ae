// The run list over huge prompts: 200 runs whose prompts are 1,000,000 characters each, inserted through the
// real RunStore into a fresh database file, then `list(200)` (the query behind GET /runs?limit=200, which runs
// on the main thread) timed over 20 calls, and `get(id)` (GET /runs/:id, which must return the whole prompt)
// for comparison. Prints the median and worst main-thread time and the bytes of the page as JSON. Only the
// RunStore API is used, so the same file runs against an older tree for a before/after figure.
// `--migration` also times opening a file of the layout that kept whole prompts in runs (the same huge runs
// plus 10,000 short ones), which moves the prompts to their own table, and the file's size before and after.
// Run: npx tsx bench/runs-list.ts [--runs 200] [--chars 1000000] [--calls 20] [--migration]
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { RunStore } from '../lib/store.ts';
import { fmt, median, now, quantile, table } from './lib.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '200' }, chars: { type: 'string', default: '1000000' }, calls: { type: 'string', default: '20' }, migration: { type: 'boolean', default: false } } });
const RUNS = Number(values.runs);
const CHARS = Number(values.chars);
const CALLS = Number(values.calls);

const dir = mkdtempSync(join(tmpdir(), 'sandcaster-bench-runs-list-'));
const path = join(dir, 'runs.db');
try {
  const store = new RunStore(path);
  const prompt = 'p'.repeat(CHARS - 10) + 'é'.repeat(10);
  const t0 = Date.now();
  const inserted = now();
  for (let i = 0; i < RUNS; i++) {
    store.insert({ id: `run_big${i}`, prompt, model: 'm', provider: 'anthropic', sandboxProvider: 'docker', startedAt: new Date(t0 + i).toISOString() });
  }
  const insertMs = now() - inserted;

  const time = (fn: () => unknown): { ms: number[]; bytes: number } => {
    const ms: number[] = [];
    let bytes = 0;
    for (let i = 0; i < CALLS; i++) {
      const t = now();
      const out = fn();
      ms.push(now() - t);
      bytes = Buffer.byteLength(JSON.stringify(out));
    }
    return { ms, bytes };
  };
  const list = time(() => store.list(RUNS));
  const get = time(() => store.get('run_big7'));
  store.close();

  console.log(`${RUNS} runs x ${CHARS.toLocaleString('en')}-character prompts inserted in ${fmt(insertMs, 0)} ms; database ${fmt(statSync(path).size / 2 ** 20)} MiB`);
  console.log(
    table(
      ['call (main thread)', 'median ms', 'max ms', 'p90 ms', 'bytes as JSON'],
      [
        [`list(${RUNS})`, fmt(median(list.ms), 2), fmt(Math.max(...list.ms), 2), fmt(quantile(list.ms, 0.9), 2), list.bytes.toLocaleString('en')],
        ['get(id)', fmt(median(get.ms), 2), fmt(Math.max(...get.ms), 2), fmt(quantile(get.ms, 0.9), 2), get.bytes.toLocaleString('en')],
      ],
    ),
  );
  if (values.migration) migration(join(dir, 'old.db'), prompt);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

function migration(oldPath: string, prompt: string): void {
  const db = new Database(oldPath);
  db.pragma('journal_mode = WAL');
  db.exec(`
    CREATE TABLE runs (
      id TEXT PRIMARY KEY, prompt TEXT NOT NULL, model TEXT NOT NULL, provider TEXT NOT NULL,
      sandbox_provider TEXT NOT NULL, sandbox_id TEXT, status TEXT NOT NULL, error_code TEXT, error TEXT,
      cost_usd REAL, input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0,
      cache_read_tokens INTEGER NOT NULL DEFAULT 0, cache_write_tokens INTEGER NOT NULL DEFAULT 0,
      num_turns INTEGER NOT NULL DEFAULT 0, duration_secs REAL, files_count INTEGER NOT NULL DEFAULT 0,
      sandbox_count INTEGER NOT NULL DEFAULT 0, started_at TEXT NOT NULL, completed_at TEXT,
      events_expired INTEGER NOT NULL DEFAULT 0
    );`);
  const insert = db.prepare(`INSERT INTO runs (id, prompt, model, provider, sandbox_provider, status, started_at) VALUES (?, ?, 'm', 'anthropic', 'docker', 'running', ?)`);
  db.transaction(() => {
    for (let i = 0; i < RUNS; i++) insert.run(`run_big${i}`, prompt, new Date(1e12 + i).toISOString());
    for (let i = 0; i < 10_000; i++) insert.run(`run_short${i}`, 'short', new Date(2e12 + i).toISOString());
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  const before = statSync(oldPath).size;
  const t = now();
  const store = new RunStore(oldPath);
  const openMs = now() - t;
  store.close(); // checkpoints the WAL into the file
  console.log(
    `migration: opening a file of the old layout (${RUNS} huge + 10,000 short runs) took ${fmt(openMs, 0)} ms; ` +
      `file ${fmt(before / 2 ** 20)} -> ${fmt(statSync(oldPath).size / 2 ** 20)} MiB`,
  );
}
