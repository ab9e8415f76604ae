// Admission by memory: the sandboxes in flight on this instance may together hold at most a set amount of
// host memory (SANDCASTER_MAX_SANDBOX_MEMORY_MB; default the engine's total memory). Each sandbox reserves
// what its provider says it may hold at most (Docker: memory limit plus storage kept in memory), so 32 runs
// of 4 sandboxes of 2 GiB can no longer be promised on a 23 GiB host: the run that would not fit gets 429
// before its stream starts, a composite spawn that would not fit is a tool error. See docs/operations.md.

/** A held share of the budget; releasing it twice is harmless. */
export interface MemoryReservation {
  readonly mb: number;
  release(): void;
}

export class MemoryBudget {
  private used = 0;

  /** `limitMb` undefined means no limit (yet): the engine's total is looked up after start. */
  constructor(private limitMb?: number) {}

  get usedMb(): number {
    return this.used;
  }

  get limit(): number | undefined {
    return this.limitMb;
  }

  /** Sets the limit once it is known; an explicit setting is never replaced by a looked-up one. */
  setLimit(mb: number | undefined): void {
    this.limitMb = mb;
  }

  /**
   * Reserves `mb`, or returns undefined when it would not fit. Synchronous, so a check and the registration
   * of a run happen in one tick and two requests cannot both take the last share.
   *
   * @example
   * const budget = new MemoryBudget(4096);
   * const r = budget.tryReserve(2048); // a reservation
   * budget.tryReserve(4096); // undefined: 2048 + 4096 > 4096
   * r?.release();
   */
  tryReserve(mb: number): MemoryReservation | undefined {
    if (mb > 0 && this.limitMb !== undefined && this.used + mb > this.limitMb) return undefined;
    this.used += mb;
    let held = true;
    return {
      mb,
      release: () => {
        if (!held) return;
        held = false;
        this.used -= mb;
      },
    };
  }
}
