// The raw engine-API floor shared by benchmarks 1 and 4: the Docker provider's own container spec,
// one raw lifecycle (create with the labelled named volume, start, exec `true`, remove container and volume),
// the same lifecycle with every engine call a server run makes (for attribution), and the fake model script of
// one `bash true` call then an answer.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { loadConfig } from '../lib/config.ts';
import { packTar } from '../lib/tar.ts';
import { containerSpec } from '../providers/docker/spec.ts';
import { IMAGE, docker, now } from './lib.ts';

const settings = loadConfig({}, { SANDCASTER_DOCKER_IMAGE: IMAGE }).sandboxes.docker; // what the server child uses
export const floorInstance = `bench_floor_${process.pid}`;

/** The provider's own container spec (providers/docker/spec.ts), so the floor is exactly as hardened. */
function hardenedSpec(name: string, volume: string): Docker.ContainerCreateOptions {
  const labels = { 'sandcaster.managed': 'true', 'sandcaster.instance': floorInstance, 'sandcaster.run': name };
  return containerSpec(settings, { name, image: settings.image, labels, volume });
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

async function rawList(container: Docker.Container): Promise<void> {
  const stream = (await container.getArchive({ path: '/workspace' })) as NodeJS.ReadableStream;
  stream.resume();
  await new Promise((r) => stream.once('end', r));
}

/** One raw lifecycle: create (with volume), start, exec `true`, remove container and volume. */
export async function floorLifecycle(steps?: Steps): Promise<void> {
  const step = stepper(steps);
  const name = `sandcaster-floor-${randomBytes(6).toString('hex')}`;
  const volume = `${name}-workspace`;
  const container = await docker.createContainer(hardenedSpec(name, volume));
  step('create container + volume');
  await container.start();
  step('start');
  await rawExec(container, ['true']);
  step('exec true');
  await container.remove({ force: true, v: true });
  step('remove container');
  await docker.getVolume(volume).remove();
  step('remove volume');
}

const OWNER = settings.user.split(':').map(Number) as [number, number?];
const CHOWN_TAR = packTar([{ name: '/', type: 'dir', mode: 0o755, uid: OWNER[0], gid: OWNER[1] ?? OWNER[0] }]);

/**
 * Attribution only: every engine call a server run makes, in the provider's order, made raw — the floor plus
 * what the contract adds (docs/configuration.md#docker-sandboxes): hand /workspace to the sandbox user (archive upload) while checking
 * /bin/sh, list /workspace for the artifact baseline and again at the end, and the exec wrapper that
 * records the pid for timeouts. Server time minus this is what the server itself costs.
 */
export async function engineCallsLifecycle(steps?: Steps): Promise<void> {
  const step = stepper(steps);
  const name = `sandcaster-floor-${randomBytes(6).toString('hex')}`;
  const volume = `${name}-workspace`;
  const container = await docker.createContainer(hardenedSpec(name, volume));
  step('create container + volume');
  await Promise.all([container.putArchive(Readable.from(CHOWN_TAR), { path: '/workspace' }), container.infoArchive({ path: '/bin/sh' }).then((r: any) => r?.resume?.())]);
  step('chown /workspace (put archive) + check /bin/sh');
  await container.start();
  step('start');
  await rawList(container);
  step('artifact baseline (get archive /workspace)');
  await rawExec(container, ['/bin/sh', '-c', 'echo $$; cd "$2" || exit; exec /bin/sh -c "$1"', 'sandcaster', 'true', '/workspace']);
  step('exec true (provider wrapper)');
  await rawList(container);
  step('artifact listing (get archive /workspace)');
  await container.remove({ force: true, v: true });
  step('remove container');
  await docker.getVolume(volume).remove();
  step('remove volume');
}

/** The fake model: a `bash true` call first, the final answer once the conversation holds its result. */
export function oneToolCallScript(body: any) {
  const last = body.messages.at(-1);
  const answered = Array.isArray(last?.content) && last.content.some((b: { type: string }) => b.type === 'tool_result');
  return answered ? { text: 'done' } : { toolCalls: [{ name: 'bash', input: { command: 'true' } }] };
}
