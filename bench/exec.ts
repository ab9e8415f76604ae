// Benchmark 2 — exec. In one hardened sandbox made by our Docker provider, `true` run three ways, interleaved
// (the order rotates every round): our provider's Sandbox.exec (what a `bash` tool call costs), a bare
// engine-API exec through dockerode (create, start attached, read to the end, inspect for the exit code),
// and the `docker exec` CLI.
// Run: npx tsx bench/exec.ts [--rounds 40]
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { loadConfig } from '../lib/config.ts';
import { createDockerProvider } from '../providers/docker/index.ts';
import { IMAGE, docker, fmt, loadLine, loadMeter, machineLine, median, now, quantile, table, verdict } from './lib.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '40' } } });
const ROUNDS = Number(values.rounds);

const settings = loadConfig({}, { SANDCASTER_DOCKER_IMAGE: IMAGE }).sandboxes.docker; // the server's default hardening
const provider = createDockerProvider(settings, { docker });
const id = `bench_exec_${process.pid}`;
const sandbox = await provider.create({ runId: id, instanceId: id, timeoutSecs: 300 });

async function raw(): Promise<void> {
  const exec = await docker.getContainer(sandbox.id).exec({ Cmd: ['true'], AttachStdout: true, AttachStderr: true, User: settings.user });
  const stream = await exec.start({ hijack: true, stdin: false });
  stream.resume();
  await new Promise((r) => stream.once('end', r));
  stream.destroy();
  const info = await exec.inspect();
  if (info.ExitCode !== 0) throw new Error(`raw exec exit code ${info.ExitCode}`);
}

async function ours(): Promise<void> {
  const r = await sandbox.exec('true', { timeoutMs: 10_000 });
  if (r.exitCode !== 0) throw new Error(`provider exec exit code ${r.exitCode}`);
}

async function cli(): Promise<void> {
  const p = spawn('docker', ['exec', sandbox.id, 'true'], { stdio: 'ignore' });
  const [code] = await once(p, 'exit');
  if (code !== 0) throw new Error(`docker exec exit code ${code}`);
}

const ways = { 'provider Sandbox.exec': ours, 'raw engine API (dockerode)': raw, 'docker exec CLI': cli } as const;
type Way = keyof typeof ways;
const names = Object.keys(ways) as Way[];
const times = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<Way, number[]>;
let load;
try {
  for (let i = 0; i < 5; i++) for (const n of names) await ways[n](); // warm-up
  const meter = loadMeter(() => []);
  for (let i = 0; i < ROUNDS; i++) {
    for (let k = 0; k < names.length; k++) {
      const n = names[(i + k) % names.length]!;
      const t = now();
      await ways[n]();
      times[n].push(now() - t);
    }
  }
  load = meter();
} finally {
  await sandbox.destroy();
}

const rawMed = median(times['raw engine API (dockerode)']);
console.log(`\n## 2. Exec of \`true\` in one hardened sandbox (${ROUNDS} rounds, interleaved)\n`);
console.log(
  table(
    ['way', 'median ms', 'p90 ms', 'min ms', 'ratio to raw (medians)'],
    names.map((n) => [n, fmt(median(times[n])), fmt(quantile(times[n], 0.9)), fmt(Math.min(...times[n])), fmt(median(times[n]) / rawMed, 2)]),
  ),
);
const ratio = median(times['provider Sandbox.exec']) / rawMed;
console.log(`\ntarget provider/raw < 1.10: ${verdict(ratio < 1.1)} (${fmt(ratio, 2)}); the CLI costs ${fmt(median(times['docker exec CLI']) - rawMed)} ms more than the API per exec`);
console.log(loadLine(load!) + ' (everything else includes the Docker engine)');
console.log(await machineLine());
