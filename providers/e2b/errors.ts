// E2B SDK and transport failures -> our error codes, each with a hint an operator can act on; a bad path
// becomes a tool error the model can fix, a dead sandbox SANDBOX_LOST.
import {
  AuthenticationError,
  FileNotFoundError,
  InvalidArgumentError,
  NotFoundError,
  RateLimitError,
  SandboxNotFoundError,
  ServiceBusyError,
  TemplateError,
} from 'e2b';
import { SandboxError } from '../../lib/sandbox.ts';
import { PROBE_TIMEOUT_MS, type BoxState } from './shared.ts';

/**
 * Failures caused by the path itself are the model's business (FILE_NOT_FOUND, IS_A_DIRECTORY: a tool
 * error it can fix); everything else is SANDBOX_ERROR / SANDBOX_LOST and ends the run. envd tells them
 * apart only by status and message: 404 is a missing path, 400 a path of the wrong kind, and a parent
 * that is a file surfaces as "not a directory" (with a 500 from some envd versions).
 */
export async function fileError(box: BoxState, err: unknown, path: string, what: string): Promise<SandboxError> {
  const msg = err instanceof Error ? err.message : String(err);
  const opts = { cause: err };
  if (err instanceof FileNotFoundError) return new SandboxError('FILE_NOT_FOUND', `${path}: no such file or directory`, undefined, opts);
  if (/is a directory/i.test(msg)) return new SandboxError('IS_A_DIRECTORY', `${path}: is a directory`, undefined, opts);
  if (/not a directory/i.test(msg)) {
    const why = what === 'listing' ? 'is not a directory' : 'a parent folder is a file';
    return new SandboxError('FILE_NOT_FOUND', `${path}: ${why}`, undefined, opts);
  }
  if (err instanceof InvalidArgumentError) return new SandboxError('FILE_NOT_FOUND', `${path}: ${msg}`, undefined, opts);
  return mapError(box, err, `${what} ${path}`);
}

/** After a failed call, asks envd whether the sandbox still runs: a dead one is SANDBOX_LOST. */
export async function mapError(box: BoxState, err: unknown, what: string): Promise<SandboxError> {
  if (err instanceof SandboxError) return err;
  if (box.destroying) return new SandboxError('SANDBOX_LOST', `E2B sandbox ${box.id} was destroyed while ${what}`, undefined, { cause: err });
  const mapped = toSandboxError(err, what);
  if (mapped.code === 'SANDBOX_LOST' || err instanceof AuthenticationError || err instanceof RateLimitError) return mapped;
  const running = await box.sbx.isRunning({ requestTimeoutMs: PROBE_TIMEOUT_MS }).catch(() => undefined);
  if (running === false) return lost(box.id, what, err);
  return mapped;
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
export function toSandboxError(err: unknown, what: string, creating = false): SandboxError {
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
