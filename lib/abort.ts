// Why a run was stopped from outside its own work: the reason carried by the run's AbortSignal.

export type AbortCode = 'TIMEOUT' | 'SHUTDOWN' | 'SANDBOX_LOST' | 'CANCELLED' | 'STORAGE_ERROR';

export class RunAbort extends Error {
  constructor(readonly code: AbortCode, message: string) {
    super(message);
    this.name = 'RunAbort';
  }
}

/** A promise that rejects with the signal's reason once it aborts (for racing work that ignores signals). */
export function whenAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

/** Runs `work` but settles as soon as the signal aborts, whatever `work` does with the signal. */
export async function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  const aborted = whenAborted(signal);
  aborted.catch(() => {}); // the race below observes it; avoid an unhandled rejection when work wins
  work.catch(() => {}); // likewise when the abort wins and work fails later
  return Promise.race([work, aborted]);
}
