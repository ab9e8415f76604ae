// Soak (issue 4): N runs (default 200) at concurrency C (default 20) against a real server process, real Docker
// sandboxes and the fake Anthropic API, with a seeded mix of
//   normal      a tool call that writes a file (an artifact), then an answer            -> completed
//   disconnect  a tool call of `sleep 30`; the client hangs up at a random moment 0-2.5 s -> cancelled
//   timeout     `timeout: 5` and a model that keeps calling `sleep 600`                  -> error TIMEOUT
//   model 500   a tool call, then the model API answers 500 (the SDK retries, then gives up) -> error MODEL_ERROR
//   model 400   the model API refuses the first call with 400                          -> error MODEL_ERROR
//   detach      `detach: true`, then a reader follows GET /runs/:id/events from the start    -> completed
//   reattach    `onDisconnect: "continue"`; the client drops its stream after a few events and
//               reattaches with Last-Event-ID                                             -> completed
//   cancel      `detach: true`, a tool call of `sleep 30`, POST /runs/:id/cancel at a random moment
//               0-2.5 s, while a reader follows its events                                -> cancelled CANCELLED
// Every reader of /runs/:id/events must get ids with no gap and no duplicate, ending with one terminal event.
// Then prints runs completed / cancelled / errored, runs lost (rows still `running` once every client is done
// and the server has drained, read from its SQLite file with lib/store.ts), containers and volumes left of the
// server's instance, sandboxes the reaper had to remove (a leak caught late), and the server's RSS.
// Exits 1 if any run is lost, any container or volume is left, the reaper found anything, or a reader check failed.
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

const KINDS = ['normal', 'disconnect', 'timeout', 'model500', 'model400', 'detach', 'reattach', 'cancel'] as const;
type Kind = (typeof KINDS)[number];
const SHARE: Record<Kind, number> = { normal: 0.25, disconnect: 0.15, timeout: 0.1, model500: 0.1, model400: 0.1, detach: 0.1, reattach: 0.1, cancel: 0.1 };
const EXPECTED: Record<Kind, string> = {
  normal: 'completed',
  disconnect: 'cancelled CANCELLED',
  timeout: 'error TIMEOUT',
  model500: 'error MODEL_ERROR',
  model400: 'error MODEL_ERROR',
  detach: 'completed',
  reattach: 'completed',
  cancel: 'cancelled CANCELLED',
};

const plan: Kind[] = [];
for (const k of KINDS) for (let i = 0; i < Math.round(SHARE[k] * RUNS); i++) plan.push(k);
while (plan.length < RUNS) plan.push('normal');
plan.length = RUNS;
for (let i = plan.length - 1; i > 0; i--) {
  const j = Math.floor(random() * (i + 1));
  [plan[i], plan[j]] = [plan[j]!, plan[i]!];
}
const disconnectAt = plan.map(() => Math.floor(random() * 2500));
const dropAfter = plan.map(() => 2 + Math.floor(random() * 5)); // reattach: events read before the client drops

const bash = (command: string): FakeTurn => ({ toolCalls: [{ name: 'bash', input: { command } }] });
const fake = await startFakeAnthropic((body: any) => {
  const first = body.messages[0].content;
  const prompt: string = typeof first === 'string' ? first : first.map((b: { text?: string }) => b.text ?? '').join('');
  const kind = /kind:(\w+)/.exec(prompt)![1] as Kind;
  const turn = body.messages.filter((m: { role: string }) => m.role === 'assistant').length + 1;
  switch (kind) {
    case 'normal':
    case 'detach':
      return turn === 1 ? bash('echo soak > out.txt') : { text: 'done' };
    case 'reattach':
      return turn === 1 ? { text: ['a ', 'few ', 'words '], toolCalls: bash('sleep 1; echo soak > out.txt').toolCalls } : { text: ['and ', 'the ', 'rest'], deltaDelayMs: 20 };
    case 'disconnect':
    case 'cancel':
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

/** Reads GET /runs/:id/events from `cursor` (or until `stopAfter` events); checks ids and the terminal event. */
async function follow(runId: string, cursor: number, stopAfter?: number): Promise<{ lastId: number; problem?: string }> {
  const res = await fetch(`${server.url}/runs/${runId}/events`, { headers: { 'last-event-id': String(cursor) } });
  if (res.status !== 200) return { lastId: cursor, problem: `GET /runs/:id/events answered ${res.status}` };
  return readIds(res, cursor, stopAfter);
}

/** Reads an SSE body, checking ids run on from `cursor` and that the end is exactly one terminal event. */
async function readIds(res: Response, cursor: number, stopAfter?: number): Promise<{ lastId: number; problem?: string }> {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let buf = '';
  let lastId = cursor;
  let seen = 0;
  let terminals = 0;
  let lastType = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const m = /^id: (\d+)\nevent: ([a-z_]+)\n/.exec(block);
      if (!m) continue; // a ping
      const id = Number(m[1]);
      if (id !== lastId + 1) return { lastId, problem: `id ${id} after ${lastId}` };
      lastId = id;
      lastType = m[2]!;
      if (lastType === 'result' || lastType === 'error') terminals++;
      if (stopAfter !== undefined && ++seen >= stopAfter && terminals === 0) {
        await reader.cancel();
        return { lastId };
      }
    }
  }
  if (terminals !== 1 || (lastType !== 'result' && lastType !== 'error')) return { lastId, problem: `${terminals} terminal events, last ${lastType}` };
  return { lastId };
}

const readerProblems: string[] = [];

/** The detached and reattaching kinds: start the run, read its events as a client that comes and goes would. */
async function durableRun(kind: 'detach' | 'reattach' | 'cancel', body: Record<string, unknown>, i: number): Promise<RunOutcome> {
  const t0 = now();
  const out: RunOutcome = { status: 0, firstEventMs: NaN, endMs: NaN, events: 0 };
  const problem = (p: string | undefined) => p && readerProblems.push(`${kind} run ${out.runId}: ${p}`);
  if (kind === 'reattach') {
    const res = await fetch(`${server.url}/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, onDisconnect: 'continue' }) });
    out.status = res.status;
    out.runId = res.headers.get('x-run-id') ?? undefined;
    if (res.status === 200 && out.runId) {
      const first = await readIds(res, 0, dropAfter[i]);
      problem(first.problem);
      problem((await follow(out.runId, first.lastId)).problem);
    }
  } else {
    const res = await fetch(`${server.url}/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, detach: true }) });
    out.status = res.status;
    out.runId = res.headers.get('x-run-id') ?? undefined;
    await res.body?.cancel();
    if (res.status === 202 && out.runId) {
      const reading = follow(out.runId, 0);
      if (kind === 'cancel') {
        await sleep(disconnectAt[i]!);
        const c = await fetch(`${server.url}/runs/${out.runId}/cancel`, { method: 'POST' });
        if (c.status !== 202) problem(`cancel answered ${c.status}`);
      }
      problem((await reading).problem);
    }
  }
  out.endMs = now() - t0;
  return out;
}

const outcomes: (RunOutcome & { kind: Kind; prompt: string; index: number })[] = [];
const meter = loadMeter(() => [server.pid]);
const t0 = now();
let peakRss = 0;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssMb(server.pid).rss)), 100);
let exitCode = 1;
try {
  await pool(plan, CONCURRENCY, async (kind, i) => {
    const body = { prompt: `soak run ${i} kind:${kind}`, model: 'sonnet', ...(kind === 'timeout' ? { timeout: 5 } : {}) };
    const out =
      kind === 'detach' || kind === 'reattach' || kind === 'cancel'
        ? await durableRun(kind, body, i)
        : await streamRun(server.url, body, kind === 'disconnect' ? { disconnectAfterMs: disconnectAt[i] } : {});
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
      ['runs', 'completed', 'cancelled', 'errored', 'rejected 429', 'runs lost', 'containers left', 'volumes left', 'reaped late', 'reader checks failed', 'server RSS MiB (end / peak)', 'wall s'],
      [[RUNS, count('completed'), count('cancelled'), count('error'), rejected, lost, containersLeft, volumesLeft, reaped.length, readerProblems.length, `${fmt(rss.rss, 0)} / ${fmt(Math.max(peakRss, rss.peak), 0)}`, fmt(clientsDoneS, 1)]],
    ),
  );
  for (const o of unexpected.slice(0, 10)) {
    const r = byPrompt.get(o.prompt);
    const extra = o.kind === 'disconnect' ? ` (client hung up at ${disconnectAt[o.index]} ms, ${o.status ? `after the response headers (HTTP ${o.status})` : 'before any response header'}; row ${r?.startedAt} -> ${r?.completedAt})` : '';
    console.log(`  unexpected: ${o.kind} run ${r?.id}: ${statusOf(o)}${extra} ${JSON.stringify(o.terminalData ?? {}).slice(0, 200)}`);
  }
  for (const p of readerProblems.slice(0, 10)) console.log(`  reader: ${p}`);
  console.log(`server warnings/errors logged: ${server.problems.length}`);
  for (const p of server.problems.slice(0, 10)) console.log(`  ${JSON.stringify(p).slice(0, 300)}`);
  const pass = lost === 0 && containersLeft === 0 && volumesLeft === 0 && reaped.length === 0 && readerProblems.length === 0;
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
