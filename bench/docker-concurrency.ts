// Benchmark 4 — real sandboxes at concurrency. N concurrent runs (N = 20, 100) through a real server process
// with real Docker sandboxes and the instant fake model of benchmark 1 (one `bash true` call, then an answer),
// against N concurrent raw engine-API lifecycles (benchmark 1's floor), and, for attribution, N concurrent raw
// lifecycles making every engine call a server run makes. Batches are interleaved, order rotating per round.
// Checks that every run completes and that no container of the server's instance is left after each batch.
// For N up to --pool (default 20), also N runs on a second server with a warm pool of that size, full before
// each of its batches (an untimed wait on /health, as between bursts at a steady pace).
// Run: npx tsx bench/docker-concurrency.ts [--n 20,100] [--rounds 2] [--pool 20]
import { parseArgs } from 'node:util';
import { startFakeAnthropic } from '../tests/fixtures/fake-models.ts';
import { cleanupInstance, fmt, loadLine, loadMeter, machineLine, managedContainers, managedVolumes, median, now, sleep, startServerChild, streamRun, table, verdict, type ServerChild } from './lib.ts';
import { engineCallsLifecycle, floorInstance, floorLifecycle, oneToolCallScript } from './floor.ts';

const { values } = parseArgs({ options: { n: { type: 'string', default: '20,100' }, rounds: { type: 'string', default: '2' }, pool: { type: 'string', default: '20' } } });
const SIZES = values.n!.split(',').map(Number);
const ROUNDS = Number(values.rounds);
const POOL = Number(values.pool);

const fake = await startFakeAnthropic(oneToolCallScript);
const env = { ANTHROPIC_API_KEY: 'sk-bench-not-a-key', ANTHROPIC_BASE_URL: fake.url, SANDCASTER_MAX_CONCURRENT_RUNS: String(Math.max(...SIZES) * 2) };
const server = await startServerChild({ env });
const pooled = POOL > 0 ? await startServerChild({ env: { ...env, SANDCASTER_DOCKER_WARM_POOL: String(POOL) } }) : undefined;

async function poolFull(s: ServerChild): Promise<void> {
  for (;;) {
    const h = await (await fetch(`${s.url}/health`)).json();
    if (h.warmPool?.docker?.ready === POOL) return;
    await sleep(50);
  }
}

interface Batch {
  n: number;
  kind: 'server' | 'pooled' | 'floor' | 'calls';
  wallMs: number;
  ok: number;
  left: number;
  errors: string[];
}

async function batch(n: number, kind: Batch['kind']): Promise<Batch> {
  const errors: string[] = [];
  const target = kind === 'pooled' ? pooled! : server;
  if (kind === 'pooled') await poolFull(target);
  const t = now();
  let ok = 0;
  if (kind === 'server' || kind === 'pooled') {
    const outs = await Promise.all(Array.from({ length: n }, () => streamRun(target.url, { prompt: 'run true', model: 'sonnet' })));
    for (const o of outs) {
      if (o.status === 200 && o.terminal === 'result') ok++;
      else errors.push(`${o.status} ${o.terminal ?? o.failure} ${JSON.stringify(o.terminalData ?? {}).slice(0, 300)}`);
    }
  } else {
    const fn = kind === 'floor' ? floorLifecycle : engineCallsLifecycle;
    const outs = await Promise.allSettled(Array.from({ length: n }, () => fn()));
    for (const o of outs) o.status === 'fulfilled' ? ok++ : errors.push(String(o.reason));
  }
  const wallMs = now() - t;
  // The pooled server keeps its POOL idle sandboxes: what is left beyond them is a leak.
  const leftOf = async (s: ServerChild) => (await managedContainers(s.instanceId)).length;
  const left = kind === 'server' ? (await leftOf(server)) + (await managedVolumes(server.instanceId)) : kind === 'pooled' ? Math.max(0, (await leftOf(target)) - POOL) : 0;
  return { n, kind, wallMs, ok, left, errors };
}

const batches: Batch[] = [];
let load;
try {
  await batch(5, 'server'); // warm-up
  await batch(5, 'floor');
  if (pooled) await batch(5, 'pooled');
  const meter = loadMeter(() => [server.pid, ...(pooled ? [pooled.pid] : [])]);
  for (const n of SIZES) {
    const kinds = n <= POOL ? (['server', 'pooled', 'floor', 'calls'] as const) : (['server', 'floor', 'calls'] as const);
    for (let r = 0; r < ROUNDS; r++) {
      for (let k = 0; k < kinds.length; k++) batches.push(await batch(n, kinds[(r + k) % kinds.length]!));
    }
  }
  load = meter();
} finally {
  await server.stop();
  await pooled?.stop();
  await fake.close();
  await cleanupInstance(floorInstance);
}

console.log(`\n## 4. Real sandboxes at concurrency (${ROUNDS} rounds per N; batches interleaved)\n`);
const rows = SIZES.map((n) => {
  const of = (kind: Batch['kind']) => batches.filter((b) => b.n === n && b.kind === kind);
  const s = of('server');
  const f = of('floor');
  const c = of('calls');
  const p = of('pooled');
  const sMed = median(s.map((b) => b.wallMs));
  const fMed = median(f.map((b) => b.wallMs));
  const cMed = median(c.map((b) => b.wallMs));
  return {
    n,
    cells: [
      n,
      `${s.reduce((a, b) => a + b.ok, 0)}/${n * s.length}`,
      s.reduce((a, b) => a + b.left, 0),
      s.map((b) => fmt(b.wallMs, 0)).join(', '),
      f.map((b) => fmt(b.wallMs, 0)).join(', '),
      fmt(sMed / fMed, 2),
      c.map((b) => fmt(b.wallMs, 0)).join(', '),
      fmt(sMed / cMed, 2),
      p.length ? `${p.map((b) => fmt(b.wallMs, 0)).join(', ')} (${p.reduce((a, b) => a + b.ok, 0)}/${n * p.length}, ${p.reduce((a, b) => a + b.left, 0)} left)` : '-',
      p.length ? fmt(median(p.map((b) => b.wallMs)) / fMed, 2) : '-',
    ],
    ratio: sMed / fMed,
    poolRatio: p.length ? median(p.map((b) => b.wallMs)) / fMed : NaN,
    poolOk: p.every((b) => b.ok === n && b.left === 0),
    allOk: s.every((b) => b.ok === n) && f.every((b) => b.ok === n),
    left: s.reduce((a, b) => a + b.left, 0),
  };
});
console.log(
  table(
    ['N', 'server runs completed', 'containers+volumes left', 'server wall ms', 'raw floor wall ms', 'server / floor', 'same engine calls raw, wall ms', 'server / same calls', `warm pool ${POOL}, wall ms`, 'pooled / floor'],
    rows.map((r) => r.cells),
  ),
);
for (const b of batches) for (const e of b.errors.slice(0, 3)) console.log(`  N=${b.n} ${b.kind}: ${e}`);
console.log('');
for (const r of rows) {
  const pool = Number.isNaN(r.poolRatio) ? '' : `; warm pool ${POOL}: all complete, 0 left ${verdict(r.poolOk)}, pooled/floor < 0.7 ${verdict(r.poolRatio < 0.7)} (${fmt(r.poolRatio, 2)})`;
  console.log(`N=${r.n}: all complete ${verdict(r.allOk)}; zero left ${verdict(r.left === 0)}; server/floor < 1.10 ${verdict(r.ratio < 1.1)} (${fmt(r.ratio, 2)})${pool}`);
}
const problems = [...server.problems, ...(pooled?.problems ?? [])];
console.log(`server warnings/errors logged: ${problems.length}${problems.length ? ` (first: ${JSON.stringify(problems[0]).slice(0, 300)})` : ''}`);
console.log(loadLine(load!) + ' (everything else includes the Docker engine)');
console.log(await machineLine());
