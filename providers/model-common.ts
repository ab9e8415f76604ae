// Helpers shared by the two model API families (providers/anthropic.ts, providers/openai.ts):
// abort handling, error mapping to ModelError, tool-argument parsing and the SDK logger.

import { ModelError, type ModelProviderName } from '../lib/model.ts';
import { log } from '../lib/log.ts';
import { KEY_ENV } from '../lib/models.ts';

/** A stream that ended without the provider's end marker: treated as a dropped connection. */
export class IncompleteStreamError extends Error {}

/** Thinking budgets per level (SPEC section 5); also the extra output headroom a thinking turn gets. */
export const THINKING_BUDGET = { low: 2048, medium: 8192, high: 24576 } as const;

/**
 * Runs one streamed call so that an abort rejects at once with the signal's reason, whatever the SDK is
 * doing at that moment (the openai SDK's retry back-off ignores the signal, and both SDKs end a stream
 * quietly rather than throwing when it is aborted). The SDK request gets the same signal, so the HTTP
 * request is cancelled too.
 */
export async function abortable<T>(signal: AbortSignal, work: () => Promise<T>): Promise<T> {
  signal.throwIfAborted();
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  const running = work();
  running.catch(() => {}); // its late rejection after an abort is expected, not unhandled
  try {
    return await Promise.race([running, aborted]);
  } catch (err) {
    // The SDK noticed the abort first and threw its own error: report the signal's reason instead.
    if (signal.aborted) throw signal.reason;
    throw err;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** What a provider learned about a failed call, in SDK-neutral terms. */
export type ErrorInfo =
  | { kind: 'status'; status: number; message: string }
  | { kind: 'stream'; message: string } // an error event inside a stream that had started fine
  | { kind: 'timeout' }
  | { kind: 'connection'; message: string } // no response at all
  | { kind: 'dropped'; message: string } // the response started but its stream broke off
  | { kind: 'other'; message: string };

export interface ErrorContext {
  provider: ModelProviderName;
  apiKey: string;
  baseURL: string;
  maxRetries: number;
  model: string;
}

/** Builds the ModelError for a failed call. Messages never contain the API key (it is cut out). */
export function toModelError(info: ErrorInfo, ctx: ErrorContext, cause: unknown): ModelError {
  const keyVar = KEY_ENV[ctx.provider];
  const urlVar = keyVar.replace('_API_KEY', '_BASE_URL');
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
        message = `${ctx.provider} authentication failed: check ${keyVar}`;
        hint = `Set a valid ${keyVar}.`;
      } else if (status === 403) {
        message = `${ctx.provider} refused access (403): ${detail}`;
        hint = `Check that the key in ${keyVar} may use model ${ctx.model}.`;
      } else if (status === 404) {
        message = `${ctx.provider} answered 404 for model ${ctx.model}: ${detail}`;
        hint = `Check the model id${ctx.baseURL ? ` and ${urlVar}` : ''}.`;
      } else if (status === 402) {
        message = `${ctx.provider} refused the request for billing reasons (402): ${detail}`;
        hint = 'Check the account balance or spending limits.';
      } else if (status === 429) {
        message = `${ctx.provider} rate limit exceeded${retries}: ${detail}`;
        hint = 'Wait and retry, lower concurrency, or raise the account limits.';
      } else if (status >= 500) {
        message = `${ctx.provider} API error ${status}${retries}: ${detail}`;
        hint = 'The provider is failing or overloaded; retry later.';
      } else {
        message = `${ctx.provider} rejected the request (${status}): ${detail}`;
      }
      break;
    }
    case 'stream':
      message = `${ctx.provider} reported an error during the response: ${clean(info.message)}`;
      hint = 'Usually transient (overload); retry later.';
      break;
    case 'timeout':
      message = `request to ${ctx.provider} (${host}) timed out${retries}`;
      hint = 'The provider is slow or unreachable; retry later.';
      break;
    case 'connection':
      message = `could not reach ${ctx.provider} at ${host}${retries}: ${clean(info.message)}`;
      hint = `Check the network and ${urlVar}.`;
      break;
    case 'dropped':
      message = `the connection to ${ctx.provider} (${host}) was lost mid-response: ${clean(info.message)}`;
      hint = 'Usually transient; retry the run.';
      break;
    default:
      message = `${ctx.provider} call failed: ${clean(info.message)}`;
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

/** Parses streamed tool arguments; invalid or non-object JSON gives `{}` and an `inputError`. */
export function parseToolInput(json: string): { input: Record<string, unknown>; inputError?: string } {
  if (json.trim() === '') return { input: {} }; // a tool without arguments
  try {
    const value: unknown = JSON.parse(json);
    if (value && typeof value === 'object' && !Array.isArray(value)) return { input: value as Record<string, unknown> };
    return { input: {}, inputError: `tool arguments are not a JSON object: ${json.slice(0, 200)}` };
  } catch (err) {
    return { input: {}, inputError: `tool arguments are not valid JSON (${(err as Error).message}): ${json.slice(0, 200)}` };
  }
}

/** Routes SDK log lines through our JSON logger (stdout carries JSON lines only; registered secrets are redacted). */
export function sdkLogger(sdk: string) {
  const fields = (rest: unknown[]) => (rest.length ? { sdk, details: rest.map((r) => (r instanceof Error ? r.message : r)) } : { sdk });
  return {
    error: (msg: string, ...rest: unknown[]) => log.error(msg, fields(rest)),
    warn: (msg: string, ...rest: unknown[]) => log.warn(msg, fields(rest)),
    info: (msg: string, ...rest: unknown[]) => log.info(msg, fields(rest)),
    debug: (msg: string, ...rest: unknown[]) => log.debug(msg, fields(rest)),
  };
}
