// The client side of the API: the server's address and key, requests, and the API's error shape turned into
// a CliError with the right exit code (3 for a refusal, 4 when the server cannot be reached).
import { CliError, EXIT } from './errors.ts';

export interface ApiErrorBody {
  code: string;
  message: string;
  hint?: string;
  details?: { path: string; message: string }[];
}

/** Every fetch failure: connection refused, reset, DNS, TLS... (fetch wraps the cause). */
export class ConnectionError extends CliError {
  constructor(url: string, cause: unknown) {
    const c = (cause as { cause?: { code?: string; message?: string } })?.cause;
    super(EXIT.CONNECTION, `cannot reach ${url}: ${c?.code ?? c?.message ?? (cause as Error)?.message ?? String(cause)}`, 'is the server running? set SANDCASTER_URL or --url');
  }
}

export class RefusedError extends CliError {
  constructor(
    readonly status: number,
    readonly body: ApiErrorBody,
  ) {
    const details = body.details?.length ? ` (${body.details.map((d) => `${d.path}: ${d.message}`).join('; ')})` : '';
    super(EXIT.REFUSED, `the server refused (${status} ${body.code}): ${body.message}${details}`, body.hint);
  }
}

export class Client {
  readonly base: string;
  constructor(
    base: string,
    private readonly key: string | undefined,
  ) {
    this.base = base.replace(/\/+$/, '');
  }

  /** A path of the API with each run id or file path segment encoded. */
  static runPath(runId: string, ...rest: string[]): string {
    return `/runs/${encodeURIComponent(runId)}${rest.map((r) => `/${r}`).join('')}`;
  }

  /** Any answer; throws ConnectionError when there is none. */
  async raw(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.key) headers.set('authorization', `Bearer ${this.key}`);
    headers.set('user-agent', 'sandcaster-cli');
    try {
      return await fetch(this.base + path, { ...init, headers, redirect: 'manual' });
    } catch (err) {
      if ((err as Error)?.name === 'AbortError') throw err;
      throw new ConnectionError(this.base, err);
    }
  }

  /** A 2xx answer, or RefusedError with the API's error (code, message, hint). */
  async request(path: string, init: RequestInit = {}): Promise<Response> {
    const res = await this.raw(path, init);
    if (res.ok) return res;
    throw new RefusedError(res.status, await errorOf(res));
  }

  async json<T = any>(path: string, init: RequestInit = {}): Promise<T> {
    const res = await this.request(path, init);
    try {
      return (await res.json()) as T;
    } catch (err) {
      throw new ConnectionError(this.base, err);
    }
  }
}

async function errorOf(res: Response): Promise<ApiErrorBody> {
  const text = await res.text().catch(() => '');
  try {
    const e = JSON.parse(text)?.error;
    if (e && typeof e.code === 'string') return e;
  } catch {
    /* not the API's shape: a proxy's page, say */
  }
  return { code: `HTTP_${res.status}`, message: text.trim().slice(0, 200) || res.statusText || 'no message' };
}
