// The run list over huge prompts: 200 runs whose prompts are 1,000,000 characters each, inserted through the
// real RunStore into a fresh database file, then `list(200)` (the query behind GET /runs?limit=200, which runs
// on the main thread) timed over 20 calls, and `get(id)` (GET /runs/:id, which must return the whole prompt)
// for comparison. Prints the median and worst main-thread time and the bytes of the page as JSON. Only the
// RunStore API is used, so the same file runs against an older tree for a before/after figure.
// Run: npx tsx bench/runs-list.ts [--runs 200] [--chars 1000000] [--calls 20]
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { RunStore } from '../lib/store.ts';
import { fmt, median, now, quantile, table } from './lib.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '200' }, chars: { type: 'string', default: '1000000' }, calls: { type: 'string', default: '20' } } });
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

  console.log(`${RUNS} runs x ${CHARS.toLocaleString('en')}-character prompts inserted in ${fmt(insertMs, 0)} ms; database ${fmt(statSync(path).size / 2 ** 20)} MiB (+ WAL)`);
  console.log(
    table(
      ['call (main thread)', 'median ms', 'max ms', 'p90 ms', 'bytes as JSON'],
      [
        [`list(${RUNS})`, fmt(median(list.ms), 2), fmt(Math.max(...list.ms), 2), fmt(quantile(list.ms, 0.9), 2), list.bytes.toLocaleString('en')],
        ['get(id)', fmt(median(get.ms), 2), fmt(Math.max(...get.ms), 2), fmt(quantile(get.ms, 0.9), 2), get.bytes.toLocaleString('en')],
      ],
    ),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
