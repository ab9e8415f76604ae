// E2B sandboxes through the official `e2b` SDK (pinned 2.51.0: it creates with POST /v2/sandboxes).
//
// Endpoints come from the SDK's own env handling (E2B_DOMAIN, E2B_API_URL, E2B_SANDBOX_URL): we never pass
// domain/apiUrl/sandboxUrl, so they work exactly as the SDK documents. The API key is handed to the SDK
// per call and never reaches the sandbox (no envs, no files).
//
// Metadata on every sandbox: `sandcaster.instance` and `sandcaster.run` (the reaper and the webhook
// handler key on these). Commands run as the template's default user (`user` on E2B's base template)
// in /workspace, which create makes (owned by that user) when the template lacks it. Each command
// carries a random SANDCASTER_EXEC_ID in its environment (not a secret): it is how a timeout finds and
// kills everything the command started.
import { randomUUID } from 'node:crypto';
import { posix } from 'node:path';
import {
  Sandbox as E2bSandbox,
  AuthenticationError,
  CommandExitError,
  FileNotFoundError,
  InvalidArgumentError,
  NotFoundError,
  RateLimitError,
  SandboxNotFoundError,
  ServiceBusyError,
  TemplateError,
  type CommandHandle,
} from 'e2b';
import {
  SandboxError,
  WORKSPACE,
  type CreateOptions,
  type E2bSettings,
  type ExecOptions,
  type ExecResult,
  type FileEntry,
  type Sandbox,
  type SandboxProvider,
} from '../lib/sandbox.ts';
import { log, registerSecret } from '../lib/log.ts';

export const E2B_META_INSTANCE = 'sandcaster.instance';
export const E2B_META_RUN = 'sandcaster.run';

/** Creating may boot a cold template; anything else is a single quick call. Neither may hang a run. */
const CREATE_TIMEOUT_MS = 60_000;
const REQUEST_TIMEOUT_MS = 30_000;
/** Liveness probe after a failed call: decides SANDBOX_LOST vs SANDBOX_ERROR. */
const PROBE_TIMEOUT_MS = 5_000;
/** How long a killed command gets to report its end before we stop listening. */
const KILL_GRACE_MS = 5_000;
/** files.list depth for a "recursive" listing. */
const LIST_DEPTH = 64;
/** Env var that tags every process of one exec, so a timeout can find and kill all of them. */
const EXEC_TAG = 'SANDCASTER_EXEC_ID';

export function createE2bProvider(settings: E2bSettings): SandboxProvider {
  registerSecret(settings.apiKey);
  // `retries`: the SDK retries a 429 only when it carries an integer Retry-After, and never past the
  // request timeout, so a short provider back-off is absorbed and a long one fails the run promptly.
  const conn = () => ({ apiKey: settings.apiKey, requestTimeoutMs: REQUEST_TIMEOUT_MS, retries: 2 });

  return {
    name: 'e2b',
    defaultImage: settings.template,

    async available() {
      return Boolean(settings.apiKey);
    },

    async create(opts: CreateOptions): Promise<Sandbox> {
      opts.signal?.throwIfAborted();
      const template = opts.image ?? settings.template;
      const started = Date.now();
      // The SDK call is deliberately not given the abort signal: an aborted HTTP request could leave a
      // sandbox behind whose id we never learn. Instead we stop waiting at once and kill it when it arrives.
      const creating = E2bSandbox.create(template, {
        ...conn(),
        requestTimeoutMs: CREATE_TIMEOUT_MS,
        metadata: { [E2B_META_INSTANCE]: opts.instanceId, [E2B_META_RUN]: opts.runId },
        // E2B kills it on its own a minute after the run's deadline, even if this server is gone.
        timeoutMs: (opts.timeoutSecs + 60) * 1000,
        allowInternetAccess: settings.allowInternetAccess,
        // Public traffic = reaching sandbox ports from the internet without E2B's traffic token.
        network: { allowPublicTraffic: settings.allowInternetAccess },
      });
      let sbx: E2bSandbox;
      try {
        sbx = await untilAborted(creating, opts.signal);
      } catch (err) {
        if (opts.signal?.aborted) {
          creating.then((late) => killQuietly(late, opts.runId), () => undefined);
          throw opts.signal.reason;
        }
        throw toSandboxError(err, `creating an E2B sandbox from template "${template}"`, true);
      }
      try {
        // The base template has no /workspace; envd creates it owned by the default user.
        await untilAborted(sbx.files.makeDir(WORKSPACE, { requestTimeoutMs: REQUEST_TIMEOUT_MS }), opts.signal);
      } catch (err) {
        await killQuietly(sbx, opts.runId);
        if (opts.signal?.aborted) throw opts.signal.reason;
        throw toSandboxError(err, 'preparing /workspace in the E2B sandbox');
      }
      log.debug('e2b sandbox created', { runId: opts.runId, sandboxId: sbx.sandboxId, template, durationMs: Date.now() - started });
      return new E2bBox(sbx, opts.runId);
    },

    async reap(instanceId: string, keepRunIds: ReadonlySet<string>): Promise<number> {
      let killed = 0;
      try {
        const pages = E2bSandbox.list({
          ...conn(),
          query: { metadata: { [E2B_META_INSTANCE]: instanceId }, state: ['running', 'paused'] },
          limit: 100,
        });
        // Bounded: a misbehaving paginator must not spin forever.
        for (let page = 0; pages.hasNext && page < 100; page++) {
          const doomed = (await pages.nextItems()).filter((info) => !keepRunIds.has(info.metadata[E2B_META_RUN] ?? ''));
          const results = await Promise.allSettled(doomed.map((info) => E2bSandbox.kill(info.sandboxId, conn())));
          results.forEach((r, i) => {
            if (r.status === 'fulfilled' && r.value) killed++;
            // One stubborn sandbox must not stop the others; E2B's own timeout still ends it.
            if (r.status === 'rejected') log.warn('e2b reap: kill failed', { sandboxId: doomed[i]!.sandboxId, error: r.reason });
          });
        }
      } catch (err) {
        throw toSandboxError(err, 'reaping E2B sandboxes');
      }
      return killed;
    },
  };
}

class E2bBox implements Sandbox {
  readonly provider = 'e2b' as const;
  readonly id: string;
  private destroying?: Promise<void>;

  constructor(
    private readonly sbx: E2bSandbox,
    private readonly runId: string,
  ) {
    this.id = sbx.sandboxId;
  }

  async exec(command: string, opts: ExecOptions): Promise<ExecResult> {
    opts.signal?.throwIfAborted();
    const tag = randomUUID();
    const safe = (fn?: (chunk: string) => void) => (chunk: string) => {
      try {
        fn?.(chunk);
      } catch (err) {
        log.warn('exec output callback threw', { runId: this.runId, error: err });
      }
    };
    let handle: CommandHandle;
    try {
      handle = await untilAborted(
        this.sbx.commands.run(command, {
          background: true,
          cwd: opts.cwd ?? WORKSPACE,
          envs: { [EXEC_TAG]: tag },
          onStdout: safe(opts.onStdout),
          onStderr: safe(opts.onStderr),
          // Our timer governs the command; the SDK's own deadline would only drop the stream, not kill it.
          timeoutMs: 0,
          requestTimeoutMs: REQUEST_TIMEOUT_MS,
        }),
        opts.signal,
      );
    } catch (err) {
      if (opts.signal?.aborted) {
        // It may have started anyway: the tag finds it.
        void this.killTagged(tag).catch(() => undefined);
        throw opts.signal.reason;
      }
      throw await this.mapError(err, 'starting a command');
    }

    // A non-zero exit is a result for us, not a failure.
    const exited = handle.wait().then(
      (r) => ({ exitCode: r.exitCode }),
      (err: unknown) => {
        if (err instanceof CommandExitError) return { exitCode: err.exitCode };
        throw err;
      },
    );
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const stopped = new Promise<'timeout' | 'abort'>((resolve) => {
      // setTimeout fires at once past 2^31-1 ms; runs are far shorter, but never trust that.
      timer = setTimeout(() => resolve('timeout'), Math.min(opts.timeoutMs, 2 ** 31 - 1));
      onAbort = () => resolve('abort');
      if (opts.signal?.aborted) onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const outcome = await Promise.race([exited, stopped]);
      if (typeof outcome === 'object') {
        // envd reports -1 for a process ended by a signal: it never exited with a code.
        const code = outcome.exitCode;
        return { stdout: handle.stdout, stderr: handle.stderr, exitCode: code >= 0 ? code : null, timedOut: false };
      }
      await this.kill(handle, tag);
      if (outcome === 'abort') {
        // Whoever aborted is done with this command: no need to wait for its last words.
        void handle.disconnect();
        throw opts.signal?.reason;
      }
      // Give the stream a moment to deliver the end (and late output), then stop listening regardless.
      await Promise.race([exited.catch(() => undefined), delay(KILL_GRACE_MS)]);
      await handle.disconnect();
      return { stdout: handle.stdout, stderr: handle.stderr, exitCode: null, timedOut: true };
    } catch (err) {
      if (opts.signal?.aborted && err === opts.signal.reason) throw err;
      throw await this.mapError(err, 'running a command');
    } finally {
      clearTimeout(timer);
      if (onAbort) opts.signal?.removeEventListener('abort', onAbort);
      exited.catch(() => undefined);
    }
  }

  /**
   * Kills the command and everything it started. envd's kill signals only the top process, and
   * process groups are not dependable across envd versions, so every process carrying this exec's
   * tag in its environment is killed (orphaned and backgrounded children included), a few rounds
   * in case something forks meanwhile. Each round first stops every tagged process and only then
   * kills them: killing one by one would let a shell whose child died first run its next command
   * (`sleep 300; rm -rf x` must not reach the `rm` after a timeout).
   */
  private async kill(handle: CommandHandle, tag: string): Promise<void> {
    await Promise.allSettled([
      this.sbx.commands.kill(handle.pid, { requestTimeoutMs: REQUEST_TIMEOUT_MS }),
      this.killTagged(tag),
    ]);
  }

  private async killTagged(tag: string): Promise<void> {
    const script =
      'i=0; while [ $i -lt 5 ]; do found=; ' +
      'for p in /proc/[0-9]*; do ' +
      `if tr '\\0' '\\n' < "$p/environ" 2>/dev/null | grep -qx '${EXEC_TAG}=${tag}'; then ` +
      'kill -STOP "${p#/proc/}" 2>/dev/null && found="$found ${p#/proc/}"; fi; done; ' +
      '[ -z "$found" ] && break; kill -9 $found 2>/dev/null; i=$((i+1)); done; true';
    await this.sbx.commands.run(script, { timeoutMs: 15_000, requestTimeoutMs: REQUEST_TIMEOUT_MS });
  }

  async writeFile(path: string, data: Uint8Array, opts?: { signal?: AbortSignal }): Promise<void> {
    const signal = opts?.signal;
    try {
      // envd creates the parent folders and gives the file to the default user.
      await this.sbx.files.write(path, new Blob([new Uint8Array(data)]), { requestTimeoutMs: REQUEST_TIMEOUT_MS, signal });
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw await this.fileError(err, path, 'writing');
    }
  }

  async readFile(path: string, opts?: { maxBytes?: number; signal?: AbortSignal }): Promise<Uint8Array> {
    const max = opts?.maxBytes ?? Infinity;
    const signal = opts?.signal;
    let chunks: Uint8Array[] = [];
    let size = 0;
    try {
      // Streamed so `maxBytes` bounds memory: reading stops as soon as the file proves too large.
      const stream = await this.sbx.files.read(path, { format: 'stream', requestTimeoutMs: REQUEST_TIMEOUT_MS, signal });
      const reader = stream.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
        size += value.length;
        if (size > max) {
          await reader.cancel().catch(() => undefined);
          chunks = [];
          break;
        }
      }
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw await this.fileError(err, path, 'reading');
    }
    if (size > max) throw new SandboxError('FILE_TOO_LARGE', `${path} is larger than ${max} bytes`);
    const out = new Uint8Array(size);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }

  async list(path: string, opts?: { signal?: AbortSignal }): Promise<FileEntry[]> {
    const signal = opts?.signal;
    try {
      const entries = await this.sbx.files.list(path, { depth: LIST_DEPTH, requestTimeoutMs: REQUEST_TIMEOUT_MS, signal });
      const out: FileEntry[] = [];
      for (const e of entries) {
        const rel = posix.relative(path, e.path);
        if (!rel || rel.startsWith('..')) continue;
        out.push({ path: rel, type: e.type ?? 'other', size: e.size, mtimeMs: e.modifiedTime?.getTime() ?? 0 });
      }
      return out;
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw await this.fileError(err, path, 'listing');
    }
  }

  destroy(): Promise<void> {
    this.destroying ??= killQuietly(this.sbx, this.runId);
    return this.destroying;
  }

  /**
   * Failures caused by the path itself are the model's business (FILE_NOT_FOUND, IS_A_DIRECTORY: a tool
   * error it can fix); everything else is SANDBOX_ERROR / SANDBOX_LOST and ends the run. envd tells them
   * apart only by status and message: 404 is a missing path, 400 a path of the wrong kind, and a parent
   * that is a file surfaces as "not a directory" (with a 500 from some envd versions).
   */
  private async fileError(err: unknown, path: string, what: string): Promise<SandboxError> {
    const msg = err instanceof Error ? err.message : String(err);
    const opts = { cause: err };
    if (err instanceof FileNotFoundError) return new SandboxError('FILE_NOT_FOUND', `${path}: no such file or directory`, undefined, opts);
    if (/is a directory/i.test(msg)) return new SandboxError('IS_A_DIRECTORY', `${path}: is a directory`, undefined, opts);
    if (/not a directory/i.test(msg)) {
      const why = what === 'listing' ? 'is not a directory' : 'a parent folder is a file';
      return new SandboxError('FILE_NOT_FOUND', `${path}: ${why}`, undefined, opts);
    }
    if (err instanceof InvalidArgumentError) return new SandboxError('FILE_NOT_FOUND', `${path}: ${msg}`, undefined, opts);
    return this.mapError(err, `${what} ${path}`);
  }

  /** After a failed call, asks envd whether the sandbox still runs: a dead one is SANDBOX_LOST. */
  private async mapError(err: unknown, what: string): Promise<SandboxError> {
    if (err instanceof SandboxError) return err;
    if (this.destroying) return new SandboxError('SANDBOX_LOST', `E2B sandbox ${this.id} was destroyed while ${what}`, undefined, { cause: err });
    const mapped = toSandboxError(err, what);
    if (mapped.code === 'SANDBOX_LOST' || err instanceof AuthenticationError || err instanceof RateLimitError) return mapped;
    const running = await this.sbx.isRunning({ requestTimeoutMs: PROBE_TIMEOUT_MS }).catch(() => undefined);
    if (running === false) return lost(this.id, what, err);
    return mapped;
  }
}

function lost(id: string | undefined, what: string, cause: unknown): SandboxError {
  return new SandboxError(
    'SANDBOX_LOST',
    `E2B sandbox ${id ? id + ' ' : ''}is no longer running (${what})`,
    'it was killed or reached its E2B timeout; start the run again',
    { cause },
  );
}

/** Maps an SDK or transport failure to our error codes, with a hint an operator can act on. */
function toSandboxError(err: unknown, what: string, creating = false): SandboxError {
  if (err instanceof SandboxError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  const opts = { cause: err };
  if (err instanceof AuthenticationError) {
    return new SandboxError('SANDBOX_ERROR', `E2B rejected the credentials while ${what}: ${msg}`, 'check E2B_API_KEY', opts);
  }
  if (err instanceof RateLimitError) {
    return new SandboxError(
      'SANDBOX_ERROR',
      `E2B rate limit or quota reached while ${what}: ${msg}`,
      'E2B is limiting requests or the concurrent-sandbox quota of this API key is used up; retry later, lower SANDCASTER_MAX_CONCURRENT_RUNS or raise the quota in the E2B dashboard',
      opts,
    );
  }
  if (err instanceof ServiceBusyError) {
    return new SandboxError('SANDBOX_ERROR', `E2B is temporarily out of capacity (${what}): ${msg}`, 'retry in a little while', opts);
  }
  if (err instanceof SandboxNotFoundError) return lost(undefined, what, err);
  if (err instanceof TemplateError || (creating && err instanceof NotFoundError) || (creating && statusOf(err) === 404)) {
    return new SandboxError('SANDBOX_ERROR', `E2B could not use the template while ${what}: ${msg}`, 'check the E2B template name (SANDCASTER_E2B_TEMPLATE or e2b.template in sandcaster.json)', opts);
  }
  if (isNetworkError(err)) {
    return new SandboxError('SANDBOX_ERROR', `cannot reach E2B while ${what}: ${causeText(err)}`, 'check network access to E2B (and E2B_DOMAIN / E2B_API_URL if set), then retry', opts);
  }
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
    return new SandboxError('SANDBOX_ERROR', `E2B did not answer in time while ${what}: ${msg}`, 'E2B may be slow or unreachable; retry later', opts);
  }
  const status = statusOf(err);
  if (status !== undefined && status >= 500) {
    return new SandboxError('SANDBOX_ERROR', `E2B failed while ${what}: ${msg}`, 'E2B had a server error; retry later (see status.e2b.dev)', opts);
  }
  return new SandboxError('SANDBOX_ERROR', `E2B error while ${what}: ${msg}`, undefined, opts);
}

function statusOf(err: unknown): number | undefined {
  const s = (err as { statusCode?: unknown })?.statusCode;
  if (typeof s === 'number') return s;
  // Errors the SDK builds from an HTTP answer read "<status>: <message>".
  const m = err instanceof Error ? /^(\d{3}): /.exec(err.message) : null;
  return m ? Number(m[1]) : undefined;
}

/** undici's `fetch failed` (refused, DNS, reset) or Connect's wrapped version of it. */
function isNetworkError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err.cause as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && /^(ECONN|ENOTFOUND|EAI_|EHOST|ENETUNREACH|EPIPE|UND_ERR_SOCKET|UND_ERR_CONNECT)/.test(code)) return true;
  return /fetch failed/i.test(err.message);
}

function causeText(err: unknown): string {
  const cause = (err as Error).cause as { code?: string; message?: string } | undefined;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}

async function killQuietly(sbx: E2bSandbox, runId: string): Promise<void> {
  try {
    const found = await sbx.kill({ requestTimeoutMs: REQUEST_TIMEOUT_MS });
    log.debug('e2b sandbox destroyed', { runId, sandboxId: sbx.sandboxId, found });
  } catch (err) {
    // E2B's own timeout (run timeout + 60 s) and the reaper still get it.
    log.warn('e2b sandbox kill failed', { runId, sandboxId: sbx.sandboxId, error: err });
  }
}

/** Resolves or rejects with `p`, or rejects with the signal's reason as soon as it aborts. */
function untilAborted<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** The module interface the composition root (app.ts) loads for the `e2b` row. */
export const createProvider = createE2bProvider;
