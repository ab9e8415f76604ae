// `sandcaster wait`: blocks until a server answers GET /health with 200, so a script can start the server
// in the background and send its first request only once it listens (and not while it drains).

import { sleep } from './abort.ts';

const ATTEMPT_TIMEOUT_MS = 2000;

/** Polls `<baseUrl>/health` every `everyMs` until it answers 200 (true) or `timeoutMs` passes (false, with what was seen last). */
export async function waitReady(baseUrl: string, timeoutMs: number, everyMs = 200): Promise<{ ready: true } | { ready: false; last: string }> {
  const until = Date.now() + timeoutMs;
  const url = new URL('/health', baseUrl);
  let last = 'no attempt';
  for (;;) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(Math.max(1, Math.min(ATTEMPT_TIMEOUT_MS, until - Date.now()))) });
      await res.body?.cancel();
      if (res.status === 200) return { ready: true };
      last = `HTTP ${res.status}`;
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      last = cause ?? (err as Error).message;
    }
    if (Date.now() + everyMs > until) return { ready: false, last };
    await sleep(everyMs);
  }
}
