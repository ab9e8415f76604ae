// Scaffolding for the tests that drive the Docker sandbox provider directly, without a server: the settings
// they start from, per-test instance ids whose leftovers the file removes and checks at the end, and the
// check that a call failed with a given SandboxError code.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { SandboxError, type DockerSettings } from '../../lib/sandbox.ts';
import { createDockerProvider } from '../../providers/docker/index.ts';

export const TEST_IMAGE = process.env.SANDCASTER_TEST_IMAGE ?? 'sandcaster-test:busybox';
/** The local engine (DOCKER_HOST or the default socket). */
export const docker = new Docker();

/** The production hardening (no network, unprivileged user, read-only root) with small bounds. */
export const dockerSettings = (over: Partial<DockerSettings> = {}): DockerSettings => ({
  image: TEST_IMAGE,
  memoryMb: 64,
  cpus: 1,
  pidsLimit: 64,
  network: 'none',
  user: '1000:1000',
  diskMb: 64,
  readOnlyRootfs: true,
  ...over,
});

/** Room for the provider contract's larger files and process counts (tests/helpers/provider-contract.ts). */
export const CONTRACT_BOUNDS = { memoryMb: 256, pidsLimit: 128, diskMb: 128 } satisfies Partial<DockerSettings>;

/** Containers (any state) and volumes labelled with `instance`. */
export async function leftovers(instance: string): Promise<{ containers: number; volumes: number }> {
  const filters = { label: [`sandcaster.instance=${instance}`] };
  const containers = await docker.listContainers({ all: true, filters });
  const { Volumes } = await docker.listVolumes({ filters });
  return { containers: containers.length, volumes: (Volumes ?? []).length };
}

/**
 * Instance ids for one test file, so its tests never see each other's sandboxes. Call `sweep` in the file's
 * `after`: it reaps every instance handed out (a safety net for a failed test) and then asserts that nothing
 * labelled with any of them survived.
 */
export function sandboxInstances(prefix: string): { id(tag: string): string; sweep(): Promise<void> } {
  const ids = new Set<string>();
  return {
    id(tag) {
      const id = `test-${prefix}-${tag}-${process.pid}-${randomBytes(3).toString('hex')}`;
      ids.add(id);
      return id;
    },
    async sweep() {
      for (const id of ids) await createDockerProvider(dockerSettings()).reap(id, new Set());
      for (const id of ids) assert.deepEqual(await leftovers(id), { containers: 0, volumes: 0 }, `sandboxes or volumes of ${id} left after the suite`);
    },
  };
}

/** Asserts that `p` rejects with a SandboxError of `code` (and a message matching `message`); returns it. */
export async function rejectsWith(p: Promise<unknown>, code: string, message?: RegExp): Promise<SandboxError> {
  const err = await p.then(
    () => assert.fail(`expected a SandboxError ${code}, but it succeeded`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof SandboxError, `expected a SandboxError ${code}, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  if (message) assert.match(err.message, message);
  return err;
}

/**
 * Whether a process whose command line contains `command` runs in container `id`, by `ps` inside it (the
 * engine's `top` lists host processes, which under gVisor are not the sandbox's).
 */
export async function runningIn(id: string, command: string, engine: Docker = docker): Promise<boolean> {
  const exec = await engine.getContainer(id).exec({ Cmd: ['ps', '-o', 'args'], AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  await new Promise((resolve, reject) => stream.on('end', resolve).on('error', reject));
  return Buffer.concat(chunks).toString('latin1').split('\n').some((line) => line.includes(command) && !line.includes('ps -o args'));
}

/** Milliseconds since `start` (a performance.now() reading). */
export const ms = (start: number) => performance.now() - start;
