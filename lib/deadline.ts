// A run's time limit that can be paused: an image pull has its own bound (docker.pullTimeoutSeconds), so
// the time a run waits for one does not count against the run's `timeout`.
import { timerMs } from './abort.ts';

export class Deadline {
  private leftMs: number;
  private since = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private pauses = 0;
  private stopped = false;

  constructor(
    ms: number,
    private readonly onExpire: () => void,
  ) {
    this.leftMs = ms;
    this.arm();
  }

  /** Milliseconds left (frozen while paused). */
  remainingMs(): number {
    return this.pauses > 0 ? this.leftMs : this.leftMs - (Date.now() - this.since);
  }

  /** Stops the clock until every pause is resumed; returns the resume function (safe to call twice). */
  pause(): () => void {
    if (this.stopped) return () => {};
    if (this.pauses === 0) {
      this.leftMs = this.remainingMs();
      clearTimeout(this.timer);
    }
    this.pauses++;
    let resumed = false;
    return () => {
      if (resumed || this.stopped) return;
      resumed = true;
      if (--this.pauses === 0) {
        this.since = Date.now();
        this.arm();
      }
    };
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private arm(): void {
    this.timer = setTimeout(() => this.onExpire(), timerMs(this.leftMs));
  }
}
