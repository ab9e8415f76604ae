// The Docker engine as the provider sees it: the client, one bounded call, and how engine failures map to
// SandboxError codes. Every engine call goes through `call`, so none can hang a run or outlive its signal.
import Docker from 'dockerode';
import { deadline } from '../../lib/abort.ts';
import { SandboxError } from '../../lib/sandbox.ts';

/** Bound on one engine API call, so a stuck engine can never hang a run. */
export const ENGINE_TIMEOUT_MS = 20_000;
/** Bound on one archive upload, body included. */
export const TRANSFER_TIMEOUT_MS = 300_000;
export const PING_TIMEOUT_MS = 2_000;
export const PULL_TIMEOUT_MS = 15 * 60_000;
export const ENGINE_HINT = 'Start the Docker engine, or point DOCKER_HOST at one that answers (e.g. unix:///var/run/docker.sock).';

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
export function engineSaid(err: unknown): string {
  const e = err as EngineError;
  return (e?.json?.message ?? /^\(HTTP code \d+\) [^-]*- (.*)$/s.exec(e?.message ?? '')?.[1] ?? '').trim();
}

export function engineMessage(err: unknown): string {
  return engineSaid(err) || ((err as EngineError)?.message ?? String(err)).trim();
}

/** HTTP status of an engine failure (also when already wrapped in a SandboxError). */
export function status(err: unknown): number | undefined {
  const e = (err instanceof SandboxError ? err.cause : err) as EngineError | undefined;
  return e?.statusCode;
}

/** Maps a dockerode failure: engine unreachable -> SANDBOX_ERROR with a hint; container gone -> SANDBOX_LOST. */
export function toSandboxError(err: unknown, what: string): SandboxError {
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

/**
 * The engine client for DOCKER_HOST as configured. A unix socket is taken from the setting itself; other
 * schemes (tcp://, TLS with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, ssh://) are left to docker-modem, which
 * reads the same variables from the environment.
 */
export function engineClient(host: string | undefined): Docker {
  if (host?.startsWith('unix://')) return new Docker({ socketPath: host.slice('unix://'.length) || '/var/run/docker.sock' });
  return new Docker();
}

export interface CallOptions {
  /** Deadline of this call (default: the engine timeout). */
  ms?: number;
  /** The run's signal: aborting it ends the call at once and rejects with the signal's reason. */
  signal?: AbortSignal;
}

export interface Engine {
  readonly docker: Docker;
  /** Bound on single engine calls. */
  readonly timeoutMs: number;
  /** Runs one engine call under a deadline; `fn` gets the signal that aborts its HTTP request. */
  call<T>(what: string, fn: (signal: AbortSignal) => Promise<T>, opts?: CallOptions): Promise<T>;
}

export function createEngine(docker: Docker, timeoutMs = ENGINE_TIMEOUT_MS): Engine {
  return {
    docker,
    timeoutMs,
    async call(what, fn, opts = {}) {
      const { signal } = opts;
      signal?.throwIfAborted();
      const ms = opts.ms ?? timeoutMs;
      const limit = deadline(ms, signal);
      try {
        return await fn(limit.signal);
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        if (limit.signal.aborted) {
          throw new SandboxError('SANDBOX_ERROR', `${what}: the Docker engine did not answer within ${Math.round(ms / 1000)}s`, ENGINE_HINT, { cause: err });
        }
        throw toSandboxError(err, what);
      } finally {
        limit.clear();
      }
    },
  };
}
