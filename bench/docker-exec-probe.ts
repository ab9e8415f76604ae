// Per-exec overhead of the Docker provider: `true` through Sandbox.exec versus a bare dockerode exec
// (create, start, read to the end, inspect for the exit code) in the same container, interleaved.
// Run: node --import tsx bench/docker-exec-probe.ts [rounds]   (needs the engine and SANDCASTER_TEST_IMAGE)
import Docker from 'dockerode';
import { createDockerProvider } from '../providers/docker/index.ts';

const rounds = Number(process.argv[2] ?? 50);
const docker = new Docker();
const provider = createDockerProvider(
  { image: process.env.SANDCASTER_TEST_IMAGE ?? 'sandcaster-test:busybox', memoryMb: 256, cpus: 1, pidsLimit: 64, network: 'none', user: '1000:1000', diskMb: 256, readOnlyRootfs: true },
  { docker },
);
const sandbox = await provider.create({ runId: `bench_${process.pid}`, instanceId: `bench_${process.pid}`, timeoutSecs: 300 });

async function raw(): Promise<void> {
  const exec = await docker.getContainer(sandbox.id).exec({ Cmd: ['true'], AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  stream.resume();
  await new Promise((r) => stream.once('end', r));
  await exec.inspect();
  stream.destroy();
}

const ours = async () => void (await sandbox.exec('true', { timeoutMs: 10_000 }));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

try {
  const times = { raw: [] as number[], ours: [] as number[] };
  for (let i = 0; i < 5; i++) await Promise.all([raw(), ours()]); // warm up
  for (let i = 0; i < rounds; i++) {
    for (const [name, fn] of i % 2 ? ([['raw', raw], ['ours', ours]] as const) : ([['ours', ours], ['raw', raw]] as const)) {
      const t = performance.now();
      await fn();
      times[name].push(performance.now() - t);
    }
  }
  const r = median(times.raw);
  const o = median(times.ours);
  console.log(JSON.stringify({ rounds, rawMedianMs: +r.toFixed(1), oursMedianMs: +o.toFixed(1), ratio: +(o / r).toFixed(2) }));
} finally {
  await sandbox.destroy();
}
