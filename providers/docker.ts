// Docker sandboxes through the engine API (dockerode), never the docker CLI (SPEC section 6).
// One hardened container per sandbox, with a labelled named volume at /workspace; commands run through
// `docker exec`, files move through the archive API so images need nothing but /bin/sh.
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import Docker from 'dockerode';
import { log } from '../lib/log.ts';
import {
  SandboxError,
  WORKSPACE,
  type CreateOptions,
  type DockerSettings,
  type ExecOptions,
  type ExecResult,
  type FileEntry,
  type Sandbox,
  type SandboxProvider,
} from '../lib/sandbox.ts';
import { packTar, TarReader, type TarEntry } from '../lib/tar.ts';

/** Bound on one engine API call, so a stuck engine can never hang a run. */
const ENGINE_TIMEOUT_MS = 20_000;
/** Bound on one archive upload or download, body included. */
const TRANSFER_TIMEOUT_MS = 300_000;
const PING_TIMEOUT_MS = 2_000;
const PULL_TIMEOUT_MS = 15 * 60_000;
/** Characters of output kept per stream at the start and at the end; the middle of a flood is dropped. */
const OUTPUT_KEEP = 1 << 20;
/**
 * Keeps the container alive with nothing but sh: `read` blocks on stdin, a pipe the engine holds open
 * because of OpenStdin (busybox-only images may lack a `sleep` on PATH). Init: true puts docker-init in
 * front as PID 1 to reap zombies.
 */
const KEEPALIVE = ['/bin/sh', '-c', 'read _'];
/**
 * Exec cannot be killed through the API, so every command runs under this wrapper: it prints its pid as the
 * first stdout line, then becomes the command. The engine starts each exec as a session and process-group
 * leader (measured: pid = pgid = sid), so `kill -9 -<pid>` later ends the command and every child it forked.
 * It also changes to the working directory itself: with the API's WorkingDir a missing folder is a bare
 * exit code 126, while `cd` says what is wrong on stderr.
 */
const WRAPPER = 'echo $$; cd "$2" || exit; exec /bin/sh -c "$1"';
const ENGINE_HINT = 'Start the Docker engine, or point DOCKER_HOST at one that answers (e.g. unix:///var/run/docker.sock).';

// Go's os.FileMode bits as reported in the archive API's X-Docker-Container-Path-Stat header.
const isDir = (mode: number) => Math.floor(mode / 2 ** 31) % 2 === 1;
const isSymlink = (mode: number) => Math.floor(mode / 2 ** 27) % 2 === 1;

interface EngineError {
  name?: string;
  code?: string;
  statusCode?: number;
  message?: string;
  json?: { message?: string };
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOENT', 'EACCES', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * The engine's own words. dockerode puts them in `json` for plain calls, but for streamed ones (archive, exec
 * start, pull) only in the message, after its own guess from the status code: "(HTTP code 404) <guess> - <engine>".
 */
function engineSaid(err: unknown): string {
  const e = err as EngineError;
  return (e?.json?.message ?? /^\(HTTP code \d+\) [^-]*- (.*)$/s.exec(e?.message ?? '')?.[1] ?? '').trim();
}

function engineMessage(err: unknown): string {
  return engineSaid(err) || ((err as EngineError)?.message ?? String(err)).trim();
}

function status(err: unknown): number | undefined {
  const e = (err instanceof SandboxError ? err.cause : err) as EngineError | undefined;
  return e?.statusCode;
}

/** Maps a dockerode failure: engine unreachable -> SANDBOX_ERROR with a hint; container gone -> SANDBOX_LOST. */
function toSandboxError(err: unknown, what: string): SandboxError {
  if (err instanceof SandboxError) return err;
  const e = err as EngineError;
  const msg = engineMessage(err);
  const said = engineSaid(err);
  if (e?.code && UNREACHABLE.has(e.code)) {
    return new SandboxError('SANDBOX_ERROR', `${what}: the Docker engine is unreachable (${msg})`, ENGINE_HINT, { cause: err });
  }
  if ((e?.statusCode === 404 && /no such container/i.test(said)) || (e?.statusCode === 409 && /not running|is paused|removal/i.test(said))) {
    return new SandboxError('SANDBOX_LOST', `${what}: the sandbox container is gone (${msg})`, undefined, { cause: err });
  }
  return new SandboxError('SANDBOX_ERROR', `${what}: ${msg}`, undefined, { cause: err });
}

function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw signal.reason;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Absolute, normalised, without a trailing slash (which would change what the archive API returns). */
function absolute(path: string): string {
  return posix.resolve(WORKSPACE, path);
}

/** Parses "uid" or "uid:gid" (lib/config.ts only lets numeric values through); tar headers need numbers. */
function parseUser(user: string): { uid: number; gid: number } {
  const m = /^(\d+)(?::(\d+))?$/.exec(user);
  if (!m) throw new Error(`docker.user must be "uid" or "uid:gid" (numeric), got ${JSON.stringify(user)}`);
  return { uid: Number(m[1]), gid: Number(m[2] ?? m[1]) };
}

/** Keeps the head and the tail of a stream's text so a command that floods output cannot exhaust memory. */
function collector() {
  let head = '';
  let tail = '';
  let omitted = 0;
  return {
    add(s: string) {
      if (head.length < OUTPUT_KEEP) {
        const n = OUTPUT_KEEP - head.length;
        head += s.slice(0, n);
        s = s.slice(n);
      }
      tail += s;
      if (tail.length > 2 * OUTPUT_KEEP) {
        omitted += tail.length - OUTPUT_KEEP;
        tail = tail.slice(-OUTPUT_KEEP);
      }
    },
    text: () => (omitted ? `${head}\n[... ${omitted} characters omitted ...]\n${tail}` : head + tail),
  };
}

function slug(s: string): string {
  return s.replace(/[^a-zA-Z0-9_.-]/g, '-').slice(0, 40);
}

/**
 * The hardened container of one sandbox (SPEC section 6). Exported so the benchmark floor creates exactly the
 * same container as the provider does.
 */
export function containerSpec(
  settings: DockerSettings,
  c: { name: string; image: string; labels: Record<string, string>; volume: string },
): Docker.ContainerCreateOptions {
  const bytes = settings.memoryMb * 1024 * 1024;
  return {
    name: c.name,
    Image: c.image,
    Cmd: KEEPALIVE,
    OpenStdin: true,
    User: settings.user,
    WorkingDir: WORKSPACE,
    Env: [], // nothing of ours: the image's own PATH etc. only, never a key
    Labels: c.labels,
    NetworkDisabled: settings.network === 'none',
    HostConfig: {
      Memory: bytes,
      MemorySwap: bytes, // same as Memory: no swap, so a runaway allocation is OOM-killed
      NanoCpus: Math.round(settings.cpus * 1e9),
      PidsLimit: settings.pidsLimit,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      Init: true,
      NetworkMode: settings.network,
      ReadonlyRootfs: settings.readOnlyRootfs,
      // /tmp stays writable for tools on a read-only root (the archive API cannot see into a tmpfs).
      Tmpfs: settings.readOnlyRootfs ? { '/tmp': `rw,nosuid,nodev,exec,size=${settings.memoryMb}m,mode=1777` } : undefined,
      // A named volume, not the container's layer: the archive API writes into it even on a read-only root.
      Mounts: [{ Type: 'volume', Source: c.volume, Target: WORKSPACE, VolumeOptions: { Labels: c.labels } as unknown as Docker.MountSettings['VolumeOptions'] }],
    },
  };
}

/**
 * The engine client for DOCKER_HOST as configured. A unix socket is taken from the setting itself; other
 * schemes (tcp://, TLS with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, ssh://) are left to docker-modem, which
 * reads the same variables from the environment.
 */
export function engineClient(host: string | undefined): Docker {
  if (host?.startsWith('unix://')) return new Docker({ socketPath: host.slice('unix://'.length) || '/var/run/docker.sock' });
  return new Docker();
}

export interface DockerProviderOptions {
  docker?: Docker;
  /** Bound on single engine calls (default 20 s); tests shorten it. */
  engineTimeoutMs?: number;
}

export function createDockerProvider(settings: DockerSettings, opts: DockerProviderOptions = {}): SandboxProvider {
  const docker = opts.docker ?? engineClient(settings.host);
  const engineTimeoutMs = opts.engineTimeoutMs ?? ENGINE_TIMEOUT_MS;
  const owner = parseUser(settings.user);
  const pulls = new Map<string, Promise<void>>();

  /** Runs one engine call under a deadline; the call gets the signal that aborts its HTTP request. */
  async function call<T>(what: string, fn: (signal: AbortSignal) => Promise<T>, ms = engineTimeoutMs): Promise<T> {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), ms);
    try {
      return await fn(ac.signal);
    } catch (err) {
      if (ac.signal.aborted) {
        throw new SandboxError('SANDBOX_ERROR', `${what}: the Docker engine did not answer within ${Math.round(ms / 1000)}s`, ENGINE_HINT, { cause: err });
      }
      throw toSandboxError(err, what);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Removes a container and its volume; "already gone" counts as success. */
  async function removeSandbox(container: string, volume: string | undefined): Promise<void> {
    await call('remove container', (s) => docker.getContainer(container).remove({ force: true, v: true, abortSignal: s })).catch((err) => {
      if (status(err) !== 404 && !/removal of container .* is already in progress/i.test(engineMessage(err.cause))) throw err;
    });
    if (!volume) return;
    // The engine can report the volume in use for a moment while a concurrent removal finishes.
    for (let attempt = 0; ; attempt++) {
      try {
        await call('remove volume', (s) => docker.getVolume(volume).remove({ abortSignal: s }));
        return;
      } catch (err) {
        if (status(err) === 404) return;
        if (status(err) !== 409 || attempt >= 10) throw err;
        await sleep(100);
      }
    }
  }

  /** Pulls a missing image once, however many creates are waiting for it; each waiter can give up on its own. */
  function pull(image: string, signal?: AbortSignal): Promise<void> {
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
  }

  async function doPull(image: string): Promise<void> {
    const ref = /[:@][^/]*$/.test(image) ? image : `${image}:latest`;
    log.info('pulling docker image', { image: ref });
    const started = Date.now();
    let lastLog = 0;
    try {
      await call(
        `pull ${ref}`,
        async (s) => {
          const stream = (await docker.pull(ref, { abortSignal: s })) as NodeJS.ReadableStream;
          await new Promise<void>((resolve, reject) => {
            docker.modem.followProgress(
              stream,
              (err: unknown) => (err ? reject(err) : resolve()),
              (ev: { status?: string; progress?: string; id?: string; error?: string }) => {
                if (Date.now() - lastLog < 2000 || !ev.status) return; // progress at most every 2 s
                lastLog = Date.now();
                log.info('pulling docker image', { image: ref, status: ev.status, layer: ev.id, progress: ev.progress });
              },
            );
          });
        },
        PULL_TIMEOUT_MS,
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
        container = await call('create container', (s) => docker.createContainer(spec(s)));
      } catch (err) {
        if (status(err) !== 404 || !/no such image/i.test(engineMessage((err as SandboxError).cause))) throw err;
        await pull(image, o.signal);
        throwIfAborted(o.signal);
        container = await call('create container', (s) => docker.createContainer(spec(s)));
      }
      throwIfAborted(o.signal);
      // A new volume copies the image's /workspace, usually root-owned. The sandbox user must own it, and
      // with CapDrop ALL nothing inside the container can chown. The engine can: extracting a tar whose only
      // entry is named "/" applies that entry's owner and mode to the extraction directory itself (an entry
      // named "." is skipped by the engine). Done before start, within the volume, so a read-only root is fine.
      const root = packTar([{ name: '/', type: 'dir', mode: 0o755, uid: owner.uid, gid: owner.gid }]);
      await Promise.all([
        call('prepare /workspace', (s) => container.putArchive(Readable.from(root), { path: WORKSPACE, abortSignal: s })),
        // Without /bin/sh the container would start (docker-init runs) and die at once; say so now instead.
        call('check /bin/sh', async (s) => ((await container.infoArchive({ path: '/bin/sh', abortSignal: s })) as Readable).resume()).catch((err) => {
          if (status(err) !== 404) throw err;
          throw new SandboxError('SANDBOX_ERROR', `image ${image} has no /bin/sh`, `Sandbox images need /bin/sh; set docker.image / SANDCASTER_DOCKER_IMAGE to one that has it.`);
        }),
      ]);
      throwIfAborted(o.signal);
      await call('start container', (s) => container.start({ abortSignal: s }));
      throwIfAborted(o.signal);
      log.debug('docker sandbox created', { runId: o.runId, container: name, image, durationMs: Date.now() - started });
      return new DockerSandbox(container, name, volume);
    } catch (err) {
      // Whatever was made is removed; by name, so this works even when the create call itself failed late.
      await removeSandbox(name, volume).catch((e) => log.warn('could not clean up a half-created sandbox; the reaper will retry', { runId: o.runId, container: name, error: e }));
      if (o.signal?.aborted) throw o.signal.reason;
      throw toSandboxError(err, 'create sandbox');
    }
  }

  class DockerSandbox implements Sandbox {
    readonly provider = 'docker' as const;
    readonly id: string;
    private destroying: Promise<void> | undefined;
    private destroyed = false;

    constructor(
      private readonly container: Docker.Container,
      private readonly name: string,
      private readonly volume: string,
    ) {
      this.id = container.id;
    }

    async exec(command: string, o: ExecOptions): Promise<ExecResult> {
      throwIfAborted(o.signal);
      const exec = await call('exec', (s) =>
        this.container.exec({
          Cmd: ['/bin/sh', '-c', WRAPPER, 'sandcaster', command, absolute(o.cwd ?? WORKSPACE)],
          AttachStdout: true,
          AttachStderr: true,
          Tty: false,
          User: settings.user,
          abortSignal: s,
        }),
      );
      const stream = (await call('exec', (s) => exec.start({ hijack: true, stdin: false, abortSignal: s }))) as NodeJS.ReadableStream & { destroy(): void };

      const out = collector();
      const err = collector();
      const outText = new StringDecoder('utf8');
      const errText = new StringDecoder('utf8');
      // A throwing listener must not crash the process from inside a stream callback.
      const notify = (cb: ((s: string) => void) | undefined, s: string) => {
        try {
          cb?.(s);
        } catch (e) {
          log.warn('exec output listener failed', { error: e });
        }
      };
      const emitOut = (s: string) => s && (out.add(s), notify(o.onStdout, s));
      const emitErr = (s: string) => s && (err.add(s), notify(o.onStderr, s));
      let pid: number | undefined;
      let first = Buffer.alloc(0); // stdout bytes until the wrapper's pid line is complete
      const onStdoutBytes = (b: Buffer): boolean => {
        if (pid === undefined) {
          first = Buffer.concat([first, b]);
          const nl = first.indexOf(10);
          if (nl < 0) return true;
          pid = Number(first.subarray(0, nl).toString('latin1')) || 0;
          b = first.subarray(nl + 1);
        }
        emitOut(outText.write(b));
        return true;
      };
      const onStderrBytes = (b: Buffer): boolean => (emitErr(errText.write(b)), true);
      // demuxStream only ever calls write(); plain objects stand in for writable streams.
      const sink = (write: (b: Buffer) => boolean) => ({ write }) as unknown as NodeJS.WritableStream;
      docker.modem.demuxStream(stream, sink(onStdoutBytes), sink(onStderrBytes));
      const ended = new Promise<void>((resolve) => {
        stream.once('end', resolve);
        stream.once('close', resolve);
        stream.once('error', () => resolve());
      });

      const outcome = await new Promise<'done' | 'timeout' | 'abort'>((resolve) => {
        const finish = (how: 'done' | 'timeout' | 'abort') => {
          clearTimeout(timer);
          o.signal?.removeEventListener('abort', onAbort);
          resolve(how);
        };
        const timer = setTimeout(() => finish('timeout'), Math.min(o.timeoutMs, 2 ** 31 - 1)); // larger would fire at once
        const onAbort = () => finish('abort');
        o.signal?.addEventListener('abort', onAbort, { once: true });
        if (o.signal?.aborted) finish('abort');
        void ended.then(() => finish('done'));
      });
      const result = () => {
        if (pid === undefined) emitOut(outText.write(first)); // never saw the pid line: pass on what came
        emitOut(outText.end());
        emitErr(errText.end());
        return { stdout: out.text(), stderr: err.text() };
      };

      if (outcome === 'done') {
        stream.destroy(); // a hijacked connection stays half-open after the output ends
        const info = await this.finished(exec);
        if (info.ExitCode === null || info.ExitCode === 137) await this.assertRunning(); // killed with its container?
        return { ...result(), exitCode: info.ExitCode, timedOut: false };
      }

      try {
        await this.killGroup(pid, exec);
        await Promise.race([ended, sleep(500)]); // let the last output in
      } catch (e) {
        if (outcome === 'timeout') throw e;
      } finally {
        stream.destroy();
      }
      if (outcome === 'abort') throw o.signal!.reason;
      return { ...result(), exitCode: null, timedOut: true };
    }

    /** Exec exit code; the stream can close a moment before the engine records the exit. */
    private async finished(exec: Docker.Exec): Promise<Docker.ExecInspectInfo> {
      for (let i = 0; ; i++) {
        const info = await call('exec', (s) => exec.inspect({ abortSignal: s }));
        if (!info.Running || i >= 40) return info;
        await sleep(25);
      }
    }

    /**
     * After a SIGKILL-like end: was it the command (OOM, kill) or the whole container? The exec's output ends a
     * moment before the engine marks a killed container as stopped, so look a few times before trusting "running".
     */
    private async assertRunning(): Promise<void> {
      for (let i = 0; i < 8; i++) {
        const info = await call('inspect container', (s) => this.container.inspect({ abortSignal: s }));
        if (!info.State.Running) throw new SandboxError('SANDBOX_LOST', `the sandbox container stopped (${info.State.Status}, exit code ${info.State.ExitCode})`);
        await sleep(40);
      }
    }

    /** Kills the command's whole process group from a second exec, then waits until the engine agrees it ended. */
    private async killGroup(pid: number | undefined, exec: Docker.Exec): Promise<void> {
      for (let i = 0; pid === undefined && i < 40; i++) await sleep(25); // timed out before the pid line came
      if (pid) {
        const kill = await call('exec', (s) =>
          this.container.exec({ Cmd: ['/bin/sh', '-c', 'kill -9 -"$1" "$1" 2>/dev/null; true', 'sandcaster', String(pid)], User: settings.user, AttachStdout: true, AttachStderr: true, abortSignal: s }),
        );
        const ks = (await call('exec', (s) => kill.start({ hijack: true, stdin: false, abortSignal: s }))) as NodeJS.ReadableStream & { destroy(): void };
        ks.resume();
        const timer = setTimeout(() => ks.destroy(), engineTimeoutMs);
        await new Promise((r) => (ks.once('end', r), ks.once('close', r), ks.once('error', r)));
        clearTimeout(timer);
        ks.destroy();
      }
      const info = await this.finished(exec);
      if (info.Running) log.warn('docker exec still running after its process group was killed', { container: this.name, pid });
    }

    async writeFile(path: string, data: Uint8Array): Promise<void> {
      const target = absolute(path);
      if (target === '/') throw new SandboxError('IS_A_DIRECTORY', '/ is a directory');
      const file = { name: posix.basename(target), type: 'file' as const, mode: 0o644, ...owner, data };
      try {
        await this.put(posix.dirname(target), [file]);
        return;
      } catch (err) {
        if (!(err instanceof SandboxError && err.code === 'FILE_NOT_FOUND')) throw err;
      }
      // The parent is missing. Find the nearest existing ancestor and send the missing folders with the file,
      // owned by the sandbox user (left out, the engine would create them owned by root). Folders that exist
      // are not in the archive, so their owner and mode stay as they are.
      const missing: string[] = [];
      let dir = posix.dirname(target);
      while (dir !== '/' && !(await this.exists(dir))) {
        missing.unshift(posix.basename(dir));
        dir = posix.dirname(dir);
      }
      const entries = missing.map((_, i) => ({ name: missing.slice(0, i + 1).join('/'), type: 'dir' as const, mode: 0o755, ...owner }));
      await this.put(dir, [...entries, { ...file, name: [...missing, file.name].join('/') }]);
    }

    private async exists(path: string): Promise<boolean> {
      try {
        const res = (await call('stat', (s) => this.container.infoArchive({ path, abortSignal: s }))) as Readable;
        res.resume(); // dockerode hands back the (empty) HEAD response as a stream; unread, it pins the socket
        return true;
      } catch (err) {
        if (status(err) === 404 && !(err instanceof SandboxError && err.code === 'SANDBOX_LOST')) return false;
        throw err;
      }
    }

    private async put(dir: string, entries: Parameters<typeof packTar>[0]): Promise<void> {
      try {
        await call(
          'write file',
          // noOverwriteDirNonDir: without it the engine would delete a whole folder to put a file in its place.
          (s) => this.container.putArchive(Readable.from(packTar(entries)), { path: dir, noOverwriteDirNonDir: true, abortSignal: s }),
          TRANSFER_TIMEOUT_MS,
        );
      } catch (err) {
        throw this.pathError(err, posix.join(dir, entries[entries.length - 1]!.name));
      }
    }

    /** Per-path failures become codes the agent sees as a tool error (not a run-ending SANDBOX_ERROR). */
    private pathError(err: unknown, path: string): unknown {
      if (!(err instanceof SandboxError) || err.code !== 'SANDBOX_ERROR' || err.hint) return err;
      const msg = engineMessage(err.cause);
      if (status(err) === 404) return new SandboxError('FILE_NOT_FOUND', `${path}: no such file or directory`, undefined, { cause: err.cause });
      if (/cannot overwrite directory/i.test(msg)) return new SandboxError('IS_A_DIRECTORY', `${path} is a directory`, undefined, { cause: err.cause });
      if (/not a directory/i.test(msg)) return new SandboxError('FILE_NOT_FOUND', `${path}: a parent of it is not a directory`, undefined, { cause: err.cause });
      if (/read-only/i.test(msg)) {
        return new SandboxError('FILE_NOT_FOUND', `${path}: the sandbox's root filesystem is read-only; files can be written under ${WORKSPACE}`, undefined, { cause: err.cause });
      }
      return err;
    }

    /**
     * GET archive of a path, following a symlink at the path itself. Resolves with the open tar stream and the
     * engine's stat of the path (from the response header, before any of the body is read).
     */
    private async archive(path: string, signal: AbortSignal): Promise<{ stream: Readable; stat: { size: number; mode: number; linkTarget?: string } }> {
      for (let hops = 0; ; hops++) {
        let stream: Readable;
        try {
          stream = (await this.container.getArchive({ path, abortSignal: signal })) as Readable;
        } catch (err) {
          throw this.pathError(toSandboxError(err, 'read'), path);
        }
        const header = (stream as Readable & { headers?: Record<string, string> }).headers?.['x-docker-container-path-stat'];
        const stat = header ? JSON.parse(Buffer.from(header, 'base64').toString('utf8')) : { size: 0, mode: 0 };
        if (!isSymlink(stat.mode) || !stat.linkTarget || hops >= 8) return { stream, stat };
        stream.destroy();
        path = stat.linkTarget;
      }
    }

    async readFile(path: string, opts: { maxBytes?: number } = {}): Promise<Uint8Array> {
      path = absolute(path);
      return call(
        'read file',
        async (signal) => {
          const { stream, stat } = await this.archive(path, signal);
          try {
            if (isDir(stat.mode)) throw new SandboxError('IS_A_DIRECTORY', `${path} is a directory`);
            const tooLarge = (size: number) =>
              opts.maxBytes !== undefined && size > opts.maxBytes ? new SandboxError('FILE_TOO_LARGE', `${path} is too large (${size} bytes; the limit is ${opts.maxBytes})`) : null;
            const early = tooLarge(stat.size);
            if (early) throw early;
            let entry: TarEntry | undefined;
            const chunks: Buffer[] = [];
            let failure: SandboxError | null = null;
            const tar = new TarReader({
              entry: (e) => {
                if (entry) return false; // only the first entry is the file asked for
                entry = e;
                if (e.type === 'dir') failure = new SandboxError('IS_A_DIRECTORY', `${path} is a directory`);
                else if (e.type !== 'file') failure = new SandboxError('FILE_NOT_FOUND', `${path} is not a regular file`);
                else failure = tooLarge(e.size);
              },
              data: (c) => chunks.push(c),
            });
            for await (const chunk of stream) {
              tar.write(chunk as Buffer);
              if (failure) throw failure;
              if (tar.ended) break;
            }
            if (!entry) throw new SandboxError('FILE_NOT_FOUND', `${path}: no such file`);
            return new Uint8Array(Buffer.concat(chunks));
          } finally {
            stream.destroy();
          }
        },
        TRANSFER_TIMEOUT_MS,
      );
    }

    async list(path: string): Promise<FileEntry[]> {
      path = absolute(path);
      return call(
        'list files',
        async (signal) => {
          const { stream, stat } = await this.archive(path, signal);
          try {
            if (!isDir(stat.mode)) throw new SandboxError('FILE_NOT_FOUND', `${path} is not a directory`);
            const entries: FileEntry[] = [];
            const sizes = new Map<string, number>(); // for hard links, which carry no size of their own
            let prefix: string | undefined; // the listed folder's own entry, e.g. "workspace/"
            const tar = new TarReader({
              entry: (e) => {
                const name = e.name.replace(/\/+$/, '');
                if (prefix === undefined) {
                  prefix = `${name}/`;
                  return false;
                }
                if (!name.startsWith(prefix)) return false;
                const type = e.type === 'hardlink' ? 'file' : e.type;
                const size = e.type === 'hardlink' ? (sizes.get(e.linkname.replace(/\/+$/, '')) ?? 0) : e.size;
                if (type === 'file') sizes.set(name, size);
                entries.push({ path: name.slice(prefix.length), type, size, mtimeMs: e.mtimeMs });
                return false; // file contents are skipped as they stream past
              },
            });
            for await (const chunk of stream) tar.write(chunk as Buffer);
            return entries;
          } finally {
            stream.destroy();
          }
        },
        TRANSFER_TIMEOUT_MS,
      );
    }

    destroy(): Promise<void> {
      if (this.destroyed) return Promise.resolve();
      this.destroying ??= removeSandbox(this.name, this.volume).then(
        () => {
          this.destroyed = true;
          log.debug('docker sandbox destroyed', { container: this.name });
        },
        (err) => {
          this.destroying = undefined; // a later call (or the reaper) tries again
          throw err;
        },
      );
      return this.destroying;
    }
  }

  async function reap(instanceId: string, keepRunIds: ReadonlySet<string>): Promise<number> {
    const filters = { label: [`sandcaster.instance=${instanceId}`] };
    const containers = await call('list containers', (s) => docker.listContainers({ all: true, filters, abortSignal: s }));
    let removed = 0;
    for (const c of containers) {
      if (keepRunIds.has(c.Labels['sandcaster.run'] ?? '')) continue;
      const volume = (c.Mounts ?? []).find((m) => m.Type === 'volume' && m.Destination === WORKSPACE)?.Name;
      try {
        await removeSandbox(c.Id, volume);
        removed++;
      } catch (err) {
        if (err instanceof SandboxError && err.hint === ENGINE_HINT) throw err; // engine gone: no point going on
        log.warn('could not reap a docker sandbox; will retry', { instanceId, container: c.Id, error: err });
      }
    }
    // Volumes whose container is already gone (a removal interrupted half-way).
    const { Volumes } = await call('list volumes', (s) => docker.listVolumes({ filters, abortSignal: s }));
    for (const v of Volumes ?? []) {
      if (keepRunIds.has(v.Labels?.['sandcaster.run'] ?? '')) continue;
      await call('remove volume', (s) => docker.getVolume(v.Name).remove({ abortSignal: s })).catch(() => {}); // in use: next round
    }
    if (removed) log.info('reaped docker sandboxes', { instanceId, count: removed });
    return removed;
  }

  return {
    name: 'docker',
    defaultImage: settings.image,
    async available() {
      try {
        // The typings omit ping's options; dockerode 4 does take abortSignal there.
        const engine = docker as unknown as { ping(o: { abortSignal: AbortSignal }): Promise<unknown> };
        await call('ping', (s) => engine.ping({ abortSignal: s }), PING_TIMEOUT_MS);
        return true;
      } catch {
        return false;
      }
    },
    create,
    reap,
  };
}
