// A failed model call, from whatever the SDK threw to a ModelError with a hint. Both model SDKs are built
// from the same generator and share their error classes' shape, so one classification serves both.
import { ModelError, type ModelClientOptions } from '../../lib/model.ts';

/** A stream that ended without the API's end marker: treated as a dropped connection. */
export class IncompleteStreamError extends Error {}

type ErrorClass<T> = abstract new (...args: never[]) => T;

/** The error classes a model SDK exports (`Anthropic.APIError`, `OpenAI.APIError`, ...). */
export interface SdkErrorClasses {
  APIError: ErrorClass<Error & { status: number | undefined; type?: unknown; apiMessage?: string | null }>;
  APIConnectionError: ErrorClass<Error>;
  APIConnectionTimeoutError: ErrorClass<Error>;
}

/** What went wrong, in SDK-neutral terms. */
export type ErrorInfo =
  | { kind: 'status'; status: number; message: string }
  | { kind: 'stream'; message: string } // an error event inside a stream that had started fine
  | { kind: 'timeout' }
  | { kind: 'connection'; message: string } // no response at all
  | { kind: 'dropped'; message: string } // the response started but its stream broke off
  | { kind: 'other'; message: string };

export function classifySdkError(err: unknown, sdk: SdkErrorClasses): ErrorInfo {
  if (err instanceof sdk.APIConnectionTimeoutError) return { kind: 'timeout' };
  if (err instanceof sdk.APIConnectionError) return { kind: 'connection', message: describeCause(err.cause ?? err) };
  if (err instanceof sdk.APIError) {
    const message = err.apiMessage ?? err.message;
    if (typeof err.status === 'number') return { kind: 'status', status: err.status, message };
    return { kind: 'stream', message: [typeof err.type === 'string' ? err.type : '', message].filter(Boolean).join(': ') };
  }
  if (err instanceof IncompleteStreamError) return { kind: 'dropped', message: err.message };
  // The SDKs wrap failures before the response as APIConnectionError; undici reports a body cut off
  // mid-stream as a TypeError ("terminated").
  if (err instanceof TypeError) return { kind: 'dropped', message: describeCause(err) };
  return { kind: 'other', message: describeCause(err) };
}

export interface ErrorContext extends Pick<ModelClientOptions, 'provider' | 'descriptor' | 'apiKey' | 'baseURL'> {
  maxRetries: number;
  model: string;
}

/** Builds the ModelError for a failed call. Messages never contain the API key (it is cut out). */
export function toModelError(info: ErrorInfo, ctx: ErrorContext, cause: unknown): ModelError {
  const { provider, descriptor: row } = ctx;
  const host = hostOf(ctx.baseURL);
  const retries = ctx.maxRetries > 0 ? ` after ${ctx.maxRetries} ${ctx.maxRetries === 1 ? 'retry' : 'retries'}` : '';
  const clean = (s: string) => redact(s.replace(/^\d{3}\s+/, '').replace(/\s+/g, ' ').trim(), ctx.apiKey).slice(0, 500);
  let message: string;
  let hint: string | undefined;
  let status: number | undefined;
  switch (info.kind) {
    case 'status': {
      status = info.status;
      const detail = clean(info.message);
      if (status === 401) {
        message = `${provider} authentication failed: check ${row.keyEnv}`;
        hint = `Set a valid ${row.keyEnv} (${row.keyHint}).`;
      } else if (status === 403) {
        message = `${provider} refused access (403): ${detail}`;
        hint = `Check that the key in ${row.keyEnv} may use model ${ctx.model}.`;
      } else if (status === 404) {
        message = `${provider} answered 404 for model ${ctx.model}: ${detail}`;
        hint = `Check the model id and ${row.baseUrlEnv}.`;
      } else if (status === 402) {
        message = `${provider} refused the request for billing reasons (402): ${detail}`;
        hint = 'Check the account balance or spending limits.';
      } else if (status === 429) {
        message = `${provider} rate limit exceeded${retries}: ${detail}`;
        hint = 'Wait and retry, lower concurrency, or raise the account limits.';
      } else if (status >= 500) {
        message = `${provider} API error ${status}${retries}: ${detail}`;
        hint = 'The provider is failing or overloaded; retry later.';
      } else {
        message = `${provider} rejected the request (${status}): ${detail}`;
      }
      break;
    }
    case 'stream':
      message = `${provider} reported an error during the response: ${clean(info.message)}`;
      hint = 'Usually transient (overload); retry later.';
      break;
    case 'timeout':
      message = `request to ${provider} (${host}) timed out${retries}`;
      hint = 'The provider is slow or unreachable; retry later.';
      break;
    case 'connection':
      message = `could not reach ${provider} at ${host}${retries}: ${clean(info.message)}`;
      hint = `Check the network and ${row.baseUrlEnv}.`;
      break;
    case 'dropped':
      message = `the connection to ${provider} (${host}) was lost mid-response: ${clean(info.message)}`;
      hint = 'Usually transient; retry the run.';
      break;
    default:
      message = `${provider} call failed: ${clean(info.message)}`;
  }
  // Keep the SDK error as the cause for debugging, unless its text carries the key.
  const safeCause = !(cause instanceof Error) || !ctx.apiKey || !String(cause.message).includes(ctx.apiKey);
  return new ModelError(message, status, hint, safeCause ? { cause } : undefined);
}

function redact(s: string, key: string): string {
  return key && key.length >= 4 ? s.split(key).join('[redacted]') : s;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host; // never the path or any user:password part
  } catch {
    return 'the configured base URL';
  }
}

/** Message of a low-level error, following `cause` (undici puts ECONNREFUSED etc. there). */
export function describeCause(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e instanceof Error && parts.length < 4; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    parts.push(typeof code === 'string' && !e.message.includes(code) ? `${e.message} (${code})` : e.message);
  }
  return parts.join(': ') || String(err);
}
