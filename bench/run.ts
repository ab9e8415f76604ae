// `npm run bench`: prepares the Docker engine and the test image, then runs every benchmark in turn, each in
// its own process, and prints how long each took. Not part of `npm test`. Figures and their reading are in
// BENCHMARKS.md. A benchmark that misses a target still exits 0; a crash, or a soak that loses a run or leaves
// a container, makes this exit 1.
// Run: npm run bench [-- name ...]   (names: overhead warm-pool first-tool exec concurrency docker-concurrency sse-throughput soak)
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { ROOT, fmt, loadLine, loadMeter, machineLine, now, sleep } from './lib.ts';

const ALL = [
  ['overhead', 'bench/overhead.ts'],
  ['warm-pool', 'bench/warm-pool.ts'],
  ['first-tool', 'bench/first-tool.ts'],
  ['exec', 'bench/exec.ts'],
  ['concurrency', 'bench/concurrency.ts'],
  ['docker-concurrency', 'bench/docker-concurrency.ts'],
  ['sse-throughput', 'bench/sse-throughput.ts'],
  ['soak', 'bench/soak.ts'],
] as const;

const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !ALL.some(([n]) => n === w));
if (unknown.length) {
  process.stderr.write(`bench: unknown benchmark ${unknown.join(', ')}; known: ${ALL.map(([n]) => n).join(' ')}\n`);
  process.exit(2);
}
const chosen = wanted.length ? ALL.filter(([n]) => wanted.includes(n)) : ALL;

const setup = spawnSync('bash', ['tests/setup-docker.sh'], { cwd: ROOT, stdio: 'inherit' });
if (setup.status !== 0) process.exit(setup.status ?? 1);

// Shared machines drift: wait (up to a minute) for other processes to calm down, and say how busy it was.
for (let waited = 0; ; waited += 2) {
  const m = loadMeter(() => []);
  await sleep(2000);
  const l = m();
  if (l.otherCores < 0.3 || waited >= 60) {
    console.log(`before starting: ${loadLine(l)}${l.otherCores >= 0.3 ? ' — the machine is busy; figures will be slower and noisier' : ''}`);
    break;
  }
}
console.log(await machineLine());

const t0 = now();
const times: [string, number, number | null][] = [];
for (const [name, file] of chosen) {
  console.log(`\n=== ${name}: node --import tsx ${file}`);
  const t = now();
  const child = spawn(process.execPath, ['--import', 'tsx', file], { cwd: ROOT, stdio: 'inherit' });
  const [code] = (await once(child, 'exit')) as [number | null];
  times.push([name, (now() - t) / 1000, code]);
}
console.log('\n=== summary');
for (const [name, s, code] of times) console.log(`${name.padEnd(20)} ${fmt(s, 1).padStart(6)} s  ${code === 0 ? 'ok' : `exit ${code}`}`);
console.log(`${'total'.padEnd(20)} ${fmt((now() - t0) / 1000, 1).padStart(6)} s`);
process.exit(times.every(([, , code]) => code === 0) ? 0 : 1);
