// The sandboxes of one run: the primary `main` and, for composite runs, named secondaries (docs/api.md#composite-runs).
// Owns their whole lifecycle, so that every sandbox it ever started is destroyed exactly once, even one whose
// creation was still under way when the run ended.
import type { CompositeSettings } from './config.ts';
import type { StreamEvent } from './sse.ts';
import { SandboxError, type ImagePullEvent, type Sandbox, type SandboxProvider, type SandboxProviderName } from './sandbox.ts';
import { ToolFailure } from './tools.ts';
import { log } from './log.ts';
import type { SandboxMetrics } from './metrics.ts';
import type { MemoryBudget, MemoryReservation } from './memory-budget.ts';

export const MAIN = 'main';
const NAME = /^[a-zA-Z0-9_-]{1,64}$/;

export interface PoolOptions {
  runId: string;
  instanceId: string;
  timeoutSecs: number;
  signal: AbortSignal;
  provider(name: SandboxProviderName): Promise<SandboxProvider>;
  emit(event: StreamEvent): void;
  /** Called whenever a sandbox is created: its id, the primary's id and the number created so far. */
  onCreated(sandboxId: string, primaryId: string, count: number): void;
  composite?: CompositeSettings;
  metrics?: SandboxMetrics;
  /** Host memory shared by every sandbox in flight; secondaries reserve their share here. */
  memory: MemoryBudget;
  /** The primary's share, reserved at admission (before the stream started); released with the run. */
  mainReservation?: MemoryReservation;
  /** Stops the run's timeout clock while a sandbox waits for an image pull (which has its own bound); returns the resume. */
  pauseTimeout?(): () => void;
}

const MB = 1024 * 1024;

/** The stream's `system` `image_pull` event for one step of a pull a sandbox waits for. */
function imagePullEvent(sandbox: string, e: ImagePullEvent): StreamEvent {
  const base = { type: 'system', subtype: 'image_pull', sandbox, image: e.image, stage: e.stage };
  switch (e.stage) {
    case 'start':
      return { ...base, content: `pulling image ${e.image} for sandbox ${sandbox}` };
    case 'progress': {
      const { downloadedBytes, totalBytes, layersDone, layers } = e;
      const content = `pulling image ${e.image}: ${(downloadedBytes / MB).toFixed(1)} of ${(totalBytes / MB).toFixed(1)} MB, ${layersDone} of ${layers} layers`;
      return { ...base, content, downloadedBytes, totalBytes, layersDone, layers };
    }
    case 'end': {
      const durationSecs = Math.round(e.durationMs / 10) / 100;
      const error = e.error?.slice(0, 500);
      const content = e.ok ? `pulled image ${e.image} in ${durationSecs} s` : `could not pull image ${e.image}: ${error}`;
      return { ...base, content, ok: e.ok, durationSecs, ...(e.ok ? {} : { error }) };
    }
  }
}

interface Member {
  name: string;
  provider: SandboxProviderName;
  image: string;
  sandbox: Sandbox;
  reservation?: MemoryReservation;
}

export class SandboxPool {
  private members = new Map<string, Member>();
  private pending = new Map<string, Promise<Member | undefined>>();
  /** Names of spawns past the guardrails whose provider is still being looked up (counted as alive). */
  private reserved = new Set<string>();
  /** Destroys started by kill() and not finished yet; destroyAll waits for them. */
  private destroying = new Set<Promise<void>>();
  private closed = false;
  private spawns = 0;
  private primaryId = '';
  createdCount = 0;

  constructor(private readonly opts: PoolOptions) {}

  /** Creates the primary sandbox; rejects with SandboxError (or the abort reason). */
  async createMain(provider: SandboxProviderName): Promise<Sandbox> {
    const p = await this.opts.provider(provider);
    const m = await this.track(MAIN, provider, p.defaultImage, p, this.opts.mainReservation);
    if (!m) throw this.opts.signal.reason ?? new SandboxError('SANDBOX_ERROR', 'the run ended before its sandbox was ready');
    return m.sandbox;
  }

  get(name: string): Sandbox {
    const m = this.members.get(name);
    if (!m) throw new ToolFailure(`no sandbox named "${name}"; live sandboxes: ${[...this.members.keys()].join(', ') || 'none'}`);
    return m.sandbox;
  }

  list(): { name: string; provider: SandboxProviderName; image: string; sandboxId: string }[] {
    return [...this.members.values()].map((m) => ({ name: m.name, provider: m.provider, image: m.image, sandboxId: m.sandbox.id }));
  }

  /** Composite: a secondary sandbox, within the run's guardrails. Refusals are ToolFailures. */
  async spawn(name: string, provider: SandboxProviderName | undefined, template: string | undefined, defaultProvider: SandboxProviderName): Promise<Member> {
    const c = this.opts.composite;
    if (!c) throw new ToolFailure('composite runs are not enabled');
    if (!NAME.test(name)) throw new ToolFailure('name must be 1-64 characters of letters, digits, "_" or "-"');
    if (this.members.has(name) || this.pending.has(name) || this.reserved.has(name)) throw new ToolFailure(`a sandbox named "${name}" already exists`);
    const chosen = provider ?? defaultProvider;
    if (!c.allowedProviders.includes(chosen)) throw new ToolFailure(`provider "${chosen}" is not allowed; allowed: ${c.allowedProviders.join(', ') || 'none'}`);
    const secondaries = new Set([...this.members.keys(), ...this.pending.keys(), ...this.reserved]);
    secondaries.delete(MAIN);
    if (secondaries.size >= c.maxSandboxes) throw new ToolFailure(`at most ${c.maxSandboxes} secondary sandboxes may be alive at once; kill one first`);
    if (this.spawns >= c.maxTotalSpawns) throw new ToolFailure(`this run may spawn at most ${c.maxTotalSpawns} sandboxes in all`);
    // Parallel calls of one turn run up to here synchronously, one after the other: reserve the name and the
    // spawn now, so two calls cannot both pass the checks above while the provider is looked up.
    this.reserved.add(name);
    this.spawns++;
    let p: SandboxProvider;
    let image: string;
    let reservation: MemoryReservation | undefined;
    try {
      p = await this.opts.provider(chosen).catch((err: Error) => {
        throw new ToolFailure(`provider "${chosen}" is not usable: ${err.message}`);
      });
      // The run's own provider is proven by main; another one may be allowed but not configured (no E2B key).
      if (chosen !== defaultProvider && !(await p.available())) throw new ToolFailure(`provider "${chosen}" is not configured on this server`);
      image = template ?? p.defaultImage;
      if (image !== p.defaultImage && !c.allowedTemplates.includes(image)) {
        throw new ToolFailure(`template "${image}" is not allowed; allowed: ${[p.defaultImage, ...c.allowedTemplates].join(', ')}`);
      }
      if (this.closed) throw new ToolFailure('the run is ending; no sandbox was spawned');
      reservation = this.opts.memory.tryReserve(p.reservedMemoryMb?.(image) ?? 0);
      if (!reservation) {
        throw new ToolFailure(`not enough sandbox memory on this server for another sandbox (${this.opts.memory.usedMb} of ${this.opts.memory.limit} MiB held); kill one first`);
      }
    } catch (err) {
      this.spawns--; // a refused call does not count toward maxTotalSpawns
      throw err;
    } finally {
      this.reserved.delete(name); // track() below takes over synchronously, as a pending creation
    }
    let m: Member | undefined;
    try {
      m = await this.track(name, chosen, image, p, reservation);
    } catch (err) {
      reservation.release();
      // A secondary that cannot be created is the model's problem to handle, not the end of the run.
      if (err instanceof SandboxError && !this.opts.signal.aborted) {
        throw new ToolFailure(`sandbox "${name}" could not be created: ${err.message}${err.hint ? ` (${err.hint})` : ''}`);
      }
      throw err;
    }
    if (!m) {
      reservation.release();
      throw new ToolFailure('the run is ending; no sandbox was spawned');
    }
    return m;
  }

  /** Composite: destroys one secondary. */
  async kill(name: string): Promise<void> {
    if (name === MAIN) throw new ToolFailure('the primary sandbox "main" cannot be killed');
    const m = this.members.get(name);
    if (!m) throw new ToolFailure(`no sandbox named "${name}"`);
    this.members.delete(name);
    const done = this.destroy(m);
    this.destroying.add(done);
    try {
      await done;
    } finally {
      this.destroying.delete(done);
    }
  }

  /** Destroys everything: secondaries first (in parallel), then main. Safe to call more than once. */
  async destroyAll(): Promise<void> {
    this.closed = true;
    await Promise.allSettled(this.pending.values());
    const all = [...this.members.values()];
    this.members.clear();
    // Secondaries, including any a kill_sandbox call is still destroying, all go before main.
    await Promise.all([...all.filter((m) => m.name !== MAIN).map((m) => this.destroy(m)), ...[...this.destroying].map((d) => d.catch(() => {}))]);
    const main = all.find((m) => m.name === MAIN);
    if (main) await this.destroy(main);
    this.opts.mainReservation?.release(); // also when main was never created
  }

  private track(name: string, provider: SandboxProviderName, image: string, p: SandboxProvider, reservation?: MemoryReservation): Promise<Member | undefined> {
    const created = (async () => {
      const started = Date.now();
      // While the sandbox waits for an image pull, the run's clock stands still; the stream shows the pull.
      let resume: (() => void) | undefined;
      const onImagePull = (e: ImagePullEvent) => {
        if (e.stage === 'start') resume ??= this.opts.pauseTimeout?.();
        this.opts.emit(imagePullEvent(name, e));
        if (e.stage === 'end') resume?.();
      };
      const sandbox = await p
        .create({
          runId: this.opts.runId,
          instanceId: this.opts.instanceId,
          image: image === p.defaultImage ? undefined : image,
          timeoutSecs: this.opts.timeoutSecs,
          signal: this.opts.signal,
          onImagePull,
        })
        .finally(() => resume?.());
      this.opts.metrics?.sandboxCreated(provider, (Date.now() - started) / 1000);
      const m: Member = { name, provider, image, sandbox, reservation };
      if (this.closed) {
        await this.destroy(m, false); // the run ended while we were creating it
        return undefined;
      }
      this.createdCount++;
      if (name === MAIN) this.primaryId = sandbox.id;
      this.members.set(name, m);
      this.opts.onCreated(sandbox.id, this.primaryId || sandbox.id, this.createdCount);
      log.info('sandbox created', { runId: this.opts.runId, sandbox: name, sandboxId: sandbox.id, provider, durationMs: Date.now() - started });
      this.opts.emit({ type: 'system', subtype: 'sandbox_created', content: `sandbox ${name} created (${provider}, ${image})`, sandbox: name, sandboxId: sandbox.id });
      return m;
    })();
    this.pending.set(name, created);
    return created.finally(() => this.pending.delete(name));
  }

  private async destroy(m: Member, announce = true): Promise<void> {
    const started = Date.now();
    try {
      await m.sandbox.destroy();
      this.opts.metrics?.sandboxDestroyed(m.provider, (Date.now() - started) / 1000, true);
    } catch (err) {
      this.opts.metrics?.sandboxDestroyed(m.provider, (Date.now() - started) / 1000, false);
      m.reservation?.release(); // what is left is the reaper's; the budget counts live runs' sandboxes
      // Not announced as destroyed: it is labelled with this instance, so the reaper removes it later.
      log.error('sandbox destroy failed; the reaper will retry', { runId: this.opts.runId, sandboxId: m.sandbox.id, error: err });
      if (announce) this.opts.emit({ type: 'warning', code: 'SANDBOX_CLEANUP_FAILED', content: `sandbox ${m.name} could not be destroyed now (${(err as Error).message}); it will be reaped` });
      return;
    }
    m.reservation?.release();
    log.info('sandbox destroyed', { runId: this.opts.runId, sandbox: m.name, sandboxId: m.sandbox.id, durationMs: Date.now() - started });
    if (announce) this.opts.emit({ type: 'system', subtype: 'sandbox_destroyed', content: `sandbox ${m.name} destroyed`, sandbox: m.name, sandboxId: m.sandbox.id });
  }
}
