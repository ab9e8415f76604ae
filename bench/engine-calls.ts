// What each engine call of a Docker sandbox costs, and the provider's create and destroy before and after the
// calls were cut (issue 14, part 2 and 4): the limits inspect and the /bin/sh check now run once per provider
// and image, and /workspace is an anonymous volume removed with the container in one call.
//  1. Raw dockerode calls, in the provider's order, each timed alone, with the provider's own hardened spec:
//     the old named volume against the new anonymous one, and one `remove` call against `remove` + volume.
//  2. The provider's create() and destroy(), this checkout against `--before DIR` (a checkout of the older
//     code, e.g. `git worktree add /tmp/sc-before <commit>`; node_modules linked), interleaved per round.
//  3. With a warm pool of 1: create() when a pooled sandbox is ready (the take and its liveness inspect).
// Run: npx tsx bench/engine-calls.ts [--rounds 20] [--before /tmp/sc-before]
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import type Docker from 'dockerode';
import { loadConfig } from '../lib/config.ts';
import type { DockerSettings, SandboxProvider } from '../lib/sandbox.ts';
import { createDockerProvider } from '../providers/docker/index.ts';
import { containerSpec } from '../providers/docker/spec.ts';
import { cleanupInstance, docker, fmt, IMAGE, loadLine, loadMeter, machineLine, median, now, quantile, table } from './lib.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '20' }, before: { type: 'string' } } });
const ROUNDS = Number(values.rounds);
const settings: DockerSettings = loadConfig({}, { SANDCASTER_DOCKER_IMAGE: IMAGE }).sandboxes.docker;
const instance = `bench_calls_${process.pid}`;
const labels = { 'sandcaster.managed': 'true', 'sandcaster.instance': instance, 'sandcaster.run': 'bench' };

const times: Record<string, number[]> = {};
async function timed<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const t = now();
  const out = await fn();
  (times[name] ??= []).push(now() - t);
  return out;
}

/** One raw lifecycle with every call the old provider made, timed call by call. */
async function rawRound(anonymous: boolean): Promise<void> {
  const name = `sandcaster-bench-${randomBytes(5).toString('hex')}`;
  const volume = anonymous ? undefined : `${name}-workspace`;
  const spec = containerSpec(settings, { name, image: settings.image, labels, volume });
  const c = await timed(anonymous ? 'create container, anonymous volume' : 'create container, named volume', () => docker.createContainer(spec));
  if (anonymous) {
    await timed('inspect container (limits check; warm-pool take check)', () => c.inspect());
    await timed('infoArchive /bin/sh (shell check)', async () => ((await c.infoArchive({ path: '/bin/sh' })) as unknown as Readable).resume());
  }
  await timed(anonymous ? 'start (anonymous)' : 'start (named)', () => c.start());
  if (anonymous) {
    await timed('remove container + its volume (force, v), one call', () => c.remove({ force: true, v: true }));
  } else {
    await timed('remove container (force, v), named volume stays', () => c.remove({ force: true, v: true }));
    await timed('remove named volume (second call)', () => docker.getVolume(volume!).remove());
  }
}

async function providerRound(label: string, p: SandboxProvider, n: number): Promise<void> {
  const sb = await timed(`${label}: create()`, () => p.create({ runId: `run_bench_${n}`, instanceId: instance, timeoutSecs: 60 }));
  await timed(`${label}: destroy()`, () => sb.destroy());
}

const after = createDockerProvider(settings);
let before: SandboxProvider | undefined;
if (values.before) {
  const mod = (await import(`${values.before}/providers/docker/index.ts`)) as { createDockerProvider(s: DockerSettings): SandboxProvider };
  before = mod.createDockerProvider(settings);
}
const pooled = createDockerProvider({ ...settings, warmPool: 1 });
const poolReady = async () => {
  while (pooled.warmPoolState!().ready < 1) await new Promise((r) => setTimeout(r, 20));
};

let load;
try {
  // Warm-up: image cache, the provider's engine facts and once-per-provider checks.
  for (let i = 0; i < 2; i++) {
    await rawRound(false);
    await rawRound(true);
    await providerRound('after', after, -1);
    if (before) await providerRound('before', before, -1);
  }
  for (const k of Object.keys(times)) delete times[k];
  await pooled.reap(instance, new Set()); // starts its pool
  const meter = loadMeter(() => []);
  for (let i = 0; i < ROUNDS; i++) {
    const order = i % 2 ? [true, false] : [false, true];
    for (const anon of order) await rawRound(anon);
    const providers: [string, SandboxProvider][] = before ? [['before', before], ['after', after]] : [['after', after]];
    if (i % 2) providers.reverse();
    for (const [label, p] of providers) await providerRound(label, p, i);
    await poolReady(); // not timed: a pooled sandbox is ready, as between runs at a steady pace
    await providerRound('warm pool of 1', pooled, i);
  }
  load = meter();
} finally {
  await pooled.close!();
  await cleanupInstance(instance);
}

const row = (name: string) => [name, fmt(median(times[name] ?? [])), fmt(quantile(times[name] ?? [], 0.9)), fmt(Math.min(...(times[name] ?? [NaN])))];
console.log(`\n## Engine calls of one Docker sandbox (${ROUNDS} rounds, raw dockerode, the provider's hardened spec)\n`);
console.log(table(['call', 'median ms', 'p90 ms', 'min ms'], Object.keys(times).filter((k) => !k.includes(': ')).map(row)));
console.log(`\n## Provider create() and destroy() (${ROUNDS} rounds, interleaved)\n`);
console.log(table(['provider', 'median ms', 'p90 ms', 'min ms'], Object.keys(times).filter((k) => k.includes(': ')).map(row)));
if (before) {
  // Pairwise: each round's before against the same round's after (the same moment's engine speed).
  for (const op of ['create()', 'destroy()']) {
    const b = times[`before: ${op}`]!;
    const d = times[`after: ${op}`]!.map((a, i) => b[i]! - a);
    console.log(`saved per ${op}, pairwise (median of before - after per round): ${fmt(median(d))} ms (p10 ${fmt(quantile(d, 0.1))}, p90 ${fmt(quantile(d, 0.9))})`);
  }
}
console.log('\n' + loadLine(load!) + ' (everything else includes the Docker engine)');
console.log(await machineLine());
