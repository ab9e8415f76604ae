// The Prometheus metrics of one server, written in the text exposition format (version 0.0.4).
// One instance per server, made by the composition root, so servers sharing a process never mix counts.
// Every label takes values from a bounded set (route patterns, statuses, error codes, provider names);
// model ids come from clients, so only the first MAX_MODELS distinct ones get a label of their own.
import type { Usage } from './model.ts';

const MAX_MODELS = 100;
const MAX_LABEL_CHARS = 128;
const RUN_SECONDS = [1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
const SANDBOX_SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

const escapeLabel = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const escapeHelp = (s: string) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const num = (n: number) => (Number.isNaN(n) ? 'NaN' : n === Infinity ? '+Inf' : n === -Infinity ? '-Inf' : String(n));

abstract class Family<S> {
  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  protected readonly series = new Map<string, { labels: readonly string[]; state: S }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {}

  protected state(labels: readonly string[], init: () => S): S {
    if (labels.length !== this.labelNames.length) throw new Error(`${this.name} takes labels ${this.labelNames.join(', ')}`);
    const values = labels.map((l) => l.slice(0, MAX_LABEL_CHARS));
    const key = values.join('\u0000');
    let s = this.series.get(key);
    if (!s) this.series.set(key, (s = { labels: values, state: init() }));
    return s.state;
  }

  protected sample(name: string, labels: readonly string[], value: number, extra?: [string, string]): string {
    const pairs = labels.map((v, i) => `${this.labelNames[i]}="${escapeLabel(v)}"`);
    if (extra) pairs.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
    return `${name}${pairs.length ? `{${pairs.join(',')}}` : ''} ${num(value)}`;
  }

  protected abstract samples(): string[];

  render(): string {
    return [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`, ...this.samples()].join('\n');
  }
}

class Counter extends Family<{ n: number }> {
  readonly type = 'counter';
  inc(labels: readonly string[], by = 1): void {
    if (by >= 0 && Number.isFinite(by)) this.state(labels, () => ({ n: 0 })).n += by; // counters only go up
  }
  protected samples(): string[] {
    return [...this.series.values()].map((s) => this.sample(this.name, s.labels, s.state.n));
  }
}

class Gauge extends Family<{ n: number }> {
  readonly type = 'gauge';
  /** Read at scrape time instead of kept up to date (unlabelled gauges only). */
  constructor(name: string, help: string, labelNames: readonly string[], private readonly read?: () => number) {
    super(name, help, labelNames);
  }
  add(labels: readonly string[], by: number): void {
    this.state(labels, () => ({ n: 0 })).n += by;
  }
  set(labels: readonly string[], n: number): void {
    this.state(labels, () => ({ n: 0 })).n = n;
  }
  protected samples(): string[] {
    if (this.read) return [this.sample(this.name, [], this.read())];
    return [...this.series.values()].map((s) => this.sample(this.name, s.labels, s.state.n));
  }
}

class Histogram extends Family<{ buckets: number[]; sum: number; count: number }> {
  readonly type = 'histogram';
  constructor(name: string, help: string, labelNames: readonly string[], private readonly bounds: readonly number[]) {
    super(name, help, labelNames);
  }
  observe(labels: readonly string[], value: number): void {
    if (!Number.isFinite(value)) return;
    const h = this.state(labels, () => ({ buckets: this.bounds.map(() => 0), sum: 0, count: 0 }));
    // Each bucket counts every observation <= its bound, so the buckets are cumulative as the format wants.
    this.bounds.forEach((le, i) => {
      if (value <= le) h.buckets[i]!++;
    });
    h.sum += value;
    h.count++;
  }
  protected samples(): string[] {
    return [...this.series.values()].flatMap(({ labels, state }) => [
      ...this.bounds.map((le, i) => this.sample(`${this.name}_bucket`, labels, state.buckets[i]!, ['le', num(le)])),
      this.sample(`${this.name}_bucket`, labels, state.count, ['le', '+Inf']),
      this.sample(`${this.name}_sum`, labels, state.sum),
      this.sample(`${this.name}_count`, labels, state.count),
    ]);
  }
}

/** What the sandbox pool reports: one call per sandbox created and one per sandbox it tried to destroy. */
export interface SandboxMetrics {
  sandboxCreated(provider: string, seconds: number): void;
  sandboxDestroyed(provider: string, seconds: number, ok: boolean): void;
}

export interface RunEndMetrics {
  status: string;
  errorCode: string | null;
  durationSecs: number;
  model: string;
  usage: Usage;
  costUsd: number | null;
}

export class Metrics implements SandboxMetrics {
  private readonly runsStarted = new Counter('sandcaster_runs_started_total', 'Runs started, by model provider and sandbox provider.', ['provider', 'sandbox_provider']);
  private readonly runsEnded = new Counter('sandcaster_runs_ended_total', 'Runs ended, by status and error code ("" when none).', ['status', 'error_code']);
  private readonly runSeconds = new Histogram('sandcaster_run_duration_seconds', 'Whole-run time from start to terminal event, by status.', ['status'], RUN_SECONDS);
  private readonly runsInFlight: Gauge;
  private readonly sandboxesInFlight = new Gauge('sandcaster_sandboxes_in_flight', 'Sandboxes created by runs and not yet destroyed, by provider.', ['provider']);
  private readonly tokens = new Counter('sandcaster_tokens_total', 'Model tokens billed, by model and type (input includes cache reads and writes).', ['model', 'type']);
  private readonly cost = new Counter('sandcaster_cost_usd_total', 'Estimated model cost in USD, by model (models with a known price only).', ['model']);
  private readonly http = new Counter('sandcaster_http_requests_total', 'HTTP requests answered, by route pattern and status code.', ['route', 'status']);
  private readonly createSeconds = new Histogram('sandcaster_sandbox_create_seconds', 'Time to create a sandbox, by provider.', ['provider'], SANDBOX_SECONDS);
  private readonly warmPoolReady = new Gauge('sandcaster_warm_pool_ready', 'Idle sandboxes ready in the warm pool, by provider (providers that keep one).', ['provider']);
  private readonly destroySeconds = new Histogram('sandcaster_sandbox_destroy_seconds', 'Time to destroy a sandbox, by provider (successful destroys).', ['provider'], SANDBOX_SECONDS);
  private readonly models = new Set<string>();

  /** `sandboxProviders`: the backends this server knows, so each shows a zero before its first sandbox. */
  constructor(opts: { runsInFlight: () => number; sandboxProviders?: readonly string[] }) {
    this.runsInFlight = new Gauge('sandcaster_runs_in_flight', 'Runs in flight on this instance.', [], opts.runsInFlight);
    for (const p of opts.sandboxProviders ?? []) this.sandboxesInFlight.add([p], 0); // a zero is a value; a missing series is not
  }

  runStarted(provider: string, sandboxProvider: string): void {
    this.runsStarted.inc([provider, sandboxProvider]);
  }

  runEnded(r: RunEndMetrics): void {
    this.runsEnded.inc([r.status, r.errorCode ?? '']);
    this.runSeconds.observe([r.status], r.durationSecs);
    const model = this.modelLabel(r.model);
    const { inputTokens, outputTokens, cacheReadTokens, cacheWriteTokens } = r.usage;
    for (const [type, n] of [['input', inputTokens], ['output', outputTokens], ['cache_read', cacheReadTokens], ['cache_write', cacheWriteTokens]] as const) {
      if (n > 0) this.tokens.inc([model, type], n);
    }
    if (r.costUsd !== null) this.cost.inc([model], r.costUsd);
  }

  sandboxCreated(provider: string, seconds: number): void {
    this.sandboxesInFlight.add([provider], 1);
    this.createSeconds.observe([provider], seconds);
  }

  sandboxDestroyed(provider: string, seconds: number, ok: boolean): void {
    this.sandboxesInFlight.add([provider], -1); // a failed destroy is the reaper's now, no longer a run's
    if (ok) this.destroySeconds.observe([provider], seconds);
  }

  /** `route` is the route pattern (e.g. `/runs/:id`), never the raw path. */
  httpRequest(route: string, status: number): void {
    this.http.inc([route, String(status)]);
  }

  /** `warmPools`: ready sandboxes of each backend that keeps a warm pool, read at scrape time. */
  render(warmPools: Readonly<Record<string, number>> = {}): string {
    const families: Family<unknown>[] = [this.runsStarted, this.runsEnded, this.runSeconds, this.runsInFlight, this.sandboxesInFlight, this.tokens, this.cost, this.http, this.createSeconds, this.destroySeconds];
    for (const [provider, ready] of Object.entries(warmPools)) this.warmPoolReady.set([provider], ready);
    if (Object.keys(warmPools).length) families.push(this.warmPoolReady);
    return families.map((f) => f.render()).join('\n') + '\n';
  }

  private modelLabel(model: string): string {
    const m = model.slice(0, MAX_LABEL_CHARS);
    if (this.models.has(m)) return m;
    if (this.models.size >= MAX_MODELS) return 'other';
    this.models.add(m);
    return m;
  }
}
