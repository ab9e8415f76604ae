// What every route and run shares in one server process, built once by the composition root (server.ts).
// Kept apart from the run engine so that a route needs no more than this type to reach it.
import type { Config } from './config.ts';
import type { EventLogs } from './event-log.ts';
import type { RunManager } from './inflight.ts';
import type { MemoryBudget } from './memory-budget.ts';
import type { Metrics } from './metrics.ts';
import type { Registry } from './registry.ts';
import type { RunStore } from './store.ts';

export interface AppContext {
  config: Config;
  store: RunStore;
  registry: Registry;
  /** Runs in flight: admission, abort, what the reaper must leave alone. */
  runs: RunManager;
  /** The event log of each run in flight (replay and live readers). */
  events: EventLogs;
  metrics: Metrics;
  /** Host memory promised to sandboxes in flight. */
  memory: MemoryBudget;
}
