// Stopping work: why a run was stopped from outside its own work (the reason its AbortSignal carries), and
// the one small set of helpers every layer uses to wait, race and bound work under a signal. Each leaves no
// timer and no listener behind once it settles, which matters on a run's signal: it lives for the whole run
// and sees thousands of engine calls.

export type AbortCode = 'TIMEOUT' | 'SHUTDOWN' | 'SANDBOX_LOST' | 'CANCELLED' | 'STORAGE_ERROR';

export class RunAbort extends Error {
  constructor(
    readonly code: AbortCode,
    message: string,
  ) {
    super(message);
    this.name = 'RunAbort';
  }
}

/** `ms` as setTimeout can take it: past 2^31-1 ms it would fire at once. */
export const timerMs = (ms: number): number => Math.min(Math.max(0, ms), 2 ** 31 - 1);

/** Calls `fn` once when `signal` aborts (at once if it has); returns what stops listening. */
export function onAbort(signal: AbortSignal | undefined, fn: () => void): () => void {
  if (!signal) return () => {};
  if (signal.aborted) {
    fn();
    return () => {};
  }
  signal.addEventListener('abort', fn, { once: true });
  return () => signal.removeEventListener('abort', fn);
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (off(), resolve()), timerMs(ms));
    const off = onAbort(signal, () => (clearTimeout(timer), reject(signal!.reason)));
  });
}

/** Waits until `p` settles, at most `ms`: true when it did. Never rejects. */
export function settledWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timerMs(ms));
    const settled = () => (clearTimeout(timer), resolve(true));
    p.then(settled, settled);
  });
}

/**
 * Settles with `work`, but rejects with the signal's reason as soon as the signal aborts, whatever `work` does
 * with the signal: an SDK's retry back-off may ignore it, a stream may end quietly. When `work` fails after
 * the abort (an SDK that noticed it throws its own error), the signal's reason is what rejects. Given a
 * function, it is not started once the signal has aborted.
 */
export async function raceAbort<T>(work: Promise<T> | (() => Promise<T>), signal: AbortSignal | undefined): Promise<T> {
  if (typeof work === 'function') {
    signal?.throwIfAborted();
    work = work();
  }
  if (!signal) return work;
  work.catch(() => {}); // its late failure after an abort is expected, not unhandled
  let off = () => {};
  const aborted = new Promise<never>((_, reject) => (off = onAbort(signal, () => reject(signal.reason))));
  try {
    return await Promise.race([work, aborted]);
  } catch (err) {
    throw signal.aborted ? signal.reason : err;
  } finally {
    off();
  }
}

export interface TimeLimit {
  /** Aborts when the time is up (with the limit's reason) or when the parent aborts (with the parent's). */
  readonly signal: AbortSignal;
  /** Stops the timer and the listener on the parent; call it once the work has ended. */
  clear(): void;
}

/**
 * A signal for one piece of work bounded to `ms`, ended early by `parent`. `reason` says what ran out when
 * the time is up (default: a TimeoutError, as AbortSignal.timeout gives).
 *
 * Not AbortSignal.any([parent, AbortSignal.timeout(ms)]): on Node 20 every signal `any` makes stays
 * referenced by its parent until the parent itself goes (measured on 20.20: 200,000 calls under one parent
 * kept 200,000 dependants and 550 MB), and a run's signal is the parent of every engine call of the run.
 * Here the parent's listener is removed by `clear`.
 */
export function deadline(ms: number, parent?: AbortSignal, reason?: () => unknown): TimeLimit {
  const ac = new AbortController();
  const timer = setTimeout(() => {
    off();
    ac.abort(reason ? reason() : new DOMException(`The operation timed out after ${ms} ms`, 'TimeoutError'));
  }, timerMs(ms));
  const off = onAbort(parent, () => (clearTimeout(timer), ac.abort(parent!.reason)));
  return { signal: ac.signal, clear: () => (clearTimeout(timer), off()) };
}
