#!/usr/bin/env node
// `npm run coverage`: runs the unit suites (`npm run test:unit`, no Docker) under Node's built-in coverage
// (--experimental-test-coverage, through tsx's source maps) and prints the line coverage of each file under
// lib/ and providers/ they load, with the total per folder. docs/testing.md records the figures, so a later
// change can see whether coverage of the pure modules dropped. `--all` prints every file, tests included.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const run = spawnSync(process.execPath, [join(root, 'tests/run.mjs'), '--unit', '--experimental-test-coverage', '--enable-source-maps'], {
  cwd: root,
  encoding: 'utf8',
  maxBuffer: 256 * 1024 * 1024,
});
const out = `${run.stdout}${run.stderr}`;
const summary = out.split('\n').filter((l) => /^# (tests|pass|fail|cancelled) /.test(l));
if (run.status !== 0) {
  process.stdout.write(out);
  console.error(`coverage: the unit suites failed (exit ${run.status}); no figures`);
  process.exit(run.status ?? 1);
}

/** Rows of Node's report: `# file | line % | branch % | funcs % | uncovered lines`. */
const rows = [];
for (const line of out.slice(out.indexOf('# start of coverage report')).split('\n')) {
  const m = /^# (\S+)\s*\|\s*([\d.]+) \|\s*([\d.]+) \|\s*([\d.]+) \|(.*)$/.exec(line);
  if (m && m[1] !== 'all' && m[1] !== 'file') rows.push({ file: m[1], line: Number(m[2]), uncovered: m[5].trim() });
}
if (rows.length === 0) {
  process.stdout.write(out);
  console.error('coverage: no coverage report in the output (Node 20+ with --experimental-test-coverage?)');
  process.exit(1);
}

// A folder's total is exact: Node counts every line of a file, and lists the uncovered ones as ranges.
const uncoveredCount = (ranges) =>
  ranges
    .split(/\s+/)
    .filter(Boolean)
    .reduce((n, r) => {
      const [a, b = a] = r.split('-').map(Number);
      return n + (b - a + 1);
    }, 0);
const linesOf = (file) => readFileSync(join(root, file), 'utf8').replace(/\n$/, '').split('\n').length;

const all = process.argv.includes('--all');
console.log(summary.join('\n'));
for (const folder of ['lib/', 'providers/']) {
  const mine = rows.filter((r) => r.file.startsWith(folder));
  let total = 0;
  let uncovered = 0;
  for (const r of mine) {
    total += linesOf(r.file);
    uncovered += uncoveredCount(r.uncovered);
  }
  console.log(`\n${folder}: ${((100 * (total - uncovered)) / total).toFixed(2)} % of ${total} lines in ${mine.length} files`);
  for (const r of mine) console.log(`  ${r.line.toFixed(2).padStart(6)}  ${r.file}`);
}
if (all) for (const r of rows.filter((r) => !/^(lib|providers)\//.test(r.file))) console.log(`  ${r.line.toFixed(2).padStart(6)}  ${r.file}`);
