// Reaping: kills this instance's E2B sandboxes that no run in flight holds (found by their metadata).
import { Sandbox as E2bSandbox } from 'e2b';
import { log } from '../../lib/log.ts';
import { toSandboxError } from './errors.ts';
import { E2B_META_INSTANCE, E2B_META_RUN } from './shared.ts';

/** The SDK connection options every call carries. */
export interface Conn {
  apiKey?: string;
  requestTimeoutMs: number;
  retries: number;
}

export async function reap(conn: () => Conn, instanceId: string, keepRunIds: ReadonlySet<string>): Promise<number> {
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
}
