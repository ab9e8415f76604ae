// Docker sandboxes through the engine API (dockerode), never the docker CLI: one hardened container per
// sandbox (spec.ts) with bounded storage; commands and file operations run as the sandbox user through
// exec (exec.ts, files.ts); orphans are reaped by label (reap.ts).
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { log } from '../../lib/log.ts';
import { SandboxError, type CreateOptions, type DockerSettings, type Sandbox, type SandboxProvider } from '../../lib/sandbox.ts';
import { createEngine, engineClient, engineMessage, ENGINE_HINT, PING_TIMEOUT_MS, PULL_TIMEOUT_MS, status, throwIfAborted, toSandboxError, type Engine } from './engine.ts';
import { reap, removeSandbox, REMOVE_TIMEOUT_MS } from './reap.ts';
import { DockerSandbox } from './sandbox.ts';
import { containerSpec, reservedMemoryMb } from './spec.ts';

export { containerSpec, reservedMemoryMb, storageSplit } from './spec.ts';
export { DockerSandbox } from './sandbox.ts';

export interface DockerProviderOptions {
  docker?: Docker;
  /** Bound on single engine calls (default 20 s); tests shorten it. */
  engineTimeoutMs?: number;
  /** Bound on removing one sandbox (default 30 s); tests shorten it. */
  removeTimeoutMs?: number;
}

export interface DockerProvider extends SandboxProvider {
  /** Host memory one sandbox may hold (MiB): memoryMb plus the storage kept in memory (tmpfs). The same for every image. */
  reservedMemoryMb(image?: string): number;
  /** The engine host's total memory (MiB) from `docker info`; undefined when the engine does not answer. */
  hostMemoryMb(): Promise<number | undefined>;
}

const ROOTFS_HINT =
  'Set docker.readOnlyRootfs to true (the default; /workspace and /tmp stay writable), or run the Docker engine on a storage driver that enforces quotas (overlay2 on xfs mounted with pquota).';

const slug = (s: string) => s.replace(/[^a-zA-Z0-9_.-]/g, '-').slice(0, 40);

/** Pulls a missing image once, however many creates are waiting for it; each waiter can give up on its own. */
function puller(engine: Engine) {
  const pulls = new Map<string, Promise<void>>();
  async function doPull(image: string): Promise<void> {
    const ref = /[:@][^/]*$/.test(image) ? image : `${image}:latest`;
    log.info('pulling docker image', { image: ref });
    const started = Date.now();
    let lastLog = 0;
    try {
      await engine.call(
        `pull ${ref}`,
        async (s) => {
          const stream = (await engine.docker.pull(ref, { abortSignal: s })) as NodeJS.ReadableStream;
          await new Promise<void>((resolve, reject) => {
            engine.docker.modem.followProgress(
              stream,
              (err: unknown) => (err ? reject(err) : resolve()),
              (ev: { status?: string; progress?: string; id?: string }) => {
                if (Date.now() - lastLog < 2000 || !ev.status) return; // progress at most every 2 s
                lastLog = Date.now();
                log.info('pulling docker image', { image: ref, status: ev.status, layer: ev.id, progress: ev.progress });
              },
            );
          });
        },
        { ms: PULL_TIMEOUT_MS },
      );
    } catch (err) {
      const e = toSandboxError(err, `pull ${ref}`);
      if (e.hint === ENGINE_HINT) throw e; // the engine itself is the problem, not the image
      throw new SandboxError(
        'SANDBOX_ERROR',
        `image ${image} is not on the Docker host and could not be pulled: ${engineMessage(e.cause ?? e)}`,
        `Pull or build it on the Docker host (docker pull ${image}, or docker build -t ${image} .), or set docker.image / SANDCASTER_DOCKER_IMAGE to an image that exists there.`,
        { cause: err },
      );
    }
    log.info('pulled docker image', { image: ref, durationMs: Date.now() - started });
  }
  return (image: string, signal?: AbortSignal): Promise<void> => {
    let p = pulls.get(image);
    if (!p) {
      p = doPull(image).finally(() => pulls.delete(image));
      pulls.set(image, p);
    }
    if (!signal) return p;
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  };
}

export function createDockerProvider(settings: DockerSettings, opts: DockerProviderOptions = {}): DockerProvider {
  const engine = createEngine(opts.docker ?? engineClient(settings.host), opts.engineTimeoutMs);
  const removeMs = opts.removeTimeoutMs ?? REMOVE_TIMEOUT_MS;
  const pull = puller(engine);
  const { docker, call } = engine;

  async function createContainer(spec: (s: AbortSignal) => Docker.ContainerCreateOptions): Promise<Docker.Container> {
    try {
      return await call('create container', (s) => docker.createContainer(spec(s)));
    } catch (err) {
      const said = engineMessage((err as SandboxError).cause);
      if (!settings.readOnlyRootfs && /storage-opt|quota/i.test(said)) {
        throw new SandboxError('SANDBOX_ERROR', `docker.readOnlyRootfs is false, but the engine cannot bound the root filesystem's size (${said})`, ROOTFS_HINT, { cause: err });
      }
      throw err;
    }
  }

  async function create(o: CreateOptions): Promise<Sandbox> {
    throwIfAborted(o.signal);
    const image = o.image ?? settings.image;
    const name = `sandcaster-${slug(o.runId)}-${randomBytes(4).toString('hex')}`;
    const volume = `${name}-workspace`;
    const labels = { 'sandcaster.managed': 'true', 'sandcaster.instance': o.instanceId, 'sandcaster.run': o.runId };
    // A fresh object per call: dockerode deletes abortSignal from the options it is given.
    const spec = (signal: AbortSignal): Docker.ContainerCreateOptions => ({ ...containerSpec(settings, { name, image, labels, volume }), abortSignal: signal });
    const started = Date.now();
    try {
      let container: Docker.Container;
      try {
        container = await createContainer(spec);
      } catch (err) {
        if (status(err) !== 404 || !/no such image/i.test(engineMessage((err as SandboxError).cause))) throw err;
        await pull(image, o.signal);
        throwIfAborted(o.signal);
        container = await createContainer(spec);
      }
      throwIfAborted(o.signal);
      // Without /bin/sh the container would start (docker-init runs) and die at once; say so now instead.
      await call('check /bin/sh', async (s) => ((await container.infoArchive({ path: '/bin/sh', abortSignal: s })) as Readable).resume(), { signal: o.signal }).catch((err) => {
        if (status(err) !== 404) throw err;
        throw new SandboxError('SANDBOX_ERROR', `image ${image} has no /bin/sh`, `Sandbox images need /bin/sh; set docker.image / SANDCASTER_DOCKER_IMAGE to one that has it.`);
      });
      await call('start container', (s) => container.start({ abortSignal: s }), { signal: o.signal });
      throwIfAborted(o.signal);
      log.debug('docker sandbox created', { runId: o.runId, container: name, image, durationMs: Date.now() - started });
      return new DockerSandbox(engine, container, name, volume, settings.user, removeMs);
    } catch (err) {
      // Whatever was made is removed; by name, so this works even when the create call itself failed late.
      await removeSandbox(engine, name, volume, removeMs).catch((e) =>
        log.warn('could not clean up a half-created sandbox; the reaper will retry', { runId: o.runId, container: name, error: e }),
      );
      if (o.signal?.aborted) throw o.signal.reason;
      throw toSandboxError(err, 'create sandbox');
    }
  }

  return {
    name: 'docker',
    defaultImage: settings.image,
    async available() {
      try {
        // The typings omit ping's options; dockerode 4 does take abortSignal there.
        const ping = docker as unknown as { ping(o: { abortSignal: AbortSignal }): Promise<unknown> };
        await call('ping', (s) => ping.ping({ abortSignal: s }), { ms: PING_TIMEOUT_MS });
        return true;
      } catch {
        return false;
      }
    },
    create,
    reap: (instanceId, keepRunIds) => reap(engine, instanceId, keepRunIds, removeMs),
    reservedMemoryMb: () => reservedMemoryMb(settings),
    async hostMemoryMb() {
      try {
        // The typings omit info's options; dockerode 4 does take abortSignal there.
        const engineInfo = docker as unknown as { info(o: { abortSignal: AbortSignal }): Promise<{ MemTotal?: number }> };
        const bytes = Number((await call('info', (s) => engineInfo.info({ abortSignal: s }))).MemTotal);
        return bytes > 0 ? Math.floor(bytes / (1024 * 1024)) : undefined;
      } catch {
        return undefined;
      }
    },
  };
}

/** The module interface the composition root (app.ts) loads for the `docker` row. */
export const createProvider = (settings: DockerSettings): SandboxProvider => createDockerProvider(settings);
