// A server run with and without a Docker warm pool (issue 14, part 3): two real server processes (server.ts,
// real Docker provider), one with docker.warmPool 0 and one with 4, against a fake Anthropic API that answers
// at once (a `bash true` call, then the answer). Runs one at a time, alternating between the two servers and
// the raw engine-API floor (bench/floor.ts); before each pooled run the pool is full again (an untimed wait on
// /health), as it is between runs at a steady pace. Prints medians of request -> terminal event and of
// request -> sandbox_created.
// Run: npx tsx bench/warm-pool.ts [--rounds 20]
import { parseArgs } from 'node:util';
import { startFakeAnthropic } from '../tests/fixtures/fake-models.ts';
import { floorInstance, floorLifecycle, oneToolCallScript } from './floor.ts';
import { cleanupInstance, fmt, loadLine, loadMeter, machineLine, managedContainers, managedVolumes, median, now, quantile, sleep, startServerChild, streamRun, table, type ServerChild } from './lib.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '20' } } });
const ROUNDS = Number(values.rounds);
const POOL = 4;

const fake = await startFakeAnthropic(oneToolCallScript);
const env = { ANTHROPIC_API_KEY: 'sk-bench-not-a-key', ANTHROPIC_BASE_URL: fake.url };
const plain = await startServerChild({ env: { ...env, SANDCASTER_DOCKER_WARM_POOL: '0' }, keepLogs: true });
const pooled = await startServerChild({ env: { ...env, SANDCASTER_DOCKER_WARM_POOL: String(POOL) }, keepLogs: true });
const body = { prompt: 'run true', model: 'sonnet' };

async function poolFull(s: ServerChild): Promise<void> {
  for (;;) {
    const h = await (await fetch(`${s.url}/health`)).json();
    if (h.warmPool?.docker?.ready === POOL) return;
    await sleep(20);
  }
}

/** Per variant, per event (the first of its kind), ms from the request: where a run's time goes. */
const timeline: Record<string, Record<string, number[]>> = {};

async function serverRun(s: ServerChild, variant?: string): Promise<{ totalMs: number; createdMs: number }> {
  let exitCode: unknown;
  let createdMs = NaN;
  const seen = new Set<string>();
  const t0 = now();
  const out = await streamRun(s.url, body, {
    onEvent: (type, data) => {
      const name = type === 'system' ? /"subtype":"([a-z_]+)"/.exec(data)?.[1] ?? type : type;
      if (variant && !seen.has(name)) {
        seen.add(name);
        ((timeline[variant] ??= {})[name] ??= []).push(now() - t0);
      }
      if (name === 'sandbox_created') createdMs = now() - t0;
      if (type === 'tool_result') exitCode = JSON.parse(data).exitCode;
    },
  });
  if (out.terminal !== 'result' || exitCode !== 0) throw new Error(`server run failed: ${out.status} ${JSON.stringify(out.terminalData)}`);
  return { totalMs: out.endMs, createdMs };
}

const ms: Record<'plain' | 'pooled' | 'floor', number[]> = { plain: [], pooled: [], floor: [] };
const created: Record<'plain' | 'pooled', number[]> = { plain: [], pooled: [] };
let load;
let left = -1;
try {
  for (let i = 0; i < 3; i++) {
    await serverRun(plain);
    await poolFull(pooled);
    await serverRun(pooled);
    await floorLifecycle();
  }
  plain.logs.length = 0;
  pooled.logs.length = 0;
  const meter = loadMeter(() => [plain.pid, pooled.pid]);
  const variants = ['plain', 'pooled', 'floor'] as const;
  for (let i = 0; i < ROUNDS; i++) {
    for (let k = 0; k < variants.length; k++) {
      const which = variants[(i + k) % variants.length]!;
      if (which === 'floor') {
        const t = now();
        await floorLifecycle();
        ms.floor.push(now() - t);
        continue;
      }
      const s = which === 'plain' ? plain : pooled;
      if (which === 'pooled') await poolFull(s);
      const r = await serverRun(s, which);
      ms[which].push(r.totalMs);
      created[which].push(r.createdMs);
    }
  }
  load = meter();
} finally {
  await plain.stop();
  const instance = pooled.instanceId;
  await pooled.stop();
  left = (await managedContainers(instance)).length + (await managedVolumes(instance));
  await fake.close();
  await cleanupInstance(floorInstance);
}

const logged = (s: ServerChild, msg: string) => s.logs.filter((l) => l.msg === msg && typeof l.durationMs === 'number').map((l) => l.durationMs as number);
const row = (name: string, xs: number[]) => [name, fmt(median(xs)), fmt(quantile(xs, 0.9)), fmt(Math.min(...xs))];
console.log(`\n## 8. A server run with a warm pool of ${POOL} and without (${ROUNDS} rounds, interleaved; instant fake model, one \`bash true\`)\n`);
console.log(
  table(
    ['measure', 'median ms', 'p90 ms', 'min ms'],
    [
      row('run, warmPool 0 (request to terminal event)', ms.plain),
      row(`run, warmPool ${POOL}, pool full at the request`, ms.pooled),
      row('raw engine-API floor (bench/floor.ts)', ms.floor),
      row('request to sandbox_created, warmPool 0', created.plain),
      row(`request to sandbox_created, warmPool ${POOL}`, created.pooled),
      // The servers' own log lines: a sandbox's create and destroy as the run's sandbox pool timed them.
      row('sandbox create in the server (log durationMs), warmPool 0', logged(plain, 'sandbox created')),
      row(`sandbox create in the server (log durationMs), warmPool ${POOL}`, logged(pooled, 'sandbox created')),
      row('sandbox destroy in the server (log durationMs), warmPool 0', logged(plain, 'sandbox destroyed')),
      row(`sandbox destroy in the server (log durationMs), warmPool ${POOL}`, logged(pooled, 'sandbox destroyed')),
    ],
  ),
);
const events = Object.keys(timeline.plain ?? {});
console.log('\nwhen each event arrives (median ms after the request, first event of each kind):\n');
console.log(table(['event', ...Object.keys(timeline)], events.map((e) => [e, ...Object.values(timeline).map((t) => fmt(median(t[e] ?? [])))])));
console.log(
  `\npooled / unpooled run: ${fmt(median(ms.pooled) / median(ms.plain), 3)}; pooled run / floor: ${fmt(median(ms.pooled) / median(ms.floor), 3)}; ` +
    `unpooled run / floor: ${fmt(median(ms.plain) / median(ms.floor), 3)}; containers+volumes left by the pooled server after SIGTERM: ${left}`,
);
const problems = [...plain.problems, ...pooled.problems];
console.log(`server warnings/errors logged: ${problems.length}${problems.length ? ` (first: ${JSON.stringify(problems[0]).slice(0, 300)})` : ''}`);
console.log(loadLine(load!) + ' (everything else includes the Docker engine)');
console.log(await machineLine());
