// Benchmark 3 — concurrency, server only. N concurrent streamed runs (N = 50, 200, 500), each 5 turns with a
// `bash` tool call in every turn but the last, against a fake Anthropic API that spaces its text deltas 20 ms
// apart and stamps each with the moment it wrote it (bench/stamped-model.ts, its own process). The real
// server runs as a child process with an in-process sandbox stand-in (bench/standin-server.ts), so the
// server is what is measured. Reports peak RSS and CPU of the server process (from /proc) and the delay
// from the fake writing a delta to this client reading it (same CLOCK_MONOTONIC in both processes).
//
// Arrivals: the N runs start at uniformly random moments within the first second (`--ramp-ms`), as
// independent clients would; `--lockstep` also measures N=max starting in the same millisecond, where every
// run hits its turn boundaries at the same moment (see BENCHMARKS.md for why both are shown).
// `--compare DIR` also measures a server from another checkout after each N (before/after a change).
// Run: npx tsx bench/concurrency.ts [--n 50,200,500] [--deltas 20] [--ramp-ms 1000] [--lockstep] [--compare DIR] [--cpu-prof]
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, cpuMs, fmt, loadLine, loadMeter, machineLine, median, now, quantile, rssMb, sleep, startServerChild, streamRun, table, verdict, type RunOutcome } from './lib.ts';

const PROFILE_DIR = join(tmpdir(), 'sandcaster-profiles'); // --cpu-prof: the server's profile goes here (summarise with bench/profile-top.ts)

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '50,200,500' },
    deltas: { type: 'string', default: '20' },
    'ramp-ms': { type: 'string', default: '1000' },
    lockstep: { type: 'boolean', default: false },
    compare: { type: 'string' },
    'cpu-prof': { type: 'boolean', default: false },
  },
});
const SIZES = values.n!.split(',').map(Number);
const TURNS = 5;
const DELTAS = Number(values.deltas);
const DELTA_MS = 20;
const RAMP_MS = Number(values['ramp-ms']);

const hrMs = () => Number(process.hrtime.bigint() / 1000n) / 1000;
const STAMP = /ts:([\d.]+)\|/;

async function startModel(): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'bench/stamped-model.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH!, TURNS: String(TURNS), DELTAS: String(DELTAS), DELTA_MS: String(DELTA_MS) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(createInterface({ input: proc.stdout! }), 'line')) as [string];
  return { url: JSON.parse(line).url, proc };
}

interface Row {
  label: string;
  n: number;
  completed: number;
  failed: string[];
  wallS: number;
  peakRss: number;
  cpuPerRun: number;
  serverCores: number;
  fakeCores: number;
  clientCores: number;
  otherCores: number;
  p50: number;
  p99: number;
  max: number;
  deltas: number;
  runP50: number;
}

async function measure(model: { url: string; proc: ChildProcess }, n: number, rampMs: number, root?: string): Promise<Row> {
  const server = await startServerChild({
    root,
    entry: 'bench/standin-server.ts',
    env: { ANTHROPIC_API_KEY: 'sk-bench-not-a-key', ANTHROPIC_BASE_URL: model.url, SANDCASTER_MAX_CONCURRENT_RUNS: String(Math.max(n, 32)) },
    nodeArgs: values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : [],
  });
  try {
    const body = { prompt: 'benchmark run', model: 'sonnet', maxTurns: TURNS + 1 };
    // Warm up: load the model client and JIT the hot paths before measuring.
    await Promise.all(Array.from({ length: 10 }, () => streamRun(server.url, body)));
    await sleep(200);
    const delays: number[] = [];
    let peakSampled = 0;
    const sampler = setInterval(() => (peakSampled = Math.max(peakSampled, rssMb(server.pid).rss)), 20);
    const cpu0 = cpuMs(server.pid);
    const fake0 = cpuMs(model.proc.pid!);
    const self0 = process.cpuUsage();
    const load = loadMeter(() => [server.pid, model.proc.pid!]);
    const t0 = now();
    const outcomes: RunOutcome[] = await Promise.all(
      Array.from({ length: n }, async () => {
        if (rampMs) await sleep(Math.random() * rampMs);
        return streamRun(server.url, body, {
          onEvent: (type, data) => {
            if (type !== 'assistant') return;
            const m = STAMP.exec(data);
            if (m) delays.push(hrMs() - Number(m[1]));
          },
        });
      }),
    );
    const wall = now() - t0;
    const cpu = cpuMs(server.pid) - cpu0;
    const self = process.cpuUsage(self0);
    const fake = cpuMs(model.proc.pid!) - fake0;
    const l = load();
    clearInterval(sampler);
    const ok = outcomes.filter((o) => o.status === 200 && o.terminal === 'result' && o.terminalData?.numTurns === TURNS);
    const failed = outcomes.filter((o) => !ok.includes(o)).map((o) => `${o.status} ${o.terminal ?? o.failure ?? ''} ${JSON.stringify(o.terminalData ?? {}).slice(0, 200)}`);
    return {
      label: (rampMs ? `arrivals over ${rampMs} ms` : 'lockstep (all at once)') + (root ? ` [${root}]` : ''),
      n,
      completed: ok.length,
      failed,
      wallS: wall / 1000,
      peakRss: Math.max(rssMb(server.pid).peak, peakSampled),
      cpuPerRun: cpu / n,
      serverCores: cpu / wall,
      fakeCores: fake / wall,
      clientCores: (self.user + self.system) / 1000 / wall,
      otherCores: l.otherCores,
      p50: median(delays),
      p99: quantile(delays, 0.99),
      max: Math.max(...delays),
      deltas: delays.length,
      runP50: median(ok.map((o) => o.endMs)),
    };
  } finally {
    await server.stop();
  }
}

const model = await startModel();
const rows: Row[] = [];
try {
  for (const n of SIZES) {
    rows.push(await measure(model, n, RAMP_MS));
    if (values.compare) rows.push(await measure(model, n, RAMP_MS, values.compare));
  }
  if (values.lockstep) rows.push(await measure(model, Math.max(...SIZES), 0));
} finally {
  model.proc.kill('SIGTERM');
}

const ideal = TURNS * (DELTAS - 1) * DELTA_MS;
console.log(
  `\n## 3. Concurrency, server only\n\n${TURNS} turns per run (${TURNS - 1} with a bash tool call), ${DELTAS} text deltas per turn ${DELTA_MS} ms apart ` +
    `(a run streams for at least ${ideal} ms); in-process sandbox stand-in; server, fake model and this client each in its own process.\n`,
);
console.log(
  table(
    ['N', 'start', 'completed', 'wall s', 'run p50 ms', 'server peak RSS MiB', 'server CPU ms/run', 'delay p50 ms', 'delay p99 ms', 'max ms', 'deltas', 'cores: server/fake/client/other'],
    rows.map((r) => [
      r.n,
      r.label,
      `${r.completed}/${r.n}`,
      fmt(r.wallS, 2),
      fmt(r.runP50, 0),
      fmt(r.peakRss, 0),
      fmt(r.cpuPerRun, 2),
      fmt(r.p50, 2),
      fmt(r.p99, 2),
      fmt(r.max, 1),
      r.deltas,
      `${fmt(r.serverCores, 2)}/${fmt(r.fakeCores, 2)}/${fmt(r.clientCores, 2)}/${fmt(r.otherCores, 2)}`,
    ]),
  ),
);
for (const r of rows) for (const f of r.failed.slice(0, 5)) console.log(`  N=${r.n} failed run: ${f}`);
const big = rows.find((r) => r.n === 500 && r.label === `arrivals over ${RAMP_MS} ms`);
if (big) {
  console.log(
    `\ntargets at N=500: all complete ${verdict(big.completed === 500)} (${big.completed}/500); server RSS < 400 MiB ${verdict(big.peakRss < 400)} (${fmt(big.peakRss, 0)}); ` +
      `p99 delay < 50 ms ${verdict(big.p99 < 50)} (${fmt(big.p99, 2)})`,
  );
  console.log(loadLine({ machineCores: big.serverCores + big.fakeCores + big.clientCores + big.otherCores, ourCores: big.serverCores + big.fakeCores + big.clientCores, otherCores: big.otherCores }) + ' (N=500 row)');
}
console.log(await machineLine());
