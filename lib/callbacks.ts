// Completion callbacks: when a run ends, its record (as `GET /runs/:id` shows it) is POSTed as JSON to the
// `callbackUrl` the client gave, which must start with an operator-allowed prefix. Each delivery is signed
// (HMAC-SHA256 of "<t>.<body>" with SANDCASTER_CALLBACK_SECRET), keeps one id across its retries, and is
// retried on a non-2xx answer, a network error or a timeout. Redirects are never followed; answers are read
// only up to a few KiB. Deliveries live in memory: a restart drops the ones still pending. Nothing here
// touches the run or its stream.
import { createHmac, randomBytes } from 'node:crypto';
import type { CallbackSettings } from './config.ts';
import { log } from './log.ts';
import { runView } from './results.ts';
import type { RunStore } from './store.ts';
import { VERSION } from './version.ts';

export const MAX_CALLBACK_URL_CHARS = 2048;
const MAX_ANSWER_BYTES = 4096;

/** The normalised URL a delivery would go to, or why `raw` cannot be one. */
export function parseCallbackUrl(raw: string): { url: string } | { error: string } {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return { error: 'must be an absolute http or https URL' };
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return { error: 'must be an http or https URL' };
  if (u.username || u.password) return { error: 'must not contain credentials' };
  return { url: u.href };
}

/**
 * The allowed, normalised URL, or the sentence to answer 400 with. Prefixes are compared with the normalised
 * URL, the one actually requested, so `..` segments or odd spellings cannot step outside an allowed prefix.
 */
export function checkCallbackUrl(raw: string, allowlist: string[]): { url: string } | { error: string } {
  const parsed = parseCallbackUrl(raw);
  if ('error' in parsed) return parsed;
  if (!allowlist.some((prefix) => parsed.url.startsWith(prefix))) {
    return {
      error: allowlist.length
        ? `must start with one of the allowed prefixes (${allowlist.join(', ')})`
        : 'is not allowed: no callback destinations are configured (SANDCASTER_CALLBACK_ALLOWLIST is empty)',
    };
  }
  return parsed;
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. */
export function signCallback(secret: string, t: number, body: string): string {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

/** Where a delivery went, for logs: no credentials, query or fragment (they may carry tokens). */
const where = (url: string) => {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
};

interface Delivery {
  id: string;
  runId: string;
  url: string;
  body: string;
}

/** Sends the finished run's record to `url` in the background; returns at once. */
export function scheduleCallback(settings: CallbackSettings, store: RunStore, runId: string, url: string): void {
  let record;
  try {
    record = runView(store, runId);
  } catch (err) {
    return void log.error('callback not sent: the run record could not be read', { runId, error: err });
  }
  if (!record) return void log.error('callback not sent: the run has no record', { runId });
  const delivery: Delivery = {
    id: `dlv_${randomBytes(12).toString('base64url')}`,
    runId,
    url,
    body: JSON.stringify({ type: 'run.finished', ...record }),
  };
  void deliver(settings, delivery, 0);
}

async function deliver(settings: CallbackSettings, d: Delivery, attempt: number): Promise<void> {
  const started = performance.now();
  const outcome = await post(settings, d);
  const fields = { runId: d.runId, deliveryId: d.id, url: where(d.url), attempt: attempt + 1, ...outcome, durationMs: Math.round(performance.now() - started) };
  if (outcome.status !== undefined && outcome.status >= 200 && outcome.status < 300) return void log.info('callback delivered', fields);
  const delay = settings.retryDelaysMs[attempt];
  if (delay === undefined) return void log.error('callback given up', fields);
  log.warn('callback failed; retrying', { ...fields, retryInMs: delay });
  setTimeout(() => void deliver(settings, d, attempt + 1), delay).unref();
}

/** One attempt: the answer's status, or the error that stopped it (network, timeout). Never throws. */
async function post(settings: CallbackSettings, d: Delivery): Promise<{ status?: number; error?: string }> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': `sandcaster/${VERSION}`,
    'sandcaster-delivery': d.id,
  };
  if (settings.secret) headers['sandcaster-signature'] = signCallback(settings.secret, Math.floor(Date.now() / 1000), d.body);
  const signal = AbortSignal.timeout(settings.attemptTimeoutMs);
  try {
    const res = await fetch(d.url, { method: 'POST', headers, body: d.body, redirect: 'manual', signal });
    await readSome(res, MAX_ANSWER_BYTES);
    return { status: res.status };
  } catch (err) {
    const e = err as Error & { cause?: Error };
    const timedOut = e.name === 'TimeoutError' || signal.aborted;
    return { error: timedOut ? `no answer within ${settings.attemptTimeoutMs} ms` : (e.cause?.message ?? e.message) };
  }
}

/** Reads at most `max` bytes of an answer (its content is not used), then lets the rest go. */
async function readSome(res: Response, max: number): Promise<void> {
  if (!res.body) return;
  const reader = res.body.getReader();
  let read = 0;
  try {
    while (read < max) {
      const { done, value } = await reader.read();
      if (done) return;
      read += value.byteLength;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}
