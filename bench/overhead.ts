// Benchmark 1 — server overhead. A real server process (server.ts, default configuration, real Docker provider)
// runs one agent run at a time against a fake Anthropic API that answers at once: first a `bash true` tool call,
// then a final answer. Interleaved with it (order alternating), the raw engine-API floor for the same sandbox
// lifecycle through dockerode, with the same hardening as the provider: create the container with its labelled
// named volume at /workspace, start it, exec `true` (create, start attached, read to the end, inspect), remove
// the container and the volume. Also reports how long the first SSE event (`run_started`) takes to arrive.
// For attribution it also times, interleaved: the raw engine calls a server run makes, and the same run on the
// server with an in-process sandbox stand-in (bench/standin-server.ts), i.e. the server alone.
// Run: npx tsx bench/overhead.ts [--rounds 30]
import { parseArgs } from 'node:util';
import { startFakeAnthropic } from '../tests/fixtures/fake-models.ts';
import { engineCallsLifecycle, floorInstance, floorLifecycle, oneToolCallScript, type Steps } from './floor.ts';
import { cleanupInstance, cpuMs, fmt, loadLine, loadMeter, machineLine, managedContainers, managedVolumes, median, now, quantile, startServerChild, streamRun, table, verdict } from './lib.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '30' } } });
const ROUNDS = Number(values.rounds);

const fake = await startFakeAnthropic(oneToolCallScript);
const server = await startServerChild({ env: { ANTHROPIC_API_KEY: 'sk-bench-not-a-key', ANTHROPIC_BASE_URL: fake.url }, keepLogs: true });
// The same server code with an in-process sandbox stand-in: what the server alone costs per run.
const standin = await startServerChild({ entry: 'bench/standin-server.ts', env: { ANTHROPIC_API_KEY: 'sk-bench-not-a-key', ANTHROPIC_BASE_URL: fake.url } });
const body = { prompt: 'run true', model: 'sonnet' };

async function serverRun(url = server.url): Promise<{ totalMs: number; firstMs: number }> {
  let exitCode: unknown;
  const out = await streamRun(url, body, {
    onEvent: (type, data) => {
      if (type === 'tool_result') exitCode = JSON.parse(data).exitCode;
    },
  });
  if (out.terminal !== 'result' || exitCode !== 0) throw new Error(`server run failed: ${out.status} ${JSON.stringify(out.terminalData)}`);
  return { totalMs: out.endMs, firstMs: out.firstEventMs };
}

const serverMs: number[] = [];
const firstMs: number[] = [];
const floorMs: number[] = [];
const callsMs: number[] = [];
const handlerMs: number[] = [];
const standinMs: number[] = [];
let serverCpuPerRun = NaN;
const floorSteps: Steps = {};
const callsSteps: Steps = {};
let load;
let left = -1;
try {
  for (let i = 0; i < 3; i++) {
    // warm-up
    await serverRun();
    await floorLifecycle();
    await engineCallsLifecycle();
    await serverRun(standin.url);
  }
  server.logs.length = 0;
  const meter = loadMeter(() => [server.pid]);
  const cpu0 = cpuMs(server.pid);
  const variants = ['server', 'floor', 'calls', 'standin'] as const;
  for (let i = 0; i < ROUNDS; i++) {
    for (let k = 0; k < variants.length; k++) {
      const which = variants[(i + k) % variants.length]!;
      if (which === 'server') {
        const r = await serverRun();
        serverMs.push(r.totalMs);
        firstMs.push(r.firstMs);
      } else if (which === 'standin') {
        standinMs.push((await serverRun(standin.url)).totalMs);
      } else {
        const t = now();
        await (which === 'floor' ? floorLifecycle(floorSteps) : engineCallsLifecycle(callsSteps));
        (which === 'floor' ? floorMs : callsMs).push(now() - t);
      }
    }
  }
  load = meter();
  serverCpuPerRun = (cpuMs(server.pid) - cpu0) / ROUNDS;
  left = (await managedContainers(server.instanceId)).length + (await managedVolumes(server.instanceId));
  // The server's own view: from the request reaching its handler to the SSE response (run_started queued).
  for (const l of server.logs) if (l.msg === 'request' && l.path === '/query') handlerMs.push(l.durationMs);
} finally {
  await server.stop();
  await standin.stop();
  await fake.close();
  await cleanupInstance(floorInstance);
}

const overhead = median(serverMs) - median(floorMs);
const ratio = median(serverMs) / median(floorMs);
// Pairwise: each server run against the floor run of the same round (the same moment's engine speed).
const pairs = serverMs.map((s, i) => s - floorMs[i]!);
const own = median(serverMs) - median(callsMs);
console.log(`\n## 1. Server overhead per run (${ROUNDS} rounds; server, floor and attribution runs interleaved)\n`);
console.log(
  table(
    ['measure', 'median ms', 'p90 ms', 'min ms'],
    [
      ['server run (POST /query to end of stream)', fmt(median(serverMs)), fmt(quantile(serverMs, 0.9)), fmt(Math.min(...serverMs))],
      ['raw engine-API floor (create+volume, start, exec true, remove)', fmt(median(floorMs)), fmt(quantile(floorMs, 0.9)), fmt(Math.min(...floorMs))],
      ['overhead, server - floor (of medians)', fmt(overhead), '', ''],
      ['overhead, pairwise (median of per-round differences)', fmt(median(pairs)), fmt(quantile(pairs, 0.9)), ''],
      ['server / floor (of medians)', fmt(ratio, 3), '', ''],
      ['first SSE event (run_started) after the request', fmt(median(firstMs), 2), fmt(quantile(firstMs, 0.9), 2), fmt(Math.min(...firstMs), 2)],
      ['  of which in the server handler (its request log durationMs)', fmt(median(handlerMs), 2), fmt(quantile(handlerMs, 0.9), 2), fmt(Math.min(...handlerMs), 2)],
      ['attribution: the same engine calls as a server run, raw', fmt(median(callsMs)), fmt(quantile(callsMs, 0.9)), fmt(Math.min(...callsMs))],
      ['server - those engine calls (HTTP, model turns, SQLite, Node)', fmt(own), '', ''],
      ['the same run with an in-process sandbox stand-in (server alone)', fmt(median(standinMs)), fmt(quantile(standinMs, 0.9)), fmt(Math.min(...standinMs))],
      ['CPU of the server process per Docker run (from /proc, mean)', fmt(serverCpuPerRun), '', ''],
    ],
  ),
);
console.log('\nwhere the time goes (median ms per step, raw dockerode):\n');
const stepNames = [...new Set([...Object.keys(callsSteps), ...Object.keys(floorSteps)])];
const cell = (steps: Steps, n: string) => (steps[n] ? fmt(median(steps[n]!)) : '-');
console.log(table(['engine call', 'floor', 'server-run calls'], stepNames.map((n) => [n, cell(floorSteps, n), cell(callsSteps, n)])));
console.log(
  `\ntargets: overhead < 20 ms ${verdict(overhead < 20)} (${fmt(overhead)}); server/floor < 1.10 ${verdict(ratio < 1.1)} (${fmt(ratio, 3)}); ` +
    `first SSE byte < 5 ms ${verdict(median(firstMs) < 5)} (${fmt(median(firstMs), 2)}); containers+volumes left by the server: ${left}`,
);
console.log(
  `server warnings/errors logged: ${server.problems.length}${server.problems.length ? ` (first: ${JSON.stringify(server.problems[0]).slice(0, 300)})` : ''}`,
);
console.log(loadLine(load!) + ' (everything else includes the Docker engine)');
console.log(await machineLine());
