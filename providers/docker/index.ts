// Docker sandboxes through the engine API (dockerode), never the docker CLI: one hardened container per
// sandbox (spec.ts) with bounded storage; commands and file operations run as the sandbox user through
// exec (exec.ts, files.ts); orphans are reaped by label (reap.ts); a warm pool keeps some ready (warm-pool.ts).
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { log } from '../../lib/log.ts';
import { SandboxError, type CreateOptions, type DockerSettings, type RuntimeStatus, type Sandbox, type SandboxProvider } from '../../lib/sandbox.ts';
import { createEngine, engineClient, engineMessage, PING_TIMEOUT_MS, status, toSandboxError } from './engine.ts';
import { engineFacts, type EngineFacts } from './facts.ts';
import { ControlChannel } from './control.ts';
import { createPuller } from './pull.ts';
import { reap, removeSandbox, REMOVE_TIMEOUT_MS } from './reap.ts';
import { DockerSandbox } from './sandbox.ts';
import { containerSpec, droppedLimits, isGvisor, reservedMemoryMb } from './spec.ts';
import { POOL_RUN_LABEL, WarmPool } from './warm-pool.ts';

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

/** How to make an engine know `runtime`. */
const runtimeHint = (runtime: string, podman: boolean) =>
  podman
    ? `Podman's Docker-compatible API runs every container with Podman's default runtime: make ${runtime} that default (runtime = "${runtime}" under [engine] in containers.conf, then restart podman system service), or unset docker.runtime / SANDCASTER_DOCKER_RUNTIME.`
    : `Register it with the engine: add {"runtimes": {"${runtime}": {"path": "/usr/bin/${runtime}"}}} to /etc/docker/daemon.json (for gVisor: apt-get install runsc, then runsc install; on hosts that need it add "runtimeArgs": ["--platform=ptrace", "--network=none"]) and restart dockerd; or unset docker.runtime / SANDCASTER_DOCKER_RUNTIME.`;

const LIMITS_HINT =
  'Run the engine where it can enforce limits: Docker or rootful Podman, or rootless Podman on a cgroup v2 host with the memory, cpu and pids controllers delegated to the user.';

const slug = (s: string) => s.replace(/[^a-zA-Z0-9_.-]/g, '-').slice(0, 40);
const labelsOf = (instanceId: string, run: string) => ({ 'sandcaster.managed': 'true', 'sandcaster.instance': instanceId, 'sandcaster.run': run });

export function createDockerProvider(settings: DockerSettings, opts: DockerProviderOptions = {}): DockerProvider {
  const engine = createEngine(opts.docker ?? engineClient(settings.host), opts.engineTimeoutMs);
  const removeMs = opts.removeTimeoutMs ?? REMOVE_TIMEOUT_MS;
  const puller = createPuller(engine, (settings.pullTimeoutSeconds ?? 600) * 1000);
  const facts = engineFacts(engine);
  const { docker, call } = engine;
  if (settings.prepull?.length) puller.prepull(settings.prepull);

  /** The runtime sandboxes will run under (the configured one, else the engine's default) and whether it is gVisor. */
  function runtimeOf(f: EngineFacts): { name?: string; gvisor: boolean } {
    const name = settings.runtime ?? f.defaultRuntime;
    return { name, gvisor: isGvisor(name, name ? f.runtimes[name]?.path : undefined) };
  }

  async function createContainer(spec: (s: AbortSignal) => Docker.ContainerCreateOptions): Promise<Docker.Container> {
    try {
      return await call('create container', (s) => docker.createContainer(spec(s)));
    } catch (err) {
      const said = engineMessage((err as SandboxError).cause);
      if (settings.runtime && /unknown runtime/i.test(said)) {
        throw new SandboxError('SANDBOX_ERROR', `the Docker engine does not know the runtime ${settings.runtime} (docker.runtime / SANDCASTER_DOCKER_RUNTIME): ${said}`, runtimeHint(settings.runtime, false), { cause: err });
      }
      if (!settings.readOnlyRootfs && /storage-opt|quota/i.test(said)) {
        throw new SandboxError('SANDBOX_ERROR', `docker.readOnlyRootfs is false, but the engine cannot bound the root filesystem's size (${said})`, ROOTFS_HINT, { cause: err });
      }
      throw err;
    }
  }

  // What is proven once holds for every later sandbox: the engine keeps the limits it was given (a property of
  // the engine and its cgroup setup, not of one container), and an image that had /bin/sh still has it (the
  // name is forgotten when it is pulled again). A failed check is not kept: every create checks again.
  let limitsKept = false;
  /** A started container, and its listing channel when the engine let us attach (control.ts). */
  type Built = { container: Docker.Container; control?: ControlChannel };
  const hasShell = new Set<string>();

  /** A hardened, started container named `name`; on failure whatever was made is removed. */
  async function build(o: { name: string; image: string; runId: string; labels: Record<string, string>; signal?: AbortSignal; onImagePull?: CreateOptions['onImagePull'] }): Promise<Built> {
    const { name, image, signal } = o;
    try {
      const f = await facts(signal);
      if (f.podman && settings.runtime && settings.runtime !== f.defaultRuntime) {
        throw new SandboxError('SANDBOX_ERROR', `docker.runtime is ${settings.runtime}, but this engine is ${f.product}, whose Docker-compatible API ignores the runtime asked for`, runtimeHint(settings.runtime, true));
      }
      const runtime = runtimeOf(f);
      const hardened = containerSpec(settings, { name, image, labels: o.labels, gvisor: runtime.gvisor, podman: f.podman });
      // A fresh object per call: dockerode deletes abortSignal from the options it is given.
      const spec = (s: AbortSignal): Docker.ContainerCreateOptions => ({ ...hardened, abortSignal: s });
      let container: Docker.Container;
      try {
        container = await createContainer(spec);
      } catch (err) {
        if (status(err) !== 404 || !/no such image|image not known/i.test(engineMessage((err as SandboxError).cause))) throw err;
        hasShell.delete(image);
        await puller.pull(image, { signal, onEvent: o.onImagePull });
        signal?.throwIfAborted();
        container = await createContainer(spec);
      }
      signal?.throwIfAborted();
      if (!limitsKept) {
        // Never run a sandbox with fewer limits than asked: rootless Podman on cgroup v1 drops them without an error.
        const inspected = await call('inspect container', (s) => container.inspect({ abortSignal: s }), { signal });
        const dropped = droppedLimits(hardened, inspected);
        if (dropped.length) {
          throw new SandboxError('SANDBOX_ERROR', `the engine (${f.product}) did not apply the sandbox's limits: ${dropped.join(', ')}; refusing to run it unlimited`, LIMITS_HINT);
        }
        if (settings.runtime && !f.podman && inspected.HostConfig?.Runtime !== settings.runtime) {
          throw new SandboxError('SANDBOX_ERROR', `the engine created the sandbox with runtime ${inspected.HostConfig?.Runtime || 'default'}, not ${settings.runtime}`, runtimeHint(settings.runtime, false));
        }
        limitsKept = true;
      }
      if (!hasShell.has(image)) {
        // Without /bin/sh the container would start (docker-init runs) and die at once; say so now instead.
        await call('check /bin/sh', async (s) => ((await container.infoArchive({ path: '/bin/sh', abortSignal: s })) as Readable).resume(), { signal }).catch((err) => {
          if (status(err) !== 404) throw err;
          throw new SandboxError('SANDBOX_ERROR', `image ${image} has no /bin/sh`, `Sandbox images need /bin/sh; set docker.image / SANDCASTER_DOCKER_IMAGE to one that has it.`);
        });
        hasShell.add(image);
      }
      // The control channel (control.ts) attaches beside the start: one round trip, hidden behind it. Not on
      // Podman: measured with 4.3, nothing came back through its attach, and closing the attach stopped the
      // container (its stdin reached its end); listings there go through exec.
      const opening = f.podman ? Promise.resolve(undefined) : ControlChannel.open({ engine, container, name, user: settings.user });
      try {
        await call('start container', (s) => container.start({ abortSignal: s }), { signal });
        signal?.throwIfAborted();
      } catch (err) {
        void opening.then((c) => c?.close());
        throw err;
      }
      return { container, control: await opening };
    } catch (err) {
      // Whatever was made is removed; by name, so this works even when the create call itself failed late.
      await removeSandbox(engine, name, removeMs).catch((e) =>
        log.warn('could not clean up a half-created sandbox; the reaper will retry', { runId: o.runId, container: name, error: e }),
      );
      if (signal?.aborted) throw signal.reason;
      throw toSandboxError(err, 'create sandbox');
    }
  }

  const pool = new WarmPool<Built>(settings.warmPool ?? 0, {
    build: (name, instanceId, signal) => build({ name, image: settings.image, runId: POOL_RUN_LABEL, labels: labelsOf(instanceId, POOL_RUN_LABEL), signal }),
    alive: async ({ container }, signal) => (await call('inspect container', (s) => container.inspect({ abortSignal: s }), { signal })).State?.Running === true,
    remove: (name) => removeSandbox(engine, name, removeMs),
    newName: () => `sandcaster-pool-${randomBytes(4).toString('hex')}`,
  });

  async function create(o: CreateOptions): Promise<Sandbox> {
    o.signal?.throwIfAborted();
    const image = o.image ?? settings.image;
    const started = Date.now();
    if (image === settings.image) {
      pool.start(o.instanceId); // when the engine did not answer the start-up reap
      const taken = await pool.take(o.instanceId, o.runId, o.signal);
      if (taken) {
        log.debug('docker sandbox taken from the warm pool', { runId: o.runId, container: taken.name, durationMs: Date.now() - started });
        return new DockerSandbox(engine, taken.item.container, taken.name, settings.user, removeMs, () => pool.forget(taken.name), taken.item.control);
      }
    }
    const name = `sandcaster-${slug(o.runId)}-${randomBytes(4).toString('hex')}`;
    const built = await build({ name, image, runId: o.runId, labels: labelsOf(o.instanceId, o.runId), signal: o.signal, onImagePull: o.onImagePull });
    log.debug('docker sandbox created', { runId: o.runId, container: name, image, durationMs: Date.now() - started, control: Boolean(built.control) });
    return new DockerSandbox(engine, built.container, name, settings.user, removeMs, undefined, built.control);
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
    async reap(instanceId, keepRunIds) {
      const removed = await reap(engine, instanceId, keepRunIds, removeMs, pool);
      pool.start(instanceId); // after the start-up reap, so a crashed process's pooled sandboxes go first
      return removed;
    },
    warmPoolState: () => pool.state(),
    close: () => pool.close(),
    reservedMemoryMb: () => reservedMemoryMb(settings),
    prepullState: () => puller.prepullState(),
    async engineVersion() {
      return (await facts().catch(() => undefined))?.product;
    },
    async runtimeStatus(): Promise<RuntimeStatus | undefined> {
      const name = settings.runtime;
      if (!name) return undefined;
      const f = await facts().catch(() => undefined);
      if (!f) return undefined;
      const registered = f.podman ? f.defaultRuntime === name : Object.hasOwn(f.runtimes, name);
      return { name, registered, ...(registered ? {} : { hint: runtimeHint(name, f.podman) }) };
    },
    async imagePresent(image = settings.image) {
      return puller.present(image).catch(() => undefined);
    },
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
