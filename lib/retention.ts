// Retention: stored events and returned files are bounded by age (SANDCASTER_RETENTION_DAYS) and by size
// (SANDCASTER_RETENTION_MB). Past either, the oldest finished runs lose their events and file bytes first;
// their rows stay, marked `eventsExpired`. A run in flight is never touched. A check walks the store in
// slices of a few milliseconds with a turn of the event loop between them, so a large store never stalls
// requests or runs; every statement in a slice is bounded (pages of runs, chunks of events).
import { setImmediate as nextTurn } from 'node:timers/promises';
import { log } from './log.ts';
import type { KeptRun, RunStore } from './store.ts';

export const RETENTION_INTERVAL_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;
/** Work done between two turns of the event loop (each statement is far shorter than this). */
const SLICE_MS = 20;
const RUNS_PER_PAGE = 200;
const EVENTS_PER_CHUNK = 2000;
/** One removal step (one transaction): this many events, and file contents up to about this many bytes. */
const PURGE_ROWS = 500;
const PURGE_BYTES = 2 * 1024 * 1024;
/** Runs marked expired in one transaction. */
const EXPIRE_BATCH = 100;

export interface RetentionOptions {
  limits: { days: number; mb: number };
  /** Ids of the runs in flight, which retention leaves alone even once their row is closed. */
  inFlight: () => Set<string>;
  /** For tests. */
  now?: () => number;
}

export interface RetentionReport {
  /** Bytes of events and files stored after the check (runs in flight included). */
  keptBytes: number;
  expiredRuns: number;
  freedBytes: number;
  durationMs: number;
  /** The longest the check held the event loop at once, in wall-clock time and in CPU time of the process. */
  longestSliceMs: number;
  longestSliceCpuMs: number;
}

class Stopped extends Error {}

export class Retention {
  private running?: Promise<RetentionReport | undefined>;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private sliceStart = 0;
  private sliceCpuStart = process.cpuUsage();
  private longestSlice = 0;
  private longestSliceCpu = 0;

  constructor(
    private readonly store: RunStore,
    private readonly opts: RetentionOptions,
  ) {}

  /** Checks now and then every `intervalMs`. */
  start(intervalMs = RETENTION_INTERVAL_MS): void {
    void this.check();
    this.timer = setInterval(() => void this.check(), intervalMs);
    this.timer.unref();
  }

  /** No more checks; resolves once the one in progress (if any) has stopped at its next slice. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
  }

  /** One check (a call while one runs gets that one). Resolves undefined when stopped or the store failed. */
  check(): Promise<RetentionReport | undefined> {
    if (this.stopped) return Promise.resolve(undefined);
    this.running ??= this.run()
      .catch((err) => {
        if (!(err instanceof Stopped)) log.warn('retention check failed; the next one tries again', { error: err });
        return undefined;
      })
      .finally(() => (this.running = undefined));
    return this.running;
  }

  private async run(): Promise<RetentionReport> {
    const started = performance.now();
    this.sliceStart = started;
    this.sliceCpuStart = process.cpuUsage();
    this.longestSlice = 0;
    this.longestSliceCpu = 0;
    const { days, mb } = this.opts.limits;
    const cutoff = new Date((this.opts.now ?? Date.now)() - days * DAY_MS).toISOString();
    const maxBytes = mb * 1024 * 1024;

    // Removals marked by an earlier check that did not finish (the process stopped) come first.
    await this.purge();

    let total = 0;
    for await (const run of this.keptRuns()) total += run.keptBytes ?? 0;
    for (const id of this.opts.inFlight()) total += (await this.measure(id)).bytes;

    let expiredRuns = 0;
    let freedBytes = 0;
    let batch: KeptRun[] = [];
    const expire = async () => {
      const marked = new Set(this.store.markExpired(batch.map((r) => r.id)));
      for (const r of batch) if (marked.has(r.id)) freedBytes += r.keptBytes ?? 0;
      expiredRuns += marked.size;
      batch = [];
      await this.purge();
    };
    let inFlight = this.opts.inFlight();
    for await (const run of this.keptRuns()) {
      if (run.completedAt >= cutoff && total <= maxBytes) break; // every later run is newer still
      // A run whose row is closed but whose stream is still ending stays until the next check.
      if (inFlight.has(run.id)) continue;
      batch.push(run);
      total -= run.keptBytes ?? 0;
      if (batch.length >= EXPIRE_BATCH) {
        await expire();
        inFlight = this.opts.inFlight();
      }
    }
    if (batch.length) await expire();

    const report = {
      keptBytes: total,
      expiredRuns,
      freedBytes,
      durationMs: Math.round(performance.now() - started),
      longestSliceMs: Math.round(Math.max(this.longestSlice, performance.now() - this.sliceStart) * 10) / 10,
      longestSliceCpuMs: Math.round(Math.max(this.longestSliceCpu, cpuMsSince(this.sliceCpuStart)) * 10) / 10,
    };
    (expiredRuns ? log.info : log.debug)('retention checked', { ...report, retentionDays: days, retentionMb: mb });
    return report;
  }

  /** Finished runs still holding events or files, oldest first, each measured (once: a finished run's store does not change). */
  private async *keptRuns(): AsyncGenerator<KeptRun> {
    let after = { completedAt: '', id: '' };
    for (;;) {
      const page = this.store.keptRuns(after, RUNS_PER_PAGE);
      await this.maybeYield();
      const measured: { id: string; bytes: number; lastEventId: number | null }[] = [];
      for (const run of page) {
        if (run.keptBytes !== null) continue;
        const m = await this.measure(run.id);
        measured.push({ id: run.id, ...m });
        run.keptBytes = m.bytes;
      }
      if (measured.length) {
        this.store.setKeptBytes(measured);
        await this.maybeYield();
      }
      yield* page;
      if (page.length < RUNS_PER_PAGE) return;
      after = page.at(-1)!;
    }
  }

  /** Bytes of a run's stored events and file contents, counted in chunks. */
  private async measure(runId: string): Promise<{ bytes: number; lastEventId: number | null }> {
    let bytes = this.store.fileBytes(runId);
    let lastEventId: number | null = null;
    for (;;) {
      const chunk = this.store.eventBytes(runId, lastEventId ?? -1, EVENTS_PER_CHUNK);
      await this.maybeYield();
      if (chunk.n === 0) break;
      bytes += chunk.bytes;
      lastEventId = chunk.last;
      if (chunk.n < EVENTS_PER_CHUNK) break;
    }
    return { bytes, lastEventId };
  }

  /** Removes what the runs marked expired stored, one bounded step at a time. */
  private async purge(): Promise<void> {
    for (;;) {
      const done = this.store.purgeStep(PURGE_ROWS, PURGE_BYTES);
      await this.maybeYield();
      if (done) return;
    }
  }

  /** Gives the event loop a turn once the current slice has run SLICE_MS; throws Stopped after stop(). */
  private async maybeYield(): Promise<void> {
    const elapsed = performance.now() - this.sliceStart;
    if (elapsed < SLICE_MS) return;
    this.longestSlice = Math.max(this.longestSlice, elapsed);
    this.longestSliceCpu = Math.max(this.longestSliceCpu, cpuMsSince(this.sliceCpuStart));
    await nextTurn();
    if (this.stopped) throw new Stopped();
    this.sliceStart = performance.now();
    this.sliceCpuStart = process.cpuUsage();
  }
}

/** CPU time (user + system) the process used since `start`, in ms: a slice's own work, whatever else the machine runs. */
function cpuMsSince(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
}
