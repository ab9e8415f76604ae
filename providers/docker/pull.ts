// Image pulls. A missing image is pulled once however many creates wait for it; each waiter hears the pull's
// start, its progress at most once a second and its end, and can give up on its own without stopping the
// pull. A pull has its own time bound (docker.pullTimeoutSeconds), apart from any run's timeout. Images
// listed in docker.prepull are pulled in the background when the provider starts, unless already present.
import { deadline, raceAbort } from '../../lib/abort.ts';
import { guarded, log } from '../../lib/log.ts';
import { SandboxError, type ImagePullEvent, type PrepullState } from '../../lib/sandbox.ts';
import { ENGINE_HINT, engineMessage, status, toSandboxError, type Engine } from './engine.ts';

/** Progress events go out at most this often, to every waiter of a pull. */
export const PROGRESS_EVERY_MS = 1000;
/** Progress lines in the server log, at most this often per pull. */
const LOG_EVERY_MS = 5000;
/** Layers tracked per pull; an image has at most 127, so anything past this is noise from the stream. */
const MAX_LAYERS = 1000;

type Listener = (e: ImagePullEvent) => void;

interface PullEntry {
  done: Promise<void>;
  listeners: Set<Listener>;
  /** The end event once told, for a waiter that joins in the moment before the entry is dropped. */
  end?: ImagePullEvent;
}

export interface PullOptions {
  /** Aborting stops waiting (rejecting with the signal's reason); the pull goes on for the others. */
  signal?: AbortSignal;
  onEvent?: Listener;
}

export interface Puller {
  /** Resolves once `image` is on the engine host, pulling it unless a pull is already under way. */
  pull(image: string, opts?: PullOptions): Promise<void>;
  /** Starts pulling the images that are missing, in the background. */
  prepull(images: readonly string[]): void;
  prepullState(): Readonly<Record<string, PrepullState>>;
  /** Whether the image is on the engine host (404 is false; other failures throw). */
  present(image: string): Promise<boolean>;
}

/** What the engine's pull stream says about one event. */
interface PullStreamEvent {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
}

/** Per-layer download progress from the engine's pull stream, summed. */
class LayerProgress {
  private layers = new Map<string, { current: number; total: number; done: boolean }>();

  update(ev: PullStreamEvent): void {
    if (!ev.id || !/^[0-9a-f]{12,64}$/.test(ev.id) || !ev.status) return;
    let layer = this.layers.get(ev.id);
    if (!layer) {
      if (this.layers.size >= MAX_LAYERS) return;
      layer = { current: 0, total: 0, done: false };
      this.layers.set(ev.id, layer);
    }
    const d = ev.progressDetail;
    if (ev.status === 'Downloading' && d) {
      if (Number.isFinite(d.total) && d.total! > 0) layer.total = d.total!;
      if (Number.isFinite(d.current) && d.current! >= 0) layer.current = Math.min(d.current!, layer.total || d.current!);
    }
    if (/^(Download complete|Pull complete|Already exists)$/.test(ev.status)) {
      layer.done = true;
      layer.current = layer.total;
    }
  }

  snapshot(): { downloadedBytes: number; totalBytes: number; layersDone: number; layers: number } {
    let downloadedBytes = 0;
    let totalBytes = 0;
    let layersDone = 0;
    for (const l of this.layers.values()) {
      downloadedBytes += l.current;
      totalBytes += l.total;
      if (l.done) layersDone++;
    }
    return { downloadedBytes, totalBytes, layersDone, layers: this.layers.size };
  }
}

/** `image` as the engine names it in a pull: a reference without a tag or digest means `:latest`. */
const withTag = (image: string) => (/[:@][^/]*$/.test(image) ? image : `${image}:latest`);

export function createPuller(engine: Engine, pullTimeoutMs: number): Puller {
  const pulls = new Map<string, PullEntry>();
  const prepulls = new Map<string, PrepullState>();

  const tell = (listeners: Iterable<Listener>, e: ImagePullEvent) => {
    for (const l of listeners) guarded(l, 'image pull listener failed', { image: e.image })(e);
  };

  async function doPull(image: string, entry: PullEntry): Promise<void> {
    const ref = withTag(image);
    log.info('pulling docker image', { image: ref });
    const started = Date.now();
    const progress = new LayerProgress();
    let lastSent = started; // the first progress event comes a second after the start
    let lastLog = started;
    // The pull's own bound, said as such (an engine call past its deadline would blame the engine).
    const secs = Math.round(pullTimeoutMs / 1000);
    const bound = deadline(
      pullTimeoutMs,
      undefined,
      () =>
        new SandboxError('SANDBOX_ERROR', `image ${image} could not be pulled within ${secs} s (docker.pullTimeoutSeconds)`, `Raise docker.pullTimeoutSeconds, or pull it on the Docker host beforehand (docker pull ${image}) or list it in docker.prepull.`),
    );
    try {
      await engine.call(
        `pull ${ref}`,
        async (s) => {
          const stream = (await engine.docker.pull(ref, { abortSignal: s })) as NodeJS.ReadableStream;
          await new Promise<void>((resolve, reject) => {
            engine.docker.modem.followProgress(
              stream,
              (err: unknown) => (err ? reject(err) : resolve()),
              (ev: PullStreamEvent & { progress?: string }) => {
                progress.update(ev);
                const now = Date.now();
                if (now - lastSent >= PROGRESS_EVERY_MS) {
                  lastSent = now;
                  tell(entry.listeners, { stage: 'progress', image, ...progress.snapshot() });
                }
                if (now - lastLog >= LOG_EVERY_MS && ev.status) {
                  lastLog = now;
                  log.info('pulling docker image', { image: ref, status: ev.status, layer: ev.id, progress: ev.progress });
                }
              },
            );
          });
        },
        { ms: pullTimeoutMs + 5000, signal: bound.signal },
      );
    } catch (err) {
      const e = toSandboxError(err, `pull ${ref}`);
      const failure =
        e.hint === ENGINE_HINT || err === bound.signal.reason
          ? e // the engine itself is the problem, not the image; or the pull's own bound said it all
          : new SandboxError(
              'SANDBOX_ERROR',
              `image ${image} is not on the Docker host and could not be pulled: ${engineMessage(e.cause ?? e)}`,
              `Pull or build it on the Docker host (docker pull ${image}, or docker build -t ${image} .), or set docker.image / SANDCASTER_DOCKER_IMAGE to an image that exists there.`,
              { cause: err },
            );
      log.warn('docker image pull failed', { image: ref, durationMs: Date.now() - started, error: failure.message });
      entry.end = { stage: 'end', image, ok: false, durationMs: Date.now() - started, error: failure.message };
      tell(entry.listeners, entry.end);
      throw failure;
    } finally {
      bound.clear();
    }
    log.info('pulled docker image', { image: ref, durationMs: Date.now() - started });
    entry.end = { stage: 'end', image, ok: true, durationMs: Date.now() - started };
    tell(entry.listeners, entry.end);
  }

  function pull(image: string, opts: PullOptions = {}): Promise<void> {
    const { signal, onEvent } = opts;
    if (signal?.aborted) return Promise.reject(signal.reason);
    let entry = pulls.get(image);
    if (!entry) {
      const e: PullEntry = { listeners: new Set(), done: Promise.resolve() };
      e.done = doPull(image, e).finally(() => pulls.delete(image));
      e.done.catch(() => {}); // a pull nobody waits for any more (prepull, aborted waiters) must not be an unhandled rejection
      pulls.set(image, (entry = e));
    }
    const { listeners, done } = entry;
    if (onEvent) {
      tell([onEvent], { stage: 'start', image });
      if (entry.end) tell([onEvent], entry.end);
      else listeners.add(onEvent);
    }
    return raceAbort(done, signal).finally(() => onEvent && listeners.delete(onEvent));
  }

  async function present(image: string): Promise<boolean> {
    try {
      // dockerode's image inspect takes no abortSignal (options become query parameters); the call is still bounded.
      await engine.call(`inspect image ${image}`, () => engine.docker.getImage(image).inspect());
      return true;
    } catch (err) {
      if (status(err) === 404) return false;
      throw err;
    }
  }

  return {
    pull,
    present,
    prepull(images) {
      for (const image of new Set(images)) {
        if (prepulls.has(image)) continue;
        prepulls.set(image, 'pending');
        void (async () => {
          try {
            if (!(await present(image))) await pull(image);
            prepulls.set(image, 'done');
          } catch (err) {
            prepulls.set(image, 'failed');
            log.warn('prepull failed; a run that needs the image pulls it then', { image, error: (err as Error).message });
          }
        })();
      }
    },
    prepullState: () => Object.fromEntries(prepulls),
  };
}
