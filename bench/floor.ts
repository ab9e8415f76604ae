// The raw engine-API floor shared by benchmarks 1 and 4: the Docker provider's own container spec,
// one raw lifecycle (create with the labelled anonymous /workspace volume, start, exec `true`, remove the
// container and its volume in one call),
// the same lifecycle with every engine call a server run makes (for attribution), and the fake model script of
// one `bash true` call then an answer.
import { randomBytes } from 'node:crypto';
import type Docker from 'dockerode';
import { loadConfig } from '../lib/config.ts';
import { containerSpec } from '../providers/docker/spec.ts';
import { IMAGE, docker, now } from './lib.ts';

const settings = loadConfig({}, { SANDCASTER_DOCKER_IMAGE: IMAGE }).sandboxes.docker; // what the server child uses
export const floorInstance = `bench_floor_${process.pid}`;

/** The provider's own container spec (providers/docker/spec.ts), so the floor is exactly as hardened. */
function hardenedSpec(name: string): Docker.ContainerCreateOptions {
  const labels = { 'sandcaster.managed': 'true', 'sandcaster.instance': floorInstance, 'sandcaster.run': name };
  return containerSpec(settings, { name, image: settings.image, labels });
}

export type Steps = Record<string, number[]>;

function stepper(steps?: Steps) {
  let last = now();
  return (name: string) => {
    const t = now();
    if (steps) (steps[name] ??= []).push(t - last);
    last = t;
  };
}

async function rawExec(container: Docker.Container, cmd: string[]): Promise<void> {
  const exec = await container.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true, User: settings.user });
  const stream = await exec.start({ hijack: true, stdin: false });
  stream.resume();
  await new Promise((r) => stream.once('end', r));
  stream.destroy();
  const info = await exec.inspect();
  if (info.ExitCode !== 0) throw new Error(`floor exec exit code ${info.ExitCode}`);
}

type Hijacked = NodeJS.ReadWriteStream & { destroy(): void };

/** Attaches to the keep-alive's stdin and output, as the provider's listing channel does (providers/docker/control.ts). */
async function rawAttach(container: Docker.Container): Promise<Hijacked> {
  return (await container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })) as unknown as Hijacked;
}

/** One listing through the keep-alive: write a nonce, read to its end line. */
async function rawList(stream: Hijacked, nonce: string): Promise<void> {
  await new Promise<void>((resolve) => {
    let seen = '';
    const onData = (b: Buffer) => {
      seen += b.toString('latin1');
      if (seen.includes(`sandcaster-end ${nonce}`)) {
        stream.off('data', onData);
        resolve();
      }
    };
    stream.on('data', onData);
    stream.write(`${nonce}\n`);
  });
}

/** One raw lifecycle: create (with its volume), start, exec `true`, remove container and volume in one call. */
export async function floorLifecycle(steps?: Steps): Promise<void> {
  const step = stepper(steps);
  const name = `sandcaster-floor-${randomBytes(6).toString('hex')}`;
  const container = await docker.createContainer(hardenedSpec(name));
  step('create container + volume');
  await container.start();
  step('start');
  await rawExec(container, ['true']);
  step('exec true');
  await container.remove({ force: true, v: true });
  step('remove container + volume');
}

/**
 * Attribution only: every engine call a server run makes, in the provider's order, made raw: the floor plus
 * the keep-alive's attach (beside the start) and the artifact listing through it at the end, and the exec
 * wrapper that records the pid for timeouts. The inspect of the limits and the /bin/sh check are made once
 * per provider and image, not per run; the baseline listing is not made (the workspace starts empty).
 * Server time minus this is what the server itself costs.
 */
export async function engineCallsLifecycle(steps?: Steps): Promise<void> {
  const step = stepper(steps);
  const name = `sandcaster-floor-${randomBytes(6).toString('hex')}`;
  const container = await docker.createContainer(hardenedSpec(name));
  step('create container + volume');
  const [stream] = await Promise.all([rawAttach(container), container.start()]);
  step('start (+ attach beside it)');
  await rawExec(container, ['/bin/sh', '-c', 'echo $$; cd "$2" || exit; exec /bin/sh -c "$1"', 'sandcaster', 'true', '/workspace']);
  step('exec true (provider wrapper)');
  await rawList(stream, randomBytes(8).toString('hex'));
  step('artifact listing (through the attach)');
  stream.destroy();
  await container.remove({ force: true, v: true });
  step('remove container + volume');
}

/** The fake model: a `bash true` call first, the final answer once the conversation holds its result. */
export function oneToolCallScript(body: any) {
  const last = body.messages.at(-1);
  const answered = Array.isArray(last?.content) && last.content.some((b: { type: string }) => b.type === 'tool_result');
  return answered ? { text: 'done' } : { toolCalls: [{ name: 'bash', input: { command: 'true' } }] };
}
