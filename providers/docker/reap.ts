// Removing sandboxes: one removal bounded in time as a whole, and the reaper, which removes the orphans of an
// instance a few at a time and goes on past any one that fails or hangs (it is tried again next round).
import type Docker from 'dockerode';
import { deadline } from '../../lib/abort.ts';
import { log } from '../../lib/log.ts';
import { SandboxError } from '../../lib/sandbox.ts';
import { engineMessage, status, type Engine } from './engine.ts';

/** Bound on removing one sandbox. */
export const REMOVE_TIMEOUT_MS = 30_000;
/** Removals the reaper runs at once. */
const REAP_CONCURRENCY = 4;

/**
 * Removes a container, killing it first, and its anonymous /workspace volume, in one engine call within `ms`;
 * "already gone" counts as success. Named volumes of older versions are left to the reaper's volume sweep.
 */
export async function removeSandbox(engine: Engine, container: string, ms = REMOVE_TIMEOUT_MS): Promise<void> {
  const limit = deadline(ms, undefined, () => new SandboxError('SANDBOX_ERROR', `removing sandbox ${container} did not finish within ${Math.round(ms / 1000)}s; it will be reaped later`));
  const { signal } = limit;
  const { docker } = engine;
  try {
    await engine.call('remove container', (s) => docker.getContainer(container).remove({ force: true, v: true, abortSignal: s }), { signal }).catch((err) => {
      if (status(err) !== 404 && !/removal of container .* is already in progress/i.test(engineMessage(err.cause))) throw err;
    });
  } finally {
    limit.clear();
  }
}

/** Runs `fn` over `items`, at most `limit` at a time. */
async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Containers this process keeps apart from runs in flight (the warm pool's), by container name. */
export interface KeptByName {
  keeps(name: string, keepRunIds: ReadonlySet<string>): boolean;
  /** Told when the reaper removed one of them. */
  forget(name: string): void;
}

/**
 * Removes this instance's sandboxes whose run is not kept (nor kept by `kept`), then its loose workspace
 * volumes (named ones of older versions, or left by an interrupted removal). Only a failure to list (the
 * engine itself) rejects; a sandbox that cannot be removed is logged and left for the next round.
 */
export async function reap(engine: Engine, instanceId: string, keepRunIds: ReadonlySet<string>, removeMs = REMOVE_TIMEOUT_MS, kept?: KeptByName): Promise<number> {
  const { docker } = engine;
  const filters = { label: [`sandcaster.instance=${instanceId}`] };
  const containers = await engine.call('list containers', (s) => docker.listContainers({ all: true, filters, abortSignal: s }));
  const nameOf = (c: Docker.ContainerInfo) => (c.Names?.[0] ?? '').replace(/^\//, '');
  const doomed = containers.filter((c) => !keepRunIds.has(c.Labels['sandcaster.run'] ?? '') && !kept?.keeps(nameOf(c), keepRunIds));
  let removed = 0;
  await eachLimited(doomed, REAP_CONCURRENCY, async (c) => {
    try {
      await removeSandbox(engine, c.Id, removeMs);
      kept?.forget(nameOf(c));
      removed++;
    } catch (err) {
      log.warn('could not reap a docker sandbox; will retry', { instanceId, container: c.Id, error: err });
    }
  });
  // Only volumes no container uses: a live sandbox's (pooled or not) is never touched.
  const { Volumes } = await engine.call('list volumes', (s) => docker.listVolumes({ filters: { ...filters, dangling: ['true'] }, abortSignal: s }));
  const loose = (Volumes ?? []).filter((v) => !keepRunIds.has(v.Labels?.['sandcaster.run'] ?? ''));
  await eachLimited(loose, REAP_CONCURRENCY, async (v) => {
    await engine.call('remove volume', (s) => docker.getVolume(v.Name).remove({ abortSignal: s })).catch((err) => {
      if (status(err) !== 404) log.debug('could not remove a docker sandbox volume; will retry', { instanceId, volume: v.Name, error: err });
    });
  });
  if (removed) log.info('reaped docker sandboxes', { instanceId, count: removed });
  return removed;
}
