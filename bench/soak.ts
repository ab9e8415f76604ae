// Soak (issue 4): N runs (default 200) at concurrency C (default 20) against a real server process, real Docker
// sandboxes and the fake Anthropic API, with a seeded mix of
//   normal      a tool call that writes a file (an artifact), then an answer            -> completed
//   disconnect  a tool call of `sleep 30`; the client hangs up at a random moment 0-2.5 s -> cancelled
//   timeout     `timeout: 5` and a model that keeps calling `sleep 600`                  -> error TIMEOUT
//   model 500   a tool call, then the model API answers 500 (the SDK retries, then gives up) -> error MODEL_ERROR
//   model 400   the model API refuses the first call with 400                          -> error MODEL_ERROR
// Then prints runs completed / cancelled / errored, runs lost (rows still `running` once every client is done
// and the server has drained, read from its SQLite file with lib/store.ts), containers and volumes left of the
// server's instance, sandboxes the reaper had to remove (a leak caught late), and the server's RSS.
// Exits 1 if any run is lost, any container or volume is left, or the reaper found anything.
// Run: npx tsx bench/soak.ts [--runs 200] [--concurrency 20] [--seed 1]
import { parseArgs } from 'node:util';
import { RunStore } from '../lib/store.ts';
import { startFakeAnthropic, type FakeTurn } from '../tests/fixtures/fake-models.ts';
import { cleanupInstance, fmt, loadLine, loadMeter, machineLine, managedContainers, managedVolumes, now, pool, rssMb, sleep, startServerChild, streamRun, table, verdict, type RunOutcome } from './lib.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '200' }, concurrency: { type: 'string', default: '20' }, seed: { type: 'string', default: '1' } } });
const RUNS = Number(values.runs);
const CONCURRENCY = Number(values.concurrency);

// A small seeded PRNG (mulberry32), so every soak runs the same mix in the same order.
let seed = Number(values.seed) >>> 0;
const random = () => {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

const KINDS = ['normal', 'disconnect', 'timeout', 'model500', 'model400'] as const;
type Kind = (typeof KINDS)[number];
const SHARE: Record<Kind, number> = { normal: 0.4, disconnect: 0.2, timeout: 0.15, model500: 0.125, model400: 0.125 };
const EXPECTED: Record<Kind, string> = { normal: 'completed', disconnect: 'cancelled', timeout: 'error TIMEOUT', model500: 'error MODEL_ERROR', model400: 'error MODEL_ERROR' };

const plan: Kind[] = [];
for (const k of KINDS) for (let i = 0; i < Math.round(SHARE[k] * RUNS); i++) plan.push(k);
while (plan.length < RUNS) plan.push('normal');
plan.length = RUNS;
for (let i = plan.length - 1; i > 0; i--) {
  const j = Math.floor(random() * (i + 1));
  [plan[i], plan[j]] = [plan[j]!, plan[i]!];
}
const disconnectAt = plan.map(() => Math.floor(random() * 2500));

const bash = (command: string): FakeTurn => ({ toolCalls: [{ name: 'bash', input: { command } }] });
const fake = await startFakeAnthropic((body: any) => {
  const first = body.messages[0].content;
  const prompt: string = typeof first === 'string' ? first : first.map((b: { text?: string }) => b.text ?? '').join('');
  const kind = /kind:(\w+)/.exec(prompt)![1] as Kind;
  const turn = body.messages.filter((m: { role: string }) => m.role === 'assistant').length + 1;
  switch (kind) {
    case 'normal':
      return turn === 1 ? bash('echo soak > out.txt') : { text: 'done' };
    case 'disconnect':
      return turn === 1 ? bash('sleep 30') : { text: 'done' };
    case 'timeout':
      return bash('sleep 600');
    case 'model500':
      return turn === 1 ? bash('true') : { error: { status: 500 } };
    case 'model400':
      return { error: { status: 400 } };
  }
});
const server = await startServerChild({ env: { ANTHROPIC_API_KEY: 'sk-bench-not-a-key', ANTHROPIC_BASE_URL: fake.url } });

const outcomes: (RunOutcome & { kind: Kind; prompt: string; index: number })[] = [];
const meter = loadMeter(() => [server.pid]);
const t0 = now();
let peakRss = 0;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssMb(server.pid).rss)), 100);
let exitCode = 1;
try {
  await pool(plan, CONCURRENCY, async (kind, i) => {
    const body = { prompt: `soak run ${i} kind:${kind}`, model: 'sonnet', ...(kind === 'timeout' ? { timeout: 5 } : {}) };
    const out = await streamRun(server.url, body, kind === 'disconnect' ? { disconnectAfterMs: disconnectAt[i] } : {});
    outcomes.push({ ...out, kind, prompt: body.prompt, index: i });
  });
  const clientsDoneS = (now() - t0) / 1000;

  // Let the server finish what it is still doing (disconnected runs destroy their sandbox within 2 s).
  const store = new RunStore(server.db);
  let running = store.list(200, 'running').length;
  for (let waited = 0; running > 0 && waited < 10_000; waited += 100) {
    await sleep(100);
    running = store.list(200, 'running').length;
  }
  const lost = running;
  const containersLeft = (await managedContainers(server.instanceId)).length;
  const volumesLeft = await managedVolumes(server.instanceId);
  const rss = rssMb(server.pid);
  const load = meter();
  clearInterval(sampler);

  const rows = store.list(200 + RUNS);
  store.close();
  // Matched by prompt: a client that hung up before the response headers never saw its run id.
  const byPrompt = new Map(rows.map((r) => [r.prompt, r]));
  const statusOf = (o: (typeof outcomes)[number]) => {
    const r = byPrompt.get(o.prompt);
    return r ? `${r.status}${r.errorCode ? ` ${r.errorCode}` : ''}` : `no row (HTTP ${o.status} ${o.failure ?? ''})`;
  };
  const count = (s: string) => rows.filter((r) => r.status === s).length;
  const reaped = server.problems.filter((p) => /reaped/.test(String(p.msg)));
  const unexpected = outcomes.filter((o) => statusOf(o) !== EXPECTED[o.kind]);
  const rejected = outcomes.filter((o) => o.status === 429).length;

  console.log(`\n## 6. Soak: ${RUNS} runs at concurrency ${CONCURRENCY} (real server, real Docker, fake model; seed ${values.seed})\n`);
  console.log(
    table(
      ['kind', 'runs', 'expected row', 'as expected'],
      KINDS.map((k) => {
        const of = outcomes.filter((o) => o.kind === k);
        return [k, of.length, EXPECTED[k], `${of.filter((o) => statusOf(o) === EXPECTED[k]).length}/${of.length}`];
      }),
    ),
  );
  console.log('');
  console.log(
    table(
      ['runs', 'completed', 'cancelled', 'errored', 'rejected 429', 'runs lost', 'containers left', 'volumes left', 'reaped late', 'server RSS MiB (end / peak)', 'wall s'],
      [[RUNS, count('completed'), count('cancelled'), count('error'), rejected, lost, containersLeft, volumesLeft, reaped.length, `${fmt(rss.rss, 0)} / ${fmt(Math.max(peakRss, rss.peak), 0)}`, fmt(clientsDoneS, 1)]],
    ),
  );
  for (const o of unexpected.slice(0, 10)) {
    const r = byPrompt.get(o.prompt);
    const extra = o.kind === 'disconnect' ? ` (client hung up at ${disconnectAt[o.index]} ms, ${o.status ? `after the response headers (HTTP ${o.status})` : 'before any response header'}; row ${r?.startedAt} -> ${r?.completedAt})` : '';
    console.log(`  unexpected: ${o.kind} run ${r?.id}: ${statusOf(o)}${extra} ${JSON.stringify(o.terminalData ?? {}).slice(0, 200)}`);
  }
  console.log(`server warnings/errors logged: ${server.problems.length}`);
  for (const p of server.problems.slice(0, 10)) console.log(`  ${JSON.stringify(p).slice(0, 300)}`);
  const pass = lost === 0 && containersLeft === 0 && volumesLeft === 0 && reaped.length === 0;
  console.log(`\ntarget 0 lost, 0 left: ${verdict(pass)}${unexpected.length ? `; ${unexpected.length} runs ended otherwise than expected` : ''}`);
  console.log(loadLine(load) + ' (everything else includes the Docker engine)');
  console.log(await machineLine());
  exitCode = pass ? 0 : 1;
} finally {
  clearInterval(sampler);
  await server.stop();
  await fake.close();
  await cleanupInstance(server.instanceId); // whatever was left has been counted above
}
process.exit(exitCode);
