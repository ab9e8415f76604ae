// What the provider learns about its engine once: Docker or Podman (behind the same API), its version, the
// OCI runtimes it has registered and its default one. Kept for the provider's life; a failed look is retried
// by the next caller.
import { raceAbort } from '../../lib/abort.ts';
import type { Engine } from './engine.ts';

export interface EngineFacts {
  podman: boolean;
  /** "Docker 20.10.24" or "Podman 4.3.1". */
  product: string;
  /** Runtimes by name, with the binary when the engine says. */
  runtimes: Record<string, { path?: string }>;
  defaultRuntime?: string;
}

interface VersionAnswer {
  Version?: string;
  Components?: { Name?: string; Version?: string }[];
}
interface InfoAnswer {
  Runtimes?: Record<string, { path?: string }>;
  DefaultRuntime?: string;
}

/** Facts of the engine, asked once (version and info) and shared; `signal` only stops this caller's wait. */
export function engineFacts(engine: Engine): (signal?: AbortSignal) => Promise<EngineFacts> {
  let facts: Promise<EngineFacts> | undefined;
  // The typings omit the options of version and info; dockerode 4 does take abortSignal there.
  const api = engine.docker as unknown as { version(o: { abortSignal: AbortSignal }): Promise<VersionAnswer>; info(o: { abortSignal: AbortSignal }): Promise<InfoAnswer> };
  const look = async (): Promise<EngineFacts> => {
    const [version, info] = await Promise.all([engine.call('version', (s) => api.version({ abortSignal: s })), engine.call('info', (s) => api.info({ abortSignal: s }))]);
    const podman = (version.Components ?? []).find((c) => /podman/i.test(c.Name ?? ''));
    return {
      podman: podman !== undefined,
      product: podman ? `Podman ${podman.Version ?? version.Version ?? '?'}` : `Docker ${version.Version ?? '?'}`,
      runtimes: info.Runtimes && typeof info.Runtimes === 'object' ? info.Runtimes : {},
      defaultRuntime: typeof info.DefaultRuntime === 'string' ? info.DefaultRuntime : undefined,
    };
  };
  return (signal) =>
    raceAbort(() => {
      if (!facts) {
        facts = look();
        facts.catch(() => (facts = undefined));
      }
      return facts;
    }, signal);
}
