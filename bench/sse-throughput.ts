// Benchmark 5 — SSE throughput. One run whose model answer is 100,000 one-character text deltas, sent by the
// fake Anthropic API as fast as the socket takes them; the real server (child process, in-process sandbox
// stand-in) turns each into an `assistant` event. Measures events per second delivered to this client,
// over the streaming window (first delta read -> last delta read) and end to end (request -> `result`).
// Two servers of this tree run side by side, rounds interleaved: one storing every event in SQLite (as
// production always does) and one with storage off, so the cost of storing comes from one run (target: the
// stored rate above 150,000 events/s and at most 10% below the other).
// `--compare DIR` adds a server from another checkout (e.g. the code before a change) to the same rounds.
// Run: npx tsx bench/sse-throughput.ts [--deltas 100000] [--rounds 5] [--compare DIR] [--cpu-prof]
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startFakeAnthropic } from '../tests/fixtures/fake-models.ts';
import { cpuMs, fmt, loadLine, loadMeter, machineLine, median, now, startServerChild, streamRun, table, verdict, type ServerChild } from './lib.ts';

const PROFILE_DIR = join(tmpdir(), 'sandcaster-profiles'); // --cpu-prof: the server's profile goes here (summarise with bench/profile-top.ts)

const { values } = parseArgs({
  options: { deltas: { type: 'string', default: '100000' }, rounds: { type: 'string', default: '5' }, compare: { type: 'string' }, 'cpu-prof': { type: 'boolean', default: false } },
});
const DELTAS = Number(values.deltas);
const ROUNDS = Number(values.rounds);

const fake = await startFakeAnthropic(() => ({ text: Array.from({ length: DELTAS }, (_, i) => String.fromCharCode(97 + (i % 26))) }));
const start = (root?: string, storeEvents = true) =>
  startServerChild({
    root,
    entry: 'bench/standin-server.ts',
    env: { ANTHROPIC_API_KEY: 'sk-bench-not-a-key', ANTHROPIC_BASE_URL: fake.url, ...(storeEvents ? {} : { SANDCASTER_BENCH_STORE_EVENTS: '0' }) },
    nodeArgs: values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : [],
  });
const STORED = 'events stored';
const NOT_STORED = 'storage off';
const servers: { name: string; server: ServerChild }[] = [
  { name: STORED, server: await start() },
  { name: NOT_STORED, server: await start(undefined, false) },
];
if (values.compare) servers.push({ name: values.compare, server: await start(values.compare) });

interface Round {
  name: string;
  delivered: number;
  windowRate: number;
  e2eRate: number;
  e2eMs: number;
  serverCpuMs: number;
  ok: boolean;
}

async function round(name: string, server: ServerChild): Promise<Round> {
  let n = 0;
  let first = 0;
  let last = 0;
  let text = '';
  const cpu0 = cpuMs(server.pid);
  const out = await streamRun(server.url, { prompt: 'stream a lot', model: 'sonnet' }, {
    onEvent: (type, data) => {
      if (type !== 'assistant') return;
      if (n++ === 0) first = now();
      last = now();
      if (n <= 26) text += JSON.parse(data).content;
    },
  });
  return {
    name,
    delivered: n,
    windowRate: (n - 1) / ((last - first) / 1000),
    e2eRate: n / (out.endMs / 1000),
    e2eMs: out.endMs,
    serverCpuMs: cpuMs(server.pid) - cpu0,
    ok: out.terminal === 'result' && n === DELTAS && text === 'abcdefghijklmnopqrstuvwxyz'.slice(0, Math.min(26, DELTAS)),
  };
}

const rounds: Round[] = [];
let load;
try {
  for (const s of servers) await round(s.name, s.server); // warm-up
  const meter = loadMeter(() => servers.map((s) => s.server.pid));
  for (let i = 0; i < ROUNDS; i++) {
    const order = i % 2 ? [...servers].reverse() : servers;
    for (const s of order) rounds.push(await round(s.name, s.server));
  }
  load = meter();
} finally {
  for (const s of servers) await s.server.stop();
  await fake.close();
}

console.log(`\n## 5. SSE throughput (one stream of ${DELTAS.toLocaleString('en')} one-character deltas; ${ROUNDS} rounds after a warm-up)\n`);
console.log(
  table(
    ['server', 'round', 'events delivered', 'in order', 'events/s (stream window)', 'events/s (request to result)', 'request to result ms', 'server CPU ms'],
    rounds.map((r, i) => [r.name, Math.floor(i / servers.length) + 1, r.delivered, r.ok ? 'yes' : 'NO', fmt(r.windowRate, 0), fmt(r.e2eRate, 0), fmt(r.e2eMs, 0), fmt(r.serverCpuMs, 0)]),
  ),
);
console.log('');
const medianOf = (name: string) => median(rounds.filter((r) => r.name === name).map((r) => r.windowRate));
for (const s of servers) {
  const mine = rounds.filter((r) => r.name === s.name);
  const m = medianOf(s.name);
  console.log(
    `${s.name}: median ${fmt(m, 0)} events/s (stream window), ${fmt(median(mine.map((r) => r.e2eRate)), 0)} events/s request to result, ` +
      `server CPU ${fmt(median(mine.map((r) => r.serverCpuMs)) / (DELTAS / 1000), 2)} µs/event; target > 150,000/s ${verdict(m > 150_000 && mine.every((r) => r.ok))}`,
  );
}
const ratio = medianOf(STORED) / medianOf(NOT_STORED);
console.log(`storing events: ${fmt(ratio * 100, 1)}% of the rate without storage; target >= 90% ${verdict(ratio >= 0.9)}`);
console.log(loadLine(load!));
console.log(await machineLine());
