// Benchmark 4 — real sandboxes at concurrency. N concurrent runs (N = 20, 100) through a real server process
// with real Docker sandboxes and the instant fake model of benchmark 1 (one `bash true` call, then an answer),
// against N concurrent raw engine-API lifecycles (benchmark 1's floor), and, for attribution, N concurrent raw
// lifecycles making every engine call a server run makes. Batches are interleaved, order rotating per round.
// Checks that every run completes and that no container of the server's instance is left after each batch.
// Run: npx tsx bench/docker-concurrency.ts [--n 20,100] [--rounds 2]
import { parseArgs } from 'node:util';
import { startFakeAnthropic } from '../tests/fixtures/fake-models.ts';
import { cleanupInstance, fmt, loadLine, loadMeter, machineLine, managedContainers, managedVolumes, median, now, startServerChild, streamRun, table, verdict } from './lib.ts';
import { engineCallsLifecycle, floorInstance, floorLifecycle, oneToolCallScript } from './floor.ts';

const { values } = parseArgs({ options: { n: { type: 'string', default: '20,100' }, rounds: { type: 'string', default: '2' } } });
const SIZES = values.n!.split(',').map(Number);
const ROUNDS = Number(values.rounds);

const fake = await startFakeAnthropic(oneToolCallScript);
const server = await startServerChild({
  env: { ANTHROPIC_API_KEY: 'sk-bench-not-a-key', ANTHROPIC_BASE_URL: fake.url, SANDCASTER_MAX_CONCURRENT_RUNS: String(Math.max(...SIZES) * 2) },
});

interface Batch {
  n: number;
  kind: 'server' | 'floor' | 'calls';
  wallMs: number;
  ok: number;
  left: number;
  errors: string[];
}

async function batch(n: number, kind: Batch['kind']): Promise<Batch> {
  const errors: string[] = [];
  const t = now();
  let ok = 0;
  if (kind === 'server') {
    const outs = await Promise.all(Array.from({ length: n }, () => streamRun(server.url, { prompt: 'run true', model: 'sonnet' })));
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
  const left = kind === 'server' ? (await managedContainers(server.instanceId)).length + (await managedVolumes(server.instanceId)) : 0;
  return { n, kind, wallMs, ok, left, errors };
}

const batches: Batch[] = [];
let load;
try {
  await batch(5, 'server'); // warm-up
  await batch(5, 'floor');
  const meter = loadMeter(() => [server.pid]);
  const kinds = ['server', 'floor', 'calls'] as const;
  for (const n of SIZES) {
    for (let r = 0; r < ROUNDS; r++) {
      for (let k = 0; k < kinds.length; k++) batches.push(await batch(n, kinds[(r + k) % kinds.length]!));
    }
  }
  load = meter();
} finally {
  await server.stop();
  await fake.close();
  await cleanupInstance(floorInstance);
}

console.log(`\n## 4. Real sandboxes at concurrency (${ROUNDS} rounds per N; batches interleaved)\n`);
const rows = SIZES.map((n) => {
  const of = (kind: Batch['kind']) => batches.filter((b) => b.n === n && b.kind === kind);
  const s = of('server');
  const f = of('floor');
  const c = of('calls');
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
    ],
    ratio: sMed / fMed,
    allOk: s.every((b) => b.ok === n) && f.every((b) => b.ok === n),
    left: s.reduce((a, b) => a + b.left, 0),
  };
});
console.log(
  table(
    ['N', 'server runs completed', 'containers+volumes left', 'server wall ms', 'raw floor wall ms', 'server / floor', 'same engine calls raw, wall ms', 'server / same calls'],
    rows.map((r) => r.cells),
  ),
);
for (const b of batches) for (const e of b.errors.slice(0, 3)) console.log(`  N=${b.n} ${b.kind}: ${e}`);
console.log('');
for (const r of rows) {
  console.log(`N=${r.n}: all complete ${verdict(r.allOk)}; zero left ${verdict(r.left === 0)}; server/floor < 1.15 ${verdict(r.ratio < 1.15)} (${fmt(r.ratio, 2)})`);
}
console.log(`server warnings/errors logged: ${server.problems.length}${server.problems.length ? ` (first: ${JSON.stringify(server.problems[0]).slice(0, 300)})` : ''}`);
console.log(loadLine(load!) + ' (everything else includes the Docker engine)');
console.log(await machineLine());
