// What every part of the E2B provider shares: the metadata keys, the time bounds, the state of one live
// sandbox, and killing one quietly.
import type { Sandbox as E2bSandbox } from 'e2b';
import { log } from '../../lib/log.ts';

export const E2B_META_INSTANCE = 'sandcaster.instance';
export const E2B_META_RUN = 'sandcaster.run';

/** Creating may boot a cold template; anything else is a single quick call. Neither may hang a run. */
export const CREATE_TIMEOUT_MS = 60_000;
export const REQUEST_TIMEOUT_MS = 30_000;
/** Liveness probe after a failed call: decides SANDBOX_LOST vs SANDBOX_ERROR. */
export const PROBE_TIMEOUT_MS = 5_000;
/** How long a killed command gets to report its end before we stop listening. */
export const KILL_GRACE_MS = 5_000;
/** files.list depth for a "recursive" listing. */
export const LIST_DEPTH = 64;
/** Env var that tags every process of one exec, so a timeout can find and kill all of them. */
export const EXEC_TAG = 'SANDCASTER_EXEC_ID';

/** One live sandbox as its commands, file operations and error mapping see it. */
export interface BoxState {
  readonly sbx: E2bSandbox;
  readonly id: string;
  readonly runId: string;
  /** Set once destroy has begun: a failure after that is SANDBOX_LOST. */
  readonly destroying?: Promise<void>;
}

export async function killQuietly(sbx: E2bSandbox, runId: string): Promise<void> {
  try {
    const found = await sbx.kill({ requestTimeoutMs: REQUEST_TIMEOUT_MS });
    log.debug('e2b sandbox destroyed', { runId, sandboxId: sbx.sandboxId, found });
  } catch (err) {
    // E2B's own timeout (run timeout + 60 s) and the reaper still get it.
    log.warn('e2b sandbox kill failed', { runId, sandboxId: sbx.sandboxId, error: err });
  }
}
